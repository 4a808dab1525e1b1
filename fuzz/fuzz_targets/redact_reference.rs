//! The redactor's fast path redacts as its plain reference: on any text whose lines stay
//! within the window after a keyword (4 KiB) and open no secret spanning lines, the
//! protected text and the counts equal `Redactor::redact_reference`'s (every rule with a
//! keyword on the line runs its patterns over the whole line with the capture engine).
//! A difference is a secret the keyword automaton, the windows, a rule skipped for a line,
//! a hand-read group or a search without a prefilter let through, or text altered that
//! the rules never matched.
#![no_main]

use execkit_protect::{KnownSecrets, Redactor};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static REDACTOR: LazyLock<Redactor> = LazyLock::new(|| Redactor::new(&KnownSecrets::new()));

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let text: String = text
        .split_inclusive('\n')
        .map(|l| {
            let mut cut = l.len().min(4000);
            while !l.is_char_boundary(cut) {
                cut -= 1;
            }
            &l[..cut]
        })
        .collect();
    let Some(reference) = REDACTOR.redact_reference(&text) else {
        return;
    };
    let fast = REDACTOR.redact_str(&text);
    assert_eq!(
        fast, reference,
        "the fast path differs from the reference on {text:?}"
    );
});
