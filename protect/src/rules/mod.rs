//! The secret rule set: families of secrets, each a keyword prefilter plus confirming
//! regexes, loaded from `engine/rules/secrets.toml` (or any file of the same shape).
//!
//! Why a keyword prefilter: running 100+ regexes over every byte of output is slow (a
//! `RegexSet` of this size runs at well under 1 MB/s). One Aho-Corasick pass finds the few
//! lines where a keyword occurs; only the rules owning those keywords run, and only on
//! those lines. Regexes are compiled for bytes with Unicode off, which is 20–70× faster and
//! matches the ASCII shapes of real tokens.

pub mod keyword_cover;
pub(crate) mod value_gate;
pub(crate) mod vocabulary;

use crate::matching::keyword_dfa::{KeywordDfa, KeywordDfaError};
use crate::matching::keyword_search::{Led, LineKeywords};
use crate::matching::pattern_regex::{Lazy, PatternRegex};
use crate::rules::value_gate::{GateSpec, ValueLists, ValueListsSpec};
use regex::bytes::{Regex, RegexBuilder};
use regex_automata::meta;
use serde::Deserialize;
use std::sync::OnceLock;

/// A set of bytes.
type ByteSet = [bool; 256];

/// What `cat -A`, `cat -e` and `cat -vE` put at the end of every line: `$`, after `^M` on a
/// CRLF line. Unless they are recognised, a key shown so would have its body lines read as
/// no base64 (`MIIE…$`), and shown; a pair's header (`- name: DB_PASSWORD$`) would name no
/// secret, and its value would show.
pub(crate) const LINE_END_MARKS: [&[u8]; 2] = [b"^M$", b"$"];

/// `line` without the line-end mark it ends in (see [`LINE_END_MARKS`]), and the mark
/// (empty for none).
pub(crate) fn strip_line_end_mark(line: &[u8]) -> (&[u8], &'static [u8]) {
    LINE_END_MARKS
        .into_iter()
        .find_map(|m| line.strip_suffix(m).map(|rest| (rest, m)))
        .unwrap_or((line, b""))
}

/// The shipped rule file.
pub const BUILTIN_RULES: &str = include_str!("../../rules/secrets.toml");

/// Why a rule file was refused.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// The TOML did not parse or lacked a field.
    #[error("rule file: {0}")]
    Toml(#[from] toml::de::Error),
    /// A pattern did not compile.
    #[error("rule `{id}`: pattern {index}: {source}")]
    Pattern {
        /// The rule id.
        id: String,
        /// Which pattern (0-based).
        index: usize,
        /// The compiler's complaint.
        source: Box<meta::BuildError>,
    },
    /// An exclusion or a built-in pattern did not compile.
    #[error("rule `{id}`: pattern {index}: {source}")]
    Regex {
        /// The rule id.
        id: String,
        /// Which pattern (0-based).
        index: usize,
        /// The compiler's complaint.
        source: regex::Error,
    },
    /// Something else about a rule is wrong (no keywords, unknown special, duplicate id).
    #[error("rule `{id}`: {problem}")]
    Invalid {
        /// The rule id.
        id: String,
        /// What is wrong.
        problem: String,
    },
    /// The keyword automaton could not be built.
    #[error(transparent)]
    Automaton(#[from] KeywordDfaError),
}

/// One rule as written in the rule file, including its test cases.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Stable id, used in `[REDACTED:<id>]` and in counts.
    pub id: String,
    /// What the rule finds.
    pub description: String,
    /// Keywords matched ASCII-case-insensitively.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Keywords matched exactly.
    #[serde(default)]
    pub keywords_cs: Vec<String>,
    /// The keywords are context a match needs nearby (a bare token shape taken for a
    /// service's token only next to the service's name), not part of the match. Otherwise
    /// every text a pattern matches must hold a keyword, which
    /// [`crate::rules::keyword_cover::covers`] proves for the shipped rules.
    #[serde(default)]
    pub keywords_are_context: bool,
    /// Confirming regexes.
    pub patterns: Vec<String>,
    /// Per pattern (none, or one entry for each), keywords every match of that pattern
    /// holds: the pattern is searched only where one occurs after the search's start. An
    /// empty entry leaves its pattern always searched. Why: a rule's patterns often differ
    /// in the names they match (`password=` / `userPassword =` / `DB_PASSWORD=`), and each
    /// line holding the rule's keyword ran every pattern's search, most of them failing.
    /// [`crate::rules::keyword_cover::covers`] proves each entry for the shipped rules.
    #[serde(default)]
    pub pattern_keywords: Vec<PatternKeywords>,
    /// A multi-line handler: `pem`, `k8s-data`, `name-value` or `secret-scalar`.
    #[serde(default)]
    pub special: Option<String>,
    /// Skip placeholder values (`$VAR`, `<value>`, `****`, `null`, …).
    #[serde(default)]
    pub placeholders: bool,
    /// For key-name rules: the thresholds a value must pass to count as a possible secret
    /// (see [`crate::rules::value_gate`]). Provider rules have none.
    #[serde(default)]
    pub gate: Option<GateSpec>,
    /// Regexes for whole matches that are not secrets after all (`PWD=/home/x` is the
    /// shell's working directory, not a password). A whole match any of them finds is
    /// dropped.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Texts that must be redacted by this rule.
    #[serde(default)]
    pub positives: Vec<String>,
    /// Texts that must not be redacted at all.
    #[serde(default)]
    pub negatives: Vec<String>,
}

/// Keywords one pattern's matches hold (see [`RuleSpec::pattern_keywords`]).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatternKeywords {
    /// Matched ASCII-case-insensitively.
    #[serde(default)]
    pub ci: Vec<String>,
    /// Matched exactly.
    #[serde(default)]
    pub cs: Vec<String>,
}

impl PatternKeywords {
    /// The searches for these keywords; `None` when there are none (always searched).
    fn compile(&self) -> Result<Option<PatternNeeds>, aho_corasick::BuildError> {
        if self.ci.is_empty() && self.cs.is_empty() {
            return Ok(None);
        }
        let set = |words: &[String], ci: bool| {
            (!words.is_empty())
                .then(|| {
                    aho_corasick::AhoCorasick::builder()
                        .ascii_case_insensitive(ci)
                        .build(words)
                })
                .transpose()
        };
        Ok(Some(PatternNeeds {
            ci: set(&self.ci, true)?,
            cs: set(&self.cs, false)?,
            words: self.clone(),
            scan: None,
        }))
    }
}

