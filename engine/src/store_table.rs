//! Request stores built once per environment and set of request entities.
//!
//! Every decision adds its command's own entities (programs, cwd, paths, hosts) to its
//! environment's store: a copy of the whole map (hundreds of entities, each key hashed
//! again with Cedar's SipHash when the copy has to grow) plus the new entities' closure —
//! about a seventh of a two-command decision (issue 18). That store depends only on the
//! environment's parts and on which entities are added: each entity is built from its uid
//! alone for a given engine and home directory (`entity_table`), so the same uids in the
//! same order give the same store. The fast path keeps the last stores by that key and
//! shares them; the reference path builds one per decision, and the differential oracle
//! compares the two.
//!
//! Bounded: at most [`LIMIT`] stores (each a copy of the environment's store), and a
//! command adding more than [`MAX_ADDED`] entities is not remembered.

use crate::env_parts::EnvParts;
use crate::fast_hash::FastMap;
use cedar_policy::{Entities, EntityUid};
use std::sync::{Arc, RwLock};

/// Stores remembered at most.
const LIMIT: usize = 128;
/// Commands adding more entities than this are built each time.
const MAX_ADDED: usize = 32;

/// Which environment (its parts' address, kept alive by the entry) and which entities.
type Key = (usize, Vec<EntityUid>);

/// A store and the environment parts it was built on (held so the key's address stays
/// theirs).
type Held = (Arc<EnvParts>, Arc<Entities>);

#[derive(Default)]
pub(crate) struct StoreTable(RwLock<FastMap<Key, Held>>);

impl StoreTable {
    /// `base`'s store with the entities `uids` names added, built with `build` when not
    /// remembered.
    pub(crate) fn get_or_build(
        &self,
        base: &Arc<EnvParts>,
        uids: Vec<EntityUid>,
        build: impl FnOnce() -> Result<Entities, String>,
    ) -> Result<Arc<Entities>, String> {
        if uids.len() > MAX_ADDED {
            return build().map(Arc::new);
        }
        let key: Key = (Arc::as_ptr(base) as usize, uids);
        if let Ok(t) = self.0.read() {
            if let Some((_, store)) = t.get(&key) {
                return Ok(store.clone());
            }
        }
        let store = Arc::new(build()?);
        if let Ok(mut t) = self.0.write() {
            if t.len() >= LIMIT {
                t.clear();
            }
            t.insert(key, (base.clone(), store.clone()));
        }
        Ok(store)
    }

    /// Stores held (for tests).
    #[cfg(test)]
    fn held(&self) -> usize {
        self.0.read().map(|t| t.len()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use cedar_policy::Entity;

    fn parts() -> Arc<EnvParts> {
        Arc::new(EnvParts {
            store: Entities::empty(),
            dangling: Default::default(),
            seen: Default::default(),
            keys: Default::default(),
            identity: cedar_policy_core::ast::Value::from(true),
            target: cedar_policy_core::ast::Value::from(true),
            principal: r#"Agent::"a""#.parse().unwrap(),
            record_shape: 0,
        })
    }

    fn program(id: &str) -> Entity {
        Entity::new_no_attrs(
            format!(r#"Program::"{id}""#).parse().unwrap(),
            Default::default(),
        )
    }

    #[test]
    fn the_same_entities_on_the_same_environment_share_one_store() {
        let t = StoreTable::default();
        let (a, b) = (parts(), parts());
        let mut builds = 0;
        let mut get = |base: &Arc<EnvParts>, ids: &[&str]| {
            let extra: Vec<Entity> = ids.iter().map(|i| program(i)).collect();
            t.get_or_build(base, extra.iter().map(Entity::uid).collect(), || {
                builds += 1;
                Entities::from_entities(extra, None).map_err(|e| e.to_string())
            })
            .unwrap()
        };
        let first = get(&a, &["ls", "cat"]);
        let again = get(&a, &["ls", "cat"]);
        assert!(Arc::ptr_eq(&first, &again));
        // Another environment, other entities, or another order: built again.
        get(&b, &["ls", "cat"]);
        get(&a, &["ls"]);
        get(&a, &["cat", "ls"]);
        assert_eq!(builds, 4);
        assert_eq!(first.iter().count(), 2);
    }

    #[test]
    fn a_flood_of_entity_sets_stays_bounded_and_errors_are_not_kept() {
        let t = StoreTable::default();
        let a = parts();
        for i in 0..(LIMIT + 10) {
            let id = format!("p{i}");
            let p = program(&id);
            t.get_or_build(&a, vec![p.uid()], || {
                Entities::from_entities([p], None).map_err(|e| e.to_string())
            })
            .unwrap();
            assert!(t.held() <= LIMIT);
        }
        let before = t.held();
        let err = t.get_or_build(&a, vec![program("x").uid()], || Err("refused".into()));
        assert!(err.is_err());
        assert_eq!(t.held(), before);
        // Too many entities: built, not held.
        let many: Vec<Entity> = (0..=MAX_ADDED).map(|i| program(&format!("m{i}"))).collect();
        t.get_or_build(&a, many.iter().map(Entity::uid).collect(), || {
            Entities::from_entities(many, None).map_err(|e| e.to_string())
        })
        .unwrap();
        assert_eq!(t.held(), before);
    }
}
