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

use crate::matching::keyword_search::LineKeywords;
use crate::matching::known::{KnownMatcher, KnownSecrets};
use crate::rules::OVERLAP;
use crate::rules::{Hit, RuleSet, Special};
use crate::stream::ansi::{GHOST, GHOST_BYTES};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A partial line is processed once it reaches this many bytes.
pub(crate) const WINDOW: usize = 64 * 1024;

/// Label used for known values.
pub(crate) const KNOWN_VALUE: &str = "known-value";
/// What a known value is replaced by.
const KNOWN_MARKER: &str = "[REDACTED:known-value]";

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
    /// The rule opening name/value pairs over lines, if the rule file has one.
    pairs: Option<usize>,
    /// The rule opening a secret's block scalar, if the rule file has one.
    scalars: Option<usize>,
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

/// An open block whose lines are read one by one: a Kubernetes Secret's `data:` (YAML or
/// JSON), or a name/value pair whose value follows its name's line.
#[derive(Debug, Clone)]
enum K8sState {
    Yaml {
        indent: usize,
        string_data: bool,
        /// Inside an entry whose value is a block scalar (`config.json: |`). Its text
        /// follows on the lines indented deeper, whatever they hold (no key, a `#`, a
        /// colon of their own): each is the value.
        scalar: Option<YamlScalar>,
    },
    Json {
        string_data: bool,
    },
    /// `- name: DB_PASSWORD` read: the pair's keys sit at column `key_col` (after the list
    /// item's dash), and its `value` is judged with `name`. `nested`: the header was a
    /// member whose value is an object (`"db_password": {`, Terraform's outputs), whose
    /// keys sit deeper than `key_col` (the header's column), `name` its key.
    Pair {
        key_col: usize,
        name: Box<str>,
        nested: bool,
    },
    /// `password: |` read, or a pair's `value: |` under `- name: DB_PASSWORD`: the key
    /// sits at column `key_col`; the lines indented deeper are the scalar's text, each
    /// judged with `name` and labelled by rule `rule`.
    Scalar {
        key_col: usize,
        name: Box<str>,
        rule: usize,
    },
}

/// An open block scalar in a YAML data block (see [`K8sState::Yaml`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct YamlScalar {
    /// The entry's indentation: the scalar's lines are indented deeper.
    indent: usize,
    /// Inside PEM armor (`-----BEGIN CERTIFICATE-----` to its `-----END`): text, not the
    /// base64 a Secret's `data` holds. A ConfigMap's `ca.crt: |` (`kube-root-ca.crt` is in
    /// every namespace) is a public certificate.
    armored: bool,
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
            pairs: rules.special_rules(Special::NameValue).first().copied(),
            scalars: rules.special_rules(Special::SecretScalar).first().copied(),
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
            pem: None,
            k8s: None,
            k8s_prefix: LinePrefix::none(),
            counts: vec![0; self.rules.rules().len() + 1],
            scratch: Scratch::default(),
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
        stream.emit(text, &merged, &mut out);
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
    /// An open PEM key: the shape of the text before its header, which its other lines
    /// repeat (see [`LinePrefix`]).
    pem: Option<LinePrefix>,
    k8s: Option<K8sState>,
    /// The shape of the prefix an open Kubernetes block's lines carry (empty for a plain
    /// manifest; `     3\t` for `cat -n`, see [`LinePrefix`]).
    k8s_prefix: LinePrefix,
    counts: Vec<u64>,
    /// Buffers each block fills, kept between blocks (see [`Scratch`]).
    scratch: Scratch,
}

/// The buffers [`StreamRedactor::process`] fills for one block, kept between blocks so
/// that their memory is reused: growing each block's vectors from empty would be about 4%
/// of the work on secret-dense text. Emptied at each block's start; trimmed when
/// a block left one far larger than usual ([`Scratch::trim`]).
#[derive(Debug, Default)]
struct Scratch {
    spans: Vec<Span>,
    known: Vec<(usize, usize)>,
    kws: Vec<(usize, usize, usize)>,
    hits: Vec<Hit>,
    line_rules: Vec<(usize, usize)>,
    line_hits: Vec<Hit>,
    triggered: Vec<usize>,
    pem_forms_read: Vec<usize>,
    headers_read: Vec<usize>,
}

/// A clone starts with empty buffers: they hold no state between blocks.
impl Clone for Scratch {
    fn clone(&self) -> Scratch {
        Scratch::default()
    }
}

impl Scratch {
    /// Entries a buffer keeps room for between blocks; a larger one (a block of keyword
    /// floods) is shrunk back so that a stream's idle memory stays small.
    const KEEP: usize = 1 << 14;

    fn clear(&mut self) {
        self.spans.clear();
        self.known.clear();
        self.kws.clear();
        self.hits.clear();
        self.line_rules.clear();
        self.line_hits.clear();
        self.triggered.clear();
        self.pem_forms_read.clear();
        self.headers_read.clear();
    }

    fn trim(&mut self) {
        fn keep<T>(v: &mut Vec<T>) {
            if v.capacity() > Scratch::KEEP {
                v.clear();
                v.shrink_to(Scratch::KEEP);
            }
        }
        keep(&mut self.spans);
        keep(&mut self.known);
        keep(&mut self.kws);
        keep(&mut self.hits);
        keep(&mut self.line_hits);
    }
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

/// A line holding ghost characters (see [`crate::stream::ansi`]) in the two forms the redactor
/// judges it in: `visible`, as shown (each ghost pair removed), and `alt`, with each ghost
/// character put back (its marker removed). `*_at[i]` is where byte `i` of that form lies
/// in the marked line (`*_at[len]` is the line's end), so a range found in a form maps back.
///
/// The multi-line state machines (PEM keys, Kubernetes `data:` blocks) read a line in both
/// forms: read as marked, a colourised key line (`ESC[32m` + `MIIE…`: the `m` is kept as a
/// ghost before the token) would be no base64, close the key, and let the rest of it through.
#[derive(Debug, Default)]
struct GhostForms {
    visible: Vec<u8>,
    vis_at: Vec<usize>,
    alt: Vec<u8>,
    alt_at: Vec<usize>,
}

impl GhostForms {
    /// The forms of `line`, with their offset maps, if it holds a ghost marker.
    fn of(line: &[u8]) -> Option<GhostForms> {
        memchr::memmem::find(line, GHOST_BYTES)?;
        let mut f = GhostForms::default();
        f.fill(line, true);
        Some(f)
    }

    /// Makes these the forms of `line`, with the offset maps only when `maps` (reusing the
    /// buffers).
    fn fill(&mut self, line: &[u8], maps: bool) {
        self.visible.clear();
        self.vis_at.clear();
        self.alt.clear();
        self.alt_at.clear();
        let mut i = 0;
        while i < line.len() {
            let (plain, next) = if line[i..].starts_with(GHOST_BYTES) {
                let g = i + GHOST_BYTES.len();
                (
                    g..(g + utf8_width(line.get(g).copied())).min(line.len()),
                    None,
                )
            } else {
                let end = memchr::memchr(GHOST_BYTES[0], &line[i + 1..])
                    .map_or(line.len(), |j| i + 1 + j);
                (i..end, Some(i..end))
            };
            // `plain` goes to the alt form (a ghost character or plain text), `next` to
            // the visible one too (plain text only).
            self.alt.extend_from_slice(&line[plain.clone()]);
            if maps {
                self.alt_at.extend(plain.clone());
            }
            if let Some(r) = next {
                self.visible.extend_from_slice(&line[r.clone()]);
                if maps {
                    self.vis_at.extend(r);
                }
            }
            i = plain.end;
        }
        if maps {
            self.vis_at.push(line.len());
            self.alt_at.push(line.len());
        }
    }

