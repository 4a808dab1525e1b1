//! The local sandbox: Landlock filesystem, TCP and scope rules, a seccomp deny-list, and
//! `no_new_privs`, applied at spawn to the shell and inherited by everything it starts.
//!
//! Everything is built in the parent ([`prepare`]); the child only applies it between
//! `fork` and `exec` ([`Prepared::apply_in_child`]), Landlock first, then seccomp, so a
//! failure there fails the spawn instead of running unconfined.

pub(crate) mod cgroup;
pub(crate) mod namespaces;
pub(crate) mod rlimits;

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub use execkit_sandbox::home::HomeAccess;
pub(crate) use execkit_sandbox::prepared::Prepared;
pub use execkit_sandbox::{
    kernel_landlock_abi, CgroupVersion, Enforcement, Level, Profile, ResourceReport, SandboxError,
    UnknownProfile,
};

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
    /// The session's home: closed but for toolchains and caches (the default).
    #[serde(default)]
    pub home: HomeAccess,
    /// Where a session without the host's network may connect: through the egress
    /// broker, decided by the policies (`policy`, the default), or nowhere (`off`).
    #[serde(default)]
    pub network: crate::egress::NetworkMode,
    /// The broker's settings.
    #[serde(default)]
    pub egress: crate::egress::EgressConfig,
}

/// Builds the sandbox for a local shell whose workspace, home and private tmp dir are given.
pub(crate) fn prepare(
    config: &SandboxConfig,
    workspace: &Path,
    home: &Path,
    private_tmp: &Path,
) -> Result<Prepared, SandboxError> {
    execkit_sandbox::prepared::prepare(&execkit_sandbox::prepared::Request {
        profile: config.profile,
        workspace,
        private_tmp,
        writable: &config.writable,
        deny_read: &config.deny_read,
        home: config.home.closing(home),
        allow_best_effort: config.allow_best_effort,
        namespaces: namespaces::available(),
        private_network: namespaces::available(),
        no_namespace_note: "no PID namespace (needs root or CAP_SYS_ADMIN): background processes can outlive the server and processes outside the session are visible",
    })
}
