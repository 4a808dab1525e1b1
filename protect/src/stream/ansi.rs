//! Streaming terminal-escape stripping.
//!
//! Turns what a program wrote to a terminal-less pipe into the text a reader would have
//! seen: CSI, OSC, DCS/APC/PM/SOS strings, two- and three-byte ESC sequences and C1
//! controls are removed; `\r` and backspace overwrite the current line the way a terminal
//! would; `CSI K`/`CSI G`/`CSI C`/`CSI D` move and erase within it. The result is valid
//! UTF-8 (invalid input becomes U+FFFD, exactly as [`String::from_utf8_lossy`] would).
//!
//! Two properties matter more than fidelity:
//!
//! * **Chunking never changes the result.** Every decision depends only on the bytes seen
//!   so far, never on where a chunk ended. The line buffer is committed at a fixed length
//!   ([`LINE_CAP`]) so memory stays bounded without making the output depend on chunking.
//! * **A broken sequence never hides text.** A string sequence (OSC, DCS, …) that meets a
//!   newline or grows past [`STRING_CAP`] is abandoned and its content is replayed as
//!   ordinary text. A sequence whose final byte is a letter or digit *and* is followed
//!   directly by a token character may have swallowed the first character of a secret
//!   (`ESC [` + `AKIA…`); that final character is kept as a *ghost*: it is written as
//!   [`GHOST`] followed by the character, which the redactor uses to look at the line both
//!   with and without it and then removes. Input that contains [`GHOST`] itself is
//!   replaced with U+FFFD so it cannot forge one.

/// Marks a ghost character in the stripper's output (a Unicode noncharacter, never valid in
/// interchange). Only the redactor ever sees it; it never reaches a caller.
pub const GHOST: char = '\u{FDD0}';
/// [`GHOST`] encoded as UTF-8, for byte searches.
pub const GHOST_BYTES: &[u8] = "\u{FDD0}".as_bytes();
/// The line buffer is committed once it holds this many bytes, even without a newline.
pub(crate) const LINE_CAP: usize = 64 * 1024;
/// A string sequence (OSC, DCS, APC, PM, SOS) longer than this many chars is abandoned.
pub(crate) const STRING_CAP: usize = 4096;
/// A CSI or ESC sequence longer than this many chars is abandoned.
const CSI_CAP: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ground,
    /// Saw ESC.
    Esc,
    /// ESC followed by intermediate bytes (0x20–0x2F), e.g. `ESC ( B`.
    EscIntermediate,
    /// Inside `CSI` parameters/intermediates.
    Csi,
    /// Inside an OSC/DCS/APC/PM/SOS string.
    Str,
    /// Inside a string, just saw ESC (may be the ST `ESC \`).
    StrEsc,
    /// A sequence just ended with this alphanumeric final char; the next char decides
    /// whether it becomes a ghost.
    MaybeGhost(char),
}

/// The streaming stripper. Feed bytes with [`AnsiStripper::push`]; committed text (whole
/// lines, plus any line that reached [`LINE_CAP`]) is appended to the caller's buffer.
///
/// ```
/// use execkit_protect::AnsiStripper;
/// let mut s = AnsiStripper::new();
/// let mut out = String::new();
/// s.push(b"\x1b[1;32mok\x1b[0m 10%\r\x1b[K100%\n", &mut out);
/// s.finish(&mut out);
/// // `CSI K` right before a digit may have hidden a character: it is kept as a ghost for
/// // the redactor, which removes it.
/// assert_eq!(out, "\u{FDD0}K100%\n");
/// assert_eq!(execkit_protect::remove_ghosts(&out), "100%\n");
/// ```
#[derive(Debug, Clone)]
pub struct AnsiStripper {
    state: State,
    /// An incomplete UTF-8 sequence carried from the previous chunk.
    utf8: [u8; 4],
    utf8_len: usize,
    /// Chars of the sequence being parsed (introducer excluded), for replay and parameters.
    seq: String,
    seq_chars: usize,
    /// Chars waiting to be (re)processed, last to be processed first.
    replay: Vec<char>,
    /// The current, not yet committed line, and the write position in it (a byte offset on
    /// a char boundary).
    line: String,
    cursor: usize,
    /// Whether `line` holds ghost pairs (they must be removed before cursor movement).
    line_has_ghost: bool,
}