    /// Both forms, each with its offset map.
    fn forms(&self) -> [(&[u8], &[usize]); 2] {
        [(&self.visible, &self.vis_at), (&self.alt, &self.alt_at)]
    }
}

/// Whether either form of the ghost line `line` opens a secret spanning lines (a PEM key,
/// a Kubernetes block); `scratch` holds the forms and keyword hits between calls. Most
/// ghost lines are coloured text that opens nothing: this costs two copies of the line and
/// two scans for the few multi-line keywords, without the offset maps.
fn ghost_line_opens(rules: &RuleSet, line: &[u8], scratch: &mut GhostScratch) -> bool {
    scratch.forms.fill(line, false);
    rules.opens_multiline(&scratch.forms.visible, &mut scratch.hits)
        || rules.opens_multiline(&scratch.forms.alt, &mut scratch.hits)
}

/// Buffers reused by [`ghost_line_opens`].
#[derive(Debug, Default)]
struct GhostScratch {
    forms: GhostForms,
    hits: Vec<(usize, usize, usize)>,
}

/// The marked line's range of bytes `s..e` of a form whose offset map is `at`: from its
/// first byte to just past its last (a ghost pair right after it stays outside).
fn marked_range(at: &[usize], s: usize, e: usize) -> (usize, usize) {
    if e > s {
        (at[s], at[e - 1] + 1)
    } else {
        (at[s], at[s])
    }
}

/// Adds to `kws` the keywords of both forms of every ghost line of `b` that opens a secret
/// spanning lines (offsets in `b`): ordinary rules do not run on ghost lines before their
/// own analysis, so only these lines need visiting for keywords the marks split.
fn ghost_line_keywords(rules: &RuleSet, b: &[u8], kws: &mut Vec<(usize, usize, usize)>) {
    let mut from = 0;
    let mut found = Vec::new();
    let mut scratch = GhostScratch::default();
    while let Some(i) = memchr::memmem::find(&b[from..], GHOST_BYTES) {
        let at = from + i;
        let ls = line_start(b, at);
        let le = line_end(b, at);
        let ce = content_end(b, ls, le);
        from = le.max(at + 1);
        if !ghost_line_opens(rules, &b[ls..ce], &mut scratch) {
            continue;
        }
        if let Some(g) = GhostForms::of(&b[ls..ce]) {
            for (form, map) in g.forms() {
                found.clear();
                rules.keyword_hits(form, &mut found);
                kws.extend(found.iter().map(|&(s, e, k)| {
                    let (s, e) = marked_range(map, s, e);
                    (ls + s, ls + e, k)
                }));
            }
        }
    }
}

/// The length of the UTF-8 character whose first byte is `lead` (0 for none).
fn utf8_width(lead: Option<u8>) -> usize {
    match lead {
        None => 0,
        Some(b) if b < 0xC0 => 1,
        Some(b) if b < 0xE0 => 2,
        Some(b) if b < 0xF0 => 3,
        Some(_) => 4,
    }
}

/// The PEM footers after each of a line's headers, in order: a footer found from one header
/// is the first after every later header before it, and none found means none after any
/// later one, so the line is searched once however many headers it holds (searching from
/// each header would cost the square of their number on a line of them).
#[derive(Debug, Default)]
struct FooterSearch {
    /// Where the last search started and what it found.
    last: Option<(usize, Option<(usize, usize)>)>,
}

impl FooterSearch {
    /// The first footer at or after `from` in `hay`, as `(start, end)`.
    fn next_range(
        &mut self,
        footer: &regex::bytes::Regex,
        hay: &[u8],
        from: usize,
    ) -> Option<(usize, usize)> {
        match self.last {
            Some((searched, found)) if searched <= from => match found {
                None => return None,
                Some((s, e)) if s >= from => return Some((s, e)),
                Some(_) => {}
            },
            _ => {}
        }
        let found = footer.find_at(hay, from).map(|m| (m.start(), m.end()));
        self.last = Some((from, found));
        found
    }

    /// Where the first footer at or after `from` ends.
    fn next(&mut self, footer: &regex::bytes::Regex, hay: &[u8], from: usize) -> Option<usize> {
        self.next_range(footer, hay, from).map(|(_, e)| e)
    }
}

/// The longest text before a header taken for a listing's prefix (see [`LinePrefix`]).
const MAX_LINE_PREFIX: usize = 256;

/// The shape of the text before a PEM key's header on its line, which the key's other lines
/// repeat with other numbers: `     1\t` (`cat -n`, `nl`), `12:` (`grep -n`), `> ` (a
/// quote), a log line's timestamp and level. Runs of digits match any run of digits, the
/// blanks it starts with any run of blanks (numbers are right-aligned), `:` and `-` each
/// other (`grep -n -A` marks context lines with `-` where the matching line has `:`), any
/// other byte itself (blanks after the start are separators: what follows them is the
/// line's own indentation). Without it, the second line of a numbered key would be no
/// base64, close the key, and the rest of it would be shown.
///
/// A key in a listed file's code (`     2\tKEY = """-----BEGIN …`) has its other lines
/// after the listing's prefix alone (`     3\tMIIE…`): a body line may have that shape too
/// (see [`crate::rules::value_gate::listing_len`]). Without it, `cat -n` of such a file, as an
/// agent reads code, showed the key's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LinePrefix {
    /// The shape of the whole text before the header.
    parts: Vec<PrefixPart>,
    /// The shape of the listing's prefix that text starts with, when more text follows it;
    /// else empty.
    listing: Vec<PrefixPart>,
    /// The mark the header's line ends in after the header, which the key's other lines
    /// end in too (`cat -A`'s `$`, see [`LINE_END_MARKS`]); empty for none.
    end_mark: &'static [u8],
}

use crate::rules::LINE_END_MARKS;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PrefixPart {
    /// One or more ASCII digits.
    Digits,
    /// Zero or more spaces and tabs (only at the start).
    Blanks,
    /// This byte.
    Byte(u8),
}

impl LinePrefix {
    /// The shape of `prefix`; none (lines are read as they are) for text longer than any
    /// listing puts before a line, [`MAX_LINE_PREFIX`] bytes.
    fn of(prefix: &[u8]) -> LinePrefix {
        if prefix.len() > MAX_LINE_PREFIX {
            return LinePrefix::none();
        }
        let listing = match crate::rules::value_gate::listing_len(prefix) {
            Some(n) if n < prefix.len() => shape(&prefix[..n]),
            _ => Vec::new(),
        };
        LinePrefix {
            parts: shape(prefix),
            listing,
            end_mark: b"",
        }
    }

    /// No prefix: lines are read as they are.
    fn none() -> LinePrefix {
        LinePrefix {
            parts: Vec::new(),
            listing: Vec::new(),
            end_mark: b"",
        }
    }

    /// This shape, with the line-end mark `after_header` (the header's line after the
    /// header) is, if it is one (see [`LINE_END_MARKS`]).
    fn ending(mut self, after_header: &[u8]) -> LinePrefix {
        let after = after_header.trim_ascii_start();
        self.end_mark = LINE_END_MARKS
            .into_iter()
            .find(|m| after == *m)
            .unwrap_or(b"");
        self
    }

    /// The rest of `line` after a prefix of this shape, if it starts with one.
    fn strip<'a>(&self, line: &'a [u8]) -> Option<&'a [u8]> {
        strip_shape(&self.parts, line)
    }

    /// Whether `line` continues the key: a body line as it is, or after a prefix of this
    /// shape or of its listing's.
    fn is_body(&self, line: &[u8]) -> bool {
        let line = line.strip_suffix(self.end_mark).unwrap_or(line);
        is_pem_body(line)
            || (!self.parts.is_empty() && self.strip(line).is_some_and(is_pem_body))
            || (!self.listing.is_empty()
                && strip_shape(&self.listing, line).is_some_and(is_pem_body))
    }
}

