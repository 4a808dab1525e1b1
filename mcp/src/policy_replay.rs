//! `execkit policy replay AUDIT.jsonl`: decide every recorded command again under another
//! policy set and list what changes.
//!
//! Why: the question a policy author must answer before shipping a change is "what would
//! this have done to last week's real traffic?". The audit log already holds every
//! decision with its command, cwd, identity and target, and with the recorded environment
//! (`env` in a decision record: workspace, home, groups, target, the live symlink and PATH
//! facts) a decision can be made again exactly as the session made it, under the new set.
//! Commands were recorded redacted: a record whose text holds a redaction
//! marker is replayed as recorded and flagged, because its secret part is gone.
//!
//! Runtime decisions (programs decided as a command started them: a record with a
//! `runtime` context) are replayed too, against the policies' own verdict at the time (a
//! human's refusal, an argument change or the command's own decision may have made the
//! outcome differ from it), and reported with the command they ran under.
//!
//! Exit codes: 0 nothing changed, 2 something changed, 1 an error, or nothing changed but
//! some decisions could not be replayed (an older record without its environment and no
//! `--workspace`/`--home` given): "nothing changed" is only claimed when it was checked.

use crate::policy_cmd::engine_for;
use anyhow::Context as _;
use clap::Args;
use execkit_audit::{DecisionRecord, Verdict as Recorded};
use execkit_engine::{Decision, DecisionEnv, Engine, Transport, Verdict};
use serde::Serialize;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

/// `execkit policy replay`.
#[derive(Args)]
pub struct ReplayArgs {
    /// The audit log (JSON Lines, as `execkit-mcp` or `execkit session --audit` write it).
    audit: PathBuf,
    /// The policy set to replay under (default: the embedded default set).
    #[arg(long)]
    policies: Option<PathBuf>,
    /// Compare against this set's decisions, made now, instead of the recorded verdicts
    /// (isolates the policy change from changes of the engine since the log was written).
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Workspace for records written before decision records carried their environment.
    #[arg(long)]
    workspace: Option<String>,
    /// Home directory for such records.
    #[arg(long)]
    home: Option<String>,
    /// JSON output.
    #[arg(long)]
    json: bool,
}

/// How a decision changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// It ran (or asked) before and is denied now.
    NewlyDenied,
    /// It was denied (or asked) before and runs now.
    NewlyAllowed,
    /// It ran or was denied before and asks a human now.
    NewlyAsked,
}

/// One fact of a replayed decision, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayedFact {
    /// Cedar action.
    pub action: String,
    /// Cedar resource.
    pub resource: String,
    /// Its verdict now.
    pub verdict: Verdict,
    /// The determining policies now.
    pub policies: Vec<String>,
    /// Why.
    pub reason: String,
}

/// A decision whose verdict changed.
#[derive(Debug, Clone, Serialize)]
pub struct Changed {
    /// The record's sequence number in the log.
    pub seq: u64,
    /// Session id.
    pub session: String,
    /// The command as recorded.
    pub command: String,
    /// The cwd it was decided in.
    pub cwd: String,
    /// What changed.
    pub change: Change,
    /// The verdict before (recorded, or the baseline set's).
    pub was: Verdict,
    /// The policies that determined it before.
    pub was_policies: Vec<String>,
    /// The verdict now.
    pub now: Verdict,
    /// Every fact now.
    pub facts: Vec<ReplayedFact>,
    /// The recorded text holds a redaction marker: its secret part was not replayed.
    pub redacted: bool,
    /// For a program decided at its start: the command it ran under.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub under: Option<String>,
}

/// A record that could not be decided again, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    /// The record's sequence number (0 when the line itself was unreadable).
    pub seq: u64,
    /// Why.
    pub why: String,
}

