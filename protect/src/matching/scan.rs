//! Matching a line against the rule set: the keyword scan finds which rules can match
//! and where, each triggered rule's patterns run there (from the keyword occurrences when a
//! pattern is led by one, else by the regex engine over the line), and each match is judged
//! by the rule's filters (placeholders, exclusions, the value gate) before it becomes a hit.
//! Also the multi-line openers, the pair headers, and the plain reference the redactor's
//! fast path is tested against.

use super::keyword_search::{KeywordFind, LineKeywords};
use super::pattern_regex::Locs;
use crate::rules::*;
use regex::bytes::Regex;
use regex_automata::Input;

/// How many x's in a row mask a value (see [`RuleSet::kept`]).
const MASK_RUN: usize = 8;

/// Whether `v` holds [`MASK_RUN`] x's (or X's) in a row. Such a run covers a byte at an
/// index `MASK_RUN - 1` apart from the last one looked at, so only every `MASK_RUN`-th
/// byte is read until an x is found there.
fn masked_by_xs(v: &[u8]) -> bool {
    let mut at = MASK_RUN - 1;
    while at < v.len() {
        let b = v[at];
        if matches!(b, b'x' | b'X') {
            let from = v[..at].iter().rposition(|&c| c != b).map_or(0, |i| i + 1);
            let to = v[at..]
                .iter()
                .position(|&c| c != b)
                .map_or(v.len(), |i| at + i);
            if to - from >= MASK_RUN {
                return true;
            }
        }
        at += MASK_RUN;
    }
    false
}

/// Haystacks up to this many bytes (from where the search starts) are searched by a key-name
/// pattern's lazy DFA alone.
const UNFILTERED_UP_TO: usize = 64;

impl Pattern {
    /// The search from the line's keyword occurrences, from `at`, for a pattern led by a
    /// keyword; [`KeywordFind::Engine`] for any other. `locs`: its capture groups, made
    /// when first needed.
    fn keyword_search(
        &self,
        hay: &[u8],
        at: usize,
        line: LineKeywords,
        locs: &mut Option<Locs>,
    ) -> KeywordFind {
        let Some(led) = &self.led else {
            return KeywordFind::Engine;
        };
        let locs = locs.get_or_insert_with(|| self.re.capture_locations());
        led.find(
            &self.re,
            &self.secret_groups,
            locs,
            hay,
            at,
            self.min_len,
            line,
        )
    }

    /// The leftmost-first match of the pattern in `hay` from `at` (text before `at` still
    /// counts for `^`/`\b`), as `regex`'s `find_at` reports it.
    ///
    /// Why two engines: the key-name patterns are case-insensitive with the key name inside
    /// (`[\w.-]*password…`), so the regex crate picks a prefilter (a Teddy searcher over
    /// the name's case variants) whose fixed cost per search, ~1–2k instructions, exceeds
    /// the lazy DFA's walk over a whole short line; the keyword scan has already found the
    /// name in that line, so the prefilter skips nothing there. Searching lines of at most
    /// `UNFILTERED_UP_TO` bytes without it takes about 4% off secret-dense redaction's
    /// instructions per byte and leaves the build log's unchanged; a longer limit, or every
    /// pattern without a prefilter, costs the build log up to 2% more. Both engines are
    /// `regex-automata`'s meta regex on the same syntax: the same matches, which a test
    /// checks from every start on every rule example.
    fn find_at(&self, hay: &[u8], at: usize) -> Option<Range> {
        match &self.unfiltered {
            Some(re) if hay.len().saturating_sub(at) <= UNFILTERED_UP_TO => re
                .search(&Input::new(hay).range(at..))
                .map(|m| (m.start(), m.end())),
            _ => self.re.find_at(hay, at).map(|m| (m.start(), m.end())),
        }
    }

    /// Calls `f` with every match in `hay` as the capture engine iterates them (each
    /// leftmost-first from the end of the previous one), where the search for it started,
    /// and its capture groups; stops at `f`'s first error.
    fn engine_matches<E>(
        &self,
        hay: &[u8],
        mut f: impl FnMut(usize, Range, &Locs) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut locs = self.re.capture_locations();
        let mut at = 0;
        while at <= hay.len() {
            let Some(w) = self.re.captures_read_at(&mut locs, hay, at) else {
                break;
            };
            let whole = (w.start(), w.end());
            f(at, whole, &locs)?;
            at = whole.1.max(whole.0 + 1);
        }
        Ok(())
    }
}

