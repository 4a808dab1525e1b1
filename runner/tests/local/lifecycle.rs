//! Timeouts, cancel, a dying shell, and cleanup.

use crate::common::*;
use execkit_runner::sandbox::Profile;
use execkit_runner::{ExecError, Session};
use std::time::Duration;

#[tokio::test]
async fn shell_exit_is_reported_and_the_session_reopens() {
    let ws = Workspace::new("exit");
    let s = session(&ws, Profile::Workspace).await;
    let r = run(&s, "echo bye; exit 3").await;
    assert!(r.shell_exited);
    assert_eq!(r.exit_code, Some(3));
    assert_eq!(r.stdout, "bye\n");
    assert!(matches!(
        s.exec("echo hi", &Default::default()).await,
        Err(ExecError::ShellGone(_))
    ));
    s.restart().await.unwrap();
    assert_eq!(ok(&s, "echo back").await.stdout, "back\n");
    // The shell is PID 1 of the session's PID namespace: signals from inside do not end
    // it (`exit` does), so a stray `kill -9 $$` cannot lose the session's state.
    let r = run(&s, "export KEPT=1; kill -9 $$; echo still").await;
    assert!(!r.shell_exited, "{r:?}");
    assert_eq!(r.stdout, "still\n");
    assert_eq!(ok(&s, "echo $KEPT").await.stdout, "1\n");
    // Killed from outside (as the runner does), it is gone and the session reopens.
    let r = run(&s, "exit 0").await;
    assert!(r.shell_exited);
    s.restart().await.unwrap();
    assert_eq!(ok(&s, "echo again").await.stdout, "again\n");
    s.close().await;
}

/// A restart brings back the cwd and exported variables (not shell variables or
/// functions), after the shell exited and of a live one; what the policies refuse to bring
/// back stays out and is named.
#[tokio::test]
async fn a_restart_brings_back_the_cwd_and_the_exports() {
    let ws = Workspace::new("restart-state");
    std::fs::create_dir_all(ws.path().join("a/b")).unwrap();
    let s = session(&ws, Profile::Workspace).await;
    ok(
        &s,
        "cd a/b && export KEEP='two words' NL=$'x\\ny' && plain=1 && f() { :; }",
    )
    .await;
    let r = run(&s, "exit 4").await;
    assert!(r.shell_exited);
    let report = s.restart().await.unwrap();
    assert!(report.cwd.ends_with("/a/b"), "{report:?}");
    for want in ["cwd", "KEEP", "NL"] {
        assert!(report.restored.iter().any(|r| r == want), "{report:?}");
    }
    let r = ok(
        &s,
        "pwd; printf '%s|' \"$KEEP\" \"$NL\" \"${plain:-none}\"; type f 2>/dev/null || echo no-f",
    )
    .await;
    assert!(
        r.stdout.ends_with("/a/b\ntwo words|x\ny|none|no-f\n"),
        "{r:?}"
    );
    // A live shell: restarted in place, with what it exported since.
    ok(&s, "export LATER=yes && cd ..").await;
    let report = s.restart().await.unwrap();
    assert!(report.restored.iter().any(|r| r == "LATER"), "{report:?}");
    assert_eq!(
        ok(&s, "echo $LATER; pwd").await.stdout,
        format!("yes\n{}/a\n", ws.path().canonicalize().unwrap().display())
    );
    s.close().await;
    // The policies decide the restore: a variable they refuse as a command stays out.
    let engine = default_policies();
    let s = config(&ws, engine, Profile::Workspace)
        .local()
        .await
        .unwrap();
    ok(&s, "export SAFE=1").await;
    // Forged into the saved file, as an agent that removed the shell's EXIT trap could
    // write it: refused like the command it stands for.
    ok(&s, "trap - EXIT").await;
    let exports = s.info().await.tmp.join(".ek-exports");
    std::fs::write(&exports, "declare -x SAFE=\"1\"\n").unwrap();
    let mut text = std::fs::read_to_string(&exports).unwrap();
    text.push_str("declare -x LD_PRELOAD=\"/tmp/evil.so\"\n");
    std::fs::write(&exports, text).unwrap();
    let report = s.restart().await.unwrap();
    assert!(report.restored.iter().any(|r| r == "SAFE"), "{report:?}");
    assert!(
        report.refused.iter().any(|r| r.starts_with("LD_PRELOAD")),
        "{report:?}"
    );
    assert_eq!(ok(&s, "echo ${LD_PRELOAD:-unset}").await.stdout, "unset\n");
    s.close().await;
}

async fn spawn_leftovers(s: &Session) -> i32 {
    ok(
        s,
        "sleep 300 & (sleep 300 &) ; nohup sleep 300 >/dev/null 2>&1 & sleep 300 | cat &",
    )
    .await;
    let pid = s.info().await.shell_pid.unwrap();
    assert!(
        session_members(pid).len() >= 5,
        "{:?}",
        session_members(pid)
    );
    pid
}

#[tokio::test]
async fn close_leaves_no_process_behind() {
    let ws = Workspace::new("close");
    let s = session(&ws, Profile::Workspace).await;
    let pid = spawn_leftovers(&s).await;
    s.close().await;
    assert_eq!(session_members(pid), vec![], "processes left after close");
    assert!(proc_stat(pid).is_none(), "shell not reaped");
}

#[tokio::test]
async fn drop_leaves_no_process_behind() {
    let ws = Workspace::new("drop");
    let s = session(&ws, Profile::Workspace).await;
    let pid = spawn_leftovers(&s).await;
    drop(s);
    // The shell is reaped by the runtime in the background: give it a moment.
    let mut left = session_members(pid);
    for _ in 0..100 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        left = session_members(pid);
    }
    assert_eq!(left, vec![], "processes left after drop");
}

/// A shell that closes its own output is followed until it exits: the result has its real
/// exit code and duration, not 0.
#[tokio::test]
async fn a_shell_that_closes_its_output_is_timed_until_it_exits() {
    let ws = Workspace::new("closed-output");
    let s = session(&ws, Profile::Workspace).await;
    let r = run(&s, "exec >&- 2>&-; sleep 1; exit 4").await;
    assert!(r.shell_exited, "{r:?}");
    assert_eq!(r.exit_code, Some(4));
    assert!(r.duration_ms >= 900, "{}", r.duration_ms);
    s.close().await;
}
