//! Sorting the redactor's keyword hits and spans as single 128-bit numbers.
//!
//! Every block of lines sorts its keyword hits by position and its redaction spans by
//! (start, longest first, label priority). Sorting them as tuples and structs (24 and 48
//! bytes, compared field by field through closures) would be about a tenth of secret-dense
//! redaction. Packed into one `u128` whose numeric order is the tuple's order, the sort
//! compares two machine words and moves 16 bytes (about 5% fewer instructions per byte of
//! secret-dense redaction than the tuple sort). Values too large for their field
//! (never in practice: a block is at most a few megabytes) keep the tuple sort.
//!
//! The keyword hits arrive as a few long sorted runs (one per lane of the keyword scan,
//! then the exact-case keywords): the standard library's stable sort finds such runs and
//! merges them, where the unstable sort would sort them anew (about 2% more instructions
//! per byte of secret-dense redaction). Equal hit keys are equal hits, so the order is the
//! same. The spans come in short runs (each keyword's rules push theirs in turn): there the
//! stable sort falls back to sorting and costs more than the unstable one, which they use.

/// Bits of a position (start or end) in a packed key: 1 TiB.
const POS_BITS: u32 = 40;
const POS_LIMIT: usize = 1 << POS_BITS;

/// Sorts `(start, end, keyword)` hits into the order `sort_unstable` gives the tuples.
pub(crate) fn sort_hits(hits: &mut [(usize, usize, usize)]) {
    let fits = hits
        .iter()
        .all(|&(s, e, k)| s < POS_LIMIT && e < POS_LIMIT && u32::try_from(k).is_ok());
    if !fits {
        hits.sort_unstable();
        return;
    }
    let mut keys: Vec<u128> = hits
        .iter()
        .map(|&(s, e, k)| ((s as u128) << 88) | ((e as u128) << 48) | k as u128)
        .collect();
    keys.sort();
    for (slot, key) in hits.iter_mut().zip(keys) {
        let s = (key >> 88) as usize;
        let e = ((key >> 48) as usize) & (POS_LIMIT - 1);
        let k = (key & u128::from(u32::MAX)) as usize;
        *slot = (s, e, k);
    }
}

/// The order of spans given as `(start, end, priority)`: by start, then the longest
/// first, then the lowest priority, equal ones in their given order (what a stable sort
/// by those three gives). `None` when a value does not fit its field: sort the spans
/// themselves then.
pub(crate) fn span_order(spans: &[(usize, usize, usize)]) -> Option<Vec<usize>> {
    let index_ok = u32::try_from(spans.len()).is_ok();
    let fits = spans
        .iter()
        .all(|&(s, e, p)| s < POS_LIMIT && e < POS_LIMIT && u16::try_from(p).is_ok());
    if !index_ok || !fits {
        return None;
    }
    let mut keys: Vec<u128> = spans
        .iter()
        .enumerate()
        .map(|(i, &(s, e, p))| {
            let longest_first = (POS_LIMIT - 1 - e) as u128;
            ((s as u128) << 88) | (longest_first << 48) | ((p as u128) << 32) | i as u128
        })
        .collect();
    // The index makes every key distinct, so an unstable sort gives the stable order.
    keys.sort_unstable();
    Some(
        keys.into_iter()
            .map(|k| (k & u128::from(u32::MAX)) as usize)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn hits_sort_as_tuples(mut hits in proptest::collection::vec((0usize..300, 0usize..300, 0usize..40), 0..80)) {
            let mut want = hits.clone();
            want.sort_unstable();
            sort_hits(&mut hits);
            prop_assert_eq!(hits, want);
        }

        #[test]
        fn spans_order_as_a_stable_sort(spans in proptest::collection::vec((0usize..60, 0usize..60, 0usize..6), 0..80)) {
            let mut want: Vec<usize> = (0..spans.len()).collect();
            want.sort_by(|&a, &b| {
                let (x, y) = (spans[a], spans[b]);
                x.0.cmp(&y.0).then(y.1.cmp(&x.1)).then(x.2.cmp(&y.2))
            });
            prop_assert_eq!(span_order(&spans), Some(want));
        }
    }

    #[test]
    fn values_past_their_fields_keep_the_tuple_sort() {
        let big = POS_LIMIT + 5;
        let mut hits = vec![(big, big + 3, 1), (2, 9, 7), (2, 4, 1 << 40)];
        sort_hits(&mut hits);
        assert_eq!(hits, [(2, 4, 1 << 40), (2, 9, 7), (big, big + 3, 1)]);
        assert_eq!(span_order(&[(big, big, 0)]), None);
        assert_eq!(span_order(&[(1, 2, 70_000)]), None);
        assert_eq!(span_order(&[(1, 2, 3), (1, 5, 3)]), Some(vec![1, 0]));
    }
}
