//! Decides one command N times with the memo off: a fixed amount of work for
//! instruction-count profiling (`valgrind --tool=callgrind`), which is repeatable where
//! wall-clock benchmarks on a shared VM are not.
//!
//! `decide_loop [N] [COMMAND | @FILE]`; `EXTRA=1000` adds the benches' 1,000 resource-scoped
//! policies to the default set.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../benches/support/bundle.rs"]
mod bundle;
use bundle::bundle;

/// The allocator of the shipped binaries, as in the benches.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let cmd = args
        .next()
        .unwrap_or_else(|| "cd /app && npm ci 2>&1 | tee build.log".into());
    // `@FILE`: the command is the file's text (scripts longer than an argument may be).
    let cmd = match cmd.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).expect("script file"),
        None => cmd,
    };
    let extra: usize = std::env::var("EXTRA")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut engine = if extra == 0 {
        execkit_engine::Engine::default_set().expect("default set")
    } else {
        execkit_engine::Engine::new(&bundle(extra)).expect("bundle")
    };
    engine.set_memo(execkit_engine::DecisionMemo::Off);
    let env = execkit_engine::DecisionEnv::local("/work", "/home/agent");
    let mut facts = 0;
    for _ in 0..n {
        facts += std::hint::black_box(engine.decide(std::hint::black_box(&cmd), &env))
            .facts
            .len();
    }
    println!("{n} decisions, {facts} facts");
}
