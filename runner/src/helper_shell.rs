//! A shell held by the remote helper: the same operations as a local shell, answered by
//! the helper from the remote kernel (`/proc` of the shell it started) over its link.
//!
//! Process ids here are the shell's own (`$$`, `$!` — in its PID namespace where it has
//! one); the helper translates them and signals only processes of the session.

use crate::helper_link::Link;
use execkit_helper::msg::{Call, Rotated, Waiting};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A remote shell behind the helper.
pub(crate) struct HelperShell {
    pub(crate) link: Arc<Link>,
    /// Decides the programs the helper stops at their start (when it does).
    pub(crate) decider: Option<Arc<crate::exec_guard::RuntimeDecider>>,
    /// The shell's cwd as the remote kernel had it when the last command was over.
    pub(crate) cwd: std::sync::Mutex<Option<String>>,
}

/// Answers the helper's questions about programs stopped at their start, connections to
/// Unix socket files outside the session and connections through its egress broker, each
/// on the blocking pool (a decision may wait for a human), until the link ends.
pub(crate) fn answer_asks(
    link: Arc<Link>,
    decider: Arc<crate::exec_guard::RuntimeDecider>,
    mut asks: tokio::sync::mpsc::Receiver<execkit_helper::msg::ExecAsk>,
) {
    tokio::spawn(async move {
        while let Some(ask) = asks.recv().await {
            let (link, decider) = (link.clone(), decider.clone());
            tokio::spawn(async move {
                let refused = execkit_helper::msg::ExecVerdict {
                    id: ask.id,
                    allow: false,
                    remember: false,
                    connection: ask.connection.is_some(),
                    reason: Some("the decision failed".into()),
                    approved_by: None,
                };
                let verdict = tokio::task::spawn_blocking(move || decide(&decider, ask)).await;
                link.verdict(verdict.unwrap_or(refused)).await;
            });
        }
    });
}

/// The server's answer to one of the helper's asks.
fn decide(
    decider: &crate::exec_guard::RuntimeDecider,
    ask: execkit_helper::msg::ExecAsk,
) -> execkit_helper::msg::ExecVerdict {
    use crate::egress::judge::{judge, refuse_unread};
    let mut v = execkit_helper::msg::ExecVerdict {
        id: ask.id,
        allow: false,
        remember: false,
        connection: ask.connection.is_some(),
        reason: None,
        approved_by: None,
    };
    if let Some(c) = ask.connection {
        let conn = execkit_engine::Connection {
            host: c.host,
            port: c.port,
            scheme: c.scheme,
            program: ask.start.program,
            address: c.address,
        };
        let j = match &c.unreadable {
            Some(why) => refuse_unread(decider, &conn, why),
            None => judge(decider, &conn, c.approved_by.as_deref()),
        };
        (v.allow, v.approved_by) = (j.allow, j.approved_by);
        v.reason = (!j.allow).then_some(j.reason);
    } else if let Some(path) = &ask.socket {
        let c = execkit_engine::Connection::unix(path, ask.start.program.clone());
        v.allow = judge(decider, &c, None).allow;
    } else {
        let mut j = decider.judge(&ask.start);
        decider.record(&ask.start, &mut j);
        (v.allow, v.remember) = (j.allow, j.remember);
        if v.allow && !ask.interpreters.is_empty() {
            v.allow = decider
                .judge_interpreters(&ask.start, ask.interpreters)
                .is_none();
            v.remember = false;
        }
    }
    v
}

impl HelperShell {
    pub(crate) async fn write(&self, bytes: &[u8]) -> std::io::Result<()> {
        self.link.input(bytes).await
    }

    pub(crate) async fn wait_exit(&self) -> Option<i32> {
        // The link's exit watch is shared through the Arc: a fresh receiver each time.
        self.link.exit_code().await
    }

    /// If the shell is blocked reading its stdin from us (the command is over), its
    /// children then.
    pub(crate) async fn confirm_over(&self) -> Option<Vec<i32>> {
        let w: Waiting = self.link.call_as(&Call::Waiting).await?;
        if w.waiting {
            if let Ok(mut c) = self.cwd.lock() {
                *c = w.cwd;
            }
        }
        w.waiting.then_some(w.children)
    }

    /// The shell's children's groups to signal (a child in the shell's own group as its
    /// negated pid), leaving out `except`.
    pub(crate) async fn child_groups(&self, except: &[i32]) -> Vec<i32> {
        let kids: Vec<(i32, i32)> = self.link.call_as(&Call::Children).await.unwrap_or_default();
        kids.into_iter()
            .filter(|(c, _)| !except.contains(c))
            .map(|(c, g)| if g == 0 { -c } else { g })
            .collect()
    }

    pub(crate) async fn signal(&self, targets: &[i32], sig: i32) {
        if !targets.is_empty() {
            let _ = self
                .link
                .call(&Call::Signal {
                    targets: targets.to_vec(),
                    sig,
                })
                .await;
        }
    }

    pub(crate) async fn signal_shell(&self, sig: i32) {
        let _ = self.link.call(&Call::SignalShell { sig }).await;
    }

    /// New FIFOs for the next command: the shell code that switches to them, and the
    /// generation that is current from now on.
    pub(crate) async fn rotate(&self, current: &Arc<AtomicU64>) -> Option<String> {
        let r: Rotated = self.link.call_as(&Call::Rotate).await?;
        current.store(r.generation, Ordering::SeqCst);
        // Single quotes: the same in bash and a POSIX sh.
        Some(format!(
            "exec 1>|{} 2>|{}; ",
            crate::frame::single_quote(&r.stdout),
            crate::frame::single_quote(&r.stderr)
        ))
    }

    /// The kernel's cwd of the shell when the last command was over.
    pub(crate) fn cwd(&self) -> Option<std::path::PathBuf> {
        self.cwd.lock().ok()?.clone().map(std::path::PathBuf::from)
    }

    pub(crate) fn kill_all(&self) {
        self.link.close();
    }
}
