//! `execkit policy prove PROPERTIES.toml`: prove or refute invariants of a policy set with
//! Cedar's symbolic compiler (`cedar-policy-symcc`) and the cvc5 SMT solver.
//!
//! Why: case files show what a policy set does on the commands someone thought of; a proof
//! covers every request the schema admits, over every entity store. A security team states
//! the invariants it relies on ("no agent is ever permitted `write_path` on a system path",
//! "strict allows nothing default does not") in a properties file, and a change that breaks
//! one is refuted with a concrete request that shows how.
//!
//! Every property is one SymCC query per request environment (principal type, action,
//! resource type) the schema declares for its actions:
//!
//! | property key        | query                                                              |
//! |---------------------|--------------------------------------------------------------------|
//! | `allowed_only_when` | `check_implies(set, permit(principal, action, resource) when {E})` |
//! | `subset_of`         | `check_implies(set, other set)`: every request set allows, other allows |
//! | `never_allowed`     | `check_always_denies(set)`                                         |
//! | `never_errors`      | `check_never_errors(policy)` for each policy of the set            |
//!
//! The proof is about Cedar's semantics over *all* entity stores and contexts the schema
//! admits, which is stronger than what the engine builds at run time: a proof holds for
//! execkit, while a counterexample may use a store execkit would never build (it is printed
//! in full so a reader can tell). When the crate or the solver cannot answer a query (an
//! unsupported feature, `unknown`, a missing cvc5), the property is reported as not checked,
//! with the reason, and the exit code is 1: it is never counted as proven.
//!
//! Exit codes: 0 every property proven, 2 at least one refuted, else 1 for an error or a
//! property that could not be checked.

use crate::policy_cmd::engine_for;
use anyhow::{bail, Context as _};
use cedar_policy::{Policy, PolicySet, RequestEnv, Schema};
use cedar_policy_symcc::solver::LocalSolver;
use cedar_policy_symcc::{CedarSymCompiler, CompiledPolicy, CompiledPolicySet};
use clap::Args;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;

/// `execkit policy prove`.
#[derive(Args)]
pub struct ProveArgs {
    /// The properties file (TOML, `[[property]]` entries; see the README).
    properties: PathBuf,
    /// The policy set to prove them of (default: the embedded default set).
    #[arg(long)]
    policies: Option<PathBuf>,
    /// JSON output.
    #[arg(long)]
    json: bool,
}

/// A properties file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PropertiesFile {
    /// The properties.
    #[serde(default)]
    pub property: Vec<Property>,
}

/// One invariant. Exactly one of the check keys is set.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Property {
    /// Short id, printed in the report.
    pub id: String,
    /// What it means, in words.
    #[serde(default)]
    pub description: String,
    /// The actions it is about (ids as in the schema, e.g. `write_path`); default: every
    /// action with request types.
    #[serde(default)]
    pub actions: Vec<String>,
    /// Every allowed request satisfies this Cedar condition (over `principal`, `action`,
    /// `resource`, `context`).
    #[serde(default)]
    pub allowed_only_when: Option<String>,
    /// Every request this set allows, that set allows too: an embedded set name
    /// (`default`, `strict`) or a directory (relative to the properties file).
    #[serde(default)]
    pub subset_of: Option<String>,
    /// Nothing is ever allowed.
    #[serde(default)]
    pub never_allowed: bool,
    /// No policy ever errors (an erroring policy is skipped by Cedar; execkit denies, but a
    /// policy that can error is a policy that does not say what its author meant).
    #[serde(default)]
    pub never_errors: bool,
}

/// What a property asks.
enum Check {
    AllowedOnlyWhen(PolicySet),
    SubsetOf(PolicySet, String),
    NeverAllowed,
    NeverErrors,
}

/// The outcome of one property.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Holds in every request environment checked.
    Proven,
    /// A counterexample exists.
    Refuted,
    /// The crate or the solver could not answer.
    NotChecked,
}

/// One property's result.
#[derive(Debug, Clone, Serialize)]
pub struct PropertyResult {
    /// The property id.
    pub id: String,
    /// Its description.
    pub description: String,
    /// The outcome.
    pub outcome: Outcome,
    /// The request environments checked (`Agent, Action::"write_path", Path`).
    pub environments: Vec<String>,
    /// For a refuted property: where, and the counterexample (request and entities).
    pub counterexample: Option<String>,
    /// The policy that can error (for `never_errors`).
    pub policy: Option<String>,
    /// Why it could not be checked.
    pub reason: Option<String>,
    /// Wall time, milliseconds.
    pub millis: u128,
}

