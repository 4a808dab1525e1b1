//! The secret groups read by hand or by a walk over the pattern's tree (instead of the
//! capture engine) are the capture engine's, on any text: for every match of every such
//! pattern, the reading alone must give the engine's group (a walk may give up, and the
//! engine decides then). The searches from keyword occurrences must find the engine's
//! matches and groups from every start. A difference would redact the wrong bytes, or
//! leave a secret.
#![no_main]

use execkit_protect::RuleSet;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let set = RuleSet::builtin();
    if let Err(e) = set.hand_readings_agree(data) {
        panic!("{e}");
    }
    if let Err(e) = set.led_searches_agree(data) {
        panic!("{e}");
    }
});
