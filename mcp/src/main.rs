//! `execkit` — the command-line interface. A thin binary: parsing arguments and printing;
//! the work happens in `execkit_cli` and the crates below it.

use clap::{Parser, Subcommand};
use execkit_cli::{audit_cmd, policy_cmd, redact_cmd, session_cmd, watch};
use std::process::ExitCode;

/// execkit: structured, policy-checked shell sessions for AI agents.
#[derive(Parser)]
#[command(name = "execkit", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Author, test and dry-run Cedar policies.
    #[command(subcommand)]
    Policy(policy_cmd::PolicyCommand),
    /// Strip escapes from and redact secrets in files or stdin (protected text to stdout,
    /// a JSON report to stderr).
    Redact(redact_cmd::RedactArgs),
    /// Check tamper-evident audit logs.
    #[command(subcommand)]
    Audit(audit_cmd::AuditCommand),
    /// Run a persistent sandboxed session: one command per stdin line (or NUL-separated
    /// with -0), one JSON result per stdout line (or, with --human, readable results).
    Session(session_cmd::SessionCmd),
    /// Run one command in a fresh sandboxed session and print its result (JSON, or
    /// readable with --human).
    Exec(session_cmd::ExecCmd),
    /// Report what this machine's kernel can enforce, proven by probes in a real session.
    Doctor(session_cmd::DoctorCmd),
    /// Watch what agents do, live and read-only: a terminal view that follows an audit log.
    Watch(watch::WatchArgs),
}

/// mimalloc: a fresh decision allocates and frees hundreds of small values (Cedar's
/// values, entity uids, the command IR); with glibc's allocator that is about a sixth of
/// a decision's instructions.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Policy(p) => policy_cmd::run(p),
        Command::Redact(a) => redact_cmd::run(a),
        Command::Audit(a) => audit_cmd::run(a),
        Command::Session(a) => session_cmd::session(a),
        Command::Exec(a) => session_cmd::exec(a),
        Command::Doctor(a) => session_cmd::doctor(a),
        Command::Watch(a) => match watch::run(a) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("execkit watch: {e:#}");
                ExitCode::from(1)
            }
        },
    }
}