/// The compiled [`PatternKeywords`] of one pattern.
#[derive(Debug)]
pub(crate) struct PatternNeeds {
    ci: Option<aho_corasick::AhoCorasick>,
    cs: Option<aho_corasick::AhoCorasick>,
    /// The keywords, kept until the keyword scan is built.
    words: PatternKeywords,
    /// When the keyword scan reports every one of them (by its own id, or through a
    /// case-insensitive keyword of the same letters whose text is then compared): those
    /// ids, each with the exact text to compare where needed. The line's occurrences are
    /// then looked up instead of searched for again (see [`PatternNeeds::found`]).
    scan: Option<Vec<ScanWord>>,
}

/// A keyword as the scan reports it: its id, and the exact text to compare where the id
/// is a case-insensitive keyword of the same letters.
type ScanWord = (usize, Option<Box<[u8]>>);

impl PatternNeeds {
    /// Whether `hay[from..]` holds one of the keywords: read from the line's keyword
    /// occurrences where the scan reports them all, else searched.
    pub(crate) fn found(&self, hay: &[u8], from: usize, line: Option<LineKeywords>) -> bool {
        if let (Some(scan), Some(line)) = (&self.scan, line) {
            let (lo, hi) = (line.offset + from, line.offset + hay.len());
            let first = line.hits.partition_point(|h| h.0 < lo);
            return line.hits[first..]
                .iter()
                .take_while(|h| h.0 < hi)
                .any(|&(s, e, k)| {
                    e <= hi
                        && scan.iter().any(|(id, exact)| {
                            *id == k
                                && exact.as_deref().is_none_or(|w| {
                                    hay.get(s - line.offset..e - line.offset) == Some(w)
                                })
                        })
                });
        }
        let rest = hay.get(from..).unwrap_or_default();
        [&self.ci, &self.cs]
            .into_iter()
            .flatten()
            .any(|ac| ac.is_match(rest))
    }

    /// Maps the keywords to the scan's ids (`info`: the scan's keywords), if it reports
    /// every one.
    fn map_to_scan(&mut self, info: &[Keyword]) {
        let id = |text: &str, exact: bool| {
            info.iter()
                .position(|k| k.exact == exact && k.text == text && k.every_occurrence)
        };
        let ci = self
            .words
            .ci
            .iter()
            .map(|w| Some((id(&w.to_ascii_lowercase(), false)?, None)));
        let cs = self.words.cs.iter().map(|w| match id(w, true) {
            Some(k) => Some((k, None)),
            None => Some((
                id(&w.to_ascii_lowercase(), false)?,
                Some(w.as_bytes().into()),
            )),
        });
        self.scan = ci.chain(cs).collect();
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    /// Word lists of the value gate.
    #[serde(default)]
    values: ValueListsSpec,
    /// Multi-word names of secrets, for the rules' `{names}`.
    #[serde(default)]
    vocabulary: vocabulary::VocabularySpec,
    /// Programs' password flags, for the rules' `{credential_flags}`.
    #[serde(default)]
    credential_flags: Vec<vocabulary::CredentialFlagSpec>,
    rule: Vec<RuleSpec>,
}

/// Multi-line handlers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Special {
    None,
    /// A PEM-armoured private key: header, body and footer are one secret.
    Pem,
    /// `data:`/`stringData:` blocks of Kubernetes Secrets.
    K8sData,
    /// A name/value pair over two or more lines whose name names a secret (`- name:
    /// DB_PASSWORD` then `value: …` in a Kubernetes env list, `"name": …` then `"value": …`
    /// in JSON): the value is judged as the assignment `NAME: value` on a line of its own
    /// (see [`RuleSet::judge_pair`]).
    NameValue,
    /// A YAML block scalar under a key that names a secret (`password: |`, `api_token: >-`):
    /// its text is on the lines below, indented deeper, each judged as the line
    /// `KEY: text` would be (see [`RuleSet::judge_pair`]).
    SecretScalar,
}

#[derive(Debug)]
pub(crate) struct Pattern {
    pub(crate) re: Lazy<PatternRegex>,
    /// For key-name rules: the same pattern without a prefilter, for short haystacks (see
    /// [`Pattern::find_at`]).
    pub(crate) unfiltered: Option<Lazy<meta::Regex>>,
    /// Capture-group indices whose names start with `s`, in order.
    pub(crate) secret_groups: Vec<usize>,
    /// The fewest bytes a match spans (0 when not known).
    pub(crate) min_len: usize,
    /// Keywords each match holds, if the rule file names them for this pattern.
    pub(crate) needs: Option<Box<PatternNeeds>>,
    /// For a pattern every match of which starts with one of its rule's keywords: matched
    /// from their occurrences (see [`crate::matching::keyword_search`]).
    pub(crate) led: Option<Box<Led>>,
}

/// A compiled rule.
#[derive(Debug)]
pub struct Rule {
    /// Stable id.
    pub id: String,
    /// What the rule finds.
    pub description: String,
    /// What its redactions are replaced by: `[REDACTED:<id>]`, written whole (one piece a
    /// redaction rather than three).
    pub(crate) marker: String,
    pub(crate) patterns: Vec<Pattern>,
    pub(crate) special: Special,
    pub(crate) placeholders: bool,
    pub(crate) exclude: Vec<Regex>,
    pub(crate) gate: Option<GateSpec>,
    /// Every pattern starts with `^` (the line's start): the rule is searched from the
    /// line's start, once per line, whichever keyword triggers it.
    pub(crate) anchored: bool,
    /// Some pattern may start with `^` (`(?:^[ \t]*|\bacl set)user …`): its search starts at
    /// the line's start, however far before the keyword, so an indented line matches.
    pub(crate) line_start: bool,
    /// Every match holds one of the rule's keywords (the rule file's contract, proven for
    /// the shipped rules by `keyword_cover`), unless they are context only
    /// (`keywords_are_context`), and the scan reports every occurrence of them: a search
    /// where none is left finds nothing.
    pub(crate) keywords_in_matches: bool,
}

/// Whether `line` can be a name/value pair's header at all, read from its end: the text
/// after its last `:` or `=` is a name (quoted or not, a trailing comma allowed) and the
/// key before that separator is `name`, `key` or `ParameterKey`. A cheap test before
/// the header's pattern, which most lines that trigger the pair's keywords (`key`, `token`,
/// `pass`…) fail: `AWS_ACCESS_KEY_ID=AKIA…`'s key is not `name`.
pub(crate) fn pair_header_shape(line: &[u8]) -> bool {
    let Some(sep) = memchr::memrchr2(b':', b'=', line) else {
        return false;
    };
    let key = line[..sep].trim_ascii_end();
    let key = key
        .strip_suffix(b"\"")
        .or_else(|| key.strip_suffix(b"'"))
        .unwrap_or(key);
    // The key is the word itself (`- name`, `"Name"`, `ParameterKey`), not a longer name
    // ending in it (`api_key`, `hostname`).
    let ends_with = |word: &[u8]| {
        key.len() >= word.len()
            && key[key.len() - word.len()..].eq_ignore_ascii_case(word)
            && key[..key.len() - word.len()]
                .last()
                .is_none_or(|&b| !(b.is_ascii_alphanumeric() || b == b'_'))
    };
    if !(ends_with(b"name") || ends_with(b"key") || ends_with(b"parameterkey")) {
        return false;
    }
    let name = pair_name(&line[sep + 1..]);
    !name.is_empty()
        && name
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'/'))
}

