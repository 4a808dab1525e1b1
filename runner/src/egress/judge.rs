//! One connection decided, recorded and, when refused, reported to the running command.

use crate::audit_record::{decision_record, Decided};
use crate::config::RuntimeAsk;
use crate::exec_guard::RuntimeDecider;
use crate::result::RuntimeDenial;
use execkit_audit::{AuditEvent, RuntimeContext};
use execkit_engine::{Connection, Decision, Verdict};

/// The outcome for the client.
pub(crate) struct Verdicted {
    pub allow: bool,
    /// Why not, with the policies' advice (redacted).
    pub reason: String,
    /// The human who approved it, when it asked.
    pub approved_by: Option<String>,
}

/// The words a connection is recorded and asked about as.
fn label(c: &Connection) -> String {
    let by = if c.program.is_empty() {
        "(unknown program)"
    } else {
        c.program.as_str()
    };
    match c.address {
        Some(a) => format!("connect {} ({a}) by {by}", c.authority()),
        None => format!("connect {} by {by}", c.authority()),
    }
}

/// Decides `c` for the session of `decider` (blocking: an `ask` waits for the human).
/// `approved`: the human who approved this same connection's earlier question (its name,
/// before the address was known), whose answer stands for an `ask` here too. A human's
/// approval is remembered for the session by (program, host, port): the same program's
/// later connections there are decided and recorded, not asked again. A `forbid` still
/// refuses.
pub(crate) fn judge(decider: &RuntimeDecider, c: &Connection, approved: Option<&str>) -> Verdicted {
    let spec = decider.spec();
    let decision = spec.engine.decide_connection(c, &spec.env);
    let mut allow = decision.verdict == Verdict::Allow;
    let mut reason = crate::result::Denial::reason_for(&decision);
    let mut approved_by = None;
    if decision.verdict == Verdict::Ask {
        let key = (c.program.clone(), c.host.clone(), c.port);
        approved_by = match approved {
            Some(who) => Some(who.to_string()),
            None => decider
                .approved_connection(&key)
                .or_else(|| ask(decider, c, &decision)),
        };
        if let Some(who) = &approved_by {
            decider.remember_connection(key, who.clone());
        }
        allow = approved_by.is_some();
        if !allow {
            reason = format!("{reason} (not approved)");
        }
    }
    if let Err(why) = record(decider, c, &decision, allow, approved_by.clone()) {
        if allow {
            allow = false;
            reason =
                format!("the audit log cannot record this connection, so it is not made: {why}");
        }
    }
    let reason = (spec.redact)(&reason);
    if !allow {
        decider.refused(denial(decider, c, &decision, &reason));
    }
    Verdicted {
        allow,
        reason,
        approved_by,
    }
}

/// Refuses `c` without asking the policies, for `why` (what the broker could not read to
/// decide); recorded and reported like the policies' refusals.
pub(crate) fn refuse_unread(decider: &RuntimeDecider, c: &Connection, why: &str) -> Verdicted {
    let decision = Decision::refused(why);
    let _ = record(decider, c, &decision, false, None);
    let reason = (decider.spec().redact)(why);
    decider.refused(denial(decider, c, &decision, &reason));
    Verdicted {
        allow: false,
        reason,
        approved_by: None,
    }
}

/// A human's answer through the session's runtime approver, if it has one.
fn ask(decider: &RuntimeDecider, c: &Connection, decision: &Decision) -> Option<String> {
    let spec = decider.spec();
    let approver = spec.approver.as_ref()?;
    let rx = approver(RuntimeAsk {
        session: spec.who.session.clone(),
        command: (spec.redact)(&label(c)),
        under: decider.under(),
        cwd: String::new(),
        parents: Vec::new(),
        decision: decision.clone(),
    });
    rx.recv_timeout(spec.approval_timeout).ok().flatten()
}

/// The decision's audit record, with its runtime context.
fn record(
    decider: &RuntimeDecider,
    c: &Connection,
    decision: &Decision,
    allow: bool,
    approved_by: Option<String>,
) -> Result<(), String> {
    let spec = decider.spec();
    let redact = |t: &str| (spec.redact)(t);
    let text = label(c);
    let mut rec = decision_record(
        spec.who.clone(),
        Decided::Command(&text),
        &spec.env,
        decision,
        &redact,
    );
    rec.approved_by = approved_by;
    if !allow {
        rec.verdict = execkit_audit::Verdict::Deny;
    }
    rec.runtime = Some(RuntimeContext {
        under: decider.under(),
        pid: 0,
        parents: Vec::new(),
        by_command: false,
    });
    decider.emit(AuditEvent::Decision(rec))
}

/// The refusal as the running command's result shows it.
fn denial(
    decider: &RuntimeDecider,
    c: &Connection,
    decision: &Decision,
    reason: &str,
) -> RuntimeDenial {
    let redact = |t: &str| (decider.spec().redact)(t);
    let policies = crate::exec_guard::blocking_policies(decision);
    RuntimeDenial {
        program: redact(&c.program),
        argv: Vec::new(),
        cwd: String::new(),
        parents: Vec::new(),
        verdict: if decision.verdict == Verdict::Ask {
            Verdict::Ask
        } else {
            Verdict::Deny
        },
        reason: reason.to_string(),
        policies,
        destination: Some(redact(&c.authority())),
    }
}
