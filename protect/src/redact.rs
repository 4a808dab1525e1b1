//! Streaming secret redaction over stripped text.
//!
//! The redactor works on whole lines: text is held until its newline arrives, so a secret
//! split across chunks is seen whole and the result never depends on chunking. Lines are
//! processed in blocks (one Aho-Corasick pass per block finds the few interesting lines).
//! Two kinds of secret span lines and are handled by small state machines: PEM private-key
//! blocks (header, base64 body, footer) and the `data:`/`stringData:` blocks of Kubernetes
//! Secrets. A line longer than [`WINDOW`] is processed in windows that overlap by
//! [`OVERLAP`] bytes, and a secret that touches a window's end is held back until more text
//! arrives, so memory stays bounded without missing secrets shorter than the overlap.

use crate::ansi::{GHOST, GHOST_BYTES};
use crate::known::{KnownMatcher, KnownSecrets};
use crate::rules::{Hit, RuleSet, Special};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A partial line is processed once it reaches this many bytes.
pub(crate) const WINDOW: usize = 64 * 1024;
/// How much of a window is carried into the next one.
pub(crate) const OVERLAP: usize = 4096;

/// Label used for known values.
pub(crate) const KNOWN_VALUE: &str = "known-value";

/// Counts of redactions per rule id.
pub type RedactionCounts = BTreeMap<String, u64>;

/// A compiled redactor: the rule set plus the known values of one session or run.
#[derive(Debug, Clone)]
pub struct Redactor {
    rules: &'static RuleSet,
    known: Option<Arc<KnownMatcher>>,
    known_values: usize,
    pem: Vec<usize>,
    k8s: Vec<usize>,
}

#[derive(Debug, Clone)]
enum Kind {
    Rule(usize),
    Known,
    /// Removed without a marker (the continuation of a multi-line secret).
    Drop,
    /// Replaced by this text (a line rebuilt after ghost analysis, or an inserted newline).
    Text(String),
}

/// A line's bookkeeping, kept across lines to reuse its memory: the rules run and how far
/// each one's window reached, the hits that became spans as they are, one run's hits, and
/// the rules a line triggers.
type LineScratch<'a> = (
    &'a mut Vec<(usize, usize)>,
    &'a mut Vec<Hit>,
    &'a mut Vec<Hit>,
    &'a mut Vec<usize>,
);

#[derive(Debug, Clone)]
struct Span {
    start: usize,
    end: usize,
    kind: Kind,
}

#[derive(Debug, Clone, Copy)]
enum K8sState {
    Yaml { indent: usize, string_data: bool },
    Json { string_data: bool },
}

impl Redactor {
    /// A redactor with the built-in rules and these known values.
    ///
    /// ```
    /// use execkit_protect::{KnownSecrets, Redactor};
    /// let mut known = KnownSecrets::new();
    /// known.add("hunter2-correct-horse");
    /// let r = Redactor::new(&known);
    /// let out = r.redact_str("login with hunter2-correct-horse and password=Summer2024\n");
    /// assert_eq!(out.text, "login with [REDACTED:known-value] and password=[REDACTED:password-assignment]\n");
    /// assert_eq!(out.counts["password-assignment"], 1);
    /// ```
    pub fn new(known: &KnownSecrets) -> Redactor {
        Self::with_rules(RuleSet::builtin(), known)
    }

    /// A redactor with a specific rule set.
    pub fn with_rules(rules: &'static RuleSet, known: &KnownSecrets) -> Redactor {
        let known_ac = KnownMatcher::new(known.search_forms()).map(Arc::new);
        Redactor {
            rules,
            known: known_ac,
            known_values: known.len(),
            pem: rules.special_rules(Special::Pem),
            k8s: rules.special_rules(Special::K8sData),
        }
    }

