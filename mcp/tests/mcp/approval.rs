//! Ask decisions: a human approves or declines through MCP elicitation, in both the
//! server-request form (initialize-era revisions) and the `input_required` form
//! (2026-07-28).

use crate::common::*;
use serde_json::json;

/// `git push` is an Ask under the default policies (`ask-publish`); in a fresh workspace
/// it fails with "not a git repository" — which proves it ran.
const PUSH: &str = "git push origin main";

/// `session_exec` of [`PUSH`].
async fn push(
    c: &rmcp::service::RunningService<rmcp::RoleClient, Client>,
    id: &str,
) -> rmcp::model::CallToolResult {
    call(
        c,
        "session_exec",
        json!({"session_id": id, "command": PUSH}),
    )
    .await
}

fn ran(v: &serde_json::Value) -> bool {
    v["stderr"]
        .as_str()
        .unwrap_or("")
        .contains("not a git repository")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_ask_runs_and_the_approval_is_audited() {
    let s = Setup::new("[identity]\noperator = \"alice\"\n");
    let c = s.connect(Human::Approves).await;
    let id = create(&c).await;
    let r = push(&c, &id).await;
    assert!(!is_error(&r), "{}", text(&r));
    let v = structured(&r);
    assert!(ran(v), "{v}");
    assert_eq!(v["approved_by"], "alice");
    assert!(text(&r).contains("approved by alice"));
    let asked = c.service().asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 1);
    assert!(asked[0].contains(PUSH), "{}", asked[0]);
    assert!(asked[0].contains("ask-publish"), "{}", asked[0]);
    assert!(
        asked[0].contains("leaves the machine"),
        "the advice is shown: {}",
        asked[0]
    );
    c.cancel().await.unwrap();
    let approved: Vec<_> = audit_of(&s.audit, "decision", PUSH);
    // First the Ask that went to the human, then the same decision with the approval.
    assert_eq!(approved.len(), 2);
    assert!(approved.iter().all(|r| r["verdict"] == "ask"));
    assert!(approved[0].get("approved_by").is_none());
    assert_eq!(approved[1]["approved_by"], "alice");
    assert!(!audit_of(&s.audit, "command", PUSH).is_empty());
    // The human step between the two decisions is recorded on its own.
    assert_eq!(approval_steps(&s.audit), ["requested", "approved by alice"]);
    let asked = audit_of(&s.audit, "approval", PUSH);
    assert_eq!(
        asked[0]["facts"],
        json!(["exec Program::\"git\""]),
        "{}",
        asked[0]
    );
}

