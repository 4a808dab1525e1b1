//! Adding a request's own entities (its program, cwd, paths, hosts) to the loaded store.
//!
//! The reference path lets Cedar recompute the transitive closure (`ComputeNow`), which
//! walks every entity of the store on every decision (~14% of a decision). The fast path
//! computes the closure of the new entities alone, from their parents' ancestors in the
//! store (closed at load) and among themselves, and tells Cedar it is done
//! (`AssumeAlreadyComputed`).
//!
//! Why that is the same closure: adding leaf entities changes no loaded entity's
//! ancestors unless a loaded entity names a new one as its parent. Such "dangling" parents
//! (named but not defined in `entities.json`) are found once at load
//! ([`dangling_parents`]); a request that would define one takes the reference path. The
//! decision oracle's differential test compares both paths on every case file entry.

use crate::fast_hash::{FastMap, FastSet};
use cedar_policy::{Entities, Entity};
use cedar_policy_core::ast::{Entity as CoreEntity, EntityUID};
use cedar_policy_core::entities::{
    Dereference, Entities as CoreEntities, NoEntitiesSchema, TCComputation,
};
use cedar_policy_core::extensions::Extensions;
use std::sync::Arc;

/// Parents named by loaded entities that the store does not define.
pub(crate) fn dangling_parents(store: &Entities) -> FastSet<EntityUID> {
    let core: &CoreEntities = store.as_ref();
    core.iter()
        .flat_map(|e| e.parents())
        .filter(|p| !matches!(core.entity(p), Dereference::Data(_)))
        .cloned()
        .collect()
}

/// The store with `extra` added, closure recomputed by Cedar.
pub(crate) fn add_reference(store: &Entities, extra: Vec<Entity>) -> Result<Entities, String> {
    store
        .clone()
        .add_entities(extra, None)
        .map_err(|e| e.to_string())
}

/// The store with `extra` added, closure computed for the new entities only (see the
/// module docs for when that is exact; otherwise this is [`add_reference`]).
pub(crate) fn add_fast(
    store: &Entities,
    extra: Vec<Entity>,
    dangling: &FastSet<EntityUID>,
) -> Result<Entities, String> {
    let mut new: Vec<CoreEntity> = extra
        .iter()
        .map(|e| AsRef::<CoreEntity>::as_ref(e).clone())
        .collect();
    if new.iter().any(|e| dangling.contains(e.uid())) {
        return add_reference(store, extra);
    }
    let core: &CoreEntities = store.as_ref();
    let index: FastMap<EntityUID, usize> = new
        .iter()
        .enumerate()
        .map(|(i, e)| (e.uid().clone(), i))
        .collect();
    // A fixed point over the few new entities (a new one may be another's parent).
    loop {
        let mut changed = false;
        for i in 0..new.len() {
            let mut reach: Vec<EntityUID> = Vec::new();
            for a in new[i].ancestors() {
                match core.entity(a) {
                    Dereference::Data(loaded) => reach.extend(loaded.ancestors().cloned()),
                    _ => {
                        if let Some(j) = index.get(a) {
                            reach.extend(new[*j].ancestors().cloned());
                        }
                    }
                }
            }
            for a in reach {
                if !new[i].is_descendant_of(&a) {
                    new[i].add_indirect_ancestor(a);
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    core.clone()
        .add_entities(
            new.into_iter().map(Arc::new),
            None::<&NoEntitiesSchema>,
            TCComputation::AssumeAlreadyComputed,
            Extensions::all_available(),
        )
        .map(Entities::from)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn uid(t: &str, id: &str) -> cedar_policy::EntityUid {
        format!("{t}::\"{id}\"").parse().unwrap()
    }

    fn store() -> Entities {
        // G1 in G2; `Y` names `Program::"new"` as its parent without defining it.
        Entities::from_json_str(
            r#"[
              {"uid": {"type": "G", "id": "1"}, "attrs": {}, "parents": [{"type": "G", "id": "2"}]},
              {"uid": {"type": "G", "id": "2"}, "attrs": {}, "parents": []},
              {"uid": {"type": "Y", "id": "y"}, "attrs": {}, "parents": [{"type": "Program", "id": "new"}]}
            ]"#,
            None,
        )
        .unwrap()
    }

    fn leaf(t: &str, id: &str, parents: &[(&str, &str)]) -> Entity {
        Entity::new_no_attrs(
            uid(t, id),
            parents.iter().map(|(t, id)| uid(t, id)).collect(),
        )
    }

    fn ancestors(e: &Entities, of: &cedar_policy::EntityUid) -> Vec<String> {
        let core: &CoreEntities = e.as_ref();
        let core_uid: &EntityUID = of.as_ref();
        let mut v: Vec<String> = match core.entity(core_uid) {
            Dereference::Data(x) => x.ancestors().map(|a| a.to_string()).collect(),
            _ => Vec::new(),
        };
        v.sort();
        v
    }

    #[test]
    fn the_fast_closure_equals_cedars_and_dangling_parents_take_the_reference_path() {
        let s = store();
        let dangling = dangling_parents(&s);
        assert_eq!(dangling.len(), 1);
        // New leaves, one the parent of another: closure through the store and among them.
        let extra = vec![
            leaf("Path", "/a", &[("G", "1")]),
            leaf("Path", "/a/b", &[("Path", "/a")]),
        ];
        let fast = add_fast(&s, extra.clone(), &dangling).unwrap();
        let reference = add_reference(&s, extra).unwrap();
        for u in [uid("Path", "/a"), uid("Path", "/a/b")] {
            assert_eq!(ancestors(&fast, &u), ancestors(&reference, &u), "{u}");
        }
        assert_eq!(
            ancestors(&fast, &uid("Path", "/a/b")),
            [r#"G::"1""#, r#"G::"2""#, r#"Path::"/a""#]
        );
        // Defining the dangling parent changes `Y`'s ancestors: only Cedar's closure is right.
        let extra = vec![leaf("Program", "new", &[("G", "1")])];
        let fast = add_fast(&s, extra.clone(), &dangling).unwrap();
        let reference = add_reference(&s, extra).unwrap();
        let y = uid("Y", "y");
        assert_eq!(ancestors(&fast, &y), ancestors(&reference, &y));
        assert!(ancestors(&fast, &y).contains(&r#"G::"2""#.to_string()));
    }
}
