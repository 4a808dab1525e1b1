//! Shared by the runner's bench binaries: the shipped policies, percentiles and peak
//! memory.

use execkit_engine::{Engine, PolicyBundle};
use std::sync::Arc;
use std::time::Duration;

/// The shipped `default` policy set.
#[allow(dead_code)] // not every bench binary uses the set as shipped
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

#[path = "../../tests/support/test_hosts.rs"]
mod test_hosts;
#[allow(unused_imports)] // not every bench binary drives SSH
pub use test_hosts::default_policies_with_test_hosts as engine_with_test_hosts;
