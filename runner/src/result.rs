//! What a call asks for ([`ExecOptions`]) and what it gets back ([`ExecResult`] or an
//! [`ExecError`], of which [`Denial`] is the policy refusal).

use crate::approval::Approval;
use execkit_engine::{Decision, Verdict};
use execkit_protect::{Budget, BudgetError, RedactionCounts, StreamReport};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Per-call options. They can only narrow what the operator configured: the timeout is
/// cut to the operator's maximum and budgets work inside the capture limits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ExecOptions {
    /// Timeout in milliseconds (default and maximum from the operator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// What to keep of stdout.
    #[serde(default)]
    pub stdout: Budget,
    /// What to keep of stderr.
    #[serde(default)]
    pub stderr: Budget,
    /// A human's approval of this command, when its decision is Ask (never read from the
    /// agent's arguments: the server sets it after asking a human).
    #[serde(skip)]
    pub approval: Option<Approval>,
}

impl ExecOptions {
    /// Options with a timeout.
    ///
    /// ```
    /// use execkit_runner::ExecOptions;
    /// use execkit_runner::protect::Budget;
    /// let o = ExecOptions::timeout(std::time::Duration::from_secs(5)).with_stdout(Budget::tail(20));
    /// assert_eq!(o.timeout_ms, Some(5000));
    /// ```
    pub fn timeout(d: Duration) -> ExecOptions {
        ExecOptions::default().with_timeout(d)
    }

    /// The same options with this timeout (cut to the operator's maximum when it runs).
    pub fn with_timeout(mut self, d: Duration) -> ExecOptions {
        self.timeout_ms = Some(u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self
    }

    /// The same options with this stdout budget.
    pub fn with_stdout(mut self, budget: Budget) -> ExecOptions {
        self.stdout = budget;
        self
    }

    /// The same options with a human's approval of the command (see [`Approval`]).
    pub fn with_approval(mut self, approval: Approval) -> ExecOptions {
        self.approval = Some(approval);
        self
    }

    /// The same options with this stderr budget.
    pub fn with_stderr(mut self, budget: Budget) -> ExecOptions {
        self.stderr = budget;
        self
    }
}

/// The time one [`Session::exec`](crate::Session::exec) spent in each stage, in
/// microseconds. The stages run one after another; what they do not cover (locks, task
/// hand-offs) is the difference between their sum and [`Stages::total_us`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Stages {
    /// Parsing the command (once for the whole exec).
    pub parse_us: u64,
    /// Reading the parsed command for what to look up live (paths, programs).
    pub live_queries_us: u64,
    /// The live lookups themselves (symlinks and PATH, on the target).
    pub live_lookups_us: u64,
    /// The decision: facts extracted and authorized.
    pub decide_us: u64,
    /// Writing the decision record.
    pub audit_decision_us: u64,
    /// The workspace cap and the checkpoint before the command (when they apply).
    pub checkpoint_us: u64,
    /// The command in the shell: framing, running, reading its output (protection of the
    /// chunks as they stream excluded).
    pub run_us: u64,
    /// Output protection: stripping, redaction, budgets, while streaming and at the end.
    pub protect_us: u64,
    /// Writing the command record.
    pub audit_command_us: u64,
    /// From the call to the result.
    pub total_us: u64,
}

/// `d` in whole microseconds (saturating).
pub(crate) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The result of a command that ran.
#[derive(Debug, Clone, Serialize)]
pub struct ExecResult {
    /// Protected (escape-stripped, redacted, bounded) stdout.
    pub stdout: String,
    /// Protected stderr.
    pub stderr: String,
    /// Exit status; `None` if the shell died before reporting one.
    pub exit_code: Option<i32>,
    /// Wall time from sending the command to its end.
    pub duration_ms: u64,
    /// The shell's working directory afterwards (as the kernel reports it, locally).
    pub cwd: String,
    /// The timeout fired and the command was interrupted.
    pub timed_out: bool,
    /// The caller cancelled it.
    pub cancelled: bool,
    /// The shell itself ended (`exit`, killed, a limit, a lost connection): the session
    /// must be restarted.
    pub shell_exited: bool,
    /// Why the shell ended, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shell_exit_reason: Option<String>,
    /// Sizes, budget and truncation of stdout.
    pub stdout_report: StreamReport,
    /// Sizes, budget and truncation of stderr.
    pub stderr_report: StreamReport,
    /// Redactions per rule id, both streams.
    pub redactions: RedactionCounts,
    /// The policy decision that let it run.
    pub decision: Decision,
    /// Resource limits the command ran into (empty when none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub limits_hit: Vec<LimitHit>,
    /// Background jobs (`cmd &`) the command left running. Their output is not part of
    /// this or any later result; `Session::spawn` runs a command in the background with
    /// its output kept.
    #[serde(skip_serializing_if = "is_zero")]
    pub background_jobs: usize,
    /// The checkpoint taken before the command ran, because a policy that permitted it
    /// asks for one (`@checkpoint`); `Session::restore` undoes the command's file changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
    /// Programs the command started that the policies refused as they started (a script's
    /// command, a Makefile's recipe, a hook): each failed with "permission denied".
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub runtime_denials: Vec<RuntimeDenial>,
    /// Programs the command started that the policies allowed as they started.
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub runtime_allowed: u64,
    /// Where the time went, stage by stage (for benchmarks and operators' tracing; not
    /// serialized).
    #[serde(skip)]
    pub stages: Stages,
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

/// A program refused as it started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuntimeDenial {
    /// The program (as the kernel would run it), redacted.
    pub program: String,
    /// Its arguments, `argv[0]` first, redacted.
    pub argv: Vec<String>,
    /// Where it was to run.
    pub cwd: String,
    /// Its parents, nearest first, up to the session's shell (`pid name`).
    pub parents: Vec<String>,
    /// `deny`, or `ask` (a human's approval was needed and not given).
    pub verdict: Verdict,
    /// Why, with the policy's advice.
    pub reason: String,
    /// The policies that refused it.
    pub policies: Vec<String>,
    /// For a refused connection: where it was to go (`host:port`), with `program` the
    /// executable that opened it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// A session resource limit a command ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum LimitHit {
    /// The session's memory limit: the kernel killed a process.
    Memory {
        /// The limit.
        limit_bytes: u64,
    },
    /// The session's process limit: forks were refused.
    Processes {
        /// The limit.
        max_processes: u64,
    },
    /// The per-file size limit: the writer was killed with `SIGXFSZ`.
    FileSize {
        /// The limit.
        limit_bytes: u64,
    },
    /// The workspace now uses more disk than its cap: further commands are refused until
    /// space is freed.
    Workspace {
        /// The cap.
        limit_bytes: u64,
    },
}

