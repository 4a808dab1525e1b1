//! Decides one command N times with the memo off: a fixed amount of work for
//! instruction-count profiling (`valgrind --tool=callgrind`), which is repeatable where
//! wall-clock benchmarks on a shared VM are not.
//!
//! `decide_loop [N] [COMMAND]`

#![allow(clippy::unwrap_used, clippy::expect_used)]

/// The allocator of the shipped binaries, as in the benches.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let cmd = args
        .next()
        .unwrap_or_else(|| "cd /app && npm ci 2>&1 | tee build.log".into());
    let mut engine = execkit_engine::Engine::default_set().expect("default set");
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
