//! Serving MCP over Streamable HTTP for several agents, each with its own identity.
//!
//! `execkit-mcp serve --http ADDR` puts rmcp's Streamable HTTP service at `/mcp` behind a
//! bearer-token layer (an OAuth 2.1 resource server: [`auth`]). A request without a valid
//! token is answered `401` with `WWW-Authenticate: Bearer resource_metadata="…"` and never
//! reaches MCP; the protected-resource metadata (RFC 9728) is served at
//! `/.well-known/oauth-protected-resource` (and `…/mcp`). The token's identity travels in
//! the request's extensions to the handler, which decides every command with it and keeps
//! each session to the identity that created it ([`crate::server::caller`]).
//!
//! The layer also binds each MCP session (`Mcp-Session-Id`) to the identity that opened
//! it — another identity's requests on it are answered `404` like an unknown session, so a
//! leaked session id does not let someone read another's notifications or answer their
//! approval prompts — and limits each identity's request rate ([`rate`]).
//!
//! TLS is left to a reverse proxy (HAProxy, nginx, a cloud load balancer) in front; bind
//! to loopback or a private interface.

pub mod auth;
mod rate;

use crate::operator::Operator;
use crate::server::caller::TokenIdentity;
use crate::server::{cancel_in_flight, close_all, reap_idle, ExecKitServer};
use anyhow::Context as _;
use auth::{AuthSettings, TokenError, Verifier};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt as _;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

/// The header MCP sessions are named by.
const SESSION_HEADER: &str = "mcp-session-id";

/// MCP session bindings kept before idle ones are forgotten.
const MAX_BINDINGS: usize = 4096;

/// How long an unused MCP session binding is kept once there are many.
const BINDING_IDLE: Duration = Duration::from_secs(3600);

struct Gate {
    verifier: Verifier,
    /// `WWW-Authenticate`'s `resource_metadata` URL.
    metadata_url: String,
    /// The protected-resource metadata document.
    metadata: serde_json::Value,
    /// MCP session id → the subject that opened it, and when it was last used.
    sessions: Mutex<HashMap<String, (String, std::time::Instant)>>,
    rate: rate::PerIdentity,
}

/// The operator's `[http.auth]` as verifier settings.
pub fn auth_settings(op: &Operator) -> anyhow::Result<AuthSettings> {
    let http = &op.config.http;
    let a = http.auth.as_ref().context(
        "the HTTP server needs [http.auth] (issuer, jwks_file, audience): it never serves without tokens",
    )?;
    let algorithms = a
        .algorithms
        .iter()
        .map(|s| {
            s.parse::<jsonwebtoken::Algorithm>()
                .map_err(|_| anyhow::anyhow!("http.auth.algorithms: unknown algorithm `{s}`"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let audiences = if a.audience.is_empty() {
        http.resource.iter().cloned().collect()
    } else {
        a.audience.clone()
    };
    Ok(AuthSettings {
        issuer: a.issuer.clone(),
        audiences,
        jwks_file: a.jwks_file.clone(),
        algorithms,
        subject_claim: a.subject_claim.clone(),
        groups_claim: a.groups_claim.clone(),
        leeway_secs: a.leeway_secs,
        required_scopes: a.required_scopes.clone(),
    })
}

/// Serves MCP over HTTP on `addr` until SIGINT/SIGTERM; then running commands are
/// cancelled, answered, and every session is closed.
pub async fn serve_http(op: Operator, addr: &str) -> anyhow::Result<()> {
    let settings = auth_settings(&op)?;
    let verifier = Verifier::new(settings.clone()).map_err(anyhow::Error::msg)?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    let resource = op
        .config
        .http
        .resource
        .clone()
        .unwrap_or_else(|| format!("http://{local}/mcp"));
    let origin = origin_of(&resource);
    let gate = Arc::new(Gate {
        verifier,
        metadata_url: format!("{origin}/.well-known/oauth-protected-resource"),
        metadata: serde_json::json!({
            "resource": resource,
            "authorization_servers": [settings.issuer],
            "bearer_methods_supported": ["header"],
            "scopes_supported": settings.required_scopes,
            "resource_name": "execkit",
        }),
        sessions: Mutex::new(HashMap::new()),
        rate: rate::PerIdentity::new(op.config.http.requests_per_minute),
    });
    let mut allowed_hosts = op.config.http.allowed_hosts.clone();
    allowed_hosts.push(local.to_string());
    tracing::info!(
        address = %local,
        resource = %resource,
        policies = %op.policy_set,
        "execkit-mcp serving Streamable HTTP"
    );
    // The line a supervisor (or a test) waits for.
    eprintln!("execkit-mcp: listening on http://{local}/mcp");

    let server = ExecKitServer::new(op);
    let shared = server.shared();
    let watcher = crate::server::watch_socket::start(&shared)?;
    let stop = CancellationToken::new();
    let service = StreamableHttpService::new(
        move || Ok(server.for_connection()),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default()
            .with_allowed_hosts(allowed_hosts)
            .with_cancellation_token(stop.child_token()),
    );
    let metadata = {
        let doc = gate.metadata.clone();
        move || async move { axum::Json(doc) }
    };
    let router = axum::Router::new()
        .nest_service("/mcp", service)
        .layer(axum::middleware::from_fn_with_state(gate.clone(), guard))
        .route(
            "/.well-known/oauth-protected-resource",
            axum::routing::get(metadata.clone()),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            axum::routing::get(metadata),
        );
    let reaper = tokio::spawn(reap_idle(shared.clone()));
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    let stopping = stop.clone();
    let shutdown = async move {
        let sig = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(signal = sig, "stopping: cancelling running commands");
        stopping.cancel();
    };
    // Answers are small and a client waits for each: no Nagle delay on the way back.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
    });
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .context("the HTTP server failed");
    cancel_in_flight(&shared, Duration::from_millis(500)).await;
    close_all(&shared).await;
    reaper.abort();
    if let Some(w) = watcher {
        w.abort();
    }
    served
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.split('/').next().unwrap_or(rest);
            format!("{scheme}://{host}")
        }
        None => url.trim_end_matches('/').to_string(),
    }
}

