//! Workspace checkpoints: taken before a command that writes (when the operator asks for
//! it) or on request, listed, restored and compared, locally or on the remote side.

use super::state::{current, Origin, Session, State};
use crate::frame;
use crate::result::{Denial, ExecError};
use crate::shell::Shell;
use execkit_audit::AuditEvent;
use execkit_engine::{Decision, Verdict};
use std::sync::Arc;

/// A checkpoint failure where an [`ExecError`] is expected.
pub(super) fn checkpoint_error(e: crate::checkpoint::CheckpointError) -> ExecError {
    ExecError::Checkpoint(e)
}

impl Session {
    /// Takes a checkpoint of the workspace files (see [`crate::checkpoint`]). No command
    /// runs while it is taken.
    pub async fn checkpoint(
        &self,
        label: Option<&str>,
    ) -> Result<crate::checkpoint::CheckpointInfo, crate::checkpoint::CheckpointError> {
        let st = self.state.lock().await;
        self.checkpoint_locked(&st, label, None).await
    }

    /// The remote store, opened on first use in the session's private directory there.
    pub(super) async fn remote_store(
        &self,
        st: &State,
    ) -> Result<
        tokio::sync::MutexGuard<'_, Option<crate::checkpoint::RemoteStore>>,
        crate::checkpoint::CheckpointError,
    > {
        use crate::checkpoint::{CheckpointError, RemoteStore};
        let mut g = self.remote_checkpoints.lock().await;
        if g.is_none() {
            let Origin::Remote { control, .. } = &self.origin else {
                return Err(CheckpointError::Unsupported("not a remote session".into()));
            };
            let dir = st
                .shell
                .as_ref()
                .and_then(Shell::remote_tmp)
                .ok_or_else(|| {
                    CheckpointError::Unsupported(
                        "the target has no private directory for a checkpoint store".into(),
                    )
                })?;
            let ws = self.config.workspace.display().to_string();
            *g = Some(
                RemoteStore::open(current(control), &dir, &ws, &self.config.checkpoints).await?,
            );
        }
        Ok(g)
    }

    /// The store, opened on first use (local sessions only).
    pub(super) fn checkpoint_store(
        &self,
    ) -> Result<
        Arc<std::sync::Mutex<Option<crate::checkpoint::Store>>>,
        crate::checkpoint::CheckpointError,
    > {
        use crate::checkpoint::{CheckpointError, Store};
        let cfg = &self.config.checkpoints;
        if !cfg.enabled {
            return Err(CheckpointError::Disabled);
        }
        let mut g = self.checkpoints.lock().unwrap_or_else(|p| p.into_inner());
        if g.is_none() {
            let dir = match &cfg.store_dir {
                Some(d) => d.join(format!("execkit-checkpoints-{}", self.id)),
                None => self.dir.join("checkpoints"),
            };
            *g = Some(Store::open(&dir, &self.config.workspace, cfg)?);
        }
        drop(g);
        Ok(self.checkpoints.clone())
    }

