//! Persistent sessions over SSH and in Docker, against the real sshd and dockerd that
//! `scripts/test.sh` starts: the same state, framing, hostile-output, timeout, policy and
//! cleanup behaviour as local sessions, on each remote transport.

use crate::common::*;
use base64::Engine as _;
use execkit_runner::docker::{DockerSettings, DockerTarget};
use execkit_runner::known_hosts::KnownHosts;
use execkit_runner::Session;
use std::path::PathBuf;
use std::time::Duration;

pub(crate) fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

#[path = "../support/ssh.rs"]
mod ssh_support;
pub(crate) use ssh_support::{ssh_fixture, ssh_home};

pub(crate) fn docker_fixture() -> Option<DockerSettings> {
    let Some(dir) = std::env::var_os("EXECKIT_TEST_DOCKER_DIR").map(PathBuf::from) else {
        assert!(
            !ci(),
            "CI=true but no test dockerd (scripts/test.sh starts one)"
        );
        return None;
    };
    let mut s = DockerSettings::new(format!("unix://{}", dir.join("docker.sock").display()));
    // The workspace bound at /work in ephemeral containers, writable by the image's user.
    let ws = std::env::temp_dir().join(format!("ek-docker-ws-{}", rand_u64()));
    std::fs::create_dir_all(&ws).unwrap();
    std::os::unix::fs::chown(&ws, Some(1000), Some(1000)).unwrap();
    s.workspace = Some(ws);
    Some(s)
}

/// One session per remote transport available here, with the given engine.
async fn sessions(engine: std::sync::Arc<execkit_runner::Engine>) -> Vec<(&'static str, Session)> {
    let mut out = Vec::new();
    let config = || {
        Session::builder()
            .engine(engine.clone())
            .build()
            .expect("config")
    };
    if let Some((t, s)) = ssh_fixture() {
        out.push((
            "ssh",
            Session::ssh(&t, &s, config()).await.expect("ssh session"),
        ));
    }
    if let Some(s) = docker_fixture() {
        let target = DockerTarget::Image("execkit-test:latest".into());
        out.push((
            "docker",
            Session::docker(&target, &s, config())
                .await
                .expect("docker session"),
        ));
    }
    out
}

#[tokio::test]
async fn state_persists_and_streams_stay_separate() {
    for (name, s) in sessions(permit_all()).await {
        let r = ok(&s, "cd /tmp && export X=remote && f() { echo \"f:$1\"; }").await;
        assert_eq!(r.stdout, "", "{name}");
        let r = ok(&s, "echo $X; pwd; f 1; echo err >&2").await;
        assert_eq!(r.stdout, "remote\n/tmp\nf:1\n", "{name}");
        assert_eq!(r.stderr, "err\n", "{name}");
        assert_eq!(r.cwd, "/tmp", "{name}");
        let r = run(&s, "exit_with() { return 42; }; exit_with").await;
        assert_eq!(r.exit_code, Some(42), "{name}");
        // The remote helper holds the shell under the sandbox there.
        let e = s.info().await.enforcement;
        assert_ne!(
            e.level,
            execkit_runner::sandbox::Level::None,
            "{name}: {e:?}"
        );
        assert!(e.filesystem && e.seccomp && e.no_new_privs, "{name}: {e:?}");
        s.close().await;
    }
}

#[tokio::test]
async fn policies_see_the_transport_and_deny_before_anything_runs() {
    for (name, s) in sessions(default_policies()).await {
        let notes = s.info().await.enforcement.notes.join("; ");
        assert!(
            notes.contains("enforced on the target by execkit-helper"),
            "{name}: {notes}"
        );
        if name != "ssh" {
            s.close().await;
            continue;
        }
        // The default set runs commands over SSH only on hosts the operator approved.
        let d = s.decide("ls").await;
        assert_eq!(d.verdict, execkit_runner::Verdict::Deny, "{d:?}");
        assert!(
            d.blocking_policy_ids().contains(&"ssh-only-approved-hosts"),
            "{d:?}"
        );
        let marker = std::env::temp_dir().join(format!("ek-denied-{}", rand_u64()));
        let r = s
            .exec(
                &format!("touch {} && echo ran", marker.display()),
                &Default::default(),
            )
            .await;
        assert!(r.is_err(), "{r:?}");
        assert!(!marker.exists(), "a denied command ran");
        s.close().await;
    }
}

