//! The `process_*` tools end to end: a dev server, a REPL, denials, progress and
//! cancellation, and no process left behind when the server or the client goes away.

use super::common::*;
use rmcp::model::{CallToolRequestParams, CancelledNotificationParam, ClientRequest, Request};
use rmcp::service::PeerRequestOptions;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Starts a process; its id.
async fn start(
    c: &rmcp::service::RunningService<rmcp::RoleClient, Client>,
    id: &str,
    cmd: &str,
) -> String {
    let r = call(
        c,
        "process_start",
        json!({"session_id": id, "command": cmd}),
    )
    .await;
    assert!(!is_error(&r), "process_start `{cmd}`: {}", text(&r));
    structured(&r)["process_id"].as_str().unwrap().to_string()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn gone_within(marker: &str, limit: Duration) {
    let t0 = Instant::now();
    loop {
        let left = live_with(marker);
        if left.is_empty() {
            return;
        }
        assert!(t0.elapsed() < limit, "processes {left:?} outlived it");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dev_server_is_started_waited_for_curled_and_read_line_by_line() {
    let root = std::env::temp_dir().join(format!("execkit-proc-dev-{}", std::process::id()));
    let s = Setup::new(&format!(
        "{}[sandbox]\nprofile = \"workspace-net\"\n",
        permit_all_policies(&root)
    ));
    let c = s.connect(Human::Absent).await;
    let id = create(&c).await;
    std::fs::write(
        s.workspace.join("index.html"),
        "hello from the dev server\n",
    )
    .unwrap();
    let port = free_port();
    let pid = start(
        &c,
        &id,
        &format!("python3 -u -m http.server {port} --bind 127.0.0.1"),
    )
    .await;
    let r = call(
        &c,
        "process_wait",
        json!({"process_id": pid, "timeout_ms": 15000, "until": "Serving HTTP on"}),
    )
    .await;
    let w = structured(&r);
    assert_eq!(w["reason"], "matched", "{}", text(&r));
    assert!(
        text(&r).starts_with("matched \"Serving HTTP on\""),
        "{}",
        text(&r)
    );
    // Each request logs one line on stderr; read them incrementally.
    let mut seen = String::new();
    for i in 0..5 {
        let v = exec(
            &c,
            &id,
            &format!("curl -s http://127.0.0.1:{port}/index.html?n={i}"),
        )
        .await;
        assert_eq!(v["stdout"], "hello from the dev server\n");
        let r = call(
            &c,
            "process_wait",
            json!({"process_id": pid, "timeout_ms": 5000, "until": format!("n={i} ")}),
        )
        .await;
        assert_eq!(structured(&r)["reason"], "matched", "{}", text(&r));
        seen.push_str(structured(&r)["output"]["stderr"].as_str().unwrap());
    }
    let r = call(&c, "process_read", json!({"process_id": pid})).await;
    seen.push_str(structured(&r)["stderr"].as_str().unwrap());
    let requests: Vec<&str> = seen
        .lines()
        .filter(|l| l.contains("GET /index.html"))
        .collect();
    assert_eq!(requests.len(), 5, "each line exactly once: {seen}");
    for (i, l) in requests.iter().enumerate() {
        assert!(l.contains(&format!("n={i} ")), "in order: {seen}");
    }
    // A cursor from before returns the same lines again (the caller's choice), and the
    // list shows it running.
    let r = call(
        &c,
        "process_read",
        json!({"process_id": pid, "cursor": "0:0"}),
    )
    .await;
    assert_eq!(
        structured(&r)["stderr"]
            .as_str()
            .unwrap()
            .matches("GET /index.html")
            .count(),
        5
    );
    let r = call(&c, "process_list", json!({"session_id": id})).await;
    assert_eq!(
        structured(&r)["processes"][0]["state"],
        "running",
        "{}",
        text(&r)
    );
    let r = call(
        &c,
        "process_signal",
        json!({"process_id": pid, "signal": "INT"}),
    )
    .await;
    assert!(!is_error(&r), "{}", text(&r));
    let r = call(
        &c,
        "process_wait",
        json!({"process_id": pid, "timeout_ms": 5000}),
    )
    .await;
    assert_eq!(structured(&r)["reason"], "exited", "{}", text(&r));
    // The audit log has the start, the signal and the exit.
    let events: Vec<String> = audit_records(&s.audit)
        .iter()
        .filter(|r| r["kind"] == "process" && r["process"] == pid.as_str())
        .map(|r| r["event"]["type"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(events, ["started", "signal", "exited"], "{events:?}");
    c.cancel().await.unwrap();
    let _ = std::fs::remove_dir_all(root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_program_that_insists_on_a_terminal_gets_a_pty() {
    let s = Setup::new("");
    let c = s.connect(Human::Absent).await;
    let id = create(&c).await;
    let r = call(
        &c,
        "process_start",
        json!({"session_id": id, "command": "python3 -q", "pty": true, "rows": 40, "cols": 132}),
    )
    .await;
    assert!(!is_error(&r), "{}", text(&r));
    let pid = structured(&r)["process_id"].as_str().unwrap().to_string();
    let r = call(
        &c,
        "process_write",
        json!({"process_id": pid, "data": "import os; os.get_terminal_size()\n"}),
    )
    .await;
    assert!(!is_error(&r), "{}", text(&r));
    let r = call(
        &c,
        "process_wait",
        json!({"process_id": pid, "timeout_ms": 10000, "until": "columns=132, lines=40"}),
    )
    .await;
    assert_eq!(structured(&r)["reason"], "matched", "{}", text(&r));
    // Escapes the terminal would get are stripped before the agent sees them.
    assert!(!text(&r).contains('\u{1b}'), "{}", text(&r));
    c.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_repl_is_driven_through_stdin() {
    let s = Setup::new("");
    let c = s.connect(Human::Absent).await;
    let id = create(&c).await;
    let pid = start(&c, &id, "python3 -u -i -q").await;
    for (expr, want) in [("6*7", "42"), ("len('abcd')", "4"), ("'x'.upper()", "'X'")] {
        let r = call(
            &c,
            "process_write",
            json!({"process_id": pid, "data": format!("{expr}\n")}),
        )
        .await;
        assert!(!is_error(&r), "{}", text(&r));
        assert_eq!(structured(&r)["bytes"], expr.len() + 1);
        let r = call(
            &c,
            "process_wait",
            json!({"process_id": pid, "timeout_ms": 10000, "until": format!("(?m)^{}$", regex_lite_escape(want))}),
        )
        .await;
        assert_eq!(structured(&r)["reason"], "matched", "{expr}: {}", text(&r));
    }
    let r = call(
        &c,
        "process_write",
        json!({"process_id": pid, "data": "", "close": true}),
    )
    .await;
    assert_eq!(structured(&r)["stdin_closed"], true);
    let r = call(
        &c,
        "process_wait",
        json!({"process_id": pid, "timeout_ms": 10000}),
    )
    .await;
    assert_eq!(structured(&r)["output"]["exit_code"], 0, "{}", text(&r));
    c.cancel().await.unwrap();
}

fn regex_lite_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if "\\.+*?()|[]{}^$".contains(c) {
                vec!['\\', c]
            } else {
                vec![c]
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_start_runs_nothing_and_bad_arguments_are_clear() {
    let s = Setup::new("");
    let c = s.connect(Human::Absent).await;
    let id = create(&c).await;
    let marker = s.workspace.join("started");
    let r = call(
        &c,
        "process_start",
        json!({"session_id": id, "command": format!("touch {}; cat /etc/shadow", marker.display())}),
    )
    .await;
    assert!(is_error(&r));
    assert_eq!(structured(&r)["denied"], true, "{}", text(&r));
    let r = call(&c, "process_list", json!({})).await;
    assert_eq!(structured(&r)["processes"], json!([]));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!marker.exists());
    for (tool, a, want) in [
        (
            "process_read",
            json!({"process_id": "p-nope"}),
            "unknown_process",
        ),
        (
            "process_signal",
            json!({"process_id": "p-nope", "signal": "SEGV"}),
            "bad_arguments",
        ),
        (
            "process_wait",
            json!({"process_id": "p-nope", "timeout_ms": 1}),
            "unknown_process",
        ),
    ] {
        let r = call(&c, tool, a).await;
        assert!(is_error(&r), "{tool}");
        assert_eq!(structured(&r)["error"], want, "{tool}: {}", text(&r));
    }
    let pid = start(&c, &id, "sleep 30").await;
    let r = call(
        &c,
        "process_read",
        json!({"process_id": pid, "cursor": "x"}),
    )
    .await;
    assert_eq!(structured(&r)["error"], "bad_arguments", "{}", text(&r));
    let r = call(
        &c,
        "process_wait",
        json!({"process_id": pid, "timeout_ms": 10, "until": "("}),
    )
    .await;
    assert_eq!(structured(&r)["error"], "bad_arguments", "{}", text(&r));
    c.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tools_are_listed_with_schemas_and_honest_annotations() {
    let s = Setup::new("");
    let c = s.connect(Human::Absent).await;
    let tools = c.list_all_tools().await.unwrap();
    let find = |n: &str| {
        tools
            .iter()
            .find(|t| t.name == n)
            .unwrap_or_else(|| panic!("{n} listed"))
    };
    for n in [
        "process_start",
        "process_read",
        "process_write",
        "process_signal",
        "process_wait",
        "process_list",
    ] {
        let t = find(n);
        assert!(t.output_schema.is_some(), "{n} has an outputSchema");
        let a = t.annotations.as_ref().unwrap();
        let ro = a.read_only_hint == Some(true);
        assert_eq!(
            ro,
            matches!(n, "process_read" | "process_list" | "process_wait"),
            "{n}"
        );
    }
    assert_eq!(
        find("process_signal")
            .annotations
            .as_ref()
            .unwrap()
            .destructive_hint,
        Some(true)
    );
    c.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_wait_sends_progress_and_stops_when_cancelled() {
    let s = Setup::new("[limits]\nprogress_interval_ms = 200\n");
    let c = s.connect(Human::Absent).await;
    let id = create(&c).await;
    let pid = start(&c, &id, "while :; do echo tick; sleep 0.1; done").await;
    let handle = c
        .send_cancellable_request(
            ClientRequest::CallToolRequest(Request::new(
                CallToolRequestParams::new("process_wait").with_arguments(args(json!({
                    "process_id": pid,
                    "timeout_ms": 1500,
                    "until": "never-printed",
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
    assert_eq!(structured(&r)["reason"], "timeout");
    let mine = c
        .service()
        .progress
        .lock()
        .unwrap()
        .iter()
        .filter(|p| p.progress_token == token)
        .count();
    assert!(mine >= 3, "progress while waiting: {mine}");
    // A wait cancelled by the client ends at once; the process keeps running.
    let handle = c
        .send_cancellable_request(
            ClientRequest::CallToolRequest(Request::new(
                CallToolRequestParams::new("process_wait").with_arguments(args(json!({
                    "process_id": pid,
                    "timeout_ms": 60000,
                }))),
            )),
            PeerRequestOptions::no_options(),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.notify_cancelled(CancelledNotificationParam::new(
        Some(handle.id.clone()),
        None,
    ))
    .await
    .unwrap();
    drop(handle);
    let r = call(&c, "process_list", json!({})).await;
    assert_eq!(structured(&r)["processes"][0]["state"], "running");
    c.cancel().await.unwrap();
}

/// Starts processes that would outlive anything, under a marker.
async fn start_marked(
    c: &rmcp::service::RunningService<rmcp::RoleClient, Client>,
    m: &str,
) -> Value {
    let id = create(c).await;
    for n in 0..3 {
        start(
            c,
            &id,
            &format!("sleep 310{n}.{m} & (trap '' TERM HUP; sleep 320{n}.{m})"),
        )
        .await;
    }
    let t0 = Instant::now();
    while live_with(&format!(".{m}")).len() < 6 {
        assert!(t0.elapsed() < Duration::from_secs(10), "never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    json!(id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_process_outlives_destroy_server_sigterm_or_client_disconnect() {
    // session_destroy
    let s = Setup::new("");
    let c = s.connect(Human::Absent).await;
    let m = format!("{}1", std::process::id());
    let id = start_marked(&c, &m).await;
    let r = call(&c, "session_destroy", json!({"session_id": id})).await;
    assert!(!is_error(&r));
    gone_within(&format!(".{m}"), Duration::from_secs(3)).await;
    c.cancel().await.unwrap();
    // SIGTERM to the server
    let (c, server) = s.connect_with_pid(Human::Absent).await;
    let m = format!("{}2", std::process::id());
    start_marked(&c, &m).await;
    let st = std::process::Command::new("kill")
        .args(["-TERM", &server.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    gone_within(&format!(".{m}"), Duration::from_secs(5)).await;
    drop(c);
    // The client goes away (stdin closes)
    let c = s.connect(Human::Absent).await;
    let m = format!("{}3", std::process::id());
    start_marked(&c, &m).await;
    c.cancel().await.unwrap();
    gone_within(&format!(".{m}"), Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_says_when_it_left_background_jobs_behind() {
    let s = Setup::new("");
    let c = s.connect(Human::Absent).await;
    let id = create(&c).await;
    let r = call(
        &c,
        "session_exec",
        json!({"session_id": id, "command": "sleep 5 & echo started"}),
    )
    .await;
    assert_eq!(structured(&r)["background_jobs"], 1);
    assert!(text(&r).contains("use process_start"), "{}", text(&r));
    c.cancel().await.unwrap();
}
