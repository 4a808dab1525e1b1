//! Invariants every decision must satisfy, shared by the fuzz target and the tests.
//!
//! Fed arbitrary bytes, grammar → engine must never panic, a rejected parse or a dynamic
//! command position must never yield Allow, and every request built must conform to the
//! schema.

use execkit_engine::{DecisionEnv, Engine, Verdict};
use execkit_grammar::{parse, ParseOptions};

/// Checks the invariants for one input. `Err` describes the violation.
pub fn check(engine: &Engine, env: &DecisionEnv, input: &[u8]) -> Result<(), String> {
    let Ok(text) = std::str::from_utf8(input) else {
        return Ok(());
    };
    let decision = engine.decide(text, env);
    let opts = ParseOptions::new(env.cwd.as_deref(), &env.home);
    match parse(text, &opts) {
        Err(e) => {
            if decision.verdict != Verdict::Deny {
                return Err(format!(
                    "parse error `{e}` but verdict {:?}",
                    decision.verdict
                ));
            }
        }
        Ok(script) => {
            let dynamic = script
                .commands
                .iter()
                .any(|c| c.structure.dynamic_command || c.program.is_dynamic());
            if dynamic && decision.verdict == Verdict::Allow {
                return Err("a dynamic command position was allowed".into());
            }
            if decision.parse_error.is_some() && decision.verdict != Verdict::Deny {
                return Err("decision with an error was not denied".into());
            }
            engine
                .validate_script_requests(&script, env)
                .map_err(|e| format!("invalid request: {e}"))?;
        }
    }
    Ok(())
}

/// What the decision paths must agree on: the verdict, the errors' presence, and for each
/// fact its action, resource, verdict and determining policies (as a set: Cedar reports
/// them unordered).
fn comparable(d: &execkit_engine::Decision) -> String {
    let mut out = format!(
        "{:?} parse_error={} entity_error={} commands={}\n",
        d.verdict,
        d.parse_error.is_some(),
        d.entity_error.is_some(),
        d.commands
    );
    for f in &d.facts {
        let mut ids: Vec<&str> = f.policies.iter().map(|p| p.id.as_str()).collect();
        ids.sort_unstable();
        out.push_str(&format!(
            "{:?} {} {:?} errors={} [{}]\n",
            f.action,
            f.resource,
            f.verdict,
            f.errors.is_empty(),
            ids.join(",")
        ));
    }
    out
}

/// The fast decision path (asked twice: decided, then answered from its memo) gives the
/// same decision as the reference path.
pub fn same_on_both_paths(
    fast: &Engine,
    reference: &Engine,
    env: &DecisionEnv,
    input: &[u8],
) -> Result<(), String> {
    let Ok(text) = std::str::from_utf8(input) else {
        return Ok(());
    };
    let want = comparable(&reference.decide(text, env));
    for round in ["decided", "remembered"] {
        let got = comparable(&fast.decide(text, env));
        if got != want {
            return Err(format!(
                "the fast path ({round}) differs:\n{got}\nthe reference path:\n{want}"
            ));
        }
    }
    Ok(())
}
