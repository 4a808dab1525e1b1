//! `execkit session --ops`: one JSON operation per input line, one JSON result per output
//! line — `exec` and the background-process operations of the MCP tools, for scripts that
//! drive a session without an MCP client.
//!
//! ```text
//! {"op":"exec","command":"npm ci"}
//! {"op":"process_start","command":"npm run dev","name":"dev"}
//! {"op":"process_wait","process_id":"p-…","timeout_ms":30000,"until":"Listening on"}
//! {"op":"process_read","process_id":"p-…","cursor":"120:0"}
//! {"op":"process_write","process_id":"p-…","data":"rs\n","close":false}
//! {"op":"process_signal","process_id":"p-…","signal":"TERM"}
//! {"op":"process_list"}
//! {"op":"checkpoint","label":"before refactor"}
//! {"op":"diff","checkpoint_id":"cp-1"}
//! {"op":"restore","checkpoint_id":"cp-1"}
//! {"op":"checkpoints"}
//! {"op":"restart"}
//! {"op":"info"}
//! ```

use execkit_runner::process::{until_pattern, Cursor, ProcessError, ProcessSignal, SpawnOptions};
use execkit_runner::{ExecError, Session};
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;

/// One operation.
#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Op {
    /// Run a command (like a plain input line).
    Exec {
        /// The command line.
        command: String,
    },
    /// Start a background process.
    ProcessStart {
        /// The command line.
        command: String,
        /// A name for it.
        #[serde(default)]
        name: Option<String>,
    },
    /// New output since a cursor.
    ProcessRead {
        /// The process.
        process_id: String,
        /// `OUT:ERR` from the previous read (default: where it ended).
        #[serde(default)]
        cursor: Option<String>,
        /// At most this many bytes.
        #[serde(default)]
        max_bytes: Option<usize>,
    },
    /// Write to stdin.
    ProcessWrite {
        /// The process.
        process_id: String,
        /// The text.
        data: String,
        /// Close stdin afterwards.
        #[serde(default)]
        close: bool,
    },
    /// Signal the process group.
    ProcessSignal {
        /// The process.
        process_id: String,
        /// INT, TERM, KILL, HUP, QUIT, USR1, USR2, STOP or CONT.
        signal: String,
    },
    /// Wait for exit, a pattern or a timeout.
    ProcessWait {
        /// The process.
        process_id: String,
        /// At most this long.
        timeout_ms: u64,
        /// A regular expression over new output.
        #[serde(default)]
        until: Option<String>,
        /// Where new output starts.
        #[serde(default)]
        cursor: Option<String>,
    },
    /// Every process of the session.
    ProcessList {},
    /// Snapshot the workspace files.
    Checkpoint {
        /// A label.
        #[serde(default)]
        label: Option<String>,
    },
    /// Put the workspace files back as they were at a checkpoint.
    Restore {
        /// The checkpoint (`cp-N`).
        checkpoint_id: String,
    },
    /// The checkpoints kept.
    Checkpoints {},
    /// What changed since a checkpoint.
    Diff {
        /// The checkpoint (`cp-N`).
        checkpoint_id: String,
    },
    /// A new shell in place of the old one, with its cwd and exported variables.
    Restart {},
    /// What the session is and what the kernel enforces (on the target, for SSH and
    /// Docker).
    Info {},
}

fn error(e: impl std::fmt::Display) -> Value {
    json!({ "error": e.to_string() })
}

fn value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or_else(error)
}

fn cursor(c: Option<&str>) -> Result<Option<Cursor>, ProcessError> {
    c.map(str::parse).transpose()
}

/// Runs one operation line; the JSON result.
pub async fn run(session: &Session, line: &str, max_timeout: Duration) -> Value {
    let op: Op = match serde_json::from_str(line) {
        Ok(op) => op,
        Err(e) => return error(format!("not an operation: {e}")),
    };
    match op {
        Op::Exec { command } => crate::session_cmd::one(session, &command).await.0,
        Op::ProcessStart { command, name } => {
            let mut opts = SpawnOptions::default();
            opts.name = name;
            match session.spawn(&command, &opts).await {
                Ok(p) => value(&p.info()),
                Err(ExecError::Denied(d)) => {
                    json!({"denied": true, "verdict": d.verdict, "reason": d.reason})
                }
                Err(e) => error(e),
            }
        }
        Op::ProcessRead {
            process_id,
            cursor: c,
            max_bytes,
        } => {
            let go = || -> Result<Value, ProcessError> {
                let p = session.process(&process_id)?;
                Ok(value(&p.read(cursor(c.as_deref())?, max_bytes)))
            };
            go().unwrap_or_else(error)
        }
        Op::ProcessWrite {
            process_id,
            data,
            close,
        } => match session.process(&process_id) {
            Ok(p) => match p.write_stdin(data.as_bytes(), close).await {
                Ok(n) => json!({"process_id": process_id, "bytes": n, "stdin_closed": close}),
                Err(e) => error(e),
            },
            Err(e) => error(e),
        },
        Op::ProcessSignal { process_id, signal } => {
            let Some(sig) = ProcessSignal::parse(&signal) else {
                return error(format!(
                    "unknown signal `{}`: use INT, TERM, KILL, HUP, QUIT, USR1, USR2, STOP or CONT",
                    signal.chars().take(64).collect::<String>()
                ));
            };
            match session.process(&process_id) {
                Ok(p) => match p.signal(sig).await {
                    Ok(()) => {
                        json!({"process_id": process_id, "signal": sig.name(), "state": p.state()})
                    }
                    Err(e) => error(e),
                },
                Err(e) => error(e),
            }
        }
        Op::ProcessWait {
            process_id,
            timeout_ms,
            until,
            cursor: c,
        } => {
            let p = match session.process(&process_id) {
                Ok(p) => p,
                Err(e) => return error(e),
            };
            let until = match until.as_deref().map(until_pattern).transpose() {
                Ok(u) => u,
                Err(e) => return error(e),
            };
            let c = match cursor(c.as_deref()) {
                Ok(c) => c,
                Err(e) => return error(e),
            };
            let timeout = Duration::from_millis(timeout_ms).min(max_timeout);
            value(&p.wait(timeout, until.as_ref(), c, None).await)
        }
        Op::ProcessList {} => json!({ "processes": session.processes() }),
        Op::Checkpoint { label } => match session.checkpoint(label.as_deref()).await {
            Ok(i) => value(&i),
            Err(e) => error(e),
        },
        Op::Restore { checkpoint_id } => match session.restore(&checkpoint_id).await {
            Ok(r) => value(&r),
            Err(ExecError::Denied(d)) => {
                json!({"denied": true, "verdict": d.verdict, "reason": d.reason})
            }
            Err(e) => error(e),
        },
        Op::Checkpoints {} => match session.checkpoints().await {
            Ok(l) => json!({ "checkpoints": l }),
            Err(e) => error(e),
        },
        Op::Diff { checkpoint_id } => match session.checkpoint_diff(&checkpoint_id).await {
            Ok(d) => value(&d),
            Err(e) => error(e),
        },
        Op::Restart {} => match session.restart().await {
            Ok(r) => value(&r),
            Err(e) => error(e),
        },
        Op::Info {} => value(&session.info().await),
    }
}
