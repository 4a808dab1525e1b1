//! Human approval of commands whose decision is Ask, through MCP elicitation.
//!
//! Two forms, picked by the negotiated protocol revision:
//! - up to 2025-11-25 the server sends `elicitation/create` to the client while the tool
//!   call waits;
//! - from 2026-07-28 servers may not send requests, so the tool call answers with an
//!   `input_required` result carrying the same elicitation, and the client retries the
//!   call with the human's answer and the `requestState` we minted. The state is only a
//!   random handle to what we keep here (session, command, the facts shown), so a client
//!   cannot forge or edit an approval; it is single-use and expires.
//!
//! Either way the approval names the facts the human saw; the runner refuses to run if the
//! decision at run time asks about anything else. Declining, cancelling, a malformed
//! answer, a timeout and a client without elicitation all deny.

use execkit_engine::{Decision, Verdict};
use rmcp::model::{ElicitRequestParams, ElicitationAction, ElicitationSchema};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The key of our elicitation inside an `input_required` result.
pub const INPUT_KEY: &str = "approval";

/// An approval asked for and not yet answered (2026-07-28 form).
#[derive(Debug, Clone)]
pub struct Pending {
    /// The session.
    pub session_id: String,
    /// The exact command.
    pub command: String,
    /// `(action, resource)` of the facts shown to the human.
    pub facts: Vec<(String, String)>,
    created: Instant,
    /// Parked after every request with a lower number.
    order: u64,
}

/// Approval requests one session may have waiting for a client's answer.
pub const PENDING_PER_SESSION: usize = 4;

/// Approval requests waiting for a client's retry (2026-07-28 form), by handle.
pub struct Approvals {
    pending: Mutex<HashMap<String, Pending>>,
    ttl: Duration,
    parked: std::sync::atomic::AtomicU64,
}

