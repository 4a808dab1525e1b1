//! `execkit audit verify FILE`: checks an audit log's hash chain; `execkit audit export`:
//! the verified records for batch loads into a SIEM, as they are (JSON Lines) or as OCSF
//! events.

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
    /// Write a log's records to stdout, one JSON object per line, after verifying the
    /// whole chain (a damaged log exports nothing: exit 2). `jsonl`: the records as the
    /// log holds them; `ocsf`: OCSF 1.1.0 events (Process Activity for decisions and
    /// commands, API Activity for sessions and the rest; the full record is kept under
    /// `unmapped.execkit`).
    Export {
        /// The audit log (JSON Lines).
        file: PathBuf,
        /// `jsonl` or `ocsf`.
        #[arg(long, value_enum, default_value = "jsonl")]
        format: ExportFormat,
        /// Only records with this sequence number or later (incremental loads).
        #[arg(long, value_name = "SEQ", default_value_t = 0)]
        from_seq: u64,
        /// Do not check against `FILE.head`.
        #[arg(long)]
        no_anchor: bool,
    },
}

/// What `audit export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// The records as they are.
    Jsonl,
    /// OCSF 1.1.0 events.
    Ocsf,
}

/// Runs an `audit` subcommand.
pub fn run(cmd: AuditCommand) -> ExitCode {
    match cmd {
        AuditCommand::Verify {
            file,
            head,
            json,
            no_anchor,
        } => verify_cmd(file, head, json, no_anchor),
        AuditCommand::Export {
            file,
            format,
            from_seq,
            no_anchor,
        } => export_cmd(&file, format, from_seq, no_anchor),
    }
}

fn anchor_of(
    file: &std::path::Path,
    no_anchor: bool,
    cmd: &str,
) -> Result<Option<Anchor>, ExitCode> {
    if no_anchor {
        return Ok(None);
    }
    Anchor::beside(file).map_err(|e| {
        eprintln!("execkit audit {cmd}: cannot read the anchor: {e}");
        ExitCode::from(1)
    })
}

fn export_cmd(
    file: &std::path::Path,
    format: ExportFormat,
    from_seq: u64,
    no_anchor: bool,
) -> ExitCode {
    use std::io::{BufRead, Write};
    let anchor = match anchor_of(file, no_anchor, "export") {
        Ok(a) => a,
        Err(code) => return code,
    };
    let options = VerifyOptions {
        expect_head: None,
        anchor,
    };
    match verify_file(file, &options) {
        Err(e) => {
            eprintln!("execkit audit export: cannot read {}: {e}", file.display());
            return ExitCode::from(1);
        }
        Ok(r) => {
            if let Some(p) = r.problem {
                eprintln!(
                    "execkit audit export: {} is damaged ({p}): nothing exported",
                    file.display()
                );
                return ExitCode::from(2);
            }
        }
    }
    let reader = match std::fs::File::open(file) {
        Ok(f) => std::io::BufReader::new(f),
        Err(e) => {
            eprintln!("execkit audit export: cannot read {}: {e}", file.display());
            return ExitCode::from(1);
        }
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for line in reader.lines() {
        let Ok(line) = line else {
            eprintln!(
                "execkit audit export: {} changed while it was read",
                file.display()
            );
            return ExitCode::from(1);
        };
        let Ok(rec) = serde_json::from_str::<serde_json::Value>(&line) else {
            eprintln!(
                "execkit audit export: {} changed while it was read",
                file.display()
            );
            return ExitCode::from(1);
        };
        if rec["seq"].as_u64().is_some_and(|s| s < from_seq) {
            continue;
        }
        let text = match format {
            ExportFormat::Jsonl => line,
            ExportFormat::Ocsf => execkit_audit::ocsf::to_ocsf(&rec).to_string(),
        };
        if writeln!(out, "{text}").is_err() {
            return ExitCode::from(1);
        }
    }
    if out.flush().is_err() {
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

fn verify_cmd(file: PathBuf, head: Option<String>, json: bool, no_anchor: bool) -> ExitCode {
    let anchor = match anchor_of(&file, no_anchor, "verify") {
        Ok(a) => a,
        Err(code) => return code,
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
