//! Key-name patterns searched from where the keyword scan found their keywords, instead of
//! by a lazy DFA over the line.
//!
//! A key-name pattern (`(?:^|[^A-Za-z0-9])[\w.\-]*api[_\-.]?key…\s*[:=]\s*(?P<s>…)`) splits
//! into a head `H`, the key name, and a tail `T`, the operator and value (see
//! [`crate::tail_capture`] for the conditions): every byte of a head after its first is a
//! key byte, and a tail starts with a byte that is not. So a match starting at `s` has its
//! head end exactly at `b(s)`, the first byte after `s` that is not a key byte. The engine
//! finds such matches with its lazy DFA forward over the line from the search's start,
//! then backward for the start, then reads the value: on secret-dense text about 2,000
//! instructions a key-name line, which would be the largest share of its redaction.
//!
//! Here, when every text `H` can match holds one of the rule's keywords (proven when the
//! rule is compiled, by [`crate::keyword_cover`]'s automata), a match's head holds a keyword
//! occurrence the scan reported, inside the run of key bytes that ends at the match's `b`.
//! The occurrences from the search's start are taken in order; each gives its run's end
//! `b` (one whose bytes after its first are not all key bytes cannot lie in a head). For
//! each `b` in turn:
//! - the leftmost `s` (at or after the search's start) whose head ends at `b` is found by
//!   `H`'s reverse lazy DFA, anchored at `b` and reporting every match: the engine's own
//!   way to find a match's start;
//! - `T` is read from `b`, by hand when it has the assignment shape
//!   ([`AssignmentTail::match_at`]), else by a walk ([`TailProgram::match_at`]): its
//!   leftmost-first match there, with its groups, is the tail of the pattern's match (the
//!   head ends at `b` on every way through the pattern from `s`).
//!
//! The starts belonging to different `b`s lie in disjoint ranges in the same order (each
//! range ends at its `b`, a non-key byte the next range starts at or after), so the first
//! `b` with both a head and a tail gives the engine's leftmost-first match, and none means
//! no match. A walk that gives up, a DFA whose cache gives out, or more than
//! [`FAILED_TAILS`] heads without a tail hand the search back to the engine from the
//! search's start.
//!
//! Cost: occurrences in one run of key bytes share its `b` (the run is scanned once), and
//! each reverse search reads back no further than the run before its `b`, so the runs and
//! the heads cost one pass over the haystack; tails are read at most
//! [`FAILED_TAILS`]` + 1` times. `RuleSet::led_searches_agree` compares every start
//! with the capture engine, on every rule example, generated lines and in a fuzz target.

use crate::assignment_tail::{AssignmentTail, TailMatch};
use crate::keyword_cover::covers_hir;
use crate::led_search::{KeywordIds, LedFind, LineKeywords};
use crate::tail_capture::{splits, ByteSet};
use crate::tail_program::TailProgram;
use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::nfa::thompson;
use regex_automata::util::pool::Pool;
use regex_automata::{Anchored, Input, MatchKind};
use regex_syntax::hir::Hir;

/// Heads found whose tails do not follow, before the search goes to the engine. A failed
/// tail reading may read to the end of the haystack (a quoted value never closed): without
/// a bound, a line of such heads would cost the square of its length, where the engine's
/// search is linear. Past it, the work done is at most this many readings more than the
/// engine's.
const FAILED_TAILS: usize = 8;

type CacheFn =
    Box<dyn Fn() -> Cache + Send + Sync + std::panic::UnwindSafe + std::panic::RefUnwindSafe>;

/// A key-name pattern searched from its keywords (see the module docs).
pub(crate) struct Keyed {
    /// Where a head ending at a split starts, leftmost.
    head_rev: ReverseStart,
    key_bytes: ByteSet,
    tail: TailReader,
    tail_starts: ByteSet,
    /// The keyword scan's ids of the rule's keywords, sorted (set once the scan is built:
    /// until then the pattern is searched by the engine).
    keywords: Vec<usize>,
    /// The same, as a bitset.
    ids: KeywordIds,
}

/// How the tail's match at a split is found.
enum TailReader {
    /// The assignment shape, read by hand ([`AssignmentTail::match_at`]).
    ByHand(Box<AssignmentTail>),
    /// Any other tail the walk can follow ([`TailProgram::match_at`]).
    Walked(TailProgram),
}

