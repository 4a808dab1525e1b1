//! What the audit log records. Every string that could carry a secret (the command, the
//! cwd, fact resources and words) is redacted by the caller's redactor *before* it is put
//! into a record; the constructors here take the redaction function to make that hard to
//! forget.

use execkit_engine::protect::{RedactionCounts, StreamReport};
use execkit_engine::{Decision, Verdict};
use serde::{Deserialize, Serialize};

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
    /// `allow`, `ask` or `deny`.
    pub verdict: String,
    /// Ids of the determining policies.
    pub policies: Vec<String>,
    /// Why (redacted).
    pub reason: String,
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
    /// `allow`, `ask` or `deny`.
    pub verdict: String,
    /// Parse error, if the command did not parse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parse_error: Option<String>,
    /// Every fact's decision.
    pub facts: Vec<FactRecord>,
    /// The human who approved an `ask`, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
}

impl DecisionRecord {
    /// Builds a record from an engine decision, redacting every free-text field.
    pub fn from_decision(
        who: Who,
        command: &str,
        cwd: &str,
        decision: &Decision,
        redact: &dyn Fn(&str) -> String,
    ) -> DecisionRecord {
        DecisionRecord {
            who,
            command: redact(command),
            cwd: redact(cwd),
            verdict: decision.verdict.as_str().to_string(),
            parse_error: decision.parse_error.as_deref().map(redact),
            facts: decision
                .facts
                .iter()
                .map(|f| FactRecord {
                    action: f.action.to_string(),
                    resource: redact(&f.resource),
                    verdict: f.verdict.as_str().to_string(),
                    policies: f.policies.iter().map(|p| p.id.clone()).collect(),
                    reason: redact(&f.reason),
                })
                .collect(),
            approved_by: None,
        }
    }

    /// Whether the decision let the command run (with approval for `ask`).
    pub fn allowed(&self) -> bool {
        self.verdict == Verdict::Allow.as_str()
            || (self.verdict == Verdict::Ask.as_str() && self.approved_by.is_some())
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
    /// The writer found a partial last line (a crash mid-write) and cut it off.
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
    /// Free text from the operator side (server start, config loaded, …).
    Note {
        /// The text.
        message: String,
    },
}
