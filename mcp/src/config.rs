//! The operator's configuration of the MCP server: one TOML file (`--config PATH` or
//! `EXECKIT_CONFIG`) plus environment overrides for the common keys.
//!
//! Everything that widens an agent's power lives here and only here: the policy set, the
//! identity, the sandbox profile and its extra paths, the workspaces sessions may use, the
//! limits, the audit path and the secret sources. Tool arguments can only narrow (a
//! workspace inside an allowed one, a shorter timeout, a smaller budget).
//!
//! Unknown keys are errors, so a typo cannot silently leave a setting at its default.
//!
//! ```
//! use execkit_cli::config::OperatorConfig;
//! let c = OperatorConfig::from_toml_str(r#"
//!     [sandbox]
//!     profile = "read-only"
//!     [limits]
//!     max_sessions = 4
//! "#).unwrap();
//! assert_eq!(c.limits.max_sessions, 4);
//! ```

use execkit_engine::{Identity, ScriptLimits};
use execkit_runner::remote_sandbox::RemoteSandbox;
use execkit_runner::sandbox::Profile;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OperatorConfig {
    /// Which policies decide.
    pub policy: PolicyConfig,
    /// Who the agent is, for the policies and the audit log.
    pub identity: IdentityConfig,
    /// The kernel sandbox every local session runs in.
    pub sandbox: SandboxSection,
    /// Where sessions may work.
    pub workspaces: WorkspacesConfig,
    /// Caps and timeouts.
    pub limits: LimitsConfig,
    /// The audit log.
    pub audit: AuditConfig,
    /// Live watching (`execkit watch --socket`).
    pub watch: WatchConfig,
    /// Values to redact from every output.
    pub secrets: SecretsConfig,
    /// Workspace checkpoints (`session_checkpoint`, `session_restore`, automatic ones).
    pub checkpoints: CheckpointsConfig,
    /// SSH targets: trust and credentials (agents only pick among what this allows).
    pub ssh: Option<SshConfig>,
    /// The Docker endpoint and the hardening of ephemeral containers.
    pub docker: Option<DockerConfig>,
    /// MCP over Streamable HTTP (`execkit-mcp serve --http`): tokens and per-identity limits.
    pub http: HttpConfig,
    /// The file this configuration was read from (not a setting).
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

/// `[policy]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// A policy directory (`*.cedar`, `entities.json`, optional schema); default: the
    /// embedded `default` set. Env: `EXECKIT_POLICY_DIR`.
    pub dir: Option<PathBuf>,
    /// An embedded set by name (`default` or `strict`) when `dir` is not set.
    /// Env: `EXECKIT_POLICY_SET`.
    pub set: Option<String>,
    /// An entities file that replaces the set's `entities.json`. Env: `EXECKIT_ENTITIES`.
    pub entities: Option<PathBuf>,
}

/// `[identity]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityConfig {
    /// The `Agent` entity id. Env: `EXECKIT_AGENT`.
    pub agent: String,
    /// The accountable human (`Operator` entity id); also the approver recorded when a
    /// human approves an Ask through the client. Env: `EXECKIT_OPERATOR`.
    pub operator: String,
    /// Extra groups the agent is in.
    pub groups: Vec<String>,
    /// Agent kind (`claude-code`, `ci-bot`, ...).
    pub kind: String,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig {
            agent: "agent".into(),
            operator: "operator".into(),
            groups: Vec::new(),
            kind: "agent".into(),
        }
    }
}

impl IdentityConfig {
    /// The identity commands are decided with (no session or approver yet): the server's
    /// sessions and `execkit policy check --config` use the same.
    pub fn identity(&self) -> Identity {
        Identity {
            agent: self.agent.clone(),
            operator: self.operator.clone(),
            groups: self.groups.clone(),
            kind: self.kind.clone(),
            ..Identity::default()
        }
    }
}

/// `[sandbox]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxSection {
    /// `workspace` (default), `read-only`, `workspace-net` or `off`.
    /// Env: `EXECKIT_SANDBOX_PROFILE`.
    pub profile: Profile,
    /// Extra writable paths. Env: `EXECKIT_SANDBOX_WRITABLE` (`:`-separated).
    pub writable: Vec<PathBuf>,
    /// Paths sessions may not read.
    pub deny_read: Vec<PathBuf>,
    /// Start sessions even when the kernel cannot enforce the profile fully.
    pub allow_best_effort: bool,
    /// Run shells as this user (the server must run as root). Env: `EXECKIT_RUN_AS`.
    pub run_as: Option<String>,
    /// `[sandbox.home]`: the session's home closed (`close = true`, the default) but for
    /// `open`, paths relative to it (default: toolchains and package caches).
    pub home: execkit_runner::sandbox::HomeAccess,
    /// Where a session without the host's network may connect: `policy` (the default:
    /// through the egress broker, each connection decided by the policies) or `off`.
    pub network: execkit_runner::egress::NetworkMode,
    /// `[sandbox.egress]`: the broker's settings (`hosts`: names it resolves to these
    /// addresses instead of asking the system's resolver).
    pub egress: execkit_runner::egress::EgressConfig,
}

