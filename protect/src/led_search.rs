//! Patterns that start with a keyword, matched from the keyword's occurrences.
//!
//! A provider token's pattern starts with a literal its rule has as a keyword:
//! `\bxoxb-[0-9]{10,13}-…`, `\b(?:AKIA|ASIA|…)[A-Z0-9]{16}\b`, `(?i)\bBearer\s+…`. Every
//! match of such a pattern starts where one of those keywords occurs, and the keyword scan
//! has already found every occurrence on the line. A lazy DFA search would find the match
//! again: forward from the window's start to the match's end (each byte of a greedy value
//! a match state, off its fast loop), then backward to find the start. On secret-dense
//! text that would be a third of redaction, ~2,600 instructions for one Slack token line.
//!
//! Here the pattern is walked whole ([`TailProgram::match_at`]) from each occurrence in
//! turn, leftmost first. A walk from a given start finds the match the engine's anchored
//! leftmost-first search finds there (or proves there is none), so the first occurrence
//! where the walk matches gives the engine's leftmost-first match from the search's
//! start: no match can start anywhere else. The walk also reads the secret group on its
//! way. A walk that gives up (its step, depth or scan budget) hands the search back to
//! the engine, from the search's start. Which keywords lead a pattern is derived from its
//! syntax tree when the rules compile ([`TailProgram::lead_keywords`]); tests compare this
//! search with the engine's on every rule example and on generated text, and the
//! `hand_readings` fuzz target on any text.

use crate::tail_program::{NoAnswer, TailProgram};

/// A pattern every match of which starts with one of `keywords`.
#[derive(Debug)]
pub(crate) struct Led {
    /// The whole pattern, walked.
    program: TailProgram,
    /// Ids of the rule's case-insensitive keywords that can start a match.
    keywords: Vec<usize>,
    /// The same, as a bitset.
    ids: KeywordIds,
}

/// The keyword occurrences of the line a rule runs on: `(start, end, keyword id)` sorted
/// by start, with offsets `offset` bytes past the line's (the redactor's whole block).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LineKeywords<'a> {
    pub(crate) hits: &'a [(usize, usize, usize)],
    pub(crate) offset: usize,
}

impl<'a> LineKeywords<'a> {
    /// The occurrences that lie within `at..len` of the line, in order of start, as
    /// `(start, end, keyword id)` from the line's start.
    pub(crate) fn within(
        self,
        at: usize,
        len: usize,
    ) -> impl Iterator<Item = (usize, usize, usize)> + 'a {
        let first = self
            .hits
            .partition_point(|h| h.0 < self.offset.saturating_add(at));
        self.hits[first..]
            .iter()
            .filter_map(move |&(s, e, k)| {
                Some((s.checked_sub(self.offset)?, e.checked_sub(self.offset)?, k))
            })
            .take_while(move |&(s, _, _)| s < len)
            .filter(move |&(_, e, _)| e <= len)
    }
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

/// What [`Led::find`] says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LedFind {
    /// The leftmost-first match from the search's start: (start, end) and its first
    /// secret group that took part.
    Found((usize, usize), Option<(usize, usize)>),
    /// No match from the search's start.
    None,
    /// A walk gave up: the engine decides.
    Engine,
}

impl Led {
    /// `program` led by some of `keywords` (id, lower-case text), if every match starts
    /// with one of them.
    pub(crate) fn new(program: TailProgram, keywords: &[(usize, &[u8])]) -> Option<Led> {
        let keywords = program.lead_keywords(keywords)?;
        let ids = KeywordIds::of(&keywords);
        Some(Led {
            program,
            keywords,
            ids,
        })
    }

    /// The same pattern with each keyword id replaced by `f`'s; `None` when `f` has none
    /// for one (a keyword the scan would not report: searching from the others could miss
    /// a match).
    pub(crate) fn map_keywords(self, f: impl Fn(usize) -> Option<usize>) -> Option<Led> {
        let keywords: Vec<usize> = self.keywords.iter().map(|&k| f(k)).collect::<Option<_>>()?;
        Some(Led {
            program: self.program,
            ids: KeywordIds::of(&keywords),
            keywords,
        })
    }

