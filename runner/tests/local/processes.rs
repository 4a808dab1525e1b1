//! Background processes (`Session::spawn`): start, incremental reads, stdin, signals,
//! waits, caps, the reaper, and no orphans — as an agent would use them, and as it would
//! abuse them.

use crate::common::*;
use execkit_runner::process::{
    until_pattern, Cursor, ProcessError, ProcessSignal, ProcessState, WaitReason,
};
use execkit_runner::sandbox::Profile;
use execkit_runner::{ExecError, ProcessLimits, Session, SpawnOptions};
use std::time::Duration;

fn opts() -> SpawnOptions {
    SpawnOptions::default()
}

async fn wait_exit(p: &execkit_runner::ProcessHandle) {
    let w = p.wait(Duration::from_secs(20), None, None, Some(0)).await;
    if w.reason != WaitReason::Exited {
        if let Some(g) = p.info().pgid {
            for m in group_members(g) {
                let st = std::fs::read_to_string(format!("/proc/{m}/status")).unwrap_or_default();
                let sig: Vec<&str> = st
                    .lines()
                    .filter(|l| {
                        l.starts_with("Sig") || l.starts_with("Name") || l.starts_with("State")
                    })
                    .collect();
                eprintln!("  {m}: {sig:?}");
            }
        }
    }
    assert_eq!(w.reason, WaitReason::Exited, "{:?}", p.info());
}

/// Waits until new output matches `pattern` (asserting it does within `secs`).
async fn matched(
    p: &execkit_runner::ProcessHandle,
    pattern: &str,
    secs: u64,
) -> execkit_runner::process::WaitOutcome {
    let re = until_pattern(pattern).unwrap();
    let w = p
        .wait(Duration::from_secs(secs), Some(&re), None, None)
        .await;
    assert_eq!(w.reason, WaitReason::Matched, "`{pattern}`: {:?}", w.output);
    w
}

fn alive(pid: i32) -> bool {
    proc_stat(pid).is_some()
}

#[tokio::test]
async fn a_process_inherits_cwd_variables_and_functions_and_reports_its_exit() {
    let ws = Workspace::new("proc-inherit");
    let s = session(&ws, Profile::Workspace).await;
    ok(
        &s,
        "mkdir sub && cd sub && export MODE=fast && PLAIN=yes && greet() { echo \"hi $1\"; }",
    )
    .await;
    let p = s
        .spawn("pwd; echo $MODE $PLAIN; greet you; exit 3", &opts())
        .await
        .unwrap();
    wait_exit(&p).await;
    let r = p.read(Some(Cursor::default()), None);
    assert_eq!(
        r.stdout,
        format!("{}/sub\nfast yes\nhi you\n", ws.path().display())
    );
    assert_eq!(
        r.state,
        ProcessState::Exited {
            code: Some(3),
            signal: None
        }
    );
    // The session is unharmed and its next command gets no job notice on stderr.
    let after = ok(&s, "echo next").await;
    assert_eq!(
        (after.stdout.as_str(), after.stderr.as_str()),
        ("next\n", "")
    );
    assert_eq!(after.background_jobs, 0);
    s.close().await;
}

#[tokio::test]
async fn reads_are_incremental_each_line_once_and_wait_until_sees_readiness() {
    let ws = Workspace::new("proc-incr");
    let s = session(&ws, Profile::Workspace).await;
    let p = s
        .spawn(
            "for i in 1 2 3; do echo line $i; sleep 0.2; done; echo 'Listening on 8080'; for i in 4 5 6; do echo line $i; sleep 0.2; done",
            &SpawnOptions::named("dev"),
        )
        .await
        .unwrap();
    let ready = until_pattern("Listening on \\d+").unwrap();
    let w = p
        .wait(Duration::from_secs(10), Some(&ready), None, None)
        .await;
    assert_eq!(w.reason, WaitReason::Matched);
    assert_eq!(w.matched.as_deref(), Some("Listening on 8080"));
    let mut seen = w.output.stdout.clone();
    // Poll with the server-side cursor until it ends: no line twice, none lost.
    loop {
        let r = p.read(None, Some(16));
        seen.push_str(&r.stdout);
        if r.state.exited() && r.more == 0 && r.stdout.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        seen,
        "line 1\nline 2\nline 3\nListening on 8080\nline 4\nline 5\nline 6\n"
    );
    assert_eq!(p.info().name.as_deref(), Some("dev"));
    s.close().await;
}

