//! What the egress broker costs `npm ci` of a 50-package lockfile from a real registry on
//! this machine (`verdaccio` on Node 22, as `scripts/test.sh` installs it): a local session
//! whose connections go through the broker against the same install under `workspace-net`
//! (the host's network, nothing decided). Each install starts from an empty `node_modules`
//! and an empty npm cache. Prints; nothing here asserts a time.
//!
//! `EXECKIT_TEST_VERDACCIO=… EXECKIT_TEST_NODE22=… cargo bench -p execkit-runner --bench
//! egress_npm` runs 5 installs per mode; without `--bench` (as `cargo test` runs it), 1
//! install of a 10-package lockfile.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // bench code: a failure is a failed run

use execkit_runner::sandbox::Profile;
use execkit_runner::Session;
use std::time::{Duration, Instant};

#[path = "common/measure.rs"]
mod measure;
#[path = "common/egress_setup.rs"]
mod setup;
#[path = "../tests/support/verdaccio.rs"]
mod verdaccio;
use measure::pct;
use setup::{report, run};

const PACKAGES: usize = 50;

/// `ek-p00` … (`n` of them), each after the first depending on two earlier ones.
fn packages(n: usize) -> Vec<verdaccio::Package> {
    (0..n)
        .map(|i| {
            let mut deps: Vec<String> = [i / 2, i / 3]
                .into_iter()
                .filter(|&d| d < i)
                .map(|d| format!("ek-p{d:02}"))
                .collect();
            deps.dedup();
            (format!("ek-p{i:02}"), deps)
        })
        .collect()
}

/// Wall time of each of `runs` `npm ci` from an empty cache into an empty `node_modules`.
async fn installs(s: &Session, host: &str, port: u16, runs: usize) -> Vec<Duration> {
    let mut times = Vec::new();
    for _ in 0..runs {
        run(s, "rm -rf node_modules .npm-cache").await;
        let cmd = format!(
            "npm ci --no-audit --no-fund --fetch-retries=0 --cache .npm-cache --registry http://{host}:{port}/"
        );
        let t = Instant::now();
        let r = run(s, &cmd).await;
        times.push(t.elapsed());
        assert!(r.runtime_denials.is_empty(), "{r:?}");
    }
    times.sort();
    times
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if !setup::have_registry(&["EXECKIT_TEST_VERDACCIO", "EXECKIT_TEST_NODE22"]) {
        return;
    }
    let full = std::env::args().any(|a| a == "--bench");
    let (runs, count) = if full { (5, PACKAGES) } else { (1, 10) };
    let bin = std::env::var("EXECKIT_TEST_VERDACCIO")
        .expect("set EXECKIT_TEST_VERDACCIO (scripts/test.sh installs verdaccio)");
    let node22 = std::env::var("EXECKIT_TEST_NODE22").expect("set EXECKIT_TEST_NODE22");
    let reg = verdaccio::Registry::start(&bin, &node22, "bench");
    let pkgs = packages(count);
    reg.publish(&pkgs);
    let names: Vec<&str> = pkgs.iter().map(|(n, _)| n.as_str()).collect();
    let dir = std::env::temp_dir().join(format!("ek-bench-npm-{}", std::process::id()));
    let (ws_b, ws_o) = (dir.join("brokered"), dir.join("open"));
    for (ws, host) in [(&ws_b, "registry.test"), (&ws_o, "127.0.0.1")] {
        std::fs::create_dir_all(ws).unwrap();
        reg.locked_project(ws, &names, host);
    }
    let brokered = setup::session(&ws_b, Profile::Workspace).await;
    let open = setup::session(&ws_o, Profile::WorkspaceNet).await;
    // One warm-up install each (npm's own start, the registry's first answers).
    installs(&brokered, "registry.test", reg.port, 1).await;
    installs(&open, "127.0.0.1", reg.port, 1).await;
    let (mut b, mut o) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        b.extend(installs(&brokered, "registry.test", reg.port, 1).await);
        o.extend(installs(&open, "127.0.0.1", reg.port, 1).await);
    }
    b.sort();
    o.sort();
    let installed = run(&brokered, "ls node_modules | wc -l").await.stdout;
    println!(
        "npm ci of a {count}-package lockfile ({} installed) from a local verdaccio:",
        installed.trim()
    );
    report("  through the broker (network = policy)", &b);
    report("  workspace-net (nothing decided)      ", &o);
    let ratio = pct(&b, 0.5).as_secs_f64() / pct(&o, 0.5).as_secs_f64();
    println!("  broker / open (medians): {ratio:.3}");
    brokered.close().await;
    open.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}
