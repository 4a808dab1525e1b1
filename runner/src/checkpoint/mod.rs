//! Checkpoints: snapshots of a session's workspace files that can be restored (files only,
//! not side effects).
//!
//! Each session gets a private git directory owned by the server (never inside the
//! workspace, never the user's own `.git`), with the workspace as its work tree, written
//! with libgit2 (`git2`): no `git` binary, no hooks (libgit2 runs none), no filters (the
//! store's `info/attributes` turns off text conversion, `ident` and filter drivers for
//! every path, so bytes come back exactly). A checkpoint is a commit on
//! `refs/execkit/cp-N`; the index in the store keeps the stat cache, so files that did not
//! change are not read again.
//!
//! What is captured: every file under the workspace that `.gitignore` (when honoured) and
//! the operator's excludes do not leave out; symlinks as links (never followed); the
//! executable bit; empty directories (recorded in the commit). Nested repositories (a
//! directory with its own `.git`) are left out whole: they are the user's, and restoring
//! them file by file could break them. Restore brings every captured path back exactly,
//! deleting files created after the checkpoint, and writes only beneath the workspace
//! (`beneath.rs`: no link the agent planted is followed).

mod beneath;
mod pack;
mod remote;
mod stage;
mod store;

use serde::Serialize;
use std::path::PathBuf;

pub(crate) use remote::RemoteStore;
pub(crate) use store::Store;

/// What the operator allows checkpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckpointConfig {
    /// Checkpoints can be taken at all.
    pub enabled: bool,
    /// Where stores live (one directory per session); default: the session's private dir
    /// (removed with the session).
    pub store_dir: Option<PathBuf>,
    /// The most bytes one checkpoint may capture; past it, it is refused.
    pub max_bytes: u64,
    /// Gitignore-style patterns never captured.
    pub excludes: Vec<String>,
    /// Honour the workspace's `.gitignore` files.
    pub honour_gitignore: bool,
    /// Checkpoints kept per session; the oldest are pruned.
    pub keep: usize,
}

impl Default for CheckpointConfig {
    /// Enabled, in the session's private dir, 1 GiB cap, `.gitignore` honoured, 20 kept.
    fn default() -> Self {
        CheckpointConfig {
            enabled: true,
            store_dir: None,
            max_bytes: 1 << 30,
            excludes: Vec::new(),
            honour_gitignore: true,
            keep: 20,
        }
    }
}

/// Now, in Unix milliseconds (0 if the clock is before 1970).
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Paths listed in a report at most (the counts are always exact).
pub const MAX_LISTED: usize = 200;

/// A checkpoint as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckpointInfo {
    /// Its id (`cp-N`).
    pub id: String,
    /// The label given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// When it was taken (Unix ms).
    pub created_unix_ms: u64,
    /// Files captured.
    pub files: u64,
    /// Bytes captured.
    pub bytes: u64,
    /// Files that differ from the previous checkpoint (all of them for the first).
    pub changed_since_previous: u64,
    /// Why it was taken when the runner took it (`before: rm -r build`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub automatic: Option<String>,
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RestoreReport {
    /// The checkpoint restored.
    pub id: String,
    /// Files whose content or mode was put back.
    pub written: u64,
    /// Files created again (deleted since the checkpoint).
    pub created: u64,
    /// Files deleted (created since the checkpoint).
    pub deleted: u64,
    /// The paths touched (at most [`MAX_LISTED`]), `M`/`A`/`D` first.
    pub paths: Vec<String>,
    /// More paths were touched than listed.
    pub paths_truncated: bool,
}

/// What changed since a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiffSummary {
    /// The checkpoint compared with.
    pub id: String,
    /// Files changed since (content or mode).
    pub changed: Vec<String>,
    /// Files added since.
    pub added: Vec<String>,
    /// Files deleted since.
    pub deleted: Vec<String>,
    /// Counts (exact, whatever was listed).
    pub counts: DiffCounts,
    /// A unified diff of text files (redacted like command output, capped).
    pub diff: String,
    /// The diff was cut at the cap.
    pub diff_truncated: bool,
}

/// Exact counts of a diff.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DiffCounts {
    /// Changed files.
    pub changed: u64,
    /// Added files.
    pub added: u64,
    /// Deleted files.
    pub deleted: u64,
}

/// Why a checkpoint operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The operator turned checkpoints off.
    #[error("checkpoints are turned off by the operator")]
    Disabled,
    /// No such checkpoint in this session.
    #[error("no checkpoint `{0}` in this session (pruned, or never taken)")]
    Unknown(String),
    /// Past the operator's size cap.
    #[error("the workspace holds {bytes} bytes to capture, more than the checkpoint cap of {cap}; exclude build output or ask the operator for a larger cap")]
    TooLarge {
        /// Bytes that would be captured.
        bytes: u64,
        /// The cap.
        cap: u64,
    },
    /// This transport cannot take checkpoints (yet).
    #[error("{0}")]
    Unsupported(String),
    /// libgit2 failed.
    #[error("checkpoint store: {0}")]
    Git(#[from] git2::Error),
    /// File system.
    #[error("checkpoint store: {0}")]
    Io(#[from] std::io::Error),
}
