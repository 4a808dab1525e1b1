//! `execkit-mcp` — the MCP server (stdio or Streamable HTTP), its doctor and client setup.
//! A thin binary: the work happens in `execkit_cli::{serve, http, server, mcp_doctor, setup}`.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use execkit_cli::config::OperatorConfig;
use execkit_cli::operator::Operator;
use execkit_cli::{http, mcp_doctor, serve, setup};
use std::path::PathBuf;
use std::process::ExitCode;

/// execkit-mcp: policy-checked, sandboxed shell sessions for any MCP agent.
///
/// With no subcommand it serves MCP on stdin/stdout. The operator's settings come from
/// `--config` (or `EXECKIT_CONFIG`) and `EXECKIT_*` variables; nothing a client sends can
/// widen them.
#[derive(Parser)]
#[command(name = "execkit-mcp", version, about)]
struct Cli {
    /// The operator's TOML config file (default: `EXECKIT_CONFIG`, else built-in defaults).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve MCP on stdio (the default), or on Streamable HTTP with `--http ADDR` (or
    /// `[http] address`), where every request needs a bearer token ([http.auth]).
    Serve {
        /// Listen on this address (`127.0.0.1:8080`) instead of stdio.
        #[arg(long, value_name = "ADDR")]
        http: Option<String>,
    },
    /// Check that this machine can run the server as configured; exit 1 if not.
    Doctor {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the block that registers this binary with an MCP client.
    Setup {
        /// claude, cursor, codex or gemini.
        client: setup::Client,
    },
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")
}

/// mimalloc: a fresh decision allocates and frees hundreds of small values (Cedar's
/// values, entity uids, the command IR); with glibc's allocator that is about a sixth of
/// a decision's instructions.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = || OperatorConfig::load(cli.config.as_deref());
    let stdio = Command::Serve { http: None };
    let result: anyhow::Result<ExitCode> = match cli.command.as_ref().unwrap_or(&stdio) {
        Command::Serve { http: flag } => (|| {
            serve::init_logging();
            let config = config()?;
            if let Some(addr) = flag.clone().or_else(|| config.http.address.clone()) {
                let op = Operator::new(config)?;
                let rt = runtime()?;
                rt.block_on(http::serve_http(op, &addr))?;
                rt.shutdown_timeout(std::time::Duration::from_millis(500));
                return Ok(ExitCode::SUCCESS);
            }
            let op = Operator::new(config)?;
            let rt = runtime()?;
            let served = rt.block_on(serve::serve_stdio(op));
            // A blocking read of a stdin the client keeps open cannot be interrupted: do
            // not wait for it.
            rt.shutdown_timeout(std::time::Duration::from_millis(100));
            served?;
            Ok(ExitCode::SUCCESS)
        })(),
        Command::Doctor { json } => (|| {
            let report = runtime()?.block_on(mcp_doctor::run(config()?));
            if *json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.render());
            }
            Ok(if report.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        })(),
        Command::Setup { client } => (|| {
            let exe = std::env::current_exe()
                .and_then(|p| p.canonicalize())
                .context("cannot find this binary's path")?;
            let cfg = match &cli.config {
                Some(c) => Some(
                    c.canonicalize()
                        .with_context(|| format!("{}", c.display()))?,
                ),
                None => None,
            };
            print!("{}", setup::snippet(*client, &exe, cfg.as_deref()));
            Ok(ExitCode::SUCCESS)
        })(),
    };
    match result {
        Ok(c) => c,
        Err(e) => {
            eprintln!("execkit-mcp: {e:#}");
            ExitCode::from(2)
        }
    }
}
