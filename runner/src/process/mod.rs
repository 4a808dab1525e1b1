//! Background processes of a session: dev servers, watchers, REPLs, `tail -f`.
//!
//! A process is started *by the session's shell*, after the command was decided exactly
//! like [`crate::Session::exec`] (a denial never starts anything). The shell runs it as a
//! job of its own, so it inherits everything the session has at that moment — cwd,
//! exported and plain shell variables, functions, aliases, shell options, umask, the
//! sandbox (Landlock, seccomp, namespaces), the session's cgroup and rlimits — and sits in
//! its own process group. A small wrapper around it (the group leader) reports its exit
//! status; see `launch.rs` for the exact shell code.
//!
//! Its stdin, stdout and stderr are pipes of our own (not the shell's), so nothing it
//! prints is ever attributed to a later `exec`. Each output stream runs through the same
//! streaming protection as `exec` (escapes stripped, secrets redacted — a secret split
//! across two reads is still one line to the redactor) into a [`buffer::StreamBuffer`]
//! that keeps a head and a ring-buffered tail with exact totals, read incrementally with
//! cursors.
//!
//! Limits come from the operator ([`ProcessLimits`]): processes per session and per
//! server, maximum lifetime, idle TTL after exit. A reaper enforces them; closing the
//! session kills every process group it started.

pub(crate) mod buffer;
pub(crate) mod launch;
pub(crate) mod missed_signals;
pub(crate) mod remote_pipes;
pub(crate) mod state;
pub(crate) mod table;

use execkit_protect::RedactionCounts;
use serde::{Deserialize, Serialize};
use std::time::Duration;

pub use state::ProcessHandle;

/// What the operator allows background processes. Agent arguments cannot raise these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProcessLimits {
    /// Processes alive at once in one session.
    pub per_session: usize,
    /// Processes alive at once in this server (all sessions).
    pub per_server: usize,
    /// How long an exited process stays readable before it is forgotten.
    pub idle_ttl: Duration,
    /// The longest a process may run before the reaper terminates it (`None`: no limit).
    pub max_lifetime: Option<Duration>,
    /// Bytes of protected output kept from the start of each stream.
    pub head_bytes: usize,
    /// Bytes of protected output kept from the end of each stream (the ring).
    pub tail_bytes: usize,
    /// Between SIGTERM and SIGKILL when a process is terminated.
    pub grace: Duration,
}

impl Default for ProcessLimits {
    /// 8 per session, 64 per server, forgotten 10 minutes after exit, 24 h lifetime,
    /// 64 KiB head + 256 KiB tail per stream, 2 s grace.
    fn default() -> Self {
        ProcessLimits {
            per_session: 8,
            per_server: 64,
            idle_ttl: Duration::from_secs(600),
            max_lifetime: Some(Duration::from_secs(24 * 3600)),
            head_bytes: 64 * 1024,
            tail_bytes: 256 * 1024,
            grace: Duration::from_secs(2),
        }
    }
}

/// Per-start options. Everything here narrows; the operator's limits still apply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SpawnOptions {
    /// A name for the agent's own bookkeeping (shown in lists; at most 64 chars kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Run under a pseudo-terminal (for programs that insist on one). Local sessions with
    /// their own mount namespace only; see `launch.rs` for what carries over.
    #[serde(default)]
    pub pty: bool,
    /// The terminal's rows in PTY mode (default 24).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u16>,
    /// The terminal's columns in PTY mode (default 80).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cols: Option<u16>,
    /// A human's approval of the command, when its decision is Ask (never read from the
    /// agent's arguments: the server sets it after asking a human).
    #[serde(skip)]
    pub approval: Option<crate::Approval>,
}

impl SpawnOptions {
    /// Options with a name.
    pub fn named(name: &str) -> SpawnOptions {
        SpawnOptions {
            name: Some(name.chars().take(64).collect()),
            ..SpawnOptions::default()
        }
    }
}

/// The signals an agent may send to its own process groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ProcessSignal {
    /// SIGINT (Ctrl-C).
    Int,
    /// SIGTERM.
    Term,
    /// SIGKILL.
    Kill,
    /// SIGHUP.
    Hup,
    /// SIGQUIT.
    Quit,
    /// SIGUSR1.
    Usr1,
    /// SIGUSR2.
    Usr2,
    /// SIGSTOP (pause).
    Stop,
    /// SIGCONT (resume).
    Cont,
}