impl TailReader {
    /// The tail's leftmost-first anchored match at `from`: its end and secret group;
    /// `Err(())` when the reading gave up (the engine decides).
    fn match_at(&self, hay: &[u8], from: usize) -> Result<Option<TailMatch>, ()> {
        match self {
            TailReader::ByHand(t) => t.match_at(hay, from),
            TailReader::Walked(t) => t.match_at(hay, from).map_err(|_| ()),
        }
    }
}

impl std::fmt::Debug for Keyed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyed")
            .field("keywords", &self.keywords)
            .finish_non_exhaustive()
    }
}

impl Keyed {
    /// The search for the pattern `hir` of a rule with these keywords, if it splits with
    /// a head that always holds one of them and a tail the walk can follow.
    pub(crate) fn new(hir: &Hir, insensitive: &[String], sensitive: &[String]) -> Option<Keyed> {
        // The longest head only: a shorter one is a part of it, and holds a keyword only
        // if the longer one does.
        let split = splits(hir).next()?;
        covers_hir(&split.head, insensitive, sensitive).ok()?;
        let tail = match AssignmentTail::recognize(&split.tail) {
            Some(t) => TailReader::ByHand(Box::new(t)),
            None => TailReader::Walked(TailProgram::compile(&split.tail)?),
        };
        let head_rev = ReverseStart::new(&split.head)?;
        Some(Keyed {
            head_rev,
            key_bytes: split.key_bytes,
            tail,
            tail_starts: split.tail_starts,
            keywords: Vec::new(),
            ids: KeywordIds::default(),
        })
    }

    /// The head's reverse search (for tests).
    #[cfg(test)]
    pub(crate) fn head(&self) -> &ReverseStart {
        &self.head_rev
    }

    /// Sets the keyword scan's ids of the rule's keywords.
    pub(crate) fn set_keywords(&mut self, mut ids: Vec<usize>) {
        ids.sort_unstable();
        self.ids = KeywordIds::of(&ids);
        self.keywords = ids;
    }

    /// The leftmost-first match in `hay` (a line, or its first part) from `at`, as the
    /// engine's `find_at` reports it, with its first secret group that took part.
    pub(crate) fn find(&self, hay: &[u8], at: usize, line: LineKeywords) -> LedFind {
        if self.keywords.is_empty() {
            return LedFind::Engine;
        }
        let key = &self.key_bytes;
        let mut last_b = None;
        let mut cache = None;
        let mut attempts = Attempts::new(FAILED_TAILS);
        for (ks, ke, k) in line.within(at, hay.len()) {
            if !self.ids.contains(k) {
                continue;
            }
            // An occurrence inside the run of key bytes the last one ended: the same `b`.
            if last_b.is_some_and(|b| ks < b) {
                continue;
            }
            // In a head, every byte after its first is a key byte.
            if !hay[ks + 1..ke].iter().all(|&x| key[usize::from(x)]) {
                continue;
            }
            let b = hay[ke..]
                .iter()
                .position(|&x| !key[usize::from(x)])
                .map_or(hay.len(), |i| ke + i);
            last_b = Some(b);
            if b >= hay.len() || !self.tail_starts[usize::from(hay[b])] {
                continue;
            }
            let start = self.head_rev.leftmost(hay, at, b, &mut cache);
            if let Some(found) = attempts.try_one(start, |_| self.tail.match_at(hay, b)) {
                return found;
            }
        }
        LedFind::None
    }
}

/// Candidates whose reading failed, counted against a limit: each failed reading may have
/// read to the end of the haystack, so past the limit the search goes to the engine.
pub(crate) struct Attempts {
    failed: usize,
    limit: usize,
}

impl Attempts {
    pub(crate) fn new(limit: usize) -> Attempts {
        Attempts { failed: 0, limit }
    }