    /// The rule set in use.
    pub fn rules(&self) -> &'static RuleSet {
        self.rules
    }

    /// How many known values are searched for.
    pub fn known_values(&self) -> usize {
        self.known_values
    }

    /// Redacts a complete text (a command line, a cwd, a file).
    pub fn redact_str(&self, text: &str) -> Redacted {
        let mut s = self.stream();
        let mut out = String::with_capacity(text.len());
        s.push(text, &mut out);
        let counts = s.finish(&mut out);
        Redacted { text: out, counts }
    }

    /// A streaming redactor sharing this redactor's compiled state.
    pub fn stream(&self) -> StreamRedactor {
        StreamRedactor {
            r: self.clone(),
            carry: String::new(),
            pem: false,
            k8s: None,
            counts: vec![0; self.rules.rules().len() + 1],
        }
    }

    fn known_index(&self) -> usize {
        self.rules.rules().len()
    }

    /// Finds secrets on one line (no multi-line state), relative offsets.
    fn line_hits(&self, line: &[u8], hits: &mut Vec<Hit>) {
        self.rules.scan_line(line, hits);
        if let Some(known) = &self.known {
            let mut found = Vec::new();
            known.find_all(line, &mut found);
            for (start, end) in found {
                hits.push(Hit {
                    start,
                    end,
                    rule: self.known_index(),
                });
            }
        }
    }
}

impl Redactor {
    /// The reference for [`Redactor::redact_str`], for tests and fuzzing: each line's
    /// secrets found the plain way (every rule with a keyword on the line, its patterns
    /// over the whole line with the capture engine; see `RuleSet::reference_line_hits`)
    /// and the known values, merged and written as the redactor writes them. Only for
    /// text in which no line opens a secret spanning lines (a PEM key, a Kubernetes
    /// `data:` block) and no terminal overwrite was marked: `None` for other text.
    #[doc(hidden)]
    pub fn redact_reference(&self, text: &str) -> Option<Redacted> {
        let b = text.as_bytes();
        if !self.rules.multiline_openers(b, 0).is_empty()
            || memchr::memmem::find(b, GHOST_BYTES).is_some()
        {
            return None;
        }
        let mut stream = self.stream();
        let mut spans = Vec::new();
        if let Some(known) = &self.known {
            let mut found = Vec::new();
            known.find_all(b, &mut found);
            spans.extend(found.into_iter().map(|(start, end)| Span {
                start,
                end,
                kind: Kind::Known,
            }));
        }
        let mut hits = Vec::new();
        let mut ls = 0;
        while ls < b.len() {
            let le = line_end(b, ls);
            hits.clear();
            self.rules
                .reference_line_hits(&b[ls..content_end(b, ls, le)], &mut hits);
            spans.extend(hits.iter().map(|&h| stream.span_of(h, ls)));
            ls = le;
        }
        let merged = merge(text, &mut spans);
        let mut out = String::with_capacity(text.len());
        stream.emit(text, merged, &mut out);
        Some(Redacted {
            text: out,
            counts: stream.counts(),
        })
    }
}

/// The result of [`Redactor::redact_str`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redacted {
    /// The text with every secret replaced by `[REDACTED:<rule-id>]`.
    pub text: String,
    /// Redactions per rule id.
    pub counts: RedactionCounts,
}

/// Redacts a stream of text pushed in arbitrary pieces.
#[derive(Debug, Clone)]
pub struct StreamRedactor {
    r: Redactor,
    carry: String,
    pem: bool,
    k8s: Option<K8sState>,
    counts: Vec<u64>,
}

fn line_end(b: &[u8], from: usize) -> usize {
    memchr::memchr(b'\n', &b[from..])
        .map(|i| from + i + 1)
        .unwrap_or(b.len())
}

fn line_start(b: &[u8], at: usize) -> usize {
    memchr::memrchr(b'\n', &b[..at]).map(|i| i + 1).unwrap_or(0)
}

fn content_end(b: &[u8], start: usize, end: usize) -> usize {
    if end > start && b[end - 1] == b'\n' {
        end - 1
    } else {
        end
    }
}

fn is_pem_body(line: &[u8]) -> bool {
    let t = line.trim_ascii();
    if t.is_empty() {
        return true;
    }
    if t.iter()
        .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'='))
    {
        return true;
    }
    // Armor headers of encrypted PEM and PGP blocks.
    [
        b"Proc-Type:".as_slice(),
        b"DEK-Info:",
        b"Version:",
        b"Comment:",
        b"Hash:",
    ]
    .iter()
    .any(|h| t.starts_with(h))
}

