//! What the audit log records. Every string that could carry a secret (the command, the
//! cwd, fact resources and words) is redacted by the caller's redactor *before* it is put
//! into a record; the constructors here take the redaction function to make that hard to
//! forget.

use execkit_protect::{RedactionCounts, StreamReport};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A recorded verdict. The log is read by tools that do not link the decision engine, so it
/// has its own copy of the three outcomes (serialized as `allow`, `ask`, `deny`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Verdict {
    /// Every fact was permitted.
    Allow,
    /// A human had to confirm.
    Ask,
    /// At least one fact was denied, or the command could not be parsed.
    Deny,
}

/// Who ran what, where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Who {
    /// Session id.
    pub session: String,
    /// Agent identity (principal).
    pub agent: String,
    /// Accountable operator.
    pub operator: String,
    /// `local`, `ssh` or `docker`.
    pub transport: String,
    /// Host or container, if any.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target: String,
}

/// One fact's decision, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactRecord {
    /// Cedar action.
    pub action: String,
    /// Cedar resource (redacted).
    pub resource: String,
    /// This fact's verdict.
    pub verdict: Verdict,
    /// Ids of the determining policies.
    pub policies: Vec<String>,
    /// Why (redacted).
    pub reason: String,
    /// What the determining policies tell the agent to do instead (their `@advice`), for
    /// a fact that was not allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advice: Option<String>,
}

/// A decision on a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// Who and where.
    #[serde(flatten)]
    pub who: Who,
    /// The command, redacted.
    pub command: String,
    /// The cwd the decision assumed, redacted.
    pub cwd: String,
    /// The command's verdict.
    pub verdict: Verdict,
    /// Parse error, if the command did not parse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parse_error: Option<String>,
    /// Why the decision's entities could not be built, if they could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_error: Option<String>,
    /// Every fact's decision.
    pub facts: Vec<FactRecord>,
    /// The human who approved an `ask`, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    /// Everything else the decision depended on, so `execkit policy replay` can decide the
    /// command again under another policy set. Absent in logs written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Box<RecordedEnv>>,
    /// Set when this is a runtime decision: a program the command started, decided as it
    /// started (its `command` is the program and its arguments, quoted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<RuntimeContext>,
}

/// Where a runtime decision happened: the program's process, its parents, and the
/// command it ran under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RuntimeContext {
    /// The session's command the program ran under, redacted (empty between commands:
    /// a background job's child).
    pub under: String,
    /// The process that asked to run it (pid on the session's host).
    pub pid: i32,
    /// Its parents, nearest first, up to the session's shell: `pid command-name`.
    pub parents: Vec<String>,
    /// Let run because the decision on the command's text allowed these very words (a
    /// pipeline's `xargs`, decided with its input), though alone they are refused.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub by_command: bool,
}

/// The decision environment of a recorded decision (redacted like every other string).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RecordedEnv {
    /// The agent's workspace.
    pub workspace: String,
    /// Home directory on the target.
    pub home: String,
    /// The agent's kind (`claude-code`, `ci-bot`, ...).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Groups the operator's configuration put the agent in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// SSH host or Docker daemon host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Docker container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Remote user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_user: Option<String>,
    /// Live-session truth: lexical paths whose real location differed (symlinks).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub real_paths: BTreeMap<String, String>,
    /// Live-session truth: program names the session's PATH resolved to untrusted files.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub real_programs: BTreeMap<String, String>,
    /// The text the engine decided, when `command` is a label for it (a checkpoint
    /// restore is decided as a write probe).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided: Option<String>,
}

impl DecisionRecord {
    /// Whether the decision let the command run (with approval for `ask`).
    pub fn allowed(&self) -> bool {
        self.verdict == Verdict::Allow
            || (self.verdict == Verdict::Ask && self.approved_by.is_some())
    }
}

