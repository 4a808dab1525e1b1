//! Many sessions, many concurrent calls: every result belongs to its call.

use crate::common::*;
use serde_json::json;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_sessions_twenty_concurrent_commands_each_no_cross_talk() {
    const SESSIONS: usize = 50;
    const COMMANDS: usize = 20;
    let s = Setup::new("[limits]\nmax_sessions = 64\n");
    let c = Arc::new(s.connect(Human::Absent).await);
    let mut creates = Vec::new();
    for _ in 0..SESSIONS {
        let c = c.clone();
        creates.push(tokio::spawn(async move { create(&c).await }));
    }
    let mut ids = Vec::new();
    for h in creates {
        ids.push(h.await.unwrap());
    }
    // Each session gets its own variable; every command reads it and echoes its own tag.
    for (i, id) in ids.iter().enumerate() {
        exec(&c, id, &format!("export WHO=s{i}")).await;
    }
    let mut calls = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        for j in 0..COMMANDS {
            let c = c.clone();
            let id = id.clone();
            calls.push(tokio::spawn(async move {
                let r = call(
                    &c,
                    "session_exec",
                    json!({
                        "session_id": id,
                        "command": format!("echo \"$WHO c{j}\"; echo \"err $WHO c{j}\" >&2"),
                    }),
                )
                .await;
                (i, j, r)
            }));
        }
    }
    for h in calls {
        let (i, j, r) = h.await.unwrap();
        assert!(!is_error(&r), "s{i} c{j}: {}", text(&r));
        let v = structured(&r);
        assert_eq!(v["stdout"], format!("s{i} c{j}\n"), "s{i} c{j}");
        assert_eq!(v["stderr"], format!("err s{i} c{j}\n"), "s{i} c{j}");
        assert_eq!(v["exit_code"], 0);
    }
    let r = call(&c, "session_list", json!({})).await;
    assert_eq!(
        structured(&r)["sessions"].as_array().unwrap().len(),
        SESSIONS
    );
}