/// The shape of a line's prefix (see [`LinePrefix`]).
fn shape(prefix: &[u8]) -> Vec<PrefixPart> {
    let mut parts: Vec<PrefixPart> = Vec::new();
    for &c in prefix {
        let leading = parts.is_empty() || parts == [PrefixPart::Blanks];
        let part = match c {
            b'0'..=b'9' => PrefixPart::Digits,
            b' ' | b'\t' if leading => PrefixPart::Blanks,
            _ => PrefixPart::Byte(c),
        };
        let repeats = matches!(part, PrefixPart::Digits | PrefixPart::Blanks);
        if !(repeats && parts.last() == Some(&part)) {
            parts.push(part);
        }
    }
    parts
}

/// The rest of `line` after a prefix of shape `parts`, if it starts with one.
fn strip_shape<'a>(parts: &[PrefixPart], line: &'a [u8]) -> Option<&'a [u8]> {
    let mut i = 0;
    for part in parts {
        match part {
            PrefixPart::Digits => {
                let n = line[i..].iter().take_while(|c| c.is_ascii_digit()).count();
                if n == 0 {
                    return None;
                }
                i += n;
            }
            PrefixPart::Blanks => {
                i += line[i..]
                    .iter()
                    .take_while(|&&c| c == b' ' || c == b'\t')
                    .count();
            }
            PrefixPart::Byte(c) => {
                let same = |b: &u8| b == c || matches!((b, c), (b':', b'-') | (b'-', b':'));
                if !line.get(i).is_some_and(same) {
                    return None;
                }
                i += 1;
            }
        }
    }
    Some(&line[i..])
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
    // A key printed as text (`openssl pkey -text`): hex bytes joined by `:`, and the names
    // of the private parts after `privateExponent:` (`pub:` and anything else ends it).
    let bytes = t.strip_suffix(b":").unwrap_or(t);
    if bytes
        .split(|&c| c == b':')
        .all(|b| b.len() == 2 && b.iter().all(u8::is_ascii_hexdigit))
    {
        return true;
    }
    if [
        b"prime1:".as_slice(),
        b"prime2:",
        b"exponent1:",
        b"exponent2:",
        b"coefficient:",
    ]
    .contains(&t)
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

/// The state a name/value pair's header line (without prefix) opens: `- name: X`, `name: X`,
/// `"name": "X",`, `- {key: X,`; `None` when its name cannot be read.
fn pair_state(line: &[u8]) -> Option<K8sState> {
    let t = line.trim_ascii_start();
    let mut key_col = line.len() - t.len();
    for opener in [b'-', b'{'] {
        let t = &line[key_col..];
        if t.first() == Some(&opener) {
            key_col += 1 + (t[1..].len() - t[1..].trim_ascii_start().len());
        }
    }
    let (key, value_at) = key_at(line, key_col)?;
    if line[value_at..].trim_ascii() == b"{" {
        return Some(K8sState::Pair {
            key_col,
            name: std::str::from_utf8(key).ok()?.into(),
            nested: true,
        });
    }
    let name = std::str::from_utf8(crate::rules::pair_name(&line[value_at..])).ok()?;
    Some(K8sState::Pair {
        key_col,
        name: name.into(),
        nested: false,
    })
}

/// A pair's key on `line` and where its value starts: at column `key_col` (see
/// [`pair_key`]), or, for a `nested` pair, at the line's own indentation when that is
/// deeper than `key_col`.
fn pair_member(line: &[u8], key_col: usize, nested: bool) -> Option<(&[u8], usize)> {
    if !nested {
        return pair_key(line, key_col);
    }
    let indent = line.len() - line.trim_ascii_start().len();
    (indent > key_col).then(|| key_at(line, indent)).flatten()
}

/// The state a secret's block scalar header (without prefix) opens: `password: |`,
/// `- "api_token": >-`; `None` when its key cannot be read.
fn scalar_state(line: &[u8], rule: usize) -> Option<K8sState> {
    let t = line.trim_ascii_start();
    let mut key_col = line.len() - t.len();
    if let Some(rest) = t.strip_prefix(b"-") {
        key_col += 1 + (rest.len() - rest.trim_ascii_start().len());
    }
    let colon = key_col + memchr::memchr(b':', &line[key_col..])?;
    let key = line[key_col..colon].trim_ascii();
    let key = key
        .strip_prefix(b"\"")
        .and_then(|k| k.strip_suffix(b"\""))
        .or_else(|| key.strip_prefix(b"'").and_then(|k| k.strip_suffix(b"'")))
        .unwrap_or(key);
    let name = std::str::from_utf8(key).ok()?;
    Some(K8sState::Scalar {
        key_col,
        name: name.into(),
        rule,
    })
}

/// The key a line of a pair writes at column `key_col` (quoted or not, as YAML and JSON
/// write keys) and where its value starts (after the `:` or `=`); `None` when the line
/// holds no key there.
fn pair_key(line: &[u8], key_col: usize) -> Option<(&[u8], usize)> {
    if line.len() <= key_col || !line[..key_col].iter().all(|&b| b == b' ' || b == b'\t') {
        return None;
    }
    key_at(line, key_col)
}

/// The key written at `at` in `line` and where its value starts (see [`pair_key`]).
fn key_at(line: &[u8], mut at: usize) -> Option<(&[u8], usize)> {
    let first = *line.get(at)?;
    let quote = matches!(first, b'"' | b'\'').then_some(first);
    at += usize::from(quote.is_some());
    let start = at;
    while at < line.len()
        && (line[at].is_ascii_alphanumeric() || matches!(line[at], b'_' | b'-' | b'.'))
    {
        at += 1;
    }
    let key = &line[start..at];
    if key.is_empty() {
        return None;
    }
    if let Some(q) = quote {
        (line.get(at) == Some(&q)).then_some(())?;
        at += 1;
    }
    while line.get(at).is_some_and(|b| *b == b' ' || *b == b'\t') {
        at += 1;
    }
    matches!(line.get(at), Some(b':' | b'=')).then_some((key, at + 1))
}