/// Whether `line` opens an object under a key that may name a secret: `"db_password": {`
/// (Terraform's `output -json`: `{"sensitive": true, "type": "string", "value": "…"}`).
/// The object's `value` member is then judged with the key (see `K8sState::Pair`).
pub(crate) fn object_header_shape(line: &[u8]) -> bool {
    let Some(body) = line.trim_ascii().strip_suffix(b"{") else {
        return false;
    };
    let Some(key) = body.trim_ascii_end().strip_suffix(b":") else {
        return false;
    };
    let key = key.trim_ascii();
    key.len() >= 3
        && key[0] == b'"'
        && key[key.len() - 1] == b'"'
        && key[1..key.len() - 1]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// A pair's name as written after its key's separator (` "DB_PASSWORD",`): blanks, a
/// trailing comma and matching quotes taken off.
pub(crate) fn pair_name(written: &[u8]) -> &[u8] {
    let mut name = written.trim_ascii();
    if let Some(n) = name.strip_suffix(b",") {
        name = n.trim_ascii_end();
    }
    if name.len() >= 2 && matches!(name[0], b'"' | b'\'') && name[name.len() - 1] == name[0] {
        name = &name[1..name.len() - 1];
    }
    name
}

/// A byte range `(start, end)`.
pub(crate) type Range = (usize, usize);

/// A secret found on a line: byte range (relative to the line) and rule index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hit {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) rule: usize,
}

impl Hit {
    /// Whether `other` adds nothing once this hit is a span: it lies within this one and its
    /// rule is not listed before this one's, so it is never the first of the spans merged
    /// with it (`redact::merge` widens spans to character boundaries, then orders them by
    /// start, the longest first, then rule order; the first one's rule labels the merged
    /// span). Containment alone is not enough: a hit starting later inside the same
    /// multi-byte character widens to the same start.
    pub(crate) fn covers(&self, other: &Hit) -> bool {
        self.start <= other.start && other.end <= self.end && self.rule <= other.rule
    }

    /// The hit of rule `rule` redacting `secret`, capped at [`MAX_SECRET`] bytes; none for
    /// an empty secret.
    pub(crate) fn of((start, end): Range, rule: usize) -> Option<Hit> {
        (start < end).then(|| Hit {
            start,
            end: end.min(start + MAX_SECRET),
            rule,
        })
    }
}

