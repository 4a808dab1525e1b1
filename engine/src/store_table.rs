//! Request stores built once per environment and set of request entities.
//!
//! Every decision adds its command's own entities (programs, cwd, paths, hosts) to its
//! environment's store: a copy of the whole map (hundreds of entities, each key hashed
//! again with Cedar's SipHash when the copy has to grow) plus the new entities' closure —
//! about a seventh of a two-command decision. That store depends only on the
//! environment's parts and on the entities added, so the fast path keeps the last stores
//! by both and shares them; the reference path builds one per decision, and the
//! differential oracle compares the two.
//!
//! An added entity is named by its uid *and* by which remembered entity it is (the
//! `entity_table` entry, held by the key so its address stays its own): one uid can stand
//! for two different entities — `cat '/etc/*'` names the file `*` and `cat /etc/*` some
//! file below `/etc`, both `Path::"/etc/*"`, with different groups — and a store built for
//! one must not answer for the other. Entities built for the request alone (hosts) are
//! functions of their uid.
//!
//! Bounded: at most [`LIMIT`] stores (each a copy of the environment's store), and a
//! command adding more than [`MAX_ADDED`] entities is not remembered.

use crate::entity_table::BuiltEntity;
use crate::env_parts::EnvParts;
use crate::fast_hash::FastMap;
use cedar_policy::{Entities, EntityUid};
use std::sync::{Arc, RwLock};

/// Stores remembered at most.
const LIMIT: usize = 128;
/// Commands adding more entities than this are built each time.
const MAX_ADDED: usize = 32;

/// One added entity: its uid, and the address of the remembered entity it is (0 for one
/// built for the request from its uid alone).
pub(crate) type Member = (EntityUid, usize);

/// Which environment (its parts' address) and which entities; the entry holds both.
type Key = (usize, Vec<Member>);

/// A store, and the environment parts and remembered entities it was built from (held so
/// the key's addresses stay theirs).
type Held = (Arc<EnvParts>, Vec<Arc<BuiltEntity>>, Arc<Entities>);

#[derive(Default)]
pub(crate) struct StoreTable(RwLock<FastMap<Key, Held>>);

impl StoreTable {
    /// `base`'s store with the entities `members` names added (`held`: the remembered
    /// ones among them), built with `build` when not remembered.
    pub(crate) fn get_or_build(
        &self,
        base: &Arc<EnvParts>,
        members: Vec<Member>,
        held: Vec<Arc<BuiltEntity>>,
        build: impl FnOnce() -> Result<Entities, String>,
    ) -> Result<Arc<Entities>, String> {
        if members.len() > MAX_ADDED {
            return build().map(Arc::new);
        }
        let key: Key = (Arc::as_ptr(base) as usize, members);
        if let Ok(t) = self.0.read() {
            if let Some((_, _, store)) = t.get(&key) {
                return Ok(store.clone());
            }
        }
        let store = Arc::new(build()?);
        if let Ok(mut t) = self.0.write() {
            if t.len() >= LIMIT {
                t.clear();
            }
            t.insert(key, (base.clone(), held, store.clone()));
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

    fn members(extra: &[Entity]) -> Vec<Member> {
        extra.iter().map(|e| (e.uid(), 0)).collect()
    }

    #[test]
    fn one_uid_standing_for_two_remembered_entities_gets_two_stores() {
        // `Path::"/etc/*"` as the file named `*` and as some file below `/etc`: the same
        // uid, two entities (other parents), two stores.
        let t = StoreTable::default();
        let a = parts();
        let uid: cedar_policy::EntityUid = r#"Path::"/etc/*""#.parse().unwrap();
        let entity = |parent: &str| {
            Arc::new(BuiltEntity {
                entity: Some(Entity::new_no_attrs(
                    uid.clone(),
                    [format!(r#"PathGroup::"{parent}""#).parse().unwrap()].into(),
                )),
                keys: Vec::new().into(),
            })
        };
        let (file, below) = (entity("exact"), entity("below"));
        let get = |b: &Arc<BuiltEntity>| {
            let member = (uid.clone(), Arc::as_ptr(b) as usize);
            let e = b.entity.clone().unwrap();
            t.get_or_build(&a, vec![member], vec![b.clone()], || {
                Entities::from_entities([e], None).map_err(|e| e.to_string())
            })
            .unwrap()
        };
        let parents = |s: &Entities| {
            let e = s.get(&uid).unwrap();
            let core: &cedar_policy_core::ast::Entity = e.as_ref();
            core.ancestors().map(|p| p.to_string()).collect::<Vec<_>>()
        };
        assert_eq!(parents(&get(&file)), [r#"PathGroup::"exact""#]);
        assert_eq!(parents(&get(&below)), [r#"PathGroup::"below""#]);
        assert_eq!(parents(&get(&file)), [r#"PathGroup::"exact""#]);
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
            t.get_or_build(base, members(&extra), Vec::new(), || {
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
            t.get_or_build(&a, vec![(p.uid(), 0)], Vec::new(), || {
                Entities::from_entities([p], None).map_err(|e| e.to_string())
            })
            .unwrap();
            assert!(t.held() <= LIMIT);
        }
        let before = t.held();
        let err = t.get_or_build(&a, vec![(program("x").uid(), 0)], Vec::new(), || {
            Err("refused".into())
        });
        assert!(err.is_err());
        assert_eq!(t.held(), before);
        // Too many entities: built, not held.
        let many: Vec<Entity> = (0..=MAX_ADDED).map(|i| program(&format!("m{i}"))).collect();
        t.get_or_build(&a, members(&many), Vec::new(), || {
            Entities::from_entities(many, None).map_err(|e| e.to_string())
        })
        .unwrap();
        assert_eq!(t.held(), before);
    }
}
