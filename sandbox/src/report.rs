//! What a sandbox is asked for and what the kernel gives: the operator's profile, the
//! level reached, each layer that applies, the resource limits enforced and notes for
//! what is missing. The same report describes a local shell and a remote one (where the
//! remote helper fills it from the remote kernel).

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What the operator lets a session do. Chosen by the operator, never by the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Profile {
    /// Nothing writable but the private tmp dir and `/dev/null` and friends; no network.
    ReadOnly,
    /// The workspace and private tmp dir writable; no network. The default.
    #[default]
    Workspace,
    /// Like `workspace`, with network.
    WorkspaceNet,
    /// No sandbox at all: an explicit opt-out.
    Off,
}

impl Profile {
    /// The profile's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::ReadOnly => "read-only",
            Profile::Workspace => "workspace",
            Profile::WorkspaceNet => "workspace-net",
            Profile::Off => "off",
        }
    }

    /// True if commands may open network sockets.
    pub fn network(self) -> bool {
        matches!(self, Profile::WorkspaceNet | Profile::Off)
    }
}

/// A sandbox profile name that is not one of the four profiles.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown sandbox profile `{0}` (expected read-only, workspace, workspace-net or off)")]
pub struct UnknownProfile(pub String);

impl std::str::FromStr for Profile {
    type Err = UnknownProfile;
    fn from_str(s: &str) -> Result<Self, UnknownProfile> {
        match s {
            "read-only" => Ok(Profile::ReadOnly),
            "workspace" => Ok(Profile::Workspace),
            "workspace-net" => Ok(Profile::WorkspaceNet),
            "off" => Ok(Profile::Off),
            other => Err(UnknownProfile(other.to_string())),
        }
    }
}

/// How much of the requested confinement the kernel enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Level {
    /// Everything requested.
    Full,
    /// Some of it (an older Landlock ABI).
    Partial,
    /// None (profile `off`, or no Landlock and best-effort allowed).
    None,
}

impl Level {
    /// Lower-case name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Full => "full",
            Level::Partial => "partial",
            Level::None => "none",
        }
    }
}

/// The confinement a session actually runs under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enforcement {
    /// Profile name.
    pub profile: Profile,
    /// Overall level.
    pub level: Level,
    /// The kernel's Landlock ABI (0: none).
    pub landlock_abi: i32,
    /// Landlock filesystem rules applied.
    pub filesystem: bool,
    /// Landlock TCP bind/connect rules applied (network-off profiles on ABI >= 4).
    pub landlock_network: bool,
    /// Landlock signal and abstract-socket scoping applied (ABI >= 6).
    pub scopes: bool,
    /// The seccomp deny-list applied.
    pub seccomp: bool,
    /// `no_new_privs` set.
    pub no_new_privs: bool,
    /// Every program the session starts is decided by the policies as it starts (seccomp
    /// user notification on `execve`).
    #[serde(default)]
    pub exec_decisions: bool,
    /// The session runs in its own PID namespace (it dies with the server and cannot see
    /// processes outside it) with its own `/proc` in a private mount namespace.
    pub pid_namespace: bool,
    /// The session has a network namespace of its own: its servers on `127.0.0.1` answer
    /// its own clients, and nothing routes out.
    #[serde(default)]
    pub private_network: bool,
    /// Connections leave the session's own network through the egress broker, each
    /// decided by the policies.
    #[serde(default)]
    pub egress_broker: bool,
    /// The resource limits enforced, and how.
    pub resources: ResourceReport,
    /// Paths the shell may write.
    pub writable: Vec<PathBuf>,
    /// The home the shell cannot read (but for its toolchains and caches), when closed.
    #[serde(default)]
    pub closed_home: Option<PathBuf>,
    /// What is missing, for humans.
    pub notes: Vec<String>,
}

/// Which cgroup version a session group lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CgroupVersion {
    /// The unified hierarchy.
    V2,
    /// Per-controller hierarchies.
    V1,
}

/// Resource limits as enforced (a limit that is `None` here is not enforced).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceReport {
    /// The session's cgroup, when one could be created.
    pub cgroup: Option<CgroupVersion>,
    /// Processes alive at once (cgroup `pids.max`, or `RLIMIT_NPROC` for a run-as user).
    pub processes: Option<u64>,
    /// Memory (cgroup: the whole session; `RLIMIT_AS`: each process).
    pub memory_bytes: Option<u64>,
    /// True when `memory_bytes` binds each process (`RLIMIT_AS`), not the session.
    pub memory_per_process: bool,
    /// CPU quota in percent of one CPU (cgroup only).
    pub cpu_percent: Option<u32>,
    /// Open descriptors per process (`RLIMIT_NOFILE`).
    pub open_files: Option<u64>,
    /// Bytes per written file (`RLIMIT_FSIZE`).
    pub file_bytes: Option<u64>,
}

/// Why a sandbox could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// The kernel has no Landlock and the operator did not allow best effort.
    #[error("this kernel does not support Landlock, so profile `{0}` cannot be enforced; choose profile `off` or allow best effort")]
    NoLandlock(&'static str),
    /// Building the Landlock ruleset failed.
    #[error("cannot build the Landlock ruleset: {0}")]
    Landlock(String),
    /// Building the seccomp filter failed.
    #[error("cannot build the seccomp filter: {0}")]
    Seccomp(String),
    /// A path in the configuration is unusable.
    #[error("sandbox path {path}: {message}")]
    Path {
        /// The path.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}
