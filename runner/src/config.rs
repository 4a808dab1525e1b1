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

/// Timeouts and output limits. Start from [`Limits::default`] and change what you need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Timeout when a call names none.
    pub default_timeout: Duration,
    /// The longest timeout a call may ask for (longer requests are cut to this).
    pub max_timeout: Duration,
    /// How long each step of SIGINT → SIGTERM → SIGKILL waits for the command to end.
    pub grace: Duration,
    /// How much of each stream is kept.
    pub capture: CaptureLimits,
    /// What the session's processes may use together.
    pub resources: Resources,
    /// Background processes (`Session::spawn`): caps, lifetime, buffers.
    pub processes: crate::process::ProcessLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            default_timeout: Duration::from_secs(120),
            max_timeout: Duration::from_secs(3600),
            grace: Duration::from_millis(250),
            capture: CaptureLimits::default(),
            resources: Resources::default(),
            processes: crate::process::ProcessLimits::default(),
        }
    }
}

/// What a session's processes may use, enforced by the kernel: a cgroup for the whole
/// session tree where the host offers one (processes, memory, CPU), rlimits per process
/// (open files, file size, and the fallbacks where there is no cgroup). `None` is no limit.
/// The session's enforcement report says what is enforced and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Resources {
    /// Processes (and threads) alive at once in the session.
    pub processes: Option<u64>,
    /// Memory of the whole session (cgroup), or per process (`RLIMIT_AS`) without one.
    pub memory_bytes: Option<u64>,
    /// CPU time per wall time, in percent of one CPU (`200` = two CPUs' worth).
    pub cpu_percent: Option<u32>,
    /// Open descriptors per process (`RLIMIT_NOFILE`).
    pub open_files: Option<u64>,
    /// Size of any one file a process writes (`RLIMIT_FSIZE`; the writer gets `SIGXFSZ`).
    pub file_bytes: Option<u64>,
    /// Disk the workspace may use, measured after each command; above it, only commands
    /// that look at or free space run. Off by default (the walk costs time on big trees).
    pub workspace_bytes: Option<u64>,
}

impl Default for Resources {
    /// 1024 processes, 4 GiB of memory, all CPUs, 4096 open files, 4 GiB per file.
    fn default() -> Self {
        Resources {
            processes: Some(1024),
            memory_bytes: Some(4 << 30),
            cpu_percent: None,
            open_files: Some(4096),
            file_bytes: Some(4 << 30),
            workspace_bytes: None,
        }
    }
}

impl Resources {
    /// No limits at all.
    pub fn unlimited() -> Resources {
        Resources {
            processes: None,
            memory_bytes: None,
            cpu_percent: None,
            open_files: None,
            file_bytes: None,
            workspace_bytes: None,
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
    /// Looks an account up by name in the password database (`getpwnam_r`, so it is safe
    /// to call from several threads at once).
    ///
    /// ```
    /// let root = execkit_runner::RunAs::lookup("root").unwrap();
    /// assert_eq!(root.uid, 0);
    /// assert!(execkit_runner::RunAs::lookup("no-such-user-here").is_err());
    /// ```
    pub fn lookup(name: &str) -> Result<RunAs, RunAsError> {
        let user = nix::unistd::User::from_name(name)
            .map_err(|e| RunAsError::Lookup {
                name: name.to_string(),
                source: e,
            })?
            .ok_or_else(|| RunAsError::NoSuchUser(name.to_string()))?;
        Ok(RunAs {
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
            home: user.dir,
            name: name.to_string(),
        })
    }
}

/// Why a run-as account cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunAsError {
    /// No account has this name.
    #[error("no such user `{0}`")]
    NoSuchUser(String),
    /// The password database could not be read (or the name is not a valid C string).
    #[error("cannot look up user `{name}`: {source}")]
    Lookup {
        /// The name asked for.
        name: String,
        /// The OS error.
        source: nix::Error,
    },
}

/// Everything a local session needs, set by the operator through
/// [`SessionBuilder`](crate::SessionBuilder). The fields are private: a built configuration
/// cannot be widened afterwards, only read.
#[derive(Clone)]
pub struct SessionConfig {
    pub(crate) workspace: PathBuf,
    pub(crate) engine: Arc<Engine>,
    pub(crate) identity: Identity,
    pub(crate) sandbox: SandboxConfig,
    pub(crate) env: BTreeMap<String, String>,
    pub(crate) home: Option<PathBuf>,
    pub(crate) run_as: Option<RunAs>,
    pub(crate) limits: Limits,
    pub(crate) secrets: KnownSecrets,
    pub(crate) secret_env: SecretEnvPolicy,
    pub(crate) audit: Option<Arc<Mutex<AuditLog>>>,
    pub(crate) observer: Option<Observer>,
    pub(crate) transcripts: Transcripts,
    pub(crate) shell: PathBuf,
    pub(crate) tmp_base: Option<PathBuf>,
    pub(crate) checkpoints: crate::checkpoint::CheckpointConfig,
    /// Decide every program the session starts as it starts (where the kernel can).
    pub(crate) exec_decisions: bool,
    /// Asks a human about a program an `@ask` policy stops at run time.
    pub(crate) runtime_approver: Option<RuntimeApprover>,
}

/// What of each finished command's output is kept for viewers (a `transcript` event):
/// the result as the agent got it (already redacted and bounded), cut to `max_bytes`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Transcripts {
    /// Bytes kept per command (stdout and stderr together); 0 keeps none.
    pub max_bytes: usize,
    /// Also write them to the audit log (otherwise only observers see them).
    pub in_audit: bool,
}

/// A program that needs a human's approval at run time, as the approver is shown it.
#[derive(Debug, Clone)]
pub struct RuntimeAsk {
    /// The session.
    pub session: String,
    /// The program and its arguments, quoted, redacted.
    pub command: String,
    /// The session command it runs under, redacted.
    pub under: String,
    /// Where it runs.
    pub cwd: String,
    /// Its parents, nearest first.
    pub parents: Vec<String>,
    /// The decision (its blocking facts say what asks).
    pub decision: execkit_engine::Decision,
}

/// Asks a human about a program that waits at `execve`; the answer is who approved it
/// (`Some(name)`) or a refusal (`None`). The receiver is waited on up to the decider's
/// approval time-out.
pub type RuntimeApprover =
    Arc<dyn Fn(RuntimeAsk) -> std::sync::mpsc::Receiver<Option<String>> + Send + Sync>;

/// Sees every audit event a session records (after redaction), as it is recorded, whether
/// or not an audit log is configured: the feed of live viewers and notifications. It runs
/// on the session's task and must not block.
pub type Observer = Arc<dyn Fn(&execkit_audit::AuditEvent) + Send + Sync>;

impl SessionConfig {
    /// The workspace as given (the session canonicalizes it when it starts).
    pub fn workspace(&self) -> &std::path::Path {
        &self.workspace
    }

    /// The policy engine every command passes.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The sandbox settings.
    pub fn sandbox(&self) -> &SandboxConfig {
        &self.sandbox
    }

    /// Timeouts and output limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The agent identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
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
