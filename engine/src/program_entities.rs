//! Program entities, built once per engine.
//!
//! Every command names a program, and its entity (its program groups as parents, the
//! `builtin` and `named_by_path` attributes) and partition keys depend only on the program
//! id and on the engine's catalog and knowledge, which an engine holds for its life. The
//! fast path builds each program's entity once and clones it after; the reference path
//! builds it every time, and the differential oracle compares the two.

use crate::fast_hash::FastMap;
use cedar_policy::{Entity, EntityUid};
use std::sync::{Arc, RwLock};

/// Programs remembered at most; past it the table starts again (program ids in commands
/// are agent text, so the table must not grow without bound).
const LIMIT: usize = 4096;

/// A program's entity and the keys that select the policies about it.
pub(crate) struct ProgramEntity {
    /// `None` if Cedar refused the entity (it then is not added, on both paths).
    pub entity: Option<Entity>,
    pub keys: Vec<EntityUid>,
}

/// The programs' entities built so far.
#[derive(Default)]
pub(crate) struct ProgramEntities(RwLock<FastMap<String, Arc<ProgramEntity>>>);

impl ProgramEntities {
    /// The entity of program `id`, built with `build` the first time.
    pub(crate) fn get_or_build(
        &self,
        id: &str,
        build: impl FnOnce() -> ProgramEntity,
    ) -> Arc<ProgramEntity> {
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