/// The whole replay.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ReplayReport {
    /// Decision records of commands found.
    pub decisions: usize,
    /// Of them, decided again.
    pub replayed: usize,
    /// Of them, same verdict as before.
    pub unchanged: usize,
    /// Runtime decision records (programs decided at their start) found.
    pub runtime_decisions: usize,
    /// Of them, decided again.
    pub runtime_replayed: usize,
    /// Of them, same verdict as before.
    pub runtime_unchanged: usize,
    /// Replayed from redacted text.
    pub redacted: usize,
    /// Verdicts that changed, in log order.
    pub changes: Vec<Changed>,
    /// Records not replayed.
    pub skipped: Vec<Skipped>,
    /// The log's hash chain: `None` when intact, else the first problem.
    pub chain_problem: Option<String>,
}

impl ReplayReport {
    /// How many changes of one kind.
    pub fn count(&self, c: Change) -> usize {
        self.changes.iter().filter(|x| x.change == c).count()
    }

    /// How many changes of one kind, of commands (`runtime` false) or of programs decided
    /// at their start (`runtime` true).
    pub fn count_of(&self, c: Change, runtime: bool) -> usize {
        self.changes
            .iter()
            .filter(|x| x.change == c && x.under.is_some() == runtime)
            .count()
    }
}

/// What the replay compares against.
pub enum Baseline<'a> {
    /// The verdicts in the log.
    Recorded,
    /// Another set's decisions, made now.
    Engine(&'a Engine),
}

/// Fallbacks for records without their environment.
#[derive(Default)]
pub struct Fallback {
    /// Workspace.
    pub workspace: Option<String>,
    /// Home.
    pub home: Option<String>,
}

fn from_recorded(v: Recorded) -> Verdict {
    match v {
        Recorded::Allow => Verdict::Allow,
        Recorded::Ask => Verdict::Ask,
        _ => Verdict::Deny,
    }
}

/// The environment a recorded decision was made in.
fn env_of(r: &DecisionRecord, fallback: &Fallback) -> Result<DecisionEnv, String> {
    let (workspace, home) = match (&r.env, &fallback.workspace, &fallback.home) {
        (Some(e), _, _) => (e.workspace.clone(), e.home.clone()),
        (None, Some(w), Some(h)) => (w.clone(), h.clone()),
        (None, _, _) => {
            return Err(
                "no recorded environment (an older log): pass --workspace and --home".into(),
            )
        }
    };
    let mut env = DecisionEnv::local(&workspace, &home);
    env.cwd = Some(r.cwd.clone());
    env.identity.agent = r.who.agent.clone();
    env.identity.operator = r.who.operator.clone();
    env.identity.session_id = r.who.session.clone();
    env.identity.approved_by = r.approved_by.clone();
    env.target.transport = r
        .who
        .transport
        .parse::<Transport>()
        .map_err(|e| e.to_string())?;
    if let Some(e) = &r.env {
        if !e.kind.is_empty() {
            env.identity.kind = e.kind.clone();
        }
        env.identity.groups = e.groups.clone();
        env.target.host = e.host.clone();
        env.target.container = e.container.clone();
        env.target.remote_user = e.remote_user.clone();
        env.real_paths = e.real_paths.clone();
        env.real_programs = e.real_programs.clone();
    }
    Ok(env)
}

fn change_of(was: Verdict, now: Verdict) -> Option<Change> {
    if was == now {
        return None;
    }
    Some(match now {
        Verdict::Allow => Change::NewlyAllowed,
        Verdict::Ask => Change::NewlyAsked,
        _ => Change::NewlyDenied,
    })
}

/// The facts of a decision for the report; a command that no longer parses (or whose
/// entities cannot be built) gets one pseudo-fact saying so.
fn facts_of(d: &Decision) -> Vec<ReplayedFact> {
    let mut out: Vec<ReplayedFact> = d
        .facts
        .iter()
        .map(|f| ReplayedFact {
            action: f.action.to_string(),
            resource: f.resource.clone(),
            verdict: f.verdict,
            policies: f.policies.iter().map(|p| p.id.clone()).collect(),
            reason: f.reason.clone(),
        })
        .collect();
    for (what, e) in [("parse", &d.parse_error), ("entities", &d.entity_error)] {
        if let Some(e) = e {
            out.push(ReplayedFact {
                action: what.into(),
                resource: String::new(),
                verdict: Verdict::Deny,
                policies: Vec::new(),
                reason: e.clone(),
            });
        }
    }
    out
}

