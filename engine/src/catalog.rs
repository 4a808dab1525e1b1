//! Group membership computed by the engine: which programs, paths and hosts belong to which
//! `ProgramGroup`, `PathGroup` and `HostGroup`.
//!
//! Groups are declared in the policy set's `entities.json` with a `members` (programs) or
//! `patterns` (paths, hosts) attribute, so security teams edit one data file instead of
//! writing one entity per program. The engine turns those lists into parents of the
//! `Program`, `Path` and `Host` entities it creates for each request.

use crate::error::LoadError;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// One component of a path pattern: `*` matches any run of characters within it (`?` is
/// literal). Compiled once, when the entities are loaded; most components have no `*` and
/// compare as plain strings.
#[derive(Debug, Clone)]
enum Component {
    Literal(String),
    Glob(wildmatch::WildMatchPattern<'*', '\0'>),
}

impl Component {
    fn matches(&self, s: &str) -> bool {
        match self {
            Component::Literal(l) => l == s,
            Component::Glob(g) => g.matches(s),
        }
    }

    fn new(c: &str) -> Component {
        if c.contains('*') {
            Component::Glob(wildmatch::WildMatchPattern::new(c))
        } else {
            Component::Literal(c.to_string())
        }
    }
}

/// A path pattern: absolute, `~` already replaced, each component may use `*`.
#[derive(Debug, Clone)]
pub struct PathPattern {
    comps: Vec<Component>,
}

impl PathPattern {
    pub(crate) fn new(p: &str) -> Self {
        PathPattern {
            comps: p
                .split('/')
                .filter(|c| !c.is_empty())
                .map(Component::new)
                .collect(),
        }
    }

    /// True if `path` is the pattern or lies below something the pattern matches.
    pub fn contains(&self, path: &str) -> bool {
        let pc: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
        self.contains_components(&pc)
    }

    /// True if some path strictly below `dir` could match (without `dir` itself matching).
    pub fn could_be_below(&self, dir: &str) -> bool {
        let dc: Vec<&str> = dir.split('/').filter(|c| !c.is_empty()).collect();
        self.could_be_below_components(&dc)
    }

    /// [`PathPattern::contains`] on a path already split into its components.
    pub(crate) fn contains_components(&self, pc: &[&str]) -> bool {
        pc.len() >= self.comps.len() && self.comps.iter().zip(pc).all(|(p, c)| p.matches(c))
    }

    /// [`PathPattern::could_be_below`] on a path already split into its components.
    pub(crate) fn could_be_below_components(&self, dc: &[&str]) -> bool {
        self.comps.len() > dc.len() && self.comps.iter().zip(dc).all(|(p, c)| p.matches(c))
    }
}

/// Group data read from `entities.json`.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// program name -> groups listing it directly.
    pub program_groups: BTreeMap<String, BTreeSet<String>>,
    /// PathGroup id -> raw patterns (may start with `~`).
    pub path_groups: Vec<(String, Vec<String>)>,
    /// HostGroup id -> patterns (`example.com`, `*.example.com`).
    pub host_groups: Vec<(String, Vec<String>)>,
    /// TargetGroup id -> patterns over session target ids (`ssh:*@build-*.internal:22`).
    pub target_groups: Vec<(String, Vec<String>)>,
    /// Parents declared for each entity in the file (for group nesting and static hosts).
    pub parents: BTreeMap<(String, String), Vec<(String, String)>>,
}