impl RuleSet {
    /// Every keyword occurrence in `hay` (overlapping), as (start, end, keyword index).
    /// Occurrences of a case-sensitive keyword searched by a finder that overlap the
    /// previous one of the same keyword (a run of `AAAA…`) are reported once: the rule's
    /// window around the first covers them.
    pub(crate) fn keyword_hits(&self, hay: &[u8], out: &mut Vec<(usize, usize, usize)>) {
        self.keywords.overlapping(hay, out);
        let insensitive = out.len();
        for i in 0..insensitive {
            let (start, end, k) = out[i];
            for &j in self.twins_cs.get(k).map_or(&[][..], Vec::as_slice) {
                if hay.get(start..end) == Some(self.keyword_text(j)) {
                    out.push((start, end, j));
                }
            }
        }
        if self.twins_added {
            // A twin added for an exact keyword triggers no rule: its hits are dropped (a
            // pattern's keyword's are kept, for the pattern's check).
            out.retain(|&(_, _, k)| {
                let info = &self.keyword_info[k];
                !info.owners.is_empty() || info.needed
            });
        }
        for (j, f) in &self.keywords_cs {
            // Non-overlapping: a run of the keyword is reported every keyword length.
            let len = f.needle().len();
            for at in f.find_iter(hay) {
                out.push((at, at + len, *j));
            }
        }
    }

    /// Where keywords found in `hay[from..]` sit on lines that open a secret spanning lines
    /// (a PEM private key header, a Kubernetes `data:` block), as the redactor would see
    /// them: the first such keyword of each such line, in order. A line cut at the end of
    /// `hay` is judged as it is so far (it may open one: that is enough). Each line is
    /// judged once, however many keywords it holds (a long line of `data:` repeated would
    /// otherwise be searched once per keyword).
    pub(crate) fn multiline_openers(&self, hay: &[u8], from: usize) -> Vec<usize> {
        let mut found = Vec::new();
        if let Some(rest) = hay.get(from..) {
            self.multiline.overlapping(rest, &mut found);
        }
        let mut openers = Vec::new();
        let mut triggered = Vec::new();
        let mut i = 0;
        while i < found.len() {
            let start = from + found[i].0;
            let ls = memchr::memrchr(b'\n', &hay[..start]).map_or(0, |i| i + 1);
            let le = memchr::memchr(b'\n', &hay[start..]).map_or(hay.len(), |i| start + i);
            // The line's keywords, each rule they trigger judged once.
            triggered.clear();
            while i < found.len() && from + found[i].0 < le.max(start + 1) {
                triggered.push(self.multiline_owner[found[i].2]);
                i += 1;
            }
            if self.special_opens(&hay[ls..le], &mut triggered) {
                openers.push(start);
            }
        }
        openers
    }

    /// Whether `line` (a whole line) opens a secret spanning lines, as
    /// [`RuleSet::multiline_openers`] judges a line; `scratch` is reused between calls.
    pub(crate) fn opens_multiline(
        &self,
        line: &[u8],
        scratch: &mut Vec<(usize, usize, usize)>,
    ) -> bool {
        scratch.clear();
        self.multiline.overlapping(line, scratch);
        let mut triggered: Vec<usize> = scratch
            .iter()
            .map(|&(_, _, k)| self.multiline_owner[k])
            .collect();
        self.special_opens(line, &mut triggered)
    }

    /// Whether a rule for secrets spanning lines among `triggered` (the rules whose
    /// keywords the line holds, as the redactor runs them) opens one on `line`: a PEM
    /// header anywhere, a k8s-data or pair header with or without a listing's prefix.
    /// Only those: searching every such rule's header, a cargo line's `extra-filename=` (a
    /// pair's keyword) would have the k8s header searched before its `metadata=`, a regex
    /// run per punctuation mark (17% of the 1 GiB pipeline's throughput).
    fn special_opens(&self, line: &[u8], triggered: &mut Vec<usize>) -> bool {
        triggered.sort_unstable();
        triggered.dedup();
        triggered.iter().any(|&i| match self.rules[i].special {
            Special::None => false,
            Special::K8sData | Special::NameValue | Special::SecretScalar => {
                self.header_at(i, line).is_some()
            }
            Special::Pem => self.rules[i].patterns.iter().any(|p| p.re.is_match(line)),
        })
    }

    /// The rules a keyword triggers, in the order the rule file lists them.
    pub(crate) fn keyword_owners(&self, k: usize) -> &[usize] {
        &self.keyword_info[k].owners
    }