#[tokio::test]
async fn closing_an_ssh_session_kills_what_it_started() {
    let Some((t, settings)) = ssh_fixture() else {
        return;
    };
    let config = Session::builder().engine(permit_all()).build().unwrap();
    let s = Session::ssh(&t, &settings, config).await.unwrap();
    let marker = format!("300.{}", rand_u64() % 100_000);
    ok(
        &s,
        &format!("sleep {marker} >/dev/null 2>&1 & (sleep {marker}1 >/dev/null 2>&1 &) ; true"),
    )
    .await;
    // The sshd is on this machine: its processes are in this /proc.
    let alive = || -> usize {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| {
                std::fs::read(e.path().join("cmdline"))
                    .map(|c| String::from_utf8_lossy(&c).contains(&marker))
                    .unwrap_or(false)
            })
            .count()
    };
    // The subshell's `sleep` may not have replaced its forked shell yet when the command
    // returns (its cmdline is the shell's until the exec): wait for both to show.
    let started = std::time::Instant::now() + Duration::from_secs(5);
    while alive() < 2 && std::time::Instant::now() < started {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(alive(), 2);
    s.close().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while alive() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "remote processes survived close"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The parent of a process on this machine (the test sshd runs here).
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Drops the session's SSH connection from the server side: kills the sshd processes
/// that serve it (the helper's parent and the privileged monitor above it), and the
/// helper.
fn drop_connection(shell: i32) {
    let sshd = parent_of(shell).expect("the shell's sshd");
    let monitor = parent_of(sshd).expect("sshd's monitor");
    let status = std::process::Command::new("kill")
        .arg("-KILL")
        .args([monitor, sshd, shell].map(|p| p.to_string()))
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn a_dropped_connection_ends_the_command_and_restart_connects_again() {
    let Some((t, settings)) = ssh_fixture() else {
        return;
    };
    let config = Session::builder().engine(permit_all()).build().unwrap();
    let s = std::sync::Arc::new(Session::ssh(&t, &settings, config).await.unwrap());
    ok(&s, "export STATE=old").await;
    let shell = s.info().await.helper_pid.unwrap();
    let dropper = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(400)).await;
        drop_connection(shell);
    });
    let r = run(&s, "echo started; sleep 30; echo never").await;
    dropper.await.unwrap();
    assert!(r.shell_exited, "{r:?}");
    assert_eq!(r.stdout, "started\n");
    assert!(r.duration_ms < 10_000, "{}", r.duration_ms);
    match s.exec("echo hi", &Default::default()).await {
        Err(execkit_runner::ExecError::ShellGone(why)) => {
            assert!(
                why.contains("connection to the remote host was lost"),
                "{why}"
            )
        }
        other => panic!("{other:?}"),
    }
    // `restart` connects again (a new shell: the old state is gone).
    s.restart().await.unwrap();
    assert_eq!(ok(&s, "echo ${STATE:-fresh}").await.stdout, "fresh\n");
    // ... with the same host-key check: after another drop, a key that no longer matches
    // known_hosts is refused and nothing reconnects.
    let shell = s.info().await.helper_pid.unwrap();
    drop_connection(shell);
    let r = run(&s, "sleep 5").await;
    assert!(r.shell_exited, "{r:?}");
    let dir = PathBuf::from(std::env::var_os("EXECKIT_TEST_SSHD_DIR").unwrap());
    let other = std::fs::read_to_string(dir.join("other_key.pub")).unwrap();
    let mut f = other.split_whitespace();
    let (kt, kb) = (f.next().unwrap(), f.next().unwrap());
    let blob = base64::engine::general_purpose::STANDARD
        .decode(kb)
        .unwrap();
    std::fs::write(
        &settings.known_hosts,
        KnownHosts::line_for("127.0.0.1", t.port, kt, &blob) + "\n",
    )
    .unwrap();
    let e = s.restart().await.unwrap_err();
    assert!(e.to_string().contains("HOST KEY CHANGED"), "{e}");
    s.close().await;
}

/// Without a cgroup of ours on the target, the operator's limits are hard rlimits the
/// remote shell sets on itself: reported as the remote kernel has them, binding every
/// command, and not raisable by the (non-root) account.
#[tokio::test]
async fn remote_sessions_get_the_operators_limits_as_hard_rlimits() {
    let mut resources = execkit_runner::Resources::unlimited();
    resources.open_files = Some(200);
    resources.file_bytes = Some(1 << 20);
    resources.processes = Some(5000);
    let mut limits = execkit_runner::Limits::default();
    limits.resources = resources;
    let config = || {
        Session::builder()
            .engine(permit_all())
            .limits(limits)
            .build()
            .unwrap()
    };
    let mut sessions = Vec::new();
    if let Some((t, s)) = ssh_fixture() {
        sessions.push(("ssh", Session::ssh(&t, &s, config()).await.unwrap()));
    }
    if let Some(s) = docker_fixture() {
        let target = DockerTarget::Image("execkit-test:latest".into());
        sessions.push((
            "docker",
            Session::docker(&target, &s, config()).await.unwrap(),
        ));
    }
    for (name, s) in sessions {
        let e = s.info().await.enforcement;
        assert_eq!(e.resources.open_files, Some(200), "{name}: {e:?}");
        assert_eq!(e.resources.file_bytes, Some(1 << 20), "{name}: {e:?}");
        assert_eq!(e.resources.processes, Some(5000), "{name}: {e:?}");
        let r = ok(&s, "ulimit -Hn; ulimit -Hf; ulimit -Hu").await;
        assert_eq!(r.stdout, "200\n1024\n5000\n", "{name}");
        // A command cannot raise them again...
        let r = run(&s, "ulimit -n 4096").await;
        assert_ne!(r.exit_code, Some(0), "{name}: raised its own limit: {r:?}");
        // ...and a file past the size limit stops there.
        let r = run(
            &s,
            "cd \"${TMPDIR:-/tmp}\"; head -c 3000000 /dev/zero > ek-big; echo $?; wc -c < ek-big; rm -f ek-big",
        )
        .await;
        let lines: Vec<&str> = r.stdout.lines().collect();
        assert_ne!(lines.first(), Some(&"0"), "{name}: {r:?}");
        assert_eq!(lines.get(1), Some(&"1048576"), "{name}: {r:?}");
        s.close().await;
    }
}
