//! Turning the operator's [`OperatorConfig`] into what sessions are made from: the policy
//! engine, the audit log, the known secrets, the allowed workspaces and a
//! [`SessionConfig`] template. Built once at startup; nothing here changes afterwards.

use crate::config::OperatorConfig;
use execkit_audit::{AuditLog, AuditOptions};
use execkit_engine::policy_dir;
use execkit_engine::{Engine, Identity};
use execkit_protect::{CaptureLimits, KnownSecrets};
use execkit_runner::sandbox::SandboxConfig;
use execkit_runner::{Limits, ProcessLimits, Resources, RunAs, Session, SessionBuilder};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Everything sessions are made from.
pub struct Operator {
    /// The configuration as loaded.
    pub config: OperatorConfig,
    /// The policy engine (shared by all sessions).
    pub engine: Arc<Engine>,
    /// Human name of the policy set (`embedded default set`, a directory).
    pub policy_set: String,
    /// The audit log, if configured.
    pub audit: Option<Arc<Mutex<AuditLog>>>,
    /// Canonical default workspace.
    pub default_workspace: PathBuf,
    /// Canonical allowed workspace roots.
    pub allowed_workspaces: Vec<PathBuf>,
    secrets: KnownSecrets,
    run_as: Option<RunAs>,
    /// Every session's audit events, for live notifications and the history resource.
    pub events: Arc<crate::server::events::EventHub>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The configuration.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The policies.
    #[error("policies: {0}")]
    Policies(String),
    /// A path.
    #[error("{what} {path}: {message}")]
    Path {
        /// What the path is for.
        what: &'static str,
        /// The path.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The audit log.
    #[error("audit log: {0}")]
    Audit(String),
    /// `run_as`.
    #[error("sandbox.run_as: {0}")]
    RunAs(String),
}

/// The engine a configuration gives: its policies (`dir`, else the embedded `set`, else
/// `default`; `entities` replacing the set's), or the policy directory `policies` when
/// given, under the configuration's script limits. The server and `execkit policy check
/// --config` decide with the same engine. Returns it with the policies' name.
pub fn engine_of(
    config: &OperatorConfig,
    policies: Option<&Path>,
) -> Result<(Engine, String), StartupError> {
    let mut src = match (
        policies.or(config.policy.dir.as_deref()),
        &config.policy.set,
    ) {
        (Some(dir), _) => policy_dir::from_dir(dir),
        (None, Some(set)) => policy_dir::embedded(set),
        (None, None) => policy_dir::embedded("default"),
    }
    .map_err(|e| StartupError::Policies(e.to_string()))?;
    if let Some(e) = &config.policy.entities {
        src.bundle.entities = std::fs::read_to_string(e).map_err(|err| StartupError::Path {
            what: "policy.entities",
            path: e.display().to_string(),
            message: err.to_string(),
        })?;
    }
    let mut engine = Engine::new(&src.bundle)
        .map_err(|e| StartupError::Policies(format!("{}: {e}", src.name)))?;
    engine.set_script_limits(config.limits.script_limits());
    Ok((engine, src.name))
}

fn canonical(what: &'static str, p: &Path) -> Result<PathBuf, StartupError> {
    let c = p.canonicalize().map_err(|e| StartupError::Path {
        what,
        path: p.display().to_string(),
        message: e.to_string(),
    })?;
    if !c.is_dir() {
        return Err(StartupError::Path {
            what,
            path: p.display().to_string(),
            message: "is not a directory".into(),
        });
    }
    Ok(c)
}

impl Operator {
    /// Builds the runtime from a configuration: loads and validates the policies, opens
    /// the audit log, reads secret sources and resolves workspaces.
    pub fn new(config: OperatorConfig) -> Result<Operator, StartupError> {
        let (engine, policy_set) = engine_of(&config, None)?;
        let default_workspace = match &config.workspaces.default {
            Some(w) => canonical("workspaces.default", w)?,
            None => {
                let cwd = std::env::current_dir().map_err(|e| StartupError::Path {
                    what: "current directory",
                    path: ".".into(),
                    message: e.to_string(),
                })?;
                canonical("current directory", &cwd)?
            }
        };
        let allowed_workspaces = if config.workspaces.allowed.is_empty() {
            vec![default_workspace.clone()]
        } else {
            config
                .workspaces
                .allowed
                .iter()
                .map(|p| canonical("workspaces.allowed", p))
                .collect::<Result<_, _>>()?
        };
        if !allowed_workspaces
            .iter()
            .any(|root| default_workspace.starts_with(root))
        {
            return Err(StartupError::Path {
                what: "workspaces.default",
                path: default_workspace.display().to_string(),
                message: "is not inside any of workspaces.allowed".into(),
            });
        }
        let audit = match &config.audit.path {
            Some(p) => {
                let mut log = AuditLog::open(p, AuditOptions::default())
                    .map_err(|e| StartupError::Audit(e.to_string()))?;
                if let Some(s) = &config.audit.syslog {
                    let options = s
                        .options()
                        .map_err(|e| StartupError::Audit(e.to_string()))?;
                    log.forward_to(
                        execkit_audit::Syslog::connect(options)
                            .map_err(|e| StartupError::Audit(e.to_string()))?,
                    );
                }
                Some(Arc::new(Mutex::new(log)))
            }
            None => None,
        };
        let mut secrets = KnownSecrets::new();
        for name in &config.secrets.env {
            if let Ok(v) = std::env::var(name) {
                secrets.add(&v);
            }
        }
        for f in &config.secrets.files {
            let text = std::fs::read_to_string(f).map_err(|e| StartupError::Path {
                what: "secrets.files",
                path: f.display().to_string(),
                message: e.to_string(),
            })?;
            secrets.add_file_contents(&text);
        }
        let run_as = match &config.sandbox.run_as {
            Some(u) => Some(RunAs::lookup(u).map_err(|e| StartupError::RunAs(e.to_string()))?),
            None => None,
        };
        Ok(Operator {
            engine: Arc::new(engine),
            policy_set,
            audit,
            default_workspace,
            allowed_workspaces,
            secrets,
            run_as,
            config,
            events: Arc::default(),
        })
    }

