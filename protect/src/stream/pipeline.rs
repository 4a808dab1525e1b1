//! The whole protection pipeline for one stream: strip → redact → bound → budget.
//!
//! The runner feeds each stream's bytes as they arrive ([`StreamProtector::push`]) and
//! takes the result when the command ends ([`StreamProtector::finish`]). Nothing that
//! leaves this pipeline has escapes or known secrets in it, and memory per stream is
//! bounded by the operator's [`CaptureLimits`] however much the command prints.
//!
//! Under the `full` budget the middle of a long stream, which only the tail window could
//! show, is held back unredacted and mostly dropped ([`crate::stream::middle`]).

use crate::stream::ansi::AnsiStripper;
use crate::stream::middle::Middle;
use crate::stream::redact::{Redacted, RedactionCounts, Redactor, StreamRedactor};
use crate::stream::shape::{Budget, BudgetError, CaptureLimits, Shaper, StreamReport};
use serde::{Deserialize, Serialize};

/// Output protection for a session or run: the redactor (rules + known values) and the
/// operator's capture limits.
#[derive(Debug, Clone)]
pub struct Protector {
    redactor: Redactor,
    limits: CaptureLimits,
    middle: MiddleMode,
}

/// What happens to the middle of a stream that only its tail window can show (module
/// docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MiddleMode {
    /// Held back unredacted; what falls out of the window is only counted.
    #[default]
    Hold,
    /// Redacted like the rest (the reference the tests compare against; its counts
    /// include the middle's redactions).
    Redact,
}

/// One protected stream, as returned to a caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamOutput {
    /// The protected, shaped text.
    pub text: String,
    /// Sizes, budget mode and truncation.
    pub report: StreamReport,
    /// Redactions per rule id.
    pub redactions: RedactionCounts,
}

impl Protector {
    /// A protector.
    ///
    /// ```
    /// use execkit_protect::{Budget, CaptureLimits, KnownSecrets, Protector, Redactor};
    /// let p = Protector::new(Redactor::new(&KnownSecrets::new()), CaptureLimits::default());
    /// let mut s = p.stream(&Budget::default()).unwrap();
    /// s.push(b"\x1b[32mtoken=ghp_0123456789abcdefghijABCDEFGHIJ012345\x1b[0m\n");
    /// let out = s.finish();
    /// assert_eq!(out.text, "token=[REDACTED:github-pat]\n");
    /// assert_eq!(out.redactions["github-pat"], 1);
    /// ```
    pub fn new(redactor: Redactor, limits: CaptureLimits) -> Protector {
        Protector {
            redactor,
            limits,
            middle: MiddleMode::default(),
        }
    }

    /// Chooses what happens to a stream's middle (default: [`MiddleMode::Hold`]).
    pub fn with_middle(mut self, middle: MiddleMode) -> Protector {
        self.middle = middle;
        self
    }

    /// The redactor.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// The capture limits.
    pub fn limits(&self) -> CaptureLimits {
        self.limits
    }

    /// Starts protecting one stream under a budget.
    pub fn stream(&self, budget: &Budget) -> Result<StreamProtector, BudgetError> {
        Ok(self.start(Some(Shaper::new(budget, self.limits)?)))
    }

    /// Starts protecting one stream without bounding it: the protected text is handed
    /// back as it is produced ([`StreamProtector::drain`]) instead of being kept. For
    /// scrubbing whole files (`execkit redact`), never for command output.
    pub fn passthrough(&self) -> StreamProtector {
        self.start(None)
    }

    fn start(&self, shape: Option<Shaper>) -> StreamProtector {
        StreamProtector {
            strip: AnsiStripper::new(),
            redact: self.redactor.stream(),
            shape,
            middle_state: match self.middle {
                MiddleMode::Hold => MiddleState::Redacting,
                MiddleMode::Redact => MiddleState::Done,
            },
            middle: None,
            raw_bytes: 0,
            stripped: String::new(),
            redacted: String::new(),
            through_bytes: 0,
            through_newlines: 0,
            through_last_newline: true,
        }
    }

    /// Redacts text that is echoed or logged but was never terminal output (a command
    /// line, a cwd): escapes are stripped too, so they cannot hide a secret.
    pub fn redact_text(&self, text: &str) -> Redacted {
        let stripped = crate::stream::ansi::strip_ansi(text.as_bytes());
        self.redactor.redact_str(&stripped)
    }
}

/// Whether the middle of the stream is held back unredacted.
#[derive(Debug, Clone, PartialEq, Eq)]
enum MiddleState {
    /// Not now: the head is not full, another budget applies, or a multi-line secret is
    /// open (holding resumes at the first line end after it closes).
    Redacting,
    /// Holding it back.
    Holding,
    /// Never ([`MiddleMode::Redact`]).
    Done,
}

/// The pipeline for one stream.
#[derive(Debug, Clone)]
pub struct StreamProtector {
    strip: AnsiStripper,
    redact: StreamRedactor,
    /// `None` in pass-through mode.
    shape: Option<Shaper>,
    middle_state: MiddleState,
    middle: Option<Middle>,
    raw_bytes: u64,
    stripped: String,
    redacted: String,
    /// Pass-through totals: protected bytes and newlines seen, last byte.
    through_bytes: u64,
    through_newlines: u64,
    through_last_newline: bool,
}

