//! Proof that a rule's keywords cover its patterns: every text a pattern can match holds
//! one of the rule's keywords.
//!
//! Why: the redactor runs a rule only on lines where the keyword scan found one of the
//! rule's keywords (see [`crate::rules`]). A pattern that can match text holding none of
//! them finds a secret the scan never lets it see: `credential-assignment` matches
//! `minio.access.key: 4OE510RT1Q5C25W6B4K8`, so keywords of `access_key`, `accesskey` and
//! `access-key` alone would miss the dotted spelling the pattern allows, and the value would
//! show. Rule examples cannot show such a gap (each example is written with a keyword in
//! it), so every pattern is checked against its keywords by automata instead.
//!
//! How: the pattern with its assertions (`^`, `$`, `\b`, `\B`) taken out matches a superset
//! of the texts it matches in any context. Its anchored DFA (reporting every match) is
//! walked in step with the anchored DFA of "holds a keyword", `(?s:.)*(?:kw|…)(?s:.)*` with
//! each keyword ASCII-case-insensitive unless it is a case-sensitive one. A pair of states
//! reached by a text that the pattern matches whole, while no keyword has occurred yet, is
//! a counterexample: the shortest such text is returned as the witness. Pairs where the
//! pattern can match no more, or where a keyword has occurred (every longer text holds it
//! too), are not walked further. Bytes are walked by class (one byte for each pair of the
//! two DFAs' byte classes).

use regex_automata::hybrid::{self, LazyStateID};
use regex_automata::nfa::thompson;
use regex_automata::util::start;
use regex_automata::{Anchored, MatchKind};
use regex_syntax::hir::{Capture, Hir, HirKind, Repetition};
use std::collections::{HashMap, HashSet, VecDeque};

/// State pairs walked before giving up: far above what the shipped rules need (the
/// largest walks a few thousand), and a bound on the time a rule file can cost.
const PAIR_LIMIT: usize = 1_000_000;
/// Bytes of states a lazy DFA built for the check may hold.
const CACHE_LIMIT: usize = 64 << 20;

/// Why a pattern is not known to be covered by its rule's keywords.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoverError {
    /// The pattern matches this text, which holds none of the keywords.
    #[error("matches {witness:?}, which holds none of the rule's keywords")]
    Uncovered {
        /// The shortest such text (bytes shown as UTF-8, lossily).
        witness: String,
    },
    /// The pattern or the keyword automaton could not be built for the check.
    #[error("cannot be checked: {0}")]
    Unbuildable(String),
    /// The walk passed [`PAIR_LIMIT`] state pairs, or a DFA's states filled their cache,
    /// before an answer.
    #[error(
        "cannot be checked: more than {PAIR_LIMIT} state pairs or {CACHE_LIMIT} bytes of states"
    )]
    TooLarge,
}

/// Checks that every text `pattern` matches holds one of the keywords (`insensitive`
/// matched ASCII-case-insensitively, `sensitive` exactly).
///
/// ```
/// use execkit_protect::keyword_cover::{covers, CoverError};
/// let kws = ["access_key".to_string(), "access-key".to_string()];
/// assert_eq!(covers(r"(?i)access[_\-]key=\w+", &kws, &[]), Ok(()));
/// assert_eq!(
///     covers(r"(?i)access[_\-.]key=\w+", &kws, &[]),
///     Err(CoverError::Uncovered { witness: "access.key=a".into() })
/// );
/// ```
pub fn covers(
    pattern: &str,
    insensitive: &[String],
    sensitive: &[String],
) -> Result<(), CoverError> {
    let hir = crate::matching::pattern_regex::parse(pattern)
        .ok_or_else(|| CoverError::Unbuildable(format!("pattern {pattern:?} does not parse")))?;
    covers_hir(&hir, insensitive, sensitive)
}

/// [`covers`] for a pattern already parsed.
fn covers_hir(hir: &Hir, insensitive: &[String], sensitive: &[String]) -> Result<(), CoverError> {
    let mut matches = dfa(&without_assertions(hir))?;
    let mut holds = dfa(&holds_keyword(insensitive, sensitive)?)?;
    walk(&mut matches, &mut holds)
}

/// The pattern with every assertion replaced by the empty match (and groups dropped).
fn without_assertions(h: &Hir) -> Hir {
    match h.kind() {
        HirKind::Look(_) => Hir::empty(),
        HirKind::Empty | HirKind::Literal(_) | HirKind::Class(_) => h.clone(),
        HirKind::Capture(Capture { sub, .. }) => without_assertions(sub),
        HirKind::Repetition(r) => Hir::repetition(Repetition {
            sub: Box::new(without_assertions(&r.sub)),
            ..r.clone()
        }),
        HirKind::Concat(parts) => Hir::concat(parts.iter().map(without_assertions).collect()),
        HirKind::Alternation(alts) => {
            Hir::alternation(alts.iter().map(without_assertions).collect())
        }
    }
}

