//! The keyword prefilter's automaton, laid out as one flat table.
//!
//! Every byte of output passes the keyword scan, so its inner loop sets the redactor's
//! speed on ordinary text. aho-corasick builds the right automaton (a DFA over the keywords,
//! ASCII case folded, every keyword reported even where keywords overlap), but its general
//! overlapping search costs ~19 instructions per byte. This module asks that DFA for its
//! transitions once, at rule-set load, and re-lays them as a table indexed by
//! `state + byte class`, with the match states numbered last: the scan is then one table
//! load and one comparison per byte (about 12 instructions per byte on the build-log
//! corpus under callgrind, lanes and reporting included). The automaton is aho-corasick's;
//! only the layout is ours, and a test compares every reported match with aho-corasick's
//! own overlapping search. The table is padded to a power of two so that the scan masks its
//! index instead of checking it (see `Table`), which saves about 3 instructions per byte
//! on the build log.

use aho_corasick::automaton::Automaton;
use aho_corasick::dfa::DFA;
use aho_corasick::{Anchored, MatchKind};

/// Parts of a long text scanned side by side (see [`KeywordDfa::overlapping`]).
const LANES: usize = 4;
/// Texts whose parts would be shorter than this are scanned in one pass.
const MIN_PART: usize = 256;

/// Why the table could not be built.
#[derive(Debug, thiserror::Error)]
pub enum KeywordDfaError {
    /// aho-corasick refused the keywords.
    #[error("keyword automaton: {0}")]
    Build(#[from] aho_corasick::BuildError),
    /// aho-corasick refused an unanchored start (it cannot, for a DFA built as here).
    #[error("keyword automaton: {0}")]
    Start(#[from] aho_corasick::MatchError),
    /// Two bytes given one column behave differently (a defect in the layout).
    #[error("keyword automaton: byte {0:#04x} does not fit its column")]
    Classes(u8),
    /// More states than a `u32` table index holds.
    #[error("keyword automaton too large ({0} states)")]
    TooLarge(usize),
}

/// A keyword ending at some byte: the keyword's index and its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ending {
    keyword: u32,
    len: u32,
}

/// Keywords (ASCII case-insensitive) found by one pass over the text, overlaps included.
#[derive(Debug, Clone)]
pub(crate) struct KeywordDfa {
    /// Byte → column: bytes that every state treats alike share one.
    classes: [u8; 256],
    /// Next state, premultiplied by `stride`, at `state + class`.
    table: Table,
    /// Columns per state.
    stride: usize,
    start: u32,
    /// States from here on (premultiplied) end at least one keyword.
    first_match: u32,
    /// The keywords each match state ends, by `(state - first_match) / stride`.
    endings: Vec<Vec<Ending>>,
    /// The longest keyword's length.
    longest: usize,
}

impl KeywordDfa {
    /// The automaton for these keywords, matched ASCII case-insensitively.
    pub(crate) fn new<K: AsRef<[u8]>>(keywords: &[K]) -> Result<KeywordDfa, KeywordDfaError> {
        let dfa = DFA::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(keywords)?;
        let start = dfa.start_state(Anchored::No)?;
        // Every state reachable from the unanchored start, in discovery order.
        // (A flag a state id, not a hash set: states × 256 lookups are most of the build.)
        let mut order = vec![start];
        let mut seen = vec![false; start.as_usize() + 1];
        seen[start.as_usize()] = true;
        let mut i = 0;
        while i < order.len() {
            let sid = order[i];
            for b in 0..=255u8 {
                let next = dfa.next_state(Anchored::No, sid, b);
                let n = next.as_usize();
                if n >= seen.len() {
                    seen.resize(n + 1, false);
                }
                if !seen[n] {
                    seen[n] = true;
                    order.push(next);
                }
            }
            i += 1;
        }
        // Non-match states first, match states last.
        let (plain, matching): (Vec<_>, Vec<_>) =
            order.into_iter().partition(|&s| !dfa.is_match(s));
        let states: Vec<_> = plain.iter().chain(&matching).copied().collect();
        let max_sid = states.iter().map(|s| s.as_usize()).max().unwrap_or(0);
        let mut index = vec![0usize; max_sid + 1];
        for (i, s) in states.iter().enumerate() {
            index[s.as_usize()] = i;
        }
        // Byte classes: a byte in no keyword behaves as every other such byte (it leads each
        // state where a keyword-less byte leads it), and case is folded; every other byte
        // gets a column of its own.
        let mut classes = [0u8; 256];
        let mut stride = 1;
        let used = |b: u8| {
            keywords
                .iter()
                .any(|k| k.as_ref().iter().any(|c| c.eq_ignore_ascii_case(&b)))
        };
        for b in (0..=255u8).filter(|b| !b.is_ascii_uppercase() && used(*b)) {
            classes[b as usize] = stride as u8;
            stride += 1;
        }
        for b in b'A'..=b'Z' {
            classes[b as usize] = classes[b.to_ascii_lowercase() as usize];
        }
        if states.len() * stride >= u32::MAX as usize {
            return Err(KeywordDfaError::TooLarge(states.len()));
        }
        let mut table = vec![0u32; states.len() * stride];
        let mut filled = vec![false; table.len()];
        for (i, &s) in states.iter().enumerate() {
            for b in 0..=255u8 {
                let next = (index[dfa.next_state(Anchored::No, s, b).as_usize()] * stride) as u32;
                let slot = i * stride + classes[b as usize] as usize;
                // Bytes sharing a column must lead every state to the same place; were that
                // ever not so, keywords would go unseen: refuse instead.
                if filled[slot] && table[slot] != next {
                    return Err(KeywordDfaError::Classes(b));
                }
                table[slot] = next;
                filled[slot] = true;
            }
        }
        let endings = matching
            .iter()
            .map(|&s| {
                (0..dfa.match_len(s))
                    .map(|k| {
                        let p = dfa.match_pattern(s, k);
                        Ending {
                            keyword: p.as_u32(),
                            len: dfa.pattern_len(p) as u32,
                        }
                    })
                    .collect()
            })
            .collect();
        Ok(KeywordDfa {
            classes,
            table: Table::of(table),
            stride,
            start: 0,
            first_match: (plain.len() * stride) as u32,
            endings,
            longest: keywords.iter().map(|k| k.as_ref().len()).max().unwrap_or(0),
        })
    }

