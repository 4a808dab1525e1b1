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
    c.cancel().await.unwrap();
}
