//! The local sandbox: Landlock filesystem, TCP and scope rules, a seccomp deny-list, and
//! `no_new_privs`, applied at spawn to the shell and inherited by everything it starts.
//!
//! Everything is built in the parent ([`prepare`]); the child only applies it between
//! `fork` and `exec` ([`Prepared::apply_in_child`]), Landlock first, then seccomp, so a
//! failure there fails the spawn instead of running unconfined.

pub(crate) mod cgroup;
mod landlock_rules;
pub(crate) mod namespaces;
pub(crate) mod rlimits;
mod seccomp_filter;

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub use cgroup::CgroupVersion;
pub use landlock_rules::kernel_landlock_abi;

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

/// Operator settings for the sandbox.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SandboxConfig {
    /// The profile.
    pub profile: Profile,
    /// Extra paths made writable (besides the workspace and the private tmp dir).
    #[serde(default)]
    pub writable: Vec<PathBuf>,
    /// Paths made unreadable (everything else is readable).
    #[serde(default)]
    pub deny_read: Vec<PathBuf>,
    /// Start even if the kernel cannot enforce Landlock (the session reports `none`).
    #[serde(default)]
    pub allow_best_effort: bool,
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
    /// The session runs in its own PID namespace (it dies with the server and cannot see
    /// processes outside it) with its own `/proc` in a private mount namespace.
    pub pid_namespace: bool,
    /// The resource limits enforced, and how.
    pub resources: ResourceReport,
    /// Paths the shell may write.
    pub writable: Vec<PathBuf>,
    /// What is missing, for humans.
    pub notes: Vec<String>,
}

impl Enforcement {
    /// What a remote session gets: no sandbox on this side of the connection.
    pub fn remote(transport: execkit_engine::Transport) -> Enforcement {
        Enforcement {
            profile: Profile::Off,
            level: Level::None,
            landlock_abi: 0,
            filesystem: false,
            landlock_network: false,
            scopes: false,
            seccomp: false,
            no_new_privs: false,
            pid_namespace: false,
            resources: ResourceReport::default(),
            writable: Vec::new(),
            notes: vec![format!(
                "{} session: no local sandbox applies on the target; the policies are the guard",
                transport.as_str()
            )],
        }
    }
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

/// A sandbox ready to be applied in a child.
pub(crate) struct Prepared {
    /// Start the shell in its own PID and mount namespaces.
    pub namespaces: bool,
    /// Add a read rule for the session's own `/proc` in the child (see
    /// [`landlock_rules::add_own_proc`]).
    own_proc_rule: bool,
    ruleset: std::sync::Mutex<Option<landlock::RulesetCreated>>,
    expect_landlock: bool,
    bpf: Option<seccompiler::BpfProgram>,
    /// What will be enforced.
    pub enforcement: Enforcement,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("enforcement", &self.enforcement)
            .finish_non_exhaustive()
    }
}

