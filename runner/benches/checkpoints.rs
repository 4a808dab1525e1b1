//! Checkpoints of a generated workspace: 10,000 files / 200 MiB in 100 directories. First
//! checkpoint, an incremental one after 10 files changed, and a restore of those 10 files.
//! Prints numbers; asserts correctness, never a time.
//!
//! `cargo bench -p execkit-runner --bench checkpoints` for the full run; without `--bench`
//! (as under `cargo test --all-targets`) a smoke run on 1,000 files / 2 MiB.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a failed test

use execkit_runner::Session;
use std::time::{Duration, Instant};

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (files, bytes_each) = if full {
        (10_000, 20 * 1024)
    } else {
        (1_000, 2 * 1024)
    };
    let ws = std::env::temp_dir().join(format!("execkit-bench-cp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&ws);
    let mut seed = 0x9e3779b97f4a7c15u64;
    for i in 0..files {
        let dir = ws.join(format!("d{:02}", i % 100));
        std::fs::create_dir_all(&dir).unwrap();
        // Source-like text, different per file (a workspace is mostly text).
        let mut data = String::with_capacity(bytes_each + 64);
        while data.len() < bytes_each {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            data.push_str(&format!(
                "    let value_{} = compute(input_{}, {}) + offset; // step {}\n",
                seed % 997,
                seed % 89,
                seed % 100_000,
                seed % 13
            ));
        }
        data.truncate(bytes_each);
        std::fs::write(dir.join(format!("f{i}.dat")), data).unwrap();
    }
    let s = Session::builder()
        .workspace(&ws)
        .local()
        .await
        .expect("session");
    let t = Instant::now();
    let first = s.checkpoint(Some("first")).await.unwrap();
    let first_t = t.elapsed();
    assert_eq!(first.files, files as u64);
    for i in 0..10 {
        std::fs::write(
            ws.join(format!("d{:02}/f{i}.dat", i % 100)),
            format!("changed {i}"),
        )
        .unwrap();
    }
    let t = Instant::now();
    let second = s.checkpoint(Some("after 10 changes")).await.unwrap();
    let incr_t = t.elapsed();
    assert_eq!(second.changed_since_previous, 10);
    for i in 0..10 {
        std::fs::write(
            ws.join(format!("d{:02}/f{i}.dat", i % 100)),
            format!("again {i}"),
        )
        .unwrap();
    }
    let t = Instant::now();
    let r = s.restore(&second.id).await.unwrap();
    let restore_t = t.elapsed();
    assert_eq!(r.written, 10);
    let t = Instant::now();
    let unchanged = s.checkpoint(None).await.unwrap();
    let noop_t = t.elapsed();
    assert_eq!(unchanged.changed_since_previous, 0);
    println!(
        "checkpoints of {files} files / {} MiB: first {:.0} ms · incremental after 10 changes {:.1} ms · restore of 10 files {:.1} ms · unchanged {:.1} ms",
        files * bytes_each / (1 << 20),
        ms(first_t),
        ms(incr_t),
        ms(restore_t),
        ms(noop_t)
    );
    s.close().await;
    let _ = std::fs::remove_dir_all(&ws);
}