impl Default for SandboxSection {
    fn default() -> Self {
        SandboxSection {
            profile: Profile::Workspace,
            writable: Vec::new(),
            deny_read: Vec::new(),
            allow_best_effort: false,
            run_as: None,
            home: execkit_runner::sandbox::HomeAccess::default(),
            network: execkit_runner::egress::NetworkMode::default(),
            egress: execkit_runner::egress::EgressConfig::default(),
        }
    }
}

/// `[workspaces]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkspacesConfig {
    /// Where a session starts when the agent names no workspace; default: the server's
    /// current directory. Env: `EXECKIT_WORKSPACE`.
    pub default: Option<PathBuf>,
    /// Directories a session's workspace must lie inside (itself included); default: just
    /// the default workspace. Env: `EXECKIT_ALLOWED_WORKSPACES` (`:`-separated).
    pub allowed: Vec<PathBuf>,
}

/// `[limits]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Open sessions at most. Env: `EXECKIT_MAX_SESSIONS`.
    pub max_sessions: usize,
    /// A session unused this long is closed. Env: `EXECKIT_IDLE_TTL_SECS`.
    pub idle_ttl_secs: u64,
    /// Timeout of a command that names none. Env: `EXECKIT_DEFAULT_TIMEOUT_MS`.
    pub default_timeout_ms: u64,
    /// No command runs longer, whatever it asks. Env: `EXECKIT_MAX_TIMEOUT_MS`.
    pub max_timeout_ms: u64,
    /// Bytes kept from the start of each stream. Env: `EXECKIT_OUTPUT_HEAD_BYTES`.
    pub output_head_bytes: usize,
    /// Bytes kept from the end of each stream. Env: `EXECKIT_OUTPUT_TAIL_BYTES`.
    pub output_tail_bytes: usize,
    /// How long a human has to answer an approval request.
    pub approval_timeout_secs: u64,
    /// Interval between progress notifications while a command runs.
    pub progress_interval_ms: u64,
    /// Longest JSON-RPC message accepted from the client, in bytes; a longer line is
    /// answered with an error and skipped. Env: `EXECKIT_MAX_MESSAGE_BYTES`.
    pub max_message_bytes: usize,
    /// Processes alive at once per session (0: no limit). Env: `EXECKIT_MAX_PROCESSES`.
    pub max_processes: u64,
    /// Memory per session, in bytes (0: no limit). Env: `EXECKIT_MAX_MEMORY_BYTES`.
    pub max_memory_bytes: u64,
    /// CPU per session in percent of one CPU (0: no limit). Env: `EXECKIT_CPU_PERCENT`.
    pub cpu_percent: u32,
    /// Open files per process (0: no limit). Env: `EXECKIT_MAX_OPEN_FILES`.
    pub max_open_files: u64,
    /// Size of any one written file, in bytes (0: no limit). Env: `EXECKIT_MAX_FILE_BYTES`.
    pub max_file_bytes: u64,
    /// Disk a session's workspace may use, in bytes, measured after each command (0: no
    /// cap). Env: `EXECKIT_MAX_WORKSPACE_BYTES`.
    pub max_workspace_bytes: u64,
    /// Background processes (`process_start`) running at once per session.
    /// Env: `EXECKIT_MAX_BACKGROUND`. Over SSH each uses two channels of the connection
    /// (OpenSSH's `MaxSessions` is 10 by default).
    pub max_background: usize,
    /// Background processes running at once in this server (all sessions).
    /// Env: `EXECKIT_MAX_BACKGROUND_TOTAL`.
    pub max_background_total: usize,
    /// An exited background process stays readable this long, then is forgotten.
    pub background_idle_ttl_secs: u64,
    /// A background process running longer is terminated (0: no limit).
    /// Env: `EXECKIT_BACKGROUND_MAX_LIFETIME_SECS`.
    pub background_max_lifetime_secs: u64,
    /// Bytes of each background stream kept from its start.
    pub background_head_bytes: usize,
    /// Bytes of each background stream kept from its end (the ring the cursors read).
    pub background_tail_bytes: usize,
    /// Between SIGTERM and SIGKILL when a background process is terminated.
    pub background_grace_ms: u64,
    /// Longest command (script) judged, in bytes; a longer one is denied.
    /// Env: `EXECKIT_MAX_SCRIPT_BYTES`.
    pub max_script_bytes: usize,
    /// Most commands in one script, payloads' and wrapped ones included.
    /// Env: `EXECKIT_MAX_SCRIPT_COMMANDS`.
    pub max_script_commands: usize,
    /// Most facts (Cedar requests) one decision judges. Env: `EXECKIT_MAX_SCRIPT_FACTS`.
    pub max_script_facts: usize,
    /// Most parser steps (about a hundred tree-sitter operations each) spent reading one
    /// script. Env: `EXECKIT_MAX_PARSE_STEPS`.
    pub max_parse_steps: usize,
}

