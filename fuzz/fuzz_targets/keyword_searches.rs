//! The searches from keyword occurrences (a pattern led by its keyword, a key name holding
//! one) find the regex engine's leftmost-first match and its secret group from every
//! start, on any text: a difference would redact the wrong bytes, or leave a secret.
#![no_main]

use execkit_protect::RuleSet;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = RuleSet::builtin().led_searches_agree(data) {
        panic!("{e}");
    }
});