/// A size as messages show it: `2 GiB`, `512 MiB`, `10 KiB` where it is a whole number of
/// them, else bytes.
///
/// ```
/// use execkit_runner::ByteSize;
/// assert_eq!(ByteSize(512 << 20).to_string(), "512 MiB");
/// assert_eq!(ByteSize(1500).to_string(), "1500 bytes");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl std::fmt::Display for ByteSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = self.0;
        for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] {
            if b >= 1 << shift && b.is_multiple_of(1 << shift) {
                return write!(f, "{} {unit}", b >> shift);
            }
        }
        write!(f, "{b} bytes")
    }
}

impl std::fmt::Display for LimitHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LimitHit::Memory { limit_bytes } => write!(
                f,
                "a process was killed: session memory limit {} reached",
                ByteSize(*limit_bytes)
            ),
            LimitHit::Processes { max_processes } => write!(
                f,
                "new processes were refused: session process limit {max_processes} reached"
            ),
            LimitHit::FileSize { limit_bytes } => write!(
                f,
                "a writer was killed: file size limit {} reached",
                ByteSize(*limit_bytes)
            ),
            LimitHit::Workspace { limit_bytes } => write!(
                f,
                "the workspace uses more than its {} cap: only commands that free space (rm, truncate, du, ...) run until it is back under",
                ByteSize(*limit_bytes)
            ),
        }
    }
}

/// A command the policies did not allow. It never reached the shell.
#[derive(Debug, Clone, Serialize)]
pub struct Denial {
    /// `deny`, or `ask` (needs a human's approval).
    pub verdict: Verdict,
    /// One line for humans: the first blocking fact's reason and advice.
    pub reason: String,
    /// Every fact's decision, with policy ids and advice.
    pub decision: Decision,
}

impl Denial {
    /// Builds the denial for a decision that is not `Allow`.
    pub fn from_decision(decision: Decision) -> Denial {
        Denial {
            verdict: decision.verdict,
            reason: Denial::reason_for(&decision),
            decision,
        }
    }

    /// The one-line reason for a decision that is not `Allow`: the parse error, or the first
    /// blocking fact with the advice of the policy that blocked it (the `@ask` permit for
    /// an Ask, a forbid for a Deny).
    pub fn reason_for(decision: &Decision) -> String {
        if let Some(e) = &decision.parse_error {
            return format!("the command could not be parsed: {e}");
        }
        if let Some(e) = &decision.entity_error {
            return format!("the command could not be authorized: {e}");
        }
        let Some(f) = decision.blocking().next() else {
            return "not allowed".to_string();
        };
        let advice = f
            .policies
            .iter()
            .filter(|p| f.verdict != Verdict::Ask || p.ask)
            .find_map(|p| p.advice.as_deref())
            .map(|a| format!(" ({a})"))
            .unwrap_or_default();
        format!("{} {}: {}{advice}", f.action, f.resource, f.reason)
    }
}

