//! Patterns that start with a keyword, matched from the keyword's occurrences.
//!
//! A provider token's pattern starts with a literal its rule has as a keyword:
//! `\bxoxb-[0-9]{10,13}-…`, `\b(?:AKIA|ASIA|…)[A-Z0-9]{16}\b`, `(?i)\bBearer\s+…`. Every
//! match of such a pattern starts where one of those keywords occurs, and the keyword scan
//! has already found every occurrence on the line.
//!
//! So the engine's anchored search runs from each occurrence in turn, leftmost first. An
//! anchored search at a start finds the match the engine's leftmost-first search prefers
//! among those starting there (or proves there is none), so the first occurrence where it
//! matches gives the engine's leftmost-first match from the search's start: no match can
//! start anywhere else. Which keywords lead a pattern is derived from its syntax tree when
//! the rules compile ([`Led::new`]). A failed search may read to the end of the line (a
//! run of token bytes that never ends the way the pattern needs), so after
//! [`FAILED_CANDIDATES`] of them the engine's one search over the rest of the line takes
//! over: on a line of a thousand `xoxb-` prefixes, the work stays linear.

use super::{anchored, KeywordFind, KeywordIds, LineKeywords, FAILED_CANDIDATES};
use crate::matching::pattern_regex::{Locs, PatternRegex};
use regex_syntax::hir::{Class, Hir, HirKind};

/// A pattern every match of which starts with one of its rule's keywords.
#[derive(Debug)]
pub(crate) struct Led {
    /// Ids of the rule's case-insensitive keywords that can start a match.
    keywords: Vec<usize>,
    /// The same, as a bitset.
    ids: KeywordIds,
}

impl Led {
    /// The pattern `hir` led by some of `keywords` (id, lower-case text), if every match
    /// starts with one of them.
    pub(crate) fn new(hir: &Hir, keywords: &[(usize, &[u8])]) -> Option<Led> {
        let mut ids = Vec::new();
        leads(hir, keywords, &mut ids)?;
        ids.sort_unstable();
        ids.dedup();
        Some(Led {
            ids: KeywordIds::of(&ids),
            keywords: ids,
        })
    }

    /// The same pattern with each keyword id replaced by `f`'s; `None` when `f` has none
    /// for one (a keyword the scan would not report: searching from the others could miss
    /// a match).
    pub(crate) fn map_keywords(self, f: impl Fn(usize) -> Option<usize>) -> Option<Led> {
        let keywords: Vec<usize> = self.keywords.iter().map(|&k| f(k)).collect::<Option<_>>()?;
        Some(Led {
            ids: KeywordIds::of(&keywords),
            keywords,
        })
    }

    /// The leftmost-first match of `re` in `hay` (a line, or its first part) from `at`,
    /// as the engine's unanchored search reports it, with its first secret group (of
    /// `groups`) that took part. `min_len`: the fewest bytes a match spans.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn find(
        &self,
        re: &PatternRegex,
        groups: &[usize],
        locs: &mut Locs,
        hay: &[u8],
        at: usize,
        min_len: usize,
        line: LineKeywords,
    ) -> KeywordFind {
        let first = line
            .hits
            .partition_point(|h| h.0 < line.offset.saturating_add(at));
        let mut last = None;
        let mut failed = 0;
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
            if let Some((end, group)) = anchored(re, groups, locs, hay, s) {
                return KeywordFind::Found((s, end), group);
            }
            // A failed search may have read to the end of the line: past a few, the
            // engine's one search over the rest costs less than more of them.
            failed += 1;
            if failed > FAILED_CANDIDATES {
                return KeywordFind::Engine;
            }
        }
        KeywordFind::None
    }

    /// The keyword ids that lead the pattern.
    #[cfg(test)]
    pub(crate) fn keywords(&self) -> &[usize] {
        &self.keywords
    }
}

/// Adds to `ids` a keyword each way through `h` starts with; `None` if some way starts
/// with none of them.
fn leads(h: &Hir, keywords: &[(usize, &[u8])], ids: &mut Vec<usize>) -> Option<()> {
    match h.kind() {
        HirKind::Literal(_) | HirKind::Class(_) => {
            fixed_lead(std::slice::from_ref(h), keywords, ids)
        }
        HirKind::Concat(parts) => {
            // Assertions (`\b`, `^`) match no byte: the match starts with what follows.
            let rest = &parts[parts
                .iter()
                .position(|p| !matches!(p.kind(), HirKind::Look(_)))?..];
            match rest[0].kind() {
                HirKind::Literal(_) | HirKind::Class(_) => fixed_lead(rest, keywords, ids),
                _ => leads(&rest[0], keywords, ids),
            }
        }
        HirKind::Alternation(choices) => choices.iter().try_for_each(|c| leads(c, keywords, ids)),
        HirKind::Capture(c) => leads(&c.sub, keywords, ids),
        _ => None,
    }
}

/// The keyword that every text `parts` starts with begins with: the leading run of
/// literals and one-byte classes, read as one byte set a position.
fn fixed_lead(parts: &[Hir], keywords: &[(usize, &[u8])], ids: &mut Vec<usize>) -> Option<()> {
    let mut sets: Vec<[bool; 256]> = Vec::new();
    for p in parts {
        match p.kind() {
            HirKind::Literal(l) => sets.extend(l.0.iter().map(|&b| {
                let mut set = [false; 256];
                set[usize::from(b)] = true;
                set
            })),
            HirKind::Class(c) => {
                let mut set = [false; 256];
                class_bytes(c, &mut set)?;
                sets.push(set);
            }
            _ => break,
        }
    }
    let (id, _) = keywords.iter().find(|(_, k)| folds_to(&sets, k))?;
    ids.push(*id);
    Some(())
}

/// Whether every run of bytes `sets` matches starts with `keyword` (lower case), ASCII
/// case folded.
fn folds_to(sets: &[[bool; 256]], keyword: &[u8]) -> bool {
    !keyword.is_empty()
        && keyword.len() <= sets.len()
        && sets.iter().zip(keyword).all(|(set, &k)| {
            let mut bytes = (0..=255u8).filter(|&b| set[usize::from(b)]);
            bytes.clone().next().is_some() && bytes.all(|b| b.to_ascii_lowercase() == k)
        })
}

/// Adds the bytes class `c` matches to `set`; `None` for a class that can match a byte
/// past ASCII as Unicode (not judged).
fn class_bytes(c: &Class, set: &mut [bool; 256]) -> Option<()> {
    let mut add = |start: u8, end: u8| {
        for b in start..=end {
            set[usize::from(b)] = true;
        }
    };
    match c {
        Class::Bytes(c) => c.ranges().iter().for_each(|r| add(r.start(), r.end())),
        // Unicode off: only ASCII classes can appear; anything else is not judged.
        Class::Unicode(c) => {
            for r in c.ranges() {
                let (s, e) = (u8::try_from(r.start()).ok()?, u8::try_from(r.end()).ok()?);
                if e > 0x7f {
                    return None;
                }
                add(s, e);
            }
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matching::keyword_search::KeywordIds;

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
        let hir =
            crate::matching::pattern_regex::parse(pattern).unwrap_or_else(|| panic!("{pattern}"));
        let ids: Vec<(usize, &[u8])> = keywords
            .iter()
            .enumerate()
            .map(|(i, k)| (i, k.as_bytes()))
            .collect();
        let led = Led::new(&hir, &ids)?;
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
