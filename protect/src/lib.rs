//! # Output protection
//!
//! What a command prints is untrusted and may hold secrets. Before any byte reaches an
//! agent, the MCP layer, a notification or the audit log it passes, per stream, through:
//!
//! 1. [`AnsiStripper`] — terminal escapes removed, `\r`/backspace overwrites collapsed,
//!    invalid UTF-8 replaced (never a panic);
//! 2. [`Redactor`] — known secret values (and their base64/URL-encoded forms) and 100+
//!    rule families (keyword prefilter + confirming regex, from `rules/secrets.toml`)
//!    replaced by `[REDACTED:<rule-id>]`;
//! 3. [`Shaper`] — memory bounded by the operator's [`CaptureLimits`], the caller's
//!    [`Budget`] applied (head / tail / head+tail lines, grep with context, char cap).
//!
//! [`Protector`] ties them together; [`StreamProtector`] is one stream. All of it is pure
//! and streaming: output is identical however the input is chunked.
//!
//! ```
//! use execkit_protect::{Budget, BudgetMode, CaptureLimits, KnownSecrets, Protector, Redactor};
//! let mut known = KnownSecrets::new();
//! known.add("s3cr3t-value-42");
//! let p = Protector::new(Redactor::new(&known), CaptureLimits::default());
//! let budget = Budget { mode: BudgetMode::Grep { pattern: "ERROR".into(), context: 0 }, max_chars: None };
//! let mut out = p.stream(&budget).unwrap();
//! for chunk in ["ok 1\nERROR: s3cr3t", "-value-42 leaked\nok 2\n"] {
//!     out.push(chunk.as_bytes());
//! }
//! let out = out.finish();
//! assert_eq!(out.text, "2:ERROR: [REDACTED:known-value] leaked\n");
//! assert_eq!(out.report.lines_total, 3);
//! ```

#![warn(missing_docs)]

mod boundary;
pub(crate) mod matching;
pub(crate) mod rules;
pub(crate) mod stream;

pub use boundary::{ceil_boundary, floor_boundary};
pub use matching::keyword_dfa::KeywordDfaError;
pub use matching::known::{KnownSecrets, SecretEnvPolicy};
pub use rules::keyword_cover;
pub use rules::value_gate::{GateExample, GateSpec, ValueListsSpec};
pub use rules::{PatternSearch, Rule, RuleSet, RuleSpec, RulesError, BUILTIN_RULES};
pub use stream::ansi::{remove_ghosts, strip_ansi, AnsiStripper};
pub use stream::pipeline::{MiddleMode, Protector, StreamOutput, StreamProtector};
pub use stream::redact::{Redacted, RedactionCounts, Redactor, StreamRedactor};
pub use stream::shape::{
    Budget, BudgetError, BudgetMode, CaptureLimits, ShapeMode, Shaped, Shaper, StreamReport,
};