/// `(?s:.)*(?:kw|…)(?s:.)*`: the texts that hold a keyword.
fn holds_keyword(insensitive: &[String], sensitive: &[String]) -> Result<Hir, CoverError> {
    let words: Vec<String> = insensitive
        .iter()
        .map(|k| format!("(?i:{})", regex_syntax::escape(k)))
        .chain(sensitive.iter().map(|k| regex_syntax::escape(k)))
        .collect();
    if words.is_empty() {
        return Err(CoverError::Unbuildable("the rule has no keywords".into()));
    }
    let any = "(?s:.)*";
    let pattern = format!("{any}(?:{}){any}", words.join("|"));
    crate::matching::pattern_regex::parse(&pattern)
        .ok_or_else(|| CoverError::Unbuildable(format!("keywords {pattern:?} do not parse")))
}

/// A lazy DFA reporting every match of `hir`: states are built only as the walk reaches
/// them (a dense DFA of the key-name patterns' counted repetitions is too large to build
/// whole, and the walk stops at the first keyword, long before most of it).
fn dfa(hir: &Hir) -> Result<Lazy, CoverError> {
    let nfa = thompson::Compiler::new()
        .configure(
            thompson::Config::new()
                .utf8(false)
                .which_captures(thompson::WhichCaptures::None),
        )
        .build_from_hir(hir)
        .map_err(|e| CoverError::Unbuildable(e.to_string()))?;
    let dfa = hybrid::dfa::DFA::builder()
        .configure(
            hybrid::dfa::DFA::config()
                .match_kind(MatchKind::All)
                .cache_capacity(CACHE_LIMIT),
        )
        .build_from_nfa(nfa)
        .map_err(|e| CoverError::Unbuildable(e.to_string()))?;
    let cache = dfa.create_cache();
    Ok(Lazy { dfa, cache })
}

/// A lazy DFA and its cache of built states.
struct Lazy {
    dfa: hybrid::dfa::DFA,
    cache: hybrid::dfa::Cache,
}

impl Lazy {
    fn start(&mut self) -> Result<LazyStateID, CoverError> {
        let anchored = start::Config::new().anchored(Anchored::Yes);
        self.dfa
            .start_state(&mut self.cache, &anchored)
            .map_err(|e| CoverError::Unbuildable(e.to_string()))
    }

    /// The state after `b`. A cleared cache would make the states held so far
    /// meaningless: the walk gives up then.
    fn next(&mut self, s: LazyStateID, b: u8) -> Result<LazyStateID, CoverError> {
        let next = self.dfa.next_state(&mut self.cache, s, b);
        self.checked(next)
    }

    /// Whether a match ends where the text ends.
    fn ends_match(&mut self, s: LazyStateID) -> Result<bool, CoverError> {
        let eoi = self.dfa.next_eoi_state(&mut self.cache, s);
        Ok(self.checked(eoi)?.is_match())
    }

    fn checked(
        &self,
        s: Result<LazyStateID, hybrid::CacheError>,
    ) -> Result<LazyStateID, CoverError> {
        match s {
            Ok(s) if self.cache.clear_count() == 0 && !s.is_quit() => Ok(s),
            _ => Err(CoverError::TooLarge),
        }
    }
}

type Pair = (LazyStateID, LazyStateID);

/// Walks both DFAs in step from their starts, breadth first (see the module docs).
fn walk(matches: &mut Lazy, holds: &mut Lazy) -> Result<(), CoverError> {
    let first = (matches.start()?, holds.start()?);
    // One byte for each pair of byte classes: letters, digits and punctuation first, so a
    // witness reads as text where it can.
    let mut bytes = Vec::new();
    let mut seen_classes = HashSet::new();
    let readable = (b'a'..=b'z')
        .chain(b'A'..=b'Z')
        .chain(b'0'..=b'9')
        .chain(b' '..=b'~');
    for b in readable.chain(0..=255u8) {
        let classes = (
            matches.dfa.byte_classes().get(b),
            holds.dfa.byte_classes().get(b),
        );
        if seen_classes.insert(classes) {
            bytes.push(b);
        }
    }
    // Each pair reached, with the pair and byte it was first reached from.
    let mut from: HashMap<Pair, Option<(Pair, u8)>> = HashMap::from([(first, None)]);
    let mut queue = VecDeque::from([first]);
    while let Some(pair @ (m, h)) = queue.pop_front() {
        if holds.ends_match(h)? {
            continue; // a keyword has occurred
        }
        if matches.ends_match(m)? {
            return Err(CoverError::Uncovered {
                witness: witness(&from, pair),
            });
        }
        for &b in &bytes {
            let next = (matches.next(m, b)?, holds.next(h, b)?);
            if next.0.is_dead() || from.contains_key(&next) {
                continue;
            }
            if from.len() >= PAIR_LIMIT {
                return Err(CoverError::TooLarge);
            }
            from.insert(next, Some((pair, b)));
            queue.push_back(next);
        }
    }
    Ok(())
}

