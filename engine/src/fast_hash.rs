//! Hash tables for the engine's own lookups.
//!
//! Every decision looks up and inserts entity uids, policy partitions and paths; with the
//! standard library's SipHash that hashing was about a tenth of a decision's instructions
//! (issue 18). foldhash is several times cheaper on short keys and still seeded per
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
