//! Request shapes already validated against the schema.
//!
//! Validating a request against the schema costs a quarter of a decision's time, and it
//! checks only types: that the principal, action and resource are of types the action
//! accepts and that each context attribute has its declared type. The engine builds every
//! attribute with one fixed constructor, so a request's types are fixed by its shape: the
//! action, the resource type, the names of the context's attributes and which optional
//! record fields are present. The first request of each shape is validated; later ones of
//! a shape that passed are not. A shape that failed is validated (and refused) every time.

use crate::facts::Action;
use std::collections::HashSet;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::RwLock;

/// Shapes remembered at most (a few dozen exist).
const LIMIT: usize = 4096;

/// The seed of the shape hash.
const SHAPE_SEED: u64 = 0x5eed_5a9e;

/// The shape of a request, as a hash.
pub(crate) fn shape_of<'a>(
    action: Action,
    resource_type: &cedar_policy::EntityTypeName,
    keys: impl Iterator<Item = &'a str>,
    optional_fields: u64,
) -> u64 {
    // A fixed seed: a shape is remembered across requests. Its parts are the engine's own
    // names (attribute names, entity types), never agent text.
    let mut h = foldhash::quality::FixedState::with_seed(SHAPE_SEED).build_hasher();
    action.hash(&mut h);
    resource_type.hash(&mut h);
    for k in keys {
        k.hash(&mut h);
    }
    optional_fields.hash(&mut h);
    h.finish()
}

/// The shapes that passed validation.
#[derive(Default)]
pub(crate) struct Shapes(RwLock<HashSet<u64>>);

impl Shapes {
    /// Whether a request of this shape passed validation before.
    pub fn validated(&self, shape: u64) -> bool {
        self.0.read().is_ok_and(|s| s.contains(&shape))
    }

    /// Records that a request of this shape passed validation.
    pub fn remember(&self, shape: u64) {
        if let Ok(mut s) = self.0.write() {
            if s.len() >= LIMIT {
                s.clear();
            }
            s.insert(shape);
        }
    }
}
