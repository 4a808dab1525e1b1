//! # execkit-audit: a tamper-evident audit log
//!
//! One JSON object per line: one record per decision and one per finished command, with
//! everything a reviewer needs (time, session, identity, transport/target, the *redacted*
//! command, each fact's decision and determining policies, exit code, duration, byte
//! counts, redactions per rule, truncation).
//!
//! Each record carries the SHA-256 of the previous one (`prev`) and its own (`hash`), and a
//! sequence number. The chain is seeded per file by a random nonce in the first (genesis)
//! record, so records cannot be moved between files. [`verify`] reports the first edited,
//! missing, reordered or malformed record and a truncated last line; anchoring the final
//! hash elsewhere ([`VerifyOptions::expect_head`]) also catches records cut off the end.
//!
//! Appends are single `write(2)` calls on an `O_APPEND` file, so a crash can only leave a
//! partial *last* line; earlier records are never touched. [`AuditLog::open`] repairs such
//! a tail by cutting it off and recording that it did (a `recovery` record with the size
//! and hash of what was discarded).
//!
//! ```
//! use execkit_audit::{AuditLog, AuditEvent, verify_file, VerifyOptions};
//! let dir = std::env::temp_dir().join(format!("execkit-audit-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("audit.jsonl");
//! let mut log = AuditLog::open(&path, Default::default()).unwrap();
//! log.append(&AuditEvent::Note { message: "server started".into() }).unwrap();
//! drop(log);
//! let report = verify_file(&path, &VerifyOptions::default()).unwrap();
//! assert!(report.problem.is_none());
//! assert_eq!(report.records, 2); // genesis + note
//! # std::fs::remove_dir_all(&dir).ok();
//! ```

#![warn(missing_docs)]

mod chain;
mod log;
pub mod ocsf;
mod record;
mod syslog;
mod verify;

pub use chain::{record_hash, GENESIS_DOMAIN};
pub use log::{Appended, AuditError, AuditLog, AuditOptions};
pub use record::{
    ApprovalEvent, ApprovalRecord, AuditEvent, CheckpointRecord, CommandRecord, DecisionRecord,
    FactRecord, ProcessEvent, ProcessRecord, RecordedEnv, RuntimeContext, SessionEvent,
    SessionRecord, StreamSummary, TranscriptRecord, Verdict, Who,
};
pub use syslog::{
    Facility, Message as SyslogMessage, Severity, Syslog, SyslogAddress, SyslogError, SyslogOptions,
};
pub use verify::{verify, verify_file, Anchor, Problem, ProblemKind, VerifyOptions, VerifyReport};
