#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a failed test

//! The exec oracle over the shipped cases and the class-1 corpus: every effect of every
//! allowed case command, and of every hidden-command payload, must be named by a fact.

use execkit_engine::{cases::case_commands, DecisionEnv, Engine, PolicyBundle, Transport, Verdict};
use execkit_oracle::{Effect, Oracle, Report};
use std::sync::Mutex;
use std::time::Duration;

/// The class-1 corpus: GTFOBins-style payloads in option values, one command per line.
const CLASS1: &str = include_str!("corpus/class1.txt");

/// The oracle, or `None` outside CI when bwrap/strace are missing (CI fails instead).
fn oracle() -> Option<Oracle> {
    match Oracle::new(Duration::from_secs(5)) {
        Ok(o) => Some(o),
        Err(e) => {
            assert!(
                std::env::var("CI").map_or(true, |v| v != "true"),
                "CI=true but the exec oracle cannot run: {e} (scripts/test.sh installs bubblewrap and strace)"
            );
            eprintln!("skipping the exec oracle: {e}");
            None
        }
    }
}

fn engine(set: execkit_policies::PolicySetFiles) -> Engine {
    let bundle = PolicyBundle::from_files(
        (execkit_policies::SCHEMA_FILE, execkit_policies::SCHEMA),
        set.policies,
        set.entities,
    );
    Engine::new(&bundle).expect("shipped set loads")
}

/// Traces `jobs` on two threads; returns the reports in order.
fn trace_all(
    oracle: &Oracle,
    engine: &Engine,
    jobs: &[(String, DecisionEnv)],
) -> Vec<(String, Verdict, Report)> {
    let next = Mutex::new(0usize);
    let results = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let i = {
                    let mut n = next.lock().unwrap();
                    let i = *n;
                    *n += 1;
                    i
                };
                let Some((command, env)) = jobs.get(i) else {
                    break;
                };
                let d = engine.decide(command, env);
                let r = oracle
                    .trace(command, &d, env)
                    .unwrap_or_else(|e| panic!("`{command}`: {e}"));
                results
                    .lock()
                    .unwrap()
                    .push((i, command.clone(), d.verdict, r));
            });
        }
    });
    let mut v = results.into_inner().unwrap();
    v.sort_by_key(|(i, ..)| *i);
    v.into_iter().map(|(_, c, v, r)| (c, v, r)).collect()
}

/// True if a payload program (one of those the corpus uses) was executed.
fn ran_payload(command: &str, r: &Report) -> bool {
    const PAYLOAD_PROGRAMS: [&str; 8] =
        ["touch", "rm", "cp", "mkdir", "ln", "chmod", "id", "false"];
    let outer = command.split_whitespace().next().unwrap_or("");
    r.observed.iter().any(|o| match &o.effect {
        Effect::Exec { path, .. } => {
            let base = path.rsplit('/').next().unwrap_or(path);
            base != outer && (PAYLOAD_PROGRAMS.contains(&base) || base == "true")
        }
        _ => false,
    })
}

fn describe(command: &str, r: &Report) -> String {
    let mut s = format!("`{command}`:");
    for d in &r.divergences {
        s.push_str(&format!("\n    {}\n      trace: {}", d.effect, d.line));
    }
    s
}

/// Every allowed local case of the shipped sets runs with zero divergences.
#[test]
fn shipped_allowed_cases_have_no_divergence() {
    let Some(oracle) = oracle() else { return };
    let mut failures = Vec::new();
    let mut traced = 0;
    for set in execkit_policies::SETS {
        let engine = engine(*set);
        let mut jobs = Vec::new();
        for (file, text) in set.cases {
            for c in case_commands(file, text).unwrap() {
                if c.expect == Verdict::Allow && c.env.target.transport == Transport::Local {
                    jobs.push((c.command, c.env));
                }
            }
        }
        for (command, verdict, r) in trace_all(&oracle, &engine, &jobs) {
            traced += 1;
            assert_eq!(verdict, Verdict::Allow, "`{command}` is an allowed case");
            if !r.divergences.is_empty() {
                failures.push(format!("[{}] {}", set.name, describe(&command, &r)));
            }
        }
    }
    eprintln!(
        "exec oracle: {traced} allowed cases traced, {} with divergences",
        failures.len()
    );
    assert!(traced >= 150, "only {traced} allowed cases");
    assert!(
        failures.is_empty(),
        "{} divergences:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Every class-1 payload is predicted: no divergence, whatever the verdict, except under a
/// dynamic command (which is denied because nothing about it can be known).
#[test]
fn class1_corpus_is_predicted() {
    let Some(oracle) = oracle() else { return };
    let engine = engine(execkit_policies::DEFAULT);
    let env = DecisionEnv::local("/work", "/home/agent");
    let jobs: Vec<(String, DecisionEnv)> = CLASS1
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| (l.to_string(), env.clone()))
        .collect();
    assert!(jobs.len() >= 300, "only {} corpus commands", jobs.len());
    let mut failures = Vec::new();
    let mut payload_ran = 0;
    for (command, verdict, r) in trace_all(&oracle, &engine, &jobs) {
        let dynamic = r.predicted.programs.iter().any(|p| p == "(dynamic)");
        // The payload ran if something besides the outer program was executed.
        if ran_payload(&command, &r) {
            payload_ran += 1;
        }
        let excused = dynamic && verdict == Verdict::Deny;
        if !r.divergences.is_empty() && !excused {
            failures.push(describe(&command, &r));
        }
    }
    eprintln!(
        "exec oracle: {} corpus commands traced, the payload ran in {payload_ran}",
        jobs.len()
    );
    assert!(
        failures.is_empty(),
        "{} divergences:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // A corpus whose payloads never run would prove nothing.
    assert!(
        payload_ran >= 120,
        "the payload ran in only {payload_ran} corpus commands"
    );
}
