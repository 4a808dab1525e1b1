//! [`SessionBuilder`]: the one way to configure a session.
//!
//! Everything here widens or narrows what an agent's shell may do, so it is the operator's
//! to set, once, before the session starts; nothing can change it afterwards (the built
//! [`SessionConfig`] has no public fields). Every setting has a safe default: the embedded
//! `default` policy set, the `workspace` sandbox profile, the current directory as the
//! workspace, default limits, no audit log.

use crate::config::{Limits, RunAs, SessionConfig};
use crate::result::SessionError;
use crate::sandbox::{Profile, SandboxConfig};
use crate::session::Session;
use execkit_audit::AuditLog;
use execkit_engine::{Engine, Identity};
use execkit_protect::{KnownSecrets, SecretEnvPolicy};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

/// Where the session's policies come from.
#[derive(Clone)]
enum Policies {
    /// The embedded `default` set.
    Default,
    /// A policy directory, loaded and validated when the session is built.
    Dir(PathBuf),
    /// An engine the caller already loaded (shared between sessions).
    Engine(Arc<Engine>),
}

/// The embedded `default` set, loaded and validated once per process and shared by every
/// session built without policies of its own.
fn default_engine() -> Result<Arc<Engine>, SessionError> {
    static DEFAULT: OnceLock<Arc<Engine>> = OnceLock::new();
    if let Some(e) = DEFAULT.get() {
        return Ok(e.clone());
    }
    let engine = Arc::new(Engine::default_set().map_err(SessionError::Policy)?);
    Ok(DEFAULT.get_or_init(|| engine).clone())
}

/// Builds a [`SessionConfig`] (or straight away a [`Session`]).
///
/// ```no_run
/// use execkit_runner::{Session, sandbox::Profile};
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let session = Session::builder()
///     .workspace("/srv/repos/app")
///     .policies("/etc/execkit/policies")
///     .profile(Profile::ReadOnly)
///     .local()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
#[must_use = "a builder does nothing until `build` or `local` is called"]
pub struct SessionBuilder {
    workspace: Option<PathBuf>,
    policies: Policies,
    identity: Identity,
    sandbox: SandboxConfig,
    env: BTreeMap<String, String>,
    home: Option<PathBuf>,
    run_as: Option<RunAs>,
    limits: Limits,
    secrets: KnownSecrets,
    secret_env: SecretEnvPolicy,
    audit: Option<Arc<Mutex<AuditLog>>>,
    observer: Option<crate::config::Observer>,
    transcripts: crate::config::Transcripts,
    shell: PathBuf,
    tmp_base: Option<PathBuf>,
    checkpoints: crate::checkpoint::CheckpointConfig,
    exec_decisions: bool,
    runtime_approver: Option<crate::config::RuntimeApprover>,
}

impl Default for SessionBuilder {
    fn default() -> Self {
        SessionBuilder {
            workspace: None,
            policies: Policies::Default,
            identity: Identity::default(),
            sandbox: SandboxConfig::default(),
            env: BTreeMap::new(),
            home: None,
            run_as: None,
            limits: Limits::default(),
            secrets: KnownSecrets::new(),
            secret_env: SecretEnvPolicy::default(),
            audit: None,
            observer: None,
            transcripts: crate::config::Transcripts::default(),
            shell: PathBuf::from("/bin/bash"),
            tmp_base: None,
            checkpoints: crate::checkpoint::CheckpointConfig::default(),
            exec_decisions: true,
            runtime_approver: None,
        }
    }
}

impl SessionBuilder {
    /// A builder with every default (see the module docs).
    pub fn new() -> SessionBuilder {
        SessionBuilder::default()
    }

    /// The agent's workspace: the shell starts here and, under the `workspace` profile, may
    /// write only here. Default: the current directory.
    pub fn workspace(mut self, path: impl Into<PathBuf>) -> Self {
        self.workspace = Some(path.into());
        self
    }

    /// Loads policies from a directory (`*.cedar`, `entities.json`, optional schema) when
    /// the session is built. Default: the embedded `default` set.
    pub fn policies(mut self, dir: impl Into<PathBuf>) -> Self {
        self.policies = Policies::Dir(dir.into());
        self
    }

    /// Uses an engine that is already loaded (share one between many sessions).
    pub fn engine(mut self, engine: Arc<Engine>) -> Self {
        self.policies = Policies::Engine(engine);
        self
    }

    /// The sandbox profile (`workspace` by default).
    pub fn profile(mut self, profile: Profile) -> Self {
        self.sandbox.profile = profile;
        self
    }

