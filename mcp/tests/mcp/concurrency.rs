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

/// 20 sessions × 20 commands while another session's memory hog is killed by its limit:
/// the hog's result says so, every other result is exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_sessions_stay_exact_while_one_hits_its_memory_limit() {
    const SESSIONS: usize = 20;
    const COMMANDS: usize = 20;
    let root = std::env::temp_dir().join(format!("execkit-load-{}", std::process::id()));
    let s = Setup::new(&format!(
        "{}[limits]\nmax_sessions = 32\nmax_memory_bytes = {}\n",
        permit_all_policies(&root),
        128 << 20
    ));
    let c = Arc::new(s.connect(Human::Absent).await);
    let hog_session = create(&c).await;
    let mut ids = Vec::new();
    for i in 0..SESSIONS {
        let id = create(&c).await;
        exec(&c, &id, &format!("export WHO=s{i}")).await;
        ids.push(id);
    }
    let hog = {
        let c = c.clone();
        tokio::spawn(async move {
            let mut hits = 0;
            for _ in 0..3 {
                let v = exec(
                    &c,
                    &hog_session,
                    "python3 -c 'a = bytearray(768 << 20); print(len(a))'",
                )
                .await;
                assert_eq!(v["exit_code"], 137, "{v}");
                assert_eq!(v["limits_hit"][0]["kind"], "memory", "{v}");
                assert_eq!(v["limits_hit"][0]["limit"], 128 << 20, "{v}");
                hits += 1;
            }
            hits
        })
    };
    let mut calls = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        for j in 0..COMMANDS {
            let c = c.clone();
            let id = id.clone();
            calls.push(tokio::spawn(async move {
                let v = exec(&c, &id, &format!("echo \"$WHO c{j}\"")).await;
                assert_eq!(v["stdout"], format!("s{i} c{j}\n"), "{v}");
                assert_eq!(v["exit_code"], 0);
                assert!(v.get("limits_hit").is_none(), "{v}");
            }));
        }
    }
    for h in calls {
        h.await.unwrap();
    }
    assert_eq!(hog.await.unwrap(), 3);
    let _ = std::fs::remove_dir_all(&root);
}
