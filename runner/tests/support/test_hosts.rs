//! The shipped `default` set with the loopback test hosts approved for SSH, as an operator
//! lists their hosts in `HostGroup::"agent-ssh"`: shared by the tests and the benches.

use execkit_engine::{Engine, PolicyBundle};
use std::sync::Arc;

/// The `default` set with `127.0.0.1` and `localhost` in `HostGroup::"agent-ssh"`.
#[allow(dead_code)] // not every test or bench binary drives SSH
pub fn default_policies_with_test_hosts() -> Arc<Engine> {
    let set = execkit_policies::DEFAULT;
    let mut entities: Vec<serde_json::Value> =
        serde_json::from_str(set.entities).expect("entities parse");
    for e in entities.iter_mut() {
        if e["uid"]["type"] == "HostGroup" && e["uid"]["id"] == "agent-ssh" {
            e["attrs"]["patterns"] = serde_json::json!(["127.0.0.1", "localhost"]);
        }
    }
    let text = serde_json::to_string(&entities).expect("entities serialize");
    let bundle = PolicyBundle::from_files(
        (execkit_policies::SCHEMA_FILE, execkit_policies::SCHEMA),
        set.policies,
        &text,
    );
    Arc::new(Engine::new(&bundle).expect("default engine with test hosts"))
}
