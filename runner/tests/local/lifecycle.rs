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
        s.exec("echo hi").await,
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
