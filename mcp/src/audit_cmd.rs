//! `execkit audit verify FILE`: checks an audit log's hash chain.

use clap::Subcommand;
use execkit_audit::{verify_file, Anchor, VerifyOptions};
use std::path::PathBuf;
use std::process::ExitCode;

/// `execkit audit …`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify a log: reports the first edited, missing, reordered or malformed record, or a
    /// truncated last line, and checks the log against its anchor (`FILE.head`, written by
    /// the server after each record) when there is one: records removed from the end or a
    /// rewrite with recomputed hashes. Exit 0 intact, 2 damaged, 1 unreadable.
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
        /// Do not check against `FILE.head` (a log copied without its anchor).
        #[arg(long)]
        no_anchor: bool,
    },
}

/// Runs an `audit` subcommand.
pub fn run(cmd: AuditCommand) -> ExitCode {
    let AuditCommand::Verify {
        file,
        head,
        json,
        no_anchor,
    } = cmd;
    let anchor = if no_anchor {
        None
    } else {
        match Anchor::beside(&file) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("execkit audit verify: cannot read the anchor: {e}");
                return ExitCode::from(1);
            }
        }
    };
    let anchored = anchor.as_ref().map(|a| a.seq);
    let options = VerifyOptions {
        expect_head: head,
        anchor,
    };
    let report = match verify_file(&file, &options) {
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
                "ok: {} records, chain intact{}; head {}",
                report.records,
                anchored
                    .map(|s| format!(", anchor (seq {s}) matches"))
                    .unwrap_or_default(),
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