/// Builds the sandbox for a shell whose workspace and private tmp dir are given.
pub(crate) fn prepare(
    config: &SandboxConfig,
    workspace: &Path,
    private_tmp: &Path,
) -> Result<Prepared, SandboxError> {
    let abi = kernel_landlock_abi();
    let profile = config.profile;
    let ns = namespaces::available();
    let ns_note = || {
        "no PID namespace (needs root or CAP_SYS_ADMIN): background processes can outlive the server and processes outside the session are visible".to_string()
    };
    if profile == Profile::Off {
        let mut notes = vec!["sandbox profile `off`: the operator opted out".to_string()];
        if !ns {
            notes.push(ns_note());
        }
        return Ok(Prepared {
            namespaces: ns,
            own_proc_rule: false,
            ruleset: std::sync::Mutex::new(None),
            expect_landlock: false,
            bpf: None,
            enforcement: Enforcement {
                profile,
                level: Level::None,
                landlock_abi: abi,
                filesystem: false,
                landlock_network: false,
                scopes: false,
                seccomp: false,
                no_new_privs: false,
                pid_namespace: ns,
                resources: ResourceReport::default(),
                writable: Vec::new(),
                notes,
            },
        });
    }
    if abi < 1 && !config.allow_best_effort {
        return Err(SandboxError::NoLandlock(profile.as_str()));
    }
    let mut writable: Vec<PathBuf> = vec![private_tmp.to_path_buf()];
    if profile != Profile::ReadOnly {
        writable.push(workspace.to_path_buf());
    }
    writable.extend(config.writable.iter().cloned());
    for p in &writable {
        if !p.exists() {
            return Err(SandboxError::Path {
                path: p.clone(),
                message: "does not exist".into(),
            });
        }
    }
    let mut notes = Vec::new();
    for d in &config.deny_read {
        if let Some(w) = writable.iter().find(|w| d.starts_with(w)) {
            notes.push(format!(
                "{} stays readable: it is inside the writable {} (Landlock rules only add access)",
                d.display(),
                w.display()
            ));
        }
    }
    let (ruleset, applied) = if abi >= 1 {
        let built = landlock_rules::build(abi, &writable, &config.deny_read, !profile.network())?;
        (Some(built.ruleset), built.applied)
    } else {
        notes.push("no Landlock on this kernel: filesystem and TCP rules are not enforced".into());
        (None, landlock_rules::Applied::default())
    };
    let bpf = seccomp_filter::build(!profile.network())?;
    let full = applied.filesystem && applied.scopes && (profile.network() || applied.network) && ns;
    if !ns {
        notes.push(ns_note());
    }
    if abi >= 1 && !applied.network && !profile.network() {
        notes.push(format!(
            "Landlock ABI {abi} has no TCP rules; network is blocked by seccomp alone"
        ));
    }
    if abi >= 1 && !applied.scopes {
        notes.push(format!(
            "Landlock ABI {abi} has no signal/abstract-socket scoping"
        ));
    }
    Ok(Prepared {
        namespaces: ns,
        own_proc_rule: ns
            && ruleset.is_some()
            && landlock_rules::proc_not_denied(&config.deny_read),
        expect_landlock: ruleset.is_some(),
        ruleset: std::sync::Mutex::new(ruleset),
        bpf: Some(bpf),
        enforcement: Enforcement {
            profile,
            level: if full {
                Level::Full
            } else if applied.filesystem {
                Level::Partial
            } else {
                Level::None
            },
            landlock_abi: abi,
            filesystem: applied.filesystem,
            landlock_network: applied.network,
            scopes: applied.scopes,
            seccomp: true,
            no_new_privs: true,
            pid_namespace: ns,
            resources: ResourceReport::default(),
            writable,
            notes,
        },
    })
}

impl Prepared {
    /// Applies the sandbox to the calling process. Only for a forked child before `exec`.
    ///
    /// Sets `no_new_privs`, restricts with Landlock (failing unless the kernel enforces
    /// what the parent expected) and installs the seccomp filter.
    pub(crate) fn apply_in_child(&self) -> std::io::Result<()> {
        if self.bpf.is_none() && !self.expect_landlock {
            return Ok(());
        }
        // SAFETY: prctl with constant arguments.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let ruleset = match self.ruleset.lock() {
            Ok(mut g) => g.take(),
            Err(_) => return Err(std::io::Error::other("sandbox ruleset lock poisoned")),
        };
        if let Some(mut ruleset) = ruleset {
            if self.own_proc_rule {
                ruleset = landlock_rules::add_own_proc(ruleset)?;
            }
            if namespaces::PRIVATE_PTS.load(std::sync::atomic::Ordering::SeqCst) {
                ruleset = landlock_rules::add_own_pts(ruleset)?;
            }
            let status = ruleset
                .restrict_self()
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            if status.ruleset == landlock::RulesetStatus::NotEnforced {
                return Err(std::io::Error::other("Landlock was not enforced"));
            }
        } else if self.expect_landlock {
            return Err(std::io::Error::other("Landlock ruleset already used"));
        }
        if let Some(bpf) = &self.bpf {
            seccompiler::apply_filter(bpf).map_err(|e| std::io::Error::other(e.to_string()))?;
        }
        Ok(())
    }
}
