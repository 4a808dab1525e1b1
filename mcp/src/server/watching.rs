//! Letting an MCP client watch: `notifications/message` lines at the level the client set
//! with `logging/setLevel` (none before it sets one), and the resources
//! `execkit://sessions` and `execkit://sessions/{id}/history` with `resources/subscribe`
//! updates. Both are fed by the [`EventHub`](super::events::EventHub), so a client sees the
//! redacted audit events and nothing else; none of it can change a session.
//!
//! On the 2026-07-28 protocol a client instead opens a `subscriptions/listen` stream naming
//! the resources it wants updates for ([`accepted_filter`], [`ExecKitServer::listen_for_updates`]).
//!
//! MCP logging (`logging/setLevel`, `notifications/message`) and `resources/subscribe` are
//! deprecated by the 2026-07-28 protocol (SEP-2577, subscriptions/listen); both clients
//! execkit is tested with speak them, so they are served, and the lints say so once here.
#![allow(deprecated)]

use super::caller::Caller;
use super::events::{agent_of, log_line, rank, session_of};
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
    /// Starts forwarding events to this client (once per server handler): on HTTP only
    /// the events of the caller's own sessions.
    pub(super) fn start_watching(&self, peer: Peer<RoleServer>, caller: Caller) {
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
            // The task ends with the client: when its transport closes (checked every few
            // seconds, so an idle server does not keep one task per gone client) or a send
            // to it fails.
            let mut check = tokio::time::interval(std::time::Duration::from_secs(5));
            loop {
                let received = tokio::select! {
                    r = rx.recv() => r,
                    _ = check.tick() => {
                        if peer.is_transport_closed() {
                            return;
                        }
                        continue;
                    }
                };
                let e = match received {
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
                // Live progress lines are for socket watchers only.
                let Some(event) = &e.event else { continue };
                if !sees(&caller, event) {
                    continue;
                }
                if let Some((level, data)) = log_line(event) {
                    if watch.wants(level) {
                        let p = LoggingMessageNotificationParam::new(level, data)
                            .with_logger("execkit");
                        if peer.notify_logging_message(p).await.is_err() {
                            return;
                        }
                    }
                }
                if let Some(s) = session_of(event) {
                    let uri = history_uri(s);
                    if watch.is_subscribed(&uri)
                        && peer
                            .notify_resource_updated(ResourceUpdatedNotificationParam::new(uri))
                            .await
                            .is_err()
                    {
                        return;
                    }
                    if watch.is_subscribed(SESSIONS_URI)
                        && peer
                            .notify_resource_updated(ResourceUpdatedNotificationParam::new(
                                SESSIONS_URI,
                            ))
                            .await
                            .is_err()
                    {
                        return;
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
        for e in self.entries() {
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
        } else if let Some(id) = history_session(uri).filter(|id| self.may_read_history(id)) {
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

/// Whether `caller` may see `event`: the stdio client sees every event; an HTTP caller
/// those of its own identity; nobody nothing.
fn sees(caller: &Caller, event: &execkit_audit::AuditEvent) -> bool {
    match caller {
        Caller::Operator => true,
        Caller::Token(t) => agent_of(event) == Some(t.subject.as_str()),
        Caller::Nobody => false,
    }
}

impl ExecKitServer {
    /// A session's history is readable by the stdio client, and by an HTTP caller while
    /// the session is open and its own.
    fn may_read_history(&self, id: &str) -> bool {
        match Caller::current() {
            Caller::Operator => true,
            Caller::Token(_) => self.entry(id).is_some(),
            Caller::Nobody => false,
        }
    }
}

/// The part of a `subscriptions/listen` filter served here: updates of
/// `execkit://sessions` and of session histories (URIs of another form are left out, so the
/// acknowledgment tells the client what it will get). List-change notifications are not
/// offered: the resource list only grows with sessions, which `execkit://sessions` reports.
pub fn accepted_filter(
    requested: &rmcp::model::SubscriptionFilter,
) -> rmcp::model::SubscriptionFilter {
    let uris: Vec<String> = requested
        .resource_subscriptions
        .iter()
        .flatten()
        .filter(|u| u.as_str() == SESSIONS_URI || history_session(u).is_some())
        .cloned()
        .collect();
    rmcp::model::SubscriptionFilter::builder()
        .resource_subscriptions(uris)
        .build()
}

impl ExecKitServer {
    /// Serves one `subscriptions/listen` stream until the client cancels it: a
    /// `notifications/resources/updated` for each accepted URI an event touches.
    pub(super) async fn listen_for_updates(
        &self,
        context: rmcp::service::SubscriptionContext,
    ) -> Result<(), ErrorData> {
        let caller = self.caller_of(&context.request_context().extensions);
        let mut rx = self.shared.op.events.subscribe();
        let accepted: HashSet<String> = context
            .accepted()
            .resource_subscriptions
            .iter()
            .flatten()
            .cloned()
            .collect();
        loop {
            let e = tokio::select! {
                _ = context.cancelled() => return Ok(()),
                e = rx.recv() => e,
            };
            let e = match e {
                Ok(e) => e,
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return Ok(()),
            };
            let Some(event) = e.event.as_ref().filter(|ev| sees(&caller, ev)) else {
                continue;
            };
            let Some(session) = session_of(event) else {
                continue;
            };
            for uri in [history_uri(session), SESSIONS_URI.to_string()] {
                if !accepted.contains(&uri) {
                    continue;
                }
                let n = rmcp::model::ServerNotification::ResourceUpdatedNotification(
                    rmcp::model::Notification::new(ResourceUpdatedNotificationParam::new(uri)),
                );
                if context.sink().send(n).await.is_err() {
                    return Ok(());
                }
            }
        }
    }
}

/// The next event of an optional subscription (pending forever without one; `None` once
/// it is closed). A slow reader skips what it missed.
pub async fn next_event(
    rx: Option<&mut tokio::sync::broadcast::Receiver<std::sync::Arc<super::events::Published>>>,
) -> Option<std::sync::Arc<super::events::Published>> {
    let Some(rx) = rx else {
        return std::future::pending().await;
    };
    loop {
        match rx.recv().await {
            Ok(e) => return Some(e),
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => return None,
        }
    }
}

impl ExecKitServer {
    /// Sends one event of `session` to the requesting client as `notifications/message`,
    /// if its level is at least `min` (the request's `_meta` log level).
    pub(super) async fn log_for_request(
        &self,
        e: &super::events::Published,
        session: &str,
        min: LoggingLevel,
        ctx: &rmcp::service::RequestContext<RoleServer>,
    ) {
        let Some(event) = &e.event else { return };
        if session_of(event) != Some(session) {
            return;
        }
        let Some((level, data)) = log_line(event) else {
            return;
        };
        if rank(level) < rank(min) {
            return;
        }
        let p = LoggingMessageNotificationParam::new(level, data).with_logger("execkit");
        if let Err(err) = ctx.peer.notify_logging_message(p).await {
            tracing::debug!(%err, "log notification not sent");
        }
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
