//! What the egress broker costs a package install: `pip install` of 20 packages from a
//! real index on this machine (`pypiserver`, as `scripts/test.sh` installs it) in a local
//! session whose network is its own and whose connections go through the broker, against
//! the same install under `workspace-net` (the host's network, nothing decided); and one
//! connection through the broker (a `CONNECT` answered, two decisions) against a direct
//! TCP connect, p50/p99. Prints; nothing here asserts a time.
//!
//! `EXECKIT_TEST_PYPISERVER=… cargo bench -p execkit-runner --bench egress` runs 5 installs
//! per mode and 500 connections; without `--bench`, 1 install and 50 connections.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // bench code: a failure is a failed run

use execkit_runner::sandbox::Profile;
use execkit_runner::{ExecOptions, Session};
use std::path::Path;
use std::time::{Duration, Instant};

#[path = "common/measure.rs"]
mod measure;
#[path = "../tests/support/pypiserver.rs"]
mod pypi;
#[path = "common/egress_setup.rs"]
mod setup;
#[path = "../tests/support/ssh.rs"]
mod ssh_support;
use measure::pct;
use setup::{policies, report, run};

const PACKAGES: usize = 20;

/// Writes `PACKAGES` small pure-Python wheels into `dir` (a module and its metadata each).
fn make_wheels(dir: &Path) {
    let script = r#"
import sys, zipfile, hashlib, base64
out = sys.argv[1]
for i in range(int(sys.argv[2])):
    name = f"ekbench{i:02d}"
    files = {
        f"{name}/__init__.py": ("VALUE = %d\n" % i) * 200,
        f"{name}-1.0.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
        f"{name}-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for p, t in files.items():
        h = base64.urlsafe_b64encode(hashlib.sha256(t.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{p},sha256={h},{len(t.encode())}")
    record.append(f"{name}-1.0.dist-info/RECORD,,")
    files[f"{name}-1.0.dist-info/RECORD"] = "\n".join(record) + "\n"
    with zipfile.ZipFile(f"{out}/{name}-1.0-py3-none-any.whl", "w") as z:
        for p, t in files.items():
            z.writestr(p, t)
"#;
    let st = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(dir)
        .arg(PACKAGES.to_string())
        .status()
        .unwrap();
    assert!(st.success());
}

/// A pypiserver on a free loopback port serving `dir`.
fn index(dir: &Path) -> (std::process::Child, u16) {
    let bin = std::env::var_os("EXECKIT_TEST_PYPISERVER")
        .expect("set EXECKIT_TEST_PYPISERVER (scripts/test.sh installs pypiserver)");
    pypi::start(bin.as_ref(), dir)
}

/// A local session with a virtual environment.
async fn session(ws: &Path, profile: Profile) -> Session {
    let s = setup::session(ws, profile).await;
    run(&s, "python3 -m venv .venv").await;
    s
}

/// An SSH session to the test sshd with `profile` (the helper's broker under `workspace`),
/// its workspace a fresh directory of the test account; `None` without a test sshd.
async fn ssh_session(profile: Profile, tag: &str) -> Option<Session> {
    let (t, mut settings) = ssh_support::ssh_fixture()?;
    settings.sandbox.workspace = Some(format!("~/bench-egress-{tag}-{}", std::process::id()));
    settings.sandbox.profile = profile;
    settings
        .sandbox
        .egress
        .hosts
        .insert("registry.test".into(), "127.0.0.1".parse().unwrap());
    let config = Session::builder().engine(policies()).build().unwrap();
    let s = Session::ssh(&t, &settings, config).await.unwrap();
    run(&s, "python3 -m venv .venv").await;
    Some(s)
}

/// The installs over SSH: through the helper's broker and under `workspace-net`.
async fn ssh_installs(port: u16, runs: usize) {
    let (Some(brokered), Some(open)) = (
        ssh_session(Profile::Workspace, "b").await,
        ssh_session(Profile::WorkspaceNet, "o").await,
    ) else {
        println!("ssh: no test sshd (EXECKIT_TEST_SSHD_DIR), skipped");
        return;
    };
    installs(&brokered, "registry.test", port, 1).await;
    installs(&open, "127.0.0.1", port, 1).await;
    let (mut b, mut o) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        b.extend(installs(&brokered, "registry.test", port, 1).await);
        o.extend(installs(&open, "127.0.0.1", port, 1).await);
    }
    b.sort();
    o.sort();
    println!("the same over SSH (the helper's broker, decisions by the server):");
    report("  through the helper's broker          ", &b);
    report("  workspace-net (nothing decided)      ", &o);
    let ratio = pct(&b, 0.5).as_secs_f64() / pct(&o, 0.5).as_secs_f64();
    println!("  broker / open (medians): {ratio:.3}");
    for s in [brokered, open] {
        let _ = s.exec("rm -rf \"$PWD\"", &ExecOptions::default()).await;
        s.close().await;
    }
}

/// Wall time of each of `runs` installs of every package into a fresh directory.
async fn installs(s: &Session, host: &str, port: u16, runs: usize) -> Vec<Duration> {
    let names: Vec<String> = (0..PACKAGES).map(|i| format!("ekbench{i:02}")).collect();
    let mut times = Vec::new();
    for i in 0..runs {
        let cmd = format!(
            "PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 .venv/bin/pip install -q --no-deps --target t{i} --index-url http://{host}:{port}/simple/ --trusted-host {host} {}",
            names.join(" ")
        );
        let t = Instant::now();
        run(s, &cmd).await;
        times.push(t.elapsed());
    }
    times.sort();
    times
}

/// Per-connection microseconds of `n` connections made by Python in the session: through
/// the broker (`CONNECT host:port` until its `200`), or direct.
async fn connects(
    (s, ws): (&Session, &Path),
    host: &str,
    port: u16,
    n: usize,
    brokered: bool,
) -> Vec<Duration> {
    let script = format!(
        r#"
import socket, time
for _ in range({n}):
    a = time.perf_counter()
    if {brokered}:
        c = socket.create_connection(("127.0.0.1", 3128))
        c.sendall(b"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n")
        assert c.recv(64).startswith(b"HTTP/1.1 200")
    else:
        c = socket.create_connection(("{host}", {port}))
    print(int((time.perf_counter() - a) * 1e6))
    c.close()
"#,
        brokered = if brokered { "True" } else { "False" }
    );
    std::fs::write(ws.join("conn.py"), script).unwrap();
    let r = run(s, "python3 conn.py").await;
    let mut out: Vec<Duration> = r
        .stdout
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .map(Duration::from_micros)
        .collect();
    out.sort();
    out
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if !setup::have_registry(&["EXECKIT_TEST_PYPISERVER"]) {
        return;
    }
    let full = std::env::args().any(|a| a == "--bench");
    let (runs, conns) = if full { (5, 500) } else { (1, 50) };
    let dir = std::env::temp_dir().join(format!("ek-bench-egress-{}", std::process::id()));
    let (wheels, ws_b, ws_o) = (dir.join("wheels"), dir.join("brokered"), dir.join("open"));
    for d in [&wheels, &ws_b, &ws_o] {
        std::fs::create_dir_all(d).unwrap();
    }
    make_wheels(&wheels);
    let (mut idx, port) = index(&wheels);
    let brokered = session(&ws_b, Profile::Workspace).await;
    let open = session(&ws_o, Profile::WorkspaceNet).await;
    // One warm-up install each (pip's own start, the index's first listing).
    installs(&brokered, "registry.test", port, 1).await;
    installs(&open, "127.0.0.1", port, 1).await;
    let mut b = Vec::new();
    let mut o = Vec::new();
    for _ in 0..runs {
        b.extend(installs(&brokered, "registry.test", port, 1).await);
        o.extend(installs(&open, "127.0.0.1", port, 1).await);
    }
    b.sort();
    o.sort();
    println!("pip install of {PACKAGES} packages from a local pypiserver:");
    report("  through the broker (network = policy)", &b);
    report("  workspace-net (nothing decided)      ", &o);
    let ratio = pct(&b, 0.5).as_secs_f64() / pct(&o, 0.5).as_secs_f64();
    println!("  broker / open (medians): {ratio:.3}");
    let cb = connects((&brokered, &ws_b), "registry.test", port, conns, true).await;
    let co = connects((&open, &ws_o), "127.0.0.1", port, conns, false).await;
    println!("one connection ({} each):", cb.len());
    println!(
        "  through the broker (CONNECT to 200): p50 {:?} p99 {:?}",
        pct(&cb, 0.5),
        pct(&cb, 0.99)
    );
    println!(
        "  direct (workspace-net):              p50 {:?} p99 {:?}",
        pct(&co, 0.5),
        pct(&co, 0.99)
    );
    brokered.close().await;
    open.close().await;
    ssh_installs(port, runs).await;
    let _ = idx.kill();
    let _ = idx.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
