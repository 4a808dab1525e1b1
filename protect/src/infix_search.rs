//! Patterns searched from a keyword written inside them (`postgres://user:<password>@`
//! and URL credentials, around their `://`), instead of by a lazy DFA over the line.
//!
//! Such a pattern is a concatenation `P L R` whose part `L` is a literal that is one of
//! its rule's keywords: every match has an occurrence of the keyword where `P` ends. The
//! engine finds a match with its lazy DFA forward from the search's start and then
//! backward for the start, and the walk then reads its group: ~2,000 instructions for a
//! `postgres://` line, twice (two rules find it).
//!
//! When some byte of `L` can appear in no match of `P` in either case, a match of `P`
//! holds no occurrence of the keyword (found ASCII case-insensitively by the scan, so
//! every case variant counts). The keyword's occurrences (which cannot overlap one another:
//! a keyword that overlaps itself is not used) are taken in order from the search's start,
//! and for each, `k`:
//! - the leftmost start `s` (at or after the search's start) of a match of `P` ending at
//!   `k` is found by `P`'s reverse lazy DFA, anchored at `k`, reporting every match;
//! - the whole pattern is walked from `s` ([`TailProgram::match_at`]).
//!
//! Why the first success is the engine's leftmost-first match: a match of `P` from `s`
//! cannot reach past `k` (it would hold the occurrence at `k`) nor end at an earlier
//! occurrence (it would hold none between `s` and `k`, and `s` is after the earlier ones:
//! a match of `P` ending at `k` cannot hold them either). So every way from `s` reads `P`
//! up to `k` and then `L R` from `k`, which does not depend on `s`: if the walk from the
//! leftmost `s` fails, so would one from any later start for `k`. Starts for later
//! occurrences come after the earlier ones' (each lies after the occurrence before its
//! own). A walk or DFA that gives up, or more than [`FAILED_WALKS`] walks that fail, hand
//! the search back to the engine. `RuleSet::led_searches_agree` compares every start with
//! the capture engine.

use crate::keyed_search::{Attempts, CacheGuard, ReverseStart};
use crate::led_search::{LedFind, LineKeywords};
use crate::tail_capture::bytes_of;
use crate::tail_program::TailProgram;
use regex_syntax::hir::{Hir, HirKind};

/// Walks from a start that fail before the search goes to the engine (each may read to
/// the end of the haystack: see [`crate::keyed_search`]'s bound on failed tails).
const FAILED_WALKS: usize = 8;

/// A pattern searched from the keyword inside it (see the module docs).
pub(crate) struct Infixed {
    /// The part before the keyword.
    before: ReverseStart,
    /// The whole pattern.
    whole: TailProgram,
    /// The keyword, lower case.
    keyword: Vec<u8>,
    /// The keyword scan's id for it (set once the scan is built: until then the pattern
    /// is searched by the engine).
    id: Option<usize>,
}

impl std::fmt::Debug for Infixed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Infixed")
            .field("keyword", &String::from_utf8_lossy(&self.keyword))
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Infixed {
    /// The reverse search of the part before the keyword (for tests).
    #[cfg(test)]
    pub(crate) fn before(&self) -> &ReverseStart {
        &self.before
    }

    /// The search for the pattern `hir` of a rule with these (case-insensitive) keywords,
    /// if it has the shape in the module docs.
    pub(crate) fn new(hir: &Hir, insensitive: &[String]) -> Option<Infixed> {
        let HirKind::Concat(parts) = hir.kind() else {
            return None;
        };
        let (i, keyword) = parts
            .iter()
            .enumerate()
            .skip(1)
            .find_map(|(i, p)| match p.kind() {
                HirKind::Literal(l) => insensitive
                    .iter()
                    .find(|k| k.as_bytes().eq_ignore_ascii_case(&l.0))
                    .map(|k| (i, k.to_ascii_lowercase().into_bytes())),
                _ => None,
            })?;
        let overlaps_itself =
            (1..keyword.len()).any(|n| keyword[..n] == keyword[keyword.len() - n..]);
        let before = Hir::concat(parts[..i].to_vec());
        let mut bytes = [false; 256];
        bytes_of(&before, &mut bytes)?;
        let outside = keyword.iter().any(|&b| {
            !bytes[usize::from(b.to_ascii_lowercase())]
                && !bytes[usize::from(b.to_ascii_uppercase())]
        });
        if overlaps_itself || !outside {
            return None;
        }
        Some(Infixed {
            before: ReverseStart::new(&before)?,
            whole: TailProgram::compile(hir)?,
            keyword,
            id: None,
        })
    }

    /// Sets the keyword scan's id for the keyword, given the scan's case-insensitive
    /// keywords' ids and texts.
    pub(crate) fn set_id<'a>(&mut self, mut insensitive: impl Iterator<Item = (usize, &'a str)>) {
        self.id = insensitive
            .find(|(_, text)| text.as_bytes() == self.keyword.as_slice())
            .map(|(id, _)| id);
    }

    /// The leftmost-first match in `hay` (a line, or its first part) from `at`, as the
    /// engine's `find_at` reports it, with its first secret group that took part.
    pub(crate) fn find(&self, hay: &[u8], at: usize, line: LineKeywords) -> LedFind {
        let Some(id) = self.id else {
            return LedFind::Engine;
        };
        let (mut cache, mut attempts): (CacheGuard, _) = (None, Attempts::new(FAILED_WALKS));
        for (ks, _, k) in line.within(at, hay.len()) {
            if k != id {
                continue;
            }
            let start = self.before.leftmost(hay, at, ks, &mut cache);
            let walk = |s| self.whole.match_at(hay, s).map_err(|_| ());
            if let Some(found) = attempts.try_one(start, walk) {
                return found;
            }
        }
        LedFind::None
    }
}