/// Sizes of one output stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct StreamSummary {
    /// Bytes the process wrote.
    pub raw_bytes: u64,
    /// Bytes after protection.
    pub bytes: u64,
    /// Lines after protection.
    pub lines: u64,
    /// Bytes returned to the caller.
    pub bytes_kept: u64,
    /// Whether anything was left out.
    pub truncated: bool,
}

impl From<&StreamReport> for StreamSummary {
    fn from(r: &StreamReport) -> Self {
        StreamSummary {
            raw_bytes: r.raw_bytes,
            bytes: r.bytes_total,
            lines: r.lines_total,
            bytes_kept: r.bytes_kept,
            truncated: r.truncated,
        }
    }
}

/// A finished command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandRecord {
    /// Who and where.
    #[serde(flatten)]
    pub who: Who,
    /// The command, redacted.
    pub command: String,
    /// The cwd after the command, redacted.
    pub cwd: String,
    /// Exit code (absent if the shell died or the command was killed without one).
    pub exit_code: Option<i32>,
    /// Wall time.
    pub duration_ms: u64,
    /// Stopped by a timeout.
    pub timed_out: bool,
    /// Stopped by a cancel request.
    pub cancelled: bool,
    /// stdout sizes.
    pub stdout: StreamSummary,
    /// stderr sizes.
    pub stderr: StreamSummary,
    /// Redactions per rule id, both streams together.
    pub redactions: RedactionCounts,
}

/// What a finished command printed, as the agent got it (redacted, bounded), cut to the
/// operator's transcript size: for viewers, and for reviewers when the operator keeps
/// transcripts in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscriptRecord {
    /// Who and where.
    #[serde(flatten)]
    pub who: Who,
    /// The command, redacted.
    pub command: String,
    /// Its stdout as the agent got it, cut to the transcript size.
    pub stdout: String,
    /// Its stderr as the agent got it, cut to the transcript size.
    pub stderr: String,
    /// Bytes of the agent's result left out here.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub omitted_bytes: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A checkpoint taken or restored (files only; ids are per session).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointRecord {
    /// The session and its principals.
    #[serde(flatten)]
    pub who: Who,
    /// The checkpoint id (`cp-N`).
    pub checkpoint: String,
    /// `taken` or `restored`.
    pub event: String,
    /// Files captured (taken) or put back (restored: written + created).
    pub files: u64,
    /// Bytes captured (taken).
    #[serde(default)]
    pub bytes: u64,
    /// Files deleted by a restore.
    #[serde(default)]
    pub deleted: u64,
    /// Why the runner took it by itself (`before: rm -r build`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automatic: Option<String>,
}

/// One event of a background process (`Session::spawn`). Input is recorded by size only:
/// what an agent types into a REPL may hold anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRecord {
    /// The session and its principals.
    #[serde(flatten)]
    pub who: Who,
    /// The process id (`p-…`).
    pub process: String,
    /// What happened.
    pub event: ProcessEvent,
}

/// What happened to a background process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProcessEvent {
    /// It started (after its decision record allowed it).
    Started {
        /// The command (redacted).
        command: String,
        /// Where it started (redacted).
        cwd: String,
        /// The agent's name for it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// Its process group, when seen.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pgid: Option<i32>,
    },
    /// Bytes given to its stdin (size only), recorded before they are written: input
    /// the log cannot record is not written.
    Input {
        /// Bytes given.
        bytes: u64,
        /// Stdin is to be closed after them.
        closed: bool,
    },
    /// A signal sent to its group.
    Signal {
        /// `TERM`, `KILL`, ….
        signal: String,
    },
    /// It exited.
    Exited {
        /// Its status (128 + N for signal N); none when the group was killed outright.
        exit_code: Option<i32>,
        /// The signal that ended it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signal: Option<String>,
        /// Run time.
        duration_ms: u64,
        /// Raw bytes read from its stdout.
        stdout_bytes: u64,
        /// Raw bytes read from its stderr.
        stderr_bytes: u64,
        /// Redactions in its output.
        redactions: RedactionCounts,
    },
    /// The reaper or the session ended or forgot it (lifetime, idle TTL, session closed).
    Reaped {
        /// Why.
        reason: String,
    },
}