/// Looks like the base64 value of a Secret's `data:` entry (and not a ConfigMap word).
fn looks_base64_value(v: &[u8]) -> bool {
    v.len() >= 4
        && v.len().is_multiple_of(4)
        && v.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'='))
        && (v
            .iter()
            .any(|c| c.is_ascii_digit() || matches!(c, b'+' | b'/' | b'='))
            || (v.iter().any(u8::is_ascii_uppercase) && v.iter().any(u8::is_ascii_lowercase)))
}

pub(crate) use crate::boundary::{ceil_boundary, floor_boundary};

impl StreamRedactor {
    /// Pushes text; appends redacted text (whole lines, or windows of very long lines).
    pub fn push(&mut self, text: &str, out: &mut String) {
        let mut text = text;
        if !self.carry.is_empty() {
            match memchr::memchr(b'\n', text.as_bytes()) {
                Some(nl) => {
                    let mut block = std::mem::take(&mut self.carry);
                    block.push_str(&text[..=nl]);
                    self.process(&block, out);
                    text = &text[nl + 1..];
                }
                None => {
                    self.carry.push_str(text);
                    self.flush_windows(out);
                    return;
                }
            }
        }
        match memchr::memrchr(b'\n', text.as_bytes()) {
            Some(last) => {
                self.process(&text[..=last], out);
                self.carry.push_str(&text[last + 1..]);
            }
            None => self.carry.push_str(text),
        }
        self.flush_windows(out);
    }

    /// Ends the stream: processes the last partial line; returns the counts.
    pub fn finish(&mut self, out: &mut String) -> RedactionCounts {
        let rest = std::mem::take(&mut self.carry);
        if !rest.is_empty() {
            self.process(&rest, out);
        }
        if self.pem && !out.ends_with('\n') {
            out.push('\n');
        }
        self.pem = false;
        self.k8s = None;
        self.counts()
    }

    /// Gives back the unprocessed partial line and forgets any open multi-line secret,
    /// keeping the counts: the next text is scanned as if the stream started there (the
    /// pipeline's middle skip; see `pipeline`).
    pub(crate) fn restart(&mut self) -> String {
        self.pem = false;
        self.k8s = None;
        std::mem::take(&mut self.carry)
    }

    /// Whether a multi-line secret (a PEM key, a Kubernetes `data:` block) is open.
    pub(crate) fn in_multiline(&self) -> bool {
        self.pem || self.k8s.is_some()
    }

    /// Where keywords sit, in `text[from..]`, on lines that open a secret spanning lines:
    /// the first of each such line, in order.
    pub(crate) fn multiline_openers(&self, text: &str, from: usize) -> Vec<usize> {
        self.r.rules.multiline_openers(text.as_bytes(), from)
    }

    /// For `text` starting at a line that opens a multi-line secret: the end of the first
    /// complete line after which no such secret is open any more, as a fresh redactor
    /// reading `text` line by line would see it; `None` while one is still open at the
    /// last complete line. (The line that closes a Kubernetes block belongs to the text
    /// after it, but ending after it is only more cautious.)
    pub(crate) fn multiline_end(&self, text: &str) -> Option<usize> {
        let mut scratch = self.r.stream();
        let mut sink = String::new();
        let mut at = 0;
        while let Some(nl) = memchr::memchr(b'\n', &text.as_bytes()[at..]) {
            let end = at + nl + 1;
            scratch.push(&text[at..end], &mut sink);
            sink.clear();
            at = end;
            if !scratch.in_multiline() {
                return Some(at);
            }
        }
        None
    }

    /// Redactions so far, per rule id.
    pub fn counts(&self) -> RedactionCounts {
        let rules = self.r.rules.rules();
        let mut map = RedactionCounts::new();
        for (i, &n) in self.counts.iter().enumerate() {
            if n > 0 {
                let id = rules.get(i).map(|r| r.id.as_str()).unwrap_or(KNOWN_VALUE);
                map.insert(id.to_string(), n);
            }
        }
        map
    }