impl Catalog {
    /// Reads group data from the text of an entities JSON file.
    pub fn from_json(text: &str) -> Result<Self, LoadError> {
        let v: Value =
            serde_json::from_str(text).map_err(|e| LoadError::Entities(e.to_string()))?;
        let arr = v
            .as_array()
            .ok_or_else(|| LoadError::Entities("entities file must be a JSON array".into()))?;
        let mut c = Catalog::default();
        for e in arr {
            let ty = e
                .pointer("/uid/type")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let id = e
                .pointer("/uid/id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let strings = |key: &str| -> Vec<String> {
                e.pointer(&format!("/attrs/{key}"))
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default()
            };
            match ty.as_str() {
                "ProgramGroup" => {
                    for m in strings("members") {
                        c.program_groups.entry(m).or_default().insert(id.clone());
                    }
                }
                "PathGroup" => c.path_groups.push((id.clone(), strings("patterns"))),
                "HostGroup" => c.host_groups.push((id.clone(), strings("patterns"))),
                "TargetGroup" => c.target_groups.push((id.clone(), strings("patterns"))),
                _ => {}
            }
            let parents = e
                .get("parents")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|p| {
                            Some((
                                p.get("type")?.as_str()?.to_string(),
                                p.get("id")?.as_str()?.to_string(),
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default();
            c.parents.insert((ty, id), parents);
        }
        Ok(c)
    }

    /// All ancestors of an entity declared in the file (transitively).
    pub fn ancestors(&self, ty: &str, id: &str) -> BTreeSet<(String, String)> {
        let mut out = BTreeSet::new();
        let mut stack = vec![(ty.to_string(), id.to_string())];
        while let Some(k) = stack.pop() {
            if let Some(ps) = self.parents.get(&k) {
                for p in ps {
                    if out.insert(p.clone()) {
                        stack.push(p.clone());
                    }
                }
            }
        }
        out
    }

    /// Groups (with their ancestor groups) a program belongs to.
    pub fn groups_of_program(&self, program: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        if let Some(gs) = self.program_groups.get(program) {
            for g in gs {
                out.insert(g.clone());
                for (t, a) in self.ancestors("ProgramGroup", g) {
                    if t == "ProgramGroup" {
                        out.insert(a);
                    }
                }
            }
        }
        out
    }

    /// Path groups a path is in (`must`) and could be in (`may`, for dynamic paths).
    pub fn path_groups_for(
        &self,
        home: &str,
        path: Option<&str>,
        under: bool,
    ) -> (BTreeSet<String>, BTreeSet<String>) {
        let mut must = BTreeSet::new();
        let mut may = BTreeSet::new();
        for (g, pats) in &self.path_groups {
            for raw in pats {
                let pat = PathPattern::new(&expand_home(raw, home));
                match path {
                    Some(p) if pat.contains(p) => {
                        must.insert(g.clone());
                    }
                    Some(p) if under && pat.could_be_below(p) => {
                        may.insert(g.clone());
                    }
                    None => {
                        may.insert(g.clone());
                    }
                    _ => {}
                }
            }
        }
        let expand = |set: &BTreeSet<String>| {
            let mut out = set.clone();
            for g in set {
                for (t, a) in self.ancestors("PathGroup", g) {
                    if t == "PathGroup" {
                        out.insert(a);
                    }
                }
            }
            out
        };
        let must = expand(&must);
        let mut may = expand(&may);
        may.extend(must.iter().cloned());
        (must, may)
    }

    /// Host groups a host name is in, by pattern (`*.example.com` also matches deeper names).
    pub fn host_groups_for(&self, host: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for (g, pats) in &self.host_groups {
            for p in pats {
                let hit = match p.strip_prefix("*.") {
                    Some(suffix) => {
                        host.len() > suffix.len()
                            && host.ends_with(suffix)
                            && host[..host.len() - suffix.len()].ends_with('.')
                    }
                    None => p.eq_ignore_ascii_case(host),
                };
                if hit {
                    out.insert(g.clone());
                }
            }
        }
        for (t, a) in self.ancestors("Host", host) {
            if t == "HostGroup" {
                out.insert(a);
            }
        }
        let direct: Vec<String> = out.iter().cloned().collect();
        for g in direct {
            for (t, a) in self.ancestors("HostGroup", &g) {
                if t == "HostGroup" {
                    out.insert(a);
                }
            }
        }
        out
    }
}

impl Catalog {
    /// Target groups a session target id is in, by pattern (`*` matches anything,
    /// case-insensitively), with their ancestor groups.
    pub fn target_groups_for(&self, target: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for (g, pats) in &self.target_groups {
            if pats.iter().any(|p| {
                wildmatch::WildMatchPattern::<'*', '\0'>::new_case_insensitive(p).matches(target)
            }) {
                out.insert(g.clone());
            }
        }
        let direct: Vec<String> = out.iter().cloned().collect();
        for g in direct {
            for (t, a) in self.ancestors("TargetGroup", &g) {
                if t == "TargetGroup" {
                    out.insert(a);
                }
            }
        }
        out
    }
}

/// A `~/`-relative pattern made absolute. `~` alone, with no home below `/`, matches no
/// path (as the sandbox closes no such home).
pub(crate) fn expand_home(p: &str, home: &str) -> String {
    if p == "~" {
        if home.trim_end_matches('/').is_empty() {
            return NO_PATH.to_string();
        }
        home.to_string()
    } else if let Some(rest) = p.strip_prefix("~/") {
        format!("{}/{rest}", home.trim_end_matches('/'))
    } else {
        p.to_string()
    }
}

/// A pattern no canonical path equals or lies beneath.
const NO_PATH: &str = "/\u{0}no home";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_root_home_is_no_pattern() {
        let p = PathPattern::new(&expand_home("~", "/"));
        assert!(!p.contains("/etc/passwd") && !p.contains("/"));
        assert!(PathPattern::new(&expand_home("~", "/home/u")).contains("/home/u/.ssh"));
    }

    #[test]
    fn patterns_match_prefixes_and_globs() {
        let p = PathPattern::new("/root/.ssh/id_*");
        assert!(p.contains("/root/.ssh/id_rsa"));
        assert!(p.contains("/root/.ssh/id_rsa/x"));
        assert!(!p.contains("/root/.ssh/known_hosts"));
        assert!(!p.contains("/root/.ssh"));
        assert!(p.could_be_below("/root/.ssh"));
        assert!(p.could_be_below("/root"));
        assert!(p.could_be_below("/"));
        assert!(!p.could_be_below("/work"));
        let e = PathPattern::new("/proc/*/environ");
        assert!(e.contains("/proc/self/environ"));
        assert!(!e.contains("/proc/self/status"));
    }

    #[test]
    fn host_patterns() {
        let c = Catalog::from_json(
            r#"[{"uid":{"type":"HostGroup","id":"egress"},"attrs":{"patterns":["github.com","*.githubusercontent.com"]},"parents":[]}]"#,
        )
        .unwrap();
        assert!(c.host_groups_for("github.com").contains("egress"));
        assert!(c
            .host_groups_for("raw.githubusercontent.com")
            .contains("egress"));
        assert!(!c
            .host_groups_for("evilgithubusercontent.com")
            .contains("egress"));
        assert!(!c.host_groups_for("github.com.evil.io").contains("egress"));
    }
}