fn env_label(e: &RequestEnv) -> String {
    format!("{}, {}, {}", e.principal(), e.action(), e.resource())
}

/// The `Action::"id"` of an action name, as the schema names it.
fn action_id(e: &RequestEnv) -> String {
    e.action().id().unescaped().to_string()
}

fn check_of(p: &Property, base: &Path) -> anyhow::Result<Check> {
    let set = [
        p.allowed_only_when.is_some(),
        p.subset_of.is_some(),
        p.never_allowed,
        p.never_errors,
    ]
    .iter()
    .filter(|x| **x)
    .count();
    if set != 1 {
        bail!(
            "property `{}`: set exactly one of allowed_only_when, subset_of, never_allowed, never_errors",
            p.id
        );
    }
    if let Some(cond) = &p.allowed_only_when {
        let text = format!(
            "@id(\"bound:{}\") permit (principal, action, resource) when {{ {cond} }};",
            p.id
        );
        let policy = Policy::from_str(&text)
            .with_context(|| format!("property `{}`: allowed_only_when is not Cedar", p.id))?;
        let mut ps = PolicySet::new();
        ps.add(policy)?;
        return Ok(Check::AllowedOnlyWhen(ps));
    }
    if let Some(other) = &p.subset_of {
        let dir = if execkit_policies::by_name(other).is_some() && !other.contains('/') {
            None
        } else {
            Some(base.join(other))
        };
        let (engine, src) = match &dir {
            Some(d) => engine_for(Some(d)),
            None => execkit_engine::Engine::embedded(other)
                .map_err(anyhow::Error::from)
                .and_then(|e| Ok((e, execkit_engine::policy_dir::embedded(other)?))),
        }
        .with_context(|| format!("property `{}`: subset_of `{other}`", p.id))?;
        return Ok(Check::SubsetOf(engine.policy_set().clone(), src.name));
    }
    if p.never_allowed {
        return Ok(Check::NeverAllowed);
    }
    Ok(Check::NeverErrors)
}

fn solver() -> anyhow::Result<CedarSymCompiler<LocalSolver>> {
    // `--strings-exp`: cvc5 refuses `str.contains` (what `like` compiles to) without it.
    let s = LocalSolver::cvc5_with_args(["--tlimit=60000", "--strings-exp"]).context(
        "cannot start the cvc5 SMT solver (install it, e.g. `apt install cvc5`, or set CVC5=/path/to/cvc5)",
    )?;
    Ok(CedarSymCompiler::new(s)?)
}

/// What one query found.
enum Found {
    Holds,
    Counterexample(String),
    ErroringPolicy(String, String),
}

async fn query(
    check: &Check,
    set: &PolicySet,
    schema: &Schema,
    env: &RequestEnv,
) -> anyhow::Result<Found> {
    let mut cc = solver()?;
    let compiled = || CompiledPolicySet::compile(set, env, schema).map_err(Box::new);
    let found = match check {
        Check::AllowedOnlyWhen(bound) | Check::SubsetOf(bound, _) => {
            let ours = compiled()?;
            let theirs = CompiledPolicySet::compile(bound, env, schema).map_err(Box::new)?;
            let why = match check {
                Check::SubsetOf(_, name) => format!("permitted here, not by {name}"),
                _ => "permitted, and the condition does not hold".to_string(),
            };
            cc.check_implies_with_counterexample_opt(&ours, &theirs)
                .await?
                .map(|cx| Found::Counterexample(format!("({why})\n{cx}")))
        }
        Check::NeverAllowed => {
            let ours = compiled()?;
            cc.check_always_denies_with_counterexample_opt(&ours)
                .await?
                .map(|cx| Found::Counterexample(cx.to_string()))
        }
        Check::NeverErrors => {
            for p in set.policies() {
                let cp = CompiledPolicy::compile(p, env, schema)?;
                if let Some(cx) = cc.check_never_errors_with_counterexample_opt(&cp).await? {
                    return Ok(Found::ErroringPolicy(p.id().to_string(), cx.to_string()));
                }
            }
            None
        }
    };
    Ok(found.unwrap_or(Found::Holds))
}

