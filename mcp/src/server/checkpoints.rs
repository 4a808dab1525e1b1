//! The checkpoint tools: `session_checkpoint`, `session_restore`, `session_checkpoints`,
//! `session_diff` — snapshots of a session's workspace files and their undo.

use super::output::ErrorKind;
use super::{denied, fail, ok, ExecKitServer, ToolResult};
use execkit_runner::checkpoint::{
    CheckpointError, CheckpointInfo, DiffCounts, DiffSummary, RestoreReport,
};
use execkit_runner::ExecError;
use rmcp::handler::server::common::schema_for_output;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt::Write;

/// `session_checkpoint`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckpointArgs {
    /// The session.
    pub session_id: String,
    /// A label for it (at most 200 characters kept).
    #[serde(default)]
    pub label: Option<String>,
}

/// `session_restore` and `session_diff`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckpointRefArgs {
    /// The session.
    pub session_id: String,
    /// The checkpoint (`cp-N`, from session_checkpoint, session_checkpoints or a
    /// session_exec result).
    pub checkpoint_id: String,
}

/// `session_checkpoints`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListArgs {
    /// The session.
    pub session_id: String,
}

/// A checkpoint.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CheckpointRow {
    /// Its id (`cp-N`).
    pub checkpoint_id: String,
    /// Its label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// When it was taken (Unix ms).
    pub created_unix_ms: u64,
    /// Files captured.
    pub files: u64,
    /// Bytes captured.
    pub bytes: u64,
    /// Files that differ from the previous checkpoint.
    pub changed_since_previous: u64,
    /// Why the runner took it by itself (a policy asked, before a command).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub automatic: Option<String>,
}

impl From<CheckpointInfo> for CheckpointRow {
    fn from(i: CheckpointInfo) -> Self {
        CheckpointRow {
            checkpoint_id: i.id,
            label: i.label,
            created_unix_ms: i.created_unix_ms,
            files: i.files,
            bytes: i.bytes,
            changed_since_previous: i.changed_since_previous,
            automatic: i.automatic,
        }
    }
}

impl CheckpointRow {
    fn line(&self) -> String {
        let mut s = format!(
            "{} · {} files · {} · {} changed",
            self.checkpoint_id,
            self.files,
            execkit_runner::ByteSize(self.bytes),
            self.changed_since_previous
        );
        if let Some(l) = &self.label {
            let _ = write!(s, " · \"{l}\"");
        }
        if let Some(a) = &self.automatic {
            let _ = write!(s, " · automatic, {a}");
        }
        s
    }
}

/// `session_checkpoints`' result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ListOutput {
    /// Checkpoints kept, oldest first.
    pub checkpoints: Vec<CheckpointRow>,
}

/// `session_restore`'s result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RestoreOutput {
    /// The checkpoint restored.
    pub checkpoint_id: String,
    /// Files whose content or mode was put back.
    pub written: u64,
    /// Files created again.
    pub created: u64,
    /// Files deleted (created after the checkpoint).
    pub deleted: u64,
    /// Paths touched (`M`/`A`/`D` and the path; at most 200).
    pub paths: Vec<String>,
    /// More paths were touched than listed.
    pub paths_truncated: bool,
}

impl From<RestoreReport> for RestoreOutput {
    fn from(r: RestoreReport) -> Self {
        RestoreOutput {
            checkpoint_id: r.id,
            written: r.written,
            created: r.created,
            deleted: r.deleted,
            paths: r.paths,
            paths_truncated: r.paths_truncated,
        }
    }
}

/// `session_diff`'s result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DiffOutput {
    /// The checkpoint compared with.
    pub checkpoint_id: String,
    /// Files changed since (at most 200 listed).
    pub changed: Vec<String>,
    /// Files added since.
    pub added: Vec<String>,
    /// Files deleted since.
    pub deleted: Vec<String>,
    /// Exact counts.
    pub counts: CountsOutput,
    /// Unified diff of text files (secrets redacted; at most 64 KiB).
    pub diff: String,
    /// The diff was cut.
    pub diff_truncated: bool,
}

/// Exact counts.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CountsOutput {
    /// Changed files.
    pub changed: u64,
    /// Added files.
    pub added: u64,
    /// Deleted files.
    pub deleted: u64,
}

impl From<DiffCounts> for CountsOutput {
    fn from(c: DiffCounts) -> Self {
        CountsOutput {
            changed: c.changed,
            added: c.added,
            deleted: c.deleted,
        }
    }
}

impl From<DiffSummary> for DiffOutput {
    fn from(d: DiffSummary) -> Self {
        DiffOutput {
            checkpoint_id: d.id,
            changed: d.changed,
            added: d.added,
            deleted: d.deleted,
            counts: d.counts.into(),
            diff: d.diff,
            diff_truncated: d.diff_truncated,
        }
    }
}