/// The text that first reached `pair`.
fn witness(from: &HashMap<Pair, Option<(Pair, u8)>>, mut pair: Pair) -> String {
    let mut text = Vec::new();
    while let Some(Some((prev, b))) = from.get(&pair) {
        text.push(*b);
        pair = *prev;
    }
    text.reverse();
    String::from_utf8_lossy(&text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kw(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    /// The witness for `pattern`, checked: the pattern matches all of it (these patterns'
    /// assertions hold at a text's edges) and it holds none of the keywords.
    fn witness_of(pattern: &str, insensitive: &[&str], sensitive: &[&str]) -> String {
        let Err(CoverError::Uncovered { witness }) =
            covers(pattern, &kw(insensitive), &kw(sensitive))
        else {
            panic!("{pattern}: no witness");
        };
        let whole = regex::bytes::RegexBuilder::new(&format!("^(?:{pattern})$"))
            .unicode(false)
            .build()
            .unwrap();
        assert!(whole.is_match(witness.as_bytes()), "{pattern}: {witness:?}");
        let lower = witness.to_ascii_lowercase();
        assert!(
            !insensitive.iter().any(|k| lower.contains(k)),
            "{witness:?}"
        );
        assert!(
            !sensitive.iter().any(|k| witness.contains(k)),
            "{witness:?}"
        );
        witness
    }

    #[test]
    fn a_pattern_that_always_holds_a_keyword_is_covered() {
        assert_eq!(
            covers(r"\bghp_[A-Za-z0-9]{36}\b", &kw(&["ghp_"]), &[]),
            Ok(())
        );
        // Case-insensitive keywords cover every case of a case-insensitive pattern.
        assert_eq!(
            covers(r"(?i)password\s*=\s*\S+", &kw(&["password"]), &[]),
            Ok(())
        );
        // Each alternative holds its own keyword.
        assert_eq!(
            covers(r"(?:xoxb|xoxp)-[0-9]+", &kw(&["xoxb-", "xoxp-"]), &[]),
            Ok(())
        );
    }

    #[test]
    fn a_spelling_the_keywords_miss_is_the_witness() {
        assert_eq!(
            witness_of(r"(?i)token|secret=\S+", &["token"], &[]),
            "secret=a"
        );
        // An optional part the keyword needs.
        assert_eq!(witness_of(r"api_?key=\S+", &["api_key"], &[]), "apikey=a");
        // A repetition that may be empty.
        assert_eq!(witness_of(r"(?:key)*=\d", &["key"], &[]), "=0");
    }

    #[test]
    fn case_sensitive_keywords_do_not_cover_other_cases() {
        assert_eq!(covers(r"AKIA[A-Z0-9]{4}", &[], &kw(&["AKIA"])), Ok(()));
        let w = witness_of(r"(?i)AKIA[A-Z0-9]{4}", &[], &["AKIA"]);
        assert_eq!(w.len(), 8, "{w:?}");
    }

    #[test]
    fn assertions_do_not_hide_a_gap() {
        // Without its assertions a pattern matches more, and that must hold a keyword.
        assert_eq!(witness_of(r"^\b(?:key|pin)\b=\d+", &["key"], &[]), "pin=0");
        // An assertion that no text passes still does not count as a keyword.
        assert!(matches!(
            covers(r"a\bb|key", &kw(&["key"]), &[]),
            Err(CoverError::Uncovered { witness }) if witness == "ab"
        ));
    }

    #[test]
    fn a_keyword_may_straddle_the_patterns_parts() {
        assert_eq!(
            covers(r"(?i)api(?:_|-)key", &kw(&["i_k", "i-k"]), &[]),
            Ok(())
        );
        assert_eq!(
            witness_of(r"(?i)api(?:_|-|\.)key", &["i_k", "i-k"], &[]),
            "api.key"
        );
    }

    #[test]
    fn the_shipped_rules_patterns_hold_their_keywords() {
        let set = crate::RuleSet::builtin();
        let mut gaps = Vec::new();
        for spec in set.specs() {
            for (i, p) in spec.patterns.iter().enumerate() {
                if !spec.keywords_are_context {
                    if let Err(e) = covers(p, &spec.keywords, &spec.keywords_cs) {
                        gaps.push(format!("{} pattern {i}: {e}", spec.id));
                    }
                }
                // A pattern's own keywords, when given, hold in each of its matches too
                // (whatever the rule's are: the pattern is not searched without them).
                match spec.pattern_keywords.get(i) {
                    Some(k) if !k.ci.is_empty() || !k.cs.is_empty() => {
                        if let Err(e) = covers(p, &k.ci, &k.cs) {
                            gaps.push(format!("{} pattern {i}'s own keywords: {e}", spec.id));
                        }
                    }
                    _ => {}
                }
            }
        }
        assert!(gaps.is_empty(), "{}", gaps.join("\n"));
    }

    #[test]
    fn no_keywords_cannot_be_checked() {
        assert!(matches!(
            covers("x", &[], &[]),
            Err(CoverError::Unbuildable(_))
        ));
    }
}
