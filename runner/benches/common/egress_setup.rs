//! Shared by the egress bench binaries: the default set with a registry on this machine
//! listed, and local sessions with the broker or the host's network.

use execkit_engine::{Engine, PolicyBundle};
use execkit_runner::egress::EgressConfig;
use execkit_runner::sandbox::{Profile, SandboxConfig};
use execkit_runner::{ExecOptions, Session};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The default set with `registry.test` and `127.0.0.1` a package registry on a private
/// address the operator allows.
pub fn policies() -> Arc<Engine> {
    let set = execkit_policies::DEFAULT;
    let mut entities: Vec<serde_json::Value> = serde_json::from_str(set.entities).unwrap();
    for e in entities.iter_mut() {
        let id = e["uid"]["id"].as_str().unwrap_or("").to_string();
        let wanted = ["package-registries", "egress-allowed", "private-hosts"];
        if e["uid"]["type"] == "HostGroup" && wanted.contains(&id.as_str()) {
            let pats = e["attrs"]["patterns"].as_array_mut().unwrap();
            pats.extend(["registry.test", "127.0.0.1"].map(|h| serde_json::json!(h)));
        }
        if e["uid"]["type"] == "HostGroup" && id == "agent-ssh" {
            e["attrs"]["patterns"] = serde_json::json!(["127.0.0.1"]);
        }
    }
    let bundle = PolicyBundle::from_files(
        (execkit_policies::SCHEMA_FILE, execkit_policies::SCHEMA),
        set.policies,
        &serde_json::to_string(&entities).unwrap(),
    );
    Arc::new(Engine::new(&bundle).unwrap())
}

/// A local session in `ws` with `profile`, `registry.test` mapped to this machine.
pub async fn session(ws: &Path, profile: Profile) -> Session {
    let mut egress = EgressConfig::default();
    egress
        .hosts
        .insert("registry.test".into(), "127.0.0.1".parse().unwrap());
    Session::builder()
        .workspace(ws)
        .engine(policies())
        .sandbox(SandboxConfig {
            egress,
            ..SandboxConfig::default()
        })
        .profile(profile)
        .local()
        .await
        .unwrap()
}

/// Runs `cmd`, which must succeed.
pub async fn run(s: &Session, cmd: &str) -> execkit_runner::ExecResult {
    let opts = ExecOptions::timeout(Duration::from_secs(600));
    let r = s.exec(cmd, &opts).await.unwrap();
    assert_eq!(r.exit_code, Some(0), "`{cmd}`: {r:?}");
    r
}

/// Prints the median, min and max of `sorted`.
pub fn report(what: &str, sorted: &[Duration]) {
    println!(
        "{what}: median {:.2?}, min {:.2?}, max {:.2?} ({} runs)",
        super::measure::pct(sorted, 0.5),
        sorted[0],
        sorted[sorted.len() - 1],
        sorted.len()
    );
}

/// True when the registry `vars` name is installed (all set); outside CI a missing one
/// skips the bench with a line saying so, under `CI=true` it is a failure.
pub fn have_registry(vars: &[&str]) -> bool {
    let missing: Vec<&str> = vars
        .iter()
        .copied()
        .filter(|v| std::env::var_os(v).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert_ne!(
        std::env::var("CI").as_deref(),
        Ok("true"),
        "CI=true but {missing:?} unset (scripts/test.sh installs the registries)"
    );
    eprintln!("skipped: set {missing:?} (scripts/test.sh installs the registries)");
    false
}
