//! Bounded capture and output budgets.
//!
//! The operator's [`CaptureLimits`] bound the memory kept per stream, whatever the output
//! size: by default the first `head_bytes` and the last `tail_bytes`, with the elided
//! middle marked by its exact size. A caller's [`Budget`] can only narrow that: keep the
//! first or last N lines, both, or the lines matching a pattern (with context) — `grep`
//! sees every line of the stream as it flows, so a needle in the middle of a gigabyte is
//! found — and cap the result in characters. Totals (bytes, lines) are always exact.

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// How much of each stream is kept in memory (operator configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaptureLimits {
    /// Bytes kept from the start of the stream.
    pub head_bytes: usize,
    /// Bytes kept from the end of the stream.
    pub tail_bytes: usize,
    /// Longest line handled as one line by line budgets; longer lines are cut into pieces.
    pub max_line_bytes: usize,
}

impl Default for CaptureLimits {
    fn default() -> Self {
        CaptureLimits {
            head_bytes: 32 * 1024,
            tail_bytes: 32 * 1024,
            max_line_bytes: 16 * 1024,
        }
    }
}

impl CaptureLimits {
    fn total(&self) -> usize {
        self.head_bytes + self.tail_bytes
    }
}

/// What to keep of a stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum BudgetMode {
    /// The first and last bytes allowed by the capture limits.
    #[default]
    Full,
    /// The first `lines` lines.
    Head {
        /// How many lines.
        lines: usize,
    },
    /// The last `lines` lines.
    Tail {
        /// How many lines.
        lines: usize,
    },
    /// The first `head` and the last `tail` lines.
    HeadTail {
        /// Lines from the start.
        head: usize,
        /// Lines from the end.
        tail: usize,
    },
    /// Lines matching `pattern` (a regex), with `context` lines around each.
    Grep {
        /// The regex.
        pattern: String,
        /// Lines of context before and after each match.
        #[serde(default)]
        context: usize,
    },
}

/// A caller's output budget: a mode and an optional character cap.
///
/// ```
/// use execkit_protect::Budget;
/// let b: Budget = serde_json::from_str(r#"{"mode":"grep","pattern":"error","context":1,"max_chars":2000}"#).unwrap();
/// assert_eq!(b.max_chars, Some(2000));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Budget {
    /// What to keep.
    #[serde(flatten)]
    pub mode: BudgetMode,
    /// At most this many characters of text are returned (markers included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_chars: Option<usize>,
}

impl Budget {
    /// Everything the capture limits keep.
    pub fn full() -> Budget {
        Budget::default()
    }

    /// The first `lines` lines.
    pub fn head(lines: usize) -> Budget {
        Budget::of(BudgetMode::Head { lines })
    }

    /// The last `lines` lines.
    pub fn tail(lines: usize) -> Budget {
        Budget::of(BudgetMode::Tail { lines })
    }

    /// The first `head` and the last `tail` lines.
    pub fn head_tail(head: usize, tail: usize) -> Budget {
        Budget::of(BudgetMode::HeadTail { head, tail })
    }

    /// Lines matching the regex `pattern`, with `context` lines around each.
    ///
    /// ```
    /// let b = execkit_protect::Budget::grep("error", 2).with_max_chars(4000);
    /// assert_eq!(b.max_chars, Some(4000));
    /// ```
    pub fn grep(pattern: impl Into<String>, context: usize) -> Budget {
        Budget::of(BudgetMode::Grep {
            pattern: pattern.into(),
            context,
        })
    }

    /// The same budget with a character cap.
    pub fn with_max_chars(mut self, max_chars: usize) -> Budget {
        self.max_chars = Some(max_chars);
        self
    }

    fn of(mode: BudgetMode) -> Budget {
        Budget {
            mode,
            max_chars: None,
        }
    }
}

/// Why a budget was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BudgetError {
    /// The grep pattern did not compile (or is too large).
    #[error("budget grep pattern: {0}")]
    Pattern(String),
    /// A line count of zero keeps nothing; ask for at least one line.
    #[error("budget {0} must be at least 1")]
    Zero(&'static str),
    /// A character cap too small to hold a marker.
    #[error("budget max_chars must be at least 64")]
    TinyCap,
}

