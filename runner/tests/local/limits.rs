//! Resource limits, tried as a careless or hostile agent would: a fork loop, a memory hog
//! and a file-size hog each stop at their limit with a result that says so in words, and
//! the session goes on working.

use super::common::*;
use execkit_runner::sandbox::{CgroupVersion, Profile};
use execkit_runner::{LimitHit, Limits, Resources, Session};

async fn limited(ws: &Workspace, r: Resources) -> Session {
    let mut l = Limits::default();
    l.resources = r;
    config(ws, permit_all(), Profile::Workspace)
        .limits(l)
        .local()
        .await
        .expect("session starts")
}

fn small() -> Resources {
    let mut r = Resources::unlimited();
    r.processes = Some(40);
    r.memory_bytes = Some(128 << 20);
    r.file_bytes = Some(10 << 20);
    r.open_files = Some(256);
    r
}

#[tokio::test]
async fn the_enforcement_report_says_which_limits_hold_and_how() {
    let ws = Workspace::new("limits-report");
    let s = limited(&ws, small()).await;
    let e = s.info().await.enforcement;
    // CI runs as root on a host with cgroups (v1 here, v2 where delegated).
    assert!(e.resources.cgroup.is_some(), "{e:?}");
    assert_eq!(e.resources.processes, Some(40));
    assert_eq!(e.resources.memory_bytes, Some(128 << 20));
    assert!(!e.resources.memory_per_process);
    assert_eq!(e.resources.file_bytes, Some(10 << 20));
    // bash counts `ulimit -f` in 1024-byte blocks.
    assert_eq!(ok(&s, "ulimit -n; ulimit -f").await.stdout, "256\n10240\n");
    s.close().await;
}

#[tokio::test]
async fn a_fork_loop_stops_at_the_process_limit_and_the_session_goes_on() {
    let ws = Workspace::new("limits-fork");
    let s = limited(&ws, small()).await;
    let bomb = "python3 -c '
import os, time
n = 0
try:
    while n < 1000:
        if os.fork() == 0:
            time.sleep(1)
            os._exit(0)
        n += 1
except OSError as e:
    print(\"refused after\", n, e.errno)
while True:
    try:
        os.wait()
    except ChildProcessError:
        break
'";
    let r = run(&s, bomb).await;
    assert!(r.stdout.starts_with("refused after"), "{r:?}");
    assert_eq!(
        r.limits_hit,
        vec![LimitHit::Processes { max_processes: 40 }]
    );
    assert!(r.limits_hit[0].to_string().contains("process limit 40"));
    assert_eq!(ok(&s, "echo still here").await.stdout, "still here\n");
    s.close().await;
}

#[tokio::test]
async fn a_memory_hog_is_killed_at_the_memory_limit_and_the_session_goes_on() {
    let ws = Workspace::new("limits-mem");
    let s = limited(&ws, small()).await;
    ok(&s, "export KEPT=yes").await;
    let r = run(&s, "python3 -c 'a = bytearray(512 << 20); print(len(a))'").await;
    assert_eq!(r.exit_code, Some(137), "{r:?}");
    assert_eq!(
        r.limits_hit,
        vec![LimitHit::Memory {
            limit_bytes: 128 << 20
        }]
    );
    assert_eq!(
        r.limits_hit[0].to_string(),
        "a process was killed: session memory limit 128 MiB reached"
    );
    assert_eq!(ok(&s, "echo $KEPT").await.stdout, "yes\n");
    s.close().await;
}

#[tokio::test]
async fn a_file_size_hog_is_stopped_at_the_file_limit_and_the_session_goes_on() {
    let ws = Workspace::new("limits-fsize");
    let s = limited(&ws, small()).await;
    let r = run(&s, "head -c 50M /dev/zero > big.bin").await;
    assert_eq!(r.exit_code, Some(128 + 25), "{r:?}");
    assert_eq!(
        r.limits_hit,
        vec![LimitHit::FileSize {
            limit_bytes: 10 << 20
        }]
    );
    assert_eq!(
        std::fs::metadata(ws.path().join("big.bin")).unwrap().len(),
        10 << 20
    );
    assert_eq!(ok(&s, "rm big.bin && echo gone").await.stdout, "gone\n");
    s.close().await;
}

#[tokio::test]
async fn session_cgroups_are_removed_when_the_session_ends() {
    let ws = Workspace::new("limits-rm");
    let s = limited(&ws, small()).await;
    let version = s.info().await.enforcement.resources.cgroup;
    let pid = s.info().await.shell_pid.unwrap();
    let groups: Vec<String> = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap()
        .lines()
        .filter(|l| l.contains("execkit-session-"))
        .map(str::to_string)
        .collect();
    assert!(
        !groups.is_empty(),
        "{version:?}: the shell is in no session cgroup"
    );
    let dirs: Vec<std::path::PathBuf> = groups
        .iter()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            f.next();
            let ctrl = f.next()?;
            let path = f.next()?;
            Some(match version {
                Some(CgroupVersion::V1) => {
                    std::path::PathBuf::from(format!("/sys/fs/cgroup/{ctrl}{path}"))
                }
                _ => std::path::PathBuf::from(format!("/sys/fs/cgroup{path}")),
            })
        })
        .collect();
    assert!(dirs.iter().all(|d| d.exists()), "{dirs:?}");
    s.close().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while dirs.iter().any(|d| d.exists()) {
        assert!(
            std::time::Instant::now() < deadline,
            "left behind: {dirs:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[tokio::test]
async fn a_workspace_over_its_disk_cap_only_runs_commands_that_free_space() {
    let ws = Workspace::new("limits-disk");
    let mut r = small();
    r.file_bytes = None;
    r.workspace_bytes = Some(5 << 20);
    let s = limited(&ws, r).await;
    let r = ok(&s, "head -c 8M /dev/urandom > big.bin").await;
    assert_eq!(
        r.limits_hit,
        vec![LimitHit::Workspace {
            limit_bytes: 5 << 20
        }]
    );
    assert!(r.limits_hit[0].to_string().contains("5 MiB cap"));
    let refused = s.exec("echo more > more.txt", &Default::default()).await;
    assert!(
        matches!(refused, Err(execkit_runner::ExecError::WorkspaceFull { limit_bytes }) if limit_bytes == 5 << 20),
        "{refused:?}"
    );
    assert!(!ws.path().join("more.txt").exists());
    // Looking and freeing space still run; then everything does again.
    ok(&s, "du -sh . && ls").await;
    let r = ok(&s, "rm big.bin").await;
    assert!(r.limits_hit.is_empty(), "{r:?}");
    assert_eq!(
        ok(&s, "echo more > more.txt && cat more.txt").await.stdout,
        "more\n"
    );
    s.close().await;
}
