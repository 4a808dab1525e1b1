//! Reading a policy directory (or the embedded default set) into a bundle.
//!
//! A policy directory holds `*.cedar` files, an `entities.json`, optionally a
//! `*.cedarschema` (otherwise the shipped schema is used), a `links.json` of template links
//! and case files under `cases/*.toml`.

use execkit_engine::PolicyBundle;
use std::fs;
use std::path::{Path, PathBuf};

/// A loaded policy directory: its bundle and case files.
pub struct PolicySource {
    /// Human name (`embedded default` or the directory).
    pub name: String,
    /// The texts.
    pub bundle: PolicyBundle,
    /// `(file name, text)` of case files.
    pub cases: Vec<(String, String)>,
}

/// The embedded set with this name (`default`, `strict`).
pub fn embedded(name: &str) -> Result<PolicySource, String> {
    let set = execkit_policies::by_name(name)
        .ok_or_else(|| format!("no embedded policy set named `{name}` (try default or strict)"))?;
    Ok(PolicySource {
        name: format!("embedded `{}` set", set.name),
        bundle: PolicyBundle::from_files(
            (execkit_policies::SCHEMA_FILE, execkit_policies::SCHEMA),
            set.policies,
            set.entities,
        ),
        cases: set
            .cases
            .iter()
            .map(|(n, t)| (format!("{}/{n}", set.name), t.to_string()))
            .collect(),
    })
}

fn read(p: &Path) -> Result<String, String> {
    fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
}

fn sorted_files(dir: &Path, ext: &str) -> Result<Vec<PathBuf>, String> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| format!("cannot read directory {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == ext))
        .collect();
    v.sort();
    Ok(v)
}

/// Reads a policy directory.
pub fn from_dir(dir: &Path) -> Result<PolicySource, String> {
    let policies: Vec<(String, String)> = sorted_files(dir, "cedar")?
        .iter()
        .map(|p| {
            Ok((
                p.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                read(p)?,
            ))
        })
        .collect::<Result<_, String>>()?;
    if policies.is_empty() {
        return Err(format!("{} contains no .cedar files", dir.display()));
    }
    let schema = match sorted_files(dir, "cedarschema")?.first() {
        Some(p) => (p.display().to_string(), read(p)?),
        None => (
            execkit_policies::SCHEMA_FILE.to_string(),
            execkit_policies::SCHEMA.to_string(),
        ),
    };
    let entities_path = dir.join("entities.json");
    let entities = if entities_path.exists() {
        read(&entities_path)?
    } else {
        "[]".to_string()
    };
    let links_path = dir.join("links.json");
    let links = if links_path.exists() {
        Some(read(&links_path)?)
    } else {
        None
    };
    let cases_dir = dir.join("cases");
    let mut cases = Vec::new();
    if cases_dir.is_dir() {
        for p in sorted_files(&cases_dir, "toml")? {
            cases.push((p.display().to_string(), read(&p)?));
        }
    }
    Ok(PolicySource {
        name: dir.display().to_string(),
        bundle: PolicyBundle {
            schema,
            policies,
            entities,
            links,
        },
        cases,
    })
}

/// `--policies DIR` if given, else the embedded default set.
pub fn resolve(dir: Option<&Path>) -> Result<PolicySource, String> {
    match dir {
        Some(d) => from_dir(d),
        None => embedded("default"),
    }
}