/// Which budget shaped a stream, as reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ShapeMode {
    /// Everything (within the capture limits).
    #[default]
    Full,
    /// The first lines.
    Head,
    /// The last lines.
    Tail,
    /// The first and the last lines.
    HeadTail,
    /// Matching lines with context.
    Grep,
    /// Not shaped: the bytes passed through (streaming to a file).
    Passthrough,
}

impl ShapeMode {
    /// The mode's name as it is serialized (`head_tail`).
    pub fn as_str(self) -> &'static str {
        match self {
            ShapeMode::Full => "full",
            ShapeMode::Head => "head",
            ShapeMode::Tail => "tail",
            ShapeMode::HeadTail => "head_tail",
            ShapeMode::Grep => "grep",
            ShapeMode::Passthrough => "passthrough",
        }
    }
}

/// What happened to one stream, as reported to the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct StreamReport {
    /// The budget mode applied.
    pub mode: ShapeMode,
    /// Bytes received from the process, before stripping and redaction.
    pub raw_bytes: u64,
    /// Bytes of protected text (after stripping and redaction).
    pub bytes_total: u64,
    /// Lines of protected text.
    pub lines_total: u64,
    /// Bytes of protected text returned (markers excluded).
    pub bytes_kept: u64,
    /// Lines returned, in whole or in part.
    pub lines_kept: u64,
    /// Protected bytes not returned.
    pub elided_bytes: u64,
    /// Characters removed by the character cap.
    pub chars_cut: u64,
    /// Whether anything was left out.
    pub truncated: bool,
    /// For `grep`: how many lines matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matches: Option<u64>,
}

#[derive(Clone)]
enum Mode {
    Full,
    Lines { head: usize, tail: usize },
    Grep { re: Regex, context: usize },
}

/// A kept line: its number (1-based), text (without newline) and whether it ended with a
/// newline in the stream.
#[derive(Debug, Clone)]
struct Kept {
    no: u64,
    text: String,
    newline: bool,
    is_match: bool,
}

/// Applies a budget within capture limits to a stream of text pieces.
#[derive(Clone)]
pub struct Shaper {
    mode: Mode,
    mode_name: ShapeMode,
    limits: CaptureLimits,
    max_chars: Option<usize>,
    bytes_total: u64,
    newlines: u64,
    ends_with_newline: bool,
    // full mode
    head: String,
    head_full: bool,
    ring: Vec<u8>,
    // line modes
    cur: String,
    cur_no: u64,
    head_lines: Vec<Kept>,
    head_used: usize,
    tail_lines: VecDeque<Kept>,
    tail_used: usize,
    // grep
    before: VecDeque<Kept>,
    after_left: usize,
    matches: u64,
    grep_kept: Vec<Kept>,
    grep_used: usize,
    grep_dropped: bool,
}

impl std::fmt::Debug for Shaper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shaper")
            .field("mode", &self.mode_name)
            .field("bytes_total", &self.bytes_total)
            .finish_non_exhaustive()
    }
}

/// The shaped text of a stream with its report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shaped {
    /// The text returned to the caller.
    pub text: String,
    /// What was kept and what was left out.
    pub report: StreamReport,
}

impl Shaper {
    /// A shaper for one stream.
    pub fn new(budget: &Budget, limits: CaptureLimits) -> Result<Shaper, BudgetError> {
        if budget.max_chars.is_some_and(|c| c < 64) {
            return Err(BudgetError::TinyCap);
        }
        let (mode, mode_name) = match &budget.mode {
            BudgetMode::Full => (Mode::Full, ShapeMode::Full),
            BudgetMode::Head { lines } => {
                if *lines == 0 {
                    return Err(BudgetError::Zero("head lines"));
                }
                (
                    Mode::Lines {
                        head: *lines,
                        tail: 0,
                    },
                    ShapeMode::Head,
                )
            }
            BudgetMode::Tail { lines } => {
                if *lines == 0 {
                    return Err(BudgetError::Zero("tail lines"));
                }
                (
                    Mode::Lines {
                        head: 0,
                        tail: *lines,
                    },
                    ShapeMode::Tail,
                )
            }
            BudgetMode::HeadTail { head, tail } => {
                if *head + *tail == 0 {
                    return Err(BudgetError::Zero("head+tail lines"));
                }
                (
                    Mode::Lines {
                        head: *head,
                        tail: *tail,
                    },
                    ShapeMode::HeadTail,
                )
            }
            BudgetMode::Grep { pattern, context } => {
                let re = RegexBuilder::new(pattern)
                    .size_limit(1 << 20)
                    .dfa_size_limit(2 << 20)
                    .build()
                    .map_err(|e| BudgetError::Pattern(e.to_string()))?;
                (
                    Mode::Grep {
                        re,
                        context: (*context).min(100),
                    },
                    ShapeMode::Grep,
                )
            }
        };
        Ok(Shaper {
            mode,
            mode_name,
            limits,
            max_chars: budget.max_chars,
            bytes_total: 0,
            newlines: 0,
            ends_with_newline: true,
            head: String::new(),
            head_full: false,
            ring: Vec::new(),
            cur: String::new(),
            cur_no: 1,
            head_lines: Vec::new(),
            head_used: 0,
            tail_lines: VecDeque::new(),
            tail_used: 0,
            before: VecDeque::new(),
            after_left: 0,
            matches: 0,
            grep_kept: Vec::new(),
            grep_used: 0,
            grep_dropped: false,
        })
    }

