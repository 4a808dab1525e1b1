//! Operator configuration for a session: everything that widens power lives here and comes
//! from the operator at startup. Per-call [`crate::ExecOptions`] can only narrow it.

use crate::sandbox::SandboxConfig;
use execkit_audit::AuditLog;
use execkit_engine::{Engine, Identity};
use execkit_protect::{CaptureLimits, KnownSecrets, SecretEnvPolicy};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The `PATH` a session starts with unless the operator sets one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Timeouts and output limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Timeout when a call names none.
    pub default_timeout: Duration,
    /// The longest timeout a call may ask for (longer requests are cut to this).
    pub max_timeout: Duration,
    /// How long each step of SIGINT → SIGTERM → SIGKILL waits for the command to end.
    pub grace: Duration,
    /// How much of each stream is kept.
    pub capture: CaptureLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            default_timeout: Duration::from_secs(120),
            max_timeout: Duration::from_secs(3600),
            grace: Duration::from_millis(250),
            capture: CaptureLimits::default(),
        }
    }
}

/// An unprivileged account the shell runs as (only when the server runs as root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Home directory from the password database.
    pub home: PathBuf,
    /// The account name.
    pub name: String,
}

impl RunAs {
    /// Looks an account up by name.
    pub fn lookup(name: &str) -> Result<RunAs, String> {
        let c = std::ffi::CString::new(name).map_err(|_| format!("bad user name `{name}`"))?;
        // SAFETY: getpwnam returns a pointer into static storage or null; we copy out at once.
        unsafe {
            let pw = libc::getpwnam(c.as_ptr());
            if pw.is_null() {
                return Err(format!("no such user `{name}`"));
            }
            let home = std::ffi::CStr::from_ptr((*pw).pw_dir)
                .to_string_lossy()
                .into_owned();
            Ok(RunAs {
                uid: (*pw).pw_uid,
                gid: (*pw).pw_gid,
                home: PathBuf::from(home),
                name: name.to_string(),
            })
        }
    }
}

/// Everything a local session needs, set by the operator.
#[derive(Clone)]
pub struct SessionConfig {
    /// The agent's workspace: the shell starts here and, by default, may write only here.
    pub workspace: PathBuf,
    /// The policy engine every command passes.
    pub engine: Arc<Engine>,
    /// Who the agent is (the Cedar principal).
    pub identity: Identity,
    /// The sandbox.
    pub sandbox: SandboxConfig,
    /// Variables added to the clean environment (they override the defaults).
    pub env: BTreeMap<String, String>,
    /// `HOME` for the shell; defaults to the run-as user's home, else the server's `HOME`.
    pub home: Option<PathBuf>,
    /// Run the shell as this account (the server must be root).
    pub run_as: Option<RunAs>,
    /// Timeouts and output limits.
    pub limits: Limits,
    /// Secret values to redact wherever they appear.
    pub secrets: KnownSecrets,
    /// Which of the session's environment variables count as secrets.
    pub secret_env: SecretEnvPolicy,
    /// Where decisions and commands are recorded.
    pub audit: Option<Arc<Mutex<AuditLog>>>,
    /// The shell binary.
    pub shell: PathBuf,
    /// Where the private tmp dir is created (default: the system temp dir).
    pub tmp_base: Option<PathBuf>,
}

impl SessionConfig {
    /// A configuration with defaults: profile `workspace`, default limits, no audit log.
    pub fn new(workspace: impl Into<PathBuf>, engine: Arc<Engine>) -> SessionConfig {
        SessionConfig {
            workspace: workspace.into(),
            engine,
            identity: Identity::default(),
            sandbox: SandboxConfig::default(),
            env: BTreeMap::new(),
            home: None,
            run_as: None,
            limits: Limits::default(),
            secrets: KnownSecrets::new(),
            secret_env: SecretEnvPolicy::default(),
            audit: None,
            shell: PathBuf::from("/bin/bash"),
            tmp_base: None,
        }
    }
}

impl std::fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionConfig")
            .field("workspace", &self.workspace)
            .field("sandbox", &self.sandbox)
            .field("run_as", &self.run_as)
            .field("limits", &self.limits)
            .field("shell", &self.shell)
            .finish_non_exhaustive()
    }
}