fn determining(d: &Decision) -> Vec<String> {
    let mut ids: Vec<String> = d
        .facts
        .iter()
        .filter(|f| f.verdict == d.verdict)
        .flat_map(|f| f.policies.iter().map(|p| p.id.clone()))
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// Decides every decision record of `log` again under `engine`.
pub fn replay(
    log: impl BufRead,
    engine: &Engine,
    baseline: &Baseline<'_>,
    fallback: &Fallback,
) -> std::io::Result<ReplayReport> {
    let mut report = ReplayReport::default();
    for (n, line) in log.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(e) => {
                report.skipped.push(Skipped {
                    seq: 0,
                    why: format!("line {}: not JSON: {e}", n + 1),
                });
                continue;
            }
        };
        if value.get("kind").and_then(|k| k.as_str()) != Some("decision") {
            continue;
        }
        let runtime = value.get("runtime").is_some_and(|r| !r.is_null());
        if runtime {
            report.runtime_decisions += 1;
        } else {
            report.decisions += 1;
        }
        let seq = value.get("seq").and_then(|s| s.as_u64()).unwrap_or(0);
        let record: DecisionRecord = match serde_json::from_value(value) {
            Ok(r) => r,
            Err(e) => {
                report.skipped.push(Skipped {
                    seq,
                    why: format!("not a decision record: {e}"),
                });
                continue;
            }
        };
        let env = match env_of(&record, fallback) {
            Ok(e) => e,
            Err(why) => {
                report.skipped.push(Skipped { seq, why });
                continue;
            }
        };
        let text = record
            .env
            .as_ref()
            .and_then(|e| e.decided.clone())
            .unwrap_or_else(|| record.command.clone());
        let redacted = text.contains("[REDACTED:");
        let now = engine.decide(&text, &env);
        let (was, was_policies) = match baseline {
            Baseline::Recorded => {
                // A runtime record's verdict is what happened to the program; the policies'
                // own verdict is its facts' (the most severe).
                let verdict = if runtime {
                    record
                        .facts
                        .iter()
                        .map(|f| from_recorded(f.verdict))
                        .max()
                        .unwrap_or(Verdict::Allow)
                } else {
                    from_recorded(record.verdict)
                };
                let mut ids: Vec<String> = record
                    .facts
                    .iter()
                    .filter(|f| from_recorded(f.verdict) == verdict)
                    .flat_map(|f| f.policies.iter().cloned())
                    .collect();
                ids.sort();
                ids.dedup();
                (verdict, ids)
            }
            Baseline::Engine(b) => {
                let d = b.decide(&text, &env);
                (d.verdict, determining(&d))
            }
        };
        if runtime {
            report.runtime_replayed += 1;
        } else {
            report.replayed += 1;
        }
        if redacted {
            report.redacted += 1;
        }
        match change_of(was, now.verdict) {
            None if runtime => report.runtime_unchanged += 1,
            None => report.unchanged += 1,
            Some(change) => report.changes.push(Changed {
                seq,
                session: record.who.session.clone(),
                command: record.command.clone(),
                cwd: record.cwd.clone(),
                change,
                was,
                was_policies,
                now: now.verdict,
                facts: facts_of(&now),
                redacted,
                under: record.runtime.as_ref().map(|r| r.under.clone()),
            }),
        }
    }
    Ok(report)
}

fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Allow => "allow",
        Verdict::Ask => "ask",
        _ => "deny",
    }
}