    /// The operator's tail window, in bytes.
    pub(crate) fn tail_bytes(&self) -> usize {
        self.limits.tail_bytes
    }

    /// Whether what is pushed from now on can only reach the output through the tail
    /// window: the budget keeps the whole stream (`full`) and its head is full.
    pub(crate) fn only_tail_left(&self) -> bool {
        matches!(self.mode, Mode::Full) && self.head_full
    }

    /// Counts text that was left out before it reached the shaper (the pipeline's middle
    /// skip): its bytes and newlines, and forgets the tail kept so far, which the text
    /// pushed next replaces.
    pub(crate) fn skip(&mut self, bytes: u64, newlines: u64, ends_with_newline: bool) {
        if bytes == 0 {
            return;
        }
        self.bytes_total += bytes;
        self.newlines += newlines;
        self.ends_with_newline = ends_with_newline;
        self.ring.clear();
    }

    /// Adds protected text.
    pub fn push(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        self.bytes_total += text.len() as u64;
        self.newlines += memchr::memchr_iter(b'\n', text.as_bytes()).count() as u64;
        self.ends_with_newline = text.ends_with('\n');
        match self.mode {
            Mode::Full => self.push_full(text),
            _ => self.push_lines(text),
        }
    }

    fn push_full(&mut self, mut text: &str) {
        if !self.head_full {
            let room = self.limits.head_bytes - self.head.len();
            if text.len() <= room {
                self.head.push_str(text);
                return;
            }
            let mut cut = room;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            self.head.push_str(&text[..cut]);
            self.head_full = true;
            text = &text[cut..];
        }
        let cap = self.limits.tail_bytes;
        if cap == 0 {
            return;
        }
        let bytes = text.as_bytes();
        if bytes.len() >= cap {
            self.ring.clear();
            self.ring.extend_from_slice(&bytes[bytes.len() - cap..]);
            return;
        }
        self.ring.extend_from_slice(bytes);
        if self.ring.len() > 2 * cap {
            let excess = self.ring.len() - cap;
            self.ring.drain(..excess);
        }
    }

    fn push_lines(&mut self, text: &str) {
        let mut rest = text;
        while !rest.is_empty() {
            match memchr::memchr(b'\n', rest.as_bytes()) {
                Some(nl) => {
                    self.extend_cur(&rest[..nl]);
                    let line = std::mem::take(&mut self.cur);
                    self.on_line(line, true);
                    self.cur_no += 1;
                    rest = &rest[nl + 1..];
                }
                None => {
                    self.extend_cur(rest);
                    rest = "";
                }
            }
        }
    }

    /// Appends to the current line, cutting it into pieces at `max_line_bytes`.
    fn extend_cur(&mut self, mut s: &str) {
        let max = self.limits.max_line_bytes.max(64);
        while self.cur.len() + s.len() > max {
            let mut cut = max - self.cur.len();
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            if cut == 0 && !self.cur.is_empty() {
                let piece = std::mem::take(&mut self.cur);
                self.on_line(piece, false);
                continue;
            }
            let cut = if cut == 0 {
                s.char_indices().nth(1).map(|(i, _)| i).unwrap_or(s.len())
            } else {
                cut
            };
            self.cur.push_str(&s[..cut]);
            let piece = std::mem::take(&mut self.cur);
            self.on_line(piece, false);
            s = &s[cut..];
        }
        self.cur.push_str(s);
    }

