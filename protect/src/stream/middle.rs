//! The middle of a long stream, held back unredacted.
//!
//! Under the `full` budget, once the head is full, the rest of a stream reaches the caller
//! only through the tail window (the last `tail_bytes`). Redacting the gigabyte in between
//! only to throw it away would make protection the bottleneck of long outputs. So the
//! stripped text is held back unredacted; what falls out of the window (with room to
//! spare) is dropped and only counted; at the end the held text is redacted and passed on.
//!
//! Why nothing is shown that should not be:
//!
//! * **A secret cut by a drop is never shown in part.** A drop cuts at a line start when
//!   one is near (single-line secrets never span lines). When it must cut inside a very
//!   long line, the rest of that line (or, past two redactor windows, the first window) is
//!   redacted and thrown away before anything is shown.
//! * **A multi-line secret is never entered in the middle.** Holding starts only when no
//!   PEM key or Kubernetes `data:` block is open, and every held line is checked whole for
//!   one that opens such a secret. Where one does, a scratch redactor reads the lines from
//!   it to find where the secret closes, and no drop ever cuts between the two: the held
//!   text always starts outside such a secret, so the redactor that finally reads it sees
//!   the secret from its first line. Only a secret still open at the end of what is held
//!   ends the holding (the stream is then redacted whole until it closes). Releasing the
//!   held text at every opener instead would make a YAML `data:` line every few hundred KB
//!   cost the redaction of most of a long output.
//! * **The tail window is never left short.** The held text keeps the tail plus a slack,
//!   so that redaction shortening secrets does not pull older, unscanned text into it.
//!
//! Counts: for the dropped middle, bytes and lines count the stripped text unredacted (a
//! redacted secret there would have been shorter, a multi-line one a single line); its
//! redactions are not counted. For
//! all text shown, both are exact. [`crate::MiddleMode::Redact`] turns this off.

use crate::stream::redact::{floor_boundary, StreamRedactor, WINDOW};
use crate::stream::shape::Shaper;

/// Held beyond the tail window, so that redaction shortening secrets never pulls older
/// text into it.
const SLACK: usize = 16 * 1024;
/// Inside a line longer than this the drop cuts mid-line (and the release throws away the
/// rest of that line, or this much of it).
const LONG_LINE: usize = 2 * WINDOW;
/// Held text may exceed its bound by this much before a drop (drops stay rare).
const HYSTERESIS: usize = 2 * WINDOW;

/// Text dropped from the middle, as a caller would have counted it.
#[derive(Debug, Clone, Default)]
struct Dropped {
    bytes: u64,
    newlines: u64,
    last_newline: bool,
}

impl Dropped {
    /// Counts `t`; ghost marks (which only the redactor sees, and removes with the
    /// character they mark) are not counted.
    fn count(&mut self, t: &str) {
        if t.is_empty() {
            return;
        }
        // Each ghost mark goes with the character after it.
        let mut visible = t.len();
        for at in memchr::memmem::find_iter(t.as_bytes(), crate::stream::ansi::GHOST_BYTES) {
            let next = t[at + crate::stream::ansi::GHOST_BYTES.len()..]
                .chars()
                .next()
                .map_or(0, char::len_utf8);
            visible = visible.saturating_sub(crate::stream::ansi::GHOST_BYTES.len() + next);
        }
        self.bytes += visible as u64;
        self.newlines += memchr::memchr_iter(b'\n', t.as_bytes()).count() as u64;
        self.last_newline = t.ends_with('\n');
    }
}

/// The held middle of one stream.
#[derive(Debug, Clone)]
pub(crate) struct Middle {
    /// Stripped, unredacted text.
    held: String,
    /// How much of `held` was searched for lines opening a multi-line secret.
    checked: usize,
    /// Multi-line secrets found in `held` (from their opening line's start to the end of
    /// the line after which they are closed), in order: no drop cuts inside one.
    blocks: Vec<(usize, usize)>,
    /// Whether `held` starts inside a line (a drop cut a long line).
    starts_mid_line: bool,
    dropped: Dropped,
    /// Bytes of tail (plus slack) to hold.
    keep: usize,
}

impl Middle {
    /// Starts holding with the redactor's unprocessed partial line (so that held text
    /// begins at a line start) for a tail window of `tail_bytes`.
    pub fn start(partial_line: String, tail_bytes: usize) -> Middle {
        Middle {
            held: partial_line,
            checked: 0,
            blocks: Vec::new(),
            starts_mid_line: false,
            dropped: Dropped::default(),
            keep: tail_bytes + SLACK,
        }
    }