/// Proves one property of `set`.
async fn prove_one(
    p: &Property,
    check: &Check,
    set: &PolicySet,
    schema: &Schema,
) -> anyhow::Result<PropertyResult> {
    let start = std::time::Instant::now();
    let envs: Vec<RequestEnv> = schema
        .request_envs()
        .filter(|e| p.actions.is_empty() || p.actions.contains(&action_id(e)))
        .collect();
    for a in &p.actions {
        if !envs.iter().any(|e| &action_id(e) == a) {
            bail!(
                "property `{}`: the schema has no action `{a}` with request types",
                p.id
            );
        }
    }
    let mut result = PropertyResult {
        id: p.id.clone(),
        description: p.description.clone(),
        outcome: Outcome::Proven,
        environments: envs.iter().map(env_label).collect(),
        counterexample: None,
        policy: None,
        reason: None,
        millis: 0,
    };
    for env in &envs {
        // A policy set reduced to the policies that can apply keeps queries small; SymCC
        // compiles per environment anyway.
        match query(check, set, schema, env).await {
            Ok(Found::Holds) => {}
            Ok(Found::Counterexample(cx)) => {
                result.outcome = Outcome::Refuted;
                result.counterexample = Some(format!("in ({}):\n{cx}", env_label(env)));
                break;
            }
            Ok(Found::ErroringPolicy(id, cx)) => {
                result.outcome = Outcome::Refuted;
                result.policy = Some(id);
                result.counterexample = Some(format!("in ({}):\n{cx}", env_label(env)));
                break;
            }
            Err(e) => {
                result.outcome = Outcome::NotChecked;
                result.reason = Some(format!("in ({}): {e:#}", env_label(env)));
                break;
            }
        }
    }
    result.millis = start.elapsed().as_millis();
    Ok(result)
}

/// Proves every property of the file against `set`.
pub fn prove(
    file: &PropertiesFile,
    base: &Path,
    set: &PolicySet,
    schema: &Schema,
) -> anyhow::Result<Vec<PropertyResult>> {
    if file.property.is_empty() {
        bail!("the properties file has no [[property]] entries");
    }
    let checks: Vec<Check> = file
        .property
        .iter()
        .map(|p| check_of(p, base))
        .collect::<anyhow::Result<_>>()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    rt.block_on(async {
        let mut out = Vec::new();
        for (p, c) in file.property.iter().zip(&checks) {
            out.push(prove_one(p, c, set, schema).await?);
        }
        Ok(out)
    })
}

fn print_text(results: &[PropertyResult], against: &str) {
    crate::outln!("proving {} properties of {against}", results.len());
    for r in results {
        let word = match r.outcome {
            Outcome::Proven => "PROVEN",
            Outcome::Refuted => "REFUTED",
            Outcome::NotChecked => "NOT CHECKED",
        };
        crate::outln!();
        crate::outln!("{word:<11} {}  ({} ms)", r.id, r.millis);
        if !r.description.is_empty() {
            crate::outln!("  {}", r.description);
        }
        crate::outln!("  over {} request environments", r.environments.len());
        if let Some(p) = &r.policy {
            crate::outln!("  policy `{p}` can error");
        }
        if let Some(cx) = &r.counterexample {
            crate::outln!("  counterexample {}", cx.trim_end().replace('\n', "\n    "));
        }
        if let Some(why) = &r.reason {
            crate::outln!("  could not be checked {why}");
        }
    }
    let count = |o: Outcome| results.iter().filter(|r| r.outcome == o).count();
    crate::outln!();
    crate::outln!(
        "{} proven, {} refuted, {} not checked",
        count(Outcome::Proven),
        count(Outcome::Refuted),
        count(Outcome::NotChecked)
    );
}

/// `execkit policy prove`.
pub fn run(a: ProveArgs) -> anyhow::Result<ExitCode> {
    let (engine, src) = engine_for(a.policies.as_deref())?;
    let text = std::fs::read_to_string(&a.properties)
        .with_context(|| format!("cannot read {}", a.properties.display()))?;
    let file: PropertiesFile =
        toml::from_str(&text).with_context(|| format!("{}", a.properties.display()))?;
    let base = a
        .properties
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let results = prove(&file, &base, engine.policy_set(), engine.schema())?;
    if a.json {
        let out = serde_json::json!({ "policies": src.name, "results": results });
        crate::outln!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print_text(&results, &src.name);
    }
    let any = |o: Outcome| results.iter().any(|r| r.outcome == o);
    Ok(if any(Outcome::Refuted) {
        ExitCode::from(2)
    } else if any(Outcome::NotChecked) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
