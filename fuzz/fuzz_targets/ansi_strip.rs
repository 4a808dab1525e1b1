//! ANSI stripping: no escape byte survives, stripping is idempotent, and streaming in
//! any chunks gives the one-shot result once ghost pairs are removed (a chunk boundary in
//! an escape sequence leaves a ghost marker for the redactor, which removes it).
#![no_main]

use execkit_protect::{remove_ghosts, strip_ansi, AnsiStripper};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [step, input @ ..] = data else { return };
    let once = strip_ansi(input);
    assert!(!once.contains('\u{1b}'), "an ESC survived: {once:?}");
    assert_eq!(strip_ansi(once.as_bytes()), once, "stripping is not idempotent");
    let mut s = AnsiStripper::new();
    let mut streamed = String::new();
    for c in input.chunks(usize::from(*step).max(1)) {
        s.push(c, &mut streamed);
    }
    s.finish(&mut streamed);
    assert_eq!(remove_ghosts(&streamed), once, "chunking changed the stripped text");
});
