//! The stream: what a command prints, chunk by chunk, to what the agent reads.
//!
//! [`ansi`] strips terminal escapes; [`redact`] cuts the text into lines and windows,
//! follows secrets that span lines (PEM keys, Kubernetes `data:` blocks, name/value pairs)
//! and hands each line to [`crate::matching`]; [`middle`] holds back the middle of a long
//! stream unredacted until it is known to be shown; [`shape`] bounds memory and applies the
//! caller's budget; [`pipeline`] ties them together per stream. Every step gives the same
//! output however the input is chunked.

pub(crate) mod ansi;
pub(crate) mod middle;
pub(crate) mod packed_sort;
pub(crate) mod pipeline;
pub(crate) mod redact;
pub(crate) mod shape;