impl Default for AnsiStripper {
    fn default() -> Self {
        Self::new()
    }
}

#[inline]
fn is_plain(b: u8) -> bool {
    (0x20..0x7f).contains(&b) || b == b'\t'
}

/// The length of the longest prefix of `input` made of whole lines (each ending in `\n`)
/// of plain bytes ([`is_plain`]).
fn plain_lines(input: &[u8]) -> usize {
    let ok = |b: u8| is_plain(b) || b == b'\n';
    // Blocks checked without an early exit compile to vector code; the block holding the
    // first other byte is walked byte by byte.
    const BLOCK: usize = 64;
    let mut run = 0;
    for block in input.chunks(BLOCK) {
        if block.iter().fold(true, |all, &b| all & ok(b)) {
            run += block.len();
        } else {
            run += block.iter().take_while(|&&b| ok(b)).count();
            break;
        }
    }
    memchr::memrchr(b'\n', &input[..run]).map_or(0, |nl| nl + 1)
}

/// Characters that can continue a token (a secret) — a sequence final followed by one of
/// these might have eaten the token's first character.
#[inline]
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+' | '/' | '=' | '.' | '~')
}

enum Utf8Step {
    Char(char, usize),
    Invalid(usize),
    Incomplete,
}

/// Decodes the first char of `bytes` (non-empty), lossily.
fn decode_one(bytes: &[u8]) -> Utf8Step {
    let window = &bytes[..bytes.len().min(4)];
    let valid = match std::str::from_utf8(window) {
        Ok(s) => s,
        Err(e) if e.valid_up_to() > 0 => {
            // SAFETY-free: valid_up_to marks a valid prefix.
            std::str::from_utf8(&window[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(e) => {
            return match e.error_len() {
                Some(n) => Utf8Step::Invalid(n),
                None if window.len() < 4 && window.len() == bytes.len() => Utf8Step::Incomplete,
                None => Utf8Step::Invalid(1),
            }
        }
    };
    match valid.chars().next() {
        Some(c) => Utf8Step::Char(c, c.len_utf8()),
        None => Utf8Step::Invalid(1),
    }
}

impl AnsiStripper {
    /// A stripper at the start of a stream.
    pub fn new() -> Self {
        AnsiStripper {
            state: State::Ground,
            utf8: [0; 4],
            utf8_len: 0,
            seq: String::new(),
            seq_chars: 0,
            replay: Vec::new(),
            line: String::new(),
            cursor: 0,
            line_has_ghost: false,
        }
    }

    /// Feeds raw bytes; appends committed text to `out`.
    pub fn push(&mut self, input: &[u8], out: &mut String) {
        if self.utf8_len > 0 {
            // A char was split by the previous chunk boundary: decode across it.
            let mut joined = self.utf8[..self.utf8_len].to_vec();
            joined.extend_from_slice(input);
            self.utf8_len = 0;
            self.push_bytes(&joined, out);
        } else {
            self.push_bytes(input, out);
        }
    }

    fn push_bytes(&mut self, input: &[u8], out: &mut String) {
        let mut i = 0;
        while i < input.len() {
            if self.state == State::Ground && self.line.is_empty() && self.replay.is_empty() {
                let n = plain_lines(&input[i..]);
                if n > 0 {
                    // Whole lines of printable ASCII: nothing to strip or overwrite, so
                    // they go to the output as they are (what committing them one line at
                    // a time would append).
                    out.push_str(std::str::from_utf8(&input[i..i + n]).unwrap_or_default());
                    i += n;
                    continue;
                }
            }
            let b = input[i];
            if is_plain(b) && self.state == State::Ground && self.cursor == self.line.len() {
                let start = i;
                while i < input.len() && is_plain(input[i]) {
                    i += 1;
                }
                self.append_ascii(&input[start..i], out);
                continue;
            }
            if b < 0x80 {
                self.feed(b as char, out);
                i += 1;
                continue;
            }
            match decode_one(&input[i..]) {
                Utf8Step::Char(c, n) => {
                    self.feed(c, out);
                    i += n;
                }
                Utf8Step::Invalid(n) => {
                    self.feed('\u{FFFD}', out);
                    i += n;
                }
                Utf8Step::Incomplete => {
                    let rest = &input[i..];
                    self.utf8[..rest.len()].copy_from_slice(rest);
                    self.utf8_len = rest.len();
                    return;
                }
            }
        }
    }

    /// Ends the stream: flushes a pending partial UTF-8 sequence and any unfinished
    /// escape sequence, then commits the last line (without adding a newline).
    pub fn finish(&mut self, out: &mut String) {
        if self.utf8_len > 0 {
            // An incomplete sequence at the end is one maximal invalid subpart.
            self.utf8_len = 0;
            self.feed('\u{FFFD}', out);
        }
        match self.state {
            State::Str | State::StrEsc => self.abandon(None),
            State::MaybeGhost(_) | State::Esc | State::EscIntermediate | State::Csi => {
                self.state = State::Ground;
            }
            State::Ground => {}
        }
        self.drain_replay(out);
        self.commit_line(out);
    }

    fn feed(&mut self, c: char, out: &mut String) {
        self.step(c, out);
        self.drain_replay(out);
    }

    fn drain_replay(&mut self, out: &mut String) {
        while let Some(c) = self.replay.pop() {
            self.step(c, out);
        }
    }

    fn step(&mut self, c: char, out: &mut String) {
        match self.state {
            State::Ground => self.ground(c, out),
            State::MaybeGhost(fin) => {
                self.state = State::Ground;
                if is_token_char(c) && self.cursor == self.line.len() {
                    self.line.push(GHOST);
                    self.line.push(fin);
                    self.cursor = self.line.len();
                    self.line_has_ghost = true;
                }
                self.ground(c, out);
            }
            State::Esc => self.esc(c, out),
            State::EscIntermediate => {
                if ('\u{20}'..='\u{2f}').contains(&c) && self.seq_chars < CSI_CAP {
                    self.push_seq(c);
                } else if ('\u{30}'..='\u{7e}').contains(&c) {
                    self.end_sequence(c);
                } else {
                    // Malformed: drop the sequence, handle the char normally.
                    self.state = State::Ground;
                    self.replay.push(c);
                }
            }
            State::Csi => self.csi(c, out),
            State::Str => match c {
                '\u{07}' | '\u{9c}' => self.state = State::Ground,
                '\u{1b}' => self.state = State::StrEsc,
                c if (c as u32) < 0x20 || ('\u{80}'..='\u{9f}').contains(&c) => {
                    self.abandon(Some(c))
                }
                c => {
                    if self.seq_chars >= STRING_CAP {
                        self.abandon(Some(c));
                    } else {
                        self.push_seq(c);
                    }
                }
            },
            State::StrEsc => {
                if c == '\\' {
                    self.state = State::Ground;
                } else {
                    // ESC inside a string cancels it and starts a new sequence.
                    self.state = State::Esc;
                    self.seq.clear();
                    self.seq_chars = 0;
                    self.replay.push(c);
                }
            }
        }
    }

    fn push_seq(&mut self, c: char) {
        self.seq.push(c);
        self.seq_chars += 1;
    }

    fn start(&mut self, state: State) {
        self.state = state;
        self.seq.clear();
        self.seq_chars = 0;
    }

    /// A sequence ended with final char `fin`.
    fn end_sequence(&mut self, fin: char) {
        self.state = if fin.is_ascii_alphanumeric() {
            State::MaybeGhost(fin)
        } else {
            State::Ground
        };
    }

    /// Abandons a string sequence: its content (and the char that broke it) is replayed
    /// as ordinary text.
    fn abandon(&mut self, breaker: Option<char>) {
        self.state = State::Ground;
        if let Some(b) = breaker {
            self.replay.push(b);
        }
        let content = std::mem::take(&mut self.seq);
        self.seq_chars = 0;
        for ch in content.chars().rev() {
            self.replay.push(ch);
        }
    }

    fn esc(&mut self, c: char, out: &mut String) {
        match c {
            '[' => self.start(State::Csi),
            ']' | 'P' | 'X' | '^' | '_' => self.start(State::Str),
            '\u{1b}' => self.start(State::Esc),
            c if ('\u{20}'..='\u{2f}').contains(&c) => {
                self.start(State::EscIntermediate);
                self.push_seq(c);
            }
            c if ('\u{30}'..='\u{7e}').contains(&c) => self.end_sequence(c),
            c => {
                // Lone ESC before a control or non-ASCII char: drop the ESC only.
                self.state = State::Ground;
                self.ground(c, out);
            }
        }
    }

    fn csi(&mut self, c: char, out: &mut String) {
        match c {
            '\u{30}'..='\u{3f}' | '\u{20}'..='\u{2f}' if self.seq_chars < CSI_CAP => {
                self.push_seq(c)
            }
            '\u{40}'..='\u{7e}' => {
                self.apply_csi(c);
                self.end_sequence(c);
            }
            c => {
                // Malformed or overlong: drop what we have, handle the char normally.
                self.state = State::Ground;
                self.seq.clear();
                self.seq_chars = 0;
                self.ground(c, out);
            }
        }
    }

    /// The CSI sequences that edit the current line.
    fn apply_csi(&mut self, fin: char) {
        if !matches!(fin, 'K' | 'G' | 'C' | 'D') || self.seq.starts_with(['?', '>', '<', '=']) {
            return;
        }
        let n: usize = self
            .seq
            .split(';')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        self.drop_ghosts();
        match fin {
            'K' => match n {
                0 => self.line.truncate(self.cursor),
                2 => {
                    self.line.clear();
                    self.cursor = 0;
                }
                _ => {}
            },
            'G' => self.cursor = self.char_offset(n.max(1) - 1),
            'D' => {
                // Never more steps than there are chars to step over: `CSI 99999999999999 D`
                // must not spin.
                let chars_before = self.line[..self.cursor].chars().count();
                for _ in 0..n.max(1).min(chars_before) {
                    self.back_one();
                }
            }
            'C' => {
                let chars_before = self.line[..self.cursor].chars().count();
                self.cursor = self.char_offset(chars_before.saturating_add(n.max(1)));
            }
            _ => {}
        }
    }

    /// Byte offset of char index `idx` in the line, clamped to the line's end.
    fn char_offset(&self, idx: usize) -> usize {
        self.line
            .char_indices()
            .nth(idx)
            .map(|(i, _)| i)
            .unwrap_or(self.line.len())
    }

    fn back_one(&mut self) {
        if self.cursor == 0 {
            return;
        }
        let mut i = self.cursor - 1;
        while !self.line.is_char_boundary(i) {
            i -= 1;
        }
        self.cursor = i;
    }

    /// Ghost pairs do not occupy columns; remove them before moving the cursor.
    fn drop_ghosts(&mut self) {
        if !self.line_has_ghost {
            return;
        }
        let at_end = self.cursor == self.line.len();
        let mut cleaned = String::with_capacity(self.line.len());
        let mut chars = self.line.chars();
        while let Some(ch) = chars.next() {
            if ch == GHOST {
                chars.next();
            } else {
                cleaned.push(ch);
            }
        }
        self.line = cleaned;
        if at_end || self.cursor > self.line.len() {
            self.cursor = self.line.len();
        } else {
            while !self.line.is_char_boundary(self.cursor) {
                self.cursor -= 1;
            }
        }
        self.line_has_ghost = false;
    }

    fn ground(&mut self, c: char, out: &mut String) {
        match c {
            '\n' => {
                self.line.push('\n');
                self.commit_line(out);
            }
            '\r' => {
                self.drop_ghosts();
                self.cursor = 0;
            }
            '\u{08}' => {
                self.drop_ghosts();
                self.back_one();
            }
            '\t' => self.write_char('\t', out),
            '\u{1b}' => self.start(State::Esc),
            '\u{9b}' => self.start(State::Csi),
            '\u{9d}' | '\u{90}' | '\u{98}' | '\u{9e}' | '\u{9f}' => self.start(State::Str),
            c if (c as u32) < 0x20 || c == '\u{7f}' || ('\u{80}'..='\u{9f}').contains(&c) => {}
            GHOST => self.write_char('\u{FFFD}', out),
            c => self.write_char(c, out),
        }
    }

    fn append_ascii(&mut self, mut bytes: &[u8], out: &mut String) {
        while !bytes.is_empty() {
            let room = LINE_CAP.saturating_sub(self.line.len()).max(1);
            let n = room.min(bytes.len());
            // The bytes are printable ASCII, hence valid UTF-8.
            self.line
                .push_str(std::str::from_utf8(&bytes[..n]).unwrap_or_default());
            self.cursor = self.line.len();
            bytes = &bytes[n..];
            if self.line.len() >= LINE_CAP {
                self.commit_line(out);
            }
        }
    }

    fn write_char(&mut self, c: char, out: &mut String) {
        if self.cursor == self.line.len() {
            self.line.push(c);
            self.cursor = self.line.len();
            if self.line.len() >= LINE_CAP {
                self.commit_line(out);
            }
            return;
        }
        // Overwrite the char under the cursor.
        let old_len = self.line[self.cursor..]
            .chars()
            .next()
            .map(char::len_utf8)
            .unwrap_or(0);
        let mut buf = [0u8; 4];
        let new = c.encode_utf8(&mut buf);
        self.line
            .replace_range(self.cursor..self.cursor + old_len, new);
        self.cursor += new.len();
    }

    fn commit_line(&mut self, out: &mut String) {
        out.push_str(&self.line);
        self.line.clear();
        self.cursor = 0;
        self.line_has_ghost = false;
    }
}

/// Strips a whole byte string in one go (ghost markers removed).
///
/// ```
/// assert_eq!(execkit_protect::strip_ansi(b"\x1b]0;title\x07a\x08b\n"), "b\n");
/// ```
pub fn strip_ansi(input: &[u8]) -> String {
    let mut s = AnsiStripper::new();
    let mut out = String::new();
    s.push(input, &mut out);
    s.finish(&mut out);
    remove_ghosts(&out)
}

/// Removes ghost pairs (marker and the char after it) from stripped text.
pub fn remove_ghosts(text: &str) -> String {
    if !text.contains(GHOST) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == GHOST {
            chars.next();
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip(b: &[u8]) -> String {
        strip_ansi(b)
    }

    fn strip_bytewise(b: &[u8]) -> String {
        let mut s = AnsiStripper::new();
        let mut out = String::new();
        for byte in b {
            s.push(std::slice::from_ref(byte), &mut out);
        }
        s.finish(&mut out);
        remove_ghosts(&out)
    }

    proptest::proptest! {
        /// Whole plain lines take a fast path when pushed together; a byte at a time they
        /// go through the state machine. Both give the same text, with escapes, `\r`,
        /// backspaces, tabs and non-ASCII in between.
        #[test]
        fn plain_lines_in_bulk_strip_as_byte_by_byte(
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    "[ -~\t]{0,80}\n",
                    proptest::strategy::Just("\x1b[1;31m".to_string()),
                    proptest::strategy::Just("\r".to_string()),
                    proptest::strategy::Just("\x08".to_string()),
                    proptest::strategy::Just("\x1b]0;t\x07".to_string()),
                    "[é€a-z]{1,5}",
                ],
                0..40,
            )
        ) {
            let text = parts.concat();
            proptest::prop_assert_eq!(strip(text.as_bytes()), strip_bytewise(text.as_bytes()));
        }
    }

    #[test]
    fn plain_lines_stop_at_the_last_whole_line() {
        assert_eq!(plain_lines(b"ab\ncd\nef"), 6);
        assert_eq!(plain_lines(b"ab\ncd\x1b[0m\n"), 3);
        assert_eq!(plain_lines(b"no newline"), 0);
        let long = [b"x".repeat(200), b"\n".to_vec(), b"y\r\n".to_vec()].concat();
        assert_eq!(plain_lines(&long), 201);
    }

    #[test]
    fn csi_and_sgr_removed() {
        assert_eq!(strip(b"\x1b[1;31merror\x1b[0m: bad\n"), "error: bad\n");
        assert_eq!(
            strip(b"\x1b[?25lhidden cursor\x1b[?25h\n"),
            "hidden cursor\n"
        );
    }

    #[test]
    fn osc_bel_and_st_terminated() {
        assert_eq!(strip(b"\x1b]0;title\x07text\n"), "text\n");
        assert_eq!(
            strip(b"\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\\n"),
            "link\n"
        );
    }

    #[test]
    fn dcs_apc_pm_sos_removed() {
        for intro in [b'P', b'_', b'^', b'X'] {
            let mut v = vec![0x1b, intro];
            v.extend_from_slice(b"payload\x1b\\after\n");
            assert_eq!(strip(&v), "after\n", "intro {}", intro as char);
        }
    }

    #[test]
    fn two_and_three_char_escapes() {
        assert_eq!(strip(b"a\x1b7b\x1b8 c\n"), "ab c\n");
        assert_eq!(strip(b"\x1b(Bplain\n"), "plain\n");
        assert_eq!(strip(b"x\x1b=y\n"), "xy\n");
    }

    #[test]
    fn c1_controls() {
        assert_eq!(strip("\u{9b}31mred\u{9b}0m\n".as_bytes()), "red\n");
        assert_eq!(strip("\u{9d}0;t\u{9c}vis\n".as_bytes()), "vis\n");
        assert_eq!(strip("a\u{85}b\n".as_bytes()), "ab\n");
    }

    #[test]
    fn lone_esc_and_controls() {
        assert_eq!(strip(b"a\x1b\nb\n"), "a\nb\n");
        assert_eq!(strip(b"a\x00b\x07c\x7fd\n"), "abcd\n");
        assert_eq!(strip(b"end\x1b"), "end");
    }

    #[test]
    fn carriage_return_overwrites() {
        assert_eq!(
            strip(b"progress 10%\rprogress 99%\rdone\n"),
            "doneress 99%\n"
        );
        assert_eq!(strip(b"progress 10%\r\x1b[Kdone\n"), "done\n");
        assert_eq!(strip(b"50%\r\x1b[2K100%\n"), "100%\n");
        assert_eq!(strip(b"line\r\n"), "line\n");
    }

    #[test]
    fn backspace_overstrike() {
        assert_eq!(strip(b"_\x08B_\x08o_\x08l_\x08d\n"), "Bold\n");
        assert_eq!(strip(b"ab\x08\x08\x08cd\n"), "cd\n");
        assert_eq!(strip("é\u{8}e\n".as_bytes()), "e\n");
    }

    #[test]
    fn truncated_sequences_never_eat_text() {
        assert_eq!(
            strip(b"\x1b]0;unterminated\nvisible\n"),
            "0;unterminated\nvisible\n"
        );
        assert_eq!(strip(b"\x1b[12;\xc3\xa9x\n"), "\u{e9}x\n");
        let long = format!("\x1bP{}", "a".repeat(STRING_CAP + 10));
        assert_eq!(strip(long.as_bytes()), "a".repeat(STRING_CAP + 10));
    }

    #[test]
    fn ghost_marks_a_possibly_eaten_char() {
        let mut s = AnsiStripper::new();
        let mut out = String::new();
        s.push(b"\x1b[AKIAXXXX\n", &mut out);
        assert_eq!(out, format!("{GHOST}AKIAXXXX\n"));
        assert_eq!(remove_ghosts(&out), "KIAXXXX\n");
        // A normal colour reset followed by a space is not a ghost.
        assert_eq!(strip(b"\x1b[0m ok\n"), " ok\n");
    }

    #[test]
    fn invalid_utf8_is_lossy() {
        assert_eq!(strip(b"a\xffb\xe2\x82\n"), "a\u{FFFD}b\u{FFFD}\n");
        assert_eq!(
            strip(b"\xf0\x9f\x98\x80 \xe2\x28\xa1\n"),
            String::from_utf8_lossy(b"\xf0\x9f\x98\x80 \xe2\x28\xa1\n")
        );
    }

    #[test]
    fn forged_ghost_marker_is_neutralised() {
        assert_eq!(strip("a\u{FDD0}bc\n".as_bytes()), "a\u{FFFD}bc\n");
    }

    #[test]
    fn long_lines_commit_at_cap() {
        let mut s = AnsiStripper::new();
        let mut out = String::new();
        s.push(&vec![b'x'; LINE_CAP + 5], &mut out);
        assert_eq!(out.len(), LINE_CAP);
        s.finish(&mut out);
        assert_eq!(out.len(), LINE_CAP + 5);
    }
}
