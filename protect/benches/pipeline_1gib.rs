//! The whole pipeline (strip → redact → bound → budget) over 1 GiB of generated command
//! output, fed in 64 KiB chunks as a runner would. Prints throughput and peak RSS
//! (VmHWM). Targets: ≥ 300 MB/s on ordinary output, peak RSS < 64 MiB.
//!
//! `cargo bench -p execkit-protect --bench pipeline_1gib` runs the full GiB; under
//! `cargo test` (no `--bench` argument) it runs 32 MiB as a smoke check.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a failed test

use execkit_protect::{Budget, BudgetMode, CaptureLimits, Protector, Redactor};
use std::time::Instant;

#[path = "support/corpus.rs"]
mod corpus;

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn run(total: u64, budget: &Budget, label: &str) -> (f64, u64) {
    run_on(corpus::terminal_output(4 << 20), total, budget, label)
}

fn run_on(template: Vec<u8>, total: u64, budget: &Budget, label: &str) -> (f64, u64) {
    let protector = Protector::new(
        Redactor::new(&corpus::known_values()),
        CaptureLimits::default(),
    );
    let mut stream = protector.stream(budget).expect("budget");
    let start = Instant::now();
    let mut fed = 0u64;
    'outer: loop {
        for chunk in template.chunks(64 * 1024) {
            stream.push(chunk);
            fed += chunk.len() as u64;
            if fed >= total {
                break 'outer;
            }
        }
    }
    let out = stream.finish();
    let secs = start.elapsed().as_secs_f64();
    let mbps = fed as f64 / 1e6 / secs;
    assert_eq!(out.report.raw_bytes, fed);
    assert!(out.text.len() < 200 * 1024, "output is bounded");
    assert!(!out.text.contains("ghp_"), "secrets are redacted");
    println!(
        "pipeline {label:<10} {:>6.0} MiB in {secs:>6.2} s = {mbps:>6.1} MB/s; {} lines, {} redactions, kept {} bytes",
        fed as f64 / (1 << 20) as f64,
        out.report.lines_total,
        out.redactions.values().sum::<u64>(),
        out.report.bytes_kept
    );
    (mbps, fed)
}

/// The allocator the shipped binaries use (`execkit-mcp`, `execkit`), so the numbers are
/// the server's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let total: u64 = if full { 1 << 30 } else { 32 << 20 };
    let full_budget = Budget::default();
    let grep = Budget {
        mode: BudgetMode::Grep {
            pattern: "error|warning".into(),
            context: 2,
        },
        max_chars: Some(20_000),
    };
    run(total, &full_budget, "full");
    // The build log has a YAML `data:` line every ~270 KB, which opens a Kubernetes
    // secret block and makes the held middle be redacted around it: the same output
    // without those lines shows what holding the middle gives ordinary output.
    let plain: Vec<u8> = String::from_utf8_lossy(&corpus::terminal_output(4 << 20))
        .lines()
        .filter(|l| l.trim() != "data:")
        .flat_map(|l| l.bytes().chain(std::iter::once(b'\n')))
        .collect();
    run_on(plain, total, &full_budget, "full/no-k8s");
    run(total, &grep, "grep");
    let rss = peak_rss_kib().unwrap_or(0);
    println!("peak RSS (VmHWM): {:.1} MiB", rss as f64 / 1024.0);
    if full {
        assert!(rss < 64 * 1024, "peak RSS {rss} KiB over 64 MiB");
    }
}