    /// Processes windows of an overlong partial line.
    fn flush_windows(&mut self, out: &mut String) {
        while self.carry.len() >= WINDOW {
            if memchr::memmem::find(self.carry.as_bytes(), GHOST_BYTES).is_some() {
                self.carry = crate::ansi::remove_ghosts(&self.carry);
                if self.carry.len() < WINDOW {
                    return;
                }
            }
            self.pem = false;
            self.k8s = None;
            let wlen = floor_boundary(&self.carry, WINDOW);
            let window = &self.carry[..wlen];
            let mut hits = Vec::new();
            self.r.line_hits(window.as_bytes(), &mut hits);
            let mut spans: Vec<Span> = hits.into_iter().map(|h| self.span_of(h, 0)).collect();
            let merged = merge(window, &mut spans);
            let mut commit = floor_boundary(window, WINDOW - OVERLAP);
            for s in &merged {
                if s.start < commit && s.end > commit {
                    commit = if s.end >= wlen { s.start } else { s.end };
                }
            }
            if commit == 0 {
                commit = wlen;
            }
            let kept: Vec<Span> = merged.into_iter().filter(|s| s.end <= commit).collect();
            let head = self.carry[..commit].to_string();
            self.emit(&head, kept, out);
            self.carry.drain(..commit);
        }
    }

    fn span_of(&self, h: Hit, base: usize) -> Span {
        let kind = if h.rule == self.r.known_index() {
            Kind::Known
        } else {
            Kind::Rule(h.rule)
        };
        Span {
            start: base + h.start,
            end: base + h.end,
            kind,
        }
    }

    /// Redacts a block of whole lines (the last may lack its newline at end of stream).
    fn process(&mut self, text: &str, out: &mut String) {
        let b = text.as_bytes();
        let mut spans: Vec<Span> = Vec::new();
        let mut pos = self.continue_state(b, 0, &mut spans);
        if let Some(known) = &self.r.known {
            let mut found = Vec::new();
            known.find_all(b, &mut found);
            for (start, end) in found {
                spans.push(Span {
                    start,
                    end,
                    kind: Kind::Known,
                });
            }
        }
        let rules = self.r.rules;
        let mut kws = Vec::new();
        rules.keyword_hits(b, &mut kws);
        crate::packed_sort::sort_hits(&mut kws);
        let mut hits = Vec::new();
        // Per line: the rules already run, and how far each one's window reached.
        let mut line_rules: Vec<(usize, usize)> = Vec::new();
        // Per line: the hits found so far that became spans as they are (not PEM keys,
        // whose spans run on to their end marker), for `RuleSet::run_rule`'s `prior`.
        let mut line_hits: Vec<Hit> = Vec::new();
        let mut triggered: Vec<usize> = Vec::new();
        let mut line = (usize::MAX, 0usize, 0usize); // (start, content end, end)
                                                     // End of a line that opened a multi-line secret: its other keywords are handled
                                                     // first, then the lines that continue the secret are consumed.
        let mut pending: Option<usize> = None;
        let mut i = 0;
        while i < kws.len() {
            let (at, at_end, k) = kws[i];
            if let Some(le) = pending.filter(|&le| at >= le) {
                pos = self.continue_state(b, le, &mut spans);
                pending = None;
                line = (usize::MAX, 0, 0);
            }
            if at < pos {
                i += 1;
                continue;
            }
            if at >= line.2 || line.0 == usize::MAX {
                let ls = line_start(b, at).max(pos);
                let le = line_end(b, at);
                line = (ls, content_end(b, ls, le), le);
                line_rules.clear();
                line_hits.clear();
                let n = kws[i..].iter().take_while(|kw| kw.0 < le).count();
                self.run_in_rule_order(
                    b,
                    line,
                    &kws[i..i + n],
                    (&mut line_rules, &mut line_hits, &mut hits, &mut triggered),
                    &mut spans,
                );
            }
            let (ls, ce, le) = line;
            let text = &b[ls..ce];
            let (rel, rel_end) = ((at - ls).min(text.len()), (at_end - ls).min(text.len()));
            let mut pem_open = false;
            let mut k8s = None;
            for &r in rules.keyword_owners(k) {
                if line_rules
                    .iter()
                    .any(|&(rr, reach)| rr == r && reach >= (rel_end + 1024).min(text.len()))
                {
                    continue;
                }
                if self.r.k8s.contains(&r) {
                    if k8s.is_none() && self.k8s.is_none() {
                        k8s = self.k8s_header(text);
                    }
                    continue;
                }
                hits.clear();
                // Covered matches are skipped on short lines only (see `RuleSet::run_rule`).
                let short = crate::rules::windows_cover(text.len());
                let prior = short.then_some(&line_hits[..]);
                let reach = rules.run_rule_near(r, text, rel, rel_end, &mut hits, prior);
                line_rules.push((r, reach));
                if short && !self.r.pem.contains(&r) {
                    line_hits.extend_from_slice(&hits);
                }
                for h in &hits {
                    if self.r.pem.contains(&h.rule) {
                        let end_marker = rules.pem_end().find_at(text, h.end).map(|m| m.end());
                        match end_marker {
                            Some(e) => spans.push(Span {
                                start: ls + h.start,
                                end: ls + e,
                                kind: Kind::Rule(h.rule),
                            }),
                            None => {
                                spans.push(Span {
                                    start: ls + h.start,
                                    end: le,
                                    kind: Kind::Rule(h.rule),
                                });
                                pem_open = true;
                            }
                        }
                    } else {
                        spans.push(self.span_of(*h, ls));
                    }
                }
            }
            i += 1;
            if pem_open {
                self.pem = true;
                pending = Some(le);
            } else if k8s.is_some() {
                self.k8s = k8s;
                pending = Some(le);
            }
        }
        if let Some(le) = pending {
            self.continue_state(b, le, &mut spans);
        }
        if memchr::memmem::find(b, GHOST_BYTES).is_some() {
            self.rebuild_ghost_lines(text, &mut spans);
        }
        let merged = merge(text, &mut spans);
        self.emit(text, merged, out);
    }