    fn on_line(&mut self, text: String, newline: bool) {
        let kept = Kept {
            no: self.cur_no,
            text,
            newline,
            is_match: false,
        };
        let cap = self.limits.total();
        match &self.mode {
            Mode::Full => {}
            Mode::Lines { head, tail } => {
                let (head, tail) = (*head, *tail);
                if kept.no <= head as u64 {
                    if self.head_used + kept.text.len() <= cap {
                        self.head_used += kept.text.len();
                        self.head_lines.push(kept);
                    }
                    return;
                }
                if tail == 0 {
                    return;
                }
                let tail_cap = cap.saturating_sub(self.head_used);
                self.tail_used += kept.text.len();
                self.tail_lines.push_back(kept);
                loop {
                    let distinct = count_distinct(&self.tail_lines);
                    if (distinct > tail || self.tail_used > tail_cap) && self.tail_lines.len() > 1 {
                        if let Some(k) = self.tail_lines.pop_front() {
                            self.tail_used -= k.text.len();
                        }
                    } else {
                        break;
                    }
                }
                if self.tail_used > tail_cap {
                    // A single piece larger than the cap: keep its end.
                    if let Some(k) = self.tail_lines.front_mut() {
                        let mut cut = k.text.len() - tail_cap;
                        while !k.text.is_char_boundary(cut) {
                            cut += 1;
                        }
                        k.text.drain(..cut);
                        self.tail_used = k.text.len();
                    }
                }
            }
            Mode::Grep { re, context } => {
                let context = *context;
                if re.is_match(&kept.text) {
                    self.matches += 1;
                    let mut k = kept;
                    k.is_match = true;
                    while let Some(b) = self.before.pop_front() {
                        self.keep_grep(b);
                    }
                    self.keep_grep(k);
                    self.after_left = context;
                } else if self.after_left > 0 {
                    self.after_left -= 1;
                    self.keep_grep(kept);
                } else if context > 0 {
                    self.before.push_back(kept);
                    if self.before.len() > context {
                        self.before.pop_front();
                    }
                }
            }
        }
    }

    fn keep_grep(&mut self, k: Kept) {
        if self.grep_used + k.text.len() > self.limits.total() {
            self.grep_dropped = true;
            return;
        }
        self.grep_used += k.text.len();
        self.grep_kept.push(k);
    }

    /// Ends the stream and renders the kept text.
    pub fn finish(mut self) -> Shaped {
        if !matches!(self.mode, Mode::Full) && !self.cur.is_empty() {
            let line = std::mem::take(&mut self.cur);
            self.on_line(line, false);
        }
        let lines_total = if self.bytes_total == 0 {
            0
        } else {
            self.newlines + u64::from(!self.ends_with_newline)
        };
        let mut report = StreamReport {
            mode: self.mode_name,
            bytes_total: self.bytes_total,
            lines_total,
            ..StreamReport::default()
        };
        let mut text = match &self.mode {
            Mode::Full => self.render_full(&mut report),
            Mode::Lines { .. } => self.render_lines(&mut report),
            Mode::Grep { .. } => self.render_grep(&mut report),
        };
        report.elided_bytes = report.bytes_total - report.bytes_kept;
        if let Some(max) = self.max_chars {
            let chars = text.chars().count();
            if chars > max {
                let keep_tail = self.mode_name == ShapeMode::Tail;
                let both = matches!(self.mode_name, ShapeMode::Full | ShapeMode::HeadTail);
                text = cap_chars(&text, max, keep_tail, both);
                report.chars_cut = (chars - text.chars().count()) as u64;
            }
        }
        report.truncated = report.elided_bytes > 0 || report.chars_cut > 0;
        Shaped { text, report }
    }