/// The compiled rule set.
#[derive(Debug)]
pub struct RuleSet {
    pub(crate) rules: Vec<Rule>,
    pub(crate) specs: Vec<RuleSpec>,
    pub(crate) keywords: KeywordDfa,
    /// The case-sensitive keywords (`SK`, `AAAA`, ...) with no case-insensitive twin, by
    /// keyword index, each searched exactly with a SIMD substring finder: in the
    /// case-insensitive automaton `aaaa` would hit at every byte of a run of `a`s, and a
    /// second automaton pass would cost a quarter of the throughput.
    pub(crate) keywords_cs: Vec<(usize, memchr::memmem::Finder<'static>)>,
    /// The case-sensitive keywords whose lower-case spelling is a case-insensitive keyword
    /// (`KEY` and `key`), by that keyword's index: every exact occurrence is one of the
    /// twin's, so they are found by comparing its hits' bytes, not by a pass of their own
    /// (ten finders would cost 4 instructions per byte of every output).
    pub(crate) twins_cs: Vec<Vec<usize>>,
    /// Whether a twin was added that triggers no rule (see `automaton`).
    pub(crate) twins_added: bool,
    /// The keywords of rules whose secrets span lines (PEM keys, Kubernetes `data:`):
    /// where one occurs, text cannot be left unscanned (see the pipeline's middle skip).
    pub(crate) multiline: KeywordDfa,
    /// The rule of each keyword of `multiline`, by keyword index.
    pub(crate) multiline_owner: Vec<usize>,
    pub(crate) keyword_info: Vec<Keyword>,
    pub(crate) placeholder: Regex,
    /// The bytes a placeholder can start with ([`first_bytes`]): a value starting with
    /// another is none, and is not searched (most made secrets; a search costs ~400
    /// instructions a value).
    pub(crate) placeholder_starts: Box<ByteSet>,
    pub(crate) pem_end: Regex,
    pub(crate) values: ValueLists,
    pub(crate) value_spec: ValueListsSpec,
}

/// Values that stand for a secret without being one (`$VAR`, `<value>`, `****`, `null`,
/// `[REDACTED…]`): a rule with `placeholders` keeps none of them.
const PLACEHOLDER: &str = r#"^(?:""|''|\$\{?[A-Za-z_][A-Za-z0-9_]*\}?|\$\([^)]*\)|<[^>]*>|\{\{[^}]*\}\}|%[A-Za-z_]+%|\*+|x{3,}|X{3,}|\.{3,}|\?+|null|nil|none|None|NULL|true|false|True|False|undefined|\[REDACTED[^\]]*\]?)$"#;

/// The bytes a match of `pattern` can start with, when it is searched in a haystack of its
/// own (as a value is): those that do not take the anchored DFA's start state to its dead
/// state. A byte outside them starts no match, exactly.
fn first_bytes(pattern: &str) -> Option<Box<ByteSet>> {
    use regex_automata::dfa::{dense, Automaton, StartKind};
    let dfa = dense::Builder::new()
        .syntax(
            regex_automata::util::syntax::Config::new()
                .unicode(false)
                .utf8(false),
        )
        .configure(dense::Config::new().start_kind(StartKind::Anchored))
        .build(pattern)
        .ok()?;
    let start = dfa
        .start_state_forward(
            &regex_automata::Input::new(&[][..]).anchored(regex_automata::Anchored::Yes),
        )
        .ok()?;
    let mut set = Box::new([false; 256]);
    for b in 0..=255u8 {
        set[usize::from(b)] = !dfa.is_dead_state(dfa.next_state(start, b));
    }
    Some(set)
}

/// `pattern` as [`compile`] builds it, without a prefilter.
fn compile_unfiltered(pattern: &str) -> Result<meta::Regex, Box<meta::BuildError>> {
    crate::matching::pattern_regex::regex_builder()
        .configure(
            meta::Config::new()
                .auto_prefilter(false)
                .nfa_size_limit(Some(8 << 20)),
        )
        .build(pattern)
        .map_err(Box::new)
}

fn compile(pattern: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(pattern)
        .unicode(false)
        .size_limit(8 << 20)
        .build()
}

/// One keyword of the prefilter: the rules it triggers.
#[derive(Debug, Clone)]
pub(crate) struct Keyword {
    pub(crate) owners: Vec<usize>,
    /// The scan reports every occurrence, overlapping ones too: true unless the keyword
    /// is searched by a finder (exact, no case-insensitive twin) and can overlap itself
    /// (`AAAA`: a finder reports a run of it every keyword length).
    pub(crate) every_occurrence: bool,
    /// The keyword, lower-cased unless it is case-sensitive.
    pub(crate) text: String,
    /// Matched exactly (else ASCII-case-insensitively).
    pub(crate) exact: bool,
    /// A pattern's keyword (see [`RuleSpec::pattern_keywords`]): its hits are kept even
    /// when it triggers no rule, so that the pattern's check reads them off the scan.
    pub(crate) needed: bool,
}

/// The prefilter: a DFA over the case-insensitive keywords and an exact searcher over the
/// case-sensitive ones; their keyword indices follow each other (case-insensitive first).
struct Automata {
    dfa: KeywordDfa,
    finders: Vec<(usize, memchr::memmem::Finder<'static>)>,
    twins_cs: Vec<Vec<usize>>,
    info: Vec<Keyword>,
}

fn automaton(words: &[(String, usize, bool)], needed: &[String]) -> Result<Automata, RulesError> {
    let mut info: Vec<Keyword> = Vec::new();
    let mut add = |text: String, exact: bool, rule: Option<usize>| {
        let i = match info.iter().position(|k| k.text == text && k.exact == exact) {
            Some(i) => i,
            None => {
                info.push(Keyword {
                    owners: Vec::new(),
                    text,
                    exact,
                    every_occurrence: true,
                    needed: false,
                });
                info.len() - 1
            }
        };
        if let Some(rule) = rule.filter(|r| !info[i].owners.contains(r)) {
            info[i].owners.push(rule);
        }
        i
    };
    // Case-insensitive keywords first, so the two kinds' indices follow each other.
    for (w, rule, _) in words.iter().filter(|w| !w.2) {
        add(w.to_ascii_lowercase(), false, Some(*rule));
    }
    // Patterns' keywords the scan would not report otherwise (`host` of a connection
    // string's pattern): scanned for, triggering no rule, so that the pattern's check is
    // a look-up in the line's hits instead of a search of the line (an Aho-Corasick
    // search per pattern and line, ~570 instructions). Not the short ones,
    // which hit often in ordinary text.
    let needed_ids: Vec<usize> = needed
        .iter()
        .filter(|w| w.len() >= 3)
        .map(|w| add(w.to_ascii_lowercase(), false, None))
        .collect();
    // A case-sensitive keyword is found through a case-insensitive twin where it can have
    // one: a keyword of its own spelling, else one added for it that triggers no rule.
    // Not for short or self-overlapping ones (`SK`, `AAAA`): their folded spelling hits
    // often in ordinary text (`disk`, a run of `a`s), where a finder is cheaper.
    for (w, _, _) in words.iter().filter(|w| w.2) {
        if twin_worth_adding(w.as_bytes()) {
            add(w.to_ascii_lowercase(), false, None);
        }
    }
    for (w, rule, _) in words.iter().filter(|w| w.2) {
        add(w.clone(), true, Some(*rule));
    }
    for i in needed_ids {
        info[i].needed = true;
    }
    let cs_base = info.iter().position(|k| k.exact).unwrap_or(info.len());
    // A DFA laid out as one flat table (see `keyword_dfa`): the keyword set is too large
    // for a SIMD prefilter, and every byte of output passes through this scan.
    let insensitive: Vec<&str> = info[..cs_base].iter().map(|k| k.text.as_str()).collect();
    let dfa = KeywordDfa::new(&insensitive)?;
    let mut twins_cs = vec![Vec::new(); cs_base];
    let mut finders = Vec::new();
    for (j, k) in info.iter().enumerate().skip(cs_base) {
        let folded = k.text.to_ascii_lowercase();
        match insensitive.iter().position(|i| *i == folded) {
            Some(i) => twins_cs[i].push(j),
            None => finders.push((
                j,
                memchr::memmem::Finder::new(k.text.as_bytes()).into_owned(),
            )),
        }
    }
    for &(j, _) in &finders {
        let k = info[j].text.as_bytes();
        info[j].every_occurrence = (1..k.len()).all(|n| k[..n] != k[k.len() - n..]);
    }
    Ok(Automata {
        dfa,
        finders,
        twins_cs,
        info,
    })
}

/// Gives the led patterns (see [`crate::matching::keyword_search`]) the ids the keyword scan reports
/// their keywords by, for the positions in their rule's `keywords` they were found with.
fn lead_patterns(rules: &mut [Rule], specs: &[RuleSpec], info: &[Keyword]) {
    for (index, (rule, spec)) in rules.iter_mut().zip(specs).enumerate() {
        let own: Vec<usize> = (0..info.len())
            .filter(|&k| info[k].owners.contains(&index))
            .collect();
        // A search that reads the rule's keyword occurrences off the scan (a keyword left
        // on the line) needs every occurrence reported.
        rule.keywords_in_matches &= own.iter().all(|&k| info[k].every_occurrence);
        for p in &mut rule.patterns {
            if let Some(needs) = &mut p.needs {
                needs.map_to_scan(info);
            }
            p.led = p.led.take().and_then(|led| {
                led.map_keywords(|local| {
                    let text = spec.keywords.get(local)?.to_ascii_lowercase();
                    info.iter().position(|k| !k.exact && k.text == text)
                })
                .map(Box::new)
            });
        }
    }
}

/// Whether a case-sensitive keyword is found through a case-insensitive twin (see
/// `automaton`): three bytes or more, and no proper prefix that is also a suffix (so its
/// occurrences never overlap, and the twin reports each once, as a finder would).
fn twin_worth_adding(k: &[u8]) -> bool {
    k.len() >= 3 && (1..k.len()).all(|n| !k[..n].eq_ignore_ascii_case(&k[k.len() - n..]))
}

/// The longest span one match redacts. Patterns match values without a bound, but a span
/// that started before a long line's window is committed must end inside the window (its
/// overlap), or the next window would see the value without its key and redact nothing:
/// capping every span at less than the overlap keeps the result the same however the
/// output is chunked. Past it, the rest of a longer value shows.
pub(crate) const MAX_SECRET: usize = OVERLAP - 64;

/// How much of a redactor's window over a long line is carried into the next one (see
/// `redact.rs`).
pub(crate) const OVERLAP: usize = 4096;

/// How far before a keyword a rule's match may start, and after it end.
pub(crate) const BEFORE: usize = 256;
pub(crate) const AFTER: usize = 4096;

/// Whether every keyword's window on a line this long is the whole line (it starts at most
/// [`BEFORE`] bytes in, and ends sooner than [`AFTER`]): each rule the line triggers then
/// runs once over the whole line, whichever of its keywords comes first.
pub(crate) fn windows_cover(line_len: usize) -> bool {
    line_len <= BEFORE.min(AFTER)
}

/// When a rule file's patterns are compiled (see [`Lazy`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compile {
    /// When the file loads: a pattern that does not compile refuses the file.
    Now,
    /// When each is first used (the shipped file, compiled whole by the test suite).
    Lazily,
}

/// How a compiled rule set searches the patterns led by a keyword (see
/// [`RuleSet::from_toml_with`]).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternSearch {
    /// From the keyword occurrences the scan found (the shipped configuration; see
    /// [`crate::matching::keyword_search`]).
    FromKeywords,
    /// By the regex engine over the line, like every other pattern.
    OverLines,
}

