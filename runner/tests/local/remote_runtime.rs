//! Runtime decisions on the remote transports, against the real sshd and dockerd of
//! `scripts/test.sh`: the helper on the target holds the exec listener and asks the server
//! about each program a command starts, so a script written and then run by an allowed
//! program meets the same policies as the command text, over SSH and in a container.

use crate::common::*;
use crate::remote_sessions::{ci, docker_fixture, ssh_fixture, ssh_home};
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
pub(crate) async fn ssh_session() -> Option<(Session, std::path::PathBuf)> {
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

/// The write-then-run attacks over SSH, each in a fresh session whose workspace is a new
/// directory in the account's home: each refused, the home untouched.
#[tokio::test]
async fn ssh_write_then_run_attacks_are_refused() {
    use crate::write_then_run::{attempt, Stopped, ATTACKS};
    let Some((t, _)) = ssh_fixture() else {
        return;
    };
    let home = ssh_home(&t.user);
    let mut at_start = 0;
    for attack in ATTACKS {
        let (s, ws) = ssh_session().await.unwrap();
        let missing: Vec<_> = {
            let mut m = Vec::new();
            for p in attack.needs {
                if run(&s, &format!("command -v {p}")).await.exit_code != Some(0) {
                    m.push(*p);
                }
            }
            m
        };
        if !missing.is_empty() {
            assert!(!ci(), "{}: CI=true but {missing:?} is missing", attack.name);
            s.close().await;
            continue;
        }
        if attempt(&s, attack, "ssh").await == Stopped::AtStart {
            at_start += 1;
        }
        assert!(
            home.join(".bashrc").exists() && home.join(".ssh/id_ed25519").exists(),
            "{}: the home was harmed",
            attack.name
        );
        s.close().await;
        let _ = std::fs::remove_dir_all(ws);
    }
    eprintln!(
        "ssh: {at_start} of {} refused at the harmful program's start",
        ATTACKS.len()
    );
    assert!(at_start * 2 > ATTACKS.len(), "{at_start}");
}

/// The write-then-run attacks the test image can run (it has a shell, coreutils, find,
/// xargs and git), each in a fresh ephemeral container: each refused, the home kept.
#[tokio::test]
async fn docker_write_then_run_attacks_are_refused() {
    use crate::write_then_run::{attempt, Stopped, ATTACKS};
    if docker_fixture().is_none() {
        return;
    }
    let runnable: Vec<_> = ATTACKS
        .iter()
        .filter(|a| a.needs.iter().all(|p| *p == "git"))
        .collect();
    let mut at_start = 0;
    for attack in &runnable {
        let s = docker_session().await.unwrap();
        if attempt(&s, attack, "docker").await == Stopped::AtStart {
            at_start += 1;
        }
        let r = ok(&s, "cd ~ && pwd").await;
        assert_eq!(
            r.stdout, "/home/runner\n",
            "{}: the home was harmed",
            attack.name
        );
        s.close().await;
    }
    eprintln!(
        "docker: {at_start} of {} refused at the harmful program's start",
        runnable.len()
    );
    assert!(at_start * 2 > runnable.len(), "{at_start}");
}
