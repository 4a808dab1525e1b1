//! Decision latency: parse + fact extraction + every Cedar request + combination.
//!
//! (a) a simple command, (b) `cd /app && npm ci 2>&1 | tee build.log`, (c) a 20-command
//! script; each against the shipped default set and against that set plus 1,000 extra
//! resource-scoped policies (the partitioning keeps those out of unrelated requests),
//! decided from scratch (memo off); then answered from the memo (the same command again in
//! the same environment); then on the reference path (every request validated, path
//! groups from the raw patterns), as the baseline the fast path is measured against.
//! `*_novel` decide (a) and (b) with a path never seen before each time: "from scratch"
//! above means no verdict is reused, while entities, structure records and request stores
//! built for earlier decisions are; the novel runs show the cost without those.
//! `d_connection_*` are the egress broker's questions on one connection (by name, then by
//! its resolved address).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a failed test

use criterion::{criterion_group, criterion_main, Criterion};
use execkit_engine::{DecisionEnv, DecisionMemo, DecisionPath, Engine};
use std::hint::black_box;

/// The allocator the shipped binaries use (`execkit-mcp`, `execkit`), so the numbers are
/// the server's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
#[path = "support/bundle.rs"]
mod bundle;
use bundle::bundle;

const SIMPLE: &str = "ls -la src";
const PIPELINE: &str = "cd /app && npm ci 2>&1 | tee build.log";

fn script20() -> String {
    [
        "cd /work/app",
        "git status",
        "git diff --stat",
        "cargo fmt --all -- --check",
        "cargo clippy --all-targets -- -D warnings",
        "cargo test --workspace 2>&1 | tee test.log",
        "grep -c FAILED test.log || true",
        "mkdir -p target/reports",
        "cp test.log target/reports/",
        "ls -la target/reports",
        "rm -rf target/tmp",
        "find . -name '*.orig' -delete",
        "echo done > status.txt",
        "cat status.txt",
        "wc -l src/*.rs",
        "sort data.csv | uniq -c | head",
        "python3 -m pytest -q tests/",
        "npm ci",
        "curl -sSf https://github.com/org/repo/releases -o releases.html",
        "git log --oneline -5",
    ]
    .join("\n")
}

/// p50 and p99 of single decisions (criterion reports the median of batches only).
fn percentiles(engine: &Engine, env: &DecisionEnv, label: &str, cmd: &str, runs: usize) {
    let mut v: Vec<std::time::Duration> = (0..runs)
        .map(|_| {
            let t = std::time::Instant::now();
            black_box(engine.decide(black_box(cmd), env));
            t.elapsed()
        })
        .collect();
    v.sort();
    println!(
        "{label:<40} p50 {:>9.1} µs  p99 {:>9.1} µs  (n={runs})",
        v[runs / 2].as_secs_f64() * 1e6,
        v[runs * 99 / 100].as_secs_f64() * 1e6
    );
}

fn bench(c: &mut Criterion) {
    let env = DecisionEnv::local("/work", "/home/agent");
    let s20 = script20();
    {
        let mut fresh = Engine::new(&bundle(0)).expect("bench policy set loads");
        fresh.set_memo(DecisionMemo::Off);
        let memo = Engine::new(&bundle(0)).expect("bench policy set loads");
        let runs = if std::env::args().any(|a| a == "--bench") {
            2000
        } else {
            20
        };
        for (name, cmd) in [("a", SIMPLE), ("b", PIPELINE), ("c", s20.as_str())] {
            percentiles(&fresh, &env, &format!("fresh {name}"), cmd, runs);
            percentiles(&memo, &env, &format!("memo {name}"), cmd, runs);
        }
    }
    for (label, extra, memo) in [
        ("default", 0usize, DecisionMemo::Off),
        ("default+1000", 1000, DecisionMemo::Off),
        ("default/memo", 0, DecisionMemo::default()),
        ("reference", 0, DecisionMemo::Off),
    ] {
        let mut engine = Engine::new(&bundle(extra)).expect("bench policy set loads");
        engine.set_memo(memo);
        if label == "reference" {
            engine.set_decision_path(DecisionPath::Reference);
        }
        // Warm the partition cache as a long-running server would be.
        for cmd in [SIMPLE, PIPELINE, s20.as_str()] {
            black_box(engine.decide(cmd, &env));
        }
        let mut g = c.benchmark_group(format!("decision/{label}"));
        g.bench_function("a_simple", |b| {
            b.iter(|| black_box(engine.decide(black_box(SIMPLE), &env)))
        });
        g.bench_function("b_cd_npm_tee", |b| {
            b.iter(|| black_box(engine.decide(black_box(PIPELINE), &env)))
        });
        g.bench_function("c_script_20", |b| {
            b.iter(|| black_box(engine.decide(black_box(&s20), &env)))
        });
        if label == "default" {
            // Commands never seen before: a new path each time, so no entity, structure or
            // store built for an earlier decision is reused (the verdict memo is off in
            // every group but `memo`; these show what the construction caches save).
            let mut n = 0u64;
            g.bench_function("a_simple_novel", |b| {
                b.iter(|| {
                    n += 1;
                    let cmd = format!("ls -la src/d{n}");
                    black_box(engine.decide(black_box(&cmd), &env))
                })
            });
            // The egress broker's two questions on one connection: by name, then by the
            // resolved address.
            let mut conn = execkit_engine::Connection {
                host: "files.pythonhosted.org".into(),
                port: 443,
                scheme: None,
                program: "/usr/bin/python3.11".into(),
                address: None,
            };
            g.bench_function("d_connection_by_name", |b| {
                b.iter(|| black_box(engine.decide_connection(black_box(&conn), &env)))
            });
            conn.address = Some("151.101.0.223".parse().unwrap());
            g.bench_function("d_connection_by_address", |b| {
                b.iter(|| black_box(engine.decide_connection(black_box(&conn), &env)))
            });
            g.bench_function("b_cd_npm_tee_novel", |b| {
                b.iter(|| {
                    n += 1;
                    let cmd = format!("cd /app{n} && npm ci 2>&1 | tee build{n}.log");
                    black_box(engine.decide(black_box(&cmd), &env))
                })
            });
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