#[tokio::test]
async fn a_denied_spawn_starts_nothing() {
    let ws = Workspace::new("proc-deny");
    let s = config(&ws, default_policies(), Profile::Workspace)
        .local()
        .await
        .unwrap();
    let marker = ws.path().join("ran");
    let cmd = format!("touch {}; cat /etc/shadow", marker.display());
    match s.spawn(&cmd, &opts()).await {
        Err(ExecError::Denied(_)) => {}
        Err(e) => panic!("expected a denial, got {e}"),
        Ok(_) => panic!("a spawn reading /etc/shadow was started"),
    }
    assert!(s.processes().is_empty());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!marker.exists(), "something ran");
    // Reserved framing names and NUL bytes are refused before any decision.
    for bad in ["echo $__ek_p", "echo a\0b"] {
        assert!(matches!(
            s.spawn(bad, &opts()).await,
            Err(ExecError::Rejected(_))
        ));
    }
    s.close().await;
}

#[tokio::test]
async fn stdin_feeds_a_repl_and_close_ends_it() {
    let ws = Workspace::new("proc-repl");
    let s = session(&ws, Profile::Workspace).await;
    let p = s.spawn("python3 -u -i -q", &opts()).await.unwrap();
    for (expr, want) in [
        ("1+1", "2"),
        ("'ab'*3", "'ababab'"),
        ("sum(range(10))", "45"),
    ] {
        p.write_stdin(format!("{expr}\n").as_bytes(), false)
            .await
            .unwrap();
        let re = until_pattern(&format!("(?m)^{}$", regex_escape(want))).unwrap();
        let w = p.wait(Duration::from_secs(10), Some(&re), None, None).await;
        assert_eq!(w.reason, WaitReason::Matched, "{expr}: {:?}", w.output);
    }
    p.write_stdin(b"", true).await.unwrap();
    wait_exit(&p).await;
    assert_eq!(
        p.state(),
        ProcessState::Exited {
            code: Some(0),
            signal: None
        }
    );
    assert!(matches!(
        p.write_stdin(b"1\n", false).await,
        Err(ProcessError::StdinClosed(_))
    ));
    s.close().await;
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .map(|c| {
            if "\\.+*?()|[]{}^$'".contains(c) {
                format!("\\{c}")
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[tokio::test]
async fn a_flood_stays_within_the_buffer_with_exact_counts() {
    let ws = Workspace::new("proc-flood");
    let mut limits = execkit_runner::Limits::default();
    let mut pl = ProcessLimits::default();
    pl.head_bytes = 4096;
    pl.tail_bytes = 8192;
    limits.processes = pl;
    let s = config(&ws, permit_all(), Profile::Workspace)
        .limits(limits)
        .local()
        .await
        .unwrap();
    // `yes` flooding for 10 s, as fast as the pipe takes it.
    let p = s.spawn("timeout 10 yes", &opts()).await.unwrap();
    let w = p.wait(Duration::from_secs(30), None, None, Some(0)).await;
    assert_eq!(w.reason, WaitReason::Exited);
    assert_eq!(
        p.state(),
        ProcessState::Exited {
            code: Some(124),
            signal: None
        }
    );
    let i = p.info();
    // Exact: every byte read is accounted for, and every line is "y\n".
    assert!(
        i.stdout.raw_bytes > 10_000_000,
        "only {} bytes in 10 s",
        i.stdout.raw_bytes
    );
    assert_eq!(i.stdout.bytes, i.stdout.raw_bytes);
    assert_eq!(i.stdout.lines * 2, i.stdout.bytes);
    let r = p.read(Some(Cursor::default()), Some(1 << 20));
    assert_eq!(
        r.stdout.len() as u64 + r.stdout_lost,
        i.stdout.bytes,
        "head + lost + tail"
    );
    assert!(r.stdout.len() <= 4096 + 2 * 8192, "kept {}", r.stdout.len());
    assert!(r.stdout.starts_with("y\ny\n") && r.stdout.ends_with("y\n"));
    assert!(r.stdout.chars().all(|c| c == 'y' || c == '\n'));
    eprintln!(
        "yes for 10 s: {} MB through the process",
        i.stdout.raw_bytes / 1_000_000
    );
    s.close().await;
}

#[tokio::test]
async fn a_secret_printed_in_two_halves_is_redacted() {
    let ws = Workspace::new("proc-secret");
    let s = session(&ws, Profile::Workspace).await;
    let p = s
        .spawn(
            "printf 'token=ghp_0123456789abcdefghij'; sleep 0.5; printf 'ABCDEFGHIJ012345 done\\n'",
            &opts(),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    let first = p.read(None, None);
    wait_exit(&p).await;
    let second = p.read(None, None);
    let all = format!("{}{}", first.stdout, second.stdout);
    assert_eq!(all, "token=[REDACTED:github-pat] done\n");
    assert_eq!(second.redactions.get("github-pat"), Some(&1));
    s.close().await;
}

#[tokio::test]
async fn signals_reach_the_whole_group_and_terminate_escalates() {
    let ws = Workspace::new("proc-signals");
    let s = session(&ws, Profile::Workspace).await;
    // A tree that traps TERM: TERM does not end it, INT does.
    let p = s
        .spawn(
            "trap 'echo got TERM' TERM; sleep 30 & child=$!; echo child $child; while :; do sleep 0.1; done",
            &opts(),
        )
        .await
        .unwrap();
    matched(&p, "child \\d+", 5).await;
    p.signal(ProcessSignal::Term).await.unwrap();
    matched(&p, "got TERM", 5).await;
    assert!(!p.state().exited());
    // STOP / CONT.
    p.signal(ProcessSignal::Stop).await.unwrap();
    assert_eq!(p.state(), ProcessState::Running { stopped: true });
    let pgid = p.info().pgid.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(state_letter(pgid), Some('T'));
    p.signal(ProcessSignal::Cont).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_ne!(state_letter(pgid), Some('T'));
    // terminate: TERM is trapped, so the grace runs out and KILL ends the group.
    let state = p.terminate().await;
    assert!(state.exited(), "{state:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(group_members(pgid).is_empty(), "the group is gone");
    assert!(matches!(
        p.signal(ProcessSignal::Int).await,
        Err(ProcessError::Exited(_))
    ));
    // INT ends a plain process with 130.
    let q = s.spawn("sleep 30", &opts()).await.unwrap();
    q.signal(ProcessSignal::Int).await.unwrap();
    wait_exit(&q).await;
    assert_eq!(
        q.state(),
        ProcessState::Exited {
            code: Some(130),
            signal: Some(ProcessSignal::Int)
        }
    );
    s.close().await;
}

fn state_letter(pid: i32) -> Option<char> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    text[text.rfind(')')? + 2..].chars().next()
}

/// Processes whose process group is `pgid`.
fn group_members(pgid: i32) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|t| {
                    let rest = t[t.rfind(')')? + 2..].to_string();
                    rest.split(' ').nth(2)?.parse::<i32>().ok()
                })
                == Some(pgid)
        })
        .collect()
}

#[tokio::test]
async fn the_caps_refuse_clearly_and_the_reaper_forgets_and_kills() {
    let ws = Workspace::new("proc-caps");
    let mut limits = execkit_runner::Limits::default();
    let mut pl = ProcessLimits::default();
    pl.per_session = 2;
    pl.idle_ttl = Duration::from_millis(300);
    pl.max_lifetime = Some(Duration::from_secs(2));
    pl.grace = Duration::from_millis(200);
    limits.processes = pl;
    let s = config(&ws, permit_all(), Profile::Workspace)
        .limits(limits)
        .local()
        .await
        .unwrap();
    let a = s.spawn("sleep 60", &opts()).await.unwrap();
    let _b = s.spawn("sleep 60", &opts()).await.unwrap();
    match s.spawn("sleep 60", &opts()).await {
        Err(ExecError::Process(ProcessError::Cap { cap: 2, .. })) => {}
        other => panic!(
            "expected the cap, got {:?}",
            other.map(|p| p.id().to_string())
        ),
    }
    // Past the lifetime the reaper terminates them; past the TTL it forgets them.
    let w = a.wait(Duration::from_secs(10), None, None, Some(0)).await;
    assert_eq!(w.reason, WaitReason::Exited);
    let mut forgotten = false;
    for _ in 0..40 {
        if s.processes().is_empty() {
            forgotten = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(forgotten, "{:?}", s.processes());
    assert!(matches!(s.process(a.id()), Err(ProcessError::Unknown(_))));
    s.close().await;
}

async fn shell_sid(s: &Session) -> i32 {
    s.info().await.shell_pid.and_then(proc_stat).unwrap().sid
}

#[tokio::test]
async fn close_leaves_no_background_process_behind() {
    let ws = Workspace::new("proc-close");
    let s = session(&ws, Profile::Workspace).await;
    let sid = shell_sid(&s).await;
    let mut pgids = Vec::new();
    for _ in 0..3 {
        let p = s
            .spawn("sleep 300 & sleep 300 & (trap '' TERM; sleep 300)", &opts())
            .await
            .unwrap();
        pgids.push(p.info().pgid.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        session_members(sid).len() >= 10,
        "{:?}",
        session_members(sid)
    );
    s.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        session_members(sid).is_empty(),
        "{:?}",
        session_members(sid)
    );
    for g in pgids {
        assert!(!alive(g));
        assert!(group_members(g).is_empty());
    }
}

#[tokio::test]
async fn exec_says_when_it_left_background_jobs() {
    let ws = Workspace::new("proc-bgnote");
    let s = session(&ws, Profile::Workspace).await;
    let p = s.spawn("sleep 30", &opts()).await.unwrap();
    let r = ok(&s, "sleep 30 & echo started").await;
    assert_eq!(r.background_jobs, 1);
    // Our own process never counts as a job left behind.
    let r = ok(&s, "echo plain").await;
    assert_eq!(r.background_jobs, 0);
    assert!(!p.state().exited());
    s.close().await;
}

#[tokio::test]
async fn twenty_processes_in_each_of_five_sessions_read_in_parallel() {
    let mut limits = execkit_runner::Limits::default();
    let mut pl = ProcessLimits::default();
    pl.per_session = 20;
    pl.per_server = 200;
    limits.processes = pl;
    let mut tasks = Vec::new();
    for n in 0..5 {
        let limits = limits;
        tasks.push(tokio::spawn(async move {
            let ws = Workspace::new(&format!("proc-par{n}"));
            let s = config(&ws, permit_all(), Profile::Workspace)
                .limits(limits)
                .local()
                .await
                .unwrap();
            let mut procs = Vec::new();
            for i in 0..20 {
                procs.push(
                    s.spawn(
                        &format!("for j in $(seq 1 50); do echo s{n}p{i}l$j; done"),
                        &opts(),
                    )
                    .await
                    .unwrap(),
                );
            }
            let reads = procs.iter().map(|p| {
                let p = p.clone();
                async move {
                    let mut text = String::new();
                    loop {
                        let r = p.read(None, Some(64));
                        text.push_str(&r.stdout);
                        if r.state.exited() && r.more == 0 && r.stdout.is_empty() {
                            return text;
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            });
            let texts = futures_util::future::join_all(reads).await;
            for (i, t) in texts.iter().enumerate() {
                let want: String = (1..=50).map(|j| format!("s{n}p{i}l{j}\n")).collect();
                assert_eq!(t, &want, "session {n} process {i}");
            }
            s.close().await;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test]
async fn a_repl_that_wants_a_terminal_gets_one_of_the_sessions_own() {
    let ws = Workspace::new("proc-pty");
    let s = session(&ws, Profile::Workspace).await;
    let mut o = SpawnOptions::named("py");
    o.pty = true;
    o.cols = Some(123);
    // Without -i: python3 is interactive only because stdin is a terminal.
    let p = s
        .spawn("python3 -q -c 'import os,sys; print(sys.stdin.isatty(), os.get_terminal_size().columns); import code; code.interact(banner=\"\")'", &o)
        .await
        .unwrap();
    matched(&p, "True 123", 10).await;
    for (expr, want) in [("6*7", "42"), ("'ab'.upper()", "'AB'")] {
        p.write_stdin(format!("{expr}\n").as_bytes(), false)
            .await
            .unwrap();
        let re = until_pattern(&format!("(?m)^{}$", regex_escape(want))).unwrap();
        let w = p.wait(Duration::from_secs(10), Some(&re), None, None).await;
        assert_eq!(w.reason, WaitReason::Matched, "{expr}: {:?}", w.output);
    }
    // Only the session's own terminals exist in its devpts instance.
    let r = ok(&s, "ls /dev/pts").await;
    let names: Vec<&str> = r.stdout.split_whitespace().collect();
    assert!(names.contains(&"ptmx") && names.len() <= 3, "{names:?}");
    p.write_stdin(b"exit()\n", false).await.unwrap();
    wait_exit(&p).await;
    assert_eq!(
        p.state(),
        ProcessState::Exited {
            code: Some(0),
            signal: None
        }
    );
    s.close().await;
}

#[tokio::test]
async fn a_signal_right_after_the_start_is_not_lost_and_usr1_reaches_the_program_alone() {
    let ws = Workspace::new("proc-race");
    let s = session(&ws, Profile::Workspace).await;
    // INT at once, twenty times: each ends the command (bash must not swallow it while it
    // sets the command up) and never runs what follows on the line.
    for _ in 0..20 {
        let p = s.spawn("sleep 30; echo after", &opts()).await.unwrap();
        p.signal(ProcessSignal::Int).await.unwrap();
        let w = p.wait(Duration::from_secs(5), None, None, None).await;
        assert_eq!(w.reason, WaitReason::Exited, "{:?}", p.info());
        assert_eq!(w.output.stdout, "");
        assert_eq!(
            p.state(),
            ProcessState::Exited {
                code: Some(130),
                signal: Some(ProcessSignal::Int)
            }
        );
    }
    // USR1 is the program's to handle: the shell around it does not die of it.
    let p = s
        .spawn(
            "python3 -u -c 'import signal,time; signal.signal(signal.SIGUSR1, lambda *a: print(\"usr1\")); print(\"up\"); time.sleep(30)'",
            &opts(),
        )
        .await
        .unwrap();
    matched(&p, "up", 10).await;
    p.signal(ProcessSignal::Usr1).await.unwrap();
    matched(&p, "usr1", 10).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(p.state(), ProcessState::Running { stopped: false });
    s.close().await;
}

/// Input after the exit is refused, even while something the process left behind still
/// holds its stdin open (a write would otherwise seem to succeed).
#[tokio::test]
async fn input_after_the_exit_is_refused_though_a_straggler_holds_stdin() {
    let ws = Workspace::new("proc-straggler");
    let s = session(&ws, Profile::Workspace).await;
    let p = s
        .spawn("exec 3<&0; sleep 5 0<&3 & exit 0", &opts())
        .await
        .unwrap();
    wait_exit(&p).await;
    assert!(matches!(
        p.write_stdin(b"too late\n", false).await,
        Err(ProcessError::Exited(_))
    ));
    s.close().await;
}

#[tokio::test]
async fn a_process_cannot_forge_its_status_or_hang_a_writer() {
    let ws = Workspace::new("proc-forge");
    let s = session(&ws, Profile::Workspace).await;
    // The status pipe is the wrapper's descriptor 9: the command runs with it closed, so
    // a forged status never reaches the report.
    let p = s
        .spawn("echo 0 >&9; echo r >&9; exit 3", &opts())
        .await
        .unwrap();
    wait_exit(&p).await;
    assert_eq!(
        p.state(),
        ProcessState::Exited {
            code: Some(3),
            signal: None
        }
    );
    assert!(p
        .read(Some(Cursor::default()), None)
        .stderr
        .contains("Bad file descriptor"));
    // A process that never reads its stdin: a big write gives up after its timeout with
    // what was written, instead of holding the caller forever.
    let q = s.spawn("sleep 60", &opts()).await.unwrap();
    match q.write_stdin(&vec![b'x'; 4 << 20], false).await {
        Err(ProcessError::StdinFull(_, written)) => assert!(written < 4 << 20),
        other => panic!("expected StdinFull, got {other:?}"),
    }
    s.close().await;
}

/// Whoever sees a process exited finds its exit in the audit, and a signal is recorded
/// before the exit it causes — even with an observer slow enough to lose any race.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_has_the_signal_before_the_exit_and_the_exit_before_anyone_sees_it() {
    use execkit_runner::audit::{AuditEvent, ProcessEvent};
    use std::sync::{Arc, Mutex};
    let ws = Workspace::new("proc-audit-order");
    let seen: Arc<Mutex<Vec<&'static str>>> = Arc::default();
    let log = seen.clone();
    let observer: execkit_runner::Observer = Arc::new(move |e: &AuditEvent| {
        let AuditEvent::Process(p) = e else { return };
        let kind = match p.event {
            ProcessEvent::Started { .. } => "started",
            ProcessEvent::Signal { .. } => "signal",
            ProcessEvent::Exited { .. } => "exited",
            _ => "other",
        };
        // Slow to write: a waiter woken before the record is written would see nothing.
        std::thread::sleep(Duration::from_millis(300));
        log.lock().unwrap().push(kind);
    });
    let s = config(&ws, permit_all(), Profile::Workspace)
        .observer(observer)
        .local()
        .await
        .expect("session starts");
    let p = s.spawn("sleep 100", &opts()).await.unwrap();
    p.signal(ProcessSignal::Kill).await.unwrap();
    wait_exit(&p).await;
    assert_eq!(*seen.lock().unwrap(), ["started", "signal", "exited"]);
}
