//! Who is asking and where the command will run: supplied by the operator's configuration
//! and the runtime, never by the command text.

/// How the command reaches its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Transport {
    /// A local shell.
    #[default]
    Local,
    /// A shell on an SSH host.
    Ssh,
    /// A shell in a Docker container.
    Docker,
}

impl Transport {
    /// The Cedar enum id.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Local => "local",
            Transport::Ssh => "ssh",
            Transport::Docker => "docker",
        }
    }
}

/// A transport name that is not `local`, `ssh` or `docker`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown transport `{0}` (expected local, ssh or docker)")]
pub struct UnknownTransport(pub String);

impl std::str::FromStr for Transport {
    type Err = UnknownTransport;
    fn from_str(s: &str) -> Result<Self, UnknownTransport> {
        match s {
            "local" => Ok(Transport::Local),
            "ssh" => Ok(Transport::Ssh),
            "docker" => Ok(Transport::Docker),
            other => Err(UnknownTransport(other.to_string())),
        }
    }
}

/// The agent on whose behalf commands run (the Cedar principal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `Agent` entity id.
    pub agent: String,
    /// Accountable human (`Operator` entity id).
    pub operator: String,
    /// Extra `Group`s the agent is in (besides those in the entities file).
    pub groups: Vec<String>,
    /// Agent kind (`claude-code`, `ci-bot`, ...).
    pub kind: String,
    /// Session id (for audit and policies).
    pub session_id: String,
    /// Operator who approved this command, after a human approval step.
    pub approved_by: Option<String>,
}

impl Default for Identity {
    fn default() -> Self {
        Identity {
            agent: "agent".into(),
            operator: "operator".into(),
            groups: Vec::new(),
            kind: "agent".into(),
            session_id: "dry-run".into(),
            approved_by: None,
        }
    }
}

/// Where the command runs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Target {
    /// Transport.
    pub transport: Transport,
    /// SSH host or Docker daemon host.
    pub host: Option<String>,
    /// Docker container.
    pub container: Option<String>,
    /// Remote user.
    pub remote_user: Option<String>,
}

/// Everything a decision needs besides the command text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionEnv {
    /// The principal.
    pub identity: Identity,
    /// Where it runs.
    pub target: Target,
    /// The agent's workspace (canonical absolute path).
    pub workspace: String,
    /// Current directory of the session, if known.
    pub cwd: Option<String>,
    /// Home directory on the target.
    pub home: String,
}

impl DecisionEnv {
    /// A local environment with a workspace; cwd defaults to the workspace.
    pub fn local(workspace: &str, home: &str) -> Self {
        let ws = execkit_grammar::resolve_path("/", workspace);
        DecisionEnv {
            identity: Identity::default(),
            target: Target::default(),
            cwd: Some(ws.clone()),
            workspace: ws,
            home: execkit_grammar::resolve_path("/", home),
        }
    }
}
