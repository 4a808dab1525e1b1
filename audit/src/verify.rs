//! Checking a log: the first problem, precisely located.

use crate::chain::{genesis_prev, record_hash, split_hash};
use serde::Serialize;
use std::fmt;
use std::io::BufRead;
use std::path::Path;

/// What to check beyond the chain itself.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// The hash the log's last record must have (an anchor kept elsewhere). Detects
    /// records removed from the end, which the chain alone cannot.
    pub expect_head: Option<String>,
    /// A record the log must hold, with this hash (the anchor file the log writes beside
    /// itself, or one kept elsewhere): detects records removed from the end and a rewrite
    /// whose hashes were recomputed.
    pub anchor: Option<Anchor>,
}

/// A record a log is known to hold: its sequence number and hash.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Anchor {
    /// The record's sequence number.
    pub seq: u64,
    /// Its hash.
    pub hash: String,
}

impl Anchor {
    /// The anchor file of the log at `log`: `LOG.head`.
    pub fn path_for(log: &Path) -> std::path::PathBuf {
        let mut p = log.as_os_str().to_owned();
        p.push(".head");
        std::path::PathBuf::from(p)
    }

    /// The anchor kept beside the log at `log`, if there is one (`Err` for one that exists
    /// but cannot be read: that is a finding, not an absence).
    pub fn beside(log: &Path) -> std::io::Result<Option<Anchor>> {
        let path = Anchor::path_for(log);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(text.trim())
                .map(Some)
                .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Kinds of damage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// The line is not a well-formed record.
    Malformed,
    /// The last line has no newline: a write was cut short (crash) or the file truncated.
    TruncatedLastLine,
    /// The record's bytes do not match its hash: it was edited.
    Edited,
    /// The record does not follow its predecessor (its `prev` is another record's hash).
    BrokenLink,
    /// A sequence number is missing: records were deleted.
    Missing,
    /// Records are out of order.
    Reordered,
    /// The first record is not a valid genesis record.
    BadGenesis,
    /// The log does not end at the expected head: records were removed from the end.
    HeadMismatch,
    /// The anchored record is missing or has another hash: records were removed from the
    /// end, or the log was rewritten with recomputed hashes.
    AnchorMismatch,
}

/// The first problem found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// What is wrong.
    pub kind: ProblemKind,
    /// 1-based line number.
    pub line: u64,
    /// Sequence number of the record on that line, if it could be read.
    pub seq: Option<u64>,
    /// Human explanation.
    pub detail: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}", self.line)?;
        if let Some(s) = self.seq {
            write!(f, " (seq {s})")?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// The outcome of a verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Records checked and found good (before the first problem).
    pub records: u64,
    /// Sequence number of the last good record.
    pub last_seq: Option<u64>,
    /// Hash of the last good record (anchor this).
    pub head: Option<String>,
    /// The first problem, if any.
    pub problem: Option<Problem>,
}

#[derive(serde::Deserialize)]
struct Minimal {
    seq: u64,
    prev: String,
    kind: String,
    #[serde(default)]
    nonce: Option<String>,
}

