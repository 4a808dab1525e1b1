//! A table of things built once, bounded in entries and in bytes.
//!
//! The engine remembers what it builds from agent text (program and path entities,
//! structure records): an agent can name ever new paths and programs, so every such table
//! holds at most `limit` entries and `budget` bytes of the text they hold, starts again
//! when full, and does not remember an entry costing more than `max_entry` (it is built
//! each time instead).

use crate::fast_hash::FastMap;
use std::borrow::Borrow;
use std::hash::Hash;
use std::sync::RwLock;

/// The bounds of a table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    /// Entries at most.
    pub limit: usize,
    /// Bytes (as the caller counts them) at most.
    pub budget: usize,
    /// An entry costing more is not remembered.
    pub max_entry: usize,
}

struct Table<K, V> {
    map: FastMap<K, V>,
    bytes: usize,
}

/// Values built so far, by a key that fixes everything they depend on.
pub(crate) struct BoundedTable<K, V> {
    table: RwLock<Table<K, V>>,
    bounds: Bounds,
}

impl<K: Hash + Eq, V: Clone> BoundedTable<K, V> {
    pub(crate) fn new(bounds: Bounds) -> Self {
        BoundedTable {
            table: RwLock::new(Table {
                map: FastMap::default(),
                bytes: 0,
            }),
            bounds,
        }
    }

    /// The value for `key`, built with `build` the first time; `cost` says what the key and
    /// the value hold, in bytes.
    pub(crate) fn get_or_build<Q>(
        &self,
        key: &Q,
        build: impl FnOnce() -> V,
        cost: impl FnOnce(&V) -> usize,
    ) -> V
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if let Ok(t) = self.table.read() {
            if let Some(v) = t.map.get(key) {
                return v.clone();
            }
        }
        let built = build();
        let cost = cost(&built);
        if cost > self.bounds.max_entry {
            return built;
        }
        if let Ok(mut t) = self.table.write() {
            if t.map.len() >= self.bounds.limit || t.bytes + cost > self.bounds.budget {
                t.map.clear();
                t.bytes = 0;
            }
            if t.map.insert(key.to_owned(), built.clone()).is_none() {
                t.bytes += cost;
            }
        }
        built
    }

    /// Entries and bytes held (for tests).
    #[cfg(test)]
    pub(crate) fn held(&self) -> (usize, usize) {
        self.table
            .read()
            .map(|t| (t.map.len(), t.bytes))
            .unwrap_or_default()
    }
}
