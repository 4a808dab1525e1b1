//! Redaction is chunk-invariant: any split of the input into pushes gives the same text
//! and the same redaction counts as one push (a secret split across two reads is still
//! redacted, and nothing else changes). The first two bytes choose the split points.
#![no_main]

use execkit_protect::{Budget, CaptureLimits, KnownSecrets, Protector, Redactor};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static PROTECTOR: LazyLock<Protector> = LazyLock::new(|| {
    let mut k = KnownSecrets::new();
    k.add("hunter2-known-secret-value");
    Protector::new(Redactor::new(&k), CaptureLimits::default())
});

fn run(chunks: &[&[u8]]) -> (String, String) {
    let mut s = PROTECTOR.stream(&Budget::default()).expect("default budget");
    for c in chunks {
        s.push(c);
    }
    let out = s.finish();
    (out.text, format!("{:?}", out.redactions))
}

fuzz_target!(|data: &[u8]| {
    let [a, b, input @ ..] = data else { return };
    let whole = run(&[input]);
    let step = usize::from(*a).max(1);
    let offset = usize::from(*b) % (input.len() + 1);
    let mut chunks: Vec<&[u8]> = Vec::new();
    let (first, rest) = input.split_at(offset);
    chunks.push(first);
    chunks.extend(rest.chunks(step));
    assert_eq!(run(&chunks), whole, "chunking changed the protected output");
});
