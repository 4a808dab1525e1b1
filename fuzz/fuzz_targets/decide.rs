//! Arbitrary bytes through grammar → engine under the default policy set.
//! Oracle: no panic; a rejected parse or a dynamic command position never yields Allow;
//! every request built validates against the schema; the fast decision path (decided and
//! remembered) gives the reference path's decision (see `execkit_tests::oracle`).
#![no_main]

use execkit_engine::{DecisionEnv, DecisionPath, Engine};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn engine() -> &'static Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    E.get_or_init(|| Engine::default_set().expect("default set loads"))
}

fn reference() -> &'static Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    E.get_or_init(|| {
        let mut e = Engine::default_set().expect("default set loads");
        e.set_decision_path(DecisionPath::Reference);
        e
    })
}

fuzz_target!(|data: &[u8]| {
    let env = DecisionEnv::local("/work", "/home/agent");
    if let Err(e) = execkit_tests::oracle::check(engine(), &env, data) {
        panic!("invariant violated for {:?}: {e}", String::from_utf8_lossy(data));
    }
    if let Err(e) = execkit_tests::oracle::same_on_both_paths(engine(), reference(), &env, data) {
        panic!("decision paths differ for {:?}: {e}", String::from_utf8_lossy(data));
    }
});