    /// What sessions may not read: the operator's `deny_read`, plus the server's own files
    /// (its config, its audit log, the secret files it redacts), which no session needs and
    /// which would hand an agent the very values redaction hides.
    pub fn deny_read(&self) -> Vec<PathBuf> {
        let mut deny = self.config.sandbox.deny_read.clone();
        let own = self
            .config
            .secrets
            .files
            .iter()
            .chain(self.config.audit.path.iter())
            .chain(self.config.source.iter());
        for p in own {
            if let Some(abs) = absolute(p) {
                if !deny.iter().any(|d| abs.starts_with(d)) {
                    deny.push(abs);
                }
            }
        }
        deny
    }

    /// Resolves the workspace an agent asked for: `None` is the default; anything else
    /// must exist and lie inside an allowed root (after resolving `..` and symlinks).
    pub fn workspace(&self, requested: Option<&str>) -> Result<PathBuf, WorkspaceError> {
        let Some(req) = requested else {
            return Ok(self.default_workspace.clone());
        };
        let p = Path::new(req);
        let p = if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.default_workspace.join(p)
        };
        let c = p
            .canonicalize()
            .map_err(|source| WorkspaceError::Unresolvable {
                requested: req.to_string(),
                source,
            })?;
        if !c.is_dir() {
            return Err(WorkspaceError::NotADirectory(req.to_string()));
        }
        if !self
            .allowed_workspaces
            .iter()
            .any(|root| c.starts_with(root))
        {
            let roots: Vec<String> = self
                .allowed_workspaces
                .iter()
                .map(|r| r.display().to_string())
                .collect();
            return Err(WorkspaceError::OutsideAllowed {
                path: c,
                roots: roots.join(", "),
            });
        }
        Ok(c)
    }

    /// The identity sessions run with.
    pub fn identity(&self) -> Identity {
        self.config.identity.identity()
    }

    /// The operator's checkpoint settings for the runner.
    fn checkpoint_config(&self) -> execkit_runner::checkpoint::CheckpointConfig {
        let c = &self.config.checkpoints;
        let mut out = execkit_runner::checkpoint::CheckpointConfig::default();
        out.enabled = c.enabled;
        out.store_dir = c.store_dir.clone();
        out.max_bytes = c.max_bytes;
        out.excludes = c.exclude.clone();
        out.honour_gitignore = c.gitignore;
        out.keep = c.keep;
        out
    }