/// A session opened or closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// The session and its principals.
    #[serde(flatten)]
    pub who: Who,
    /// What happened.
    pub event: SessionEvent,
}

/// What happened to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SessionEvent {
    /// It started (after its `session_open` decision allowed it).
    Opened,
    /// It was closed (its shell and everything it started were killed).
    Closed,
}

/// A human's approval of a command whose decision was Ask: asked for, given or refused.
/// The decision records show the verdicts; these show the human step between them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRecord {
    /// The session and its principals.
    #[serde(flatten)]
    pub who: Who,
    /// The command put to the human, redacted.
    pub command: String,
    /// The cwd it would run in, redacted.
    pub cwd: String,
    /// What happened.
    pub event: ApprovalEvent,
    /// The operator who answered (for `approved`, and `declined` when known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approver: Option<String>,
    /// The facts that needed approval, as `action resource` (redacted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub facts: Vec<String>,
    /// Why it was refused (declined, timed out, no way to ask), redacted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What happened to an approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ApprovalEvent {
    /// A human was asked.
    Requested,
    /// A human approved: the command is decided again with the approver attached.
    Approved,
    /// Refused: declined, timed out, cancelled, or the client cannot ask.
    Declined,
}

/// One audit event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AuditEvent {
    /// First record of every file: seeds the chain.
    Genesis {
        /// Random, per file.
        nonce: String,
        /// The program that created the file.
        created_by: String,
    },
    /// The writer found a partial last line (a crash mid-write) and cut it off, or a
    /// record it could not write at all (disk full, file immutable): the bytes it lost.
    Recovery {
        /// How many bytes were cut.
        discarded_bytes: u64,
        /// SHA-256 of the bytes cut, so they can be matched to a backup.
        discarded_sha256: String,
    },
    /// A decision.
    Decision(DecisionRecord),
    /// A finished command.
    Command(CommandRecord),
    /// What a finished command printed (when the operator keeps transcripts).
    Transcript(TranscriptRecord),
    /// Something a background process did: started, got input or a signal, exited.
    Process(ProcessRecord),
    /// A workspace checkpoint taken or restored.
    Checkpoint(CheckpointRecord),
    /// A session opened or closed.
    Session(SessionRecord),
    /// A human's approval asked for, given or refused.
    Approval(ApprovalRecord),
    /// Free text from the operator side (server start, config loaded, …).
    Note {
        /// The text.
        message: String,
    },
}

impl AuditEvent {
    /// The record's `kind` as the file spells it.
    pub fn kind(&self) -> &'static str {
        match self {
            AuditEvent::Genesis { .. } => "genesis",
            AuditEvent::Recovery { .. } => "recovery",
            AuditEvent::Decision(_) => "decision",
            AuditEvent::Command(_) => "command",
            AuditEvent::Transcript(_) => "transcript",
            AuditEvent::Process(_) => "process",
            AuditEvent::Checkpoint(_) => "checkpoint",
            AuditEvent::Session(_) => "session",
            AuditEvent::Approval(_) => "approval",
            AuditEvent::Note { .. } => "note",
        }
    }

    /// How loud it is for syslog: refusals and lost records warn, asks are notices.
    pub fn severity(&self) -> crate::syslog::Severity {
        use crate::syslog::Severity;
        match self {
            AuditEvent::Recovery { .. } => Severity::Warning,
            AuditEvent::Decision(d) => match d.verdict {
                Verdict::Deny => Severity::Warning,
                Verdict::Ask => Severity::Notice,
                Verdict::Allow => Severity::Informational,
            },
            _ => Severity::Informational,
        }
    }
}