    /// Appends every keyword occurrence in `hay` as `(start, end, keyword)`, in order of
    /// end.
    ///
    /// Each byte's step depends on the previous one's table load, so one pass is bound by
    /// load latency. Long texts are cut in [`LANES`] parts scanned side by side, each part
    /// but the first entered from the start state `longest - 1` bytes early (every keyword
    /// ending in a part starts within that reach), so the loads overlap.
    pub(crate) fn overlapping(&self, hay: &[u8], out: &mut Vec<(usize, usize, usize)>) {
        match &self.table {
            Table::P12(t) => self.scan(&**t, hay, out),
            Table::P16(t) => self.scan(&**t, hay, out),
            Table::P17(t) => self.scan(&**t, hay, out),
            Table::P18(t) => self.scan(&**t, hay, out),
            Table::Any(t) => self.scan(&**t, hay, out),
        }
    }

    /// [`KeywordDfa::overlapping`] over one table layout.
    #[inline(always)]
    fn scan<T: Transitions + ?Sized>(
        &self,
        table: &T,
        hay: &[u8],
        out: &mut Vec<(usize, usize, usize)>,
    ) {
        let reach = self.longest.saturating_sub(1);
        let part = hay.len() / LANES;
        if part < MIN_PART.max(reach) {
            let mut state = self.start;
            let mut at = 0;
            while let Some(end) = self.next_match(table, hay, &mut at, &mut state) {
                self.report(state, end, out);
            }
            return;
        }
        let (classes, first_match) = (&self.classes, self.first_match);
        let step = |s: u32, b: u8| table.next(s as usize + classes[b as usize] as usize);
        let mut states = [self.start; LANES];
        for (k, state) in states.iter_mut().enumerate().skip(1) {
            *state = hay[k * part - reach..k * part]
                .iter()
                .fold(self.start, |s, &b| step(s, b));
        }
        // Match states seen, per lane: (end, state).
        let mut seen: [Vec<(usize, u32)>; LANES] = Default::default();
        let [l0, l1, l2, l3] = [0, 1, 2, 3].map(|k| &hay[k * part..(k + 1) * part]);
        // The four states stay in registers: the loop body is the four steps and one test;
        // recording a match (rare) is a call out of it.
        let [mut s0, mut s1, mut s2, mut s3] = states;
        let lanes = l0.iter().zip(l1).zip(l2).zip(l3);
        for (i, (((&b0, &b1), &b2), &b3)) in lanes.enumerate() {
            s0 = step(s0, b0);
            s1 = step(s1, b1);
            s2 = step(s2, b2);
            s3 = step(s3, b3);
            if (s0 >= first_match) | (s1 >= first_match) | (s2 >= first_match) | (s3 >= first_match)
            {
                record_matches(&mut seen, [s0, s1, s2, s3], part, i, first_match);
            }
        }
        // The last lane goes on to the end.
        let mut state = s3;
        let mut at = LANES * part;
        while let Some(end) = self.next_match(table, hay, &mut at, &mut state) {
            seen[LANES - 1].push((end, state));
        }
        for (end, state) in seen.iter().flatten() {
            self.report(*state, *end, out);
        }
    }

