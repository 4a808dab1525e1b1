//! Engine decisions as audit records.
//!
//! The audit crate does not link the decision engine (readers of the log need only the record
//! types), so the conversion lives here, where both meet. Every free-text field goes through
//! the session's redactor before it is put into a record.

use execkit_audit::{DecisionRecord, FactRecord, RecordedEnv, Verdict as RecordedVerdict, Who};
use execkit_engine::{Decision, DecisionEnv, Verdict};

/// The recorded form of an engine verdict.
pub(crate) fn recorded(v: Verdict) -> RecordedVerdict {
    match v {
        Verdict::Allow => RecordedVerdict::Allow,
        Verdict::Ask => RecordedVerdict::Ask,
        // A verdict added later is recorded as the strictest one (fail closed).
        _ => RecordedVerdict::Deny,
    }
}

/// What was decided: the command, or a label for an internal probe.
pub(crate) enum Decided<'a> {
    /// The agent's command, decided as it is.
    Command(&'a str),
    /// A label (`checkpoint restore cp-3`) for the text actually decided.
    Labelled {
        /// What the record shows.
        label: &'a str,
        /// What the engine decided.
        text: &'a str,
    },
}

/// The recorded form of a decision environment, redacted.
fn recorded_env(
    env: &DecisionEnv,
    decided: Option<&str>,
    redact: &dyn Fn(&str) -> String,
) -> RecordedEnv {
    let map = |m: &std::collections::BTreeMap<String, String>| {
        m.iter().map(|(k, v)| (redact(k), redact(v))).collect()
    };
    RecordedEnv {
        workspace: redact(&env.workspace),
        home: redact(&env.home),
        kind: env.identity.kind.clone(),
        groups: env.identity.groups.clone(),
        host: env.target.host.clone(),
        container: env.target.container.clone(),
        remote_user: env.target.remote_user.clone(),
        real_paths: map(&env.real_paths),
        real_programs: map(&env.real_programs),
        decided: decided.map(redact),
    }
}

/// Builds a decision record, redacting the command, the cwd, every resource and reason,
/// and the environment `execkit policy replay` needs to decide it again.
pub(crate) fn decision_record(
    who: Who,
    decided: Decided<'_>,
    env: &DecisionEnv,
    decision: &Decision,
    redact: &dyn Fn(&str) -> String,
) -> DecisionRecord {
    let (command, text) = match decided {
        Decided::Command(c) => (c, None),
        Decided::Labelled { label, text } => (label, Some(text)),
    };
    let cwd = env.cwd.as_deref().unwrap_or(env.workspace.as_str());
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
                advice: (f.verdict != execkit_engine::Verdict::Allow)
                    .then(|| f.policies.iter().find_map(|p| p.advice.clone()))
                    .flatten(),
            })
            .collect(),
        approved_by: None,
        env: Some(Box::new(recorded_env(env, text, redact))),
        runtime: None,
    }
}

/// Shows `event` to the observer, then writes it to the log (if any). `Err` says why the
/// log could not take it; the caller decides whether what it records may go ahead.
pub(crate) fn emit(
    log: Option<&std::sync::Arc<std::sync::Mutex<execkit_audit::AuditLog>>>,
    observer: Option<&(dyn Fn(&execkit_audit::AuditEvent) + Send + Sync)>,
    event: &execkit_audit::AuditEvent,
) -> Result<(), String> {
    if let Some(observe) = observer {
        observe(event);
    }
    let Some(log) = log else {
        return Ok(());
    };
    let mut log = log
        .lock()
        .map_err(|_| "the audit log's lock was poisoned by a panic".to_string())?;
    log.append(event).map(|_| ()).map_err(|e| {
        eprintln!("execkit: audit append failed: {e}");
        e.to_string()
    })
}
