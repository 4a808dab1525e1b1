//! Sessions over time: the cap, listing, destroying, idle reaping, timeouts, progress,
//! cancellation, logging and the audit log.

use crate::common::*;
use rmcp::model::{CallToolRequestParams, CancelledNotificationParam, ClientRequest, Request};
use rmcp::service::PeerRequestOptions;
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_cap_is_enforced_and_destroy_frees_a_slot() {
    let s = Setup::new("[limits]\nmax_sessions = 2\n");
    let c = s.connect(Human::Absent).await;
    let a = create(&c).await;
    let b = create(&c).await;
    let r = call(&c, "session_create", json!({})).await;
    assert!(is_error(&r));
    assert_eq!(structured(&r)["error"], "limit");
    assert!(
        text(&r).contains("limit of 2 open sessions"),
        "{}",
        text(&r)
    );

    exec(&c, &a, "cd sub").await;
    let r = call(&c, "session_list", json!({})).await;
    let v = structured(&r);
    assert_eq!(v["max_sessions"], 2);
    let rows = v["sessions"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let row_a = rows.iter().find(|r| r["session_id"] == a.as_str()).unwrap();
    assert!(row_a["cwd"].as_str().unwrap().ends_with("/ws/sub"));
    assert_eq!(row_a["transport"], "local");
    assert!(row_a["age_secs"].is_u64() && row_a["idle_secs"].is_u64());

    let r = call(&c, "session_destroy", json!({"session_id": b})).await;
    assert_eq!(structured(&r)["destroyed"], true);
    let r = call(
        &c,
        "session_exec",
        json!({"session_id": b, "command": "true"}),
    )
    .await;
    assert_eq!(structured(&r)["error"], "unknown_session");
    create(&c).await;
    c.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_are_reaped_and_their_processes_killed() {
    let s = Setup::new("[limits]\nidle_ttl_secs = 2\n");
    let c = s.connect(Human::Absent).await;
    let id = create(&c).await;
    // `$!` is a pid inside the session's PID namespace: find the process from here by a
    // command line nothing else has.
    let marker = format!("300.{}", std::process::id());
    exec(&c, &id, &format!("sleep {marker} >/dev/null 2>&1 &")).await;
    // The shell forks before the child execs `sleep`, and exec may answer in between:
    // wait for the command line to appear (well inside the idle TTL).
    let seen = Instant::now() + Duration::from_millis(1500);
    let pid = loop {
        if let Some(pid) = pid_with_cmdline(&format!("sleep\0{marker}\0")) {
            break pid;
        }
        assert!(Instant::now() < seen, "the background sleep never ran");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = call(&c, "session_list", json!({})).await;
        if structured(&r)["sessions"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the idle session was never reaped"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let r = call(
        &c,
        "session_exec",
        json!({"session_id": id, "command": "true"}),
    )
    .await;
    assert!(text(&r).contains("reaped"), "{}", text(&r));
    // Its background process went with it.
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if state.contains(") Z ") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "background process {pid} survived its session"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    c.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_caps_timeouts() {
    let s = Setup::new("[limits]\ndefault_timeout_ms = 500\nmax_timeout_ms = 1000\n");
    let c = s.connect(Human::Absent).await;
    let id = create(&c).await;
    let r = call(
        &c,
        "session_exec",
        json!({"session_id": id, "command": "sleep 20", "timeout_ms": 3_600_000}),
    )
    .await;
    let v = structured(&r);
    assert_eq!(v["timed_out"], true, "{v}");
    assert!(v["duration_ms"].as_u64().unwrap() < 10_000);
    assert!(text(&r).contains("timed out"));
    let v = exec(&c, &id, "echo after").await;
    assert_eq!(v["stdout"], "after\n");
    c.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_commands_send_progress_notifications() {
    let s = Setup::new("[limits]\nprogress_interval_ms = 200\n");
    let c = s.connect(Human::Absent).await;
    let id = create(&c).await;
    let handle = c
        .send_cancellable_request(
            ClientRequest::CallToolRequest(Request::new(
                CallToolRequestParams::new("session_exec").with_arguments(args(json!({
                    "session_id": id,
                    "command": "for i in 1 2 3 4 5 6; do echo tick $i; sleep 0.25; done",
                }))),
            )),
            PeerRequestOptions::no_options(),
        )
        .await
        .unwrap();
    let token = handle.progress_token.clone();
    let resp = handle.await_response().await.unwrap();
    let rmcp::model::ServerResult::CallToolResult(r) = resp else {
        panic!("unexpected response {resp:?}")
    };
    assert_eq!(
        structured(&r)["stdout"].as_str().unwrap().lines().count(),
        6
    );
    let progress = c.service().progress.lock().unwrap().clone();
    let mine: Vec<_> = progress
        .iter()
        .filter(|p| p.progress_token == token)
        .collect();
    assert!(
        mine.len() >= 3,
        "expected progress while it ran, got {}",
        mine.len()
    );
    assert!(
        mine.windows(2).all(|w| w[1].progress > w[0].progress),
        "progress increases"
    );
    let last = mine.last().unwrap().message.clone().unwrap_or_default();
    assert!(last.contains("bytes stdout"), "{last}");
    assert!(
        !last.contains("0 bytes stdout"),
        "bytes so far are reported: {last}"
    );
    c.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_interrupts_the_command_and_the_session_survives() {
    let s = Setup::new("");
    let c = s.connect(Human::Absent).await;
    let id = create(&c).await;
    exec(&c, &id, "export KEPT=yes").await;
    let handle = c
        .send_cancellable_request(
            ClientRequest::CallToolRequest(Request::new(
                CallToolRequestParams::new("session_exec")
                    .with_arguments(args(json!({"session_id": id, "command": "sleep 30.0417"}))),
            )),
            PeerRequestOptions::no_options(),
        )
        .await
        .unwrap();
    // Wait until the sleep is running.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = call(&c, "session_list", json!({})).await;
        if structured(&r)["sessions"][0]["running"] == "sleep 30.0417" {
            break;
        }
        assert!(Instant::now() < deadline, "the command never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let t0 = Instant::now();
    c.notify_cancelled(CancelledNotificationParam::new(
        Some(handle.id.clone()),
        Some("test".into()),
    ))
    .await
    .unwrap();
    drop(handle);
    let v = exec(
        &c,
        &id,
        "echo $KEPT; pgrep -f 'sleep 30.0417' || echo no-sleep",
    )
    .await;
    let took = t0.elapsed();
    assert_eq!(v["stdout"], "yes\nno-sleep\n", "{v}");
    assert!(took < Duration::from_secs(10), "cancelling took {took:?}");
    eprintln!("cancel → next result: {took:?}");
    c.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_go_to_stderr_and_commands_to_the_audit_log() {
    let s = Setup::new("");
    let c = s.connect(Human::Absent).await;
    let id = create(&c).await;
    exec(&c, &id, "echo audited").await;
    call(
        &c,
        "session_exec",
        json!({"session_id": id, "command": "rm -rf /"}),
    )
    .await;
    c.cancel().await.unwrap();
    let log = std::fs::read_to_string(&s.stderr).unwrap();
    assert!(log.contains("execkit-mcp starting"), "{log}");
    assert!(log.contains("session created"), "{log}");
    let records = audit_records(&s.audit);
    let decisions: Vec<_> = records.iter().filter(|r| r["kind"] == "decision").collect();
    assert!(decisions
        .iter()
        .any(|r| r["command"] == "echo audited" && r["verdict"] == "allow"));
    assert!(decisions
        .iter()
        .any(|r| r["command"] == "rm -rf /" && r["verdict"] == "deny"));
    assert!(records
        .iter()
        .any(|r| r["kind"] == "command" && r["command"] == "echo audited"));
    let report =
        execkit_audit::verify_file(&s.audit, &execkit_audit::VerifyOptions::default()).unwrap();
    assert!(report.problem.is_none(), "{report:?}");
}

/// The host pid of the process whose `/proc/PID/cmdline` is exactly `cmdline`.
fn pid_with_cmdline(cmdline: &str) -> Option<i32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        let c = std::fs::read(e.path().join("cmdline")).ok()?;
        (c == cmdline.as_bytes()).then_some(pid)
    })
}