    /// The whole sandbox configuration (profile, extra writable paths, unreadable paths,
    /// best effort).
    pub fn sandbox(mut self, sandbox: SandboxConfig) -> Self {
        self.sandbox = sandbox;
        self
    }

    /// Timeouts and output limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Who the agent is (the Cedar principal).
    pub fn identity(mut self, identity: Identity) -> Self {
        self.identity = identity;
        self
    }

    /// Checkpoint settings (on by default, in the session's private dir).
    pub fn checkpoints(mut self, c: crate::checkpoint::CheckpointConfig) -> Self {
        self.checkpoints = c;
        self
    }

    /// Records every decision and command in this audit log.
    pub fn audit(mut self, log: Arc<Mutex<AuditLog>>) -> Self {
        self.audit = Some(log);
        self
    }

    /// Calls `observer` with every audit event as it is recorded (see [`crate::Observer`]).
    pub fn observer(mut self, observer: crate::config::Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Keeps each finished command's output for viewers (see [`crate::Transcripts`]).
    pub fn transcripts(mut self, transcripts: crate::config::Transcripts) -> Self {
        self.transcripts = transcripts;
        self
    }

    /// Secret values to redact wherever they appear.
    pub fn secrets(mut self, secrets: KnownSecrets) -> Self {
        self.secrets = secrets;
        self
    }

    /// Which of the session's environment variables count as secrets.
    pub fn secret_env(mut self, policy: SecretEnvPolicy) -> Self {
        self.secret_env = policy;
        self
    }

    /// Adds a variable to the shell's clean environment (overriding a default).
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(name.into(), value.into());
        self
    }

    /// `HOME` for the shell. Default: the run-as user's home, else the server's `HOME`.
    pub fn home(mut self, home: impl Into<PathBuf>) -> Self {
        self.home = Some(home.into());
        self
    }

    /// Runs the shell as this account (the server must be root).
    pub fn run_as(mut self, user: RunAs) -> Self {
        self.run_as = Some(user);
        self
    }

    /// The shell binary (default `/bin/bash`).
    pub fn shell(mut self, shell: impl Into<PathBuf>) -> Self {
        self.shell = shell.into();
        self
    }

    /// Decide every program the session starts, as it starts, by the same policies (on by
    /// default where the kernel has seccomp user notification; the enforcement report
    /// says whether it applies).
    pub fn exec_decisions(mut self, on: bool) -> Self {
        self.exec_decisions = on;
        self
    }

    /// Who answers when an `@ask` policy stops a program at run time (the program waits);
    /// without one such a program is refused.
    pub fn runtime_approver(mut self, approver: crate::config::RuntimeApprover) -> Self {
        self.runtime_approver = Some(approver);
        self
    }

    /// Where the private tmp dir is created (default: the system temp dir).
    pub fn tmp_base(mut self, dir: impl Into<PathBuf>) -> Self {
        self.tmp_base = Some(dir.into());
        self
    }

    /// Loads the policies (if they come from a directory or the embedded set) and returns
    /// the finished configuration.
    pub fn build(self) -> Result<SessionConfig, SessionError> {
        let engine = match self.policies {
            Policies::Default => default_engine()?,
            Policies::Dir(dir) => Arc::new(Engine::from_dir(&dir).map_err(SessionError::Policy)?),
            Policies::Engine(e) => e,
        };
        let workspace = match self.workspace {
            Some(w) => w,
            None => std::env::current_dir().map_err(|e| SessionError::Workspace {
                path: ".".into(),
                message: e.to_string(),
            })?,
        };
        Ok(SessionConfig {
            workspace,
            engine,
            identity: self.identity,
            sandbox: self.sandbox,
            env: self.env,
            home: self.home,
            run_as: self.run_as,
            limits: self.limits,
            secrets: self.secrets,
            secret_env: self.secret_env,
            audit: self.audit,
            observer: self.observer,
            transcripts: self.transcripts,
            shell: self.shell,
            tmp_base: self.tmp_base,
            checkpoints: self.checkpoints,
            exec_decisions: self.exec_decisions,
            runtime_approver: self.runtime_approver,
        })
    }

    /// Builds the configuration and starts a local session with it.
    pub async fn local(self) -> Result<Session, SessionError> {
        Session::local(self.build()?).await
    }
}

impl Session {
    /// A builder for a session: workspace, policies, profile, limits, identity, audit log
    /// and secrets, each with a safe default.
    pub fn builder() -> SessionBuilder {
        SessionBuilder::new()
    }
}