    fn render_full(&mut self, report: &mut StreamReport) -> String {
        let mut start = self.ring.len().saturating_sub(self.limits.tail_bytes);
        while start < self.ring.len() && (self.ring[start] & 0xC0) == 0x80 {
            start += 1;
        }
        let tail = String::from_utf8_lossy(&self.ring[start..]).into_owned();
        let kept = self.head.len() + tail.len();
        report.bytes_kept = kept as u64;
        let elided = self.bytes_total - kept as u64;
        let mut out = std::mem::take(&mut self.head);
        report.lines_kept = count_lines(&out) + count_lines(&tail);
        if elided > 0 {
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&format!("[… execkit: {elided} bytes elided …]\n"));
        }
        out.push_str(&tail);
        out
    }

    fn render_lines(&mut self, report: &mut StreamReport) -> String {
        let mut out = String::new();
        let mut kept_bytes = 0u64;
        let mut kept_lines = 0u64;
        let mut last_no = 0u64;
        let mut emit = |out: &mut String, k: &Kept| {
            out.push_str(&k.text);
            if k.newline {
                out.push('\n');
            }
            kept_bytes += k.text.len() as u64 + u64::from(k.newline);
            if k.no != last_no {
                kept_lines += 1;
                last_no = k.no;
            }
        };
        for k in &self.head_lines {
            emit(&mut out, k);
        }
        let head_last = self.head_lines.last().map(|k| k.no).unwrap_or(0);
        let tail_first = self.tail_lines.front().map(|k| k.no);
        let skipped_lines = match tail_first {
            Some(f) => f.saturating_sub(head_last + 1),
            None => report.lines_total.saturating_sub(head_last),
        };
        // Bytes between head and tail, exactly: total minus everything kept.
        let tail_bytes: u64 = self
            .tail_lines
            .iter()
            .map(|k| k.text.len() as u64 + u64::from(k.newline))
            .sum();
        let head_bytes: u64 = self
            .head_lines
            .iter()
            .map(|k| k.text.len() as u64 + u64::from(k.newline))
            .sum();
        let gap = self.bytes_total - head_bytes - tail_bytes;
        if gap > 0 {
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            let what = if tail_first.is_some() || self.head_lines.is_empty() {
                "elided"
            } else {
                "not shown"
            };
            out.push_str(&format!(
                "[… execkit: {skipped_lines} lines ({gap} bytes) {what} …]\n"
            ));
        }
        for k in &self.tail_lines {
            emit(&mut out, k);
        }
        report.bytes_kept = kept_bytes;
        report.lines_kept = kept_lines;
        out
    }

    fn render_grep(&mut self, report: &mut StreamReport) -> String {
        let mut out = String::new();
        let mut prev: Option<u64> = None;
        let mut kept_bytes = 0u64;
        let mut kept_lines = 0u64;
        for k in &self.grep_kept {
            if let Some(p) = prev {
                if k.no > p + 1 {
                    out.push_str("--\n");
                }
            }
            if prev != Some(k.no) {
                kept_lines += 1;
                out.push_str(&format!("{}{}", k.no, if k.is_match { ':' } else { '-' }));
            }
            out.push_str(&k.text);
            out.push('\n');
            kept_bytes += k.text.len() as u64 + u64::from(k.newline);
            prev = Some(k.no);
        }
        if self.grep_dropped {
            out.push_str("[… execkit: more matches not kept (capture limit) …]\n");
        }
        report.matches = Some(self.matches);
        report.bytes_kept = kept_bytes.min(self.bytes_total);
        report.lines_kept = kept_lines;
        out
    }
}

fn count_distinct(lines: &VecDeque<Kept>) -> usize {
    let mut n = 0;
    let mut last = None;
    for k in lines {
        if Some(k.no) != last {
            n += 1;
            last = Some(k.no);
        }
    }
    n
}

fn count_lines(s: &str) -> u64 {
    if s.is_empty() {
        return 0;
    }
    memchr::memchr_iter(b'\n', s.as_bytes()).count() as u64 + u64::from(!s.ends_with('\n'))
}

