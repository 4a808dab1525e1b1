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

use execkit_audit::{AuditEvent, ProcessEvent, Verdict};
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

/// One published event: the event, and its JSON line (the event's fields and `time`, as in
/// the audit log but without the chain) for socket watchers.
#[derive(Debug)]
pub struct Published {
    /// The event.
    pub event: AuditEvent,
    /// Its JSON line (no newline).
    pub line: Arc<str>,
}

/// Per-session histories, and the order sessions first appeared in (to forget the oldest).
type Histories = (VecDeque<String>, HashMap<String, VecDeque<Value>>);

/// Fans audit events out to whoever listens.
pub struct EventHub {
    tx: broadcast::Sender<Arc<Published>>,
    history: Mutex<Histories>,
    recent: Mutex<VecDeque<Arc<str>>>,
}

impl Default for EventHub {
    fn default() -> Self {
        let (tx, _) = broadcast::channel(1024);
        EventHub {
            tx,
            history: Mutex::new((VecDeque::new(), HashMap::new())),
            recent: Mutex::new(VecDeque::new()),
        }
    }
}

/// The session an event belongs to.
pub fn session_of(e: &AuditEvent) -> Option<&str> {
    match e {
        AuditEvent::Decision(d) => Some(&d.who.session),
        AuditEvent::Command(c) => Some(&c.who.session),
        AuditEvent::Process(p) => Some(&p.who.session),
        AuditEvent::Checkpoint(c) => Some(&c.who.session),
        AuditEvent::Session(r) => Some(&r.who.session),
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
        let Ok(mut v) = serde_json::to_value(e) else {
            return;
        };
        if let Some(o) = v.as_object_mut() {
            let now = humantime::format_rfc3339_millis(std::time::SystemTime::now());
            o.insert("time".into(), Value::String(now.to_string()));
        }
        let line: Arc<str> = Arc::from(v.to_string());
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
                q.push_back(v);
            }
        }
        // The ring and the channel change together, under the ring's lock, so a watcher
        // that takes both (`subscribe_with_backlog`) sees every event exactly once.
        if let Ok(mut r) = self.recent.lock() {
            if r.len() >= RECENT {
                r.pop_front();
            }
            r.push_back(line.clone());
            // No listener is fine; a slow one misses events (and is told by the lag).
            let _ = self.tx.send(Arc::new(Published {
                event: e.clone(),
                line,
            }));
        }
    }

    /// New events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Published>> {
        self.tx.subscribe()
    }

    /// New events from now on, and the recent ones before (nothing falls between).
    pub fn subscribe_with_backlog(&self) -> (Vec<Arc<str>>, broadcast::Receiver<Arc<Published>>) {
        match self.recent.lock() {
            Ok(r) => (r.iter().cloned().collect(), self.tx.subscribe()),
            Err(_) => (Vec::new(), self.tx.subscribe()),
        }
    }

    /// The recent events of a session, oldest first.
    pub fn history(&self, session: &str) -> Option<Vec<Value>> {
        let h = self.history.lock().ok()?;
        h.1.get(session).map(|q| q.iter().cloned().collect())
    }
}