impl LimitsConfig {
    /// The engine's script limits these set.
    pub fn script_limits(&self) -> ScriptLimits {
        ScriptLimits {
            max_bytes: self.max_script_bytes,
            max_commands: self.max_script_commands,
            max_parse_steps: self.max_parse_steps,
            max_facts: self.max_script_facts,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let script = ScriptLimits::default();
        LimitsConfig {
            max_sessions: 32,
            idle_ttl_secs: 30 * 60,
            default_timeout_ms: 120_000,
            max_timeout_ms: 600_000,
            output_head_bytes: 32 * 1024,
            output_tail_bytes: 32 * 1024,
            approval_timeout_secs: 300,
            progress_interval_ms: 1000,
            max_message_bytes: 16 * 1024 * 1024,
            max_processes: 1024,
            max_memory_bytes: 4 << 30,
            cpu_percent: 0,
            max_open_files: 4096,
            max_file_bytes: 4 << 30,
            max_workspace_bytes: 0,
            max_background: 8,
            max_background_total: 64,
            background_idle_ttl_secs: 600,
            background_max_lifetime_secs: 24 * 3600,
            background_head_bytes: 64 * 1024,
            background_tail_bytes: 256 * 1024,
            background_grace_ms: 2000,
            max_script_bytes: script.max_bytes,
            max_script_commands: script.max_commands,
            max_script_facts: script.max_facts,
            max_parse_steps: script.max_parse_steps,
        }
    }
}

/// `[checkpoints]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckpointsConfig {
    /// Checkpoints at all (automatic ones included).
    pub enabled: bool,
    /// Where stores live, one per session (default: the session's private dir, removed
    /// with the session). Must lie outside every workspace.
    pub store_dir: Option<PathBuf>,
    /// The most bytes one checkpoint may capture.
    pub max_bytes: u64,
    /// Gitignore-style patterns never captured (besides `.gitignore`).
    pub exclude: Vec<String>,
    /// Honour the workspace's `.gitignore` files.
    pub gitignore: bool,
    /// Checkpoints kept per session (the oldest are pruned).
    pub keep: usize,
}

impl Default for CheckpointsConfig {
    fn default() -> Self {
        CheckpointsConfig {
            enabled: true,
            store_dir: None,
            max_bytes: 1 << 30,
            exclude: Vec::new(),
            gitignore: true,
            keep: 20,
        }
    }
}

/// `[audit]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Append decision and command records (hash-chained JSON lines) here.
    /// Env: `EXECKIT_AUDIT_PATH`.
    pub path: Option<PathBuf>,
    /// Also send every record to syslog as it is written (needs `path`).
    pub syslog: Option<SyslogSection>,
    /// Keep each command's transcript (`[watch] transcript_bytes` of its output) in the log
    /// as `transcript` records too, not only in the live event stream.
    pub transcripts: bool,
}

/// `[audit.syslog]`: RFC 5424 messages, one per record.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogSection {
    /// `unix:/dev/log`, `udp:HOST:PORT` or `tcp:HOST:PORT` (octet-counted framing).
    /// Env: `EXECKIT_AUDIT_SYSLOG`.
    pub address: String,
    /// Facility (default `authpriv`).
    #[serde(default)]
    pub facility: execkit_audit::Facility,
    /// APP-NAME (default `execkit`).
    #[serde(default = "default_app_name")]
    pub app_name: String,
    /// Refuse commands whose record cannot be forwarded (default: report and go on; the
    /// file stays the record).
    #[serde(default)]
    pub required: bool,
}

fn default_app_name() -> String {
    "execkit".into()
}

