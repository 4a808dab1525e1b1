//! Invariants every decision must satisfy, shared by the fuzz target and the tests.
//!
//! Fed arbitrary bytes, grammar → engine must never panic, a rejected parse or a dynamic
//! command position must never yield Allow, and every request built must conform to the
//! schema. Paths are judged canonical (no `.` or `..` left in any path a fact names, so a
//! climb was resolved before policies saw it), and text bash would evaluate as a subscript
//! holding a substitution (`x='a[$(id)]'`, `[ -v 'a[$(id)]' ]`) is never allowed.

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
            if decision.verdict == Verdict::Allow && latent_subscript(&script) {
                return Err("text evaluated as a subscript with a substitution was allowed".into());
            }
            if dynamic && decision.verdict == Verdict::Allow {
                return Err("a dynamic command position was allowed".into());
            }
            if decision.parse_error.is_some() && decision.verdict != Verdict::Deny {
                return Err("decision with an error was not denied".into());
            }
            for f in &decision.facts {
                let Some(path) = f
                    .resource
                    .strip_prefix("Path::\"")
                    .and_then(|r| r.strip_suffix('"'))
                else {
                    continue;
                };
                let climbs = path.split('/').any(|part| part == ".." || part == ".");
                if climbs {
                    return Err(format!("a fact names a path that is not canonical: {path}"));
                }
            }

            engine
                .validate_script_requests(&script, env)
                .map_err(|e| format!("invalid request: {e}"))?;
        }
    }
    Ok(())
}

/// True if a builtin's literal argument, or an assignment's literal value, holds an array
/// subscript with a command substitution (`a[$(…)]`, ``a[`…`]``): text bash runs when it
/// evaluates it as a subscript or arithmetic.
fn latent_subscript(script: &execkit_grammar::Script) -> bool {
    let holds = |t: &str| {
        t.match_indices('[').any(|(i, _)| {
            let rest = &t[i + 1..];
            let inside = &rest[..rest.find(']').unwrap_or(rest.len())];
            inside.contains("$(") || inside.contains('`')
        })
    };
    const EVALUATORS: [&str; 12] = [
        "test",
        "[",
        "printf",
        "declare",
        "typeset",
        "local",
        "export",
        "readonly",
        "read",
        "unset",
        "let",
        "(assignment)",
    ];
    script.commands.iter().any(|c| {
        let evaluator = EVALUATORS.contains(&c.program.entity_id().as_str());
        let args = evaluator && c.args.iter().any(|a| a.is_literal() && holds(&a.value));
        let values = c
            .env
            .iter()
            .any(|a| a.value.is_literal() && holds(&a.value.value));
        args || values
    })
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
