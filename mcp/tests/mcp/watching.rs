//! Watching over MCP: `notifications/message` at the level the client sets, and the
//! session resources with `resources/subscribe` updates.

#![allow(deprecated)] // MCP logging and resources/subscribe (deprecated by 2026-07-28)

use crate::common::*;
use rmcp::model::{
    LoggingLevel, ReadResourceRequestParams, ResourceContents, SetLevelRequestParams,
    SubscribeRequestParams,
};
use serde_json::{json, Value};
use std::time::Duration;

async fn wait_until(what: &str, f: impl Fn() -> bool) {
    for _ in 0..100 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn deny(
    c: &rmcp::service::RunningService<rmcp::RoleClient, Client>,
    id: &str,
    command: &str,
) {
    let r = call(
        c,
        "session_exec",
        json!({"session_id": id, "command": command}),
    )
    .await;
    assert!(is_error(&r), "{command} should be denied");
}

fn text_of(r: &rmcp::model::ReadResourceResult) -> String {
    match &r.contents[0] {
        ResourceContents::TextResourceContents { text, .. } => text.clone(),
        other => panic!("not text: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_watches_decisions_and_results_at_its_level() {
    let s = Setup::new("");
    let c = s.connect(Human::Absent).await;
    let id = create(&c).await;
    // Before logging/setLevel: nothing.
    exec(&c, &id, "echo before").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(c.service().logs.lock().unwrap().is_empty());
    c.peer()
        .set_level(SetLevelRequestParams::new(LoggingLevel::Info))
        .await
        .unwrap();
    let history = format!("execkit://sessions/{id}/history");
    c.peer()
        .subscribe(SubscribeRequestParams::new(history.clone()))
        .await
        .unwrap();
    exec(&c, &id, "echo watched").await;
    deny(&c, &id, "cat ~/.ssh/id_rsa").await;
    let logs = c.service().logs.clone();
    wait_until("the denial's warning", || {
        logs.lock().unwrap().iter().any(|l| l["level"] == "warning")
    })
    .await;
    let seen: Vec<Value> = logs.lock().unwrap().clone();
    let data = |event: &str, command: &str| {
        seen.iter()
            .find(|l| l["data"]["event"] == event && l["data"]["command"] == command)
            .cloned()
            .unwrap_or_else(|| panic!("no {event} for {command}: {seen:#?}"))
    };
    let decided = data("decided", "echo watched");
    assert_eq!(decided["level"], "info");
    assert_eq!(decided["logger"], "execkit");
    assert_eq!(decided["data"]["verdict"], "allow");
    assert_eq!(decided["data"]["session"], json!(id));
    let finished = data("finished", "echo watched");
    assert_eq!(finished["data"]["exit_code"], 0);
    let denied = data("decided", "cat ~/.ssh/id_rsa");
    assert_eq!(denied["level"], "warning");
    assert!(denied["data"]["policies"]
        .as_array()
        .unwrap()
        .contains(&json!("deny-credential-files")));
    assert!(!seen.iter().any(|l| l["data"]["command"] == "echo before"));
    let updated = c.service().updated.clone();
    wait_until("a resource update", || {
        updated.lock().unwrap().contains(&history)
    })
    .await;
    // The resources.
    let list = c.peer().list_all_resources().await.unwrap();
    let uris: Vec<&str> = list.iter().map(|r| r.uri.as_str()).collect();
    assert!(uris.contains(&"execkit://sessions"), "{uris:?}");
    assert!(uris.contains(&history.as_str()), "{uris:?}");
    let sessions = c
        .peer()
        .read_resource(ReadResourceRequestParams::new("execkit://sessions"))
        .await
        .unwrap();
    let v: Value = serde_json::from_str(&text_of(&sessions)).unwrap();
    assert_eq!(v["sessions"][0]["session_id"], json!(id));
    let h = c
        .peer()
        .read_resource(ReadResourceRequestParams::new(history.clone()))
        .await
        .unwrap();
    let events: Vec<Value> = serde_json::from_str(&text_of(&h)).unwrap();
    let kinds: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap(),
                e["command"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(kinds.contains(&("decision", "echo before")), "{kinds:?}");
    assert!(kinds.contains(&("command", "echo watched")), "{kinds:?}");
    assert!(
        kinds.contains(&("decision", "cat ~/.ssh/id_rsa")),
        "{kinds:?}"
    );
    // Unknown or malformed resources are errors, not guesses.
    for bad in [
        "execkit://sessions/nope/history",
        "execkit://sessions/../../etc/passwd",
        "file:///etc/passwd",
    ] {
        assert!(
            c.peer()
                .read_resource(ReadResourceRequestParams::new(bad))
                .await
                .is_err(),
            "{bad}"
        );
        if !bad.contains("nope") {
            assert!(c
                .peer()
                .subscribe(SubscribeRequestParams::new(bad))
                .await
                .is_err());
        }
    }
    // Raising the level to warning: an allowed command no longer logs, a denial does.
    c.peer()
        .set_level(SetLevelRequestParams::new(LoggingLevel::Warning))
        .await
        .unwrap();
    let before = logs.lock().unwrap().len();
    exec(&c, &id, "echo quiet").await;
    deny(&c, &id, "cat ~/.aws/credentials").await;
    wait_until("the second warning", || logs.lock().unwrap().len() > before).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after: Vec<Value> = logs.lock().unwrap()[before..].to_vec();
    assert!(after.iter().all(|l| l["level"] == "warning"), "{after:#?}");
    assert!(!after.iter().any(|l| l["data"]["command"] == "echo quiet"));
    // Sessions opening and closing are events too.
    c.peer()
        .set_level(SetLevelRequestParams::new(LoggingLevel::Info))
        .await
        .unwrap();
    let r = call(&c, "session_destroy", json!({"session_id": id})).await;
    assert!(!is_error(&r), "{}", text(&r));
    wait_until("the session's close", || {
        logs.lock()
            .unwrap()
            .iter()
            .any(|l| l["data"]["event"] == "session_closed")
    })
    .await;
    let h = c
        .peer()
        .read_resource(ReadResourceRequestParams::new(history.clone()))
        .await
        .unwrap();
    let events: Vec<Value> = serde_json::from_str(&text_of(&h)).unwrap();
    assert_eq!(events.first().unwrap()["kind"], "session");
    assert_eq!(events.first().unwrap()["event"], "opened");
    assert_eq!(events.last().unwrap()["event"], "closed");
    c.cancel().await.unwrap();
}

/// Reads JSON lines from the watch socket until one satisfies `want` (or 10 s pass).
fn read_until(
    r: &mut std::io::BufReader<std::os::unix::net::UnixStream>,
    seen: &mut Vec<Value>,
    want: impl Fn(&Value) -> bool,
) -> bool {
    use std::io::BufRead;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        let mut line = String::new();
        match r.read_line(&mut line) {
            Ok(0) => return false,
            Ok(_) => {
                let v: Value = serde_json::from_str(&line).unwrap();
                let hit = want(&v);
                seen.push(v);
                if hit {
                    return true;
                }
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => panic!("{e}"),
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_socket_streams_events_owner_only_and_one_way() {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let sock = std::env::temp_dir().join(format!("ek-watch-{}.sock", std::process::id()));
    let s = Setup::new(&format!(
        "[watch]\nsocket = {:?}\n",
        sock.display().to_string()
    ));
    let c = s.connect(Human::Absent).await;
    let id = create(&c).await;
    exec(&c, &id, "echo before-connect").await;
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "owner-only");
    let stream = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    // What a peer writes is never read (the stream is one way).
    (&stream)
        .write_all(b"{\"op\":\"exec\",\"command\":\"touch /tmp/pwned\"}\n")
        .unwrap();
    let mut r = std::io::BufReader::new(stream);
    let mut seen = Vec::new();
    assert!(
        read_until(&mut r, &mut seen, |v| v["kind"] == "command"
            && v["command"] == "echo before-connect"),
        "the backlog holds what happened before: {seen:#?}"
    );
    exec(&c, &id, "echo live").await;
    deny(&c, &id, "cat ~/.ssh/id_rsa").await;
    assert!(
        read_until(&mut r, &mut seen, |v| v["kind"] == "decision"
            && v["command"] == "cat ~/.ssh/id_rsa"),
        "{seen:#?}"
    );
    let live = seen
        .iter()
        .find(|v| v["kind"] == "decision" && v["command"] == "echo live")
        .unwrap_or_else(|| panic!("{seen:#?}"));
    assert_eq!(live["verdict"], "allow");
    assert!(live["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    let denied = seen.last().unwrap();
    assert_eq!(denied["verdict"], "deny");
    assert!(
        denied["facts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["verdict"] == "deny" && f["policies"][0] == "deny-credential-files"),
        "{denied:#}"
    );
    assert!(!std::path::Path::new("/tmp/pwned").exists());
    // A second server with the same config does not take the socket over.
    let second = std::process::Command::new(env!("CARGO_BIN_EXE_execkit-mcp"))
        .arg("--config")
        .arg(&s.config)
        .env_remove("EXECKIT_CONFIG")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("another server is serving it"),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert!(
        std::os::unix::net::UnixStream::connect(&sock).is_ok(),
        "the first server's socket is gone"
    );
    // Each event exactly once.
    let n = seen
        .iter()
        .filter(|v| v["kind"] == "decision" && v["command"] == "echo live")
        .count();
    assert_eq!(n, 1);
    // The terminal viewer follows the same socket.
    if let Some(name) = watch_in_tmux(&sock, "sock", (140, 30)) {
        exec(&c, &id, "echo seen-in-tmux").await;
        let screen = screen_until(&name, |s| s.contains("echo seen-in-tmux")).await;
        assert!(screen.contains("echo seen-in-tmux"), "{screen}");
        assert!(screen.contains("DENY  refused"), "{screen}");
        assert!(screen.contains("cat ~/.ssh/id_rsa"), "{screen}");
    }
    c.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_see_the_output_so_far_of_a_running_command_protected() {
    let sock = std::env::temp_dir().join(format!("ek-watch-live-{}.sock", std::process::id()));
    let s = Setup::new(&format!(
        "[watch]\nsocket = {:?}\n[limits]\nprogress_interval_ms = 100\n",
        sock.display().to_string()
    ));
    let c = s.connect(Human::Absent).await;
    let id = create(&c).await;
    let stream = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut r = std::io::BufReader::new(stream);
    let token = "ghp_OO8lK1oKFTHq7BQRKw7ah1WXPs5c42LMSdpR";
    let command = format!(
        "echo first-part; echo token={token}; printf 'half-written-'; until [ -e stop ]; do sleep 0.05; done; echo done"
    );
    let peer = c.peer().clone();
    let (sid, cmd) = (id.clone(), command.clone());
    let running = tokio::spawn(async move {
        peer.call_tool(
            rmcp::model::CallToolRequestParams::new("session_exec")
                .with_arguments(args(json!({"session_id": sid, "command": cmd}))),
        )
        .await
    });
    let mut seen = Vec::new();
    let got = tokio::task::spawn_blocking(move || {
        let ok = read_until(&mut r, &mut seen, |v| {
            v["kind"] == "progress"
                && v["stdout_tail"]
                    .as_str()
                    .is_some_and(|t| t.contains("first-part"))
        });
        (ok, seen)
    })
    .await
    .unwrap();
    let (ok, seen) = got;
    assert!(ok, "a progress line with the output so far: {seen:#?}");
    let p = seen.last().unwrap();
    assert_eq!(p["session"], id.as_str());
    let tail = p["stdout_tail"].as_str().unwrap();
    assert!(!tail.contains(token), "redacted like the result: {tail}");
    assert!(tail.contains("[REDACTED:github-pat]"), "{tail}");
    assert!(
        !tail.contains("half-written"),
        "complete lines only: {tail}"
    );
    assert!(p["elapsed_ms"].as_u64().is_some());
    // The web viewer following the same socket streams it to its page.
    let sse = web_viewer_events(&sock, "first-part");
    assert!(sse.contains("\"kind\":\"progress\""), "{sse}");
    assert!(!sse.contains(token), "{sse}");
    // The terminal viewer shows it under the running command.
    let mut screen = String::new();
    let tmux = watch_in_tmux(&sock, "live", (160, 40));
    if let Some(name) = &tmux {
        screen = screen_until(name, |s| {
            s.contains("output so far") && s.contains("first-part")
        })
        .await;
    }
    std::fs::write(s.workspace.join("stop"), "").unwrap();
    let r = running.await.unwrap().unwrap();
    assert!(!is_error(&r), "{}", text(&r));
    assert!(structured(&r)["stdout"]
        .as_str()
        .unwrap()
        .ends_with("half-written-done\n"));
    if tmux.is_some() {
        assert!(screen.contains("output so far"), "{screen}");
        assert!(screen.contains("first-part"), "{screen}");
        assert!(!screen.contains(token), "{screen}");
        if let Some(dir) = option_env!("CARGO_TARGET_TMPDIR") {
            let _ = std::fs::write(
                std::path::Path::new(dir).join("watch-tmux-live-output.txt"),
                &screen,
            );
        }
    }
    c.cancel().await.unwrap();
}

/// Starts `execkit watch --socket SOCK --http 127.0.0.1:0`, reads its event stream with
/// the printed token until `needle` appears in a progress line (or 10 s pass), and stops it.
fn web_viewer_events(sock: &std::path::Path, needle: &str) -> String {
    use std::io::{BufRead, Read, Write};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_execkit"))
        .args(["watch", "--socket"])
        .arg(sock)
        .args(["--http", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut url = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut url)
        .unwrap();
    let rest = url.trim().strip_prefix("http://").unwrap();
    let (host, query) = rest.split_once('/').unwrap();
    let mut conn = std::net::TcpStream::connect(host).unwrap();
    conn.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let token_query = query.trim_start_matches('?');
    write!(
        conn,
        "GET /events?{token_query} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    let mut got = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 8192];
    while std::time::Instant::now() < deadline {
        match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(_) => {}
        }
        if got
            .lines()
            .any(|l| l.contains("\"kind\":\"progress\"") && l.contains(needle))
        {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_2026_07_28_a_client_listens_for_history_updates() {
    use rmcp::model::{ServerNotification, SubscriptionFilter};
    let s = Setup::new("");
    let c = s.connect_stateless(Human::Absent).await;
    assert_eq!(
        c.peer_info().unwrap().protocol_version.to_string(),
        "2026-07-28"
    );
    let id = create(&c).await;
    let history = format!("execkit://sessions/{id}/history");
    let mut sub = c
        .peer()
        .listen(
            SubscriptionFilter::builder()
                .resource_subscription(history.clone())
                .resource_subscription("file:///etc/shadow")
                .tools_list_changed()
                .build(),
        )
        .await
        .expect("subscriptions/listen is served");
    // Only what is served is acknowledged.
    assert_eq!(
        sub.acknowledged().resource_subscriptions.as_deref(),
        Some(&[history.clone()][..])
    );
    assert_ne!(sub.acknowledged().tools_list_changed, Some(true));
    exec(&c, &id, "echo listened").await;
    let n = tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("an update within 10 s")
        .unwrap()
        .expect("the stream is open");
    match n {
        ServerNotification::ResourceUpdatedNotification(u) => assert_eq!(u.params.uri, history),
        other => panic!("{other:?}"),
    }
    // The history it points at holds the command.
    let r = c
        .read_resource(rmcp::model::ReadResourceRequestParams::new(history.clone()))
        .await
        .unwrap();
    assert!(text_of(&r).contains("echo listened"));
    sub.cancel().await.unwrap();
    c.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_2026_07_28_a_request_carries_its_own_log_level() {
    use rmcp::model::{CallToolRequestParams, RequestMetaObject};
    let s = Setup::new("");
    let c = s.connect_stateless(Human::Absent).await;
    let id = create(&c).await;
    let call_at = |level: LoggingLevel, command: &str| {
        let mut meta = RequestMetaObject::default();
        meta.set_log_level(level);
        let mut p = CallToolRequestParams::new("session_exec")
            .with_arguments(args(json!({"session_id": id, "command": command})));
        p.meta = Some(meta);
        p
    };
    // Warning and up: the denial is sent, the allowed command is not.
    c.call_tool(call_at(LoggingLevel::Warning, "echo quiet"))
        .await
        .unwrap();
    let r = c
        .call_tool(call_at(LoggingLevel::Warning, "cat ~/.ssh/id_rsa"))
        .await
        .unwrap();
    assert!(is_error(&r));
    // Info and up: its decision and its result.
    c.call_tool(call_at(LoggingLevel::Info, "echo loud"))
        .await
        .unwrap();
    // Without a level: nothing.
    exec(&c, &id, "echo unasked").await;
    let logs = c.service().logs.clone();
    wait_until("the finished line of `echo loud`", || {
        logs.lock()
            .unwrap()
            .iter()
            .any(|l| l["data"]["event"] == "finished" && l["data"]["command"] == "echo loud")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen: Vec<Value> = logs.lock().unwrap().clone();
    let commands: Vec<(String, String)> = seen
        .iter()
        .map(|l| {
            (
                l["data"]["event"].as_str().unwrap_or("").to_string(),
                l["data"]["command"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert!(
        commands.contains(&("decided".into(), "cat ~/.ssh/id_rsa".into())),
        "{seen:#?}"
    );
    assert!(
        commands.contains(&("decided".into(), "echo loud".into())),
        "{seen:#?}"
    );
    assert!(
        !commands
            .iter()
            .any(|(_, c)| c == "echo quiet" || c == "echo unasked"),
        "{seen:#?}"
    );
    let denial = seen
        .iter()
        .find(|l| l["data"]["command"] == "cat ~/.ssh/id_rsa")
        .unwrap();
    assert_eq!(denial["level"], "warning");
    c.cancel().await.unwrap();
}

/// Starts `execkit watch --socket SOCK` in a detached tmux session of `size` (columns,
/// rows); `None` when tmux is missing (a failure with CI=true).
fn watch_in_tmux(sock: &std::path::Path, tag: &str, size: (u16, u16)) -> Option<String> {
    if std::process::Command::new("tmux")
        .arg("-V")
        .output()
        .is_err()
    {
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true"),
            "CI=true but tmux is missing"
        );
        return None;
    }
    let name = format!("ek-watch-{tag}-{}", std::process::id());
    let cmd = format!(
        "{} watch --socket {}",
        env!("CARGO_BIN_EXE_execkit"),
        sock.display()
    );
    let (x, y) = (size.0.to_string(), size.1.to_string());
    std::process::Command::new("tmux")
        .args(["new-session", "-d", "-s", &name, "-x", &x, "-y", &y, &cmd])
        .status()
        .unwrap();
    Some(name)
}

/// The tmux pane's text once `want` holds (or after 10 s); the tmux session is ended.
async fn screen_until(name: &str, want: impl Fn(&str) -> bool) -> String {
    let mut screen = String::new();
    for _ in 0..100 {
        let o = std::process::Command::new("tmux")
            .args(["capture-pane", "-p", "-t", name])
            .output()
            .unwrap();
        screen = String::from_utf8_lossy(&o.stdout).into_owned();
        if want(&screen) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = std::process::Command::new("tmux")
        .args(["kill-session", "-t", name])
        .status();
    screen
}
