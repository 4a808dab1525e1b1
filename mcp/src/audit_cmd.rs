//! `execkit audit verify FILE`: checks an audit log's hash chain.

use clap::Subcommand;
use execkit_audit::{verify_file, VerifyOptions};
use std::path::PathBuf;
use std::process::ExitCode;

/// `execkit audit …`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify a log: reports the first edited, missing, reordered or malformed record, or a
    /// truncated last line. Exit 0 intact, 2 damaged, 1 unreadable.
    Verify {
        /// The audit log (JSON Lines).
        file: PathBuf,
        /// The hash the last record must have (an anchor kept elsewhere); detects records
        /// removed from the end.
        #[arg(long, value_name = "HASH")]
        head: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs an `audit` subcommand.
pub fn run(cmd: AuditCommand) -> ExitCode {
    let AuditCommand::Verify { file, head, json } = cmd;
    let report = match verify_file(&file, &VerifyOptions { expect_head: head }) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("execkit audit verify: cannot read {}: {e}", file.display());
            return ExitCode::from(1);
        }
    };
    if json {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        match &report.problem {
            None => crate::outln!(
                "ok: {} records, chain intact; head {}",
                report.records,
                report.head.as_deref().unwrap_or("(empty log)")
            ),
            Some(p) => {
                crate::outln!("DAMAGED: {p}");
                crate::outln!(
                    "{} records before it verified; last good seq {}",
                    report.records,
                    report
                        .last_seq
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| "none".into())
                );
            }
        }
    }
    if report.problem.is_some() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}