impl Approvals {
    /// An empty set whose entries expire after `ttl`.
    pub fn new(ttl: Duration) -> Approvals {
        Approvals {
            pending: Mutex::new(HashMap::new()),
            ttl,
            parked: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps an approval request and returns its opaque handle. A session has at most
    /// [`PENDING_PER_SESSION`] requests waiting (the oldest goes), so a client that never
    /// answers cannot make the server hold its commands without bound.
    pub fn park(
        &self,
        session_id: &str,
        command: &str,
        facts: Vec<(String, String)>,
    ) -> std::io::Result<String> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
        let handle = hex::encode(bytes);
        let mut g = self.lock();
        g.retain(|_, p| p.created.elapsed() < self.ttl);
        let mut mine: Vec<(u64, String)> = g
            .iter()
            .filter(|(_, p)| p.session_id == session_id)
            .map(|(h, p)| (p.order, h.clone()))
            .collect();
        if mine.len() >= PENDING_PER_SESSION {
            mine.sort();
            for (_, h) in mine.iter().take(mine.len() + 1 - PENDING_PER_SESSION) {
                g.remove(h);
            }
        }
        g.insert(
            handle.clone(),
            Pending {
                session_id: session_id.to_string(),
                command: command.to_string(),
                facts,
                created: Instant::now(),
                order: self
                    .parked
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            },
        );
        Ok(handle)
    }

    /// Takes (and so uses up) the approval request behind a handle, if it exists and has
    /// not expired.
    pub fn take(&self, handle: &str) -> Option<Pending> {
        let p = self.lock().remove(handle)?;
        (p.created.elapsed() < self.ttl).then_some(p)
    }
}

/// What the human is shown: the (redacted) command, where, and each fact that needs
/// approval with the policies' advice.
pub fn message(command: &str, cwd: &str, session_id: &str, d: &Decision) -> String {
    let mut s = format!(
        "An agent wants to run a command that policy says needs your approval.\n\n    {}\n\nin {cwd} (session {session_id})\n",
        command.replace('\n', "\n    ")
    );
    for f in d.facts.iter().filter(|f| f.verdict == Verdict::Ask) {
        let _ = write!(s, "\n- {} {}", f.action, f.resource);
        for p in f.policies.iter().filter(|p| p.ask) {
            let _ = write!(s, " [{}]", p.id);
            if let Some(a) = &p.advice {
                let _ = write!(s, " {a}");
            }
        }
    }
    s
}

/// The form: one required boolean, `approve`, false by default.
pub fn request(message: String) -> ElicitRequestParams {
    let schema: ElicitationSchema = serde_json::from_value(json!({
        "type": "object",
        "properties": {
            "approve": {
                "type": "boolean",
                "title": "Run this command",
                "description": "Approve to run it once, as shown.",
                "default": false
            }
        },
        "required": ["approve"]
    }))
    .unwrap_or_else(|_| ElicitationSchema::new(Default::default()));
    ElicitRequestParams::FormElicitationParams {
        meta: None,
        message,
        requested_schema: schema,
    }
}

/// True only for an explicit accept with `approve: true`.
pub fn approved(action: &ElicitationAction, content: Option<&Value>) -> bool {
    matches!(action, ElicitationAction::Accept)
        && content
            .and_then(|c| c.get("approve"))
            .and_then(Value::as_bool)
            == Some(true)
}

/// Reads the human's answer out of a retried call's `inputResponses`.
pub fn approved_in(responses: Option<&rmcp::model::InputResponses>) -> bool {
    let Some(answer) = responses.and_then(|r| r.get(INPUT_KEY)) else {
        return false;
    };
    let action: Option<ElicitationAction> = answer
        .get("action")
        .and_then(|a| serde_json::from_value(a.clone()).ok());
    match action {
        Some(a) => approved(&a, answer.get("content")),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_explicit_yes_approves() {
        let yes = json!({"approve": true});
        let no = json!({"approve": false});
        assert!(approved(&ElicitationAction::Accept, Some(&yes)));
        assert!(!approved(&ElicitationAction::Accept, Some(&no)));
        assert!(!approved(&ElicitationAction::Accept, None));
        assert!(!approved(
            &ElicitationAction::Accept,
            Some(&json!({"approve": "yes"}))
        ));
        assert!(!approved(&ElicitationAction::Decline, Some(&yes)));
        assert!(!approved(&ElicitationAction::Cancel, Some(&yes)));
    }

    #[test]
    fn handles_are_single_use() {
        let a = Approvals::new(Duration::from_secs(60));
        let h = a.park("s", "git push", vec![]).unwrap();
        assert_eq!(h.len(), 32);
        assert_eq!(a.take(&h).unwrap().command, "git push");
        assert!(a.take(&h).is_none());
        assert!(a.take("forged").is_none());
    }

    #[test]
    fn handles_expire() {
        let a = Approvals::new(Duration::ZERO);
        let h = a.park("s", "git push", vec![]).unwrap();
        assert!(a.take(&h).is_none());
    }

    #[test]
    fn retried_answers_are_read_strictly() {
        let mut r = rmcp::model::InputResponses::new();
        assert!(!approved_in(Some(&r)));
        r.insert(
            INPUT_KEY.into(),
            json!({"action": "accept", "content": {"approve": true}}),
        );
        assert!(approved_in(Some(&r)));
        r.insert(
            INPUT_KEY.into(),
            json!({"action": "decline", "content": {"approve": true}}),
        );
        assert!(!approved_in(Some(&r)));
        assert!(!approved_in(None));
    }
}

#[cfg(test)]
mod pending_tests {
    use super::*;

    #[test]
    fn a_session_keeps_at_most_a_few_requests_waiting() {
        let a = Approvals::new(Duration::from_secs(60));
        let handles: Vec<String> = (0..10)
            .map(|i| a.park("s1", &format!("git push #{i}"), Vec::new()).unwrap())
            .collect();
        let other = a.park("s2", "git push", Vec::new()).unwrap();
        let kept: Vec<&String> = handles
            .iter()
            .filter(|h| a.lock().contains_key(*h))
            .collect();
        assert_eq!(kept.len(), PENDING_PER_SESSION);
        // The newest stay; another session's are not touched.
        assert!(a.take(&handles[9]).is_some());
        assert!(a.take(&handles[0]).is_none());
        assert!(a.take(&other).is_some());
    }
}