    /// Holds `text`. Returns `true` when a line that opens a multi-line secret appeared
    /// and the secret is still open at the end of what is held: the caller must
    /// [`Middle::release`] now. Older text is dropped first, up to the tail and slack
    /// before that line.
    pub fn add(&mut self, text: &str, redactor: &StreamRedactor) -> bool {
        // A keyword cut by the previous push is found again with the end of what was
        // searched (keywords are short); the line around a hit is judged whole. Never
        // inside a secret already found (its lines are the redactor's to judge).
        let last_block_end = self.blocks.last().map_or(0, |b| b.1);
        let from = floor_boundary(&self.held, self.checked.saturating_sub(64)).max(last_block_end);
        self.held.push_str(text);
        // One search for all openers; those inside a secret found meanwhile are skipped.
        let mut after_block = from;
        for opener in redactor.multiline_openers(&self.held, from) {
            if opener < after_block {
                continue;
            }
            let line_start =
                memchr::memrchr(b'\n', &self.held.as_bytes()[..opener]).map_or(0, |i| i + 1);
            match redactor.multiline_end(&self.held[line_start..]) {
                Some(len) => {
                    self.blocks.push((line_start, line_start + len));
                    after_block = line_start + len;
                }
                None => {
                    self.drop_before(line_start.saturating_sub(self.keep));
                    return true;
                }
            }
        }
        self.checked = self.held.len();
        if self.held.len() > self.keep + LONG_LINE + HYSTERESIS {
            self.drop_before(self.held.len() - self.keep - LONG_LINE);
        }
        false
    }

    /// Drops the held text before `target`, cutting at the line start before it when one
    /// is within [`LONG_LINE`].
    fn drop_before(&mut self, target: usize) {
        let target = floor_boundary(&self.held, target);
        if target == 0 {
            return;
        }
        let line_start = memchr::memrchr(b'\n', &self.held.as_bytes()[..target])
            .map(|i| i + 1)
            .filter(|&ls| target - ls <= LONG_LINE);
        let mut cut = match line_start {
            Some(ls) => ls,
            None => {
                // Never between a ghost mark and the character it marks.
                let mut cut = target;
                if self.held[..cut].ends_with(crate::stream::ansi::GHOST) {
                    cut -= crate::stream::ansi::GHOST.len_utf8();
                }
                cut
            }
        };
        let mut mid_line = line_start.is_none();
        // Never inside a multi-line secret: before its first line instead.
        if let Some(&(start, _)) = self.blocks.iter().find(|b| b.0 < cut && cut < b.1) {
            cut = start;
            mid_line = false;
        }
        if cut == 0 {
            return;
        }
        self.starts_mid_line = mid_line;
        self.dropped.count(&self.held[..cut]);
        self.held.drain(..cut);
        self.checked = self.checked.saturating_sub(cut);
        self.blocks.retain(|b| b.1 > cut);
        for b in &mut self.blocks {
            // Every block left starts at or after the cut (a cut is never inside one).
            b.0 -= cut;
            b.1 -= cut;
        }
    }

    /// Redacts the held text into `out` for the shaper, after telling the shaper what was
    /// dropped. Without drops the held text simply continues the stream.
    pub fn release(mut self, redactor: &mut StreamRedactor, shape: &mut Shaper, out: &mut String) {
        if self.dropped.bytes == 0 {
            redactor.push(&self.held, out);
            return;
        }
        // The redactor's state belongs to text before the gap: start afresh.
        let before_gap = redactor.restart();
        self.dropped.count(&before_gap);
        let mut start = 0;
        if self.starts_mid_line {
            // The rest of the cut line (or its first windows) is scanned, never shown.
            start = memchr::memchr(b'\n', self.held.as_bytes())
                .map(|i| i + 1)
                .filter(|&e| e <= LONG_LINE)
                .unwrap_or_else(|| floor_boundary(&self.held, LONG_LINE));
            let mut scanned = String::new();
            redactor.push(&self.held[..start], &mut scanned);
            self.dropped.count(&scanned);
        }
        shape.skip(
            self.dropped.bytes,
            self.dropped.newlines,
            self.dropped.last_newline,
        );
        redactor.push(&self.held[start..], out);
    }
}
