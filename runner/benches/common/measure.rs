//! Shared by the runner's bench binaries: the shipped policies, percentiles and peak
//! memory.

use execkit_engine::{Engine, PolicyBundle};
use std::sync::Arc;
use std::time::Duration;

/// The shipped `default` policy set.
pub fn engine() -> Arc<Engine> {
    let set = execkit_policies::DEFAULT;
    let bundle = PolicyBundle::from_files(
        (execkit_policies::SCHEMA_FILE, execkit_policies::SCHEMA),
        set.policies,
        set.entities,
    );
    Arc::new(Engine::new(&bundle).expect("default policies"))
}

/// The `p` percentile (0..=1) of sorted durations.
pub fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// This process's peak resident memory (`VmHWM`), in KiB.
#[allow(dead_code)] // not every bench binary reports memory
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// The shipped `default` set with the loopback test hosts in `HostGroup::"agent-ssh"`, as
/// an operator lists their hosts.
#[allow(dead_code)] // not every bench binary drives SSH
pub fn engine_with_test_hosts() -> Arc<Engine> {
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
    Arc::new(Engine::new(&bundle).expect("default policies with test hosts"))
}
