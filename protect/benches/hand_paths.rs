//! What the search from keyword occurrences is worth: redaction throughput on realistic
//! agent output with patterns led by a keyword searched from the keyword's occurrences
//! (regex-automata's anchored search with captures at each) and with every pattern
//! searched by regex-automata's meta engine over the line. The redactions must be the same
//! either way (checked here on every corpus).
//!
//! `cargo bench -p execkit-protect --bench hand_paths` prints a Markdown table (MiB/s,
//! median of 5 runs over 16 MiB per corpus). Under `cargo test` it runs a small smoke
//! version: 256 KiB per corpus.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // bench code

use execkit_protect::{PatternSearch, Redactor, RuleSet, BUILTIN_RULES};
use std::time::Instant;

#[path = "support/corpus.rs"]
mod corpus;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn configs() -> Vec<(&'static str, PatternSearch)> {
    vec![
        ("from keyword occurrences", PatternSearch::FromKeywords),
        (
            "over lines (regex-automata alone)",
            PatternSearch::OverLines,
        ),
    ]
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (size, runs) = if full { (16 << 20, 5) } else { (256 << 10, 1) };
    let corpora: Vec<(&str, String)> = vec![
        ("build log", corpus::build_log(size)),
        ("code listing", corpus::code_listing(size)),
        ("`env` dumps", corpus::env_dump(size)),
        ("config files", corpus::config_files(size)),
        ("k8s manifests", corpus::k8s_manifests(size)),
        ("`git log -p`", corpus::git_log_patch(size)),
        ("secret-dense (synthetic)", corpus::secret_dense(size)),
    ];
    let configs = configs();
    let redactors: Vec<Redactor> = configs
        .iter()
        .map(|(_, paths)| {
            let set = RuleSet::from_toml_with(BUILTIN_RULES, *paths).expect("rules");
            Redactor::with_rules(Box::leak(Box::new(set)), &corpus::known_values())
        })
        .collect();
    print!("| corpus |");
    for (name, _) in &configs {
        print!(" {name} |");
    }
    println!(" ratio |");
    println!("|---|{}---|", "---|".repeat(configs.len()));
    for (name, text) in &corpora {
        let expected = corpus::redact_streamed(&redactors[0], text);
        print!("| {name} |");
        let mut speeds = Vec::new();
        for r in &redactors {
            let mut times = Vec::new();
            for _ in 0..runs {
                let t = Instant::now();
                let got = corpus::redact_streamed(r, text);
                times.push(t.elapsed().as_secs_f64());
                assert!(
                    got == expected,
                    "{name}: a configuration redacted differently"
                );
            }
            times.sort_by(f64::total_cmp);
            let mib_s = text.len() as f64 / (1 << 20) as f64 / times[times.len() / 2];
            speeds.push(mib_s);
            print!(" {mib_s:.0} |");
        }
        println!(" {:.2}× |", speeds[0] / speeds[1]);
    }
}
