//! Runtime decisions through the real server: a script the agent wrote and then ran starts
//! `git push`, which an `@ask` policy stops at its start; the human is asked on the running
//! `session_exec` call's client and the push goes on or is refused; refusals come back in
//! the result and every runtime decision is in the audit log with its context.

use crate::common::*;
use serde_json::{json, Value};

/// Writes a script whose only line is `git push origin main` and runs it: the command text
/// never says `git push`.
const SCRIPTED_PUSH: &str = "printf 'git push origin main\\n' > p.sh; bash p.sh";

/// The runtime decision records (those with a `runtime` context) of `program`'s starts.
fn runtime_records(audit: &std::path::Path, program: &str) -> Vec<Value> {
    audit_records(audit)
        .into_iter()
        .filter(|r| r["kind"] == "decision" && r.get("runtime").is_some())
        .filter(|r| r["command"].as_str().unwrap_or("").contains(program))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_program_a_script_starts_is_asked_about_on_the_running_call() {
    let s = Setup::new("[identity]\noperator = \"alice\"\n");
    let c = s.connect(Human::Approves).await;
    let id = create(&c).await;
    let v = exec(&c, &id, SCRIPTED_PUSH).await;
    // Approved, the push ran: in a fresh workspace git says it is not a repository.
    assert!(
        v["stderr"]
            .as_str()
            .unwrap_or("")
            .contains("not a git repository"),
        "{v}"
    );
    assert!(v.get("runtime_denials").is_none(), "{v}");
    assert!(v["runtime_allowed"].as_u64().unwrap_or(0) >= 2, "{v}");
    let asked = c.service().asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(
        asked[0].contains("git") && asked[0].contains("push"),
        "{}",
        asked[0]
    );
    assert!(
        asked[0].contains("bash p.sh"),
        "the command it ran under: {}",
        asked[0]
    );
    assert!(asked[0].contains("ask-publish"), "{}", asked[0]);
    c.cancel().await.unwrap();
    let recs = runtime_records(&s.audit, "push");
    assert!(recs.iter().any(|r| r["approved_by"] == "alice"), "{recs:?}");
    assert!(
        recs.iter()
            .all(|r| r["runtime"]["under"].as_str() == Some(SCRIPTED_PUSH)),
        "{recs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_runtime_ask_refuses_the_program_and_says_so() {
    let s = Setup::new("");
    let c = s.connect(Human::Declines).await;
    let id = create(&c).await;
    let r = call(
        &c,
        "session_exec",
        json!({"session_id": id, "command": SCRIPTED_PUSH}),
    )
    .await;
    let v = structured(&r);
    assert!(
        !v["stderr"]
            .as_str()
            .unwrap_or("")
            .contains("not a git repository"),
        "the push ran: {v}"
    );
    let d = &v["runtime_denials"][0];
    assert_eq!(d["verdict"], "ask", "{v}");
    assert_eq!(d["argv"], json!(["git", "push", "origin", "main"]), "{v}");
    assert!(d["policies"].to_string().contains("ask-publish"), "{v}");
    assert!(
        d["parents"].to_string().contains("bash"),
        "the refusal names its parent: {v}"
    );
    assert!(text(&r).contains("git push origin main"), "{}", text(&r));
    assert_eq!(c.service().asked.lock().unwrap().len(), 1);
    c.cancel().await.unwrap();
    let recs = runtime_records(&s.audit, "push");
    assert!(!recs.is_empty() && recs.iter().all(|r| r.get("approved_by").is_none()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_elicitation_a_runtime_ask_is_refused() {
    let s = Setup::new("");
    let c = s.connect(Human::Absent).await;
    let id = create(&c).await;
    let r = call(
        &c,
        "session_exec",
        json!({"session_id": id, "command": SCRIPTED_PUSH}),
    )
    .await;
    let v = structured(&r);
    assert_eq!(v["runtime_denials"][0]["verdict"], "ask", "{v}");
    assert!(
        v["runtime_denials"][0]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("not approved"),
        "{v}"
    );
    c.cancel().await.unwrap();
}
