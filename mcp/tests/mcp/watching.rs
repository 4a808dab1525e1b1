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
    // Each event exactly once.
    let n = seen
        .iter()
        .filter(|v| v["kind"] == "decision" && v["command"] == "echo live")
        .count();
    assert_eq!(n, 1);
    // The terminal viewer follows the same socket.
    if let Ok(o) = std::process::Command::new("tmux").arg("-V").output() {
        assert!(o.status.success());
        let name = format!("ek-watch-sock-{}", std::process::id());
        let cmd = format!(
            "{} watch --socket {}",
            env!("CARGO_BIN_EXE_execkit"),
            sock.display()
        );
        std::process::Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                &name,
                "-x",
                "140",
                "-y",
                "30",
                &cmd,
            ])
            .status()
            .unwrap();
        exec(&c, &id, "echo seen-in-tmux").await;
        let mut screen = String::new();
        for _ in 0..100 {
            let o = std::process::Command::new("tmux")
                .args(["capture-pane", "-p", "-t", &name])
                .output()
                .unwrap();
            screen = String::from_utf8_lossy(&o.stdout).into_owned();
            if screen.contains("echo seen-in-tmux") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = std::process::Command::new("tmux")
            .args(["kill-session", "-t", &name])
            .status();
        assert!(screen.contains("echo seen-in-tmux"), "{screen}");
        assert!(screen.contains("DENY  refused"), "{screen}");
        assert!(screen.contains("cat ~/.ssh/id_rsa"), "{screen}");
    } else {
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true"),
            "CI=true but tmux is missing"
        );
    }
    c.cancel().await.unwrap();
}