    /// Runs rule `r` on the part of `line` around a keyword at `at..at_end`; hits are
    /// relative to the line. `prior`, when given, holds hits already found on this line by
    /// earlier runs (see [`RuleSet::run_rule`]); `line_kws`, every keyword occurrence on
    /// the line. Returns the end of the window searched (the line's end once an anchored
    /// rule has run: it need not run again on this line).
    pub(crate) fn run_rule_near(
        &self,
        r: usize,
        line: &[u8],
        (at, at_end): (usize, usize),
        hits: &mut Vec<Hit>,
        prior: Option<&[Hit]>,
        line_kws: Option<LineKeywords>,
    ) -> usize {
        let anchored = self.rules[r].anchored;
        // A match of an anchored rule (or of a branch that starts with `^`) starts at the
        // line's start, however far before the keyword (an indented `.env` line);
        // elsewhere the search starts 256 bytes before.
        let start = if anchored || self.rules[r].line_start {
            0
        } else {
            at.saturating_sub(BEFORE)
        };
        let end = (at_end + AFTER).min(line.len());
        let before = hits.len();
        let reached_end = self.run_rule(r, &line[..end], start, hits, prior, line_kws);
        if end < line.len() && reached_end {
            // A match cut by the window's end, whether or not it gave a hit (its value
            // may be judged differently whole, and a hit's end is capped): search the
            // whole rest of the line.
            hits.truncate(before);
            self.run_rule(r, line, start, hits, prior, line_kws);
            return line.len();
        }
        if anchored {
            // The one place a match can start has been searched, and a match running past
            // the window's end would have sent the search over the whole line: later
            // keywords on this line need not run the rule again.
            return line.len();
        }
        end
    }

    pub(crate) fn pem_end(&self) -> &Regex {
        &self.pem_end
    }

    /// Runs every rule whose keyword occurs in `line` and reports the secrets found.
    pub(crate) fn scan_line(&self, line: &[u8], hits: &mut Vec<Hit>) {
        let mut kws = Vec::new();
        self.keyword_hits(line, &mut kws);
        if kws.is_empty() {
            return;
        }
        let mut triggered: Vec<usize> = kws
            .iter()
            .flat_map(|&(_, _, k)| self.keyword_info[k].owners.iter().copied())
            .collect();
        triggered.sort_unstable();
        triggered.dedup();
        kws.sort_unstable();
        let line_kws = LineKeywords {
            hits: &kws,
            offset: 0,
        };
        for r in triggered {
            self.run_rule(r, line, 0, hits, None, Some(line_kws));
        }
    }

    /// Runs rule `r` over `hay` from `from` (text before `from` still counts for `^`/`\b`).
    /// Returns whether a match ended at the end of `hay`. `line_kws`, when given, holds
    /// every keyword occurrence on the line `hay` starts (see [`crate::matching::keyword_search`]).
    ///
    /// With `prior` given (hits of earlier runs on the same line, same offsets), a match
    /// whose redaction a hit already found on this line covers ([`Hit::covers`]: within it,
    /// and not the one whose rule would label the merged span) — a hit of this run or in
    /// `prior` — is not judged (placeholder, exclusions, value gate): kept or not, it cannot
    /// change what is written. Two patterns of `authorization-header`, or `dotenv-secret`
    /// and `credential-assignment` on one `.env` line, find the same value; the gate, ~1.7k
    /// instructions, would run on it twice. Each match is compared with every hit before it, so
    /// the redactor gives `prior` only on short lines ([`windows_cover`]): on a long line
    /// of many secrets the comparisons would grow with the square of their number.
    fn run_rule(
        &self,
        r: usize,
        hay: &[u8],
        from: usize,
        hits: &mut Vec<Hit>,
        prior: Option<&[Hit]>,
        line_kws: Option<LineKeywords>,
    ) -> bool {
        let rule = &self.rules[r];
        let mut reached_end = false;
        let own = hits.len(); // hits before this are not this line's (see `scan_line`)
        if matches!(
            rule.special,
            Special::K8sData | Special::NameValue | Special::SecretScalar
        ) {
            return reached_end; // handled line by line by the redactor
        }
        for p in &rule.patterns {
            // A pattern whose matches hold keywords the rest of the haystack lacks.
            if p.needs
                .as_ref()
                .is_some_and(|n| !n.found(hay, from, line_kws))
            {
                continue;
            }
            let mut at = from;
            // Capture groups made when first needed, then reused for every match.
            let mut locs = None;
            // A match needs `min_len` bytes: none fits in a shorter rest (most often the
            // empty rest after a value that ends the line).
            while at <= hay.len() && hay.len() - at >= p.min_len {
                // (Not before the first search: a keyword of the rule triggered it.)
                if at > from
                    && rule.keywords_in_matches
                    && line_kws.is_some_and(|kws| !self.keyword_left(r, kws, at, hay.len()))
                {
                    break;
                }
                let led = match line_kws {
                    Some(kws) => p.keyword_search(hay, at, kws, &mut locs),
                    None => KeywordFind::Engine,
                };
                let (whole, group) = match led {
                    KeywordFind::Found(whole, group) => (whole, group),
                    KeywordFind::None => break,
                    KeywordFind::Engine if p.secret_groups.is_empty() => {
                        let Some(whole) = p.find_at(hay, at) else {
                            break;
                        };
                        (whole, None)
                    }
                    KeywordFind::Engine => {
                        let Some(found) = self.secret_group(p, hay, at, &mut locs) else {
                            break;
                        };
                        found
                    }
                };
                reached_end |= whole.1 == hay.len();
                let candidate = if p.secret_groups.is_empty() {
                    Hit::of(whole, r)
                } else {
                    group.and_then(|g| Hit::of(g, r))
                };
                // A PEM key's hit becomes a span running on to its end marker: always judged.
                let redundant = match (prior, candidate) {
                    (Some(prior), Some(c)) if rule.special != Special::Pem => {
                        prior.iter().chain(&hits[own..]).any(|h| h.covers(&c))
                    }
                    _ => false,
                };
                if !redundant {
                    let m = self.kept(rule, p, hay, whole, group);
                    hits.extend(m.and_then(|m| Hit::of(m, r)));
                }
                at = whole.1.max(whole.0 + 1);
            }
        }
        reached_end
    }

