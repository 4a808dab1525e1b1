//! Human-readable results for `execkit exec --human` and `execkit session --human`: the
//! command's own output on its own streams, unchanged (redaction apart), and what execkit
//! has to say — status, limits, redactions, refusals — on standard error, so that
//! `execkit exec --human -- cat f | grep x` pipes only the command's output.

use execkit_engine::{Decision, Verdict};
use execkit_runner::{ExecResult, RuntimeDenial};
use std::fmt::Write as _;

/// What execkit says about a finished command: one status line, then a line per limit
/// hit, per cut stream and per program refused at its start.
pub fn summary(r: &ExecResult) -> String {
    let mut s = String::new();
    let status = match (r.exit_code, r.timed_out, r.cancelled) {
        (_, true, _) => "timed out".to_string(),
        (_, _, true) => "cancelled".to_string(),
        (Some(c), _, _) => format!("exit {c}"),
        (None, _, _) => "no exit status".to_string(),
    };
    let _ = write!(s, "-- {status} · {} ms · cwd {}", r.duration_ms, r.cwd);
    let redacted: u64 = r.redactions.values().sum();
    if redacted > 0 {
        let _ = write!(s, " · {redacted} secret(s) redacted");
    }
    if r.runtime_allowed > 0 {
        let _ = write!(
            s,
            " · {} program(s) allowed at their start",
            r.runtime_allowed
        );
    }
    s.push('\n');
    if r.shell_exited {
        let why = r.shell_exit_reason.as_deref().unwrap_or("no reason given");
        let _ = writeln!(
            s,
            "-- the shell exited ({why}); the next command starts a new one"
        );
    }
    for (name, rep) in [("stdout", &r.stdout_report), ("stderr", &r.stderr_report)] {
        if rep.truncated || rep.elided_bytes > 0 || rep.chars_cut > 0 {
            let _ = writeln!(
                s,
                "-- {name} shaped: {} of {} bytes kept ({} elided, {} characters cut)",
                rep.bytes_kept, rep.bytes_total, rep.elided_bytes, rep.chars_cut
            );
        }
    }
    for l in &r.limits_hit {
        let _ = writeln!(s, "-- limit: {l}");
    }
    for d in &r.runtime_denials {
        s.push_str(&runtime_denial(d));
    }
    s
}

/// A program refused at its start: what, under which parents, why.
fn runtime_denial(d: &RuntimeDenial) -> String {
    let mark = if d.verdict == Verdict::Ask {
        "NOT APPROVED"
    } else {
        "REFUSED"
    };
    let mut s = match &d.destination {
        Some(to) => format!("-- {mark} at the connection: {to} by {}", d.program),
        None => format!("-- {mark} at its start: {}", d.argv.join(" ")),
    };
    if !d.parents.is_empty() {
        let _ = write!(s, " (under {})", d.parents.join(" < "));
    }
    let _ = writeln!(s, "\n     {}", d.reason);
    s
}

/// A decision, fact by fact: each fact's verdict, resource and program, the reason and
/// the advice of the policies that refused it, then the verdict.
pub fn decision(d: &Decision) -> String {
    let mut s = String::new();
    if let Some(e) = &d.parse_error {
        let _ = writeln!(s, "rejected: {e}");
    }
    for f in &d.facts {
        let mark = match f.verdict {
            Verdict::Allow => "allow",
            Verdict::Ask => "ASK  ",
            _ => "DENY ",
        };
        if f.program.is_empty() {
            let _ = writeln!(s, "{mark} {:<10} {}", f.action, f.resource);
        } else {
            let _ = writeln!(s, "{mark} {:<10} {}  ({})", f.action, f.resource, f.program);
        }
        let _ = writeln!(s, "      {}", f.reason);
        for p in &f.policies {
            if f.verdict != Verdict::Allow {
                if let Some(a) = &p.advice {
                    let _ = writeln!(s, "      {}: {a}", p.id);
                }
            }
        }
    }
    let _ = writeln!(s, "decision: {}", d.verdict.as_str().to_uppercase());
    s
}
