//! Hash tables for the engine's own lookups.
//!
//! Every decision looks up and inserts entity uids, policy partitions and paths; with the
//! standard library's SipHash that hashing would be about a tenth of a decision's
//! instructions. foldhash is several times cheaper on short keys and still seeded per
//! process, so an agent that picks paths and names cannot precompute colliding keys; each
//! table holds what one command or one bundle brings, not an unbounded stream. Tables handed
//! to Cedar's API keep Cedar's own types.

/// A `HashMap` with foldhash's seeded hasher.
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
/// A `HashSet` with foldhash's seeded hasher.
pub(crate) type FastSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;
/// A set that keeps its items in insertion order (facts and paths in source order), with
/// foldhash's seeded hasher: a duplicate is found by its hash, not by comparing it with
/// every item before it.
pub(crate) type OrderedSet<K> = indexmap::IndexSet<K, foldhash::fast::RandomState>;

/// Items kept as a plain list up to this many; past it, hashed.
const FEW: usize = 32;

/// An insertion-ordered set that compares a new item with each of the few it holds, and
/// hashes once it holds more than [`FEW`]: most commands have a handful of facts, for which
/// comparing is cheaper than hashing every fact's strings (hashing them all costs a
/// typical decision 2% more), while a script of thousands of facts is not compared with
/// the square of their number.
pub(crate) enum SmallOrderedSet<T> {
    Few(Vec<T>),
    Many(OrderedSet<T>),
}

impl<T> Default for SmallOrderedSet<T> {
    fn default() -> Self {
        SmallOrderedSet::Few(Vec::new())
    }
}

impl<T: std::hash::Hash + Eq> SmallOrderedSet<T> {
    /// Whether an item equal to `q` is held.
    pub(crate) fn contains<Q>(&self, q: &Q) -> bool
    where
        T: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        match self {
            SmallOrderedSet::Few(v) => v.iter().any(|x| x.borrow() == q),
            SmallOrderedSet::Many(s) => s.contains(q),
        }
    }

    /// Adds `item` unless an equal one is held.
    pub(crate) fn insert(&mut self, item: T) {
        match self {
            SmallOrderedSet::Few(v) => {
                if v.contains(&item) {
                    return;
                }
                v.push(item);
                if v.len() > FEW {
                    *self = SmallOrderedSet::Many(std::mem::take(v).into_iter().collect());
                }
            }
            SmallOrderedSet::Many(s) => {
                s.insert(item);
            }
        }
    }

    /// The items in the order they were first added.
    pub(crate) fn into_vec(self) -> Vec<T> {
        match self {
            SmallOrderedSet::Few(v) => v,
            SmallOrderedSet::Many(s) => s.into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the number of items, the set holds the first of each distinct item in
        /// the order added, as deduplicating a list by hand does.
        #[test]
        fn keeps_first_occurrences_in_order(items in proptest::collection::vec(0u8..60, 0..200)) {
            let mut set = SmallOrderedSet::default();
            let mut by_hand: Vec<u8> = Vec::new();
            for &i in &items {
                prop_assert_eq!(set.contains(&i), by_hand.contains(&i));
                set.insert(i);
                if !by_hand.contains(&i) {
                    by_hand.push(i);
                }
            }
            prop_assert_eq!(set.into_vec(), by_hand);
        }
    }
}