impl StreamProtector {
    /// Feeds raw bytes from the process.
    pub fn push(&mut self, bytes: &[u8]) {
        self.raw_bytes += bytes.len() as u64;
        self.strip.push(bytes, &mut self.stripped);
        self.pass_on();
    }

    fn pass_on(&mut self) {
        if self.middle_state == MiddleState::Redacting && !self.redact.in_multiline() {
            if let Some(shape) = self.shape.as_ref().filter(|s| s.only_tail_left()) {
                self.middle = Some(Middle::start(self.redact.restart(), shape.tail_bytes()));
                self.middle_state = MiddleState::Holding;
            }
        }
        if self.middle_state == MiddleState::Holding && !self.stripped.is_empty() {
            self.hold();
            return;
        }
        if !self.stripped.is_empty() {
            self.redact.push(&self.stripped, &mut self.redacted);
            self.stripped.clear();
        }
        if let Some(shape) = &mut self.shape {
            if !self.redacted.is_empty() {
                shape.push(&self.redacted);
                self.redacted.clear();
            }
        }
    }

    /// Holds the stripped text back; a line opening a multi-line secret releases it.
    fn hold(&mut self) {
        let opens = match &mut self.middle {
            Some(m) => m.add(&self.stripped, &self.redact),
            None => false,
        };
        self.stripped.clear();
        if opens {
            // Redacted whole until the secret is closed (`pass_on` holds again after).
            self.release();
            self.middle_state = MiddleState::Redacting;
        }
    }

    /// Redacts what is held and passes it on.
    fn release(&mut self) {
        let (Some(m), Some(shape)) = (self.middle.take(), self.shape.as_mut()) else {
            return;
        };
        m.release(&mut self.redact, shape, &mut self.redacted);
        if !self.redacted.is_empty() {
            shape.push(&self.redacted);
            self.redacted.clear();
        }
    }

    /// In pass-through mode, moves the protected text produced so far into `out`.
    pub fn drain(&mut self, out: &mut String) {
        if self.shape.is_none() {
            self.count_through();
            out.push_str(&self.redacted);
            self.redacted.clear();
        }
    }

    fn count_through(&mut self) {
        if self.redacted.is_empty() {
            return;
        }
        self.through_bytes += self.redacted.len() as u64;
        self.through_newlines +=
            memchr::memchr_iter(b'\n', self.redacted.as_bytes()).count() as u64;
        self.through_last_newline = self.redacted.ends_with('\n');
    }

    /// Raw bytes received so far.
    pub fn raw_bytes(&self) -> u64 {
        self.raw_bytes
    }

    /// Redactions so far (for progress reports).
    pub fn redactions_so_far(&self) -> RedactionCounts {
        self.redact.counts()
    }

    /// The "output so far" of a command that is still running: what
    /// [`StreamProtector::finish`] would return if the stream ended now, computed by
    /// finishing a copy, so it is protected exactly as the final output is (the held
    /// middle is redacted before any of it is shown). Costs a copy of the kept text and the
    /// redaction of the held middle: meant for previews every few hundred milliseconds,
    /// not per chunk.
    ///
    /// Only complete lines are shown (a line still being written could hold the first part
    /// of a secret that only its end makes recognizable), and at most the last
    /// `max_bytes` of them, starting at a line start.
    pub fn preview(&self, max_bytes: usize) -> String {
        let mut text = self.clone().finish().text;
        match text.rfind('\n') {
            Some(end) => text.truncate(end + 1),
            None => text.clear(),
        }
        if text.len() > max_bytes {
            let from = text.len() - max_bytes;
            let start = match text[from..].find('\n') {
                Some(nl) if from + nl + 1 < text.len() => from + nl + 1,
                _ => crate::stream::redact::ceil_boundary(&text, from),
            };
            text.drain(..start);
        }
        text
    }

    /// Ends the stream. In pass-through mode `text` holds only what was not drained.
    pub fn finish(mut self) -> StreamOutput {
        self.strip.finish(&mut self.stripped);
        if self.middle_state == MiddleState::Holding {
            if !self.stripped.is_empty() {
                self.hold();
            }
            if self.middle_state == MiddleState::Holding {
                self.release();
            }
        }
        if !self.stripped.is_empty() {
            self.redact.push(&self.stripped, &mut self.redacted);
            self.stripped.clear();
        }
        let redactions = self.redact.finish(&mut self.redacted);
        let Some(mut shape) = self.shape else {
            // Pass-through: whatever was not drained is the rest of the text.
            self.count_through();
            let text = std::mem::take(&mut self.redacted);
            let lines = if self.through_bytes == 0 {
                0
            } else {
                self.through_newlines + u64::from(!self.through_last_newline)
            };
            let report = StreamReport {
                mode: crate::stream::shape::ShapeMode::Passthrough,
                raw_bytes: self.raw_bytes,
                bytes_total: self.through_bytes,
                lines_total: lines,
                bytes_kept: self.through_bytes,
                lines_kept: lines,
                ..StreamReport::default()
            };
            return StreamOutput {
                text,
                report,
                redactions,
            };
        };
        if !self.redacted.is_empty() {
            shape.push(&self.redacted);
        }
        let shaped = shape.finish();
        let mut report = shaped.report;
        report.raw_bytes = self.raw_bytes;
        StreamOutput {
            text: shaped.text,
            report,
            redactions,
        }
    }
}