fn checkpoint_fail(e: CheckpointError) -> ToolResult {
    let kind = match &e {
        CheckpointError::Unknown(_) => ErrorKind::BadArguments,
        CheckpointError::TooLarge { .. } => ErrorKind::Limit,
        CheckpointError::Disabled | CheckpointError::Unsupported(_) => ErrorKind::NotAvailable,
        _ => ErrorKind::Session,
    };
    fail(kind, e.to_string())
}

#[tool_router(router = checkpoint_router, vis = "pub(crate)")]
impl ExecKitServer {
    /// Takes a checkpoint.
    #[tool(
        description = "Snapshot the session's workspace files (not side effects) so they can be restored later; .gitignore'd paths are left out. Returns the checkpoint_id. Destructive commands such as rm -r may take one automatically (the session_exec result names it).",
        annotations(
            title = "Checkpoint workspace",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        ),
        output_schema = schema_for_output::<CheckpointRow>()
    )]
    async fn session_checkpoint(&self, Parameters(a): Parameters<CheckpointArgs>) -> ToolResult {
        let Some(entry) = self.entry(&a.session_id) else {
            return self.unknown_session(&a.session_id);
        };
        let _turn = entry.exec_lock.lock().await;
        match entry.session.checkpoint(a.label.as_deref()).await {
            Ok(i) => {
                let row = CheckpointRow::from(i);
                ok(format!("checkpoint {}", row.line()), &row)
            }
            Err(e) => checkpoint_fail(e),
        }
    }

    /// Restores a checkpoint.
    #[tool(
        description = "Put the session's workspace files back exactly as they were at a checkpoint: changed files are rewritten, deleted ones created again, files created since are deleted (ignored paths are left alone). Authorized by the policies as a write to the workspace.",
        annotations(
            title = "Restore workspace checkpoint",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        ),
        output_schema = schema_for_output::<RestoreOutput>()
    )]
    async fn session_restore(&self, Parameters(a): Parameters<CheckpointRefArgs>) -> ToolResult {
        let Some(entry) = self.entry(&a.session_id) else {
            return self.unknown_session(&a.session_id);
        };
        let _turn = entry.exec_lock.lock().await;
        let cwd = entry.session.cwd().await;
        match entry.session.restore(&a.checkpoint_id).await {
            Ok(r) => {
                let out = RestoreOutput::from(r);
                let mut text = format!(
                    "restored {} · {} written · {} created · {} deleted",
                    out.checkpoint_id, out.written, out.created, out.deleted
                );
                for p in &out.paths {
                    text.push('\n');
                    text.push_str(p);
                }
                ok(text, &out)
            }
            Err(ExecError::Denied(d)) => denied(&d, &cwd, Some("restoring writes the workspace")),
            Err(ExecError::Checkpoint(e)) => checkpoint_fail(e),
            Err(e) => fail(ErrorKind::Session, e.to_string()),
        }
    }

    /// Lists checkpoints.
    #[tool(
        description = "List the session's checkpoints, oldest first: id, label, time, files, bytes, and whether a policy took it before a command.",
        annotations(
            title = "List workspace checkpoints",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        ),
        output_schema = schema_for_output::<ListOutput>()
    )]
    async fn session_checkpoints(&self, Parameters(a): Parameters<ListArgs>) -> ToolResult {
        let Some(entry) = self.entry(&a.session_id) else {
            return self.unknown_session(&a.session_id);
        };
        match entry.session.checkpoints().await {
            Ok(list) => {
                let out = ListOutput {
                    checkpoints: list.into_iter().map(CheckpointRow::from).collect(),
                };
                let mut text = format!("{} checkpoints", out.checkpoints.len());
                for c in &out.checkpoints {
                    text.push('\n');
                    text.push_str(&c.line());
                }
                ok(text, &out)
            }
            Err(e) => checkpoint_fail(e),
        }
    }

    /// Diffs against a checkpoint.
    #[tool(
        description = "What changed in the workspace since a checkpoint: changed, added and deleted paths with exact counts, and a unified diff of text files with secrets redacted.",
        annotations(
            title = "Diff workspace against checkpoint",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        ),
        output_schema = schema_for_output::<DiffOutput>()
    )]
    async fn session_diff(&self, Parameters(a): Parameters<CheckpointRefArgs>) -> ToolResult {
        let Some(entry) = self.entry(&a.session_id) else {
            return self.unknown_session(&a.session_id);
        };
        let _turn = entry.exec_lock.lock().await;
        match entry.session.checkpoint_diff(&a.checkpoint_id).await {
            Ok(d) => {
                let out = DiffOutput::from(d);
                let mut text = format!(
                    "since {} · {} changed · {} added · {} deleted",
                    out.checkpoint_id, out.counts.changed, out.counts.added, out.counts.deleted
                );
                if out.diff_truncated {
                    text.push_str(" · diff cut at 64 KiB");
                }
                if !out.diff.is_empty() {
                    text.push('\n');
                    text.push_str(&out.diff);
                }
                ok(text, &out)
            }
            Err(e) => checkpoint_fail(e),
        }
    }
}
