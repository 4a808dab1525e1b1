//! Engine decisions as audit records.
//!
//! The audit crate does not link the decision engine (readers of the log need only the record
//! types), so the conversion lives here, where both meet. Every free-text field goes through
//! the session's redactor before it is put into a record.

use execkit_audit::{DecisionRecord, FactRecord, Verdict as RecordedVerdict, Who};
use execkit_engine::{Decision, Verdict};

/// The recorded form of an engine verdict.
pub(crate) fn recorded(v: Verdict) -> RecordedVerdict {
    match v {
        Verdict::Allow => RecordedVerdict::Allow,
        Verdict::Ask => RecordedVerdict::Ask,
        // A verdict added later is recorded as the strictest one (fail closed).
        _ => RecordedVerdict::Deny,
    }
}

/// Builds a decision record, redacting the command, the cwd, every resource and reason.
pub(crate) fn decision_record(
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
        verdict: recorded(decision.verdict),
        parse_error: decision.parse_error.as_deref().map(redact),
        entity_error: decision.entity_error.as_deref().map(redact),
        facts: decision
            .facts
            .iter()
            .map(|f| FactRecord {
                action: f.action.to_string(),
                resource: redact(&f.resource),
                verdict: recorded(f.verdict),
                policies: f.policies.iter().map(|p| p.id.clone()).collect(),
                reason: redact(&f.reason),
            })
            .collect(),
        approved_by: None,
    }
}
