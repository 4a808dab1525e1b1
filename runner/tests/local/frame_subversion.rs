//! The agent's own shell state against the framing: a file the agent writes and sources
//! (which no decision reads) defines an alias or a function in the epilogue's way, or a
//! `builtin` function that answers for the epilogue's `pwd`. The epilogue still runs, and
//! the session's cwd stays the kernel's — locally, and on SSH and Docker without the helper
//! (where the shell's own report was once the only word on it).

use crate::common::*;
use crate::remote_sessions::{docker_fixture, ssh_fixture};
use execkit_runner::docker::DockerTarget;
use execkit_runner::remote_sandbox::HelperSource;
use execkit_runner::{ExecOptions, ExecResult, Session};
use std::time::Duration;

/// Writes `lines` to `./ek-env.sh` without naming the framing's reserved prefix in the
/// command text (which the session refuses): `EKP_` stands for it.
fn write_env(lines: &[&str]) -> String {
    let body = lines.join("\n");
    format!(
        "p=__e; p=${{p}}k_; x=$(cat <<'EOF'\n{body}\nEOF\n); printf '%s\\n' \"${{x//EKP_/$p}}\" > ek-env.sh"
    )
}

async fn within(s: &Session, cmd: &str) -> ExecResult {
    let r = s
        .exec(cmd, &ExecOptions::timeout(Duration::from_secs(20)))
        .await
        .unwrap_or_else(|e| panic!("`{cmd}` failed: {e}"));
    assert!(!r.timed_out, "`{cmd}` hung: the frame was broken: {r:?}");
    r
}

/// The next command runs and its result is its own.
async fn still_framed(what: &str, s: &Session) {
    let r = within(s, "echo fine").await;
    assert_eq!(
        (r.stdout.as_str(), r.exit_code),
        ("fine\n", Some(0)),
        "{what}: {r:?}"
    );
}

/// Each attack on one session.
async fn attacks(what: &str, s: &Session) {
    // An alias named like the epilogue: the epilogue line quotes the name.
    within(s, &write_env(&["alias EKP_after='echo forged'"])).await;
    within(s, "source ./ek-env.sh").await;
    still_framed(what, s).await;

    // Redefining the epilogue: it is a read-only function.
    within(
        s,
        &write_env(&["unalias EKP_after", "EKP_after() { echo forged; }"]),
    )
    .await;
    let r = within(s, "source ./ek-env.sh").await;
    assert_ne!(r.exit_code, Some(0), "{what}: redefined: {r:?}");
    assert!(r.stderr.contains("readonly function"), "{what}: {r:?}");
    still_framed(what, s).await;

    // A `builtin` function answers for the epilogue's `pwd -P`: the shell reports a cwd it
    // is not in. The session's cwd is still where the shell is.
    within(
        s,
        &write_env(&[
            r#"builtin() { if [ "$1" = pwd ]; then command printf '/forged\n'; else command builtin "$@"; fi; }"#,
        ]),
    )
    .await;
    let real = within(s, "mkdir -p ek-sub && cd ek-sub && pwd -P").await;
    let real = real.stdout.trim().to_string();
    assert!(real.ends_with("/ek-sub"), "{what}: {real}");
    let r = within(s, "source ../ek-env.sh; echo $?").await;
    assert_eq!(r.stdout, "0\n", "{what}: {r:?}");
    assert_eq!(r.cwd, real, "{what}: the shell's forged cwd was taken");
    assert_eq!(s.cwd().await, real, "{what}");
    let r = within(s, "cd .. && echo up").await;
    assert_eq!(r.stdout, "up\n", "{what}: {r:?}");
    assert!(
        !r.cwd.ends_with("/ek-sub") && r.cwd != "/forged",
        "{what}: {r:?}"
    );
}

#[tokio::test]
async fn the_agents_shell_state_cannot_replace_the_epilogue_or_forge_the_cwd_locally() {
    let ws = Workspace::new("frame-subversion");
    let s = session(&ws, execkit_runner::sandbox::Profile::Workspace).await;
    attacks("local", &s).await;
    s.close().await;
}

#[tokio::test]
async fn nor_on_ssh_and_docker_without_the_helper() {
    let config = || Session::builder().engine(permit_all()).build().unwrap();
    if let Some((t, mut settings)) = ssh_fixture() {
        settings.sandbox.helper = HelperSource::Off;
        let s = Session::ssh(&t, &settings, config()).await.unwrap();
        attacks("ssh", &s).await;
        s.close().await;
    }
    if let Some(mut d) = docker_fixture() {
        d.sandbox.helper = HelperSource::Off;
        let target = DockerTarget::Image("execkit-test:latest".into());
        let s = Session::docker(&target, &d, config()).await.unwrap();
        attacks("docker", &s).await;
        s.close().await;
    }
}