    /// Whether one of rule `r`'s keywords occurs within `from..to` of the line `line`
    /// holds: where none does, no match of its patterns lies there.
    fn keyword_left(&self, r: usize, line: LineKeywords, from: usize, to: usize) -> bool {
        let (from, to) = (line.offset + from, line.offset + to);
        let first = line.hits.partition_point(|h| h.0 < from);
        line.hits[first..]
            .iter()
            .any(|&(_, end, k)| end <= to && self.keyword_info[k].owners.contains(&r))
    }

    /// What a match of `p` (a rule's pattern) redacts after the rule's filters: the whole
    /// match for a pattern without secret groups unless an exclusion takes it; else the
    /// secret group that took part, unless it is a placeholder, an exclusion takes the
    /// match or the value gate turns it down.
    fn kept(
        &self,
        rule: &Rule,
        p: &Pattern,
        hay: &[u8],
        whole: Range,
        group: Option<Range>,
    ) -> Option<Range> {
        let excluded = || {
            rule.exclude
                .iter()
                .any(|x| x.is_match(&hay[whole.0..whole.1]))
        };
        // A run of x's masks a value in documentation (`AKIAXXXXXXXXXXXXXXXX`,
        // `sk_test_xxxxxxxxxxxxxxxx`), whatever rule finds it.
        let masked = |(s, e): Range| masked_by_xs(&hay[s..e]);
        if p.secret_groups.is_empty() {
            return (!excluded() && !masked(whole)).then_some(whole);
        }
        group
            .filter(|&(s, e)| {
                // Judged without the mark `cat -A` ends a line with (`<api-key>^M$`).
                let v = if e == hay.len() {
                    strip_line_end_mark(&hay[s..e]).0
                } else {
                    &hay[s..e]
                };
                !(rule.placeholders && self.is_placeholder(v))
            })
            .filter(|_| !excluded())
            .filter(|&m| !masked(m))
            .filter(|&m| match &rule.gate {
                Some(g) => crate::rules::value_gate::admits(&self.values, g, hay, whole, m),
                None => true,
            })
    }

    /// The next match of `p` in `hay` from `at` and its first secret group that took
    /// part, by the capture engine.
    fn secret_group(
        &self,
        p: &Pattern,
        hay: &[u8],
        at: usize,
        locs: &mut Option<Locs>,
    ) -> Option<(Range, Option<Range>)> {
        let locs = locs.get_or_insert_with(|| p.re.capture_locations());
        let w = p.re.captures_read_at(locs, hay, at)?;
        let group = p.secret_groups.iter().find_map(|&g| locs.get(g));
        Some(((w.start(), w.end()), group))
    }

