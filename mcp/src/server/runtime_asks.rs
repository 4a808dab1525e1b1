//! Human approval of programs an `@ask` policy stops at their start (runtime decisions),
//! through MCP elicitation on the call whose command started them.
//!
//! A session's runtime approver is made when the session is, and answers through the slot
//! the running `session_exec` call fills: the program waits at `execve` while the human is
//! asked on that call's client. With no call running (a background job's child), a client
//! without elicitation, or the 2026-07-28 revision (whose servers may not send requests
//! while a call runs), the program is refused — fail closed — and the result says why.

use execkit_runner::{RuntimeApprover, RuntimeAsk};
use rmcp::service::{Peer, RequestContext};
use rmcp::RoleServer;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Who can be asked now.
#[derive(Clone)]
struct Asker {
    peer: Peer<RoleServer>,
    timeout: Duration,
    approver: String,
}

/// The running call's client, if one can be asked.
#[derive(Default)]
pub struct AskSlot(Mutex<Option<Asker>>);

impl AskSlot {
    /// The call `ctx` runs a command: its client is asked about runtime `@ask`s.
    pub fn fill(&self, ctx: &RequestContext<RoleServer>, approver: &str, timeout: Duration) {
        let can = super::client_can_elicit(ctx) && !super::stateless_revision(ctx);
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = can.then(|| Asker {
            peer: ctx.peer.clone(),
            timeout,
            approver: approver.to_string(),
        });
    }

    /// The call ended.
    pub fn clear(&self) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// The message the human sees.
fn message(ask: &RuntimeAsk) -> String {
    let mut s = format!(
        "While the agent's command runs\n\n    {}\n\na program it started asks for your approval:\n\n    {}\n\nin {} (session {})",
        ask.under.replace('\n', "\n    "),
        ask.command.replace('\n', "\n    "),
        ask.cwd,
        ask.session
    );
    if !ask.parents.is_empty() {
        let _ = write!(s, ", started by {}", ask.parents.join(" ← "));
    }
    s.push('\n');
    for f in ask.decision.blocking() {
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

/// The session's runtime approver, answering through `slot` on the server's runtime.
pub fn approver(slot: Arc<AskSlot>, rt: tokio::runtime::Handle) -> RuntimeApprover {
    Arc::new(move |ask: RuntimeAsk| {
        let (tx, rx) = std::sync::mpsc::channel();
        let asker = slot.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match asker {
            None => {
                let _ = tx.send(None);
            }
            Some(a) => {
                let text = message(&ask);
                rt.spawn(async move {
                    let answer = a
                        .peer
                        .create_elicitation_with_timeout(
                            super::approval::request(text),
                            Some(a.timeout),
                        )
                        .await;
                    let yes = matches!(&answer, Ok(r) if super::approval::approved(&r.action, r.content.as_ref()));
                    let _ = tx.send(yes.then_some(a.approver));
                });
            }
        }
        rx
    })
}
