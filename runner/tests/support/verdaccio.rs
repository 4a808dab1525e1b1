//! A `verdaccio` npm registry on a free loopback port (run on its Node 22), with packages
//! published by the real npm and projects locked against it: shared by the egress tests
//! and the npm egress bench.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A package to publish: its name and the names it depends on (`^1.0.0` each).
pub type Package = (String, Vec<String>);

/// A verdaccio on a free loopback port, stopped and removed on drop.
pub struct Registry {
    child: Child,
    /// Its port on `127.0.0.1`.
    pub port: u16,
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

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    l.local_addr().expect("its address").port()
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
    /// Starts `bin` on `node22` (the directory of Node 22's `node` and `npm`).
    pub fn start(bin: &str, node22: &str, tag: &str) -> Registry {
        let dir = std::env::temp_dir().join(format!("ek-verdaccio-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("the registry's directory");
        let config = format!(
            "storage: {d}/storage\nauth:\n  htpasswd:\n    file: {d}/htpasswd\npackages:\n  '**':\n    access: $all\n    publish: $authenticated\nlog: {{ type: stdout, format: pretty, level: error }}\n",
            d = dir.display()
        );
        std::fs::write(dir.join("config.yaml"), config).expect("its config");
        let port = free_port();
        let child = Command::new(bin)
            .args(["--config", "config.yaml", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .current_dir(&dir)
            .env("PATH", path_with(node22))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("verdaccio starts");
        let reg = Registry {
            child,
            port,
            dir,
            node22: node22.to_string(),
        };
        wait_for(port);
        reg
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    fn npm_command(&self, dir: &Path, args: &[&str]) -> Command {
        let mut c = Command::new("npm");
        c.args(args)
            .args(["--registry", &self.url(), "--loglevel=error"])
            .arg(format!("--userconfig={}", self.dir.join("npmrc").display()))
            .current_dir(dir)
            .env("PATH", path_with(&self.node22));
        c
    }

    /// Runs npm (on Node 22) in `dir` against the registry, as the test's own tool.
    fn npm(&self, dir: &Path, args: &[&str]) {
        let out = self.npm_command(dir, args).output().expect("npm runs");
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
            .expect("curl runs");
        let reply: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        let token = reply["token"].as_str().unwrap_or_else(|| panic!("{reply}"));
        let line = format!("//127.0.0.1:{}/:_authToken={token}\n", self.port);
        std::fs::write(self.dir.join("npmrc"), line).expect("the npmrc");
    }

    /// Publishes `packages` (version 1.0.0 each, a module exporting its name), four npm
    /// processes at a time.
    pub fn publish(&self, packages: &[Package]) {
        self.login();
        for batch in packages.chunks(4) {
            let running: Vec<_> = batch
                .iter()
                .map(|(name, deps)| {
                    let p = self.package_dir(name, deps);
                    let child = self
                        .npm_command(&p, &["publish"])
                        .stdout(Stdio::null())
                        .stderr(Stdio::piped())
                        .spawn()
                        .expect("npm runs");
                    (name, child)
                })
                .collect();
            for (name, child) in running {
                let out = child.wait_with_output().expect("npm ends");
                assert!(out.status.success(), "npm publish {name}: {out:?}");
            }
        }
    }

    /// The directory of package `name`, written.
    fn package_dir(&self, name: &str, deps: &[String]) -> PathBuf {
        let p = self.dir.join("packages").join(name);
        std::fs::create_dir_all(&p).expect("the package's directory");
        let deps: serde_json::Map<String, serde_json::Value> = deps
            .iter()
            .map(|d| (d.clone(), serde_json::json!("^1.0.0")))
            .collect();
        let manifest = serde_json::json!({
            "name": name, "version": "1.0.0", "main": "index.js", "dependencies": deps,
        });
        std::fs::write(p.join("package.json"), manifest.to_string()).expect("package.json");
        std::fs::write(p.join("index.js"), format!("module.exports = '{name}';\n"))
            .expect("index.js");
        p
    }

    /// A project depending on `deps` (exact 1.0.0), locked against this registry as the
    /// session reaches it (`host`, e.g. `registry.test`), written into `ws`.
    pub fn locked_project(&self, ws: &Path, deps: &[&str], host: &str) {
        let deps: serde_json::Map<String, serde_json::Value> = deps
            .iter()
            .map(|d| (d.to_string(), serde_json::json!("1.0.0")))
            .collect();
        let manifest =
            serde_json::json!({"name": "proj", "version": "1.0.0", "dependencies": deps});
        std::fs::write(ws.join("package.json"), manifest.to_string()).expect("package.json");
        self.npm(ws, &["install", "--package-lock-only"]);
        // The lock names the registry as the session reaches it (real locks name
        // registry.npmjs.org).
        let lock = std::fs::read_to_string(ws.join("package-lock.json")).expect("the lock");
        let here = format!("127.0.0.1:{}", self.port);
        let named = lock.replace(&here, &format!("{host}:{}", self.port));
        std::fs::write(ws.join("package-lock.json"), named).expect("the lock");
    }
}
