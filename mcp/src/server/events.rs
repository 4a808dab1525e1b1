//! The server's event stream: every audit event every session records (redacted before it
//! is recorded), fanned out to MCP notifications and kept as a short per-session history
//! for the `execkit://sessions/{id}/history` resource.
//!
//! Why from the audit events: they are the one place every decision, result, process and
//! checkpoint passes through after redaction, so what a watching client sees is exactly
//! what the log holds and nothing an agent could not already read. Nothing flows back: the
//! hub has no way to change a session.
//!
//! MCP logging (`logging/setLevel`, `notifications/message`) and `resources/subscribe` are
//! deprecated by the 2026-07-28 protocol (SEP-2577, subscriptions/listen); both clients
//! execkit is tested with speak them, so they are served, and the lints say so once here.
#![allow(deprecated)]

use execkit_audit::{ApprovalEvent, AuditEvent, ProcessEvent, Verdict};
use execkit_runner::Observer;
use rmcp::model::LoggingLevel;
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// Events kept per session for the history resource.
pub const HISTORY_PER_SESSION: usize = 500;
/// Sessions whose history is kept (the oldest is forgotten first).
pub const HISTORY_SESSIONS: usize = 256;

/// Recent events of all sessions, replayed to a watcher that connects.
pub const RECENT: usize = 2000;

/// One published event: the event, when it happened, and its JSON line (the event's
/// fields and `time`, as in the audit log but without the chain) for socket watchers and
/// the history resource, written the first time someone reads it (most events are read by
/// nobody).
#[derive(Debug)]
pub struct Published {
    /// The audit event; `None` for a live progress line, which is not an audit event (it
    /// is never logged, kept in a history or replayed to a new watcher).
    pub event: Option<AuditEvent>,
    time: std::time::SystemTime,
    line: std::sync::OnceLock<Arc<str>>,
}

impl Published {
    fn event(event: AuditEvent) -> Published {
        Published {
            event: Some(event),
            time: std::time::SystemTime::now(),
            line: std::sync::OnceLock::new(),
        }
    }

    /// Its JSON line (no newline).
    pub fn line(&self) -> Arc<str> {
        self.line
            .get_or_init(|| Arc::from(self.value().to_string()))
            .clone()
    }

    /// Its JSON value (what [`Published::line`] writes).
    fn value(&self) -> Value {
        let mut v = self
            .event
            .as_ref()
            .and_then(|e| serde_json::to_value(e).ok())
            .unwrap_or(Value::Null);
        if let Some(o) = v.as_object_mut() {
            let now = humantime::format_rfc3339_millis(self.time);
            o.insert("time".into(), Value::String(now.to_string()));
        }
        v
    }
}

/// Per-session histories, and the order sessions first appeared in (to forget the oldest).
type Histories = (VecDeque<String>, HashMap<String, VecDeque<Arc<Published>>>);

/// Fans audit events out to whoever listens.
pub struct EventHub {
    tx: broadcast::Sender<Arc<Published>>,
    history: Mutex<Histories>,
    recent: Mutex<VecDeque<Arc<Published>>>,
    /// Socket watchers connected now: the only readers of progress lines (every MCP
    /// client subscribes too, and ignores them).
    watchers: Arc<std::sync::atomic::AtomicUsize>,
}