    /// The leftmost-first match in `hay` (a line, or its first part) from `at`, as the
    /// engine's `find_at` reports it, with its first secret group that took part.
    /// `min_len`: the fewest bytes a match spans.
    pub(crate) fn find(
        &self,
        hay: &[u8],
        at: usize,
        min_len: usize,
        line: LineKeywords,
    ) -> LedFind {
        let first = line
            .hits
            .partition_point(|h| h.0 < line.offset.saturating_add(at));
        let mut last = None;
        for &(start, _, k) in &line.hits[first..] {
            let Some(s) = start.checked_sub(line.offset) else {
                continue;
            };
            if s.saturating_add(min_len) > hay.len() {
                break;
            }
            if last == Some(s) || !self.ids.contains(k) {
                continue;
            }
            last = Some(s);
            match self.program.match_at(hay, s) {
                Ok(Some((end, group))) => return LedFind::Found((s, end), group),
                Ok(None) => {}
                Err(NoAnswer::GaveUp | NoAnswer::NoWay) => return LedFind::Engine,
            }
        }
        LedFind::None
    }

    /// The keyword ids that lead the pattern.
    #[cfg(test)]
    pub(crate) fn keywords(&self) -> &[usize] {
        &self.keywords
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The bitset holds exactly the ids it was made of (ids past its last word too).
        #[test]
        fn keyword_ids_hold_exactly_their_ids(
            ids in proptest::collection::vec(0usize..300, 0..20),
            probe in 0usize..400,
        ) {
            let set = KeywordIds::of(&ids);
            proptest::prop_assert_eq!(set.contains(probe), ids.contains(&probe));
            for &k in &ids {
                proptest::prop_assert!(set.contains(k));
            }
        }
    }

    /// The keywords (by their text) that lead `pattern`, from `keywords`.
    fn leads(pattern: &str, keywords: &[&str]) -> Option<Vec<String>> {
        let hir = crate::tail_capture::parse(pattern).unwrap_or_else(|| panic!("{pattern}"));
        let program = TailProgram::compile(&hir).unwrap_or_else(|| panic!("{pattern} walks"));
        let ids: Vec<(usize, &[u8])> = keywords
            .iter()
            .enumerate()
            .map(|(i, k)| (i, k.as_bytes()))
            .collect();
        let led = Led::new(program, &ids)?;
        Some(
            led.keywords()
                .iter()
                .map(|&i| keywords[i].to_string())
                .collect(),
        )
    }

    #[test]
    fn a_pattern_is_led_by_the_keywords_its_matches_start_with() {
        assert_eq!(
            leads(r"\bxoxb-[0-9]{10,13}", &["xoxb-"]),
            Some(vec!["xoxb-".into()])
        );
        // Case folded, after assertions, through groups and alternations.
        assert_eq!(
            leads(r"(?i)\bBearer\s+(?P<s>[a-z]{16,})", &["bearer"]),
            Some(vec!["bearer".into()])
        );
        assert_eq!(
            leads(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b", &["asia", "akia", "aws"]),
            Some(vec!["asia".into(), "akia".into()])
        );
        // A keyword shorter than the literal leads it; one longer does not.
        assert_eq!(leads(r"ghp_[a-z]{36}", &["ghp"]), Some(vec!["ghp".into()]));
        assert_eq!(leads(r"ghp_[a-z]{36}", &["ghp_x"]), None);
    }

    #[test]
    fn a_pattern_some_match_of_which_starts_elsewhere_is_not_led() {
        // An alternative no keyword starts, a class, a repetition, an empty choice.
        assert_eq!(leads(r"(?:AKIA|A3T[A-Z0-9])[A-Z0-9]{16}", &["akia"]), None);
        assert_eq!(leads(r"[A-Za-z]+://", &["://"]), None);
        assert_eq!(leads(r"(?:ab)+c", &["ab"]), None);
        assert_eq!(leads(r"(?:x|)abc", &["x", "abc"]), None);
        // Case-sensitive bytes that fold to another keyword's letters do not count.
        assert_eq!(leads(r"AKIB", &["akia"]), None);
    }
}
