//! Appending to the log.

use crate::chain::{genesis_prev, record_hash, seal, sha256_hex};
use crate::record::AuditEvent;
use crate::verify::{verify, Anchor, VerifyOptions};
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Why the log could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// An I/O error, with the file it concerns.
    #[error("audit log {path}: {source}")]
    Io {
        /// The log file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The existing file's chain is broken: appending would hide that. Rotate the file.
    #[error("audit log {path}: refusing to append to a broken chain: {problem}")]
    Broken {
        /// The log file.
        path: PathBuf,
        /// What verification found.
        problem: String,
    },
    /// A record could not be serialised.
    #[error("audit record: {0}")]
    Json(#[from] serde_json::Error),
    /// The record is in the file but the required syslog forward failed.
    #[error("audit record not forwarded: {0}")]
    Forward(#[from] crate::syslog::SyslogError),
}

/// How to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditOptions {
    /// `fdatasync` after every record (durable, slower).
    pub fsync: bool,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions { fsync: true }
    }
}

/// Where a record landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// Its sequence number.
    pub seq: u64,
    /// Its hash (the new head of the chain).
    pub hash: String,
}

#[derive(Serialize)]
struct Envelope<'a> {
    v: u32,
    seq: u64,
    time: String,
    prev: &'a str,
    #[serde(flatten)]
    event: &'a AuditEvent,
}

/// An open audit log. Not shared between processes; wrap it in a mutex to share it
/// between threads.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: File,
    next_seq: u64,
    head: String,
    options: AuditOptions,
    /// The file's length after the last complete record: a write that fails part-way is
    /// cut back to it, so no later record is ever appended onto a torn line.
    good_len: u64,
    /// A record that could not be written (its size and the SHA-256 of its line): the
    /// next record that can be written is preceded by a `recovery` record for it.
    lost: Option<(u64, String)>,
    /// Why the last write failed, until one succeeds.
    failing: Option<String>,
    /// Where each record is forwarded as it is written.
    syslog: Option<crate::syslog::Syslog>,
}