impl SyslogSection {
    /// The options for [`execkit_audit::Syslog::connect`].
    pub fn options(&self) -> Result<execkit_audit::SyslogOptions, ConfigError> {
        Ok(execkit_audit::SyslogOptions {
            address: self
                .address
                .parse()
                .map_err(|e| ConfigError::Invalid(format!("audit.syslog.address: {e}")))?,
            facility: self.facility,
            app_name: self.app_name.clone(),
            required: self.required,
        })
    }
}

/// `[http]`: MCP over Streamable HTTP for several agents with their own identities.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Listen address (`--http` overrides). Env: `EXECKIT_HTTP_ADDRESS`.
    pub address: Option<String>,
    /// The URL clients reach the MCP endpoint at (`https://mcp.example.com/mcp`): the
    /// resource of the protected-resource metadata (RFC 9728) and the default audience.
    pub resource: Option<String>,
    /// `Host` header values accepted (DNS-rebinding protection); default: loopback names.
    pub allowed_hosts: Vec<String>,
    /// Bearer-token validation: required, the HTTP server does not start without it.
    pub auth: Option<HttpAuthConfig>,
    /// Sessions one identity may have open at once.
    pub sessions_per_identity: usize,
    /// Background processes one identity may have running at once, over all its sessions.
    pub processes_per_identity: usize,
    /// Requests one identity may make per minute (0: no limit); more are answered 429.
    pub requests_per_minute: u32,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            address: None,
            resource: None,
            allowed_hosts: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            auth: None,
            sessions_per_identity: 4,
            processes_per_identity: 16,
            requests_per_minute: 1200,
        }
    }
}

/// `[http.auth]`: the OAuth 2.1 resource server's token settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpAuthConfig {
    /// The issuer (`iss`) tokens must come from; also named in the protected-resource
    /// metadata as the authorization server.
    pub issuer: String,
    /// Accepted audiences (`aud`); default: `[http] resource`.
    #[serde(default)]
    pub audience: Vec<String>,
    /// The issuer's JWKS as a file (read again when it changes: keys rotate without a
    /// restart).
    pub jwks_file: PathBuf,
    /// Accepted algorithms (default `RS256`, `ES256`, `EdDSA`).
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// The claim that names the principal (default `sub`).
    #[serde(default = "default_subject_claim")]
    pub subject_claim: String,
    /// The claim that lists the principal's groups (default `groups`).
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Clock skew allowed on `exp`/`nbf`, seconds (default 30).
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
    /// Scopes every token must carry (`scope` claim).
    #[serde(default)]
    pub required_scopes: Vec<String>,
}

fn default_algorithms() -> Vec<String> {
    vec!["RS256".into(), "ES256".into(), "EdDSA".into()]
}

fn default_subject_claim() -> String {
    "sub".into()
}

fn default_groups_claim() -> String {
    "groups".into()
}

fn default_leeway() -> u64 {
    30
}

/// `[watch]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WatchConfig {
    /// Serve the live event stream (redacted audit events, JSON lines, read-only) on this
    /// Unix socket, owner-only (mode 0600, and a peer with another uid is refused), for
    /// `execkit watch --socket PATH`. Env: `EXECKIT_WATCH_SOCKET`.
    pub socket: Option<PathBuf>,
    /// Bytes of each finished command's output (as the agent got it: redacted, bounded)
    /// kept for viewers as a `transcript` event; 0 keeps none. Default 16384.
    pub transcript_bytes: usize,
}

impl Default for WatchConfig {
    fn default() -> Self {
        WatchConfig {
            socket: None,
            transcript_bytes: 16384,
        }
    }
}

/// `[ssh]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshConfig {
    /// The operator's known_hosts (OpenSSH format).
    pub known_hosts: PathBuf,
    /// Private key files, tried in order (each must be owner-only).
    #[serde(default)]
    pub identity_files: Vec<PathBuf>,
    /// The name of a server environment variable holding the key files' passphrase.
    #[serde(default)]
    pub passphrase_env: Option<String>,
    /// A file holding the key files' passphrase (owner-only).
    #[serde(default)]
    pub passphrase_file: Option<PathBuf>,
    /// Try the keys of the ssh-agent at the server's `SSH_AUTH_SOCK` after the key files.
    #[serde(default)]
    pub use_agent: bool,
    /// Try the keys of the ssh-agent at this socket after the key files.
    #[serde(default)]
    pub agent_socket: Option<PathBuf>,
    /// The name of a server environment variable holding a password to try after the keys.
    #[serde(default)]
    pub password_env: Option<String>,
    /// A file holding that password (owner-only).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// `refuse` (default), `trust-on-first-use` (appends to known_hosts) or
    /// `insecure-accept-any` (tests only).
    #[serde(default)]
    pub unknown_hosts: UnknownHostsConfig,
    /// The remote user when the agent names none.
    #[serde(default)]
    pub user: Option<String>,
    /// Run a POSIX `sh` on hosts without bash (bash syntax and job control are lost; off:
    /// such hosts are refused).
    #[serde(default)]
    pub allow_sh: bool,
    /// The sandbox the remote helper applies on SSH hosts (`[ssh.sandbox]`: `helper`,
    /// `require`, `profile`, `workspace`, `writable`, `deny_read`, `namespaces`).
    ///
    /// ```
    /// use execkit_cli::config::OperatorConfig;
    /// let c = OperatorConfig::from_toml_str(r#"
    ///     [ssh]
    ///     known_hosts = "/etc/execkit/known_hosts"
    ///     [ssh.sandbox]
    ///     require = true
    ///     workspace = "/srv/build"
    /// "#).unwrap();
    /// assert!(c.ssh.unwrap().sandbox.require);
    /// ```
    #[serde(default)]
    pub sandbox: RemoteSandbox,
}