    /// A session configuration for `workspace`, with every operator setting applied.
    pub fn session_config(&self, workspace: PathBuf) -> SessionBuilder {
        let s = &self.config.sandbox;
        let l = &self.config.limits;
        let mut limits = Limits::default();
        limits.default_timeout = Duration::from_millis(l.default_timeout_ms);
        limits.max_timeout = Duration::from_millis(l.max_timeout_ms);
        limits.capture = CaptureLimits {
            head_bytes: l.output_head_bytes,
            tail_bytes: l.output_tail_bytes,
            ..CaptureLimits::default()
        };
        let some = |v: u64| (v > 0).then_some(v);
        let mut res = Resources::unlimited();
        res.processes = some(l.max_processes);
        res.memory_bytes = some(l.max_memory_bytes);
        res.cpu_percent = (l.cpu_percent > 0).then_some(l.cpu_percent);
        res.open_files = some(l.max_open_files);
        res.file_bytes = some(l.max_file_bytes);
        res.workspace_bytes = some(l.max_workspace_bytes);
        limits.resources = res;
        let mut pl = ProcessLimits::default();
        pl.per_session = l.max_background;
        pl.per_server = l.max_background_total;
        pl.idle_ttl = Duration::from_secs(l.background_idle_ttl_secs);
        pl.max_lifetime = (l.background_max_lifetime_secs > 0)
            .then(|| Duration::from_secs(l.background_max_lifetime_secs));
        pl.head_bytes = l.background_head_bytes;
        pl.tail_bytes = l.background_tail_bytes;
        pl.grace = Duration::from_millis(l.background_grace_ms);
        limits.processes = pl;
        let mut b = Session::builder()
            .workspace(workspace)
            .engine(self.engine.clone())
            .sandbox(SandboxConfig {
                profile: s.profile,
                writable: s.writable.clone(),
                deny_read: self.deny_read(),
                allow_best_effort: s.allow_best_effort,
                home: s.home.clone(),
                network: s.network,
                egress: s.egress.clone(),
            })
            .identity(self.identity())
            .limits(limits)
            .checkpoints(self.checkpoint_config())
            .secrets(self.secrets.clone());
        if let Some(a) = &self.audit {
            b = b.audit(a.clone());
        }
        b = b.observer(self.events.observer());
        b = b.transcripts(execkit_runner::Transcripts {
            max_bytes: self.config.watch.transcript_bytes,
            in_audit: self.config.audit.transcripts && self.audit.is_some(),
        });
        if let Some(r) = &self.run_as {
            b = b.run_as(r.clone());
        }
        b
    }
}

/// Why a workspace an agent asked for is refused.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    /// The path does not resolve (missing, unreadable, a symlink loop).
    #[error("workspace `{requested}`: {source}")]
    Unresolvable {
        /// The path as the agent wrote it.
        requested: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The path is not a directory.
    #[error("workspace `{0}` is not a directory")]
    NotADirectory(String),
    /// The resolved path is outside every root the operator allows.
    #[error("workspace `{}` is outside what the operator allows ({roots})", .path.display())]
    OutsideAllowed {
        /// The resolved path.
        path: PathBuf,
        /// The allowed roots, comma-separated.
        roots: String,
    },
}

/// `p` made absolute and free of symlinks (through its parent when it does not exist yet,
/// like an audit log before its first record).
fn absolute(p: &Path) -> Option<PathBuf> {
    if let Ok(c) = p.canonicalize() {
        return Some(c);
    }
    let name = p.file_name()?;
    let parent = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.canonicalize().ok()?,
        _ => std::env::current_dir().ok()?,
    };
    Some(parent.join(name))
}

/// The runner's SSH settings from the operator's `[ssh]` section.
pub fn ssh_settings(c: &crate::config::SshConfig) -> execkit_runner::ssh::SshSettings {
    let mut s = execkit_runner::ssh::SshSettings::new(&c.known_hosts);
    s.identity_files = c.identity_files.clone();
    let from_env = |name: &Option<String>| {
        name.as_ref()
            .and_then(|n| std::env::var(n).ok())
            .filter(|v| !v.is_empty())
    };
    s.password = from_env(&c.password_env);
    s.password_file = c.password_file.clone();
    s.passphrase = from_env(&c.passphrase_env);
    s.passphrase_file = c.passphrase_file.clone();
    s.agent_socket = c.agent_socket.clone().or_else(|| {
        c.use_agent
            .then(|| std::env::var_os("SSH_AUTH_SOCK").map(PathBuf::from))
            .flatten()
    });
    s.allow_sh = c.allow_sh;
    s.sandbox = c.sandbox.clone();
    s.unknown_hosts = match c.unknown_hosts {
        crate::config::UnknownHostsConfig::Refuse => execkit_runner::ssh::UnknownHosts::Refuse,
        crate::config::UnknownHostsConfig::TrustOnFirstUse => {
            execkit_runner::ssh::UnknownHosts::TrustOnFirstUse
        }
        crate::config::UnknownHostsConfig::InsecureAcceptAny => {
            execkit_runner::ssh::UnknownHosts::InsecureAcceptAny
        }
    };
    s
}

/// The runner's Docker settings from the operator's `[docker]` section; `workspace` is
/// bound at `/work` in ephemeral containers.
pub fn docker_settings(
    c: &crate::config::DockerConfig,
    workspace: Option<PathBuf>,
) -> execkit_runner::docker::DockerSettings {
    let mut s = execkit_runner::docker::DockerSettings::new(&c.endpoint);
    s.workspace = workspace;
    s.sandbox = c.sandbox.clone();
    s.network = c.network;
    s.pids_limit = c.pids_limit;
    s.memory_bytes = c.memory_bytes;
    s.user = c.user.clone();
    s.allow_sh = c.allow_sh;
    s
}