    /// The fuzzing oracle for the searches from keyword occurrences
    /// ([`crate::matching::keyword_search`]): on `hay`, for every pattern searched that way and every
    /// start (every byte for texts up to 512 bytes, else where the engine's iteration
    /// searches from), the search finds the capture engine's leftmost-first match and its
    /// group, or no match where the engine finds none (a walk that gives up is skipped:
    /// the engine decides then). Returns how many searches were compared.
    #[doc(hidden)]
    pub fn led_searches_agree(&self, hay: &[u8]) -> Result<usize, String> {
        let mut kws = Vec::new();
        self.keyword_hits(hay, &mut kws);
        kws.sort_unstable();
        let line = LineKeywords {
            hits: &kws,
            offset: 0,
        };
        let mut compared = 0;
        for rule in &self.rules {
            for p in &rule.patterns {
                if p.led.is_none() {
                    continue;
                }
                let mut starts: Vec<usize> = Vec::new();
                if hay.len() <= 512 {
                    starts.extend(0..=hay.len());
                } else {
                    p.engine_matches(hay, |at, _, _| {
                        starts.push(at);
                        Ok::<(), ()>(())
                    })
                    .ok();
                    starts.push(0);
                }
                let mut locs = p.re.capture_locations();
                let mut own = None;
                for at in starts {
                    let engine = p.re.captures_read_at(&mut locs, hay, at).map(|w| {
                        let group = p.secret_groups.iter().find_map(|&g| locs.get(g));
                        ((w.start(), w.end()), group)
                    });
                    let found = p.keyword_search(hay, at, line, &mut own);
                    let agrees = match (found, engine) {
                        (KeywordFind::Engine, _) => continue,
                        (KeywordFind::None, None) => true,
                        (KeywordFind::Found(w, g), Some((ew, eg))) => w == ew && g == eg,
                        _ => false,
                    };
                    if !agrees {
                        return Err(format!(
                            "{}: from {at} of {:?}: engine {engine:?}, keyword search {found:?}",
                            rule.id,
                            String::from_utf8_lossy(hay)
                        ));
                    }
                    compared += 1;
                }
            }
        }
        Ok(compared)
    }

    /// What the rules find on one line the plain way, the reference for the redactor's
    /// fast path: every rule with a keyword anywhere on the line (found by substring
    /// search) runs each pattern over the whole line with the capture engine, matches
    /// taken leftmost-first as the regex crate iterates them, under the same filters
    /// (placeholders, exclusions, the value gate, the length cap). Rules for secrets that
    /// span lines are left out (the redactor's state machines handle them).
    ///
    /// The fast path (the keyword automaton, windows around keywords, a rule run once per
    /// reach, searches from keyword occurrences, searches without a prefilter) must find the
    /// same: see `Redactor::redact_reference` and the differential tests.
    pub(crate) fn reference_line_hits(&self, line: &[u8], hits: &mut Vec<Hit>) {
        let lower = line.to_ascii_lowercase();
        let holds = |hay: &[u8], k: &[u8]| memchr::memmem::find(hay, k).is_some();
        for (r, (rule, spec)) in self.rules.iter().zip(&self.specs).enumerate() {
            let keyed = spec
                .keywords
                .iter()
                .any(|k| holds(&lower, k.to_ascii_lowercase().as_bytes()))
                || spec.keywords_cs.iter().any(|k| holds(line, k.as_bytes()));
            if rule.special != Special::None || !keyed {
                continue;
            }
            for p in &rule.patterns {
                let found = p.engine_matches(line, |_, whole, locs| {
                    let group = p.secret_groups.iter().find_map(|&g| locs.get(g));
                    hits.extend(
                        self.kept(rule, p, line, whole, group)
                            .and_then(|m| Hit::of(m, r)),
                    );
                    Ok::<(), std::convert::Infallible>(())
                });
                let Ok(()) = found;
            }
        }
    }

    /// Whether the header pattern of rule `r` (a k8s-data block's `data:`, a name/value
    /// pair's `- name: DB_PASSWORD`, a secret's block scalar `password: |`) matches this
    /// line.
    pub(crate) fn header(&self, r: usize, line: &[u8]) -> bool {
        matches!(
            self.rules[r].special,
            Special::K8sData | Special::NameValue | Special::SecretScalar
        ) && self.rules[r].patterns.iter().any(|p| p.re.is_match(line))
    }