/// Why `exec` returned no result.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExecError {
    /// The policies refused it (or it needs approval).
    #[error("{} by policy: {}", if .0.verdict == Verdict::Ask { "needs approval" } else { "denied" }, .0.reason)]
    Denied(Box<Denial>),
    /// The runner refused it before asking the policies.
    #[error("rejected: {0}")]
    Rejected(String),
    /// A budget in the options is invalid.
    #[error(transparent)]
    Budget(#[from] BudgetError),
    /// The shell has ended; call `restart` to get a new one.
    #[error("the session's shell has ended ({0}); restart the session")]
    ShellGone(String),
    /// The session was closed.
    #[error("the session is closed")]
    Closed,
    /// The workspace is over the operator's disk cap and the command does not free space.
    #[error("the workspace uses more than its {} cap: free space first (only {} run until then)", ByteSize(*.limit_bytes), crate::disk::CLEANUP_PROGRAMS.join(", "))]
    WorkspaceFull {
        /// The cap.
        limit_bytes: u64,
    },
    /// Talking to the shell failed.
    #[error("session I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A background process could not be started or used.
    #[error(transparent)]
    Process(#[from] crate::process::ProcessError),
    /// A checkpoint could not be taken or restored.
    #[error(transparent)]
    Checkpoint(#[from] crate::checkpoint::CheckpointError),
    /// The audit log cannot record the decision, so the command does not run.
    #[error("the audit log cannot record this command, so it does not run: {0}")]
    AuditUnavailable(String),
}

impl ExecError {
    /// The denial, if this is one.
    pub fn denial(&self) -> Option<&Denial> {
        match self {
            ExecError::Denied(d) => Some(d),
            _ => None,
        }
    }
}

/// Why a session could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The policy set could not be loaded.
    #[error("policies: {0}")]
    Policy(#[source] execkit_engine::LoadError),
    /// The sandbox could not be set up.
    #[error(transparent)]
    Sandbox(#[from] crate::sandbox::SandboxError),
    /// The workspace is unusable.
    #[error("workspace {path}: {message}")]
    Workspace {
        /// The path.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// Running as another user needs root.
    #[error("run-as user `{0}` needs the server to run as root")]
    RunAsNeedsRoot(String),
    /// Spawning or talking to the shell failed.
    #[error("cannot start the shell: {0}")]
    Spawn(std::io::Error),
    /// The shell did not become ready.
    #[error("the shell did not start: {0}")]
    NotReady(String),
    /// The SSH host or the Docker endpoint refused or failed (host key, authentication,
    /// reachability, container or image): an [`SshError`](crate::ssh::SshError) or a
    /// [`DockerError`](crate::docker::DockerError), kept as the source.
    #[error("{0}")]
    Transport(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
    /// The operator requires the sandbox on remote targets and this one cannot have it.
    #[error("sandbox required: {0}")]
    SandboxRequired(String),
    /// The audit log cannot record the session's opening, so the session does not open.
    #[error("the audit log cannot record this session, so it does not open: {0}")]
    AuditUnavailable(String),
}

/// Stdout and stderr cut to `max` bytes together for a transcript: each stream keeps its
/// head and its tail around a `[… N bytes …]` line, stderr at most half the room when both
/// need more; returns the two texts and the bytes left out.
pub(crate) fn cut_transcript(stdout: &str, stderr: &str, max: usize) -> (String, String, u64) {
    let total = stdout.len() + stderr.len();
    if total <= max {
        return (stdout.to_string(), stderr.to_string(), 0);
    }
    let err_room = stderr
        .len()
        .min(max / 2)
        .max(max.saturating_sub(stdout.len()));
    let err_room = err_room.min(stderr.len());
    let out_room = max - err_room;
    let (o, lo) = head_and_tail(stdout, out_room);
    let (e, le) = head_and_tail(stderr, err_room);
    (o, e, (lo + le) as u64)
}

/// `s` cut to about `room` bytes: its head and tail (on char boundaries) around a note.
fn head_and_tail(s: &str, room: usize) -> (String, usize) {
    if s.len() <= room {
        return (s.to_string(), 0);
    }
    let half = room / 2;
    let mut h = half;
    while !s.is_char_boundary(h) {
        h -= 1;
    }
    let mut t = s.len() - (room - half);
    while !s.is_char_boundary(t) {
        t += 1;
    }
    let left = t - h;
    (
        format!("{}\n[… {left} bytes …]\n{}", &s[..h], &s[t..]),
        left,
    )
}

#[cfg(test)]
mod transcript_tests {
    use super::cut_transcript;

    #[test]
    fn small_output_is_kept_whole() {
        assert_eq!(
            cut_transcript("a\n", "b\n", 100),
            ("a\n".into(), "b\n".into(), 0)
        );
    }

    #[test]
    fn large_output_keeps_head_and_tail_within_the_room() {
        let out = "x".repeat(1000) + "END";
        let (o, e, left) = cut_transcript(&out, "", 100);
        assert!(o.starts_with("xxxx") && o.ends_with("END"), "{o}");
        assert!(o.contains("bytes …]"));
        assert_eq!(e, "");
        assert_eq!(left, 903);
        // stderr keeps its share when both are large; multibyte text is cut on boundaries.
        let (o, e, _) = cut_transcript(&"é".repeat(500), &"ü".repeat(500), 101);
        assert!(o.len() < 140 && e.len() < 140, "{} {}", o.len(), e.len());
        assert!(e.starts_with('ü') && e.ends_with('ü'));
    }
}
