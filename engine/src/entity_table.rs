//! Request entities built once per engine.
//!
//! Every command names a program and paths. A program's entity (its program groups as
//! parents, the `builtin` and `named_by_path` attributes) and partition keys depend only on
//! the program id and on the engine's catalog and knowledge, which an engine holds for its
//! life; a path's (its ancestors and the path groups it is always in) only on the path and
//! the home directory the groups are expanded for. The fast path builds each once and
//! clones it after; the reference path builds them every time, and the differential oracle
//! compares the two.
//!
//! Program ids and paths are agent text, and a path's entity grows with the square of its
//! depth (every ancestor is a uid of its own), so a table is bounded in bytes as well as in
//! entries: an entity larger than [`MAX_ENTRY`] is built each time instead of remembered,
//! and a table past [`BUDGET`] starts again.

use crate::bounded_table::{BoundedTable, Bounds};
use cedar_policy::{Entity, EntityUid};
use std::sync::Arc;

/// Entities remembered at most per table.
const LIMIT: usize = 4096;
/// Bytes of uid text (keys and partition keys) a table holds at most.
const BUDGET: usize = 8 << 20;
/// An entity with more uid text than this is not remembered.
const MAX_ENTRY: usize = 32 << 10;

/// An entity and the keys that select the policies about it.
pub(crate) struct BuiltEntity {
    /// `None` if Cedar refused the entity (it then is not added, on both paths).
    pub entity: Option<Entity>,
    pub keys: Arc<[EntityUid]>,
}

impl BuiltEntity {
    /// The uid text it holds, about (its parents are its keys but the first).
    fn bytes(&self) -> usize {
        self.keys
            .iter()
            .map(|k| k.id().unescaped().len())
            .sum::<usize>()
            * 2
    }
}

/// Entities built so far, by a key that fixes everything they depend on.
pub(crate) struct EntityTable(BoundedTable<String, Arc<BuiltEntity>>);

impl Default for EntityTable {
    fn default() -> Self {
        EntityTable(BoundedTable::new(Bounds {
            limit: LIMIT,
            budget: BUDGET,
            max_entry: MAX_ENTRY,
        }))
    }
}

impl EntityTable {
    /// The entity for `id`, built with `build` the first time.
    pub(crate) fn get_or_build(
        &self,
        id: &str,
        build: impl FnOnce() -> BuiltEntity,
    ) -> Arc<BuiltEntity> {
        self.0
            .get_or_build(id, || Arc::new(build()), |built| id.len() + built.bytes())
    }

    /// Entries and bytes held (for tests).
    #[cfg(test)]
    fn held(&self) -> (usize, usize) {
        self.0.held()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn path(id: &str) -> BuiltEntity {
        // As a path's: itself and every ancestor.
        let keys = std::iter::successors(Some(id), |p| p.rsplit_once('/').map(|(a, _)| a))
            .filter(|p| !p.is_empty())
            .map(|p| format!(r#"Path::"{p}""#).parse().unwrap())
            .collect::<Vec<_>>()
            .into();
        BuiltEntity { entity: None, keys }
    }

    #[test]
    fn a_flood_of_deep_paths_is_not_held() {
        // An agent naming ever new deep paths: each is built, none is remembered, and the
        // table holds nothing of them.
        let t = EntityTable::default();
        for i in 0..50 {
            let deep = format!("/w/{i}{}", "/abcdefgh".repeat(200));
            let built = t.get_or_build(&deep, || path(&deep));
            assert_eq!(built.keys.len(), 202);
        }
        assert_eq!(t.held(), (0, 0));
        // Ordinary paths are remembered, and the table stays within its budget however
        // many an agent names.
        for i in 0..(LIMIT + 100) {
            let p = format!("/work/src/file{i}.rs");
            t.get_or_build(&p, || path(&p));
            let (n, bytes) = t.held();
            assert!(n <= LIMIT && bytes <= BUDGET, "{n} entries, {bytes} bytes");
        }
        assert!(t.held().0 > 0);
    }

    #[test]
    fn a_remembered_entity_is_built_once() {
        let t = EntityTable::default();
        let mut builds = 0;
        for _ in 0..3 {
            t.get_or_build("/work/a", || {
                builds += 1;
                path("/work/a")
            });
        }
        assert_eq!(builds, 1);
    }
}
