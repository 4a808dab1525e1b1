//! The exec oracle as a fuzz target: libFuzzer mutates scripts (seeded with the class-1
//! corpus and everyday commands); each one the default set allows is run for real in the
//! throwaway sandbox, and every effect must be named by a fact — "no divergence, or the
//! script was denied". Commands that run code no fact can describe (interpreters' scripts,
//! project recipes, workspace files: `opaque` in implicit.toml) are judged by where they
//! run, not held to the facts here. Needs bwrap and strace; about 0.1 s per allowed run.
#![no_main]

use execkit_engine::{DecisionEnv, Engine, Verdict};
use execkit_oracle::{Implicit, Oracle};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;
use std::time::Duration;

static ENGINE: LazyLock<Engine> =
    LazyLock::new(|| Engine::default_set().expect("default set loads"));
static ORACLE: LazyLock<Oracle> =
    LazyLock::new(|| Oracle::new(Duration::from_secs(3)).expect("bwrap and strace run"));
static IMPLICIT: LazyLock<Implicit> =
    LazyLock::new(|| Implicit::shipped().expect("implicit.toml loads"));

fuzz_target!(|data: &[u8]| {
    let Ok(command) = std::str::from_utf8(data) else { return };
    if command.len() > 400 || command.trim().is_empty() {
        return;
    }
    let env = DecisionEnv::local("/work", "/home/agent");
    let d = ENGINE.decide(command, &env);
    if d.verdict != Verdict::Allow {
        return;
    }
    let r = ORACLE.trace(command, &d, &env).expect("the oracle runs");
    if r.divergences.is_empty() || IMPLICIT.runs_unseen_code(&r.predicted) {
        return;
    }
    let lines: Vec<String> = r
        .divergences
        .iter()
        .map(|d| format!("{}  [{}]", d.effect, d.line))
        .collect();
    panic!("`{command}` was allowed but did what no fact names:\n{}", lines.join("\n"));
});
