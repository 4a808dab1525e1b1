//! Arguments and results of the `process_*` tools, and their one-line text headers.

use execkit_runner::process::{ProcessInfo, ProcessOutput, ProcessState, WaitOutcome};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write;

use super::args::BudgetArg;

/// `process_start`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartArgs {
    /// The session, from `session_create`. The process starts in its current cwd with its
    /// variables, functions and sandbox.
    pub session_id: String,
    /// A bash command line, checked against the policies exactly like `session_exec`.
    pub command: String,
    /// Run under a pseudo-terminal, for programs that insist on one (local sessions; the
    /// output is ANSI-stripped; stderr joins stdout; typed input is echoed). It runs in a
    /// new bash: exported variables and functions and the cwd carry over.
    #[serde(default)]
    pub pty: Option<bool>,
    /// Terminal rows in PTY mode (default 24).
    #[serde(default)]
    pub rows: Option<u16>,
    /// Terminal columns in PTY mode (default 80).
    #[serde(default)]
    pub cols: Option<u16>,
    /// Your name for it (shown by `process_list`).
    #[serde(default)]
    pub name: Option<String>,
}

/// `process_read`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadArgs {
    /// The process, from `process_start`.
    pub process_id: String,
    /// `next_cursor` of the previous read (default: where the previous read ended).
    #[serde(default)]
    pub cursor: Option<String>,
    /// At most this many bytes of text (default 65536, at most 1048576).
    #[serde(default)]
    pub max_bytes: Option<u64>,
    /// What to keep of the new text of each stream (default: all of it).
    #[serde(default)]
    pub budget: Option<BudgetArg>,
}

/// `process_write`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteArgs {
    /// The process.
    pub process_id: String,
    /// Text for its stdin (add `\n` to end a line).
    pub data: String,
    /// Close stdin afterwards (the process sees end of input).
    #[serde(default)]
    pub close: Option<bool>,
}

/// `process_signal`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignalArgs {
    /// The process.
    pub process_id: String,
    /// One of INT, TERM, KILL, HUP, QUIT, USR1, USR2, STOP, CONT (sent to its whole
    /// process group).
    pub signal: String,
}

/// `process_wait`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitArgs {
    /// The process.
    pub process_id: String,
    /// Wait at most this long (capped by the operator's maximum timeout).
    pub timeout_ms: u64,
    /// A regular expression: return as soon as new output matches it (e.g. `Listening on`).
    #[serde(default)]
    pub until: Option<String>,
    /// Where "new output" starts (default: where the previous read ended).
    #[serde(default)]
    pub cursor: Option<String>,
    /// At most this many bytes of text in the answer.
    #[serde(default)]
    pub max_bytes: Option<u64>,
}

/// `process_list`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListArgs {
    /// Only this session's processes.
    #[serde(default)]
    pub session_id: Option<String>,
}

/// A process's state.
#[derive(Debug, Serialize, JsonSchema)]
pub struct StateOutput {
    /// `running`, `stopped` or `exited`.
    pub state: String,
    /// Exit status when exited (128 + N when signal N ended it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The signal that ended it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
}

impl From<ProcessState> for StateOutput {
    fn from(s: ProcessState) -> Self {
        match s {
            ProcessState::Running { stopped } => StateOutput {
                state: if stopped { "stopped" } else { "running" }.into(),
                exit_code: None,
                signal: None,
            },
            ProcessState::Exited { code, signal } => StateOutput {
                state: "exited".into(),
                exit_code: code,
                signal: signal.map(|s| s.name().to_string()),
            },
        }
    }
}

impl StateOutput {
    fn words(&self) -> String {
        match (&self.exit_code, &self.signal) {
            (_, Some(sig)) => format!("exited by SIG{sig}"),
            (Some(c), None) => format!("exited {c}"),
            (None, None) if self.state == "exited" => "exited ?".into(),
            _ => self.state.clone(),
        }
    }
}

/// Totals of one stream.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TotalsOutput {
    /// Bytes read from the pipe.
    pub raw_bytes: u64,
    /// Bytes of protected text (what cursors count).
    pub bytes: u64,
    /// Lines of protected text.
    pub lines: u64,
    /// Every writer closed it.
    pub closed: bool,
}

impl From<execkit_runner::process::StreamTotals> for TotalsOutput {
    fn from(t: execkit_runner::process::StreamTotals) -> Self {
        TotalsOutput {
            raw_bytes: t.raw_bytes,
            bytes: t.bytes,
            lines: t.lines,
            closed: t.closed,
        }
    }
}

/// A process as listed or started.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ProcessRow {
    /// Its id.
    pub process_id: String,
    /// Its session.
    pub session_id: String,
    /// Your name for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The command (redacted).
    pub command: String,
    /// Where it started.
    pub cwd: String,
    /// Its process group on the host it runs on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pgid: Option<i32>,
    /// Its state.
    #[serde(flatten)]
    pub state: StateOutput,
    /// Milliseconds since it started.
    pub age_ms: u64,
    /// Stdout totals.
    pub stdout: TotalsOutput,
    /// Stderr totals.
    pub stderr: TotalsOutput,
    /// Bytes written to its stdin.
    pub stdin_bytes: u64,
    /// Its stdin is closed.
    pub stdin_closed: bool,
}

