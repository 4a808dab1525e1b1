//! Local session latency and throughput, measured end to end (parse + Cedar decision +
//! framing + shell + protection), on a warm sandboxed session under the shipped `default`
//! policies. Prints p50/p99 and throughput; nothing here asserts a time.
//!
//! `cargo bench -p execkit-runner --bench session` runs the full measurement (1,000 round
//! trips per command, 50 session starts, 1 GiB through a session). Under `cargo test`
//! (no `--bench` argument) it runs a small smoke version.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a failed test

use execkit_engine::{Engine, PolicyBundle};
use execkit_runner::{ExecOptions, Session, Stages};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn permit_all() -> Arc<Engine> {
    let bundle = PolicyBundle::from_files(
        (execkit_policies::SCHEMA_FILE, execkit_policies::SCHEMA),
        &[(
            "all.cedar",
            "@id(\"permit-all\") permit(principal, action, resource);",
        )],
        "[]",
    );
    Arc::new(Engine::new(&bundle).expect("permit-all"))
}

fn report(label: &str, mut v: Vec<Duration>) {
    v.sort();
    println!(
        "{label:<40} n={:<5} p50 {:>8.3} ms  p99 {:>8.3} ms  max {:>8.3} ms",
        v.len(),
        pct(&v, 0.50).as_secs_f64() * 1e3,
        pct(&v, 0.99).as_secs_f64() * 1e3,
        v[v.len() - 1].as_secs_f64() * 1e3
    );
}

/// The p50 of each stage of `runs` execs of `cmd` (see [`Stages`]), as a Markdown table.
async fn stage_breakdown(s: &Session, cmd: &str, runs: usize) {
    let opts = ExecOptions::default();
    let mut all: Vec<Stages> = Vec::with_capacity(runs);
    for _ in 0..runs {
        all.push(s.exec(cmd, &opts).await.unwrap().stages);
    }
    let p50 = |f: fn(&Stages) -> u64| {
        let mut v: Vec<u64> = all.iter().map(f).collect();
        v.sort_unstable();
        v[v.len() / 2]
    };
    println!("\nstages of `{cmd}`, p50 of {runs} runs (µs):");
    println!("| parse | live queries | live lookups | decide | audit decision | checkpoint | run | protect | audit command | total |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
        p50(|s| s.parse_us),
        p50(|s| s.live_queries_us),
        p50(|s| s.live_lookups_us),
        p50(|s| s.decide_us),
        p50(|s| s.audit_decision_us),
        p50(|s| s.checkpoint_us),
        p50(|s| s.run_us),
        p50(|s| s.protect_us),
        p50(|s| s.audit_command_us),
        p50(|s| s.total_us),
    );
}

