//! The operations-output corpus (`tests/fixtures/ops`, written by `scripts/ops-corpus.py`):
//! command outputs an agent reads on real infrastructure, with every secret listed in
//! `secrets.json`, and operations text that only looks dangerous.
//!
//! - no listed secret shows after redaction;
//! - at most 2 changed lines per MB of the operations text;
//! - every file redacts the same however it is cut into chunks.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a failed test

use execkit_protect::{KnownSecrets, Redactor};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ops")
}

fn files(sub: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(dir().join(sub))
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    out.sort();
    out
}

#[derive(serde::Deserialize)]
struct Listed {
    file: String,
    value: String,
    family: String,
    cause: String,
}

#[test]
fn no_listed_secret_shows() {
    let r = Redactor::new(&KnownSecrets::new());
    let listed: Vec<Listed> =
        serde_json::from_str(&std::fs::read_to_string(dir().join("secrets.json")).unwrap())
            .unwrap();
    let outputs: BTreeMap<String, String> = files("secrets")
        .into_iter()
        .map(|(name, text)| (name, r.redact_str(&text).text))
        .collect();
    assert!(listed.len() >= 300, "{} secrets", listed.len());
    assert!(outputs.len() >= 150, "{} outputs", outputs.len());
    let leaks: Vec<String> = listed
        .iter()
        .filter(|s| outputs[&s.file].contains(&s.value))
        .map(|s| format!("{} ({}, {}): {}", s.file, s.family, s.cause, s.value))
        .collect();
    assert!(
        leaks.is_empty(),
        "{} of {} secrets show:\n{}",
        leaks.len(),
        listed.len(),
        leaks.join("\n")
    );
}

#[test]
fn operations_text_stays_unaltered() {
    let r = Redactor::new(&KnownSecrets::new());
    let mut bytes = 0usize;
    let mut changed = Vec::new();
    for (name, text) in files("benign") {
        bytes += text.len();
        let out = r.redact_str(&text).text;
        for (a, b) in text.lines().zip(out.lines()) {
            if a != b {
                changed.push(format!("{name}: {b}"));
            }
        }
    }
    let per_mb = changed.len() as f64 / (bytes as f64 / 1e6);
    println!(
        "{:.2} MB of operations text, {} changed lines ({per_mb:.2} per MB)",
        bytes as f64 / 1e6,
        changed.len()
    );
    assert!(bytes > 1_000_000, "only {bytes} bytes");
    assert!(
        per_mb <= 2.0,
        "{per_mb:.2} changed lines per MB (budget 2):\n{}",
        changed.join("\n")
    );
}

/// Cuts `text` at char boundaries near the given offsets and streams the pieces.
fn streamed(r: &Redactor, text: &str, cuts: &[usize]) -> String {
    let mut s = r.stream();
    let mut out = String::new();
    let mut at = 0;
    for &c in cuts {
        let mut c = c.min(text.len());
        while !text.is_char_boundary(c) {
            c += 1;
        }
        if c > at {
            s.push(&text[at..c], &mut out);
            at = c;
        }
    }
    s.push(&text[at..], &mut out);
    s.finish(&mut out);
    out
}

/// The structure readers (tables, escaped JSON, objects under a secret's name, Secret
/// JSON lines) hold no state a chunk border could split: every file, cut every few bytes
/// and at seeded offsets, redacts as it does whole.
#[test]
fn every_file_redacts_the_same_however_it_is_cut() {
    let r = Redactor::new(&KnownSecrets::new());
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for (name, text) in files("secrets").into_iter().chain(files("benign")) {
        let whole = r.redact_str(&text).text;
        let step = 1 + (next() % 13) as usize;
        let every: Vec<usize> = (step..text.len().min(8192)).step_by(step).collect();
        let mut seeded: Vec<usize> = (0..24)
            .map(|_| (next() as usize) % (text.len() + 1))
            .collect();
        seeded.sort_unstable();
        for cuts in [every, seeded] {
            assert_eq!(streamed(&r, &text, &cuts), whole, "{name}, cut at {cuts:?}");
        }
    }
}

/// Floods of what the operations readers key on, each a single long line an agent's
/// command could print to stall the redactor or hide a secret behind: a secret after the
/// flood is still redacted, and a flood under the windowed length redacts as it does cut
/// into chunks.
#[test]
fn floods_of_reader_keywords_redact_as_cut_and_still_find_the_secret() {
    let r = Redactor::new(&KnownSecrets::new());
    let tail = " DB_PASSWORD=Kq8ZmP3vR7tW2yBX\n";
    for unit in [
        "keytool -storepass ",
        "│ DB_PASSWORD │ ",
        "\\\\\"password\\\\\": \\\\\"",
        "\"data\":{\"a\":\"b\",",
        "user x on ",
        "ACCESSKEY\t",
        "ldapsearch -w ",
        "||  SecretAccessKey |  ",
    ] {
        // Past 64 KiB a line is read in windows, where what overlapping matches redact may
        // differ by chunking (a documented limit): the long flood is checked for the
        // secret after it, a flood under that for chunking.
        let long = format!("{}\n{tail}", unit.repeat(20_000));
        let whole = r.redact_str(&long).text;
        assert!(!whole.contains("Kq8ZmP3vR7tW2yBX"), "{unit:?}");
        let text = format!("{}\n{tail}", unit.repeat(60_000 / unit.len()));
        let whole = r.redact_str(&text).text;
        assert!(!whole.contains("Kq8ZmP3vR7tW2yBX"), "{unit:?}");
        let cuts: Vec<usize> = (1..40).map(|i| i * text.len() / 40).collect();
        assert_eq!(streamed(&r, &text, &cuts), whole, "{unit:?}");
    }
}
