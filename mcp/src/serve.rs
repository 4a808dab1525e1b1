//! Running the MCP server on stdio: stdout carries only protocol, logs go to stderr.

use crate::operator::Operator;
use crate::server::{close_all, reap_idle, ExecKitServer};
use anyhow::Context as _;
use rmcp::ServiceExt;

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

/// Serves MCP on stdin/stdout until the client disconnects or a SIGINT/SIGTERM arrives,
/// then closes every session (killing their process trees).
pub async fn serve_stdio(op: Operator) -> anyhow::Result<()> {
    tracing::info!(
        policies = %op.policy_set,
        workspace = %op.default_workspace.display(),
        profile = ?op.config.sandbox.profile,
        "execkit-mcp starting"
    );
    let server = ExecKitServer::new(op);
    let shared = server.shared();
    let reaper = tokio::spawn(reap_idle(shared.clone()));
    let service = server
        .serve(rmcp::transport::stdio())
        .await
        .context("MCP handshake failed")?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot watch SIGTERM")?;
    let outcome = tokio::select! {
        r = service.waiting() => r.map(|q| tracing::info!(reason = ?q, "client disconnected")).context("the MCP service task failed"),
        _ = tokio::signal::ctrl_c() => { tracing::info!("SIGINT"); Ok(()) }
        _ = term.recv() => { tracing::info!("SIGTERM"); Ok(()) }
    };
    reaper.abort();
    close_all(&shared).await;
    outcome
}