/// Cuts `text` to at most `max` chars, keeping its start, its end, or both, with a marker.
fn cap_chars(text: &str, max: usize, keep_tail: bool, both: bool) -> String {
    let total = text.chars().count();
    let marker_len = 48;
    let room = max.saturating_sub(marker_len);
    let cut = total - room;
    let marker = format!("\n[… execkit: {cut} chars cut …]\n");
    let take_start = |n: usize| text.chars().take(n).collect::<String>();
    let take_end = |n: usize| {
        let skip = total - n;
        text.chars().skip(skip).collect::<String>()
    };
    let out = if both {
        let h = room / 2;
        format!("{}{}{}", take_start(h), marker, take_end(room - h))
    } else if keep_tail {
        format!("{}{}", marker.trim_start(), take_end(room))
    } else {
        format!("{}{}", take_start(room), marker.trim_end())
    };
    debug_assert!(out.chars().count() <= max);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(budget: Budget, limits: CaptureLimits, pieces: &[&str]) -> Shaped {
        let mut s = Shaper::new(&budget, limits).unwrap();
        for p in pieces {
            s.push(p);
        }
        s.finish()
    }

    fn numbered(n: usize) -> String {
        (1..=n).map(|i| format!("line {i}\n")).collect()
    }

    #[test]
    fn full_keeps_head_and_tail_with_exact_elision() {
        let limits = CaptureLimits {
            head_bytes: 10,
            tail_bytes: 10,
            max_line_bytes: 1024,
        };
        let text = "0123456789abcdefghijABCDEFGHIJ";
        let out = shape(Budget::default(), limits, &[text]);
        assert_eq!(
            out.text,
            "0123456789\n[… execkit: 10 bytes elided …]\nABCDEFGHIJ"
        );
        assert_eq!(out.report.bytes_total, 30);
        assert_eq!(out.report.bytes_kept, 20);
        assert_eq!(out.report.elided_bytes, 10);
        assert!(out.report.truncated);
    }

    #[test]
    fn small_output_is_whole() {
        let out = shape(Budget::default(), CaptureLimits::default(), &["a\n", "b\n"]);
        assert_eq!(out.text, "a\nb\n");
        assert!(!out.report.truncated);
        assert_eq!(out.report.lines_total, 2);
    }

    #[test]
    fn head_tail_and_head_tail_lines() {
        let text = numbered(10);
        let b = |mode| Budget {
            mode,
            max_chars: None,
        };
        let head = shape(
            b(BudgetMode::Head { lines: 2 }),
            CaptureLimits::default(),
            &[&text],
        );
        assert_eq!(
            head.text,
            "line 1\nline 2\n[… execkit: 8 lines (57 bytes) not shown …]\n"
        );
        assert_eq!(head.report.lines_kept, 2);
        let tail = shape(
            b(BudgetMode::Tail { lines: 2 }),
            CaptureLimits::default(),
            &[&text],
        );
        assert_eq!(
            tail.text,
            "[… execkit: 8 lines (56 bytes) elided …]\nline 9\nline 10\n"
        );
        let ht = shape(
            b(BudgetMode::HeadTail { head: 1, tail: 1 }),
            CaptureLimits::default(),
            &[&text],
        );
        assert_eq!(
            ht.text,
            "line 1\n[… execkit: 8 lines (56 bytes) elided …]\nline 10\n"
        );
        assert_eq!(ht.report.lines_total, 10);
        assert_eq!(ht.report.bytes_kept, 15);
    }

    #[test]
    fn grep_with_context_and_line_numbers() {
        let text = numbered(20);
        let b = Budget {
            mode: BudgetMode::Grep {
                pattern: "^line (5|15)$".into(),
                context: 1,
            },
            max_chars: None,
        };
        let out = shape(b, CaptureLimits::default(), &[&text]);
        assert_eq!(
            out.text,
            "4-line 4\n5:line 5\n6-line 6\n--\n14-line 14\n15:line 15\n16-line 16\n"
        );
        assert_eq!(out.report.matches, Some(2));
        assert_eq!(out.report.lines_kept, 6);
    }

    #[test]
    fn char_cap() {
        let text = "x".repeat(1000);
        let b = Budget {
            mode: BudgetMode::Full,
            max_chars: Some(100),
        };
        let out = shape(b, CaptureLimits::default(), &[&text]);
        assert!(out.text.chars().count() <= 100);
        assert!(out.text.contains("chars cut"));
        assert!(out.report.chars_cut > 0);
        assert!(out.report.truncated);
    }

    #[test]
    fn bad_budgets() {
        let grep = Budget {
            mode: BudgetMode::Grep {
                pattern: "(".into(),
                context: 0,
            },
            max_chars: None,
        };
        assert!(matches!(
            Shaper::new(&grep, CaptureLimits::default()),
            Err(BudgetError::Pattern(_))
        ));
        let zero = Budget {
            mode: BudgetMode::Head { lines: 0 },
            max_chars: None,
        };
        assert!(Shaper::new(&zero, CaptureLimits::default()).is_err());
    }
}