/// What to do with hosts known_hosts does not list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnknownHostsConfig {
    /// Refuse.
    #[default]
    Refuse,
    /// Trust the first key and append it.
    TrustOnFirstUse,
    /// Accept anything (tests only).
    InsecureAcceptAny,
}

/// `[docker]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerConfig {
    /// The daemon's Unix socket (`unix:///var/run/docker.sock`).
    pub endpoint: String,
    /// Give ephemeral containers a network.
    #[serde(default)]
    pub network: bool,
    /// Processes per ephemeral container.
    #[serde(default = "default_pids")]
    pub pids_limit: i64,
    /// Memory per ephemeral container, in bytes.
    #[serde(default = "default_container_memory")]
    pub memory_bytes: i64,
    /// The user ephemeral containers run as (default: the image's).
    #[serde(default)]
    pub user: Option<String>,
    /// Run a POSIX `sh` in containers without bash (bash syntax and job control are lost;
    /// off: such containers are refused).
    #[serde(default)]
    pub allow_sh: bool,
    /// The sandbox the remote helper applies in containers (`[docker.sandbox]`).
    #[serde(default)]
    pub sandbox: RemoteSandbox,
}

fn default_pids() -> i64 {
    256
}

fn default_container_memory() -> i64 {
    1 << 30
}

/// `[secrets]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsConfig {
    /// Names of variables in the server's environment whose values are redacted from all
    /// output (the variables themselves are not passed to sessions).
    /// Env: `EXECKIT_SECRET_ENV` (`,`- or `:`-separated names).
    pub env: Vec<String>,
    /// Files whose lines are secret values to redact (blank lines and `#` comments skipped).
    /// Env: `EXECKIT_SECRET_FILES` (`:`-separated).
    pub files: Vec<PathBuf>,
}

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The TOML is invalid or has unknown keys.
    #[error("invalid config {path}: {message}")]
    Parse {
        /// The path (or `<string>`).
        path: String,
        /// What is wrong.
        message: String,
    },
    /// An environment override has a bad value.
    #[error("environment variable {name}: {message}")]
    Env {
        /// The variable.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// A value is out of range.
    #[error("config: {0}")]
    Invalid(String),
}

impl OperatorConfig {
    /// Parses TOML text.
    pub fn from_toml_str(text: &str) -> Result<OperatorConfig, ConfigError> {
        Self::parse(text, "<string>")
    }

