//! Patterns matched from the keyword occurrences the prefilter's scan found, instead of by
//! a search over the whole line.
//!
//! The scan (see [`crate::matching::keyword_dfa`]) reports every occurrence of the rules' keywords
//! on a line. A pattern every match of which *starts* with one of its rule's keywords (a
//! provider prefix: `\bxoxb-…`, `(?:AKIA|ASIA)…`, `(?i)\bBearer\s+…`) is searched with the
//! regex engine's anchored search, with captures, from each such occurrence ([`Led`]): the
//! engine runs only where a match can start, not over the line. Every other pattern is
//! searched by the engine over the line.
//!
//! Trade-off, measured on realistic agent output (`cargo bench -p execkit-protect --bench
//! hand_paths`, in `docs/benchmarks.md`): on build logs, where provider prefixes such as
//! `sk-` occur often in words that hold no token, this search is what keeps redaction
//! above 800 MiB/s; on the other corpora it is worth 1.0–1.3×. Reading groups by hand,
//! walking patterns over their syntax trees and searching key names and URLs from their
//! keywords were each worth less than 2× there, and are not done.
//!
//! `RuleSet::led_searches_agree` compares it with the unanchored engine from every start,
//! on every rule example, on generated lines and in the `keyword_searches` fuzz target.

mod led;

pub(crate) use led::Led;

use crate::matching::pattern_regex::{Locs, PatternRegex};

/// The keyword occurrences of the line a rule runs on: `(start, end, keyword id)` sorted
/// by start, with offsets `offset` bytes past the line's (the redactor's whole block).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LineKeywords<'a> {
    pub(crate) hits: &'a [(usize, usize, usize)],
    pub(crate) offset: usize,
}

/// Keyword ids as a bitset: a line's keyword occurrence is checked against a pattern's
/// keywords with a shift and a mask, where a search of the list costs ~35 instructions an
/// occurrence (a key-name rule has dozens of keywords).
#[derive(Debug, Clone, Default)]
pub(crate) struct KeywordIds(Vec<u64>);

impl KeywordIds {
    pub(crate) fn of(ids: &[usize]) -> KeywordIds {
        let mut words = vec![0u64; ids.iter().max().map_or(0, |&m| m / 64 + 1)];
        for &k in ids {
            words[k / 64] |= 1 << (k % 64);
        }
        KeywordIds(words)
    }

    pub(crate) fn contains(&self, k: usize) -> bool {
        self.0.get(k / 64).is_some_and(|w| w >> (k % 64) & 1 == 1)
    }
}

/// Keyword occurrences whose anchored search failed, before a search
/// hands the rest of the line to the engine. A failed search may read to the end of the
/// haystack (a quoted value never closed): without a bound, a line of such candidates
/// would cost the square of its length, where the engine's search is linear. Past it, the
/// work done is at most this many searches more than the engine's.
const FAILED_CANDIDATES: usize = 8;

/// What a search from keyword occurrences says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeywordFind {
    /// The leftmost-first match from the search's start: (start, end) and its first
    /// secret group that took part.
    Found((usize, usize), Option<(usize, usize)>),
    /// No match from the search's start.
    None,
    /// The search cannot tell (a reverse DFA gave up, too many failed candidates): the
    /// engine's unanchored search decides.
    Engine,
}

/// The match of `re` starting exactly at `start`, if any: its end and its first secret
/// group (of `groups`) that took part.
fn anchored(
    re: &PatternRegex,
    groups: &[usize],
    locs: &mut Locs,
    hay: &[u8],
    start: usize,
) -> Option<(usize, Option<(usize, usize)>)> {
    let m = re.captures_anchored_at(locs, hay, start)?;
    Some((m.end(), groups.iter().find_map(|&g| locs.get(g))))
}