    /// Appends the keywords match state `state` ends at `end`.
    fn report(&self, state: u32, end: usize, out: &mut Vec<(usize, usize, usize)>) {
        let index = (state - self.first_match) as usize / self.stride;
        for e in &self.endings[index] {
            out.push((end - e.len as usize, end, e.keyword as usize));
        }
    }

    /// Runs the automaton from `*state` over `hay[*at..]` to the next match state; returns
    /// the end of the keywords it ends. Kept apart from the reporting so the loop keeps its
    /// few values in registers.
    #[inline]
    fn next_match<T: Transitions + ?Sized>(
        &self,
        table: &T,
        hay: &[u8],
        at: &mut usize,
        state: &mut u32,
    ) -> Option<usize> {
        let (classes, first_match) = (&self.classes, self.first_match);
        let mut s = *state;
        let rest = hay.get(*at..)?;
        for (i, &b) in rest.iter().enumerate() {
            s = table.next(s as usize + classes[b as usize] as usize);
            if s >= first_match {
                *state = s;
                *at += i + 1;
                return Some(*at);
            }
        }
        *state = s;
        *at = hay.len();
        None
    }
}

/// The transition table, padded to a power of two where it fits one of the sizes below:
/// an index masked to the table's size needs no bounds check, which in the scan's loop is
/// a compare, a branch and a register holding the length for each of the four lanes.
/// Indexes are always below the unpadded length; the padding is never read.
#[derive(Debug, Clone)]
enum Table {
    P12(Box<[u32; 1 << 12]>),
    P16(Box<[u32; 1 << 16]>),
    P17(Box<[u32; 1 << 17]>),
    P18(Box<[u32; 1 << 18]>),
    /// Larger automata: indexes checked.
    Any(Box<[u32]>),
}

impl Table {
    fn of(table: Vec<u32>) -> Table {
        fn padded<const N: usize>(t: &[u32]) -> Option<Box<[u32; N]>> {
            if t.len() > N {
                return None;
            }
            let mut v = t.to_vec();
            v.resize(N, 0);
            v.into_boxed_slice().try_into().ok()
        }
        if let Some(t) = padded(&table) {
            Table::P12(t)
        } else if let Some(t) = padded(&table) {
            Table::P16(t)
        } else if let Some(t) = padded(&table) {
            Table::P17(t)
        } else if let Some(t) = padded(&table) {
            Table::P18(t)
        } else {
            Table::Any(table.into_boxed_slice())
        }
    }
}

/// A transition table looked up by the scan.
trait Transitions {
    fn next(&self, at: usize) -> u32;
}

impl<const N: usize> Transitions for [u32; N] {
    #[inline(always)]
    fn next(&self, at: usize) -> u32 {
        // `N` is a power of two (see `Table`): the mask keeps the index in range.
        self[at & (N - 1)]
    }
}

impl Transitions for [u32] {
    #[inline(always)]
    fn next(&self, at: usize) -> u32 {
        self[at]
    }
}

/// Notes, for each lane whose state is a match state, where it is (`i` into the lane).
#[cold]
#[inline(never)]
fn record_matches(
    seen: &mut [Vec<(usize, u32)>; LANES],
    states: [u32; LANES],
    part: usize,
    i: usize,
    first_match: u32,
) {
    for (k, &s) in states.iter().enumerate() {
        if s >= first_match {
            seen[k].push((k * part + i + 1, s));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aho_corasick::{AhoCorasickBuilder, AhoCorasickKind};
    use proptest::prelude::*;

    fn reference(keywords: &[&str], hay: &[u8]) -> Vec<(usize, usize, usize)> {
        let ac = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .kind(Some(AhoCorasickKind::DFA))
            .build(keywords)
            .unwrap_or_else(|e| panic!("{e}"));
        ac.find_overlapping_iter(hay)
            .map(|m| (m.start(), m.end(), m.pattern().as_usize()))
            .collect()
    }

    /// The flat table's matches; checked to come in order of end, and then sorted as the
    /// reference is compared.
    fn flat(keywords: &[&str], hay: &[u8]) -> Vec<(usize, usize, usize)> {
        let dfa = KeywordDfa::new(keywords).unwrap_or_else(|e| panic!("{e}"));
        let mut out = Vec::new();
        dfa.overlapping(hay, &mut out);
        assert!(
            out.windows(2).all(|w| w[0].1 <= w[1].1),
            "not in order of end"
        );
        out.sort_unstable();
        out
    }

    fn sorted(mut v: Vec<(usize, usize, usize)>) -> Vec<(usize, usize, usize)> {
        v.sort_unstable();
        v
    }

    #[test]
    fn overlapping_keywords_are_all_reported() {
        let kws = ["pass", "password", "sword", "key", "api_key", "AKIA"];
        let hay = b"DB_PASSWORD=x api_KEY=akiaX passpass";
        let got = flat(&kws, hay);
        assert_eq!(got, sorted(reference(&kws, hay)));
        // `password` also holds `pass` and `sword`; `api_key` holds `key`.
        assert_eq!(got.iter().filter(|m| m.2 == 0).count(), 3);
        assert!(got.contains(&(3, 11, 1)) && got.contains(&(6, 11, 2)));
        assert!(got.contains(&(14, 21, 4)) && got.contains(&(18, 21, 3)));
        assert!(got.contains(&(22, 26, 5)));
    }

    #[test]
    fn no_keywords_find_nothing() {
        // A rule file may have no case-insensitive keywords, or no multi-line rules.
        let none: [&str; 0] = [];
        let long = "x".repeat(5000);
        assert!(flat(&none, long.as_bytes()).is_empty());
        assert!(flat(&none, b"").is_empty());
    }

    /// The shipped rules' case-insensitive keywords (lower case), and the build log with a
    /// few of them added.
    fn shipped_keywords_and_text() -> (Vec<String>, String) {
        let text = include_str!("../../tests/fixtures/benign-build.log");
        let specs = crate::RuleSet::builtin().specs();
        let kws: Vec<String> = specs
            .iter()
            .flat_map(|s| s.keywords.iter().map(|k| k.to_ascii_lowercase()))
            .collect();
        let hay = format!("{text}password=x AKIA ghp_ xoxb- -----BEGIN RSA PRIVATE KEY");
        (kws, hay)
    }

    #[test]
    fn the_shipped_keywords_scan_as_aho_corasick_does() {
        let (kws, hay) = shipped_keywords_and_text();
        let refs: Vec<&str> = kws.iter().map(String::as_str).collect();
        assert_eq!(
            flat(&refs, hay.as_bytes()),
            sorted(reference(&refs, hay.as_bytes()))
        );
        assert!(
            hay.len() > 4 * LANES * MIN_PART,
            "long enough to scan in lanes"
        );
    }

    /// Every layout of the table scans alike: the shipped keywords' table, re-laid as each
    /// larger padded size and as the checked slice, gives the same matches. The shipped
    /// table fits 2^18 entries (the scan touches only its unpadded part, ~540 KB).
    #[test]
    fn every_table_layout_scans_the_same() {
        let (kws, hay) = shipped_keywords_and_text();
        let mut dfa = KeywordDfa::new(&kws).unwrap_or_else(|e| panic!("{e}"));
        let raw: Vec<u32> = match &dfa.table {
            Table::P17(t) => t.to_vec(),
            Table::P18(t) => t.to_vec(),
            _ => panic!("the shipped table fits 2^18"),
        };
        let scan = |dfa: &KeywordDfa| {
            let mut out = Vec::new();
            dfa.overlapping(hay.as_bytes(), &mut out);
            out
        };
        let expected = scan(&dfa);
        assert!(expected.len() > 100);
        let mut p18 = raw.clone();
        p18.resize(1 << 18, 0);
        let layouts = [
            Table::P18(
                p18.into_boxed_slice()
                    .try_into()
                    .unwrap_or_else(|_| panic!()),
            ),
            Table::Any(raw.into_boxed_slice()),
        ];
        for layout in layouts {
            dfa.table = layout;
            assert_eq!(scan(&dfa), expected);
        }
    }

    proptest! {
        #[test]
        fn any_text_scans_as_aho_corasick_does(
            kws in proptest::collection::vec("[a-cA-C_:]{1,4}", 1..12),
            hay in proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'B'), Just(b'c'), Just(b'_'), Just(b':'), any::<u8>()], 0..3000),
        ) {
            // Up to 3000 bytes: short texts take one pass, long ones the lanes, and keywords
            // fall across the lanes' borders.
            let refs: Vec<&str> = kws.iter().map(String::as_str).collect();
            prop_assert_eq!(flat(&refs, &hay), sorted(reference(&refs, &hay)));
        }

        #[test]
        fn keywords_across_lane_borders_are_found(
            kw in "[a-c]{2,6}",
            len in 1024usize..1100,
            at in 0usize..1100,
        ) {
            // One keyword planted anywhere in filler, including across each border.
            let mut hay = vec![b'.'; len];
            let at = at.min(len - kw.len());
            hay[at..at + kw.len()].copy_from_slice(kw.as_bytes());
            let refs = [kw.as_str()];
            prop_assert_eq!(flat(&refs, &hay), sorted(reference(&refs, &hay)));
        }
    }
}