    pub(super) async fn checkpoint_locked(
        &self,
        st: &State,
        label: Option<&str>,
        automatic: Option<&str>,
    ) -> Result<crate::checkpoint::CheckpointInfo, crate::checkpoint::CheckpointError> {
        use crate::checkpoint::CheckpointError;
        if !self.config.checkpoints.enabled {
            return Err(CheckpointError::Disabled);
        }
        let info = if let Origin::Remote { .. } = self.origin {
            let mut g = self.remote_store(st).await?;
            match g.as_mut() {
                Some(s) => s.checkpoint(label, automatic).await?,
                None => return Err(CheckpointError::Disabled),
            }
        } else {
            let store = self.checkpoint_store()?;
            let (label, automatic) = (label.map(str::to_string), automatic.map(str::to_string));
            tokio::task::spawn_blocking(move || {
                let mut g = store.lock().unwrap_or_else(|p| p.into_inner());
                match g.as_mut() {
                    Some(s) => s.checkpoint(label.as_deref(), automatic.as_deref()),
                    None => Err(CheckpointError::Disabled),
                }
            })
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))??
        };
        let _ = self.audit(AuditEvent::Checkpoint(execkit_audit::CheckpointRecord {
            who: self.who(),
            checkpoint: info.id.clone(),
            event: "taken".into(),
            files: info.files,
            bytes: info.bytes,
            deleted: 0,
            automatic: info.automatic.as_deref().map(|a| self.redact(a)),
        }));
        Ok(info)
    }

    /// The checkpoint a policy asks for before `command` runs (`@checkpoint` on a permit
    /// that allowed it): taken now, or the command is refused when it cannot be. Sessions
    /// without checkpoints (turned off by the operator, remote transports) run it without.
    pub(super) async fn checkpoint_before(
        &self,
        st: &State,
        command: &str,
        decision: &Decision,
    ) -> Result<Option<String>, ExecError> {
        let asked = decision.checkpoint_policies();
        if asked.is_empty() || !self.config.checkpoints.enabled {
            return Ok(None);
        }
        let why = format!("before: {}", command.chars().take(160).collect::<String>());
        match self.checkpoint_locked(st, None, Some(&why)).await {
            Ok(info) => Ok(Some(info.id)),
            Err(e) => Err(ExecError::Rejected(format!(
                "the policies ({}) ask for a checkpoint before this command, and it could not be taken: {e}",
                asked.join(", ")
            ))),
        }
    }

    /// The checkpoints kept, oldest first.
    pub async fn checkpoints(
        &self,
    ) -> Result<Vec<crate::checkpoint::CheckpointInfo>, crate::checkpoint::CheckpointError> {
        if !self.config.checkpoints.enabled {
            return Err(crate::checkpoint::CheckpointError::Disabled);
        }
        if let Origin::Remote { .. } = self.origin {
            let st = self.state.lock().await;
            let g = self.remote_store(&st).await?;
            return match g.as_ref() {
                Some(s) => s.list().await,
                None => Ok(Vec::new()),
            };
        }
        let store = self.checkpoint_store()?;
        let g = store.lock().unwrap_or_else(|p| p.into_inner());
        Ok(g.as_ref().map(|s| s.list()).unwrap_or_default())
    }

    /// Puts the workspace files back as they were at checkpoint `id`. Authorized like a
    /// write into the workspace (the policies decide a write of `WORKSPACE/.execkit-restore`
    /// and the decision is audited); no command runs meanwhile.
    pub async fn restore(&self, id: &str) -> Result<crate::checkpoint::RestoreReport, ExecError> {
        use crate::checkpoint::CheckpointError;
        let st = self.state.lock().await;
        let probe = format!(
            ": > {}",
            frame::ansi_c_quote(&format!(
                "{}/.execkit-restore",
                self.config.workspace.display()
            ))
        );
        let env = self.decision_env(&st.cwd, None);
        let decision = self.config.engine.decide(&probe, &env);
        let redact = |t: &str| self.protector.redact_text(t).text;
        let label = format!(
            "checkpoint restore {}",
            id.chars().take(64).collect::<String>()
        );
        let record = crate::audit_record::decision_record(
            self.who(),
            crate::audit_record::Decided::Labelled {
                label: &label,
                text: &probe,
            },
            &env,
            &decision,
            &redact,
        );
        self.audit(AuditEvent::Decision(record))
            .map_err(ExecError::AuditUnavailable)?;
        if decision.verdict != Verdict::Allow {
            return Err(ExecError::Denied(Box::new(Denial::from_decision(decision))));
        }
        if !self.config.checkpoints.enabled {
            return Err(checkpoint_error(CheckpointError::Disabled));
        }
        let report = if let Origin::Remote { .. } = self.origin {
            let mut g = self.remote_store(&st).await.map_err(checkpoint_error)?;
            match g.as_mut() {
                Some(s) => s.restore(id).await.map_err(checkpoint_error)?,
                None => return Err(checkpoint_error(CheckpointError::Disabled)),
            }
        } else {
            let store = self.checkpoint_store().map_err(checkpoint_error)?;
            let id_owned = id.to_string();
            tokio::task::spawn_blocking(move || {
                let mut g = store.lock().unwrap_or_else(|p| p.into_inner());
                match g.as_mut() {
                    Some(s) => s.restore(&id_owned),
                    None => Err(CheckpointError::Disabled),
                }
            })
            .await
            .map_err(|e| ExecError::Io(std::io::Error::other(e.to_string())))?
            .map_err(checkpoint_error)?
        };
        drop(st);
        let _ = self.audit(AuditEvent::Checkpoint(execkit_audit::CheckpointRecord {
            who: self.who(),
            checkpoint: report.id.clone(),
            event: "restored".into(),
            files: report.written + report.created,
            bytes: 0,
            deleted: report.deleted,
            automatic: None,
        }));
        Ok(report)
    }

    /// What changed in the workspace since checkpoint `id` (paths, counts and a unified
    /// diff of text files, redacted like command output).
    pub async fn checkpoint_diff(
        &self,
        id: &str,
    ) -> Result<crate::checkpoint::DiffSummary, crate::checkpoint::CheckpointError> {
        let st = self.state.lock().await;
        if !self.config.checkpoints.enabled {
            return Err(crate::checkpoint::CheckpointError::Disabled);
        }
        if let Origin::Remote { .. } = self.origin {
            let mut g = self.remote_store(&st).await?;
            let mut d = match g.as_mut() {
                Some(s) => s.diff(id).await?,
                None => return Err(crate::checkpoint::CheckpointError::Disabled),
            };
            d.diff = self.redact(&d.diff);
            return Ok(d);
        }
        let store = self.checkpoint_store()?;
        let protector = self.protector.clone();
        let id = id.to_string();
        tokio::task::spawn_blocking(move || {
            let mut g = store.lock().unwrap_or_else(|p| p.into_inner());
            let redact = |t: &str| protector.redact_text(t).text;
            match g.as_mut() {
                Some(s) => s.diff(&id, &redact),
                None => Err(crate::checkpoint::CheckpointError::Disabled),
            }
        })
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?
    }
}
