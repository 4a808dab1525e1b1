//! Reading a policy directory (or an embedded shipped set) into a bundle.
//!
//! The rest of the engine is pure; this module is the one place that reads files, and only
//! when a policy set is loaded (once, at startup), never while deciding.
//!
//! A policy directory holds `*.cedar` files, an `entities.json`, optionally a
//! `*.cedarschema` (otherwise the shipped schema is used), a `links.json` of template links
//! and case files under `cases/*.toml`.

use crate::error::LoadError;
use crate::load::PolicyBundle;
use std::fs;
use std::path::{Path, PathBuf};

/// A policy set's texts and case files, read from a directory or an embedded set.
#[derive(Debug, Clone)]
pub struct PolicyDir {
    /// Human name (`embedded default` or the directory).
    pub name: String,
    /// The texts.
    pub bundle: PolicyBundle,
    /// `(file name, text)` of case files.
    pub cases: Vec<(String, String)>,
}

/// The embedded set with this name (`default`, `strict`).
///
/// ```
/// let set = execkit_engine::policy_dir::embedded("strict").unwrap();
/// assert_eq!(set.name, "embedded `strict` set");
/// assert!(execkit_engine::policy_dir::embedded("lenient").is_err());
/// ```
pub fn embedded(name: &str) -> Result<PolicyDir, LoadError> {
    let set =
        execkit_policies::by_name(name).ok_or_else(|| LoadError::UnknownSet(name.to_string()))?;
    Ok(PolicyDir {
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

fn io_error(p: &Path, e: std::io::Error) -> LoadError {
    LoadError::Io {
        what: if p.is_dir() { "directory" } else { "file" },
        path: p.display().to_string(),
        source: e,
    }
}

fn read(p: &Path) -> Result<String, LoadError> {
    fs::read_to_string(p).map_err(|e| io_error(p, e))
}

fn sorted_files(dir: &Path, ext: &str) -> Result<Vec<PathBuf>, LoadError> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|source| LoadError::Io {
            what: "directory",
            path: dir.display().to_string(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == ext))
        .collect();
    v.sort();
    Ok(v)
}

/// Reads a policy directory.
pub fn from_dir(dir: &Path) -> Result<PolicyDir, LoadError> {
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
        .collect::<Result<_, LoadError>>()?;
    if policies.is_empty() {
        return Err(LoadError::NoPolicyFiles(dir.display().to_string()));
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
    Ok(PolicyDir {
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

/// `DIR` if given, else the embedded default set.
pub fn resolve(dir: Option<&Path>) -> Result<PolicyDir, LoadError> {
    match dir {
        Some(d) => from_dir(d),
        None => embedded("default"),
    }
}
