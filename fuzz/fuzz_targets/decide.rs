//! Arbitrary bytes through grammar → engine under the default policy set.
//! Oracle: no panic; a rejected parse or a dynamic command position never yields Allow;
//! every request built validates against the schema (see `execkit_engine::oracle`).
#![no_main]

use execkit_engine::{DecisionEnv, Engine, PolicyBundle};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn engine() -> &'static Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    E.get_or_init(|| {
        let set = execkit_policies::DEFAULT;
        let bundle = PolicyBundle::from_files((execkit_policies::SCHEMA_FILE, execkit_policies::SCHEMA), set.policies, set.entities);
        Engine::new(&bundle).expect("default set loads")
    })
}

fuzz_target!(|data: &[u8]| {
    let env = DecisionEnv::local("/work", "/home/agent");
    if let Err(e) = execkit_engine::oracle::check(engine(), &env, data) {
        panic!("invariant violated for {:?}: {e}", String::from_utf8_lossy(data));
    }
});
