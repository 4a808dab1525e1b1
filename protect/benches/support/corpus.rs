//! Inputs shared by the protection benchmarks (each bench uses a subset).
#![allow(dead_code)]

use execkit_protect::{KnownSecrets, RedactionCounts, Redactor};

/// Redacts `text` streamed in 64 KiB chunks (cut at char boundaries), as the runner feeds
/// it.
pub fn redact_streamed(redactor: &Redactor, text: &str) -> (String, RedactionCounts) {
    let mut s = redactor.stream();
    let mut out = String::with_capacity(text.len() + 1024);
    let mut rest = text;
    while !rest.is_empty() {
        let mut cut = rest.len().min(64 * 1024);
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        s.push(&rest[..cut], &mut out);
        rest = &rest[cut..];
    }
    let counts = s.finish(&mut out);
    (out, counts)
}

/// A real build log captured on this machine (cargo, npm, pip, apt, gcc, git, dpkg).
pub const BUILD_LOG: &str = include_str!("../../tests/fixtures/benign-build.log");

/// A tiny deterministic PRNG (xorshift), so inputs are the same on every run.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn string(&mut self, alphabet: &[u8], n: usize) -> String {
        (0..n)
            .map(|_| alphabet[(self.next() % alphabet.len() as u64) as usize] as char)
            .collect()
    }
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// 100 known secret values, as a session with a rich environment would have.
pub fn known_values() -> KnownSecrets {
    let mut rng = Rng::new(42);
    let mut k = KnownSecrets::new();
    for _ in 0..100 {
        k.add(&rng.string(ALNUM, 24));
    }
    k
}

/// The build log repeated to about `bytes`, with a few secrets sprinkled in.
pub fn build_log(bytes: usize) -> String {
    let mut rng = Rng::new(7);
    let mut out = String::with_capacity(bytes + BUILD_LOG.len());
    while out.len() < bytes {
        for (i, line) in BUILD_LOG.lines().enumerate() {
            out.push_str(line);
            out.push('\n');
            if i % 1000 == 500 {
                out.push_str(&format!(
                    "export GITHUB_TOKEN=ghp_{}\n",
                    rng.string(ALNUM, 36)
                ));
            }
        }
    }
    out
}

/// Text where most lines carry a secret of some family.
pub fn secret_dense(bytes: usize) -> String {
    let mut rng = Rng::new(9);
    let mut out = String::with_capacity(bytes + 256);
    let mut i = 0u64;
    while out.len() < bytes {
        let line = match i % 8 {
            0 => format!(
                "AWS_ACCESS_KEY_ID=AKIA{}\n",
                rng.string(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)
            ),
            1 => format!("password={}\n", rng.string(ALNUM, 14)),
            2 => format!("Authorization: Bearer {}\n", rng.string(ALNUM, 40)),
            3 => format!("token: ghp_{}\n", rng.string(ALNUM, 36)),
            4 => format!("postgres://app:{}@db:5432/app\n", rng.string(ALNUM, 16)),
            5 => format!("\"api_key\": \"{}\",\n", rng.string(ALNUM, 32)),
            6 => format!(
                "xoxb-{}-{}-{}\n",
                rng.string(b"0123456789", 12),
                rng.string(b"0123456789", 12),
                rng.string(ALNUM, 24)
            ),
            _ => format!("plain text line number {i} with nothing in it\n"),
        };
        out.push_str(&line);
        i += 1;
    }
    out
}

/// Long lines (48 KB) each holding many quoted and bare assignments, as a minified config
/// or a one-line JSON document would: they exercise the gate's line-shape check, which must
/// not read the whole line for every value judged on it.
pub fn long_secret_lines(bytes: usize) -> String {
    let mut rng = Rng::new(13);
    let mut out = String::with_capacity(bytes + (64 << 10));
    while out.len() < bytes {
        let start = out.len();
        while out.len() - start < 48 << 10 {
            out.push_str(&format!(
                "\"password\": \"{}\", token=ghp_{} ",
                rng.string(ALNUM, 14),
                rng.string(ALNUM, 36)
            ));
        }
        out.push('\n');
    }
    out
}

