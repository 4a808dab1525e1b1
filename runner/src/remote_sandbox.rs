//! What the operator asks of the sandbox on a remote target (an SSH host or a container),
//! where the remote helper (`execkit-helper`) applies it.
//!
//! The helper comes from this server (uploaded over SSH into the remote account's cache,
//! named by its SHA-256 and verified before every use; bind-mounted into ephemeral
//! containers; copied into attached ones through the Docker API) or from the operator (a
//! path installed on the host). Without it a remote session has only the policies; with
//! [`RemoteSandbox::require`] such a session is refused before any command runs.

use crate::sandbox::Profile;

/// Paths in the remote account's home that hold credentials: unreadable by default.
pub const CREDENTIAL_PATHS: &[&str] = &[
    "~/.ssh",
    "~/.gnupg",
    "~/.aws",
    "~/.azure",
    "~/.config/gcloud",
    "~/.config/gh",
    "~/.kube",
    "~/.docker",
    "~/.netrc",
    "~/.git-credentials",
    "~/.pgpass",
    "~/.vault-token",
    "~/.npmrc",
    "~/.pypirc",
    "~/.cargo/credentials",
    "~/.cargo/credentials.toml",
    "~/.cache/execkit",
];

/// Where the helper comes from; in configuration files `"bundled"`, `"off"` or a path.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(from = "String")]
#[non_exhaustive]
pub enum HelperSource {
    /// The helper this server carries, uploaded or copied to the target.
    #[default]
    Bundled,
    /// A helper the operator installed at this path on the target.
    Installed(String),
    /// No helper: the remote session has no sandbox (the policies are the guard).
    Off,
}

impl From<String> for HelperSource {
    fn from(s: String) -> HelperSource {
        match s.as_str() {
            "bundled" => HelperSource::Bundled,
            "off" => HelperSource::Off,
            _ => HelperSource::Installed(s),
        }
    }
}

/// The operator's sandbox for remote sessions (`[ssh.sandbox]`, `[docker.sandbox]` in the
/// MCP server's configuration).
///
/// ```
/// use execkit_runner::remote_sandbox::{HelperSource, RemoteSandbox};
/// let s: RemoteSandbox = toml::from_str("require = true\nhelper = \"/opt/execkit-helper\"").unwrap();
/// assert!(s.require);
/// assert_eq!(s.helper, HelperSource::Installed("/opt/execkit-helper".into()));
/// assert_eq!(s.deny_read, RemoteSandbox::default().deny_read);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct RemoteSandbox {
    /// Where the helper comes from.
    pub helper: HelperSource,
    /// Refuse a session that cannot get the whole sandbox (no helper, or the remote
    /// kernel cannot enforce every layer).
    pub require: bool,
    /// The profile (as locally: `workspace` by default).
    pub profile: Profile,
    /// The workspace on the target (`~/` is the remote home; created if missing). `None`:
    /// the transport's default (`~/execkit-work` over SSH, `/work` in an ephemeral
    /// container, the container's working directory when attached).
    pub workspace: Option<String>,
    /// Extra writable paths on the target.
    pub writable: Vec<String>,
    /// Unreadable paths on the target (default: [`CREDENTIAL_PATHS`]).
    pub deny_read: Vec<String>,
    /// The remote account's home: closed but for toolchains and caches (the default).
    pub home: execkit_sandbox::home::HomeAccess,
    /// Give the shell PID and mount namespaces where the account may create them.
    pub namespaces: bool,
    /// Where a session without the host's network may connect (as locally): `policy`
    /// gives the shell a network of its own with the helper's egress broker, each
    /// connection decided by the server; `off` its own loopback only where it can have
    /// one, otherwise no sockets but Unix ones.
    pub network: crate::egress::NetworkMode,
    /// The broker's settings (names mapped to addresses on the target's side).
    pub egress: crate::egress::EgressConfig,
}

impl Default for RemoteSandbox {
    fn default() -> Self {
        RemoteSandbox {
            helper: HelperSource::Bundled,
            require: false,
            profile: Profile::Workspace,
            workspace: None,
            writable: Vec::new(),
            deny_read: CREDENTIAL_PATHS.iter().map(|s| s.to_string()).collect(),
            home: execkit_sandbox::home::HomeAccess::default(),
            namespaces: true,
            network: crate::egress::NetworkMode::default(),
            egress: crate::egress::EgressConfig::default(),
        }
    }
}

impl RemoteSandbox {
    /// No helper at all (the remote session is guarded by the policies alone).
    pub fn off() -> RemoteSandbox {
        RemoteSandbox {
            helper: HelperSource::Off,
            ..RemoteSandbox::default()
        }
    }
}