    fn parse(text: &str, path: &str) -> Result<OperatorConfig, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_string(),
            message: e.message().to_string(),
        })
    }

    /// Loads the configuration: the file (`path`, else `EXECKIT_CONFIG`, else defaults),
    /// then the environment overrides, then validation.
    pub fn load(path: Option<&Path>) -> Result<OperatorConfig, ConfigError> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Self::load_with(path, &env)
    }

    /// [`OperatorConfig::load`] with an explicit environment (for tests).
    pub fn load_with(
        path: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<OperatorConfig, ConfigError> {
        let path = path
            .map(Path::to_path_buf)
            .or_else(|| env("EXECKIT_CONFIG").map(PathBuf::from));
        let mut c = match &path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.display().to_string(),
                    source,
                })?;
                Self::parse(&text, &p.display().to_string())?
            }
            None => OperatorConfig::default(),
        };
        c.source = path;
        c.apply_env(env)?;
        c.validate()?;
        Ok(c)
    }

    fn apply_env(&mut self, env: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let paths = |v: String| -> Vec<PathBuf> {
            v.split(':')
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .collect()
        };
        if let Some(v) = env("EXECKIT_WATCH_SOCKET") {
            self.watch.socket = Some(PathBuf::from(v));
        }
        if let Some(v) = env("EXECKIT_POLICY_DIR") {
            self.policy.dir = Some(v.into());
        }
        if let Some(v) = env("EXECKIT_POLICY_SET") {
            self.policy.set = Some(v);
        }
        if let Some(v) = env("EXECKIT_ENTITIES") {
            self.policy.entities = Some(v.into());
        }
        if let Some(v) = env("EXECKIT_AGENT") {
            self.identity.agent = v;
        }
        if let Some(v) = env("EXECKIT_OPERATOR") {
            self.identity.operator = v;
        }
        if let Some(v) = env("EXECKIT_SANDBOX_PROFILE") {
            self.sandbox.profile =
                v.parse()
                    .map_err(
                        |e: execkit_runner::sandbox::UnknownProfile| ConfigError::Env {
                            name: "EXECKIT_SANDBOX_PROFILE".into(),
                            message: e.to_string(),
                        },
                    )?;
        }
        if let Some(v) = env("EXECKIT_SANDBOX_WRITABLE") {
            self.sandbox.writable = paths(v);
        }
        if let Some(v) = env("EXECKIT_RUN_AS") {
            self.sandbox.run_as = Some(v);
        }
        if let Some(v) = env("EXECKIT_WORKSPACE") {
            self.workspaces.default = Some(v.into());
        }
        if let Some(v) = env("EXECKIT_ALLOWED_WORKSPACES") {
            self.workspaces.allowed = paths(v);
        }
        let num = |name: &str| -> Result<Option<u64>, ConfigError> {
            env(name)
                .map(|v| {
                    v.trim().parse::<u64>().map_err(|e| ConfigError::Env {
                        name: name.into(),
                        message: format!("`{v}` is not a whole number: {e}"),
                    })
                })
                .transpose()
        };
        if let Some(v) = num("EXECKIT_MAX_SESSIONS")? {
            self.limits.max_sessions = v as usize;
        }
        if let Some(v) = num("EXECKIT_IDLE_TTL_SECS")? {
            self.limits.idle_ttl_secs = v;
        }
        if let Some(v) = num("EXECKIT_DEFAULT_TIMEOUT_MS")? {
            self.limits.default_timeout_ms = v;
        }
        if let Some(v) = num("EXECKIT_MAX_TIMEOUT_MS")? {
            self.limits.max_timeout_ms = v;
        }
        if let Some(v) = num("EXECKIT_OUTPUT_HEAD_BYTES")? {
            self.limits.output_head_bytes = v as usize;
        }
        if let Some(v) = num("EXECKIT_OUTPUT_TAIL_BYTES")? {
            self.limits.output_tail_bytes = v as usize;
        }
        if let Some(v) = num("EXECKIT_MAX_MESSAGE_BYTES")? {
            self.limits.max_message_bytes = v as usize;
        }
        if let Some(v) = num("EXECKIT_MAX_SCRIPT_BYTES")? {
            self.limits.max_script_bytes = v as usize;
        }
        if let Some(v) = num("EXECKIT_MAX_SCRIPT_COMMANDS")? {
            self.limits.max_script_commands = v as usize;
        }
        if let Some(v) = num("EXECKIT_MAX_SCRIPT_FACTS")? {
            self.limits.max_script_facts = v as usize;
        }
        if let Some(v) = num("EXECKIT_MAX_PARSE_STEPS")? {
            self.limits.max_parse_steps = v as usize;
        }
        if let Some(v) = num("EXECKIT_MAX_PROCESSES")? {
            self.limits.max_processes = v;
        }
        if let Some(v) = num("EXECKIT_MAX_MEMORY_BYTES")? {
            self.limits.max_memory_bytes = v;
        }
        if let Some(v) = num("EXECKIT_CPU_PERCENT")? {
            self.limits.cpu_percent = v as u32;
        }
        if let Some(v) = num("EXECKIT_MAX_OPEN_FILES")? {
            self.limits.max_open_files = v;
        }
        if let Some(v) = num("EXECKIT_MAX_FILE_BYTES")? {
            self.limits.max_file_bytes = v;
        }
        if let Some(v) = num("EXECKIT_MAX_WORKSPACE_BYTES")? {
            self.limits.max_workspace_bytes = v;
        }
        if let Some(v) = num("EXECKIT_MAX_BACKGROUND")? {
            self.limits.max_background = v as usize;
        }
        if let Some(v) = num("EXECKIT_MAX_BACKGROUND_TOTAL")? {
            self.limits.max_background_total = v as usize;
        }
        if let Some(v) = num("EXECKIT_BACKGROUND_MAX_LIFETIME_SECS")? {
            self.limits.background_max_lifetime_secs = v;
        }
        if let Some(v) = env("EXECKIT_SSH_KNOWN_HOSTS") {
            match &mut self.ssh {
                Some(ssh) => ssh.known_hosts = v.into(),
                None => {
                    self.ssh = Some(SshConfig {
                        known_hosts: v.into(),
                        identity_files: Vec::new(),
                        passphrase_env: None,
                        passphrase_file: None,
                        use_agent: false,
                        agent_socket: None,
                        password_env: None,
                        password_file: None,
                        unknown_hosts: UnknownHostsConfig::Refuse,
                        user: None,
                        allow_sh: false,
                        sandbox: RemoteSandbox::default(),
                    })
                }
            }
        }
        if let Some(v) = env("EXECKIT_SSH_IDENTITY_FILES") {
            if let Some(ssh) = &mut self.ssh {
                ssh.identity_files = paths(v);
            }
        }
        if let Some(v) = env("EXECKIT_DOCKER_ENDPOINT") {
            match &mut self.docker {
                Some(d) => d.endpoint = v,
                None => {
                    self.docker = Some(DockerConfig {
                        endpoint: v,
                        network: false,
                        pids_limit: default_pids(),
                        memory_bytes: default_container_memory(),
                        user: None,
                        allow_sh: false,
                        sandbox: RemoteSandbox::default(),
                    })
                }
            }
        }
        if let Some(v) = env("EXECKIT_AUDIT_PATH") {
            self.audit.path = Some(v.into());
        }
        if let Some(v) = env("EXECKIT_HTTP_ADDRESS") {
            self.http.address = Some(v);
        }
        if let Some(v) = env("EXECKIT_AUDIT_SYSLOG") {
            match &mut self.audit.syslog {
                Some(s) => s.address = v,
                None => {
                    self.audit.syslog = Some(SyslogSection {
                        address: v,
                        facility: Default::default(),
                        app_name: default_app_name(),
                        required: false,
                    })
                }
            }
        }
        if let Some(v) = env("EXECKIT_SECRET_ENV") {
            self.secrets.env = v
                .split([',', ':'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
        }
        if let Some(v) = env("EXECKIT_SECRET_FILES") {
            self.secrets.files = paths(v);
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        if l.max_sessions == 0 {
            return Err(ConfigError::Invalid(
                "limits.max_sessions must be at least 1".into(),
            ));
        }
        if l.default_timeout_ms == 0 || l.max_timeout_ms == 0 {
            return Err(ConfigError::Invalid("timeouts must be positive".into()));
        }
        if l.default_timeout_ms > l.max_timeout_ms {
            return Err(ConfigError::Invalid(format!(
                "limits.default_timeout_ms ({}) exceeds limits.max_timeout_ms ({})",
                l.default_timeout_ms, l.max_timeout_ms
            )));
        }
        if l.idle_ttl_secs == 0 {
            return Err(ConfigError::Invalid(
                "limits.idle_ttl_secs must be at least 1".into(),
            ));
        }
        if l.output_head_bytes + l.output_tail_bytes < 1024 {
            return Err(ConfigError::Invalid(
                "limits.output_head_bytes + output_tail_bytes must be at least 1024".into(),
            ));
        }
        if l.progress_interval_ms < 50 {
            return Err(ConfigError::Invalid(
                "limits.progress_interval_ms must be at least 50".into(),
            ));
        }
        if l.max_message_bytes < 64 * 1024 {
            return Err(ConfigError::Invalid(
                "limits.max_message_bytes must be at least 65536".into(),
            ));
        }
        // A script limit of 0 would deny every command: a typo, not a policy.
        for (name, v) in [
            ("max_script_bytes", l.max_script_bytes),
            ("max_script_commands", l.max_script_commands),
            ("max_script_facts", l.max_script_facts),
            ("max_parse_steps", l.max_parse_steps),
        ] {
            if v == 0 {
                return Err(ConfigError::Invalid(format!(
                    "limits.{name} must be at least 1"
                )));
            }
        }
        if self.http.sessions_per_identity == 0 {
            return Err(ConfigError::Invalid(
                "http.sessions_per_identity must be at least 1".into(),
            ));
        }
        if let Some(a) = &self.http.auth {
            if a.audience.is_empty() && self.http.resource.is_none() {
                return Err(ConfigError::Invalid(
                    "http.auth needs an audience (or http.resource, the default audience)".into(),
                ));
            }
        }
        if let Some(s) = &self.audit.syslog {
            s.options()?;
            if self.audit.path.is_none() {
                return Err(ConfigError::Invalid(
                    "audit.syslog forwards the audit log's records: set audit.path too".into(),
                ));
            }
        }
        if self.policy.dir.is_some() && self.policy.set.is_some() {
            return Err(ConfigError::Invalid(
                "set either policy.dir or policy.set, not both".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn no_config_gives_sane_defaults() {
        let c = OperatorConfig::load_with(None, &env_of(&[])).unwrap();
        assert_eq!(c.sandbox.profile, Profile::Workspace);
        assert!(c.policy.dir.is_none());
        assert_eq!(c.limits.max_sessions, 32);
        assert!(c.limits.default_timeout_ms <= c.limits.max_timeout_ms);
    }

    #[test]
    fn script_limits_come_from_the_operator() {
        let c = OperatorConfig::from_toml_str("").unwrap();
        assert_eq!(c.limits.script_limits(), ScriptLimits::default());
        let c = OperatorConfig::from_toml_str(
            "[limits]\nmax_script_bytes = 4096\nmax_script_commands = 3\n\
             max_script_facts = 10\nmax_parse_steps = 50\n",
        )
        .unwrap();
        assert_eq!(
            c.limits.script_limits(),
            ScriptLimits {
                max_bytes: 4096,
                max_commands: 3,
                max_parse_steps: 50,
                max_facts: 10,
            }
        );
        for key in [
            "max_script_bytes",
            "max_script_commands",
            "max_script_facts",
            "max_parse_steps",
        ] {
            let c = OperatorConfig::from_toml_str(&format!("[limits]\n{key} = 0\n")).unwrap();
            let e = c.validate().unwrap_err();
            assert!(e.to_string().contains(key), "{e}");
        }
        let c = OperatorConfig::load_with(None, &env_of(&[("EXECKIT_MAX_SCRIPT_COMMANDS", "7")]))
            .unwrap();
        assert_eq!(c.limits.max_script_commands, 7);
    }

    #[test]
    fn unknown_keys_are_errors() {
        let e = OperatorConfig::from_toml_str("[limits]\nmax_sesions = 3\n").unwrap_err();
        assert!(e.to_string().contains("max_sesions"), "{e}");
        let e = OperatorConfig::from_toml_str("[sandbx]\n").unwrap_err();
        assert!(e.to_string().contains("sandbx"), "{e}");
    }

    #[test]
    fn env_overrides_the_file() {
        let dir = std::env::temp_dir().join(format!("execkit-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(
            &file,
            "[sandbox]\nprofile = \"read-only\"\n[limits]\nmax_sessions = 4\n",
        )
        .unwrap();
        let c = OperatorConfig::load_with(
            None,
            &env_of(&[
                ("EXECKIT_CONFIG", file.to_str().unwrap()),
                ("EXECKIT_MAX_SESSIONS", "9"),
                ("EXECKIT_ALLOWED_WORKSPACES", "/a:/b"),
                ("EXECKIT_SECRET_ENV", "GITHUB_TOKEN, NPM_TOKEN"),
            ]),
        )
        .unwrap();
        assert_eq!(c.sandbox.profile, Profile::ReadOnly);
        assert_eq!(c.limits.max_sessions, 9);
        assert_eq!(
            c.workspaces.allowed,
            vec![PathBuf::from("/a"), PathBuf::from("/b")]
        );
        assert_eq!(c.secrets.env, ["GITHUB_TOKEN", "NPM_TOKEN"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_values_are_refused_with_the_key() {
        let e = OperatorConfig::load_with(None, &env_of(&[("EXECKIT_MAX_SESSIONS", "many")]))
            .unwrap_err();
        assert!(e.to_string().contains("EXECKIT_MAX_SESSIONS"), "{e}");
        let e = OperatorConfig::load_with(None, &env_of(&[("EXECKIT_SANDBOX_PROFILE", "lax")]))
            .unwrap_err();
        assert!(e.to_string().contains("EXECKIT_SANDBOX_PROFILE"), "{e}");
        let e = OperatorConfig::load_with(
            None,
            &env_of(&[
                ("EXECKIT_DEFAULT_TIMEOUT_MS", "5000"),
                ("EXECKIT_MAX_TIMEOUT_MS", "1000"),
            ]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("exceeds"), "{e}");
        let e = OperatorConfig::load_with(Some(Path::new("/nonexistent/x.toml")), &env_of(&[]))
            .unwrap_err();
        assert!(e.to_string().contains("/nonexistent/x.toml"), "{e}");
    }
}
