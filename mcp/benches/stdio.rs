//! `execkit-mcp` over stdio, measured with a real MCP client (rmcp):
//! - `session_exec` of `echo hi`, round trip, p50/p99 over 500 calls, without and with
//!   the audit log (which fsyncs two records per command);
//! - the server's RSS with 200 idle sessions (and the shells' total, separately);
//! - `process_read` of a running background process, round trip, p50/p99 over 500 calls.
//!
//! `cargo bench -p execkit --bench stdio` for the full run; without `--bench` (as under
//! `cargo test --all-targets`) it does a short smoke run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a failed test

#[path = "../tests/mcp/common.rs"]
mod common;

use common::*;
use serde_json::json;
use std::time::{Duration, Instant};

/// A `Key: N kB` field of a `/proc/PID/…` file.
fn proc_kib(pid: u32, file: &str, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/{file}"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn rss_kib(pid: u32) -> u64 {
    proc_kib(pid, "status", "VmRSS:")
}

/// Proportional set size: shared pages divided among their sharers (a keeper is a fork of
/// the server, so its RSS is mostly the server's pages).
fn pss_kib(pid: u32) -> u64 {
    proc_kib(pid, "smaps_rollup", "Pss:")
}

fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for t in tasks.flatten() {
        let kids = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
        out.extend(
            kids.split_whitespace()
                .filter_map(|k| k.parse::<u32>().ok()),
        );
    }
    out
}

fn descendants_pss_kib(pid: u32) -> u64 {
    let mut total = 0;
    let mut stack = children(pid);
    while let Some(p) = stack.pop() {
        total += pss_kib(p);
        stack.extend(children(p));
    }
    total
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

async fn round_trips(s: &Setup, calls: usize, label: &str) {
    let c = s.connect(Human::Absent).await;
    let id = create(&c).await;
    for _ in 0..20 {
        exec(&c, &id, "echo hi").await;
    }
    let mut times = Vec::with_capacity(calls);
    for _ in 0..calls {
        let t = Instant::now();
        let r = call(
            &c,
            "session_exec",
            json!({"session_id": id, "command": "echo hi"}),
        )
        .await;
        times.push(t.elapsed());
        assert_eq!(structured(&r)["stdout"], "hi\n");
    }
    times.sort();
    println!(
        "session_exec `echo hi` over stdio, {label} ({calls} calls): p50 {:.2} ms  p99 {:.2} ms  min {:.2} ms  max {:.2} ms",
        ms(pct(&times, 0.5)),
        ms(pct(&times, 0.99)),
        ms(times[0]),
        ms(times[times.len() - 1]),
    );
    c.cancel().await.ok();
}

async fn process_reads(s: &Setup, calls: usize) {
    let c = s.connect(Human::Absent).await;
    let id = create(&c).await;
    let r = call(
        &c,
        "process_start",
        json!({"session_id": id, "command": "while :; do echo tick; sleep 0.01; done"}),
    )
    .await;
    let pid = structured(&r)["process_id"].as_str().unwrap().to_string();
    let mut times = Vec::with_capacity(calls);
    let mut lines = 0;
    for _ in 0..calls {
        let t = Instant::now();
        let r = call(&c, "process_read", json!({"process_id": pid})).await;
        times.push(t.elapsed());
        lines += structured(&r)["stdout"].as_str().unwrap().lines().count();
    }
    times.sort();
    println!(
        "process_read over stdio ({calls} calls, {lines} new lines read): p50 {:.2} ms  p99 {:.2} ms  min {:.2} ms  max {:.2} ms",
        ms(pct(&times, 0.5)),
        ms(pct(&times, 0.99)),
        ms(times[0]),
        ms(times[times.len() - 1]),
    );
    c.cancel().await.ok();
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (calls, idle) = if full { (500, 200) } else { (20, 5) };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let s = Setup::without_audit("[limits]\nmax_sessions = 256\n");
        round_trips(&s, calls, "no audit log").await;
        process_reads(&s, calls).await;
        let s2 = Setup::new("");
        round_trips(&s2, calls, "audit log (fsync per record)").await;

        let (c, pid) = s.connect_with_pid(Human::Absent).await;
        create(&c).await;
        let before = rss_kib(pid);
        let t = Instant::now();
        for _ in 0..idle {
            create(&c).await;
        }
        let created = t.elapsed();
        tokio::time::sleep(Duration::from_millis(300)).await;
        println!(
            "server RSS: {:.1} MiB with 1 session, {:.1} MiB with {} idle sessions; their processes (a keeper and a shell each) {:.1} MiB PSS in total; session_create took {:.1} ms each",
            before as f64 / 1024.0,
            rss_kib(pid) as f64 / 1024.0,
            idle + 1,
            descendants_pss_kib(pid) as f64 / 1024.0,
            ms(created) / idle as f64,
        );
        c.cancel().await.ok();
    });
}
