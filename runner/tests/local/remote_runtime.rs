//! Runtime decisions on the remote transports, against the real sshd and dockerd of
//! `scripts/test.sh`: the helper on the target holds the exec listener and asks the server
//! about each program a command starts, so a script written and then run by an allowed
//! program meets the same policies as the command text, over SSH and in a container.

use crate::common::*;
use crate::remote_sessions::{docker_fixture, ssh_fixture, ssh_home};
use execkit_runner::docker::DockerTarget;
use execkit_runner::{ExecResult, RuntimeDenial, Session, Verdict};
use std::path::Path;

/// What the refusal of `program` looked like, if there was one.
fn refused<'a>(r: &'a ExecResult, program: &str) -> Option<&'a RuntimeDenial> {
    r.runtime_denials
        .iter()
        .find(|d| Path::new(&d.program).file_name().and_then(|n| n.to_str()) == Some(program))
}

/// An SSH session under the shipped default set, its workspace a fresh directory in the
/// test account's home, and that directory's path on this machine.
async fn ssh_session() -> Option<(Session, std::path::PathBuf)> {
    let (t, mut s) = ssh_fixture()?;
    let name = format!("ws-rt-{}", rand_u64());
    s.sandbox.workspace = Some(format!("~/{name}"));
    let config = Session::builder()
        .engine(default_policies_with_test_hosts())
        .build()
        .unwrap();
    let session = Session::ssh(&t, &s, config).await.unwrap();
    Some((session, ssh_home(&t.user).join(name)))
}

async fn docker_session() -> Option<Session> {
    let s = docker_fixture()?;
    let config = Session::builder()
        .engine(default_policies())
        .build()
        .unwrap();
    let target = DockerTarget::Image("execkit-test:latest".into());
    Some(Session::docker(&target, &s, config).await.unwrap())
}

/// Each check on one transport: runtime decisions are on, a script cannot delete the
/// account's home, a script cannot print the account's private key, and everyday
/// commands see no refusal while their programs are decided.
async fn attacks_refused(name: &str, s: &Session) {
    let e = s.info().await.enforcement;
    assert!(e.exec_decisions, "{name}: no runtime decisions: {e:?}");

    let r = run(s, "printf 'rm -rf ~\\n' > wipe.sh && bash wipe.sh").await;
    let d = refused(&r, "rm").unwrap_or_else(|| panic!("{name}: rm not refused: {r:?}"));
    assert_eq!(d.verdict, Verdict::Deny, "{name}: {d:?}");
    assert!(
        d.parents.iter().any(|p| p.ends_with(" bash")),
        "{name}: {d:?}"
    );
    let r = ok(s, "ls wipe.sh").await;
    assert_eq!(r.stdout, "wipe.sh\n", "{name}: the home was deleted");

    let r = run(s, "printf 'cat ~/.ssh/id_ed25519\\n' > k.sh && sh k.sh").await;
    let d = refused(&r, "cat").unwrap_or_else(|| panic!("{name}: cat not refused: {r:?}"));
    assert_eq!(d.verdict, Verdict::Deny, "{name}: {d:?}");
    assert!(!r.stdout.contains("fake-test-key"), "{name}: {r:?}");

    let r = ok(s, "printf 'x\\n' | sed s/x/y/ | grep -c y; ls -a | wc -l").await;
    assert!(r.runtime_denials.is_empty(), "{name}: {r:?}");
    assert!(r.runtime_allowed > 0, "{name}: nothing was decided: {r:?}");
}

#[tokio::test]
async fn ssh_scripts_meet_the_policies_as_their_programs_start() {
    let Some((s, ws)) = ssh_session().await else {
        return;
    };
    attacks_refused("ssh", &s).await;
    // A runtime ask with no one to ask is refused.
    ok(
        &s,
        "git init -q -b main . && git config user.email a@b && git config user.name a && git commit -q --allow-empty -m x && git init -q --bare remote.git && git remote add origin ./remote.git",
    )
    .await;
    let r = run(&s, "printf 'git push origin main\\n' > p.sh && bash p.sh").await;
    let d = refused(&r, "git").unwrap_or_else(|| panic!("{r:?}"));
    assert_eq!(d.verdict, Verdict::Ask, "{d:?}");
    s.close().await;
    assert!(ws.join("wipe.sh").exists(), "the workspace was deleted");
    let _ = std::fs::remove_dir_all(ws);
}

#[tokio::test]
async fn docker_scripts_meet_the_policies_as_their_programs_start() {
    let Some(s) = docker_session().await else {
        return;
    };
    attacks_refused("docker", &s).await;
    s.close().await;
}