fn print_text(report: &ReplayReport, against: &str, baseline: &str) {
    crate::outln!(
        "replayed {} of {} decisions under {against} (compared with {baseline})",
        report.replayed,
        report.decisions
    );
    match &report.chain_problem {
        None => crate::outln!("audit chain: intact"),
        Some(p) => crate::outln!("audit chain: NOT intact: {p}"),
    }
    crate::outln!(
        "newly denied: {}, newly allowed: {}, newly asked: {}, unchanged: {}, not replayed: {}",
        report.count_of(Change::NewlyDenied, false),
        report.count_of(Change::NewlyAllowed, false),
        report.count_of(Change::NewlyAsked, false),
        report.unchanged,
        report.skipped.len()
    );
    if report.runtime_decisions > 0 {
        crate::outln!(
            "runtime decisions (programs the commands started): replayed {} of {}; newly denied: {}, newly allowed: {}, newly asked: {}, unchanged: {}",
            report.runtime_replayed,
            report.runtime_decisions,
            report.count_of(Change::NewlyDenied, true),
            report.count_of(Change::NewlyAllowed, true),
            report.count_of(Change::NewlyAsked, true),
            report.runtime_unchanged
        );
    }
    if report.redacted > 0 {
        crate::outln!(
            "{} replayed from redacted text (their secret parts are not in the log)",
            report.redacted
        );
    }
    for c in &report.changes {
        let label = match c.change {
            Change::NewlyDenied => "NEWLY DENIED",
            Change::NewlyAllowed => "NEWLY ALLOWED",
            Change::NewlyAsked => "NEWLY ASKED",
        };
        crate::outln!();
        crate::outln!(
            "{label}  #{} session {}  cwd {}{}",
            c.seq,
            c.session,
            c.cwd,
            if c.redacted { "  (redacted text)" } else { "" }
        );
        crate::outln!("  $ {}", c.command);
        if let Some(under) = &c.under {
            crate::outln!("  (a program started at run time by `{under}`)");
        }
        let was = if c.was_policies.is_empty() {
            String::new()
        } else {
            format!(" by {}", c.was_policies.join(", "))
        };
        crate::outln!("  was {}{was}", verdict_word(c.was));
        for f in c.facts.iter().filter(|f| f.verdict == c.now) {
            crate::outln!(
                "  now {}: {} {} — {}",
                verdict_word(f.verdict),
                f.action,
                f.resource,
                f.reason
            );
        }
    }
    for s in &report.skipped {
        crate::outln!("not replayed #{}: {}", s.seq, s.why);
    }
}

/// `execkit policy replay`.
pub fn run(a: ReplayArgs) -> anyhow::Result<ExitCode> {
    let (engine, src) = engine_for(a.policies.as_deref())?;
    let base = match &a.baseline {
        Some(d) => Some(engine_for(Some(d))?),
        None => None,
    };
    let baseline = match &base {
        Some((e, _)) => Baseline::Engine(e),
        None => Baseline::Recorded,
    };
    let file = std::fs::File::open(&a.audit)
        .with_context(|| format!("cannot open {}", a.audit.display()))?;
    let fallback = Fallback {
        workspace: a.workspace.clone(),
        home: a.home.clone(),
    };
    let mut report = replay(std::io::BufReader::new(file), &engine, &baseline, &fallback)
        .with_context(|| format!("reading {}", a.audit.display()))?;
    let chain = execkit_audit::verify_file(&a.audit, &Default::default())
        .with_context(|| format!("verifying {}", a.audit.display()))?;
    report.chain_problem = chain.problem.map(|p| p.to_string());
    let baseline_name = match &base {
        Some((_, s)) => s.name.clone(),
        None => "the recorded verdicts".to_string(),
    };
    if a.json {
        let out = serde_json::json!({
            "policies": src.name,
            "baseline": baseline_name,
            "report": report,
        });
        crate::outln!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print_text(&report, &src.name, &baseline_name);
    }
    Ok(if !report.changes.is_empty() {
        ExitCode::from(2)
    } else if report.decisions == 0 {
        eprintln!("execkit: {} has no decision records", a.audit.display());
        ExitCode::from(1)
    } else if !report.skipped.is_empty() {
        eprintln!(
            "execkit: nothing changed among the replayed decisions, but {} of {} could not be replayed",
            report.skipped.len(),
            report.decisions
        );
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