    /// At a line's first keyword: when the line is short enough that every window is the
    /// whole line ([`crate::rules::windows_cover`]), runs every rule its keywords trigger,
    /// once each, in the order the rules are listed, and records them as run (the
    /// per-keyword loop then skips them). Which rules run and what each finds is as in
    /// the per-keyword order; what changes is that a provider rule (`aws-access-key-id`,
    /// `github-pat`, listed early) finds a value before the key-name rules listed after it
    /// (`credential-assignment`, `dotenv-secret`, `token-assignment`) find the same value,
    /// whose judging (the value gate) `RuleSet::run_rule` then skips as covered. Lines that
    /// trigger a multi-line rule (PEM keys, Kubernetes `data:`) keep the per-keyword order,
    /// which their handling follows.
    fn run_in_rule_order(
        &self,
        b: &[u8],
        (ls, ce, _): (usize, usize, usize),
        line_kws: &[(usize, usize, usize)],
        (line_rules, line_hits, hits, triggered): LineScratch,
        spans: &mut Vec<Span>,
    ) {
        let text = &b[ls..ce];
        // One keyword: its owners are already in rule order (`RuleSet::keyword_owners`).
        if line_kws.len() < 2 || !crate::rules::windows_cover(text.len()) {
            return;
        }
        let rules = self.r.rules;
        let owners = || {
            line_kws
                .iter()
                .flat_map(|&(_, _, k)| rules.keyword_owners(k).iter().copied())
        };
        // Met in rule order already (`Authorization: Bearer …`): nothing to reorder.
        let mut last = 0;
        if owners().all(|r| std::mem::replace(&mut last, r) <= r)
            || owners().any(|r| rules.rules()[r].special != Special::None)
        {
            return;
        }
        triggered.clear();
        triggered.extend(owners());
        triggered.sort_unstable();
        triggered.dedup();
        for &r in triggered.iter() {
            hits.clear();
            let reach = rules.run_rule_near(r, text, 0, 0, hits, Some(line_hits));
            line_rules.push((r, reach));
            line_hits.extend_from_slice(hits);
            spans.extend(hits.iter().map(|h| self.span_of(*h, ls)));
        }
    }

