//! The regex engine the rules' patterns run on: regex-automata's meta regex, compiled as
//! the rules compile (Unicode off, bytes, empty matches anywhere), behind the few calls the
//! redactor makes.
//!
//! Two kinds of search: unanchored (the leftmost-first match from a position, with the
//! text before it still counting for `^` and `\b`), and anchored (the match that starts
//! exactly at a position, for the searches from keyword occurrences in
//! [`crate::matching::keyword_search`]). Both report the secret groups through [`Locs`]; the meta
//! regex finds a match's span with its lazy DFA first and runs a capture engine (one-pass
//! DFA, bounded backtracker or PikeVM) over that span only.

use regex_automata::meta::{self, Regex};
use regex_automata::util::captures::Captures;
use regex_automata::{Anchored, Input, Match, PatternID};
use std::sync::OnceLock;

/// A rule's compiled pattern.
#[derive(Debug)]
pub(crate) struct PatternRegex(Regex);

/// Capture groups of the last search, made once per pattern and reused.
#[derive(Debug)]
pub(crate) struct Locs(Captures);

impl Locs {
    /// Group `g`'s span, if it took part in the match.
    pub(crate) fn get(&self, g: usize) -> Option<(usize, usize)> {
        self.0.get_group(g).map(|s| (s.start, s.end))
    }
}

/// A regex builder set up as the rules compile (Unicode off, bytes, empty matches
/// anywhere).
pub(crate) fn regex_builder() -> meta::Builder {
    let mut b = Regex::builder();
    b.syntax(
        regex_automata::util::syntax::Config::new()
            .unicode(false)
            .utf8(false),
    )
    .configure(Regex::config().utf8_empty(false));
    b
}

/// The pattern's syntax tree, parsed as the rules compile (Unicode off, bytes).
pub(crate) fn parse(pattern: &str) -> Option<regex_syntax::hir::Hir> {
    regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(pattern)
        .ok()
}

impl PatternRegex {
    /// Compiles `pattern` (an NFA of at most 8 MiB).
    pub(crate) fn new(pattern: &str) -> Result<PatternRegex, Box<meta::BuildError>> {
        regex_builder()
            .configure(
                Regex::config()
                    .utf8_empty(false)
                    .nfa_size_limit(Some(8 << 20)),
            )
            .build(pattern)
            .map(PatternRegex)
            .map_err(Box::new)
    }

    /// The leftmost-first match in `hay` from `at`.
    pub(crate) fn find_at(&self, hay: &[u8], at: usize) -> Option<Match> {
        self.0.search(&Input::new(hay).range(at..))
    }

    /// Whether `hay` holds a match.
    pub(crate) fn is_match(&self, hay: &[u8]) -> bool {
        self.0.is_match(hay)
    }

    /// Room for the pattern's groups.
    pub(crate) fn capture_locations(&self) -> Locs {
        Locs(self.0.create_captures())
    }

    /// The leftmost-first match in `hay` from `at`, its groups in `locs`.
    pub(crate) fn captures_read_at(&self, locs: &mut Locs, hay: &[u8], at: usize) -> Option<Match> {
        self.0
            .search_captures(&Input::new(hay).range(at..), &mut locs.0);
        locs.0.get_match()
    }

    /// The match that starts exactly at `at` in `hay` (leftmost-first among those), its
    /// groups in `locs`.
    pub(crate) fn captures_anchored_at(
        &self,
        locs: &mut Locs,
        hay: &[u8],
        at: usize,
    ) -> Option<Match> {
        let input = Input::new(hay).range(at..).anchored(Anchored::Yes);
        self.0.search_captures(&input, &mut locs.0);
        locs.0.get_match()
    }

    /// The groups' names, by index (`None` for unnamed ones and the whole match).
    pub(crate) fn capture_names(&self) -> impl Iterator<Item = Option<&str>> {
        self.0.group_info().pattern_names(PatternID::ZERO)
    }
}

/// How a regex is built from its pattern text.
pub(crate) type Build<T> = fn(&str) -> Result<T, Box<meta::BuildError>>;

/// A compiled regex, or its pattern text and how to compile it when first used.
///
/// The shipped rule set compiles its ~200 patterns lazily: a short output triggers a few
/// rules, and compiling all of them would be most of `execkit redact`'s start-up. Every
/// shipped pattern is compiled by the test suite, so a lazy compile that fails is a defect
/// in the build, not something input can cause. A rule file the operator gives is compiled
/// eagerly, so a bad pattern is refused when it loads.
#[derive(Debug)]
pub(crate) struct Lazy<T> {
    pattern: Box<str>,
    compiled: OnceLock<T>,
    build: Build<T>,
}

impl<T> Lazy<T> {
    /// Compiled now.
    pub(crate) fn eager(pattern: &str, build: Build<T>) -> Result<Lazy<T>, Box<meta::BuildError>> {
        let compiled = OnceLock::new();
        let _ = compiled.set(build(pattern)?);
        Ok(Lazy {
            pattern: pattern.into(),
            compiled,
            build,
        })
    }

    /// Compiled when first used.
    pub(crate) fn later(pattern: &str, build: Build<T>) -> Lazy<T> {
        Lazy {
            pattern: pattern.into(),
            compiled: OnceLock::new(),
            build,
        }
    }
}

impl<T> std::ops::Deref for Lazy<T> {
    type Target = T;

    // Only the shipped patterns are compiled late, and the suite compiles each of them.
    #[allow(clippy::expect_used)]
    fn deref(&self) -> &T {
        self.compiled.get_or_init(|| {
            (self.build)(&self.pattern).expect("a shipped pattern compiles (tested)")
        })
    }
}

/// The secret groups of a pattern: the indices of its capture groups whose names start
/// with `s`, in order (as the compiled regex numbers them).
pub(crate) fn secret_groups(hir: &regex_syntax::hir::Hir) -> Vec<usize> {
    use regex_syntax::hir::HirKind;
    fn walk(h: &regex_syntax::hir::Hir, out: &mut Vec<usize>) {
        match h.kind() {
            HirKind::Capture(c) => {
                if c.name.as_deref().is_some_and(|n| n.starts_with('s')) {
                    out.push(c.index as usize);
                }
                walk(&c.sub, out);
            }
            HirKind::Concat(parts) | HirKind::Alternation(parts) => {
                parts.iter().for_each(|p| walk(p, out))
            }
            HirKind::Repetition(r) => walk(&r.sub, out),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(hir, &mut out);
    out.sort_unstable();
    out
}