/// The layer in front of MCP: token, session binding, rate.
async fn guard(State(gate): State<Arc<Gate>>, mut req: Request, next: Next) -> Response {
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let identity = match gate.verifier.verify_header(header) {
        Ok(i) => i,
        Err(e) => return unauthorized(&gate, &e),
    };
    if let Err(wait) = gate.rate.admit(&identity.subject) {
        let mut r = (
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "{}: too many requests; the operator allows {} per minute per identity",
                identity.subject,
                gate.rate.per_minute()
            ),
        )
            .into_response();
        if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    let session = req
        .headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if let Some(sid) = &session {
        // Only sessions this server opened, and only for the identity that opened them: a
        // session id of another identity, or one this server never issued (or forgot), is
        // unknown.
        let mut sessions = gate.sessions.lock().unwrap_or_else(|p| p.into_inner());
        match sessions.get_mut(sid) {
            Some((owner, used)) if *owner == identity.subject => *used = std::time::Instant::now(),
            _ => return (StatusCode::NOT_FOUND, "no such MCP session").into_response(),
        }
    }
    let subject = identity.subject.clone();
    req.extensions_mut().insert::<TokenIdentity>(identity);
    let is_delete = req.method() == axum::http::Method::DELETE;
    let resp = next.run(req).await;
    let mut sessions = gate.sessions.lock().unwrap_or_else(|p| p.into_inner());
    match (
        &session,
        resp.headers()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok()),
    ) {
        // A new MCP session: it is the opener's. Bindings unused for an hour are forgotten
        // once there are many (their sessions are gone from rmcp by then).
        (None, Some(new)) => {
            if sessions.len() >= MAX_BINDINGS {
                sessions.retain(|_, (_, used)| used.elapsed() < BINDING_IDLE);
            }
            sessions.insert(new.to_string(), (subject, std::time::Instant::now()));
        }
        (Some(old), _) if is_delete && resp.status().is_success() => {
            sessions.remove(old);
        }
        _ => {}
    }
    resp
}

/// `401` (or `403` for a missing scope) with the challenge RFC 6750 and RFC 9728 describe.
fn unauthorized(gate: &Gate, e: &TokenError) -> Response {
    let mut challenge = format!("Bearer resource_metadata=\"{}\"", gate.metadata_url);
    if let Some(code) = e.code() {
        let text = e.to_string().replace(['"', '\\'], "'");
        challenge.push_str(&format!(", error=\"{code}\", error_description=\"{text}\""));
    }
    if let TokenError::InsufficientScope(scope) = e {
        challenge.push_str(&format!(", scope=\"{scope}\""));
    }
    let status = match e {
        TokenError::InsufficientScope(_) => StatusCode::FORBIDDEN,
        _ => StatusCode::UNAUTHORIZED,
    };
    let mut r = (status, e.to_string()).into_response();
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r
}