    fn k8s_header(&self, line: &[u8]) -> Option<K8sState> {
        let r = *self.r.k8s.first()?;
        if !self.r.rules.k8s_header(r, line) {
            return None;
        }
        let t = line.trim_ascii_start();
        let string_data = t.starts_with(b"stringData") || t.starts_with(b"\"stringData");
        if t.ends_with(b"{") || line.trim_ascii_end().ends_with(b"{") {
            Some(K8sState::Json { string_data })
        } else {
            Some(K8sState::Yaml {
                indent: line.len() - t.len(),
                string_data,
            })
        }
    }

    /// Consumes the lines that continue an open multi-line secret, from `pos`; returns
    /// where ordinary scanning resumes.
    fn continue_state(&mut self, b: &[u8], mut pos: usize, spans: &mut Vec<Span>) -> usize {
        while pos < b.len() && (self.pem || self.k8s.is_some()) {
            let le = line_end(b, pos);
            let ce = content_end(b, pos, le);
            let line = &b[pos..ce];
            if self.pem {
                if let Some(m) = self.r.rules.pem_end().find(line) {
                    spans.push(Span {
                        start: pos,
                        end: pos + m.end(),
                        kind: Kind::Drop,
                    });
                    self.pem = false;
                    pos = le;
                    continue;
                }
                if is_pem_body(line) && le > ce {
                    spans.push(Span {
                        start: pos,
                        end: le,
                        kind: Kind::Drop,
                    });
                    pos = le;
                    continue;
                }
                if is_pem_body(line) {
                    // The last, unterminated line of the stream.
                    spans.push(Span {
                        start: pos,
                        end: le,
                        kind: Kind::Drop,
                    });
                    return le;
                }
                // The block ended without a footer: restore the newline eaten with the
                // last body line, and scan this line normally.
                self.pem = false;
                spans.push(Span {
                    start: pos,
                    end: pos,
                    kind: Kind::Text("\n".into()),
                });
                return pos;
            }
            let Some(state) = self.k8s else { break };
            match self.k8s_entry(state, line) {
                Some(Some((vs, ve))) => {
                    if let Some(&r) = self.r.k8s.first() {
                        spans.push(Span {
                            start: pos + vs,
                            end: pos + ve,
                            kind: Kind::Rule(r),
                        });
                    }
                }
                Some(None) => {}
                None => {
                    self.k8s = None;
                    return pos;
                }
            }
            // Entries are also scanned by the ordinary rules.
            let mut hits = Vec::new();
            self.r.rules.scan_line(line, &mut hits);
            for h in hits {
                if !self.r.pem.contains(&h.rule) {
                    spans.push(self.span_of(h, pos));
                }
            }
            if matches!(state, K8sState::Json { .. }) && line.trim_ascii().starts_with(b"}") {
                self.k8s = None;
            }
            pos = le;
        }
        pos
    }

    /// For a line inside a data block: `None` if the block has ended, `Some(None)` for a
    /// line without a secret value, `Some(Some(range))` for a value to redact.
    #[allow(clippy::option_option)]
    fn k8s_entry(&self, state: K8sState, line: &[u8]) -> Option<Option<(usize, usize)>> {
        let t = line.trim_ascii_start();
        let indent = line.len() - t.len();
        let (string_data, value_at) = match state {
            K8sState::Yaml {
                indent: hi,
                string_data,
            } => {
                if t.is_empty() {
                    return Some(None);
                }
                if indent <= hi || t.starts_with(b"#") {
                    return if indent <= hi { None } else { Some(None) };
                }
                let colon = memchr::memchr(b':', t)?;
                (string_data, indent + colon + 1)
            }
            K8sState::Json { string_data } => {
                if t.starts_with(b"}") {
                    return Some(None);
                }
                if !t.starts_with(b"\"") {
                    return None;
                }
                let close = memchr::memchr(b'"', &t[1..])? + 1;
                let colon = memchr::memchr(b':', &t[close..])? + close;
                (string_data, indent + colon + 1)
            }
        };
        let rest = &line[value_at..];
        let lead = rest.len() - rest.trim_ascii_start().len();
        let mut v = rest.trim_ascii();
        let mut start = value_at + lead;
        if v.ends_with(b",") {
            v = &v[..v.len() - 1];
        }
        if v.len() >= 2 && (v[0] == b'"' || v[0] == b'\'') && v[v.len() - 1] == v[0] {
            v = &v[1..v.len() - 1];
            start += 1;
        }
        if v.is_empty() || v == b"|" || v == b">" || self.r.rules.is_placeholder(v) {
            return Some(None);
        }
        if string_data || looks_base64_value(v) {
            Some(Some((start, start + v.len())))
        } else {
            Some(None)
        }
    }