/// Random base64, in 76-column lines.
pub fn random_base64(bytes: usize) -> String {
    let mut rng = Rng::new(11);
    let mut out = String::with_capacity(bytes + 80);
    while out.len() < bytes {
        out.push_str(&rng.string(B64, 76));
        out.push('\n');
    }
    out
}

/// Command output as a terminal program writes it: colours, progress bars with `\r`, a
/// few secrets; about `bytes` long.
pub fn terminal_output(bytes: usize) -> Vec<u8> {
    let log = build_log(bytes);
    let mut out = Vec::with_capacity(bytes + bytes / 8);
    for (i, line) in log.lines().enumerate() {
        match i % 10 {
            0 => out.extend_from_slice(format!("\x1b[1;32m{line}\x1b[0m\n").as_bytes()),
            3 => out.extend_from_slice(format!("[{:>3}%]\r\x1b[K{line}\n", i % 100).as_bytes()),
            _ => {
                out.extend_from_slice(line.as_bytes());
                out.push(b'\n');
            }
        }
    }
    out
}

/// The workspace's own Rust sources, concatenated and repeated to about `bytes`: code as
/// `cat` and `git show` print it.
pub fn code_listing(bytes: usize) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for krate in ["grammar", "engine", "protect", "runner", "mcp", "audit"] {
        collect_files(&root.join(krate).join("src"), "rs", &mut files);
    }
    files.sort();
    repeat_files(&files, bytes)
}

/// Configuration files as an agent reads them: the workspace's TOML, YAML, JSON and Cedar
/// files and the config-file fixture, repeated to about `bytes`.
pub fn config_files(bytes: usize) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for ext in ["toml", "yml", "yaml", "json", "cedar"] {
        for dir in ["policies", "engine", "mcp", "runner", ".github", "python"] {
            collect_files(&root.join(dir), ext, &mut files);
        }
    }
    files.push(root.join("protect/tests/fixtures/secrets-in-config.txt"));
    files.sort();
    repeat_files(&files, bytes)
}

/// `git log -p` of the repository this bench runs in (the last 2,000 commits), repeated to
/// about `bytes`.
pub fn git_log_patch(bytes: usize) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = std::process::Command::new("git")
        .args(["log", "-p", "-n", "2000", "--no-color"])
        .current_dir(&root)
        .output()
        .expect("git log -p");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!text.is_empty(), "git log -p printed nothing");
    repeat(&text, bytes)
}

/// `env` as printed in a developer's or CI job's shell: ~60 variables per dump, paths,
/// sockets and names, with a token or a database URL in about one dump in four.
pub fn env_dump(bytes: usize) -> String {
    let mut rng = Rng::new(11);
    let mut out = String::with_capacity(bytes + 4096);
    let mut n = 0u64;
    while out.len() < bytes {
        let user = ["dev", "runner", "app", "ci"][(n % 4) as usize];
        for line in [
            format!("HOME=/home/{user}"),
            format!("USER={user}"),
            format!("LOGNAME={user}"),
            "SHELL=/bin/bash".to_string(),
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/home/dev/.cargo/bin".to_string(),
            "LANG=C.UTF-8".to_string(),
            "TERM=xterm-256color".to_string(),
            format!("PWD=/home/{user}/src/project-{}", n % 13),
            format!("OLDPWD=/home/{user}"),
            format!("SSH_AUTH_SOCK=/tmp/ssh-{}/agent.{}", rng.string(ALNUM, 10), n % 9000 + 1000),
            "GIT_ASKPASS=/usr/lib/git-core/git-gui--askpass".to_string(),
            format!("XDG_RUNTIME_DIR=/run/user/{}", 1000 + n % 5),
            "XDG_SESSION_TYPE=tty".to_string(),
            format!("HOSTNAME=build-{}", rng.string(b"0123456789abcdef", 12)),
            "KUBECONFIG=/home/dev/.kube/config".to_string(),
            "AWS_REGION=eu-west-1".to_string(),
            "AWS_PROFILE=staging".to_string(),
            "SECRET_NAME=app-db-credentials".to_string(),
            "TOKEN_URL=https://auth.example.com/oauth/token".to_string(),
            "CARGO_HOME=/home/dev/.cargo".to_string(),
            "RUSTUP_HOME=/home/dev/.rustup".to_string(),
            "NODE_ENV=production".to_string(),
            "PYTHONUNBUFFERED=1".to_string(),
            "VIRTUAL_ENV=/home/dev/.venv".to_string(),
            format!("CI_JOB_ID={}", rng.next() % 10_000_000),
            format!("CI_COMMIT_SHA={}", rng.string(b"0123456789abcdef", 40)),
            "CI_PROJECT_DIR=/builds/group/project".to_string(),
            "DOCKER_HOST=unix:///var/run/docker.sock".to_string(),
            "EDITOR=vim".to_string(),
            "LESS=-FRX".to_string(),
            "HISTSIZE=10000".to_string(),
            "_=/usr/bin/env".to_string(),
        ] {
            out.push_str(&line);
            out.push('\n');
        }
        match n % 8 {
            0 => out.push_str(&format!("GITHUB_TOKEN=ghp_{}\n", rng.string(ALNUM, 36))),
            4 => out.push_str(&format!(
                "DATABASE_URL=postgres://app:{}@db.internal:5432/app\n",
                rng.string(ALNUM, 20)
            )),
            _ => {}
        }
        n += 1;
    }
    out
}