impl AuditLog {
    /// Opens (or creates, mode 0600) the log at `path`. An existing file is verified
    /// first; a partial last line is cut off and recorded; any other damage is an error.
    pub fn open(path: &Path, options: AuditOptions) -> Result<AuditLog, AuditError> {
        let io = |source| AuditError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut oo = OpenOptions::new();
        oo.read(true).append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            oo.mode(0o600);
        }
        let mut file = oo.open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        if len == 0 {
            let mut nonce = [0u8; 32];
            getrandom::fill(&mut nonce).map_err(|e| io(std::io::Error::other(e.to_string())))?;
            let nonce = nonce.iter().map(|b| format!("{b:02x}")).collect::<String>();
            let mut log = AuditLog {
                path: path.to_path_buf(),
                file,
                next_seq: 0,
                head: genesis_prev(&nonce),
                options,
                good_len: 0,
                lost: None,
                failing: None,
                syslog: None,
            };
            log.append(&AuditEvent::Genesis {
                nonce,
                created_by: format!("execkit {}", env!("CARGO_PKG_VERSION")),
            })?;
            return Ok(log);
        }
        // Cut off a partial last line left by a crash.
        let mut recovered: Option<(u64, String)> = None;
        let last_nl = last_newline(&mut file, len).map_err(io)?;
        let keep = last_nl.map(|p| p + 1).unwrap_or(0);
        if keep < len {
            file.seek(SeekFrom::Start(keep)).map_err(io)?;
            let mut tail = Vec::new();
            file.read_to_end(&mut tail).map_err(io)?;
            file.set_len(keep).map_err(io)?;
            file.sync_data().map_err(io)?;
            recovered = Some((tail.len() as u64, sha256_hex(&[&tail])));
        }
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        // The anchor beside the log: records cut off the end, or a rewrite with recomputed
        // hashes, do not pass.
        let anchor = Anchor::beside(path).map_err(io)?;
        let report = verify(
            BufReader::new(&mut file),
            &VerifyOptions {
                anchor,
                ..VerifyOptions::default()
            },
        )
        .map_err(io)?;
        if let Some(p) = report.problem {
            return Err(AuditError::Broken {
                path: path.to_path_buf(),
                problem: p.to_string(),
            });
        }
        let (Some(head), Some(last_seq)) = (report.head, report.last_seq) else {
            return Err(AuditError::Broken {
                path: path.to_path_buf(),
                problem: "no complete record (the genesis record was lost)".into(),
            });
        };
        let good_len = file.metadata().map_err(io)?.len();
        let mut log = AuditLog {
            path: path.to_path_buf(),
            file,
            next_seq: last_seq + 1,
            head,
            options,
            good_len,
            lost: None,
            failing: None,
            syslog: None,
        };
        if let Some((discarded_bytes, discarded_sha256)) = recovered {
            log.append(&AuditEvent::Recovery {
                discarded_bytes,
                discarded_sha256,
            })?;
        }
        Ok(log)
    }

    /// Appends one event; returns its sequence number and hash.
    ///
    /// When an earlier record could not be written, a `recovery` record describing it
    /// (size and hash of the lost line) goes first: the gap is in the chain, never hidden.
    pub fn append(&mut self, event: &AuditEvent) -> Result<Appended, AuditError> {
        if let Some((discarded_bytes, discarded_sha256)) = self.lost.clone() {
            self.write_record(&AuditEvent::Recovery {
                discarded_bytes,
                discarded_sha256,
            })?;
            self.lost = None;
        }
        self.write_record(event)
    }

    fn write_record(&mut self, event: &AuditEvent) -> Result<Appended, AuditError> {
        let time = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
        let env = Envelope {
            v: 1,
            seq: self.next_seq,
            time: time.clone(),
            prev: &self.head,
            event,
        };
        let body = serde_json::to_string(&env)?;
        let hash = record_hash(&self.head, body.as_bytes());
        let line = seal(&body, &hash);
        let path = self.path.clone();
        let io = |source| AuditError::Io {
            path: path.clone(),
            source,
        };
        // A record that failed part-way is removed before anything else is written.
        self.cut_torn_tail().map_err(io)?;
        // One write: with O_APPEND a crash leaves at most a partial last line.
        let written = self.file.write_all(line.as_bytes()).and_then(|()| {
            if self.options.fsync {
                self.file.sync_data()
            } else {
                self.file.flush()
            }
        });
        if let Err(e) = written {
            // Out of space, or the file made read-only or immutable: take the partial
            // record back out (when the file allows it; otherwise before the next one),
            // and say so in the next record that can be written.
            let _ = self.cut_torn_tail();
            if self.lost.is_none() {
                self.lost = Some((line.len() as u64, sha256_hex(&[line.as_bytes()])));
            }
            self.failing = Some(e.to_string());
            return Err(io(e));
        }
        self.good_len += line.len() as u64;
        let appended = Appended {
            seq: self.next_seq,
            hash: hash.clone(),
        };
        self.next_seq += 1;
        self.head = hash;
        let forwarded = self.forward(event, &appended, &time, &line);
        if let Err(e) = forwarded {
            // The record is in the file; without it in syslog a required forward refuses.
            let required = self.syslog.as_ref().is_some_and(|s| s.required());
            eprintln!("execkit: audit record {} not forwarded: {e}", appended.seq);
            if required {
                self.failing = Some(e.to_string());
                return Err(AuditError::Forward(e));
            }
        }
        self.failing = None;
        // The record is in. The anchor may lag it (it is checked as "the log holds this
        // record", never as "this is the last one"), so one that cannot be written now is
        // written with the next record.
        if let Err(e) = self.write_anchor(appended.seq, &appended.hash) {
            eprintln!(
                "execkit: audit anchor {} not updated: {e}",
                Anchor::path_for(&self.path).display()
            );
        }
        Ok(appended)
    }

    /// Sends every record to syslog from now on (the genesis record of a new file went
    /// before: a SIEM sees the chain from where it was connected).
    pub fn forward_to(&mut self, syslog: crate::syslog::Syslog) {
        self.syslog = Some(syslog);
    }

    fn forward(
        &mut self,
        event: &AuditEvent,
        appended: &Appended,
        time: &str,
        line: &str,
    ) -> Result<(), crate::syslog::SyslogError> {
        let Some(s) = self.syslog.as_mut() else {
            return Ok(());
        };
        s.send(&crate::syslog::Message {
            severity: event.severity(),
            kind: event.kind(),
            seq: appended.seq,
            hash: &appended.hash,
            time,
            line: line.trim_end_matches('\n'),
        })
    }

    /// Writes `LOG.head` (the last record's seq and hash; replaced atomically): an anchor
    /// for `verify`. It may lag the log after a crash, never lead it.
    fn write_anchor(&self, seq: u64, hash: &str) -> std::io::Result<()> {
        let path = Anchor::path_for(&self.path);
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let text = serde_json::to_string(&Anchor {
            seq,
            hash: hash.to_string(),
        })
        .map_err(std::io::Error::other)?;
        let mut oo = OpenOptions::new();
        oo.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            oo.mode(0o600);
        }
        let mut f = oo.open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.write_all(b"\n")?;
        drop(f);
        std::fs::rename(&tmp, &path)
    }

    /// Cuts the file back to its last complete record, when a failed write left more.
    fn cut_torn_tail(&mut self) -> std::io::Result<()> {
        let len = self.file.metadata()?.len();
        if len > self.good_len {
            self.file.set_len(self.good_len)?;
            self.file.sync_data()?;
        }
        Ok(())
    }

    /// The hash of the last record: store it elsewhere to detect records cut off the end.
    pub fn head(&self) -> &str {
        &self.head
    }

    /// Why the last record could not be written, until a record is written again: while
    /// this is `Some`, commands are refused.
    pub fn failing(&self) -> Option<&str> {
        self.failing.as_deref()
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Offset of the last `\n` in the file, scanning backwards in blocks.
fn last_newline(file: &mut File, len: u64) -> std::io::Result<Option<u64>> {
    let mut end = len;
    let mut buf = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let n = (end - start) as usize;
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut buf[..n])?;
        if let Some(i) = buf[..n].iter().rposition(|&b| b == b'\n') {
            return Ok(Some(start + i as u64));
        }
        end = start;
    }
    Ok(None)
}