/// Verifies a log read from `reader`.
pub fn verify(mut reader: impl BufRead, options: &VerifyOptions) -> std::io::Result<VerifyReport> {
    let mut report = VerifyReport {
        records: 0,
        last_seq: None,
        head: None,
        problem: None,
    };
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    let mut expected_seq = 0u64;
    let mut prev_hash: Option<String> = None;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        line_no += 1;
        let complete = buf.ends_with(b"\n");
        let line = if complete {
            &buf[..buf.len() - 1]
        } else {
            &buf[..]
        };
        let fail = |kind, seq, detail: String| Problem {
            kind,
            line: line_no,
            seq,
            detail,
        };
        if !complete {
            report.problem = Some(fail(
                ProblemKind::TruncatedLastLine,
                None,
                format!(
                    "the last line ({} bytes) has no newline: a write was cut short or the file was truncated",
                    line.len()
                ),
            ));
            break;
        }
        let parsed: Option<Minimal> = serde_json::from_slice(line).ok();
        let Some((body, hash)) = split_hash(line) else {
            report.problem = Some(fail(
                ProblemKind::Malformed,
                parsed.as_ref().map(|m| m.seq),
                "not an audit record (no trailing hash field)".into(),
            ));
            break;
        };
        let Some(rec) = parsed else {
            report.problem = Some(fail(
                ProblemKind::Malformed,
                None,
                "not valid JSON with seq/prev/kind".into(),
            ));
            break;
        };
        if record_hash(&rec.prev, &body) != hash {
            report.problem = Some(fail(
                ProblemKind::Edited,
                Some(rec.seq),
                "the record's content does not match its hash: it was edited".into(),
            ));
            break;
        }
        if line_no == 1 {
            let ok = rec.seq == 0
                && rec.kind == "genesis"
                && rec.nonce.as_deref().map(genesis_prev).as_deref() == Some(rec.prev.as_str());
            if !ok {
                report.problem = Some(fail(
                    ProblemKind::BadGenesis,
                    Some(rec.seq),
                    "the first record must be the genesis record (seq 0) whose prev is derived from its nonce".into(),
                ));
                break;
            }
        } else if rec.seq != expected_seq {
            let seq = rec.seq;
            let (kind, detail) = if seq < expected_seq {
                (
                    ProblemKind::Reordered,
                    format!("expected seq {expected_seq}, found seq {seq}: records were reordered or duplicated"),
                )
            } else if later_has_seq(&mut reader, expected_seq)? {
                (
                    ProblemKind::Reordered,
                    format!("expected seq {expected_seq}, found seq {seq}; seq {expected_seq} comes later: records were reordered"),
                )
            } else {
                let gap = if seq == expected_seq + 1 {
                    format!("seq {expected_seq} is missing")
                } else {
                    format!("seqs {expected_seq}..={} are missing", seq - 1)
                };
                (ProblemKind::Missing, format!("{gap}: records were deleted"))
            };
            report.problem = Some(fail(kind, Some(seq), detail));
            break;
        } else if prev_hash.as_deref() != Some(rec.prev.as_str()) {
            report.problem = Some(fail(
                ProblemKind::BrokenLink,
                Some(rec.seq),
                "prev does not match the previous record's hash: a record was replaced or the chain spliced".into(),
            ));
            break;
        }
        if let Some(a) = options.anchor.as_ref().filter(|a| a.seq == rec.seq) {
            if a.hash != hash {
                report.problem = Some(fail(
                    ProblemKind::AnchorMismatch,
                    Some(rec.seq),
                    format!(
                        "the anchor says seq {} has hash {}, the log says {hash}: the log was rewritten",
                        a.seq, a.hash
                    ),
                ));
                break;
            }
        }
        report.records += 1;
        report.last_seq = Some(rec.seq);
        expected_seq = rec.seq + 1;
        prev_hash = Some(hash.to_string());
    }
    report.head = prev_hash;
    if let (None, Some(a)) = (&report.problem, &options.anchor) {
        if report.last_seq.is_none_or(|last| last < a.seq) {
            report.problem = Some(Problem {
                kind: ProblemKind::AnchorMismatch,
                line: line_no,
                seq: report.last_seq,
                detail: format!(
                    "the anchor names seq {} but the log ends at seq {}: records were removed from the end",
                    a.seq,
                    report
                        .last_seq
                        .map_or("(none)".to_string(), |s| s.to_string())
                ),
            });
        }
    }
    if report.problem.is_none() {
        if let Some(expect) = &options.expect_head {
            if report.head.as_deref() != Some(expect.as_str()) {
                report.problem = Some(Problem {
                    kind: ProblemKind::HeadMismatch,
                    line: line_no,
                    seq: report.last_seq,
                    detail: format!(
                        "the log ends with hash {} but the anchor is {expect}: records were removed from the end or the log was replaced",
                        report.head.as_deref().unwrap_or("(none)")
                    ),
                });
            }
        }
    }
    Ok(report)
}

/// Whether a later line carries this seq (reads the rest of the input).
fn later_has_seq(reader: &mut impl BufRead, seq: u64) -> std::io::Result<bool> {
    let needle = format!("\"seq\":{seq},");
    let mut buf = Vec::new();
    let mut found = false;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            return Ok(found);
        }
        if !found {
            found = serde_json::from_slice::<Minimal>(buf.trim_ascii_end())
                .map(|m| m.seq == seq)
                .unwrap_or_else(|_| memchr_find(&buf, needle.as_bytes()));
        }
    }
}

fn memchr_find(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Verifies the log file at `path`.
pub fn verify_file(path: &Path, options: &VerifyOptions) -> std::io::Result<VerifyReport> {
    let f = std::fs::File::open(path)?;
    verify(std::io::BufReader::new(f), options)
}
