//! Real code nobody here wrote, as a precision corpus: an agent reads source code all day
//! and must see it unaltered. Two corpora present on every machine that runs these tests:
//! the Python standard library of the `python3` on PATH (without its test suites, which hold
//! deliberate test secrets), the cargo registry sources of this workspace's locked
//! dependencies (without their `tests/`, `benches/` and `examples/`), and the JavaScript of
//! the npm packages the test script installs (the MCP Inspector CLI and its dependencies).

use execkit_protect::Redactor;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Directories left out of both corpora.
const SKIP_DIRS: &[&str] = &[
    "test",
    "tests",
    "idle_test",
    "site-packages",
    "__pycache__",
    "benches",
    "examples",
    "fuzz",
    "target",
    ".git",
];

/// What a corpus produced.
pub struct Outcome {
    pub name: &'static str,
    pub files: usize,
    pub bytes: u64,
    pub per_rule: BTreeMap<String, u64>,
    /// `file:line: redacted line` for every line with a redaction.
    pub hits: Vec<String>,
}

impl Outcome {
    pub fn total(&self) -> u64 {
        self.per_rule.values().sum()
    }
    pub fn per_mb(&self) -> f64 {
        self.total() as f64 / (self.bytes as f64 / 1e6)
    }
}

fn walk(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let Ok(t) = e.file_type() else { continue };
        if t.is_dir() {
            let name = e.file_name();
            if !SKIP_DIRS.iter().any(|s| name == *s) {
                walk(&p, ext, out);
            }
        } else if t.is_file() && p.extension().is_some_and(|x| x == ext) {
            out.push(p);
        }
    }
}

/// The Python standard library's `.py` files (sorted), or an error naming what is missing.
pub fn python_stdlib() -> Result<Vec<PathBuf>, String> {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['stdlib'])",
        ])
        .output()
        .map_err(|e| format!("python3: {e}"))?;
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let mut files = Vec::new();
    walk(&dir, "py", &mut files);
    files.sort();
    if files.len() < 100 {
        return Err(format!(
            "no Python standard library under {}",
            dir.display()
        ));
    }
    Ok(files)
}

/// The `.rs` files of every registry crate in the workspace's `Cargo.lock` (sorted).
pub fn cargo_registry() -> Result<Vec<PathBuf>, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).map_err(|e| e.to_string())?;
    let lock: toml::Table = toml::from_str(&lock).map_err(|e| e.to_string())?;
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .ok_or("no CARGO_HOME or HOME")?;
    let src = home.join("registry/src");
    let indexes: Vec<PathBuf> = std::fs::read_dir(&src)
        .map_err(|e| format!("{}: {e}", src.display()))?
        .flatten()
        .map(|e| e.path())
        .collect();
    let mut files = Vec::new();
    for p in lock["package"].as_array().into_iter().flatten() {
        let registry = p
            .get("source")
            .and_then(|s| s.as_str())
            .is_some_and(|s| s.starts_with("registry+"));
        if !registry {
            continue;
        }
        let (Some(name), Some(version)) = (p["name"].as_str(), p["version"].as_str()) else {
            continue;
        };
        if let Some(dir) = indexes
            .iter()
            .map(|i| i.join(format!("{name}-{version}")))
            .find(|d| d.is_dir())
        {
            walk(&dir, "rs", &mut files);
        }
    }
    files.sort();
    if files.len() < 100 {
        return Err(format!("no cargo registry sources under {}", src.display()));
    }
    Ok(files)
}

/// The `.js` files (not minified) of the npm packages the test script installs for the
/// MCP Inspector CLI (`$EXECKIT_INSPECTOR_DIR`, default `~/.cache/execkit-inspector`).
pub fn npm_packages() -> Result<Vec<PathBuf>, String> {
    let dir = std::env::var_os("EXECKIT_INSPECTOR_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/execkit-inspector"))
        })
        .ok_or("no HOME")?
        .join("node_modules");
    let mut files = Vec::new();
    walk(&dir, "js", &mut files);
    files.retain(|f| !f.to_string_lossy().ends_with(".min.js"));
    files.sort();
    if files.len() < 100 {
        return Err(format!(
            "no npm packages under {} (scripts/test.sh installs them)",
            dir.display()
        ));
    }
    Ok(files)
}

/// Redacts every file and counts what was redacted.
pub fn run(name: &'static str, files: &[PathBuf], r: &Redactor) -> Outcome {
    let mut o = Outcome {
        name,
        files: files.len(),
        bytes: 0,
        per_rule: BTreeMap::new(),
        hits: Vec::new(),
    };
    for f in files {
        let Ok(bytes) = std::fs::read(f) else {
            continue;
        };
        o.bytes += bytes.len() as u64;
        let text = String::from_utf8_lossy(&bytes);
        let red = r.redact_str(&text);
        if red.counts.is_empty() {
            continue;
        }
        for (rule, n) in &red.counts {
            *o.per_rule.entry(rule.clone()).or_default() += n;
        }
        for (i, line) in red.text.lines().enumerate() {
            if line.contains("[REDACTED:") {
                let shown: String = line.trim().chars().take(160).collect();
                o.hits.push(format!("{}:{}: {shown}", f.display(), i + 1));
            }
        }
    }
    o
}
