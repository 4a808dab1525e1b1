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