impl From<ProcessInfo> for ProcessRow {
    fn from(i: ProcessInfo) -> Self {
        ProcessRow {
            process_id: i.id,
            session_id: i.session_id,
            name: i.name,
            command: i.command,
            cwd: i.cwd,
            pgid: i.pgid,
            state: i.state.into(),
            age_ms: i.age_ms,
            stdout: i.stdout.into(),
            stderr: i.stderr.into(),
            stdin_bytes: i.stdin_bytes,
            stdin_closed: i.stdin_closed,
        }
    }
}

impl ProcessRow {
    /// `p-1234abcd · running · pgid 42 · 3 s · npm run dev`
    pub fn line(&self) -> String {
        let mut s = format!("{} · {}", self.process_id, self.state.words());
        if let Some(n) = &self.name {
            let _ = write!(s, " · \"{n}\"");
        }
        if let Some(g) = self.pgid {
            let _ = write!(s, " · pgid {g}");
        }
        let _ = write!(
            s,
            " · {:.1} s · {} lines out, {} err · {}",
            self.age_ms as f64 / 1000.0,
            self.stdout.lines,
            self.stderr.lines,
            self.command
        );
        s
    }
}

/// `process_list`'s result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ListOutput {
    /// Known processes (exited ones until the operator's idle TTL forgets them).
    pub processes: Vec<ProcessRow>,
}

impl ListOutput {
    /// One line per process.
    pub fn render(&self) -> String {
        if self.processes.is_empty() {
            return "no processes".into();
        }
        let mut s = format!("{} processes", self.processes.len());
        for p in &self.processes {
            s.push('\n');
            s.push_str(&p.line());
        }
        s
    }
}

/// `process_read`'s result (and the output part of `process_wait`'s).
#[derive(Debug, Serialize, JsonSchema)]
pub struct ReadOutput {
    /// The process.
    pub process_id: String,
    /// New stdout since the cursor (ANSI stripped, secrets redacted).
    pub stdout: String,
    /// New stderr since the cursor.
    pub stderr: String,
    /// Pass this as `cursor` to get what comes next.
    pub next_cursor: String,
    /// Bytes of stdout that fell out of the ring before they were read.
    pub stdout_lost: u64,
    /// Bytes of stderr that fell out of the ring before they were read.
    pub stderr_lost: u64,
    /// Bytes already there but not returned (max_bytes): read again.
    pub more: u64,
    /// The process's state.
    #[serde(flatten)]
    pub state: StateOutput,
    /// Stdout totals.
    pub stdout_totals: TotalsOutput,
    /// Stderr totals.
    pub stderr_totals: TotalsOutput,
    /// Secrets redacted so far, by rule.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub redactions: BTreeMap<String, u64>,
}

impl ReadOutput {
    /// From the runner's read.
    pub fn from(process_id: &str, o: ProcessOutput) -> ReadOutput {
        ReadOutput {
            process_id: process_id.to_string(),
            stdout: o.stdout,
            stderr: o.stderr,
            next_cursor: o.next_cursor,
            stdout_lost: o.stdout_lost,
            stderr_lost: o.stderr_lost,
            more: o.more,
            state: o.state.into(),
            stdout_totals: o.stdout_totals.into(),
            stderr_totals: o.stderr_totals.into(),
            redactions: o.redactions,
        }
    }

    /// `p-… · running · next 120:0 · 2 lost`, then the new text.
    pub fn render(&self) -> String {
        let mut s = format!(
            "{} · {} · next {}",
            self.process_id,
            self.state.words(),
            self.next_cursor
        );
        let lost = self.stdout_lost + self.stderr_lost;
        if lost > 0 {
            let _ = write!(s, " · {lost} bytes lost (fell out of the buffer)");
        }
        if self.more > 0 {
            let _ = write!(s, " · {} more bytes: read again", self.more);
        }
        if !self.redactions.is_empty() {
            let n: u64 = self.redactions.values().sum();
            let _ = write!(s, " · {n} redacted");
        }
        super::output::append_streams(&mut s, &self.stdout, &self.stderr, " · no new output");
        s
    }
}

/// `process_wait`'s result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct WaitOutput {
    /// `exited`, `matched`, `timeout` or `cancelled`.
    pub reason: String,
    /// What `until` matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched: Option<String>,
    /// How long it waited.
    pub waited_ms: u64,
    /// The output since the cursor.
    pub output: ReadOutput,
}

impl WaitOutput {
    /// From the runner's wait.
    pub fn from(process_id: &str, w: WaitOutcome) -> WaitOutput {
        WaitOutput {
            reason: serde_json::to_value(w.reason)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            matched: w.matched,
            waited_ms: w.waited_ms,
            output: ReadOutput::from(process_id, w.output),
        }
    }

    /// `matched "Listening on" after 120 ms · ` then the read header and text.
    pub fn render(&self) -> String {
        let head = match &self.matched {
            Some(m) => format!("matched {m:?} after {} ms", self.waited_ms),
            None => format!("{} after {} ms", self.reason, self.waited_ms),
        };
        format!("{head} · {}", self.output.render())
    }
}

/// `process_write`'s result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct WriteOutput {
    /// The process.
    pub process_id: String,
    /// Bytes written.
    pub bytes: u64,
    /// Its stdin is closed now.
    pub stdin_closed: bool,
}

/// `process_signal`'s result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SignalOutput {
    /// The process.
    pub process_id: String,
    /// The signal sent.
    pub signal: String,
    /// Its state right after.
    #[serde(flatten)]
    pub state: StateOutput,
}

impl SignalOutput {
    /// `sent TERM to p-… · running`
    pub fn render(&self) -> String {
        format!(
            "sent SIG{} to {} · {}",
            self.signal,
            self.process_id,
            self.state.words()
        )
    }
}