/// Kubernetes manifests as `kubectl get -o yaml` prints them: Deployments, Services and
/// ConfigMaps, and a Secret in one document of twenty.
pub fn k8s_manifests(bytes: usize) -> String {
    let mut rng = Rng::new(13);
    let mut out = String::with_capacity(bytes + 4096);
    let mut n = 0u64;
    while out.len() < bytes {
        let name = format!("svc-{}", rng.string(b"abcdefghijklmnopqrstuvwxyz", 6));
        let doc = match n % 20 {
            19 => format!(
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}-credentials\n  namespace: prod\ntype: Opaque\ndata:\n  password: {}\n  username: YXBw\n---\n",
                rng.string(B64, 24)
            ),
            n if n % 3 == 0 => format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}-config\n  namespace: prod\ndata:\n  LOG_LEVEL: info\n  FEATURE_FLAGS: search,export\n  DB_HOST: db.prod.svc.cluster.local\n  SECRET_REF: {name}-credentials\n---\n"
            ),
            n if n % 3 == 1 => format!(
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: prod\n  labels:\n    app.kubernetes.io/name: {name}\nspec:\n  type: ClusterIP\n  ports:\n  - name: http\n    port: 80\n    targetPort: 8080\n  selector:\n    app.kubernetes.io/name: {name}\n---\n"
            ),
            _ => format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: prod\n  annotations:\n    deployment.kubernetes.io/revision: \"{}\"\nspec:\n  replicas: 3\n  template:\n    metadata:\n      annotations:\n        checksum/config: {}\n    spec:\n      containers:\n      - name: app\n        image: registry.example.com/{name}:1.{}.0\n        env:\n        - name: DB_PASSWORD\n          valueFrom:\n            secretKeyRef:\n              name: {name}-credentials\n              key: password\n        - name: LOG_LEVEL\n          value: info\n        resources:\n          limits:\n            memory: 512Mi\n---\n",
                n % 40,
                rng.string(b"0123456789abcdef", 64),
                n % 30
            ),
        };
        out.push_str(&doc);
        n += 1;
    }
    out
}

fn collect_files(dir: &std::path::Path, ext: &str, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            if !p.ends_with("target") && !p.ends_with("node_modules") {
                collect_files(&p, ext, out);
            }
        } else if p.extension().is_some_and(|x| x == ext) {
            out.push(p);
        }
    }
}

fn repeat_files(files: &[std::path::PathBuf], bytes: usize) -> String {
    let text: String = files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(!text.is_empty(), "no files read");
    repeat(&text, bytes)
}

fn repeat(text: &str, bytes: usize) -> String {
    let mut out = String::with_capacity(bytes + text.len());
    while out.len() < bytes {
        out.push_str(text);
    }
    out
}