/// Whether `key` can name an entry of a Kubernetes Secret: Kubernetes allows only ASCII
/// letters, digits, `-`, `_` and `.` there, so `"image/png"` under a Jupyter output's
/// `"data"` is no Secret's entry.
fn secret_key(key: &[u8]) -> bool {
    !key.is_empty()
        && key
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Whether a pair's key holds its value (`value`, `Value`, `ParameterValue`; not
/// `valueFrom`).
fn is_value_key(key: &[u8]) -> bool {
    key.eq_ignore_ascii_case(b"value") || key.eq_ignore_ascii_case(b"parametervalue")
}

/// Whether an entry's value (the text after its key's colon) is a YAML block scalar's
/// header, which a comment may follow (`|`, `>-  # a note`): its text is on the lines below.
fn opens_block_scalar(value: &[u8]) -> bool {
    let value = value.trim_ascii();
    let header = value
        .split(|b| b.is_ascii_whitespace())
        .next()
        .unwrap_or_default();
    let after = value[header.len()..].trim_ascii_start();
    block_scalar_header(header) && (after.is_empty() || after.starts_with(b"#"))
}

/// Whether `v` is a YAML block scalar's header: `|` or `>`, then at most a chomping
/// indicator (`-`, `+`) and an indentation digit, in either order.
fn block_scalar_header(v: &[u8]) -> bool {
    match v.split_first() {
        Some((b'|' | b'>', rest)) => {
            rest.len() <= 2
                && rest.iter().filter(|b| matches!(b, b'-' | b'+')).count() <= 1
                && rest.iter().filter(|b| matches!(b, b'1'..=b'9')).count() <= 1
                && rest.iter().all(|b| matches!(b, b'-' | b'+' | b'1'..=b'9'))
        }
        _ => false,
    }
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
        if self.pem.is_some() && !out.ends_with('\n') {
            out.push('\n');
        }
        self.pem = None;
        self.k8s = None;
        self.counts()
    }

    /// Gives back the unprocessed partial line and forgets any open multi-line secret,
    /// keeping the counts: the next text is scanned as if the stream started there (the
    /// pipeline's middle skip; see `pipeline`).
    pub(crate) fn restart(&mut self) -> String {
        self.pem = None;
        self.k8s = None;
        std::mem::take(&mut self.carry)
    }

    /// Whether a multi-line secret (a PEM key, a Kubernetes `data:` block) is open.
    pub(crate) fn in_multiline(&self) -> bool {
        self.pem.is_some() || self.k8s.is_some()
    }

    /// Where keywords sit, in `text[from..]`, on lines that open a secret spanning lines:
    /// the first of each such line, in order. A ghost line opens one when either of its
    /// forms does (as the redactor reads it); it is reported at its first ghost.
    pub(crate) fn multiline_openers(&self, text: &str, from: usize) -> Vec<usize> {
        let b = text.as_bytes();
        let mut openers = self.r.rules.multiline_openers(b, from);
        let Some(rest) = b.get(from..) else {
            return openers;
        };
        let mut at = 0;
        let mut ghostly = Vec::new();
        let mut scratch = GhostScratch::default();
        while let Some(i) = memchr::memmem::find(&rest[at..], GHOST_BYTES) {
            let ghost = from + at + i;
            let ls = line_start(b, ghost);
            let le = line_end(b, ghost);
            let line = &b[ls..content_end(b, ls, le)];
            if ghost_line_opens(self.r.rules, line, &mut scratch) {
                ghostly.push(ghost);
            }
            at = le - from;
        }
        if !ghostly.is_empty() {
            // One per line: a line found both ways keeps its first.
            openers.extend(ghostly);
            openers.sort_unstable();
            openers.dedup_by_key(|&mut o| line_start(b, o));
        }
        openers
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
                self.carry = crate::stream::ansi::remove_ghosts(&self.carry);
                if self.carry.len() < WINDOW {
                    return;
                }
            }
            self.pem = None;
            self.k8s = None;
            let wlen = floor_boundary(&self.carry, WINDOW);
            let window = &self.carry[..wlen];
            let mut hits = Vec::new();
            self.r.line_hits(window.as_bytes(), &mut hits);
            let mut spans: Vec<Span> = hits.into_iter().map(|h| self.span_of(h, 0)).collect();
            let merged = merge(window, &mut spans).into_owned();
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
            self.emit(&head, &kept, out);
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
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        let Scratch {
            spans,
            known: found,
            kws,
            hits,
            line_rules,
            line_hits,
            triggered,
            pem_forms_read,
            headers_read,
        } = &mut scratch;
        let mut pos = self.continue_state(b, 0, spans);
        if let Some(known) = &self.r.known {
            known.find_all(b, found);
            for &(start, end) in found.iter() {
                spans.push(Span {
                    start,
                    end,
                    kind: Kind::Known,
                });
            }
        }
        let rules = self.r.rules;
        rules.keyword_hits(b, kws);
        let ghosted = memchr::memmem::find(b, GHOST_BYTES).is_some();
        if ghosted {
            // A ghost can split a keyword (`ESC[1m` + `data:` keeps the `m`): a ghost line
            // is visited for the keywords of both its forms too, so that a key or a
            // Kubernetes block it opens is seen (the line itself is redacted afresh from
            // its forms, see `rebuild_ghost_lines`).
            ghost_line_keywords(rules, b, kws);
        }
        crate::stream::packed_sort::sort_hits(kws);
        if ghosted {
            kws.dedup();
        }
        // `hits`: one run's hits. `line_rules`: per line, the rules already run, and how
        // far each one's window reached. `line_hits`: per line, the hits found so far that
        // became spans as they are (not PEM keys, whose spans run on to their end marker),
        // for `RuleSet::run_rule`'s `prior`.
        // The current line: (start, content end, end).
        let mut line = (usize::MAX, 0usize, 0usize);
        // The current line's keyword hits (`kws[line_kws]`, every one on the line: those
        // before it start before the line or before `pos`, where its text starts).
        let mut line_kws = 0..0;
        // Whether the current line holds a ghost: its ordinary rules' spans would be
        // replaced by its own analysis (`rebuild_ghost_lines`), so only the multi-line
        // rules run on it here.
        let mut ghost_line = false;
        // `pem_forms_read`: the PEM rules already run on the current ghost line's forms
        // (once per line, not once per keyword: a line of many headers read its forms once
        // per header). `headers_read`: the block rules the current line was read for a
        // header by (once per line and rule: a pair's keywords, `key`, `token`…, may recur
        // many times on a long line).
        // End of a line that opened a multi-line secret: its other keywords are handled
        // first, then the lines that continue the secret are consumed.
        let mut pending: Option<usize> = None;
        let mut i = 0;
        while i < kws.len() {
            let (at, at_end, k) = kws[i];
            if let Some(le) = pending.filter(|&le| at >= le) {
                pos = self.continue_state(b, le, spans);
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
                ghost_line = ghosted && memchr::memmem::find(&b[ls..line.1], GHOST_BYTES).is_some();
                pem_forms_read.clear();
                headers_read.clear();
                let n = kws[i..].iter().take_while(|kw| kw.0 < le).count();
                line_kws = i..i + n;
                if !ghost_line {
                    self.run_in_rule_order(
                        b,
                        line,
                        &kws[i..i + n],
                        (line_rules, line_hits, hits, triggered),
                        spans,
                    );
                }
            }
            let (ls, ce, le) = line;
            let text = &b[ls..ce];
            let (rel, rel_end) = ((at - ls).min(text.len()), (at_end - ls).min(text.len()));
            let mut pem_open: Option<LinePrefix> = None;
            let mut k8s = None;
            for &r in rules.keyword_owners(k) {
                if ghost_line && rules.rules()[r].special == Special::None {
                    continue;
                }
                if self.opens_blocks(r) {
                    if k8s.is_none() && self.k8s.is_none() && !headers_read.contains(&r) {
                        headers_read.push(r);
                        k8s = if ghost_line {
                            self.block_header(r, text)
                        } else {
                            self.block_header_of(r, text)
                        };
                    }
                    continue;
                }
                if line_rules
                    .iter()
                    .any(|&(rr, reach)| rr == r && reach >= (rel_end + 1024).min(text.len()))
                {
                    continue;
                }
                hits.clear();
                if ghost_line && self.r.pem.contains(&r) && !pem_forms_read.contains(&r) {
                    pem_forms_read.push(r);
                    if let Some(g) = GhostForms::of(text) {
                        // A key's header split by a ghost opens the key all the same.
                        if let Some(prefix) = self.pem_in_forms(r, &g, (ls, le), spans) {
                            pem_open = Some(prefix);
                        }
                    }
                }
                // Covered matches are skipped on short lines only (see `RuleSet::run_rule`).
                let short = crate::rules::windows_cover(text.len());
                let prior = short.then_some(&line_hits[..]);
                let on_line = LineKeywords {
                    hits: &kws[line_kws.clone()],
                    offset: ls,
                };
                let reach =
                    rules.run_rule_near(r, text, (rel, rel_end), hits, prior, Some(on_line));
                line_rules.push((r, reach));
                if short && !self.r.pem.contains(&r) {
                    line_hits.extend_from_slice(hits);
                }
                let mut footer = FooterSearch::default();
                let mut open_at = None;
                for h in hits.iter() {
                    if self.r.pem.contains(&h.rule) {
                        match footer.next(rules.pem_end(), text, h.end) {
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
                                open_at = Some((h.start, h.end));
                            }
                        }
                    } else {
                        spans.push(self.span_of(*h, ls));
                    }
                }
                if let Some((at, end)) = open_at {
                    pem_open = Some(LinePrefix::of(&text[..at]).ending(&text[end..]));
                }
            }
            i += 1;
            // One multi-line secret is open at a time: a line that opens both (a key's header
            // followed by `data:`) opens the key, whichever keyword came first. Were both
            // open, the Kubernetes block would outlive the key, and only chunk borders would
            // decide whether the lines after the key are read as its entries.
            if let Some(prefix) = pem_open {
                self.pem = Some(prefix);
                self.k8s = None;
                pending = Some(le);
            } else if let Some((state, prefix)) = k8s.filter(|_| self.pem.is_none()) {
                self.k8s = Some(state);
                self.k8s_prefix = prefix;
                pending = Some(le);
            }
        }
        if let Some(le) = pending {
            self.continue_state(b, le, spans);
        }
        if ghosted {
            self.rebuild_ghost_lines(text, spans);
        }
        let merged = merge(text, spans);
        self.emit(text, &merged, out);
        scratch.trim();
        self.scratch = scratch;
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
        // (A pair's header rule finds nothing itself: its line is read for the header by
        // the per-keyword loop whatever ran here.)
        if owners().all(|r| std::mem::replace(&mut last, r) <= r)
            || owners().any(|r| {
                !matches!(
                    rules.rules()[r].special,
                    Special::None | Special::NameValue | Special::SecretScalar
                )
            })
        {
            return;
        }
        triggered.clear();
        triggered.extend(owners());
        triggered.sort_unstable();
        triggered.dedup();
        for &r in triggered.iter() {
            hits.clear();
            let on_line = LineKeywords {
                hits: line_kws,
                offset: ls,
            };
            let reach = rules.run_rule_near(r, text, (0, 0), hits, Some(line_hits), Some(on_line));
            line_rules.push((r, reach));
            line_hits.extend_from_slice(hits);
            spans.extend(hits.iter().map(|h| self.span_of(*h, ls)));
        }
    }

    /// Whether rule `r` opens a block read line by line (a Kubernetes `data:` block, a
    /// name/value pair over lines).
    fn opens_blocks(&self, r: usize) -> bool {
        self.r.k8s.contains(&r) || self.r.pairs == Some(r) || self.r.scalars == Some(r)
    }

    /// The block that rule `r` (see [`StreamRedactor::opens_blocks`]) opens on `line`, if
    /// any; a ghost line opens one when either form does (as shown first).
    fn block_header(&self, r: usize, line: &[u8]) -> Option<(K8sState, LinePrefix)> {
        match GhostForms::of(line) {
            Some(g) => g
                .forms()
                .iter()
                .find_map(|(form, _)| self.block_header_of(r, form)),
            None => self.block_header_of(r, line),
        }
    }

    /// [`StreamRedactor::block_header`] for a line without ghosts; the header may follow a
    /// listing's prefix, which the block's lines then carry.
    fn block_header_of(&self, r: usize, line: &[u8]) -> Option<(K8sState, LinePrefix)> {
        let at = self.r.rules.header_at(r, line)?;
        // `data:$`, `- name: DB_PASSWORD$` (`cat -A`): the block's lines end in the mark
        // too, and the header is read without it.
        let (header, mark) = crate::rules::strip_line_end_mark(&line[at..]);
        let prefix = LinePrefix::of(&line[..at]).ending(mark);
        let state = if self.r.pairs == Some(r) {
            pair_state(header)?
        } else if self.r.scalars == Some(r) {
            scalar_state(header, r)?
        } else {
            Self::k8s_state(header)
        };
        Some((state, prefix))
    }

    /// The state a k8s-data header line (without prefix and line-end mark) opens.
    fn k8s_state(line: &[u8]) -> K8sState {
        let t = line.trim_ascii_start();
        let string_data = t.starts_with(b"stringData") || t.starts_with(b"\"stringData");
        if t.ends_with(b"{") || line.trim_ascii_end().ends_with(b"{") {
            K8sState::Json { string_data }
        } else {
            K8sState::Yaml {
                indent: line.len() - t.len(),
                string_data,
                scalar: None,
            }
        }
    }

    /// Consumes the lines that continue an open multi-line secret, from `pos`; returns
    /// where ordinary scanning resumes.
    fn continue_state(&mut self, b: &[u8], mut pos: usize, spans: &mut Vec<Span>) -> usize {
        while pos < b.len() && (self.pem.is_some() || self.k8s.is_some()) {
            // A run of empty lines that each continue the open secret as read one by one
            // below (a PEM key's body drops them; a YAML block or a pair goes on past them)
            // is taken at once: `data:` then a flood of newlines costs ~750 instructions a
            // line read singly, 25 times plain text.
            let run = b[pos..].iter().take_while(|&&c| c == b'\n').count();
            if run > 1 {
                if let Some(drop) = self.empty_line_continues() {
                    if drop {
                        spans.push(Span {
                            start: pos,
                            end: pos + run,
                            kind: Kind::Drop,
                        });
                    }
                    pos += run;
                    continue;
                }
            }
            let le = line_end(b, pos);
            let ce = content_end(b, pos, le);
            let line = &b[pos..ce];
            let ghosts = GhostForms::of(line);
            if let Some(prefix) = &self.pem {
                if let Some(end) = self.pem_footer_end(line, ghosts.as_ref()) {
                    spans.push(Span {
                        start: pos,
                        end: pos + end,
                        kind: Kind::Drop,
                    });
                    self.pem = None;
                    pos = le;
                    continue;
                }
                let body = match &ghosts {
                    Some(g) => g.forms().iter().any(|(form, _)| prefix.is_body(form)),
                    None => prefix.is_body(line),
                };
                if body && le > ce {
                    spans.push(Span {
                        start: pos,
                        end: le,
                        kind: Kind::Drop,
                    });
                    pos = le;
                    continue;
                }
                if body {
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
                self.pem = None;
                spans.push(Span {
                    start: pos,
                    end: pos,
                    kind: Kind::Text("\n".into()),
                });
                return pos;
            }
            let Some(state) = self.k8s.clone() else { break };
            // A ghost line is read in both forms: a value either shows is redacted, and the
            // block goes on unless both end it.
            let entries: Vec<Option<Option<(usize, usize)>>> = match &ghosts {
                Some(g) => g
                    .forms()
                    .iter()
                    .map(|(form, at)| {
                        self.k8s_line(&state, form)
                            .map(|v| v.map(|(vs, ve)| marked_range(at, vs, ve)))
                    })
                    .collect(),
                None => vec![self.k8s_line(&state, line)],
            };
            if entries.iter().all(Option::is_none) {
                self.k8s = None;
                return pos;
            }
            let label = match state {
                K8sState::Pair { .. } => self.r.pairs,
                K8sState::Scalar { rule, .. } => Some(rule),
                _ => self.r.k8s.first().copied(),
            };
            for (vs, ve) in entries.into_iter().flatten().flatten() {
                if let Some(r) = label {
                    spans.push(Span {
                        start: pos + vs,
                        end: pos + ve,
                        kind: Kind::Rule(r),
                    });
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
            let prefix = &self.k8s_prefix;
            let closes = |l: &[u8]| prefix.strip(l).unwrap_or(l).trim_ascii().starts_with(b"}");
            let closed = match &ghosts {
                Some(g) => g.forms().iter().all(|(form, _)| closes(form)),
                None => closes(line),
            };
            if matches!(state, K8sState::Json { .. }) && closed {
                self.k8s = None;
            }
            // A data entry whose value is a block scalar opens it; a line indented no
            // deeper than the entry closes it.
            if let K8sState::Yaml { scalar, .. } = state {
                let form = match &ghosts {
                    Some(g) => g.forms().first().map(|(form, _)| *form),
                    None => Some(line),
                };
                let next = form.and_then(|f| self.scalar_after(scalar, f));
                if let Some(K8sState::Yaml { scalar, .. }) = &mut self.k8s {
                    *scalar = next;
                }
            }
            // A pair ends with its value, whatever it was judged; a value that is a block
            // scalar's header (`value: |`) goes on over the lines below, judged with the
            // pair's name.
            if let K8sState::Pair {
                key_col,
                ref name,
                nested,
            } = state
            {
                // Whether `l` is the pair's value, and whether it opens a block scalar.
                let value = |l: &[u8]| {
                    let (c, _) = self.block_content(l)?;
                    let (key, value_at) = pair_member(c, key_col, nested)?;
                    is_value_key(key).then(|| opens_block_scalar(&c[value_at..]))
                };
                let read: Vec<Option<bool>> = match &ghosts {
                    Some(g) => g.forms().iter().map(|(form, _)| value(form)).collect(),
                    None => vec![value(line)],
                };
                if read.iter().any(Option::is_some) {
                    self.k8s = match (read.contains(&Some(true)), self.r.pairs) {
                        (true, Some(rule)) => Some(K8sState::Scalar {
                            key_col,
                            name: name.clone(),
                            rule,
                        }),
                        _ => None,
                    };
                }
            }
            pos = le;
        }
        pos
    }

    /// What an empty line does to the open multi-line secret, as [`Self::continue_state`]
    /// reads one: `Some(true)` when it continues a PEM key (and is dropped with it),
    /// `Some(false)` when it continues a YAML data block or a pair (and is kept), `None`
    /// when it may end the secret (a JSON block, a listing's prefix it lacks).
    fn empty_line_continues(&self) -> Option<bool> {
        if let Some(prefix) = &self.pem {
            return prefix.is_body(b"").then_some(true);
        }
        match self.k8s.as_ref()? {
            K8sState::Yaml { .. } | K8sState::Pair { .. } | K8sState::Scalar { .. } => {
                self.k8s_prefix.strip(b"").is_some().then_some(false)
            }
            K8sState::Json { .. } => None,
        }
    }

    /// PEM key headers that PEM rule `r` finds in either form of the ghost line at
    /// `ls..le` (`g`): each is redacted to its footer on the line, else to the line's end;
    /// returns the shape of the text before a header that runs past the line (the key is
    /// open).
    fn pem_in_forms(
        &self,
        r: usize,
        g: &GhostForms,
        (ls, le): (usize, usize),
        spans: &mut Vec<Span>,
    ) -> Option<LinePrefix> {
        let mut open = None;
        let mut hits = Vec::new();
        for (form, at) in g.forms() {
            hits.clear();
            self.r
                .rules
                .run_rule_near(r, form, (0, 0), &mut hits, None, None);
            let mut footer = FooterSearch::default();
            let mut open_at = None;
            for h in &hits {
                let (start, _) = marked_range(at, h.start, h.end);
                let end = match footer.next_range(self.r.rules.pem_end(), form, h.end) {
                    Some((ms, me)) => ls + marked_range(at, ms, me).1,
                    None => {
                        open_at = Some((h.start, h.end));
                        le
                    }
                };
                spans.push(Span {
                    start: ls + start,
                    end,
                    kind: Kind::Rule(h.rule),
                });
            }
            if let Some((at, end)) = open_at {
                open = Some(LinePrefix::of(&form[..at]).ending(&form[end..]));
            }
        }
        open
    }

    /// Where a PEM footer found on `line` ends (in the marked line), if either form of a
    /// ghost line or the line itself holds one; the furthest end when both forms do.
    fn pem_footer_end(&self, line: &[u8], ghosts: Option<&GhostForms>) -> Option<usize> {
        let footer = self.r.rules.pem_end();
        match ghosts {
            Some(g) => g
                .forms()
                .iter()
                .filter_map(|(form, at)| {
                    footer
                        .find(form)
                        .map(|m| marked_range(at, m.start(), m.end()).1)
                })
                .max(),
            None => footer.find(line).map(|m| m.end()),
        }
    }

    /// [`StreamRedactor::k8s_entry`] for a line of the open block, after the prefix its
    /// lines carry: a line without it ends the block.
    #[allow(clippy::option_option)]
    fn k8s_line(&self, state: &K8sState, line: &[u8]) -> Option<Option<(usize, usize)>> {
        let (content, shift) = self.block_content(line)?;
        self.k8s_entry(state, content)
            .map(|v| v.map(|(vs, ve)| (vs + shift, ve + shift)))
    }

    /// A line of an open block without the prefix its header's line carried and its
    /// line-end mark, and where that content starts; `None` for a line without the prefix.
    /// A blank line of a numbered listing (`     4\t` from `cat -n`) lacks the header's own
    /// indentation, which joined the prefix: it is read as a blank line of the block.
    fn block_content<'a>(&self, line: &'a [u8]) -> Option<(&'a [u8], usize)> {
        let content = match self.k8s_prefix.strip(line) {
            Some(c) => c,
            None => {
                let rest = strip_shape(&self.k8s_prefix.listing, line)
                    .filter(|_| !self.k8s_prefix.listing.is_empty())?;
                let rest = rest.strip_suffix(self.k8s_prefix.end_mark).unwrap_or(rest);
                if !rest.trim_ascii().is_empty() {
                    return None;
                }
                return Some((&line[line.len()..], line.len()));
            }
        };
        let shift = line.len() - content.len();
        let content = content
            .strip_suffix(self.k8s_prefix.end_mark)
            .unwrap_or(content);
        Some((content, shift))
    }

    /// The block scalar open in a YAML data block after `line` (see [`K8sState::Yaml`]),
    /// given the one open before it: kept over its text and blank lines (armored from a
    /// `-----BEGIN ` line to its `-----END `), else opened by an entry whose value is a
    /// block scalar's header (`key: |`, `key: >-`).
    fn scalar_after(&self, open: Option<YamlScalar>, line: &[u8]) -> Option<YamlScalar> {
        let (content, _) = self.block_content(line)?;
        let t = content.trim_ascii_start();
        let indent = content.len() - t.len();
        if t.is_empty() {
            return open;
        }
        if let Some(sc) = open.filter(|sc| indent > sc.indent) {
            let armored = if t.starts_with(b"-----BEGIN ") {
                true
            } else if t.starts_with(b"-----END ") {
                false
            } else {
                sc.armored
            };
            return Some(YamlScalar { armored, ..sc });
        }
        let colon = memchr::memchr(b':', t)?;
        opens_block_scalar(&t[colon + 1..]).then_some(YamlScalar {
            indent,
            armored: false,
        })
    }

    /// For a line inside a data block: `None` if the block has ended, `Some(None)` for a
    /// line without a secret value, `Some(Some(range))` for a value to redact.
    #[allow(clippy::option_option)]
    fn k8s_entry(&self, state: &K8sState, line: &[u8]) -> Option<Option<(usize, usize)>> {
        let t = line.trim_ascii_start();
        let indent = line.len() - t.len();
        let (string_data, value_at) = match *state {
            K8sState::Pair {
                key_col,
                ref name,
                nested,
            } => return self.pair_entry(key_col, name, nested, line),
            K8sState::Scalar {
                key_col, ref name, ..
            } => return self.scalar_entry(key_col, name, line),
            K8sState::Yaml {
                indent: hi,
                string_data,
                scalar,
            } => {
                if t.is_empty() {
                    return Some(None);
                }
                if let Some(sc) = scalar.filter(|sc| indent > sc.indent) {
                    // A line of a block scalar's text: the value itself. In `data` (a
                    // Secret's base64, or a ConfigMap's text) a private key's header ends
                    // the block: read as an ordinary line, it opens the key, whose lines
                    // are not base64 data. (In `stringData` every line is redacted.)
                    if !string_data && self.r.rules.opens_multiline(line, &mut Vec::new()) {
                        return None;
                    }
                    let v = t.trim_ascii_end();
                    let armor =
                        sc.armored || v.starts_with(b"-----BEGIN ") || v.starts_with(b"-----END ");
                    let secret = !self.r.rules.is_placeholder(v)
                        && (string_data || (!armor && looks_base64_value(v)));
                    return Some(secret.then_some((indent, indent + v.len())));
                }
                if indent <= hi || t.starts_with(b"#") {
                    return if indent <= hi { None } else { Some(None) };
                }
                // A Secret's data is a map: a list under `data:` (an ExternalSecret's
                // `- secretKey: …`) is no Secret's, and ends the block.
                if t.starts_with(b"- ") || t == b"-" {
                    return None;
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
                if !secret_key(&t[1..close]) {
                    // (`"image/png": "iVBOR…"` in a notebook's `"data"`.)
                    return Some(None);
                }
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
        if v.is_empty() || opens_block_scalar(rest) || self.r.rules.is_placeholder(v) {
            return Some(None);
        }
        if string_data || looks_base64_value(v) {
            Some(Some((start, start + v.len())))
        } else {
            Some(None)
        }
    }

    /// For a line after a pair's header (see [`K8sState::Pair`]): `None` once the pair has
    /// ended (a line that is not a key at the pair's column), `Some(None)` for a line of the
    /// pair without its value (a blank line, another key), `Some(Some(range))` for its
    /// value when the rules keep it.
    #[allow(clippy::option_option)]
    fn pair_entry(
        &self,
        key_col: usize,
        name: &str,
        nested: bool,
        line: &[u8],
    ) -> Option<Option<(usize, usize)>> {
        // A line that opens another multi-line secret (a PEM key in a sibling's value)
        // ends the pair: read as an ordinary line, it opens that one.
        if self.r.rules.opens_multiline(line, &mut Vec::new()) {
            return None;
        }
        let t = line.trim_ascii_start();
        if t.is_empty() {
            return Some(None);
        }
        // A sibling key at the pair's column; anything else (a nested line under
        // `valueFrom:`, a line to the left, the next item) ends the pair. In an object
        // (`nested`), any line deeper than its header is a member; one that is no key (a
        // nested object's `}`) is passed over.
        let Some((key, value_at)) = pair_member(line, key_col, nested) else {
            let deeper = line.len() - t.len() > key_col;
            return (nested && deeper).then_some(None);
        };
        if !is_value_key(key) {
            return Some(None);
        }
        let rest = &line[value_at..];
        let start = value_at + (rest.len() - rest.trim_ascii_start().len());
        let mut raw = rest.trim_ascii();
        if let Some(r) = raw.strip_suffix(b",") {
            raw = r.trim_ascii_end();
        }
        Some(
            self.r
                .rules
                .judge_pair(name, raw)
                .map(|(vs, ve)| (start + vs, start + ve)),
        )
    }

    /// For a line after a secret's block scalar header (see [`K8sState::Scalar`]): `None`
    /// once the scalar has ended (a line indented no deeper than its key, or one that opens
    /// another multi-line secret: read as an ordinary line, it opens that one),
    /// `Some(None)` for a blank line or text the rules keep, `Some(Some(range))` for text
    /// judged a secret as `KEY: text`.
    #[allow(clippy::option_option)]
    fn scalar_entry(
        &self,
        key_col: usize,
        name: &str,
        line: &[u8],
    ) -> Option<Option<(usize, usize)>> {
        let t = line.trim_ascii_start();
        if t.is_empty() {
            return Some(None);
        }
        let indent = line.len() - t.len();
        if indent <= key_col || self.r.rules.opens_multiline(line, &mut Vec::new()) {
            return None;
        }
        let raw = t.trim_ascii_end();
        Some(
            self.r
                .rules
                .judge_pair(name, raw)
                .map(|(vs, ve)| (indent + vs, indent + ve)),
        )
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
        // Which ranges a span overlaps, by binary search: the ranges are in order and
        // disjoint (searched linearly, a chunk of ghost lines with a span each would cost
        // the square of their number, ~650 instructions a byte).
        let overlapped = |s: &Span| {
            let i = ranges.partition_point(|&(_, ce)| ce <= s.start);
            ranges
                .get(i)
                .is_some_and(|&(ls, _)| ls < s.end)
                .then_some(i)
        };
        // The spans on ghost lines that the line's own analysis would not find again are
        // carried into it: what the multi-line state machines found (PEM key lines,
        // Kubernetes values), known values, inserted text. The part of such a span outside
        // its line stays where it is, without a second marker.
        let mut carried: Vec<Vec<Span>> = vec![Vec::new(); ranges.len()];
        let mut outside = Vec::new();
        spans.retain(|s| {
            let Some(i) = overlapped(s) else {
                return true;
            };
            let carries = match s.kind {
                Kind::Rule(r) => self.r.pem.contains(&r) || self.opens_blocks(r),
                Kind::Known | Kind::Drop | Kind::Text(_) => true,
            };
            if carries {
                let (ls, ce) = ranges[i];
                let mut inner = s.kind.clone();
                if s.start < ls {
                    outside.push(Span {
                        start: s.start,
                        end: ls,
                        kind: std::mem::replace(&mut inner, Kind::Drop),
                    });
                }
                if s.end > ce {
                    outside.push(Span {
                        start: ce,
                        end: s.end,
                        kind: Kind::Drop,
                    });
                }
                carried[i].push(Span {
                    start: s.start.max(ls) - ls,
                    end: s.end.min(ce) - ls,
                    kind: inner,
                });
            }
            false
        });
        spans.append(&mut outside);
        for (&(ls, ce), carried) in ranges.iter().zip(carried) {
            let rebuilt = self.redact_ghost_line(&text[ls..ce], carried);
            spans.push(Span {
                start: ls,
                end: ce,
                kind: Kind::Text(rebuilt),
            });
        }
    }

    /// A ghost line as shown, redacted: the union of what its two forms show and of the
    /// `carried` spans (offsets in the marked line) that other analyses found on it.
    fn redact_ghost_line(&mut self, line: &str, carried: Vec<Span>) -> String {
        // visible: ghost pairs removed; alt: markers removed, ghost chars kept.
        let mut visible = String::with_capacity(line.len());
        let mut alt = String::with_capacity(line.len());
        let mut alt_to_vis: Vec<usize> = Vec::with_capacity(line.len() + 1);
        // For each byte of the marked line: where it lies in `visible` (a ghost pair, at
        // the place it was removed from).
        let mut marked_to_vis: Vec<usize> = Vec::with_capacity(line.len() + 1);
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            if c == GHOST {
                marked_to_vis.extend(std::iter::repeat_n(visible.len(), c.len_utf8()));
                if let Some(g) = chars.next() {
                    for _ in 0..g.len_utf8() {
                        alt_to_vis.push(visible.len());
                    }
                    marked_to_vis.extend(std::iter::repeat_n(visible.len(), g.len_utf8()));
                    alt.push(g);
                }
                continue;
            }
            for _ in 0..c.len_utf8() {
                alt_to_vis.push(visible.len());
                marked_to_vis.push(visible.len());
            }
            visible.push(c);
            alt.push(c);
        }
        alt_to_vis.push(visible.len());
        marked_to_vis.push(visible.len());
        let mut hits = Vec::new();
        self.r.line_hits(visible.as_bytes(), &mut hits);
        let mut spans: Vec<Span> = hits.drain(..).map(|h| self.span_of(h, 0)).collect();
        for mut s in carried {
            s.start = marked_to_vis[s.start];
            s.end = marked_to_vis[s.end];
            spans.push(s);
        }
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
        self.emit(&visible, &merged, &mut out);
        out
    }

    fn emit(&mut self, text: &str, spans: &[Span], out: &mut String) {
        let mut cur = 0;
        for s in spans {
            out.push_str(&text[cur..s.start]);
            match &s.kind {
                Kind::Rule(r) => {
                    self.counts[*r] += 1;
                    out.push_str(&self.r.rules.rules()[*r].marker);
                }
                Kind::Known => {
                    let k = self.r.known_index();
                    self.counts[k] += 1;
                    out.push_str(KNOWN_MARKER);
                }
                Kind::Drop => {}
                Kind::Text(t) => out.push_str(t),
            }
            cur = s.end;
        }
        out.push_str(&text[cur..]);
    }
}

/// Sorts spans, widens them to char boundaries and merges overlaps: the earliest start
/// wins the label, then the longest, then rule order. An insertion (empty text span: the
/// newline given back after a key without a footer) goes before a span starting where it
/// stands; merged into it, the newline would be lost and two lines shown as one.
///
/// Spans that, widened, are already in order and apart (each non-empty, each ending at or
/// before the next starts: what a block of one secret per line gives) are that order and
/// merge nothing: they are returned as they are, without the sort and the copy.
fn merge<'a>(text: &str, spans: &'a mut [Span]) -> std::borrow::Cow<'a, [Span]> {
    for s in spans.iter_mut() {
        s.start = floor_boundary(text, s.start);
        s.end = ceil_boundary(text, s.end);
    }
    let apart =
        spans.iter().all(|s| s.start < s.end) && spans.windows(2).all(|w| w[0].end <= w[1].start);
    if apart {
        return std::borrow::Cow::Borrowed(spans);
    }
    std::borrow::Cow::Owned(merge_sorted(spans))
}

/// [`merge`] for spans widened to character boundaries, in any order.
fn merge_sorted(spans: &[Span]) -> Vec<Span> {
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
    let order = crate::stream::packed_sort::span_order(&keys).unwrap_or_else(|| {
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
            let insertion = s.start == s.end && matches!(s.kind, Kind::Text(_));
            if insertion && s.start == last.start {
                merged.insert(merged.len() - 1, s.clone());
                continue;
            }
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

    /// A stream keeps its block buffers between blocks, but not a flood's: after a block of
    /// keyword hits past the bound, each buffer is back within it, and what the stream
    /// writes is what a fresh stream writes.
    #[test]
    fn a_flood_leaves_no_large_buffers_behind() {
        let r = Redactor::new(&KnownSecrets::new());
        let flood = "key".repeat(40_000) + "\n";
        let after = "password=Abcdef12345678\n";
        let mut s = r.stream();
        let mut out = String::new();
        s.push(&flood, &mut out);
        let sc = &s.scratch;
        for (name, cap) in [
            ("spans", sc.spans.capacity()),
            ("known", sc.known.capacity()),
            ("kws", sc.kws.capacity()),
            ("hits", sc.hits.capacity()),
            ("line_hits", sc.line_hits.capacity()),
        ] {
            assert!(cap <= Scratch::KEEP, "{name} kept {cap}");
        }
        let mut tail = String::new();
        s.push(after, &mut tail);
        s.finish(&mut tail);
        let mut fresh = String::new();
        let mut f = r.stream();
        f.push(after, &mut fresh);
        f.finish(&mut fresh);
        assert_eq!(tail, fresh);
        assert_eq!(tail, "password=[REDACTED:password-assignment]\n");
    }

    /// Each redaction's marker names its rule (or the known values).
    #[test]
    fn markers_name_what_redacted() {
        for r in RuleSet::builtin().rules() {
            assert_eq!(r.marker, format!("[REDACTED:{}]", r.id));
        }
        assert_eq!(KNOWN_MARKER, format!("[REDACTED:{KNOWN_VALUE}]"));
    }
    use proptest::prelude::*;

    /// A pair's header and keys are read by hand from lines an agent's command prints: any
    /// line gives an answer, none a panic (a key cut off at the line's end, a lone quote).
    #[test]
    fn pair_lines_are_read_without_panicking_on_any_shape() {
        let reads = |l: &[u8]| match pair_state(l) {
            Some(K8sState::Pair { key_col, name, .. }) => Some((key_col, name.to_string())),
            _ => None,
        };
        assert_eq!(
            reads(b"- name: DB_PASSWORD"),
            Some((2, "DB_PASSWORD".into()))
        );
        assert_eq!(
            reads(b"  \"name\": \"API_TOKEN\","),
            Some((2, "API_TOKEN".into()))
        );
        assert_eq!(
            reads(b"- {key: DEPLOY_TOKEN,"),
            Some((3, "DEPLOY_TOKEN".into()))
        );
        for l in [
            &b""[..],
            b"-",
            b"- ",
            b"{",
            b"- {",
            b"\"",
            b"'name",
            b"\"name",
            b"name",
            b"name ",
        ] {
            assert_eq!(reads(l), None, "{:?}", String::from_utf8_lossy(l));
            for col in 0..=l.len() + 1 {
                assert_eq!(pair_key(l, col), None);
            }
        }
        assert_eq!(pair_key(b"  value: x", 2), Some((&b"value"[..], 8)));
        assert_eq!(pair_key(b"  value: x", 0), None);
    }

    fn span(h: &Hit) -> Span {
        Span {
            start: h.start,
            end: h.end,
            kind: Kind::Rule(h.rule),
        }
    }

    proptest! {
        /// Spans already in order and apart are returned as they are, and that is what the
        /// sort and merge give them; any other spans go through the sort and merge. Spans
        /// built from gaps and lengths (zero-length ones too, some out of order, some
        /// overlapping) over text with multi-byte characters.
        #[test]
        fn merging_spans_in_order_and_apart_changes_nothing(
            parts in proptest::collection::vec((0usize..4, 0usize..5, 0usize..4, any::<bool>()), 0..12),
        ) {
            let text = "ab\u{20ac}d=xyz \u{e9}\u{e9}k:v ".repeat(4);
            let mut spans = Vec::new();
            let mut at = 0usize;
            for &(gap, len, rule, back) in &parts {
                let start = if back { at.saturating_sub(gap) } else { at + gap };
                let end = (start + len).min(text.len());
                let start = start.min(end);
                spans.push(Span { start, end, kind: Kind::Rule(rule) });
                at = end;
            }
            let mut widened = spans.clone();
            for s in widened.iter_mut() {
                s.start = floor_boundary(&text, s.start);
                s.end = ceil_boundary(&text, s.end);
            }
            let want = merge_sorted(&widened);
            let got = merge(&text, &mut spans);
            let key = |v: &[Span]| -> Vec<(usize, usize, String)> {
                v.iter().map(|s| (s.start, s.end, format!("{:?}", s.kind))).collect()
            };
            prop_assert_eq!(key(&got), key(&want));
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

        /// The footer search made once per line answers, for headers in order, what a
        /// search from each header's end finds; and a prefix shape strips every line its
        /// own text would (the same prefix with other numbers).
        #[test]
        fn a_footer_search_per_line_finds_what_each_search_would(
            pieces in proptest::collection::vec(
                proptest::sample::select(vec![
                    "-----END RSA PRIVATE KEY-----", "-----END", "x", " ", "\t", "-",
                    "-----BEGIN RSA PRIVATE KEY-----",
                ]),
                0..24,
            ),
            froms in proptest::collection::vec(0usize..400, 0..12),
        ) {
            let rules = RuleSet::builtin();
            let hay = pieces.concat();
            let mut froms: Vec<usize> = froms.into_iter().map(|f| f % (hay.len() + 1)).collect();
            froms.sort_unstable();
            let mut search = FooterSearch::default();
            for from in froms {
                let direct = rules.pem_end().find_at(hay.as_bytes(), from).map(|m| (m.start(), m.end()));
                prop_assert_eq!(search.next_range(rules.pem_end(), hay.as_bytes(), from), direct);
            }
        }

        #[test]
        fn a_prefix_shape_strips_its_own_listing(
            pad in 0usize..7, number in 0u32..200_000, sep in proptest::sample::select(vec!["\t", ":", "-", ": ", "> ", " INFO "]),
            other in 0u32..200_000, rest in "[A-Za-z0-9+/ ]{0,20}",
        ) {
            let header = format!("{}{number}{sep}", " ".repeat(pad));
            let shape = LinePrefix::of(header.as_bytes());
            prop_assert_eq!(shape.strip(header.as_bytes()), Some(&b""[..]));
            let line = format!("{}{other}{sep}{rest}", " ".repeat(pad.saturating_sub(1)));
            prop_assert_eq!(shape.strip(line.as_bytes()), Some(rest.as_bytes()));
        }
    }
}
