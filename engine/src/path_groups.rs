//! Path-group membership with the patterns compiled once per home directory.
//!
//! [`Catalog::path_groups_for`] expands `~`, compiles every pattern and walks the group
//! hierarchy for each path it is asked about: a fifth of a decision's time. The patterns
//! only depend on the home directory and the ancestors only on the group, so both are
//! computed once (per home, per loaded policy set) and reused; the answers are the same
//! (a test compares them on every path of the case files).

use crate::catalog::{expand_home, Catalog, PathPattern};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

/// Homes remembered at most (one per identity/target in practice).
const HOMES: usize = 64;

/// The compiled patterns of one home directory.
struct Compiled {
    /// (group index, pattern) for every pattern of every group.
    patterns: Vec<(usize, PathPattern)>,
    /// Each group with its ancestor path groups.
    expanded: Vec<BTreeSet<String>>,
}

/// Compiled path groups, per home.
#[derive(Default)]
pub(crate) struct PathGroups {
    by_home: RwLock<HashMap<String, Arc<Compiled>>>,
}

impl PathGroups {
    fn compiled(&self, catalog: &Catalog, home: &str) -> Arc<Compiled> {
        if let Ok(m) = self.by_home.read() {
            if let Some(c) = m.get(home) {
                return c.clone();
            }
        }
        let mut patterns = Vec::new();
        let mut expanded = Vec::new();
        for (i, (group, raw)) in catalog.path_groups.iter().enumerate() {
            for r in raw {
                patterns.push((i, PathPattern::new(&expand_home(r, home))));
            }
            let mut set = BTreeSet::from([group.clone()]);
            for (t, a) in catalog.ancestors("PathGroup", group) {
                if t == "PathGroup" {
                    set.insert(a);
                }
            }
            expanded.push(set);
        }
        let c = Arc::new(Compiled { patterns, expanded });
        if let Ok(mut m) = self.by_home.write() {
            if m.len() >= HOMES {
                m.clear();
            }
            m.insert(home.to_string(), c.clone());
        }
        c
    }

    /// The groups `path` is in (`must`) and could be in (`may`, which includes `must`);
    /// as [`Catalog::path_groups_for`].
    pub fn groups_for(
        &self,
        catalog: &Catalog,
        home: &str,
        path: Option<&str>,
        under: bool,
    ) -> (BTreeSet<String>, BTreeSet<String>) {
        let c = self.compiled(catalog, home);
        let mut must_idx = BTreeSet::new();
        let mut may_idx = BTreeSet::new();
        let comps: Vec<&str> = path
            .map(|p| p.split('/').filter(|c| !c.is_empty()).collect())
            .unwrap_or_default();
        for (g, pat) in &c.patterns {
            match path {
                Some(_) if pat.contains_components(&comps) => {
                    must_idx.insert(*g);
                }
                Some(_) if under && pat.could_be_below_components(&comps) => {
                    may_idx.insert(*g);
                }
                None => {
                    may_idx.insert(*g);
                }
                _ => {}
            }
        }
        let mut must = BTreeSet::new();
        for g in &must_idx {
            must.extend(c.expanded[*g].iter().cloned());
        }
        let mut may = must.clone();
        for g in &may_idx {
            may.extend(c.expanded[*g].iter().cloned());
        }
        (must, may)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiled_groups_answer_as_the_catalog_does() {
        let set = crate::policy_dir::embedded("default").unwrap();
        let catalog = Catalog::from_json(&set.bundle.entities).unwrap();
        let pg = PathGroups::default();
        let paths = [
            None,
            Some("/"),
            Some("/home/agent"),
            Some("/home/agent/.ssh/id_ed25519"),
            Some("/home/agent/.aws"),
            Some("/etc/shadow"),
            Some("/etc"),
            Some("/work/src/main.rs"),
            Some("/proc/self/fd/9"),
            Some("/dev/fd"),
            Some("/tmp/x"),
            Some("/usr/bin/env"),
        ];
        for home in ["/home/agent", "/root", "/"] {
            for p in paths {
                for under in [false, true] {
                    assert_eq!(
                        pg.groups_for(&catalog, home, p, under),
                        catalog.path_groups_for(home, p, under),
                        "{home} {p:?} {under}"
                    );
                }
            }
        }
    }
}
