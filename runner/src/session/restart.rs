//! A new shell for a session whose shell ended: the old cwd and exported variables are
//! restored where the policies allow, and a lost SSH connection is dialled again.

use super::open::guard_spec;
use super::open_remote::{start_remote_shell, RemoteGuardInfo};
use super::state::{current, Origin, Redial, Session};
use crate::frame;
use crate::remote::Control;
use crate::result::SessionError;
use crate::shell::Shell;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// What [`Session::restart`] brought back from the shell before.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RestartReport {
    /// The new shell's working directory.
    pub cwd: String,
    /// What was restored: `cwd` and the names of exported variables.
    pub restored: Vec<String>,
    /// What the policies (or the shell) refused to restore, with why.
    pub refused: Vec<String>,
}

impl Session {
    /// Remembers what the shell last saved of its exported variables.
    pub(super) async fn keep_exports(&self, shell: &Shell) {
        if let Some(text) = shell.saved_exports().await {
            *self.saved_exports.lock().unwrap_or_else(|e| e.into_inner()) = Some(text);
        }
    }

    /// Starts a new shell in place of the old one (ended or not): background processes
    /// are stopped, shell variables and functions are gone, and the working directory and
    /// exported variables the old shell had are restored — by one command the policies
    /// decide like any other (what they refuse is listed in the report). Over SSH a lost
    /// connection is made again, with the same host-key check.
    pub async fn restart(&self) -> Result<RestartReport, SessionError> {
        self.processes.kill_all("session restarted").await;
        let mut st = self.state.lock().await;
        let cwd_before = st.cwd.clone();
        if let Some(mut sh) = st.shell.take() {
            // A live shell saves its exports as it exits (its EXIT trap).
            if sh.exports.is_some() && sh.write(b"builtin exit 0\n").await.is_ok() {
                let _ = tokio::time::timeout(Duration::from_secs(2), sh.wait_exit()).await;
            }
            self.keep_exports(&sh).await;
            sh.kill_all();
        }
        let exports_before = self
            .saved_exports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        match &self.origin {
            Origin::Local => {
                let (shell, enforcement) = Shell::spawn(
                    &self.config,
                    &self.home,
                    &self.tmp,
                    Some(guard_spec(
                        &self.config,
                        &self.id,
                        &self.home,
                        &self.protector,
                        self.who(),
                    )),
                )
                .await?;
                st.shell = Some(shell);
                st.enforcement = enforcement;
            }
            Origin::Remote {
                control,
                redial,
                dialect,
                ..
            } => {
                let mut now = current(control);
                if let (true, Some(Redial::Ssh(target, settings))) =
                    (now.is_lost(), redial.as_deref())
                {
                    // The connection is gone: connect again, with the same host-key check.
                    now.close().await;
                    let conn = crate::ssh::SshConnection::connect(settings, target)
                        .await
                        .map_err(|e| SessionError::Transport(Box::new(e)))?;
                    now = Control::Ssh(Arc::new(conn));
                    *control.lock().unwrap_or_else(|e| e.into_inner()) = now.clone();
                }
                let (sandbox, default_workspace) = match &self.origin {
                    Origin::Remote {
                        sandbox,
                        default_workspace,
                        ..
                    } => (sandbox.as_ref().clone(), *default_workspace),
                    Origin::Local => (crate::remote_sandbox::RemoteSandbox::off(), "."),
                };
                let (shell, _, _, _, enforcement, _) = start_remote_shell(
                    &now,
                    &self.config,
                    &sandbox,
                    default_workspace,
                    *dialect,
                    RemoteGuardInfo::of(&self.origin, &self.id, &self.config),
                )
                .await?;
                st.shell = Some(shell);
                st.enforcement = enforcement;
            }
        }
        st.gone = None;
        st.closed = false;
        let ws = self.config.workspace.display().to_string();
        self.set_cwd(&mut st, ws);
        *self.last_path.lock().unwrap_or_else(|e| e.into_inner()) = match self.origin {
            Origin::Local => Some(crate::config::DEFAULT_PATH.to_string()),
            Origin::Remote { .. } => None,
        };
        // A new shell knows none of the old one's aliases and functions.
        *self.known.lock().unwrap_or_else(|e| e.into_inner()) = Default::default();
        let exports_now = match st.shell.as_ref() {
            Some(sh) => sh.saved_exports().await,
            None => None,
        };
        drop(st);
        Ok(self
            .bring_back(cwd_before, exports_before, exports_now)
            .await)
    }

    /// Brings the cwd and the exported variables of the shell before back, in one
    /// command, or piece by piece when that one is refused.
    pub(super) async fn bring_back(
        &self,
        cwd: String,
        before: Option<String>,
        now: Option<String>,
    ) -> RestartReport {
        let mut parts: Vec<(String, String)> = Vec::new();
        if cwd != self.cwd().await {
            parts.push(("cwd".into(), format!("cd -- {}", frame::single_quote(&cwd))));
        }
        let (before, now) = (
            crate::exports::parse(before.as_deref().unwrap_or("")),
            crate::exports::parse(now.as_deref().unwrap_or("")),
        );
        for (k, v) in crate::exports::changed(&before, &now) {
            parts.push((k.clone(), format!("export {k}={}", frame::ansi_c_quote(v))));
        }
        let mut report = RestartReport::default();
        if !parts.is_empty() {
            let all: Vec<&str> = parts.iter().map(|(_, c)| c.as_str()).collect();
            match self.exec(&all.join(" && "), &Default::default()).await {
                Ok(r) if r.exit_code == Some(0) => {
                    report.restored = parts.iter().map(|(w, _)| w.clone()).collect();
                }
                _ => {
                    for (what, command) in &parts {
                        match self.exec(command, &Default::default()).await {
                            Ok(r) if r.exit_code == Some(0) => report.restored.push(what.clone()),
                            Ok(r) => report.refused.push(format!(
                                "{what}: exit status {:?}: {}",
                                r.exit_code,
                                r.stderr.trim()
                            )),
                            Err(e) => report.refused.push(format!("{what}: {e}")),
                        }
                    }
                }
            }
        }
        report.cwd = self.cwd().await;
        report
    }
}
