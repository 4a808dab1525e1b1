//! Structure records built once per engine.
//!
//! Every request's context carries its command's `structure`: a 17-field record (pipeline
//! position, neighbours, wrappers, flags) that depends on nothing but the grammar's
//! [`Structure`]. Building it — a sorted map of fields and five sets — is about a tenth of
//! building a request's parts, and the same few structures recur on almost
//! every command (a command alone, the first or last of a two-program pipeline...). The
//! fast path builds each distinct structure's record once and clones it (reference
//! counted) after; the reference path builds it every time, and the differential oracle
//! compares the two.
//!
//! Structures hold agent text (program names, wrappers, `sudo -u` users), so the table is
//! bounded in entries and bytes like the entity tables: a structure with more text than
//! [`MAX_ENTRY`] is built each time, and a full table starts again.

use crate::bounded_table::{BoundedTable, Bounds};
use cedar_policy_core::ast::Value;
use execkit_grammar::Structure;

/// Records remembered at most.
const LIMIT: usize = 1024;
/// Bytes of text the remembered structures hold at most.
const BUDGET: usize = 1 << 20;
/// A structure with more text than this is not remembered.
const MAX_ENTRY: usize = 4 << 10;

/// Structure records built so far.
pub(crate) struct StructureTable(BoundedTable<Structure, Value>);

impl Default for StructureTable {
    fn default() -> Self {
        StructureTable(BoundedTable::new(Bounds {
            limit: LIMIT,
            budget: BUDGET,
            max_entry: MAX_ENTRY,
        }))
    }
}

/// The agent text a structure holds.
fn text_bytes(st: &Structure) -> usize {
    let sets = [&st.upstream, &st.downstream, &st.input_sources];
    sets.iter()
        .flat_map(|s| s.iter())
        .chain(st.wrappers.iter())
        .chain(st.run_as.iter())
        .map(String::len)
        .sum()
}

impl StructureTable {
    /// The record for `st`, built with `build` the first time.
    pub(crate) fn get_or_build(&self, st: &Structure, build: impl FnOnce() -> Value) -> Value {
        self.0.get_or_build(st, build, |_| text_bytes(st))
    }

    /// Entries and bytes held (for tests).
    #[cfg(test)]
    fn held(&self) -> (usize, usize) {
        self.0.held()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: i64) -> Value {
        Value::from(n)
    }

    #[test]
    fn a_structure_is_built_once_and_a_different_one_again() {
        let t = StructureTable::default();
        let mut builds = 0;
        let alone = Structure {
            pipeline_length: 1,
            ..Structure::default()
        };
        let first = Structure {
            pipeline_length: 2,
            downstream: ["tee".to_string()].into(),
            ..Structure::default()
        };
        for _ in 0..3 {
            for (i, st) in [&alone, &first].into_iter().enumerate() {
                let v = t.get_or_build(st, || {
                    builds += 1;
                    record(i as i64)
                });
                assert_eq!(v, record(i as i64));
            }
        }
        assert_eq!(builds, 2);
    }

    #[test]
    fn a_flood_of_distinct_structures_stays_bounded() {
        // An agent naming ever new wrappers: the table never holds more than its bounds, and
        // a structure with a huge text is built but not held.
        let t = StructureTable::default();
        let huge = Structure {
            wrappers: vec!["w".repeat(MAX_ENTRY + 1)],
            ..Structure::default()
        };
        t.get_or_build(&huge, || record(0));
        assert_eq!(t.held(), (0, 0));
        for i in 0..(LIMIT + 100) {
            let st = Structure {
                wrappers: vec![format!("wrapper-{i}").repeat(64)],
                ..Structure::default()
            };
            t.get_or_build(&st, || record(1));
            let (n, bytes) = t.held();
            assert!(n <= LIMIT && bytes <= BUDGET, "{n} entries, {bytes} bytes");
        }
        assert!(t.held().0 > 0);
    }
}