    /// One candidate: `start`, its leftmost start ([`ReverseStart::leftmost`]); `read`,
    /// called with it, the match of the rest from the candidate. `None`: no match here,
    /// try the next candidate.
    pub(crate) fn try_one(
        &mut self,
        start: Result<Option<usize>, ()>,
        read: impl FnOnce(usize) -> Result<Option<TailMatch>, ()>,
    ) -> Option<LedFind> {
        let s = match start {
            Ok(Some(s)) => s,
            Ok(None) => return None,
            Err(()) => return Some(LedFind::Engine),
        };
        match read(s) {
            Ok(Some((e, group))) => Some(LedFind::Found((s, e), group)),
            Ok(None) => {
                self.failed += 1;
                (self.failed > self.limit).then_some(LedFind::Engine)
            }
            Err(()) => Some(LedFind::Engine),
        }
    }
}

/// A pattern part's reverse DFA, reporting every match: the leftmost start of the part's
/// matches that end at a given place. A fully built (dense) DFA where it fits
/// [`DENSE_LIMIT`], else a lazy one with its caches: the dense one has no cache to take
/// from a pool and a faster loop (a key name's head read back costs ~400 instructions
/// through the lazy DFA).
pub(crate) struct ReverseStart {
    dfa: Reverse,
}

/// The most memory one part's dense DFA may take; a larger part keeps the lazy DFA.
const DENSE_LIMIT: usize = 256 << 10;

enum Reverse {
    Dense(regex_automata::dfa::dense::DFA<Vec<u32>>),
    Lazy {
        dfa: DFA,
        /// One cache per thread searching at once.
        caches: Pool<Cache, CacheFn>,
    },
}

/// A cache taken from a [`ReverseStart`]'s pool for one search (taken when first needed;
/// a dense DFA takes none).
pub(crate) type CacheGuard<'a> = Option<regex_automata::util::pool::PoolGuard<'a, Cache, CacheFn>>;

impl ReverseStart {
    /// The DFA of `part` (groups ignored), if it builds.
    pub(crate) fn new(part: &Hir) -> Option<ReverseStart> {
        let nfa = thompson::Compiler::new()
            .configure(
                thompson::Config::new()
                    .reverse(true)
                    .utf8(false)
                    .which_captures(thompson::WhichCaptures::None),
            )
            .build_from_hir(part)
            .ok()?;
        let dense = regex_automata::dfa::dense::Builder::new()
            .configure(
                regex_automata::dfa::dense::Config::new()
                    .match_kind(MatchKind::All)
                    .start_kind(regex_automata::dfa::StartKind::Anchored)
                    .dfa_size_limit(Some(DENSE_LIMIT))
                    .determinize_size_limit(Some(4 * DENSE_LIMIT)),
            )
            .build_from_nfa(&nfa);
        if let Ok(dfa) = dense {
            return Some(ReverseStart {
                dfa: Reverse::Dense(dfa),
            });
        }
        let dfa = DFA::builder()
            .configure(DFA::config().match_kind(MatchKind::All))
            .build_from_nfa(nfa)
            .ok()?;
        let for_caches = dfa.clone();
        let make: CacheFn = Box::new(move || for_caches.create_cache());
        Some(ReverseStart {
            dfa: Reverse::Lazy {
                dfa,
                caches: Pool::new(make),
            },
        })
    }

    /// The memory the DFA takes, and whether it is dense.
    #[cfg(test)]
    pub(crate) fn size(&self) -> (usize, bool) {
        match &self.dfa {
            Reverse::Dense(d) => (d.memory_usage(), true),
            Reverse::Lazy { dfa, .. } => (dfa.memory_usage(), false),
        }
    }

    /// The leftmost start at or after `from` of a match of the part ending exactly at
    /// `end` in `hay` (text outside still counts for look-arounds). `Err(())`: the DFA
    /// gave up (its cache gave out); the caller asks the engine.
    pub(crate) fn leftmost<'a>(
        &'a self,
        hay: &[u8],
        from: usize,
        end: usize,
        cache: &mut CacheGuard<'a>,
    ) -> Result<Option<usize>, ()> {
        let input = Input::new(hay).range(from..end).anchored(Anchored::Yes);
        let found = match &self.dfa {
            Reverse::Dense(dfa) => regex_automata::dfa::Automaton::try_search_rev(dfa, &input),
            Reverse::Lazy { dfa, caches } => {
                let cache = cache.get_or_insert_with(|| caches.get());
                dfa.try_search_rev(cache, &input)
            }
        };
        match found {
            Ok(m) => Ok(m.map(|m| m.offset())),
            Err(_) => Err(()),
        }
    }
}