/// A connected socket watcher, counted while it lives.
pub struct Watcher(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Watcher {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Default for EventHub {
    fn default() -> Self {
        let (tx, _) = broadcast::channel(1024);
        EventHub {
            tx,
            history: Mutex::new((VecDeque::new(), HashMap::new())),
            recent: Mutex::new(VecDeque::new()),
            watchers: Arc::default(),
        }
    }
}

/// The session an event belongs to.
pub fn session_of(e: &AuditEvent) -> Option<&str> {
    match e {
        AuditEvent::Decision(d) => Some(&d.who.session),
        AuditEvent::Command(c) => Some(&c.who.session),
        AuditEvent::Transcript(t) => Some(&t.who.session),
        AuditEvent::Process(p) => Some(&p.who.session),
        AuditEvent::Checkpoint(c) => Some(&c.who.session),
        AuditEvent::Session(r) => Some(&r.who.session),
        AuditEvent::Approval(a) => Some(&a.who.session),
        _ => None,
    }
}

/// The agent identity an event is of (`None` for events of no session).
pub fn agent_of(e: &AuditEvent) -> Option<&str> {
    match e {
        AuditEvent::Decision(d) => Some(&d.who.agent),
        AuditEvent::Command(c) => Some(&c.who.agent),
        AuditEvent::Transcript(t) => Some(&t.who.agent),
        AuditEvent::Process(p) => Some(&p.who.agent),
        AuditEvent::Checkpoint(c) => Some(&c.who.agent),
        AuditEvent::Session(r) => Some(&r.who.agent),
        AuditEvent::Approval(a) => Some(&a.who.agent),
        _ => None,
    }
}

/// The MCP severity of an event and its one-line data, or `None` for events not worth a
/// notification.
pub fn log_line(e: &AuditEvent) -> Option<(LoggingLevel, Value)> {
    Some(match e {
        AuditEvent::Decision(d) => {
            let level = match d.verdict {
                Verdict::Allow => LoggingLevel::Info,
                Verdict::Ask => LoggingLevel::Notice,
                _ => LoggingLevel::Warning,
            };
            let policies: Vec<&String> = d
                .facts
                .iter()
                .filter(|f| f.verdict == d.verdict)
                .flat_map(|f| f.policies.iter())
                .collect();
            (
                level,
                json!({
                    "event": "decided",
                    "session": d.who.session,
                    "command": d.command,
                    "cwd": d.cwd,
                    "verdict": d.verdict,
                    "policies": policies,
                }),
            )
        }
        AuditEvent::Command(c) => (
            LoggingLevel::Info,
            json!({
                "event": "finished",
                "session": c.who.session,
                "command": c.command,
                "exit_code": c.exit_code,
                "duration_ms": c.duration_ms,
                "timed_out": c.timed_out,
            }),
        ),
        AuditEvent::Process(p) => match &p.event {
            ProcessEvent::Started { command, .. } => (
                LoggingLevel::Info,
                json!({"event": "process_started", "session": p.who.session, "process": p.process, "command": command}),
            ),
            ProcessEvent::Exited { exit_code, .. } => (
                LoggingLevel::Info,
                json!({"event": "process_exited", "session": p.who.session, "process": p.process, "exit_code": exit_code}),
            ),
            _ => return None,
        },
        AuditEvent::Session(r) => (
            LoggingLevel::Info,
            json!({
                "event": match r.event {
                    execkit_audit::SessionEvent::Opened => "session_opened",
                    _ => "session_closed",
                },
                "session": r.who.session,
                "transport": r.who.transport,
                "target": r.who.target,
            }),
        ),
        AuditEvent::Approval(a) => (
            LoggingLevel::Notice,
            json!({
                "event": match a.event {
                    ApprovalEvent::Requested => "approval_requested",
                    ApprovalEvent::Approved => "approval_granted",
                    _ => "approval_declined",
                },
                "session": a.who.session,
                "command": a.command,
                "approver": a.approver,
                "reason": a.reason,
            }),
        ),
        AuditEvent::Checkpoint(c) => (
            LoggingLevel::Info,
            json!({"event": "checkpoint", "session": c.who.session, "checkpoint": c.checkpoint, "what": c.event}),
        ),
        _ => return None,
    })
}

/// Orders MCP levels (`debug` lowest).
pub fn rank(l: LoggingLevel) -> u8 {
    match l {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

impl EventHub {
    /// The observer sessions are built with.
    pub fn observer(self: &Arc<Self>) -> Observer {
        let hub = self.clone();
        Arc::new(move |e: &AuditEvent| hub.publish(e))
    }

    fn publish(&self, e: &AuditEvent) {
        let published = Arc::new(Published::event(e.clone()));
        if let Some(s) = session_of(e) {
            if let Ok(mut h) = self.history.lock() {
                let (order, map) = &mut *h;
                if !map.contains_key(s) {
                    if order.len() >= HISTORY_SESSIONS {
                        if let Some(old) = order.pop_front() {
                            map.remove(&old);
                        }
                    }
                    order.push_back(s.to_string());
                }
                let q = map.entry(s.to_string()).or_default();
                if q.len() >= HISTORY_PER_SESSION {
                    q.pop_front();
                }
                q.push_back(published.clone());
            }
        }
        // The ring and the channel change together, under the ring's lock, so a watcher
        // that takes both (`subscribe_with_backlog`) sees every event exactly once.
        if let Ok(mut r) = self.recent.lock() {
            if r.len() >= RECENT {
                r.pop_front();
            }
            r.push_back(published.clone());
            // No listener is fine; a slow one misses events (and is told by the lag).
            let _ = self.tx.send(published);
        }
    }

    /// Whether a socket watcher is connected (progress lines are built only then).
    pub fn has_watchers(&self) -> bool {
        self.watchers.load(std::sync::atomic::Ordering::SeqCst) > 0
    }

    /// Publishes where a running command has got, for live watchers: elapsed time, byte
    /// counts and the end of its protected output so far (see
    /// [`execkit_runner::Progress`]). `command` must already be redacted.
    pub fn publish_progress(
        &self,
        session: &str,
        command: &str,
        elapsed_ms: u64,
        p: &execkit_runner::Progress,
    ) {
        let now = humantime::format_rfc3339_millis(std::time::SystemTime::now());
        let line = json!({
            "kind": "progress",
            "time": now.to_string(),
            "session": session,
            "command": command,
            "elapsed_ms": elapsed_ms,
            "stdout_bytes": p.stdout_bytes,
            "stderr_bytes": p.stderr_bytes,
            "stdout_tail": p.stdout_tail,
            "stderr_tail": p.stderr_tail,
        });
        let _ = self.tx.send(Arc::new(Published {
            event: None,
            time: std::time::SystemTime::now(),
            line: std::sync::OnceLock::from(Arc::from(line.to_string())),
        }));
    }

    /// New events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Published>> {
        self.tx.subscribe()
    }

    /// For a socket watcher: new events (progress lines included) from now on, and the
    /// recent ones before (nothing falls between); the watcher counts while it lives.
    pub fn subscribe_with_backlog(
        &self,
    ) -> (Vec<Arc<str>>, broadcast::Receiver<Arc<Published>>, Watcher) {
        self.watchers
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let watcher = Watcher(self.watchers.clone());
        let (recent, rx): (Vec<Arc<Published>>, _) = match self.recent.lock() {
            Ok(r) => (r.iter().cloned().collect(), self.tx.subscribe()),
            Err(_) => (Vec::new(), self.tx.subscribe()),
        };
        // Written outside the lock: publishing goes on meanwhile.
        (recent.iter().map(|p| p.line()).collect(), rx, watcher)
    }

    /// The recent events of a session, oldest first.
    pub fn history(&self, session: &str) -> Option<Vec<Value>> {
        let h = self.history.lock().ok()?;
        h.1.get(session)
            .map(|q| q.iter().map(|p| p.value()).collect())
    }
}