    /// Where the header of rule `r` (see [`RuleSet::header`]) starts on `line`: 0 when the
    /// line is one, else after a prefix that every line of a numbered or quoted listing
    /// carries (`     3\t` from `cat -n`, `3:` or `3-` from `grep -n`, `> `): the shortest
    /// such prefix, ending in a blank or punctuation and followed by no blank (the header's
    /// own indentation joins the prefix), before the line's first header word (`data`,
    /// `stringData`; `name`, `key`, `-`, `{`, `"` for a pair), after which the rest is a
    /// header. Each try starts at a non-blank byte, so it fails at once unless it reads
    /// the header: the search stays linear in the line (trying after every blank re-read
    /// the blanks that follow, the square of a long run of them).
    pub(crate) fn header_at(&self, r: usize, line: &[u8]) -> Option<usize> {
        // A pair's header as `cat -A` shows it is read without the mark its line ends in
        // (a k8s-data header's pattern allows the mark itself).
        let line = match self.rules[r].special {
            Special::NameValue | Special::SecretScalar => strip_line_end_mark(line).0,
            _ => line,
        };
        if self.rules[r].special == Special::NameValue
            && !pair_header_shape(line)
            && !object_header_shape(line)
        {
            return None;
        }
        if self.header(r, line) {
            return Some(0);
        }
        let word = match self.rules[r].special {
            Special::K8sData => [b"data".as_slice(), b"stringData"]
                .iter()
                .filter_map(|w| memchr::memmem::find(line, w))
                .min()?,
            // A pair's header starts with a list item's dash, a brace, a quote or its key
            // (`name`, `key`, `ParameterKey`).
            Special::NameValue => line.iter().position(|b| {
                matches!(
                    b.to_ascii_lowercase(),
                    b'-' | b'{' | b'"' | b'\'' | b'n' | b'k' | b'p'
                )
            })?,
            // A block scalar's key starts with a list item's dash, a quote, a letter or `_`
            // (not a digit: a listing's line number).
            Special::SecretScalar => line.iter().position(|&b| {
                matches!(b, b'-' | b'"' | b'\'' | b'_') || b.is_ascii_alphabetic()
            })?,
            _ => return None,
        };
        (1..=word).find(|&j| {
            matches!(
                line[j - 1],
                b'\t' | b' ' | b':' | b'-' | b'>' | b']' | b'|' | b')'
            ) && !matches!(line[j], b' ' | b'\t')
                && self.header(r, &line[j..])
        })
    }

    /// The part of `raw` (a pair's value as written, quotes and all) that the rules
    /// redact when the pair is written as the assignment it stands for, `NAME: RAW` on a
    /// line of its own: `- name: DB_PASSWORD` / `value: hunter2` is judged as the config
    /// line `DB_PASSWORD: hunter2` (by `password-assignment` there).
    pub(crate) fn judge_pair(&self, name: &str, raw: &[u8]) -> Option<Range> {
        let mut line = Vec::with_capacity(name.len() + raw.len() + 2);
        // A path-like name (`/prod/db/password`, AWS parameters) is one key.
        line.extend(name.bytes().map(|b| if b == b'/' { b'_' } else { b }));
        line.extend_from_slice(b": ");
        let at = line.len();
        line.extend_from_slice(raw);
        let mut hits = Vec::new();
        self.scan_line(&line, &mut hits);
        hits.iter()
            .filter(|h| h.start >= at)
            .map(|h| (h.start - at, h.end - at))
            .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)))
    }

    pub(crate) fn is_placeholder(&self, v: &[u8]) -> bool {
        v.first()
            .is_none_or(|&b| self.placeholder_starts[usize::from(b)])
            && self.placeholder.is_match(v)
    }

    /// Indices of rules with a special handler of this kind.
    pub(crate) fn special_rules(&self, kind: Special) -> Vec<usize> {
        (0..self.rules.len())
            .filter(|&i| self.rules[i].special == kind)
            .collect()
    }
}

#[cfg(test)]
mod mask_tests {
    use super::*;

    proptest::proptest! {
        /// The strided look finds a run of x's exactly where a plain scan of every window does.
        #[test]
        fn a_masking_run_is_found_as_every_window_finds_it(v in "[xXa]{0,40}") {
            let b = v.as_bytes();
            let plain = b
                .windows(MASK_RUN)
                .any(|w| w.iter().all(|&c| c == b'x') || w.iter().all(|&c| c == b'X'));
            proptest::prop_assert_eq!(masked_by_xs(b), plain);
        }
    }
}
