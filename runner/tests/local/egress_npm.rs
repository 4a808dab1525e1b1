//! `npm ci` through the egress broker, for real: a verdaccio registry on this machine
//! (installed by `scripts/test.sh`, run on its Node 22) with two packages published, a
//! project locked to them, and the session's npm reaching the registry only by the name the
//! operator listed.

use crate::common::*;
use crate::egress::policies;
use execkit_runner::egress::EgressConfig;
use execkit_runner::sandbox::{Profile, SandboxConfig};
use execkit_runner::Session;

#[path = "../support/verdaccio.rs"]
mod verdaccio;
use verdaccio::Registry;

/// The registry, or `None` outside CI when verdaccio is missing.
fn verdaccio() -> Option<Registry> {
    let (Ok(bin), Ok(node22)) = (
        std::env::var("EXECKIT_TEST_VERDACCIO"),
        std::env::var("EXECKIT_TEST_NODE22"),
    ) else {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI=true but no verdaccio (scripts/test.sh installs it)"
        );
        return None;
    };
    Some(Registry::start(&bin, &node22, &rand_u64().to_string()))
}

async fn brokered(ws: &Workspace) -> Session {
    let mut egress = EgressConfig::default();
    for h in ["registry.test", "evil.test"] {
        egress.hosts.insert(h.into(), "127.0.0.1".parse().unwrap());
    }
    config(ws, policies(), Profile::Workspace)
        .sandbox(SandboxConfig {
            egress,
            ..SandboxConfig::default()
        })
        .local()
        .await
        .unwrap()
}

#[tokio::test]
async fn npm_ci_installs_from_a_listed_registry_and_is_refused_an_unlisted_one() {
    let Some(reg) = verdaccio() else {
        return;
    };
    reg.publish(&[
        ("ek-b".into(), vec![]),
        ("ek-a".into(), vec!["ek-b".into()]),
    ]);
    let ws = Workspace::new("egress-npm");
    reg.locked_project(ws.path(), &["ek-a"], "registry.test");
    let s = brokered(&ws).await;
    let npm = "npm ci --no-audit --no-fund --fetch-retries=0 --cache .npm-cache";
    let r = ok(
        &s,
        &format!("{npm} --registry http://registry.test:{}/", reg.port),
    )
    .await;
    assert!(r.runtime_denials.is_empty(), "{r:?}");
    std::fs::write(
        ws.path().join("check.js"),
        "console.log(require('ek-a'), require('ek-b'))\n",
    )
    .unwrap();
    assert_eq!(ok(&s, "node check.js").await.stdout, "ek-a ek-b\n");
    // A lock whose packages come from another host (a poisoned lock, or a project's own
    // mirror): only the broker sees the host.
    let lock = std::fs::read_to_string(ws.path().join("package-lock.json")).unwrap();
    let poisoned = lock.replace("registry.test:", "evil.test:");
    assert_ne!(lock, poisoned);
    std::fs::write(ws.path().join("package-lock.json"), poisoned).unwrap();
    let r = run(&s, &format!("rm -rf node_modules .npm-cache && {npm}")).await;
    assert_ne!(r.exit_code, Some(0), "{r:?}");
    let d = refused_at(&r, &format!("evil.test:{}", reg.port));
    assert!(d.program.contains("node"), "{d:?}");
    s.close().await;
}