impl RuleSet {
    /// The shipped rule set, compiled once per process.
    // The embedded file is compiled and its examples run by the test suite: a failure here
    // is a defect in the build, not something input can cause.
    #[allow(clippy::expect_used)]
    pub fn builtin() -> &'static RuleSet {
        static SET: OnceLock<RuleSet> = OnceLock::new();
        SET.get_or_init(|| {
            RuleSet::compile(BUILTIN_RULES, Compile::Lazily)
                .expect("the shipped rule file compiles (tested)")
        })
    }

    /// Compiles a rule file.
    pub fn from_toml(text: &str) -> Result<RuleSet, RulesError> {
        RuleSet::from_toml_with(text, PatternSearch::FromKeywords)
    }

    /// Compiles a rule file, searching the patterns led by a keyword as `search` says; for
    /// measuring what the search from keyword occurrences is worth. The redactions are the
    /// same either way (tested).
    #[doc(hidden)]
    pub fn from_toml_with(text: &str, search: PatternSearch) -> Result<RuleSet, RulesError> {
        let mut set = RuleSet::compile(text, Compile::Now)?;
        if search == PatternSearch::OverLines {
            for p in set.rules.iter_mut().flat_map(|r| r.patterns.iter_mut()) {
                p.led = None;
            }
        }
        Ok(set)
    }

    fn compile(text: &str, when: Compile) -> Result<RuleSet, RulesError> {
        let mut file: RuleFile = toml::from_str(text)?;
        vocabulary::expand(&mut file.rule, &file.vocabulary, &file.credential_flags);
        let mut rules = Vec::new();
        let mut words = Vec::new();
        for (idx, spec) in file.rule.iter().enumerate() {
            let invalid = |problem: &str| RulesError::Invalid {
                id: spec.id.clone(),
                problem: problem.to_string(),
            };
            if file.rule[..idx].iter().any(|r| r.id == spec.id) {
                return Err(invalid("duplicate id"));
            }
            if spec.keywords.is_empty() && spec.keywords_cs.is_empty() {
                return Err(invalid("a rule needs at least one keyword"));
            }
            if spec.patterns.is_empty() {
                return Err(invalid("a rule needs at least one pattern"));
            }
            let special = match spec.special.as_deref() {
                None => Special::None,
                Some("pem") => Special::Pem,
                Some("k8s-data") => Special::K8sData,
                Some("name-value") => Special::NameValue,
                Some("secret-scalar") => Special::SecretScalar,
                Some(other) => return Err(invalid(&format!("unknown special `{other}`"))),
            };
            if !spec.pattern_keywords.is_empty()
                && spec.pattern_keywords.len() != spec.patterns.len()
            {
                return Err(invalid("pattern_keywords needs one entry per pattern"));
            }
            let mut patterns = Vec::new();
            // The rule's case-insensitive keywords, by their position in `keywords` (mapped
            // to the keyword scan's ids once every rule is read: `lead_patterns`).
            let lowered: Vec<Vec<u8>> = spec
                .keywords
                .iter()
                .map(|k| k.to_ascii_lowercase().into_bytes())
                .collect();
            let own_keywords: Vec<(usize, &[u8])> = lowered
                .iter()
                .enumerate()
                .map(|(i, k)| (i, k.as_slice()))
                .collect();
            // Every pattern starts at the line's start (see `Rule::anchored`).
            let mut anchored = true;
            let mut line_start = false;
            for (index, p) in spec.patterns.iter().enumerate() {
                let hir = crate::matching::pattern_regex::parse(p);
                // Late only where the syntax tree gives the secret groups.
                let when = if hir.is_some() { when } else { Compile::Now };
                let re = match when {
                    Compile::Now => Lazy::eager(p, PatternRegex::new),
                    Compile::Lazily => Ok(Lazy::later(p, PatternRegex::new)),
                }
                .map_err(|source| RulesError::Pattern {
                    id: spec.id.clone(),
                    index,
                    source,
                })?;
                let secret_groups: Vec<usize> = match &hir {
                    Some(h) => crate::matching::pattern_regex::secret_groups(h),
                    None => re
                        .capture_names()
                        .enumerate()
                        .filter(|(_, n)| n.is_some_and(|n| n.starts_with('s')))
                        .map(|(i, _)| i)
                        .collect(),
                };
                anchored &= hir.as_ref().is_some_and(|h| {
                    h.properties()
                        .look_set_prefix()
                        .contains(regex_syntax::hir::Look::Start)
                });
                line_start |= hir.as_ref().is_none_or(|h| {
                    h.properties()
                        .look_set_prefix_any()
                        .contains(regex_syntax::hir::Look::Start)
                });
                // The parts a pattern may have are boxed: inline, their byte sets would make
                // a pattern ~1 KB, and the search loop's reads of a rule's patterns would
                // each touch cache lines of their own.
                patterns.push(Pattern {
                    unfiltered: match (spec.gate, when) {
                        (None, _) => None,
                        (Some(_), Compile::Lazily) => Some(Lazy::later(p, compile_unfiltered)),
                        (Some(_), Compile::Now) => {
                            Some(Lazy::eager(p, compile_unfiltered).map_err(|e| {
                                invalid(&format!("pattern {index} without a prefilter: {e}"))
                            })?)
                        }
                    },
                    re,
                    secret_groups,
                    min_len: hir
                        .as_ref()
                        .and_then(|h| h.properties().minimum_len())
                        .unwrap_or(0),
                    needs: match spec.pattern_keywords.get(index) {
                        Some(k) => k
                            .compile()
                            .map_err(|e| invalid(&format!("pattern {index}'s keywords: {e}")))?
                            .map(Box::new),
                        None => None,
                    },
                    led: match &hir {
                        Some(h) if special == Special::None => {
                            Led::new(h, &own_keywords).map(Box::new)
                        }
                        _ => None,
                    },
                });
            }
            words.extend(spec.keywords.iter().map(|k| (k.clone(), idx, false)));
            words.extend(spec.keywords_cs.iter().map(|k| (k.clone(), idx, true)));
            let mut exclude = Vec::with_capacity(spec.exclude.len());
            for (index, x) in spec.exclude.iter().enumerate() {
                exclude.push(compile(x).map_err(|source| RulesError::Regex {
                    id: spec.id.clone(),
                    index,
                    source,
                })?);
            }
            rules.push(Rule {
                id: spec.id.clone(),
                description: spec.description.clone(),
                marker: format!("[REDACTED:{}]", spec.id),
                patterns,
                special,
                placeholders: spec.placeholders,
                exclude,
                gate: spec.gate,
                anchored,
                line_start,
                keywords_in_matches: !spec.keywords_are_context,
            });
        }
        // Every pattern's keywords, as the scan would report them (case-insensitively).
        let needed: Vec<String> = file
            .rule
            .iter()
            .flat_map(|r| &r.pattern_keywords)
            .flat_map(|k| k.ci.iter().chain(&k.cs))
            .map(|w| w.to_ascii_lowercase())
            .collect();
        let Automata {
            dfa: keywords,
            finders: keywords_cs,
            twins_cs,
            info: keyword_info,
        } = automaton(&words, &needed)?;
        lead_patterns(&mut rules, &file.rule, &keyword_info);
        // The keywords of the rules for secrets spanning lines, and each one's rule.
        let (multiline_words, multiline_owner): (Vec<&String>, Vec<usize>) = file
            .rule
            .iter()
            .zip(&rules)
            .enumerate()
            .filter(|(_, (_, r))| r.special != Special::None)
            .flat_map(|(i, (spec, _))| {
                spec.keywords
                    .iter()
                    .chain(&spec.keywords_cs)
                    .map(move |k| (k, i))
            })
            .unzip();
        // The flat table (no prefilter: aho-corasick's looks for the keywords' rarest
        // bytes, `:` here, which are common in output, and costs more than it saves).
        let multiline = KeywordDfa::new(&multiline_words)?;
        let placeholder = compile(PLACEHOLDER).map_err(|source| RulesError::Regex {
            id: "placeholder".into(),
            index: 0,
            source,
        })?;
        let placeholder_starts = first_bytes(PLACEHOLDER).ok_or_else(|| RulesError::Invalid {
            id: "placeholder".into(),
            problem: "its first bytes could not be computed".into(),
        })?;
        let pem_end =
            compile(r"-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----").map_err(|source| {
                RulesError::Regex {
                    id: "pem-end".into(),
                    index: 0,
                    source,
                }
            })?;
        Ok(RuleSet {
            rules,
            specs: file.rule,
            keywords,
            keywords_cs,
            twins_added: keyword_info
                .iter()
                .any(|k| k.owners.is_empty() && !k.needed),
            twins_cs,
            multiline,
            multiline_owner,
            keyword_info,
            placeholder,
            placeholder_starts,
            pem_end,
            values: ValueLists::new(&file.values),
            value_spec: file.values,
        })
    }

    /// The rules, in priority order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rules as written, with their test cases.
    pub fn specs(&self) -> &[RuleSpec] {
        &self.specs
    }

    /// The value gate's word lists and examples, as written.
    pub fn value_lists(&self) -> &ValueListsSpec {
        &self.value_spec
    }

    /// Keyword `k` as written (lower-cased unless it is case-sensitive).
    pub(crate) fn keyword_text(&self, k: usize) -> &[u8] {
        self.keyword_info[k].text.as_bytes()
    }

    /// Index of the rule with this id.
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.rules.iter().position(|r| r.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex_automata::Input;

    #[test]
    fn keywords_are_found_as_one_search_per_keyword_finds_them() {
        let set = RuleSet::builtin();
        let mut hay = include_str!("../../tests/fixtures/benign-build.log").to_string();
        for k in &set.keyword_info {
            let t = &k.text;
            let title: String = t
                .chars()
                .enumerate()
                .map(|(i, c)| {
                    if i == 0 {
                        c.to_ascii_uppercase()
                    } else {
                        c.to_ascii_lowercase()
                    }
                })
                .collect();
            for v in [
                t.clone(),
                t.to_ascii_uppercase(),
                t.to_ascii_lowercase(),
                title,
            ] {
                hay.push_str(&format!(" {v} x{v}{v}y\n"));
            }
        }
        hay.push_str("AAAAAAAAA Key KEY_ID api_KEY=1 PRIVATE private cred CRED dsn DSN");
        let hay = hay.as_bytes();
        let mut want = Vec::new();
        for (i, k) in set.keyword_info.iter().enumerate() {
            let t = k.text.as_bytes();
            if k.owners.is_empty() && !k.needed {
                continue; // a twin that triggers no rule is not reported
            }
            if k.exact {
                // Exact keywords: non-overlapping occurrences, as a finder reports them.
                let mut at = 0;
                while let Some(p) = memchr::memmem::find(&hay[at..], t) {
                    want.push((at + p, at + p + t.len(), i));
                    at += p + t.len();
                }
            } else {
                for at in 0..=hay.len().saturating_sub(t.len()) {
                    if hay[at..at + t.len()].eq_ignore_ascii_case(t) {
                        want.push((at, at + t.len(), i));
                    }
                }
            }
        }
        let mut got = Vec::new();
        set.keyword_hits(hay, &mut got);
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got.len(), want.len());
        assert_eq!(got, want);
        // The twins are used: most exact keywords of the shipped rules need no finder.
        let exact = set.keyword_info.iter().filter(|k| k.exact).count();
        assert!(
            set.keywords_cs.len() < exact / 2,
            "{} finders",
            set.keywords_cs.len()
        );
    }

    #[test]
    fn builtin_compiles_with_many_families() {
        let set = RuleSet::builtin();
        assert!(set.rules().len() >= 60, "{} rules", set.rules().len());
    }

    /// The shipped patterns compile late (see `Lazy`): each of them compiles, and the
    /// secret groups read off its syntax tree are the compiled regex's.
    #[test]
    fn every_shipped_pattern_compiles_and_its_groups_are_the_regexs() {
        let set = RuleSet::builtin();
        let mut compiled = 0;
        for rule in &set.rules {
            for p in &rule.patterns {
                let from_regex: Vec<usize> =
                    p.re.capture_names()
                        .enumerate()
                        .filter(|(_, n)| n.is_some_and(|n| n.starts_with('s')))
                        .map(|(i, _)| i)
                        .collect();
                assert_eq!(p.secret_groups, from_regex, "{}", rule.id);
                if let Some(u) = &p.unfiltered {
                    assert_eq!(
                        u.captures_len(),
                        p.re.capture_names().count(),
                        "{}",
                        rule.id
                    );
                }
                compiled += 1;
            }
        }
        assert!(compiled >= 100, "{compiled} patterns");
        // A rule file the operator gives is compiled when it loads.
        let bad =
            "[[rule]]\nid='x'\ndescription='d'\nkeywords=['a']\npatterns=['a{99999}{99999}']\n";
        assert!(matches!(
            RuleSet::from_toml(bad),
            Err(RulesError::Pattern { .. })
        ));
    }

    /// Every rule's positive and negative examples and the value gate's example lines.
    fn example_texts(set: &RuleSet) -> Vec<String> {
        let mut texts: Vec<String> = set
            .specs()
            .iter()
            .flat_map(|s| s.positives.iter().chain(&s.negatives).cloned())
            .collect();
        texts.extend(set.value_lists().examples.iter().map(|e| e.line.clone()));
        texts
    }

    fn all_patterns(set: &RuleSet) -> Vec<(&str, &Pattern)> {
        set.rules
            .iter()
            .flat_map(|r| r.patterns.iter().map(move |p| (r.id.as_str(), p)))
            .collect()
    }

    #[test]
    fn the_unfiltered_search_finds_what_the_regex_finds() {
        // From every start of every example, and from every 61st of the examples run
        // together into one long line, with and without a match: the same match or none.
        let set = RuleSet::builtin();
        let examples = example_texts(set);
        let joined = examples.join(" ");
        let texts: Vec<(&str, usize)> = examples
            .iter()
            .map(|t| (t.as_str(), 1))
            .chain([(joined.as_str(), 61)])
            .collect();
        let (mut patterns, mut matches) = (0, 0);
        for (id, p) in all_patterns(set) {
            let Some(unfiltered) = &p.unfiltered else {
                continue;
            };
            patterns += 1;
            for (t, step) in &texts {
                let hay = t.as_bytes();
                for at in (0..=hay.len()).step_by(*step) {
                    let want = p.re.find_at(hay, at).map(|m| (m.start(), m.end()));
                    let got = unfiltered
                        .search(&Input::new(hay).range(at..))
                        .map(|m| (m.start(), m.end()));
                    assert_eq!(got, want, "{id} from {at} on {:?}", &t[..t.len().min(200)]);
                    matches += usize::from(want.is_some());
                }
            }
        }
        assert!(patterns >= 12, "only {patterns} key-name patterns");
        assert!(matches > 1000, "only {matches} matches compared");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]
        /// Text assembled from provider prefixes, keyword look-alikes and token bytes:
        /// the searches from keyword occurrences find what the engine finds, from every
        /// start.
        #[test]
        fn led_searches_agree_with_the_capture_engine(
            pieces in proptest::collection::vec(proptest::sample::select(vec![
                "xoxb-", "XOXB-", "ghp_", "gho_", "AKIA", "akia", "ASIA", "sk-", "sk-proj-",
                "glpat-", "Bearer", "bearer ", "Basic ", "Authorization: ", "authorization=",
                "npm_", "hf_", "-p", "--password=", "0123456789", "012345678901", "aB3dE5gH7jK9mN1p",
                "ABCDEFGHIJKLMNOP", "-", "_", "=", ":", " ", "\"", "'", "/", "@", ",", "\n", "é",
                // Key names: keywords inside names, operators, quotes.
                "password", "PASSWORD", "userPassword", "pwd", "api_key", "api.key", "Token",
                "token", "secret", "access_key", "salt", "=>", ":=", "\t", ".", "x",
                // URLs: schemes, `://`, users, hosts.
                "://", "postgres", "https", "redis", "user", "db:5432", "a:b@", "<", ">",
            ]), 0..12),
        ) {
            let text: String = pieces.concat();
            let agree = RuleSet::builtin().led_searches_agree(text.as_bytes());
            proptest::prop_assert!(agree.is_ok(), "{:?}", agree);
        }
    }

    /// The ids of the rules with a pattern `pred` takes.
    fn rules_where(set: &RuleSet, pred: impl Fn(&Pattern) -> bool) -> Vec<&str> {
        all_patterns(set)
            .iter()
            .filter(|(_, p)| pred(p))
            .map(|(id, _)| *id)
            .collect()
    }

    #[test]
    fn led_searches_agree_with_the_capture_engine_on_every_example() {
        let set = RuleSet::builtin();
        let mut texts = example_texts(set);
        // Two tokens on a line, a prefix in a word, a token cut short, a long line.
        texts.extend([
            "xoxb-123456789012-123456789012-abcdefABCDEF xoxb-123456789012-1234567890123-z".into(),
            "noxoxb-123456789012-123456789012-abc AKIAAAAAAAAAAAAAAAAAAAA AKIAABCDEFGHIJKLMNOP"
                .into(),
            "Authorization: Bearer abc Bearer abcdefghijklmnopqrstuvwxyz".into(),
            format!("{}ghp_{}", "x ".repeat(400), "a".repeat(36)),
            // Key names whose values do not follow (a quote never closed, a value too
            // short), then one that does; more of them than a search reads before the
            // engine takes over.
            "password=\", password=Xy1234567q".into(),
            "api_key='unclosed, api_key=ab, the api_key: Ab3dEf9hIjK2mN".into(),
            format!("{}password=Xy1234567q", "password=\" ".repeat(12)),
            // URLs whose credentials do not follow, then ones that do; a scheme in a word.
            "https://example.com/a postgres://app:Xy1234567q@db:5432/app".into(),
            "see http://a:b mysql://root:s3cr3tpass@h xpostgres://u:p@h".into(),
            format!("{}redis://:Xy1234567q@cache", "ftp://host/x ".repeat(12)),
            "userPassword is the token pwd = x_pass: \"Summer2024\"".into(),
        ]);
        let compared: usize = texts
            .iter()
            .map(|t| {
                set.led_searches_agree(t.as_bytes())
                    .unwrap_or_else(|e| panic!("{e}"))
            })
            .sum();
        assert!(compared > 10_000, "only {compared} searches compared");
        // The provider rules are searched this way; key-name rules are not (their match
        // starts before the name, at a boundary no keyword marks).
        let led = rules_where(set, |p| p.led.is_some());
        for id in [
            "slack-bot-token",
            "github-pat",
            "aws-access-key-id",
            "authorization-header",
        ] {
            assert!(
                led.contains(&id),
                "{id} is not searched from its keywords: {led:?}"
            );
        }
        for id in [
            "password-assignment",
            "token-assignment",
            "database-connection-string",
        ] {
            assert!(!led.contains(&id), "{id}");
        }
    }

    /// A case-sensitive keyword that overlaps itself (`ABAB`) is searched by a finder,
    /// which reports a run of it every keyword length: occurrences it skips must not hide
    /// a match from the searches that read occurrences off the scan.
    #[test]
    fn a_self_overlapping_keyword_hides_no_match() {
        let set = RuleSet::from_toml(
            "[[rule]]\nid='x'\ndescription='d'\nkeywords_cs=['ABAB']\n\
             patterns=['[AB]*ABAB=(?P<s>[a-z0-9]{8,})']\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        // The finder reports a run of `ABAB` only once a keyword length.
        assert!(!set.rules[0].keywords_in_matches);
        for text in [
            "ABABAB=abcdefgh12",
            "x ABABABAB=abcdefgh12 ABABAB=abcdefgh34",
        ] {
            set.led_searches_agree(text.as_bytes())
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let mut hits = Vec::new();
        set.scan_line(b"ABABABAB=abcdefgh12 ABABAB=abcdefgh34", &mut hits);
        assert_eq!(hits.len(), 2, "both values are found: {hits:?}");
        // After the first value (ending inside the `ABAB` the finder reported at 12), the
        // one occurrence left (at 14) is one the finder skipped: the rule runs on.
        let set = RuleSet::from_toml(
            "[[rule]]\nid='x'\ndescription='d'\nkeywords_cs=['ABAB']\n\
             patterns=['[AB]*ABAB=(?P<s>[A-Za-z0-9]{8})']\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut hits = Vec::new();
        set.scan_line(b"ABAB=abcdefgABABAB=abcdefgh", &mut hits);
        assert_eq!(hits.len(), 2, "both values are found: {hits:?}");
    }

    #[test]
    fn bad_files_are_refused() {
        let no_kw = "[[rule]]\nid='x'\ndescription='d'\npatterns=['a']\n";
        assert!(matches!(
            RuleSet::from_toml(no_kw),
            Err(RulesError::Invalid { .. })
        ));
        let bad_re = "[[rule]]\nid='x'\ndescription='d'\nkeywords=['a']\npatterns=['(']\n";
        assert!(matches!(
            RuleSet::from_toml(bad_re),
            Err(RulesError::Pattern { .. })
        ));
        let dup = "[[rule]]\nid='x'\ndescription='d'\nkeywords=['a']\npatterns=['a']\n\
                   [[rule]]\nid='x'\ndescription='d'\nkeywords=['a']\npatterns=['a']\n";
        assert!(RuleSet::from_toml(dup).is_err());
        let short = "[[rule]]\nid='x'\ndescription='d'\nkeywords=['a']\npatterns=['a', 'b']\n\
                     pattern_keywords=[{cs=['b']}]\n";
        assert!(matches!(
            RuleSet::from_toml(short),
            Err(RulesError::Invalid { .. })
        ));
    }

    /// The placeholder check reads its first-byte set before the regex: the set is what
    /// the pattern's alternatives start with, and no value starting elsewhere matches.
    #[test]
    fn placeholders_start_with_their_alternatives_first_bytes() {
        let set = RuleSet::builtin();
        let starts: Vec<u8> = (0..=255u8)
            .filter(|&b| set.placeholder_starts[usize::from(b)])
            .collect();
        assert_eq!(
            starts,
            b"\"$%'*.<?FNTX[fntuxX{"
                .iter()
                .copied()
                .collect::<std::collections::BTreeSet<u8>>()
                .into_iter()
                .collect::<Vec<u8>>()
        );
        for v in [
            "$HOME",
            "${TOKEN}",
            "<value>",
            "****",
            "xxx",
            "null",
            "None",
            "[REDACTED:x]",
            "\"\"",
        ] {
            assert!(set.is_placeholder(v.as_bytes()), "{v}");
        }
        assert!(!set.is_placeholder(b"Abcdef12345678"));
    }

    proptest::proptest! {
        #[test]
        fn a_value_outside_the_first_bytes_is_no_placeholder(v in "[ -~]{0,12}") {
            let set = RuleSet::builtin();
            if let Some(&b) = v.as_bytes().first() {
                if !set.placeholder_starts[usize::from(b)] {
                    proptest::prop_assert!(!set.placeholder.is_match(v.as_bytes()));
                }
            }
            proptest::prop_assert_eq!(set.is_placeholder(v.as_bytes()), set.placeholder.is_match(v.as_bytes()));
        }
    }

    /// A pattern's keywords of three bytes or more are scanned for (kept even where they
    /// trigger no rule), so the pattern's check reads the line's hits instead of searching
    /// the line: in the shipped rules every such pattern is mapped to the scan; a shorter
    /// keyword (`-u`) keeps the search.
    #[test]
    fn patterns_keywords_are_read_off_the_scan() {
        let set = RuleSet::builtin();
        let mut mapped = 0;
        for (rule, spec) in set.rules.iter().zip(&set.specs) {
            for (p, words) in rule.patterns.iter().zip(&spec.pattern_keywords) {
                let Some(needs) = &p.needs else { continue };
                let all_long = words.ci.iter().chain(&words.cs).all(|w| w.len() >= 3);
                assert_eq!(needs.scan.is_some(), all_long, "{}: {words:?}", spec.id);
                mapped += usize::from(all_long);
            }
        }
        assert!(mapped >= 8, "{mapped} patterns mapped");
        // `host` triggers no rule, yet its hits are kept for the connection string's
        // second pattern.
        let mut hits = Vec::new();
        set.keyword_hits(b"Server=db;Host=x", &mut hits);
        assert!(hits
            .iter()
            .any(|&(s, e, k)| (s, e) == (10, 14) && set.keyword_info[k].needed));
    }

    /// A pattern with keywords of its own is searched only where one occurs: a rule file
    /// whose second pattern names a keyword its matches lack (the cover proof refuses that
    /// in the shipped file) finds nothing with it, and finds the match with its real one.
    #[test]
    fn a_pattern_is_searched_only_where_its_keywords_occur() {
        let file = |needs: &str| {
            format!(
                "[[rule]]\nid='x'\ndescription='d'\nkeywords=['tok']\n\
                 patterns=['tok=(?P<s>[a-z0-9]+)', 'TOK:(?P<s>[a-z0-9]+)']\n\
                 pattern_keywords=[{{}}, {{cs=['{needs}']}}]\n"
            )
        };
        let found = |needs: &str, line: &[u8]| {
            let set = RuleSet::from_toml(&file(needs)).unwrap();
            let mut hits = Vec::new();
            set.scan_line(line, &mut hits);
            hits.len()
        };
        assert_eq!(found("TOK", b"x TOK:abc123 y"), 1);
        assert_eq!(found("NEVER", b"x TOK:abc123 y"), 0);
        // The first pattern has no keywords of its own: always searched.
        assert_eq!(found("NEVER", b"x tok=abc123 y"), 1);
    }
}
