//! Background processes, measured end to end on a warm sandboxed session under the
//! shipped `default` policies: start-to-first-byte of `echo hi` (decision, the wrapper
//! through the shell, the FIFOs, the protection pipeline), and a gigabyte of lines through
//! a process's pipe with the buffers bounded. Prints numbers; asserts no time.
//!
//! `cargo bench -p execkit-runner --bench processes` for the full run (300 starts, 1 GiB);
//! without `--bench` (as under `cargo test --all-targets`) a short smoke run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a failed test

use execkit_runner::process::{Cursor, WaitReason};
use execkit_runner::{Session, SpawnOptions};
use std::time::{Duration, Instant};

#[path = "common/measure.rs"]
mod measure;
use measure::{engine, pct, peak_rss_kib};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (starts, bytes) = if full {
        (300, 1u64 << 30)
    } else {
        (10, 16u64 << 20)
    };
    let ws = std::env::temp_dir().join(format!("execkit-bench-proc-{}", std::process::id()));
    std::fs::create_dir_all(&ws).unwrap();
    let s = Session::builder()
        .workspace(&ws)
        .engine(engine())
        .local()
        .await
        .expect("session");
    let opts = SpawnOptions::default();
    let mut first_byte = Vec::with_capacity(starts);
    let mut started = Vec::with_capacity(starts);
    for i in 0..starts + 10 {
        let t = Instant::now();
        let p = s.spawn("echo hi", &opts).await.unwrap();
        let spawned = t.elapsed();
        let w = p
            .wait(
                Duration::from_secs(10),
                Some(&execkit_runner::process::until_pattern("hi").unwrap()),
                Some(Cursor::default()),
                None,
            )
            .await;
        let seen = t.elapsed();
        assert_eq!(w.reason, WaitReason::Matched);
        p.wait(Duration::from_secs(10), None, None, Some(0)).await;
        if i >= 10 {
            started.push(spawned);
            first_byte.push(seen);
        }
    }
    started.sort();
    first_byte.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "spawn `echo hi` returns ({starts} runs)       p50 {:>7.3} ms  p99 {:>7.3} ms",
        ms(pct(&started, 0.5)),
        ms(pct(&started, 0.99))
    );
    println!(
        "start to first byte of `echo hi`          p50 {:>7.3} ms  p99 {:>7.3} ms",
        ms(pct(&first_byte, 0.5)),
        ms(pct(&first_byte, 0.99))
    );

    // Lines of 100 bytes, like a chatty dev server.
    let line = "x".repeat(99);
    let cmd = format!("yes {line} | head -c {bytes}");
    let rss_before = peak_rss_kib();
    let t = Instant::now();
    let p = s.spawn(&cmd, &opts).await.unwrap();
    let w = p.wait(Duration::from_secs(600), None, None, Some(0)).await;
    let wall = t.elapsed();
    assert_eq!(w.reason, WaitReason::Exited);
    let info = p.info();
    assert_eq!(info.stdout.raw_bytes, bytes);
    println!(
        "{:<40} {:.2} s  ({:.0} MB/s)  peak RSS {:.1} MiB (before {:.1} MiB)",
        format!("{} MiB of lines through a process", bytes >> 20),
        wall.as_secs_f64(),
        bytes as f64 / wall.as_secs_f64() / 1e6,
        peak_rss_kib() as f64 / 1024.0,
        rss_before as f64 / 1024.0
    );
    s.close().await;
    let _ = std::fs::remove_dir_all(&ws);
}