impl ProcessSignal {
    /// Whether it only stops or ends the process (SIGSTOP stops; the rest by default
    /// end it): such a signal is sent even when the audit log cannot record it, since
    /// refusing it would keep running what someone wants stopped.
    pub fn only_stops(self) -> bool {
        !matches!(
            self,
            ProcessSignal::Cont | ProcessSignal::Usr1 | ProcessSignal::Usr2 | ProcessSignal::Hup
        )
    }

    /// Every signal, in the order documented.
    pub const ALL: [ProcessSignal; 9] = [
        ProcessSignal::Int,
        ProcessSignal::Term,
        ProcessSignal::Kill,
        ProcessSignal::Hup,
        ProcessSignal::Quit,
        ProcessSignal::Usr1,
        ProcessSignal::Usr2,
        ProcessSignal::Stop,
        ProcessSignal::Cont,
    ];

    /// The signal number.
    pub fn number(self) -> i32 {
        match self {
            ProcessSignal::Int => libc::SIGINT,
            ProcessSignal::Term => libc::SIGTERM,
            ProcessSignal::Kill => libc::SIGKILL,
            ProcessSignal::Hup => libc::SIGHUP,
            ProcessSignal::Quit => libc::SIGQUIT,
            ProcessSignal::Usr1 => libc::SIGUSR1,
            ProcessSignal::Usr2 => libc::SIGUSR2,
            ProcessSignal::Stop => libc::SIGSTOP,
            ProcessSignal::Cont => libc::SIGCONT,
        }
    }

    /// The name without `SIG` (`TERM`).
    pub fn name(self) -> &'static str {
        match self {
            ProcessSignal::Int => "INT",
            ProcessSignal::Term => "TERM",
            ProcessSignal::Kill => "KILL",
            ProcessSignal::Hup => "HUP",
            ProcessSignal::Quit => "QUIT",
            ProcessSignal::Usr1 => "USR1",
            ProcessSignal::Usr2 => "USR2",
            ProcessSignal::Stop => "STOP",
            ProcessSignal::Cont => "CONT",
        }
    }

    /// Parses `TERM`, `SIGTERM`, `term` (only the signals of [`ProcessSignal::ALL`]).
    pub fn parse(s: &str) -> Option<ProcessSignal> {
        let up = s.trim().to_ascii_uppercase();
        let name = up.strip_prefix("SIG").unwrap_or(&up);
        ProcessSignal::ALL
            .into_iter()
            .find(|sig| sig.name() == name)
    }
}

/// Where a reader is in both streams: byte offsets into the protected stdout and stderr.
/// Written `OUT:ERR` (`"1024:0"`) where it crosses a protocol.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Cursor {
    /// Offset in protected stdout.
    pub stdout: u64,
    /// Offset in protected stderr.
    pub stderr: u64,
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.stdout, self.stderr)
    }
}

impl std::str::FromStr for Cursor {
    type Err = ProcessError;
    fn from_str(s: &str) -> Result<Cursor, ProcessError> {
        let bad = || ProcessError::BadCursor(s.chars().take(64).collect());
        let (o, e) = s.trim().split_once(':').ok_or_else(bad)?;
        Ok(Cursor {
            stdout: o.parse().map_err(|_| bad())?,
            stderr: e.parse().map_err(|_| bad())?,
        })
    }
}

/// Where a process is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum ProcessState {
    /// Running (or stopped by SIGSTOP: see `stopped`).
    Running {
        /// Paused by SIGSTOP and not resumed yet.
        stopped: bool,
    },
    /// It exited; `code` is its status (128 + N when signal N ended it).
    Exited {
        /// Exit status; `None` when the wrapper itself was killed (SIGKILL to the group).
        code: Option<i32>,
        /// The signal that ended it, when one did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signal: Option<ProcessSignal>,
    },
}

impl ProcessState {
    /// True once it has exited.
    pub fn exited(&self) -> bool {
        matches!(self, ProcessState::Exited { .. })
    }
}

/// Totals of one stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamTotals {
    /// Bytes read from the process's pipe.
    pub raw_bytes: u64,
    /// Bytes of protected text produced (what cursors count).
    pub bytes: u64,
    /// Lines of protected text produced.
    pub lines: u64,
    /// The stream was closed by every writer.
    pub closed: bool,
}

