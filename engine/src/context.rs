//! Who is asking and where the command will run: supplied by the operator's configuration
//! and the runtime, never by the command text.

/// How the command reaches its target.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
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
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
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
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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
    /// Live-session truth: lexical paths whose real location (through
    /// symlinks, on the target) differs, as found by the runner just before deciding.
    /// Each such path is judged at both places. Empty in a dry run.
    pub real_paths: std::collections::BTreeMap<String, String>,
    /// Live-session truth: program names that the session's real `PATH` resolves to a file
    /// outside the system's directories (the workspace, home, /tmp), by name. Such a
    /// program is judged as that file (`path:/work/node_modules/.bin/jest`). Empty in a
    /// dry run.
    pub real_programs: std::collections::BTreeMap<String, String>,
    /// A runtime decision's caller: the executable of the process that is starting the
    /// program (`/usr/bin/make` for a recipe's compiler), offered to the policies as
    /// `context.started_by` on its exec facts. `None` when deciding typed text.
    pub started_by: Option<String>,
    /// Aliases and functions the session defined in its earlier commands (a later command
    /// named by such an alias is read as its expansion). Empty in a dry run.
    pub known: execkit_grammar::Definitions,
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
            real_paths: Default::default(),
            real_programs: Default::default(),
            started_by: None,
            known: Default::default(),
        }
    }
}

/// Where a session would run, as the `session_open` request names it.
///
/// ```
/// use execkit_engine::OpenTarget;
/// assert_eq!(OpenTarget::local().id(), "local");
/// assert_eq!(
///     OpenTarget::ssh("build-1.internal", Some(2222), Some("deploy")).id(),
///     "ssh:deploy@build-1.internal:2222"
/// );
/// assert_eq!(OpenTarget::docker_image("alpine:3.20").id(), "docker:image:alpine:3.20");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpenTarget {
    /// The transport.
    pub transport: Transport,
    /// SSH host (lower-cased).
    pub host: Option<String>,
    /// SSH port.
    pub port: Option<u16>,
    /// SSH user.
    pub user: Option<String>,
    /// An existing Docker container to attach to.
    pub container: Option<String>,
    /// The image of an ephemeral Docker container.
    pub image: Option<String>,
}

impl OpenTarget {
    fn empty(transport: Transport) -> OpenTarget {
        OpenTarget {
            transport,
            host: None,
            port: None,
            user: None,
            container: None,
            image: None,
        }
    }

    /// A local session.
    pub fn local() -> OpenTarget {
        OpenTarget::empty(Transport::Local)
    }

    /// An SSH session (port 22 and the operator's user when not given).
    pub fn ssh(host: &str, port: Option<u16>, user: Option<&str>) -> OpenTarget {
        let mut t = OpenTarget::empty(Transport::Ssh);
        t.host = Some(host.to_ascii_lowercase());
        t.port = port;
        t.user = user.map(str::to_string);
        t
    }

    /// A session attached to an existing Docker container.
    pub fn docker_container(name: &str) -> OpenTarget {
        let mut t = OpenTarget::empty(Transport::Docker);
        t.container = Some(name.to_string());
        t
    }

    /// A session in an ephemeral Docker container from an image.
    pub fn docker_image(image: &str) -> OpenTarget {
        let mut t = OpenTarget::empty(Transport::Docker);
        t.image = Some(image.to_string());
        t
    }

    /// Why the target cannot be judged, if it cannot: names with characters that would
    /// make its id ambiguous (`@`, `:`, `*`, spaces) or empty names. Such targets are denied.
    pub fn malformed(&self) -> Option<String> {
        let host_ok = |h: &str| {
            !h.is_empty()
                && h.len() <= 253
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        };
        let name_ok = |u: &str| {
            !u.is_empty()
                && u.len() <= 128
                && u.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        };
        let image_ok = |i: &str| {
            !i.is_empty()
                && i.len() <= 255
                && i.bytes().all(|b| {
                    b.is_ascii_alphanumeric()
                        || matches!(b, b'.' | b'-' | b'_' | b'/' | b':' | b'@')
                })
        };
        match self.transport {
            Transport::Ssh => match &self.host {
                Some(h) if !host_ok(h) => Some(format!("`{h}` is not a host name or address")),
                None => Some("an SSH target needs a host".into()),
                _ => match &self.user {
                    Some(u) if !name_ok(u) => Some(format!("`{u}` is not a user name")),
                    _ => None,
                },
            },
            Transport::Docker => match (&self.container, &self.image) {
                (Some(c), _) if !name_ok(c) => Some(format!("`{c}` is not a container name")),
                (None, Some(i)) if !image_ok(i) => Some(format!("`{i}` is not an image name")),
                (None, None) => Some("a Docker target needs a container or an image".into()),
                _ => None,
            },
            _ => None,
        }
    }

    /// Reads a target written as its id (the inverse of [`OpenTarget::id`]).
    ///
    /// ```
    /// use execkit_engine::OpenTarget;
    /// let t = OpenTarget::parse("ssh:deploy@build-1.internal:2222").unwrap();
    /// assert_eq!(t, OpenTarget::ssh("build-1.internal", Some(2222), Some("deploy")));
    /// assert!(OpenTarget::parse("ftp:x").is_none());
    /// ```
    pub fn parse(id: &str) -> Option<OpenTarget> {
        if id == "local" {
            return Some(OpenTarget::local());
        }
        if let Some(rest) = id.strip_prefix("ssh:") {
            let (user, hostport) = match rest.split_once('@') {
                Some((u, h)) => ((u != "*").then_some(u), h),
                None => (None, rest),
            };
            let (host, port) = match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p.parse().ok()?)),
                None => (hostport, None),
            };
            return (!host.is_empty()).then(|| OpenTarget::ssh(host, port, user));
        }
        if let Some(c) = id.strip_prefix("docker:container:") {
            return (!c.is_empty()).then(|| OpenTarget::docker_container(c));
        }
        if let Some(i) = id.strip_prefix("docker:image:") {
            return (!i.is_empty()).then(|| OpenTarget::docker_image(i));
        }
        None
    }

    /// The `SessionTarget` entity id: `local`, `ssh:USER@HOST:PORT` (`*` for an unnamed
    /// user, port 22 by default), `docker:container:NAME`, `docker:image:IMAGE`.
    pub fn id(&self) -> String {
        match self.transport {
            Transport::Ssh => format!(
                "ssh:{}@{}:{}",
                self.user.as_deref().unwrap_or("*"),
                self.host.as_deref().unwrap_or(""),
                self.port.unwrap_or(22)
            ),
            Transport::Docker => match (&self.container, &self.image) {
                (Some(c), _) => format!("docker:container:{c}"),
                (None, Some(i)) => format!("docker:image:{i}"),
                (None, None) => "docker:".to_string(),
            },
            _ => "local".to_string(),
        }
    }
}
