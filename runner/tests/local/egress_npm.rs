//! `npm ci` through the egress broker, for real: a verdaccio registry on this machine
//! (installed by `scripts/test.sh`, run on its Node 22) with two packages published, a
//! project locked to them, and the session's npm reaching the registry only by the name the
//! operator listed.

use crate::common::*;
use crate::egress::policies;
use execkit_runner::egress::EgressConfig;
use execkit_runner::sandbox::{Profile, SandboxConfig};
use execkit_runner::Session;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A verdaccio on a free loopback port, stopped and removed on drop.
struct Registry {
    child: Child,
    port: u16,
    dir: PathBuf,
    node22: String,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

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
    let dir = std::env::temp_dir().join(format!("ek-verdaccio-{}", rand_u64()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = format!(
        "storage: {d}/storage\nauth:\n  htpasswd:\n    file: {d}/htpasswd\npackages:\n  '**':\n    access: $all\n    publish: $authenticated\nlog: {{ type: stdout, format: pretty, level: error }}\n",
        d = dir.display()
    );
    std::fs::write(dir.join("config.yaml"), config).unwrap();
    let port = free_port();
    let child = Command::new(bin)
        .args(["--config", "config.yaml", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .current_dir(&dir)
        .env("PATH", path_with(&node22))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let reg = Registry {
        child,
        port,
        dir,
        node22,
    };
    wait_for(port);
    Some(reg)
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn path_with(dir: &str) -> String {
    format!("{dir}:{}", std::env::var("PATH").unwrap_or_default())
}

fn wait_for(port: u16) {
    for _ in 0..300 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("verdaccio did not start on port {port}");
}

impl Registry {
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// Runs npm (on Node 22) in `dir` against the registry, as the test's own tool.
    fn npm(&self, dir: &Path, args: &[&str]) {
        let out = Command::new("npm")
            .args(args)
            .args(["--registry", &self.url(), "--loglevel=error"])
            .arg(format!("--userconfig={}", self.dir.join("npmrc").display()))
            .current_dir(dir)
            .env("PATH", path_with(&self.node22))
            .output()
            .unwrap();
        assert!(out.status.success(), "npm {args:?}: {out:?}");
    }

    /// An account that may publish (the token goes into the test's own npmrc).
    fn login(&self) {
        let body = r#"{"name":"ek","password":"ek-test-password"}"#;
        let out = Command::new("curl")
            .args([
                "-sS",
                "-X",
                "PUT",
                "-H",
                "content-type: application/json",
                "-d",
                body,
            ])
            .arg(format!("{}-/user/org.couchdb.user:ek", self.url()))
            .output()
            .unwrap();
        let reply: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let token = reply["token"].as_str().unwrap_or_else(|| panic!("{reply}"));
        let line = format!("//127.0.0.1:{}/:_authToken={token}\n", self.port);
        std::fs::write(self.dir.join("npmrc"), line).unwrap();
    }

    /// Publishes `ek-b` and `ek-a` (which depends on it).
    fn publish(&self) {
        self.login();
        for (name, deps) in [
            ("ek-b", ""),
            ("ek-a", r#", "dependencies": {"ek-b": "^1.0.0"}"#),
        ] {
            let p = self.dir.join(name);
            std::fs::create_dir_all(&p).unwrap();
            let manifest =
                format!(r#"{{"name":"{name}","version":"1.0.0","main":"index.js"{deps}}}"#);
            std::fs::write(p.join("package.json"), manifest).unwrap();
            std::fs::write(p.join("index.js"), format!("module.exports = '{name}';\n")).unwrap();
            self.npm(&p, &["publish"]);
        }
    }

    /// A project depending on `ek-a`, locked against this registry as `registry.test`,
    /// written into `ws`.
    fn locked_project(&self, ws: &Path) {
        let manifest = r#"{"name":"proj","version":"1.0.0","dependencies":{"ek-a":"1.0.0"}}"#;
        std::fs::write(ws.join("package.json"), manifest).unwrap();
        self.npm(ws, &["install", "--package-lock-only"]);
        // The lock names the registry as the session reaches it (real locks name
        // registry.npmjs.org).
        let lock = std::fs::read_to_string(ws.join("package-lock.json")).unwrap();
        let here = format!("127.0.0.1:{}", self.port);
        let named = lock.replace(&here, &format!("registry.test:{}", self.port));
        std::fs::write(ws.join("package-lock.json"), named).unwrap();
    }
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
    reg.publish();
    let ws = Workspace::new("egress-npm");
    reg.locked_project(ws.path());
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