    /// Lines with ghost characters are analysed twice — as shown, and with the ghost
    /// characters put back — and rebuilt as shown, with the union of both analyses
    /// redacted.
    fn rebuild_ghost_lines(&mut self, text: &str, spans: &mut Vec<Span>) {
        let b = text.as_bytes();
        let mut ranges = Vec::new();
        let mut from = 0;
        while let Some(i) = memchr::memmem::find(&b[from..], GHOST_BYTES) {
            let at = from + i;
            let ls = line_start(b, at);
            let le = line_end(b, at);
            ranges.push((ls, content_end(b, ls, le)));
            from = le;
        }
        for &(ls, ce) in &ranges {
            spans.retain(|s| s.end <= ls || s.start >= ce);
            let rebuilt = self.redact_ghost_line(&text[ls..ce]);
            spans.push(Span {
                start: ls,
                end: ce,
                kind: Kind::Text(rebuilt),
            });
        }
    }

    fn redact_ghost_line(&mut self, line: &str) -> String {
        // visible: ghost pairs removed; alt: markers removed, ghost chars kept.
        let mut visible = String::with_capacity(line.len());
        let mut alt = String::with_capacity(line.len());
        let mut alt_to_vis: Vec<usize> = Vec::with_capacity(line.len() + 1);
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            if c == GHOST {
                if let Some(g) = chars.next() {
                    for _ in 0..g.len_utf8() {
                        alt_to_vis.push(visible.len());
                    }
                    alt.push(g);
                }
                continue;
            }
            for _ in 0..c.len_utf8() {
                alt_to_vis.push(visible.len());
            }
            visible.push(c);
            alt.push(c);
        }
        alt_to_vis.push(visible.len());
        let mut hits = Vec::new();
        self.r.line_hits(visible.as_bytes(), &mut hits);
        let mut spans: Vec<Span> = hits.drain(..).map(|h| self.span_of(h, 0)).collect();
        self.r.line_hits(alt.as_bytes(), &mut hits);
        for h in hits {
            let mut s = self.span_of(h, 0);
            s.start = alt_to_vis[s.start];
            s.end = alt_to_vis[s.end];
            if s.end > s.start {
                spans.push(s);
            }
        }
        let merged = merge(&visible, &mut spans);
        let mut out = String::with_capacity(visible.len());
        self.emit(&visible, merged, &mut out);
        out
    }

    fn emit(&mut self, text: &str, spans: Vec<Span>, out: &mut String) {
        let mut cur = 0;
        for s in spans {
            out.push_str(&text[cur..s.start]);
            match s.kind {
                Kind::Rule(r) => {
                    self.counts[r] += 1;
                    out.push_str("[REDACTED:");
                    out.push_str(&self.r.rules.rules()[r].id);
                    out.push(']');
                }
                Kind::Known => {
                    let k = self.r.known_index();
                    self.counts[k] += 1;
                    out.push_str("[REDACTED:");
                    out.push_str(KNOWN_VALUE);
                    out.push(']');
                }
                Kind::Drop => {}
                Kind::Text(t) => out.push_str(&t),
            }
            cur = s.end;
        }
        out.push_str(&text[cur..]);
    }
}

