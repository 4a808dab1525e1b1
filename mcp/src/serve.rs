//! Running the MCP server on stdio: stdout carries only protocol, logs go to stderr.

use crate::operator::Operator;
use crate::server::{cancel_in_flight, close_all, reap_idle, ExecKitServer};
use crate::wire;
use anyhow::Context as _;
use rmcp::transport::async_rw::AsyncRwTransport;
use rmcp::{RoleServer, ServiceExt};
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};

/// Sends logs to stderr, filtered by `RUST_LOG` (default: `execkit=info,rmcp=warn`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("execkit=info,rmcp=warn"));
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init();
}

/// Serves MCP on stdin/stdout until the client disconnects or a SIGINT/SIGTERM arrives.
///
/// On a signal: running commands are cancelled and every `session_exec` call in flight is
/// answered (up to 500 ms), then every session is closed (killing their process trees).
/// Stdin may stay open: the caller should shut its runtime down with a timeout, since a
/// blocking stdin read cannot be interrupted.
pub async fn serve_stdio(op: Operator) -> anyhow::Result<()> {
    tracing::info!(
        policies = %op.policy_set,
        workspace = %op.default_workspace.display(),
        profile = ?op.config.sandbox.profile,
        "execkit-mcp starting"
    );
    let max_line = op.config.limits.max_message_bytes;
    let server = ExecKitServer::new(op);
    let shared = server.shared();
    let watcher = crate::server::watch_socket::start(&shared)?;
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    let stop = async {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    };
    tokio::pin!(stop);
    let ((read, write), wire) = wire::guard(tokio::io::stdin(), tokio::io::stdout(), max_line);
    // The wire enforces the operator's cap; the library must not apply a smaller one.
    let transport =
        AsyncRwTransport::<RoleServer, _, _>::new(read, write).with_max_line_length(usize::MAX);
    let reaper = tokio::spawn(reap_idle(shared.clone()));
    let service = tokio::select! {
        s = server.serve(transport) => s.context("MCP handshake failed")?,
        sig = &mut stop => {
            tracing::info!(signal = sig, "stopping before the handshake");
            reaper.abort();
            return Ok(());
        }
    };
    let ct = service.cancellation_token();
    let waiting = service.waiting();
    tokio::pin!(waiting);
    let outcome = tokio::select! {
        r = &mut waiting => r
            .map(|q| tracing::info!(reason = ?q, "client disconnected"))
            .context("the MCP service task failed"),
        sig = &mut stop => {
            tracing::info!(signal = sig, "stopping: cancelling running commands");
            cancel_in_flight(&shared, Duration::from_millis(500)).await;
            // Let the service write the answers it was just given, then stop it.
            tokio::time::sleep(Duration::from_millis(30)).await;
            ct.cancel();
            let _ = tokio::time::timeout(Duration::from_millis(200), &mut waiting).await;
            Ok(())
        }
    };
    reaper.abort();
    if let Some(w) = watcher {
        w.abort();
    }
    close_all(&shared).await;
    let _ = tokio::time::timeout(Duration::from_millis(200), wire.writer).await;
    outcome
}
