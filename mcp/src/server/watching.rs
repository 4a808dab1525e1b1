//! Letting an MCP client watch: `notifications/message` lines at the level the client set
//! with `logging/setLevel` (none before it sets one), and the resources
//! `execkit://sessions` and `execkit://sessions/{id}/history` with `resources/subscribe`
//! updates. Both are fed by the [`EventHub`](super::events::EventHub), so a client sees the
//! redacted audit events and nothing else; none of it can change a session.
//!
//! MCP logging (`logging/setLevel`, `notifications/message`) and `resources/subscribe` are
//! deprecated by the 2026-07-28 protocol (SEP-2577, subscriptions/listen); both clients
//! execkit is tested with speak them, so they are served, and the lints say so once here.
#![allow(deprecated)]

use super::events::{log_line, rank, session_of};
use super::ExecKitServer;
use rmcp::model::{
    ListResourceTemplatesResult, ListResourcesResult, LoggingLevel,
    LoggingMessageNotificationParam, ReadResourceResult, Resource, ResourceContents,
    ResourceTemplate, ResourceUpdatedNotificationParam,
};
use rmcp::service::Peer;
use rmcp::{ErrorData, RoleServer};
use std::collections::HashSet;
use std::sync::Mutex;
use tokio::sync::broadcast::error::RecvError;

/// The URI of the session list.
pub const SESSIONS_URI: &str = "execkit://sessions";
/// The URI template of one session's history.
pub const HISTORY_TEMPLATE: &str = "execkit://sessions/{id}/history";

/// One client's watching state.
#[derive(Debug, Default)]
pub struct Watching {
    level: Mutex<Option<LoggingLevel>>,
    subscribed: Mutex<HashSet<String>>,
    started: std::sync::atomic::AtomicBool,
}

fn history_uri(session: &str) -> String {
    format!("execkit://sessions/{session}/history")
}

/// The session id in a history URI.
fn history_session(uri: &str) -> Option<&str> {
    uri.strip_prefix("execkit://sessions/")?
        .strip_suffix("/history")
        .filter(|s| !s.is_empty() && !s.contains('/'))
}

impl Watching {
    /// Sets the lowest level the client wants.
    pub fn set_level(&self, level: LoggingLevel) {
        if let Ok(mut l) = self.level.lock() {
            *l = Some(level);
        }
    }

    fn wants(&self, level: LoggingLevel) -> bool {
        self.level
            .lock()
            .ok()
            .and_then(|l| *l)
            .is_some_and(|min| rank(level) >= rank(min))
    }

    /// Subscribes to a resource (a known URI form only).
    pub fn subscribe(&self, uri: &str) -> Result<(), ErrorData> {
        if uri != SESSIONS_URI && history_session(uri).is_none() {
            return Err(ErrorData::invalid_params(
                format!("no such resource `{uri}`"),
                None,
            ));
        }
        if let Ok(mut s) = self.subscribed.lock() {
            s.insert(uri.to_string());
        }
        Ok(())
    }

    /// Unsubscribes.
    pub fn unsubscribe(&self, uri: &str) {
        if let Ok(mut s) = self.subscribed.lock() {
            s.remove(uri);
        }
    }

    fn is_subscribed(&self, uri: &str) -> bool {
        self.subscribed.lock().is_ok_and(|s| s.contains(uri))
    }
}

impl ExecKitServer {
    /// Starts forwarding events to this client (once per server handler).
    pub(super) fn start_watching(&self, peer: Peer<RoleServer>) {
        if self
            .watch
            .started
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return;
        }
        let mut rx = self.shared.op.events.subscribe();
        let watch = self.watch.clone();
        tokio::spawn(async move {
            loop {
                let e = match rx.recv().await {
                    Ok(e) => e,
                    Err(RecvError::Lagged(n)) => {
                        if watch.wants(LoggingLevel::Warning) {
                            let p = LoggingMessageNotificationParam::new(
                                LoggingLevel::Warning,
                                serde_json::json!({"event": "missed", "events": n}),
                            )
                            .with_logger("execkit");
                            let _ = peer.notify_logging_message(p).await;
                        }
                        continue;
                    }
                    Err(RecvError::Closed) => return,
                };
                if let Some((level, data)) = log_line(&e.event) {
                    if watch.wants(level) {
                        let p = LoggingMessageNotificationParam::new(level, data)
                            .with_logger("execkit");
                        if peer.notify_logging_message(p).await.is_err() {
                            return;
                        }
                    }
                }
                if let Some(s) = session_of(&e.event) {
                    let uri = history_uri(s);
                    if watch.is_subscribed(&uri) {
                        let _ = peer
                            .notify_resource_updated(ResourceUpdatedNotificationParam::new(uri))
                            .await;
                    }
                    if watch.is_subscribed(SESSIONS_URI) {
                        let _ = peer
                            .notify_resource_updated(ResourceUpdatedNotificationParam::new(
                                SESSIONS_URI,
                            ))
                            .await;
                    }
                }
            }
        });
    }

    /// `resources/list`: the session list and each open session's history.
    pub(super) async fn resources(&self) -> ListResourcesResult {
        let mut items = vec![Resource::new(SESSIONS_URI, "sessions")
            .with_description("The open sessions (what session_list returns), as JSON.")
            .with_mime_type("application/json")];
        for e in self.shared.table.all() {
            let id = e.session.id().to_string();
            items.push(
                Resource::new(history_uri(&id), format!("history of {id}"))
                    .with_description("The session's recent audit events (redacted), oldest first.")
                    .with_mime_type("application/json"),
            );
        }
        ListResourcesResult::with_all_items(items)
    }

    /// `resources/templates/list`.
    pub(super) fn resource_templates() -> ListResourceTemplatesResult {
        ListResourceTemplatesResult::with_all_items(vec![ResourceTemplate::new(
            HISTORY_TEMPLATE,
            "session history",
        )
        .with_description("A session's recent audit events (redacted), oldest first.")
        .with_mime_type("application/json")])
    }

    /// `resources/read`.
    pub(super) async fn read(&self, uri: &str) -> Result<ReadResourceResult, ErrorData> {
        let text = if uri == SESSIONS_URI {
            serde_json::to_string_pretty(&self.list_output().await)
        } else if let Some(id) = history_session(uri) {
            let events = self.shared.op.events.history(id).ok_or_else(|| {
                ErrorData::resource_not_found(format!("no history for session `{id}`"), None)
            })?;
            serde_json::to_string_pretty(&events)
        } else {
            return Err(ErrorData::resource_not_found(
                format!("no such resource `{uri}`"),
                None,
            ));
        }
        .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        Ok(ReadResourceResult::new(vec![ResourceContents::text(
            text, uri,
        )
        .with_mime_type("application/json")]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_history_uris_name_a_session() {
        assert_eq!(
            history_session("execkit://sessions/ab12/history"),
            Some("ab12")
        );
        for bad in [
            "execkit://sessions//history",
            "execkit://sessions/a/b/history",
            "execkit://sessions/ab12",
            "file:///etc/passwd",
        ] {
            assert_eq!(history_session(bad), None, "{bad}");
        }
        let w = Watching::default();
        assert!(w.subscribe("execkit://sessions/../../etc").is_err());
        assert!(!w.wants(LoggingLevel::Emergency), "nothing before setLevel");
        w.set_level(LoggingLevel::Warning);
        assert!(w.wants(LoggingLevel::Error));
        assert!(!w.wants(LoggingLevel::Info));
    }
}