/// Sorts spans, widens them to char boundaries and merges overlaps: the earliest start
/// wins the label, then the longest, then rule order.
fn merge(text: &str, spans: &mut [Span]) -> Vec<Span> {
    for s in spans.iter_mut() {
        s.start = floor_boundary(text, s.start);
        s.end = ceil_boundary(text, s.end);
    }
    let prio = |k: &Kind| match k {
        Kind::Text(_) => 0,
        Kind::Drop => 1,
        Kind::Known => 2,
        Kind::Rule(r) => 3 + r,
    };
    let keys: Vec<(usize, usize, usize)> = spans
        .iter()
        .map(|s| (s.start, s.end, prio(&s.kind)))
        .collect();
    let order = crate::packed_sort::span_order(&keys).unwrap_or_else(|| {
        let mut order: Vec<usize> = (0..spans.len()).collect();
        order.sort_by(|&a, &b| {
            let (x, y) = (keys[a], keys[b]);
            x.0.cmp(&y.0).then(y.1.cmp(&x.1)).then(x.2.cmp(&y.2))
        });
        order
    });
    let mut merged: Vec<Span> = Vec::with_capacity(spans.len());
    for s in order.into_iter().map(|i| &spans[i]) {
        if let Some(last) = merged.last_mut() {
            if s.start < last.end {
                last.end = last.end.max(s.end);
                continue;
            }
        }
        merged.push(s.clone());
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn span(h: &Hit) -> Span {
        Span {
            start: h.start,
            end: h.end,
            kind: Kind::Rule(h.rule),
        }
    }

    /// What `merge` gives, as comparable tuples (every span here is a rule's).
    fn merged(text: &str, hits: &[Hit]) -> Vec<(usize, usize, Option<usize>)> {
        let mut spans: Vec<Span> = hits.iter().map(span).collect();
        merge(text, &mut spans)
            .iter()
            .map(|s| {
                let rule = match s.kind {
                    Kind::Rule(r) => Some(r),
                    _ => None,
                };
                (s.start, s.end, rule)
            })
            .collect()
    }

    /// The case the proptest below found against a first `Hit::covers` that let a hit
    /// starting later inside the same character count as covered whatever its rule: both
    /// widen to the `€` at 2..5, and the one listed first labels the span.
    #[test]
    fn a_hit_inside_the_same_character_is_not_covered_by_a_later_listed_rule() {
        let text = "ab\u{20ac}d";
        let h = Hit {
            start: 3,
            end: 5,
            rule: 1,
        };
        let c = Hit {
            start: 4,
            end: 5,
            rule: 0,
        };
        assert!(!h.covers(&c));
        assert_eq!(merged(text, &[h]), vec![(2, 5, Some(1))]);
        assert_eq!(merged(text, &[h, c]), vec![(2, 5, Some(0))]);
    }

    proptest! {
        /// The fast path skips judging a match that a hit found earlier on the line covers
        /// (`RuleSet::run_rule`): sound only if adding the covered hit never changes what
        /// `merge` gives, labels included, on text with multi-byte characters (spans are
        /// widened to character boundaries first).
        #[test]
        fn a_covered_hit_changes_no_merged_span_or_label(
            raw in prop::collection::vec((0usize..40, 1usize..12, 0usize..4), 1..7),
            pick in any::<prop::sample::Index>(),
            (from, len, rule) in (0usize..12, 1usize..12, 0usize..4),
        ) {
            let text = "ab\u{20ac}d".repeat(16);
            let hits: Vec<Hit> = raw
                .iter()
                .map(|&(start, len, rule)| Hit { start, end: start + len, rule })
                .collect();
            let h = hits[pick.index(hits.len())];
            let start = (h.start + from).min(h.end - 1);
            let c = Hit { start, end: (start + len).min(h.end), rule };
            let with: Vec<Hit> = hits.iter().copied().chain([c]).collect();
            if h.covers(&c) {
                prop_assert_eq!(merged(&text, &hits), merged(&text, &with));
            } else {
                // Not covered: within h (by construction) but listed before h's rule.
                prop_assert!(h.start <= c.start && c.end <= h.end && c.rule < h.rule);
            }
        }
    }
}
