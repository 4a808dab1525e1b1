//! Request entities built once per engine.
//!
//! Every command names a program and paths. A program's entity (its program groups as
//! parents, the `builtin` and `named_by_path` attributes) and partition keys depend only on
//! the program id and on the engine's catalog and knowledge, which an engine holds for its
//! life; a path's (its ancestors and the path groups it is always in) only on the path and
//! the home directory the groups are expanded for. The fast path builds each once and
//! clones it after; the reference path builds them every time, and the differential oracle
//! compares the two.

use crate::fast_hash::FastMap;
use cedar_policy::{Entity, EntityUid};
use std::sync::{Arc, RwLock};

/// Entities remembered at most per table; past it the table starts again (program ids and
/// paths are agent text, so a table must not grow without bound).
const LIMIT: usize = 4096;

/// An entity and the keys that select the policies about it.
pub(crate) struct BuiltEntity {
    /// `None` if Cedar refused the entity (it then is not added, on both paths).
    pub entity: Option<Entity>,
    pub keys: Vec<EntityUid>,
}

/// Entities built so far, by a key that fixes everything they depend on.
#[derive(Default)]
pub(crate) struct EntityTable(RwLock<FastMap<String, Arc<BuiltEntity>>>);

impl EntityTable {
    /// The entity for `id`, built with `build` the first time.
    pub(crate) fn get_or_build(
        &self,
        id: &str,
        build: impl FnOnce() -> BuiltEntity,
    ) -> Arc<BuiltEntity> {
        if let Ok(map) = self.0.read() {
            if let Some(p) = map.get(id) {
                return p.clone();
            }
        }
        let built = Arc::new(build());
        if let Ok(mut map) = self.0.write() {
            if map.len() >= LIMIT {
                map.clear();
            }
            map.insert(id.to_string(), built.clone());
        }
        built
    }
}