#[path = "common/measure.rs"]
mod measure;
#[path = "../tests/support/ssh.rs"]
mod ssh_support;
use measure::{engine, pct, peak_rss_kib};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (runs, starts, bytes) = if full {
        (1000, 50, 1u64 << 30)
    } else {
        (50, 5, 32u64 << 20)
    };
    let ws = std::env::temp_dir().join(format!("execkit-bench-{}", std::process::id()));
    std::fs::create_dir_all(&ws).unwrap();
    let engine = engine();
    let config = Session::builder()
        .workspace(&ws)
        .engine(engine.clone())
        .build()
        .expect("config");

    let mut creation = Vec::new();
    for _ in 0..starts {
        let t = Instant::now();
        let s = Session::local(config.clone()).await.expect("session");
        creation.push(t.elapsed());
        s.close().await;
    }
    report("session creation (sandbox, PID ns, cgroup)", creation);

    let s = Session::local(config.clone()).await.expect("session");
    let info = s.info().await;
    let e = &info.enforcement;
    println!(
        "enforcement: {:?}, pid namespace {}, cgroup {:?}",
        e.level, e.pid_namespace, e.resources.cgroup
    );
    // The keeper (the shell's parent outside its PID namespace) is a fork of this process.
    if let Some(pid) = info.shell_pid {
        let ppid = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|t| {
                t.rsplit_once(") ")
                    .and_then(|(_, r)| r.split(' ').nth(1).map(str::to_string))
            });
        if let Some(ppid) = ppid {
            let rss = std::fs::read_to_string(format!("/proc/{ppid}/smaps_rollup"))
                .ok()
                .and_then(|t| {
                    t.lines()
                        .find(|l| l.starts_with("Private_Dirty:"))
                        .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
                });
            println!(
                "keeper private dirty memory: {} KiB",
                rss.unwrap_or_default()
            );
        }
    }
    let opts = ExecOptions::default();
    for cmd in ["true", "echo hi"] {
        for _ in 0..20 {
            s.exec(cmd, &opts).await.unwrap();
        }
        let mut v = Vec::with_capacity(runs);
        for _ in 0..runs {
            let t = Instant::now();
            let r = s.exec(cmd, &opts).await.unwrap();
            v.push(t.elapsed());
            assert_eq!(r.exit_code, Some(0));
        }
        report(&format!("round trip `{cmd}`"), v);
    }
    let mut d = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let _ = s.decide("echo hi").await;
        d.push(t.elapsed());
    }
    report("  of which parse + decision", d);
    for cmd in ["echo hi", "ls -la | head -3"] {
        stage_breakdown(&s, cmd, runs).await;
    }

    let cmd = format!("head -c {bytes} /dev/zero | tr '\\0' a");
    let t = Instant::now();
    let r = s
        .exec(&cmd, &ExecOptions::timeout(Duration::from_secs(600)))
        .await
        .unwrap();
    let wall = t.elapsed();
    assert_eq!(r.stdout_report.raw_bytes, bytes);
    println!(
        "{:<40} {:.2} s  ({:.0} MB/s)  peak RSS {:.1} MiB",
        format!("{} MiB through a session", bytes >> 20),
        wall.as_secs_f64(),
        bytes as f64 / wall.as_secs_f64() / 1e6,
        peak_rss_kib() as f64 / 1024.0
    );
    s.close().await;
    let _ = std::fs::remove_dir_all(&ws);

    // The remote transports, when the test servers of scripts/test.sh are running.
    // Policies are not what is measured here (and the default set refuses commands on
    // hosts the operator did not approve): permit everything.
    for (name, open, uncache) in remote_openers(permit_all()) {
        if let Some(uncache) = &uncache {
            // The first session on a host uploads the helper into the account's cache.
            let mut first = Vec::new();
            for _ in 0..starts.min(5) {
                uncache();
                let t = Instant::now();
                let s = open().await;
                first.push(t.elapsed());
                s.close().await;
            }
            report(&format!("{name}: session creation, upload"), first);
        }
        let mut creation = Vec::new();
        for _ in 0..starts.min(10) {
            let t = Instant::now();
            let s = open().await;
            creation.push(t.elapsed());
            s.close().await;
        }
        report(
            &format!(
                "{name}: session creation{}",
                if uncache.is_some() { ", cached" } else { "" }
            ),
            creation,
        );
        let s = open().await;
        for _ in 0..20 {
            s.exec("echo hi", &opts).await.unwrap();
        }
        let mut v = Vec::with_capacity(runs);
        for _ in 0..runs.min(300) {
            let t = Instant::now();
            let r = s.exec("echo hi", &opts).await.unwrap();
            v.push(t.elapsed());
            assert_eq!(r.exit_code, Some(0));
        }
        report(&format!("{name}: round trip `echo hi`"), v);
        let bytes = bytes.min(200 << 20);
        let cmd = format!("head -c {bytes} /dev/zero | tr '\\0' a");
        let t = Instant::now();
        let r = s
            .exec(&cmd, &ExecOptions::timeout(Duration::from_secs(600)))
            .await
            .unwrap();
        let wall = t.elapsed();
        assert_eq!(r.stdout_report.raw_bytes, bytes);
        println!(
            "{:<40} {:.2} s  ({:.0} MB/s)",
            format!("{name}: {} MiB through a session", bytes >> 20),
            wall.as_secs_f64(),
            bytes as f64 / wall.as_secs_f64() / 1e6
        );
        s.close().await;
    }
}

type Opener = Box<dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Session>>>>;

/// Removes the helper from the remote account's cache (the test sshd runs here).
type Uncache = Box<dyn Fn()>;

/// Session openers for the test sshd and dockerd, when their state directories are set:
/// with the remote helper (the default) and without it.
fn remote_openers(engine: Arc<Engine>) -> Vec<(&'static str, Opener, Option<Uncache>)> {
    use execkit_runner::remote_sandbox::HelperSource;
    let mut out: Vec<(&'static str, Opener, Option<Uncache>)> = Vec::new();
    if let Some((target, settings)) = ssh_support::ssh_fixture() {
        let home = ssh_support::ssh_home(&target.user);
        let cache = home.join(".cache/execkit");
        for (name, helper) in [
            ("ssh", HelperSource::Bundled),
            ("ssh, no helper", HelperSource::Off),
        ] {
            let (engine, target, mut settings) = (engine.clone(), target.clone(), settings.clone());
            let bundled = helper == HelperSource::Bundled;
            settings.sandbox.helper = helper;
            let cache = cache.clone();
            let uncache: Option<Uncache> = bundled.then(|| {
                Box::new(move || {
                    let _ = std::fs::remove_dir_all(&cache);
                }) as Uncache
            });
            out.push((
                name,
                Box::new(move || {
                    let (t, s, e) = (target.clone(), settings.clone(), engine.clone());
                    Box::pin(async move {
                        let config = Session::builder().engine(e).build().unwrap();
                        Session::ssh(&t, &s, config).await.unwrap()
                    })
                }),
                uncache,
            ));
        }
    }
    if let Some(dir) = std::env::var_os("EXECKIT_TEST_DOCKER_DIR").map(std::path::PathBuf::from) {
        for (name, helper) in [
            ("docker", HelperSource::Bundled),
            ("docker, no helper", HelperSource::Off),
        ] {
            let mut settings = execkit_runner::docker::DockerSettings::new(format!(
                "unix://{}",
                dir.join("docker.sock").display()
            ));
            settings.sandbox.helper = helper;
            let engine = engine.clone();
            out.push((
                name,
                Box::new(move || {
                    let (s, e) = (settings.clone(), engine.clone());
                    Box::pin(async move {
                        let config = Session::builder().engine(e).build().unwrap();
                        let t = execkit_runner::docker::DockerTarget::Image(
                            "execkit-test:latest".into(),
                        );
                        Session::docker(&t, &s, config).await.unwrap()
                    })
                }),
                None,
            ));
        }
    }
    out
}