/// What a read returns: new output since the cursor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessOutput {
    /// New protected stdout.
    pub stdout: String,
    /// New protected stderr.
    pub stderr: String,
    /// Where the next read starts.
    pub next_cursor: String,
    /// Bytes of stdout that fell out of the ring before this read got to them.
    pub stdout_lost: u64,
    /// Bytes of stderr that fell out of the ring before this read got to them.
    pub stderr_lost: u64,
    /// Bytes not returned because of `max_bytes` (read again from `next_cursor`).
    pub more: u64,
    /// The process's state now.
    pub state: ProcessState,
    /// Stream totals so far.
    pub stdout_totals: StreamTotals,
    /// Stream totals so far.
    pub stderr_totals: StreamTotals,
    /// Redactions so far, per rule.
    pub redactions: RedactionCounts,
}

/// Why [`ProcessHandle::wait`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitReason {
    /// The process exited.
    Exited,
    /// The `until` pattern matched new output.
    Matched,
    /// The timeout elapsed first.
    Timeout,
    /// The caller cancelled the wait.
    Cancelled,
}

/// What a wait returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WaitOutcome {
    /// Why it returned.
    pub reason: WaitReason,
    /// The text the pattern matched (when it did).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched: Option<String>,
    /// The output seen since the cursor.
    pub output: ProcessOutput,
    /// How long it waited.
    pub waited_ms: u64,
}

/// A process as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessInfo {
    /// Its id (`p-` and 8 hex digits).
    pub id: String,
    /// The session it belongs to.
    pub session_id: String,
    /// The agent's name for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The command line (redacted).
    pub command: String,
    /// The directory it started in.
    pub cwd: String,
    /// Its process group on the host it runs on (`None` when it ended before it was seen).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pgid: Option<i32>,
    /// Its state.
    pub state: ProcessState,
    /// Milliseconds since it started.
    pub age_ms: u64,
    /// Stream totals so far.
    pub stdout: StreamTotals,
    /// Stream totals so far.
    pub stderr: StreamTotals,
    /// Bytes written to its stdin so far, and whether stdin is closed.
    pub stdin_bytes: u64,
    /// Its stdin was closed.
    pub stdin_closed: bool,
}

/// Why a process operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProcessError {
    /// No such process in this session (never started, or forgotten after its TTL).
    #[error("no process `{0}` (it never existed here or was forgotten after it exited)")]
    Unknown(String),
    /// The operator's cap on processes.
    #[error("too many processes: {running} are running and the operator allows {cap} {scope}; stop one first")]
    Cap {
        /// Running now.
        running: usize,
        /// The cap.
        cap: usize,
        /// "per session" or "per server".
        scope: &'static str,
    },
    /// The process has exited and its streams are closed.
    #[error("process `{0}` has exited")]
    Exited(String),
    /// Its stdin is closed.
    #[error("the stdin of process `{0}` is closed")]
    StdinClosed(String),
    /// Its stdin did not take the data in time (the process is not reading).
    #[error("the process did not read its stdin within {0} ms; {1} of the bytes were written")]
    StdinFull(u64, usize),
    /// A cursor that is not `OUT:ERR`.
    #[error("a cursor is two byte offsets as `OUT:ERR` (got `{0}`)")]
    BadCursor(String),
    /// An `until` pattern that is not a valid regular expression.
    #[error("`until` is not a valid regular expression: {0}")]
    BadPattern(String),
    /// Something this transport cannot do.
    #[error("{0}")]
    Unsupported(String),
    /// Starting it failed.
    #[error("could not start the process: {0}")]
    Start(String),
    /// I/O on its pipes.
    #[error("process I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The audit log cannot record the action, so it is not taken.
    #[error("the audit log cannot record this, so it was not done: {0}")]
    AuditUnavailable(String),
}

/// Compiles an `until` pattern (size-limited: it comes from the agent).
pub fn until_pattern(p: &str) -> Result<regex::Regex, ProcessError> {
    regex::RegexBuilder::new(p)
        .size_limit(1 << 20)
        .dfa_size_limit(1 << 20)
        .build()
        .map_err(|e| ProcessError::BadPattern(e.to_string()))
}