/// `event` or `event by approver` of every approval record of [`PUSH`], in order.
fn approval_steps(audit: &std::path::Path) -> Vec<String> {
    audit_of(audit, "approval", PUSH)
        .iter()
        .map(|r| match r["approver"].as_str() {
            Some(a) => format!("{} by {a}", r["event"].as_str().unwrap_or("")),
            None => r["event"].as_str().unwrap_or("").to_string(),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_ask_does_not_run() {
    let s = Setup::new("");
    let c = s.connect(Human::Declines).await;
    let id = create(&c).await;
    let r = push(&c, &id).await;
    assert!(is_error(&r));
    let v = structured(&r);
    assert_eq!(v["denied"], true);
    assert_eq!(v["verdict"], "ask");
    assert!(v["reason"].as_str().unwrap().contains("declined"), "{v}");
    assert!(
        v["reason"].as_str().unwrap().contains("leaves the machine"),
        "the reason carries the @ask policy's advice: {v}"
    );
    assert!(text(&r).contains("ask-publish"), "{}", text(&r));
    assert_eq!(c.service().asked.lock().unwrap().len(), 1);
    c.cancel().await.unwrap();
    let rec: Vec<_> = audit_of(&s.audit, "decision", PUSH);
    assert_eq!(rec.len(), 1);
    assert!(rec[0].get("approved_by").is_none());
    assert!(
        audit_of(&s.audit, "command", PUSH).is_empty(),
        "a declined command never runs"
    );
    assert_eq!(
        approval_steps(&s.audit),
        ["requested", "declined by operator"]
    );
    let declined = audit_of(&s.audit, "approval", PUSH);
    assert_eq!(declined[1]["reason"], "the human declined");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_elicitation_gets_a_denial() {
    let s = Setup::new("");
    let c = s.connect(Human::Absent).await;
    let id = create(&c).await;
    let r = push(&c, &id).await;
    assert!(is_error(&r));
    assert!(text(&r).contains("cannot ask"), "{}", text(&r));
    c.cancel().await.unwrap();
    // Nobody was asked: the only approval record is the refusal, with why.
    assert_eq!(approval_steps(&s.audit), ["declined by operator"]);
    assert!(audit_of(&s.audit, "approval", PUSH)[0]["reason"]
        .as_str()
        .unwrap()
        .contains("cannot ask"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvals_work_as_input_required_on_2026_07_28() {
    let s = Setup::new("");
    let c = s.connect_stateless(Human::Approves).await;
    assert_eq!(
        c.peer_info().unwrap().protocol_version.to_string(),
        "2026-07-28"
    );
    let id = create(&c).await;
    // State lives in the server-minted session id, not in a connection-level session.
    exec(&c, &id, "cd sub").await;
    let r = push(&c, &id).await;
    assert!(!is_error(&r), "{}", text(&r));
    assert!(ran(structured(&r)));
    assert_eq!(structured(&r)["approved_by"], "operator");
    assert_eq!(c.service().asked.lock().unwrap().len(), 1);
    c.cancel().await.unwrap();
    assert_eq!(
        approval_steps(&s.audit),
        ["requested", "approved by operator"]
    );

    let s = Setup::new("");
    let c = s.connect_stateless(Human::Declines).await;
    let id = create(&c).await;
    let r = push(&c, &id).await;
    assert!(is_error(&r));
    assert!(structured(&r)["reason"]
        .as_str()
        .unwrap()
        .contains("declined"));
    c.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_or_replayed_approval_state_is_refused() {
    use rmcp::model::{CallToolRequestParams, CallToolResponse, InputResponses};
    let s = Setup::new("");
    let c = s.connect_stateless(Human::Approves).await;
    let id = create(&c).await;
    let yes: InputResponses = [(
        "approval".to_string(),
        json!({"action": "accept", "content": {"approve": true}}),
    )]
    .into_iter()
    .collect();
    let params = |state: &str| {
        let mut p = CallToolRequestParams::new("session_exec")
            .with_arguments(args(json!({"session_id": id, "command": PUSH})));
        p.input_responses = Some(yes.clone());
        p.request_state = Some(state.to_string());
        p
    };
    // A state the server never minted.
    let CallToolResponse::Complete(r) = c
        .call_tool_once(params("00000000000000000000000000000000"))
        .await
        .unwrap()
    else {
        panic!("expected a final result")
    };
    assert!(
        is_error(&r) && text(&r).contains("approval state"),
        "{}",
        text(&r)
    );
    // A real state, used once, then replayed.
    let first = CallToolRequestParams::new("session_exec")
        .with_arguments(args(json!({"session_id": id, "command": PUSH})));
    let CallToolResponse::InputRequired(ir) = c.call_tool_once(first).await.unwrap() else {
        panic!("expected input_required")
    };
    let state = ir.request_state.clone().unwrap();
    let CallToolResponse::Complete(r) = c.call_tool_once(params(&state)).await.unwrap() else {
        panic!("expected a final result")
    };
    assert!(!is_error(&r), "{}", text(&r));
    let CallToolResponse::Complete(r) = c.call_tool_once(params(&state)).await.unwrap() else {
        panic!("expected a final result")
    };
    assert!(
        is_error(&r),
        "a replayed approval must not run: {}",
        text(&r)
    );
    c.cancel().await.unwrap();
}
