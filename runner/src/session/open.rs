//! Opening a local session: the private tmp dir, the environment and secrets, the
//! runtime guard's spec, and bash under the sandbox.

use super::state::{Origin, Session, Started};
use crate::config::SessionConfig;
use crate::frame;
use crate::result::SessionError;
use crate::shell::Shell;
use execkit_audit::Who;
use execkit_engine::DecisionEnv;
use execkit_protect::{Protector, Redactor};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub(super) fn make_private_dir(
    p: &std::path::Path,
    owner: Option<(u32, u32)>,
) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new().mode(0o700).create(p)?;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700))?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(p, Some(uid), Some(gid))?;
        if let Some(parent) = p.parent() {
            // The shell's user must be able to reach its tmp dir.
            std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o711))?;
        }
    }
    Ok(())
}

/// What a local shell's runtime decisions need: the policies, the session's decision
/// environment, redaction, the audit sinks and the approver.
pub(super) fn guard_spec(
    config: &SessionConfig,
    id: &str,
    home: &std::path::Path,
    protector: &Protector,
    who: Who,
) -> crate::exec_guard::GuardSpec {
    let mut env = DecisionEnv::local(
        &config.workspace.display().to_string(),
        &home.display().to_string(),
    );
    env.identity = config.identity.clone();
    env.identity.session_id = id.to_string();
    let p = protector.clone();
    crate::exec_guard::GuardSpec {
        engine: config.engine.clone(),
        env,
        shell: config.shell.clone(),
        redact: Arc::new(move |t: &str| p.redact_text(t).text),
        who,
        log: config.audit.clone(),
        observer: config.observer.clone(),
        approver: config.runtime_approver.clone(),
        approval_timeout: Duration::from_secs(300),
        live_paths: true,
    }
}

impl Session {
    /// Starts a local session: creates the private tmp dir, spawns bash under the sandbox
    /// and waits until it is ready.
    pub async fn local(config: SessionConfig) -> Result<Session, SessionError> {
        let s = Session::start_local(config).await?;
        s.opened().await
    }

    /// Records the opening; a session whose opening cannot be recorded is closed again.
    pub(super) async fn opened(self) -> Result<Session, SessionError> {
        match self.announce(execkit_audit::SessionEvent::Opened) {
            Ok(()) => Ok(self),
            Err(why) => {
                self.close().await;
                Err(SessionError::AuditUnavailable(why))
            }
        }
    }

    /// [`Session::local`] before its `opened` record.
    pub(super) async fn start_local(config: SessionConfig) -> Result<Session, SessionError> {
        let workspace = config
            .workspace
            .canonicalize()
            .map_err(|e| SessionError::Workspace {
                path: config.workspace.display().to_string(),
                message: e.to_string(),
            })?;
        if !workspace.is_dir() {
            return Err(SessionError::Workspace {
                path: workspace.display().to_string(),
                message: "is not a directory".into(),
            });
        }
        if let Some(r) = &config.run_as {
            if !nix::unistd::geteuid().is_root() {
                return Err(SessionError::RunAsNeedsRoot(r.name.clone()));
            }
        }
        let mut config = config;
        config.workspace = workspace.clone();
        // Orphans of the shell's processes (`(cmd &)`, daemons) are re-parented to this
        // process instead of init, so they can be killed and reaped with the session.
        // SAFETY: prctl with constant arguments.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        let id = frame::random_hex(8).map_err(SessionError::Spawn)?;
        let base = config.tmp_base.clone().unwrap_or_else(std::env::temp_dir);
        crate::tmpdirs::sweep_stale(&base);
        let dir = base.join(crate::tmpdirs::session_dir_name(&id));
        let tmp = dir.join("tmp");
        make_private_dir(&dir, None).map_err(SessionError::Spawn)?;
        make_private_dir(&tmp, config.run_as.as_ref().map(|r| (r.uid, r.gid)))
            .map_err(SessionError::Spawn)?;
        let home = config
            .home
            .clone()
            .or_else(|| config.run_as.as_ref().map(|r| r.home.clone()))
            .or_else(|| std::env::var_os("HOME").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("/"));
        if crate::shell::closes_home(&config) {
            let owner = config.run_as.as_ref().map(|r| (r.uid, r.gid));
            crate::git_identity::write(&home, &tmp, owner).map_err(SessionError::Spawn)?;
        }
        let mut secrets = config.secrets.clone();
        let env = crate::shell::environment(&config, &home, &tmp);
        secrets.add_env(
            env.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            &config.secret_env,
        );
        let protector = Protector::new(Redactor::new(&secrets), config.limits.capture);
        let who = Who {
            session: id.clone(),
            agent: config.identity.agent.clone(),
            operator: config.identity.operator.clone(),
            transport: "local".into(),
            target: workspace.display().to_string(),
        };
        let spec = guard_spec(&config, &id, &home, &protector, who);
        let spawned = Shell::spawn(&config, &home, &tmp, Some(spec)).await;
        let (shell, enforcement) = match spawned {
            Ok(s) => s,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        let started = Started {
            id,
            origin: Origin::Local,
            protector,
            home,
            dir,
            tmp,
            path: Some(crate::config::DEFAULT_PATH.to_string()),
            shell,
            cwd: workspace.display().to_string(),
            enforcement,
        };
        Ok(Session::assemble(started, config))
    }
}
