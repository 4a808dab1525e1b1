//! The checkpoint tools end to end, and the automatic checkpoint a policy asks for.

use super::common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_diff_restore_and_the_automatic_checkpoint_before_rm_r() {
    let s = Setup::new("");
    let c = s.connect(Human::Absent).await;
    let id = create(&c).await;
    std::fs::create_dir_all(s.workspace.join("build")).unwrap();
    std::fs::write(s.workspace.join("build/app.o"), "obj").unwrap();
    std::fs::write(s.workspace.join("app.cfg"), "mode=dev\n").unwrap();
    let r = call(
        &c,
        "session_checkpoint",
        json!({"session_id": id, "label": "clean"}),
    )
    .await;
    assert!(!is_error(&r), "{}", text(&r));
    let cp = structured(&r)["checkpoint_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        text(&r).starts_with(&format!("checkpoint {cp} · ")),
        "{}",
        text(&r)
    );
    exec(
        &c,
        &id,
        "echo 'token=ghp_0123456789abcdefghijABCDEFGHIJ012345' >> app.cfg",
    )
    .await;
    let r = call(
        &c,
        "session_diff",
        json!({"session_id": id, "checkpoint_id": cp}),
    )
    .await;
    let d = structured(&r);
    assert_eq!(d["changed"], json!(["app.cfg"]), "{}", text(&r));
    assert!(d["diff"]
        .as_str()
        .unwrap()
        .contains("[REDACTED:github-pat]"));
    assert!(!text(&r).contains("ghp_"), "{}", text(&r));
    // The default set asks for a checkpoint before a recursive delete.
    let v = exec(&c, &id, "rm -r build").await;
    let auto = v["checkpoint"]
        .as_str()
        .expect("an automatic checkpoint")
        .to_string();
    assert_ne!(auto, cp);
    let r = call(&c, "session_checkpoints", json!({"session_id": id})).await;
    let list = structured(&r)["checkpoints"].as_array().unwrap().clone();
    assert_eq!(list.len(), 2, "{}", text(&r));
    assert_eq!(list[1]["automatic"], "before: rm -r build");
    let r = call(
        &c,
        "session_restore",
        json!({"session_id": id, "checkpoint_id": cp}),
    )
    .await;
    assert!(!is_error(&r), "{}", text(&r));
    assert_eq!(structured(&r)["written"], 1, "{}", text(&r));
    assert_eq!(structured(&r)["created"], 1, "{}", text(&r));
    assert_eq!(
        std::fs::read_to_string(s.workspace.join("app.cfg")).unwrap(),
        "mode=dev\n"
    );
    assert_eq!(
        std::fs::read_to_string(s.workspace.join("build/app.o")).unwrap(),
        "obj"
    );
    let r = call(
        &c,
        "session_restore",
        json!({"session_id": id, "checkpoint_id": "cp-77"}),
    )
    .await;
    assert!(is_error(&r));
    assert_eq!(structured(&r)["error"], "bad_arguments", "{}", text(&r));
    // The audit log has the taken and restored records.
    let events: Vec<String> = audit_records(&s.audit)
        .iter()
        .filter(|r| r["kind"] == "checkpoint")
        .map(|r| {
            format!(
                "{} {}",
                r["event"].as_str().unwrap(),
                r["checkpoint"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        events,
        [
            format!("taken {cp}"),
            format!("taken {auto}"),
            format!("restored {cp}")
        ]
    );
    c.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_can_turn_checkpoints_off() {
    let s = Setup::new("[checkpoints]\nenabled = false\n");
    let c = s.connect(Human::Absent).await;
    let id = create(&c).await;
    let r = call(&c, "session_checkpoint", json!({"session_id": id})).await;
    assert_eq!(structured(&r)["error"], "not_available", "{}", text(&r));
    // Destructive commands still run, with no checkpoint.
    std::fs::create_dir_all(s.workspace.join("tmpdir")).unwrap();
    let v = exec(&c, &id, "rm -r tmpdir").await;
    assert!(v.get("checkpoint").is_none(), "{v}");
    c.cancel().await.unwrap();
}
