//! Opening a session over SSH or in a Docker container: which shell the target has, the
//! remote helper and its sandbox, the runtime guard there, and the remote limits.

use super::state::{current, who_of, Origin, Redial, Session, Started};
use crate::config::SessionConfig;
use crate::frame;
use crate::remote::Control;
use crate::result::SessionError;
use crate::sandbox::Enforcement;
use crate::shell::Shell;
use execkit_audit::Who;
use execkit_engine::{DecisionEnv, Transport};
use execkit_protect::{Protector, Redactor};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// What a remote shell start yields: the shell, the remote home, the start directory, the
/// environment it started with, what is enforced there, and (without the helper) the
/// shell's `/proc/PID/limits` text.
pub(super) type RemoteStart = (
    Shell,
    PathBuf,
    String,
    Vec<(String, String)>,
    Enforcement,
    Option<String>,
);

/// Starts the shell on a remote target: under the helper wherever it can run there (the
/// sandbox, the lifetime and the framing of a local session), else — unless the operator
/// requires the sandbox — a plain shell guarded by the policies alone.
pub(super) async fn start_remote_shell(
    control: &Control,
    config: &SessionConfig,
    sandbox: &crate::remote_sandbox::RemoteSandbox,
    default_workspace: &str,
    dialect: frame::Dialect,
    guard: RemoteGuardInfo,
) -> Result<RemoteStart, SessionError> {
    let refuse = |why: String| {
        SessionError::SandboxRequired(format!(
            "{why}; the operator requires the sandbox on remote targets (require_sandbox), so no session was opened"
        ))
    };
    let nonce = frame::random_hex(16).map_err(SessionError::Spawn)?;
    let unavailable = match crate::remote_helper::prepare(control, &sandbox.helper, &nonce).await {
        Ok(launch) => {
            let ephemeral = matches!(control, Control::Docker(d) if d.helper_mounted());
            let relayed =
                matches!(control, Control::Docker(d) if d.helper_mounted() && d.network_none());
            let start = helper_start(
                config,
                sandbox,
                default_workspace,
                dialect,
                (ephemeral, relayed),
            );
            let decider = start.exec_decisions.then(|| guard.decider_for(config));
            match Shell::spawn_helper(control.clone(), launch, &start, &nonce, dialect, decider)
                .await
            {
                Ok((mut shell, ready)) => {
                    let mut enforcement = ready.enforcement.clone();
                    enforcement.notes.insert(
                        0,
                        format!(
                            "enforced on the target by {} ({}, kernel {})",
                            ready.version, ready.machine, ready.kernel
                        ),
                    );
                    if sandbox.require && enforcement.level != crate::sandbox::Level::Full {
                        shell.kill_all();
                        return Err(refuse(format!(
                            "the target's kernel enforces only part of the sandbox ({})",
                            enforcement.notes.join("; ")
                        )));
                    }
                    if sandbox.require && start.exec_decisions && !enforcement.exec_decisions {
                        shell.kill_all();
                        return Err(refuse(format!(
                            "the target does not let programs be decided at their start ({})",
                            enforcement.notes.join("; ")
                        )));
                    }
                    let env = ready.env.clone();
                    return Ok((
                        shell,
                        PathBuf::from(&ready.home),
                        ready.workspace.clone(),
                        env,
                        enforcement,
                        None,
                    ));
                }
                Err(e) => e.to_string(),
            }
        }
        Err(why) => why,
    };
    if sandbox.require {
        return Err(refuse(format!("no sandbox on the target: {unavailable}")));
    }
    let setup = crate::remote_limits::ulimit_line(&config.limits.resources, dialect);
    let shell = Shell::spawn_remote(control.clone(), &setup, dialect).await?;
    let pid = shell.pid;
    // The remote home and start directory, and the environment the shell started with,
    // whose sensitive values are redacted.
    let (_, facts) = control
        .run(&format!(
            "printf '%s\\n' \"$HOME\"; readlink /proc/{pid}/cwd; cat /proc/{pid}/limits | tr '\\n' '\\036'; echo; env"
        ))
        .await
        .ok_or_else(|| SessionError::NotReady("the remote host does not answer".into()))?;
    let mut lines = facts.lines();
    let home = PathBuf::from(lines.next().unwrap_or("/").trim());
    let start = lines.next().unwrap_or("/").trim().to_string();
    let limits = lines.next().unwrap_or("").replace('\x1e', "\n");
    let env: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut enforcement = crate::remote::no_sandbox_here();
    enforcement.notes.push(format!(
        "no sandbox on the target (no remote helper: {unavailable}); the policies are the guard, and background processes can outlive the session"
    ));
    Ok((shell, home, start, env, enforcement, Some(limits)))
}

/// The helper's [`execkit_helper::msg::Start`] for this session.
pub(super) fn helper_start(
    config: &SessionConfig,
    sandbox: &crate::remote_sandbox::RemoteSandbox,
    default_workspace: &str,
    dialect: frame::Dialect,
    (ephemeral_container, relayed): (bool, bool),
) -> execkit_helper::msg::Start {
    let res = &config.limits.resources;
    execkit_helper::msg::Start {
        profile: sandbox.profile,
        workspace: sandbox
            .workspace
            .clone()
            .unwrap_or_else(|| default_workspace.to_string()),
        create_workspace: true,
        writable: sandbox.writable.clone(),
        deny_read: sandbox.deny_read.clone(),
        home: sandbox.home.clone(),
        allow_best_effort: !sandbox.require,
        namespaces: sandbox.namespaces,
        rlimits: execkit_sandbox::Rlimits {
            nofile: res.open_files,
            fsize: res.file_bytes,
            nproc: res.processes,
            address_space: None,
        },
        shell: match dialect {
            frame::Dialect::Bash => execkit_helper::msg::ShellKind::Bash,
            frame::Dialect::Posix => execkit_helper::msg::ShellKind::Sh,
        },
        env: crate::remote::prelude_env(),
        idle_secs: crate::helper_link::IDLE_SECS,
        own_pid_namespace: ephemeral_container,
        exec_decisions: config.exec_decisions && sandbox.profile != crate::sandbox::Profile::Off,
        broker: remote_broker(config, sandbox, relayed),
    }
}

/// The helper's egress broker, where the session's network is `policy` and its own (the
/// profile gives it none of the host's) and the server decides its connections. With
/// `relayed` (an ephemeral container whose network is `none`) the helper relays clients
/// to this server's broker instead, which decides and dials.
fn remote_broker(
    config: &SessionConfig,
    sandbox: &crate::remote_sandbox::RemoteSandbox,
    relayed: bool,
) -> Option<execkit_helper::msg::BrokerStart> {
    let wanted = sandbox.network == crate::egress::NetworkMode::Policy
        && (sandbox.namespaces || relayed)
        && config.exec_decisions
        && sandbox.profile != crate::sandbox::Profile::Off
        && !sandbox.profile.network();
    wanted.then(|| execkit_helper::msg::BrokerStart {
        port: crate::egress::BROKER_PORT,
        env: crate::egress::proxy_environment()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        hosts: sandbox.egress.hosts.clone(),
        relay: relayed,
    })
}

/// What a remote session's runtime decisions need from the session: its id, how it is
/// recorded, and the target the policies see.
pub(super) struct RemoteGuardInfo {
    pub(super) id: String,
    pub(super) who: Who,
    pub(super) target: execkit_engine::Target,
}

impl RemoteGuardInfo {
    pub(super) fn of(origin: &Origin, id: &str, config: &SessionConfig) -> RemoteGuardInfo {
        let mut target = execkit_engine::Target::default();
        if let Origin::Remote {
            transport,
            host,
            container,
            user,
            ..
        } = origin
        {
            target.transport = *transport;
            target.host = host.clone();
            target.container = container.clone();
            target.remote_user = user.clone();
        }
        RemoteGuardInfo {
            id: id.to_string(),
            who: who_of(origin, id, config),
            target,
        }
    }

    /// The decider, made once the helper has said where the shell runs.
    pub(super) fn decider_for(self, config: &SessionConfig) -> crate::exec_guard::DeciderFor {
        let config = config.clone();
        Box::new(move |ready: &execkit_helper::msg::Ready| {
            let mut env = DecisionEnv::local(&ready.workspace, &ready.home);
            env.identity = config.identity.clone();
            env.identity.session_id = self.id.clone();
            env.target = self.target.clone();
            let mut secrets = config.secrets.clone();
            secrets.add_env(
                ready.env.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                &config.secret_env,
            );
            let p = Protector::new(Redactor::new(&secrets), config.limits.capture);
            crate::exec_guard::RuntimeDecider::new(crate::exec_guard::GuardSpec {
                engine: config.engine.clone(),
                env,
                shell: PathBuf::new(),
                redact: Arc::new(move |t: &str| p.redact_text(t).text),
                who: self.who,
                log: config.audit.clone(),
                observer: config.observer.clone(),
                approver: config.runtime_approver.clone(),
                approval_timeout: Duration::from_secs(300),
                live_paths: false,
            })
        })
    }
}

impl Session {
    /// Opens a session on an SSH host: the connection is checked against the operator's
    /// known_hosts and authenticated with the operator's credentials, then a persistent
    /// bash runs in its own channel. No kernel sandbox stands behind it: the policies are
    /// the guard (the decision environment names the transport and host).
    pub async fn ssh(
        target: &crate::ssh::SshTarget,
        settings: &crate::ssh::SshSettings,
        config: SessionConfig,
    ) -> Result<Session, SessionError> {
        let conn = crate::ssh::SshConnection::connect(settings, target)
            .await
            .map_err(|e| SessionError::Transport(Box::new(e)))?;
        let origin = Origin::Remote {
            control: std::sync::Mutex::new(Control::Ssh(Arc::new(conn))),
            redial: Some(Box::new(Redial::Ssh(target.clone(), settings.clone()))),
            dialect: frame::Dialect::Bash,
            transport: Transport::Ssh,
            host: Some(target.host.to_ascii_lowercase()),
            container: None,
            user: Some(target.user.clone()),
            sandbox: Box::new(settings.sandbox.clone()),
            default_workspace: "~/execkit-work",
        };
        let s = Session::remote(origin, config, settings.allow_sh).await?;
        s.opened().await
    }

    /// Opens a session in a Docker container: attached to a running one, or in a hardened
    /// ephemeral one removed when the session closes.
    pub async fn docker(
        target: &crate::docker::DockerTarget,
        settings: &crate::docker::DockerSettings,
        config: SessionConfig,
    ) -> Result<Session, SessionError> {
        let conn = crate::docker::DockerConnection::open(settings, target)
            .await
            .map_err(|e| SessionError::Transport(Box::new(e)))?;
        let container = conn.container().to_string();
        let default_workspace = match target {
            crate::docker::DockerTarget::Image(_) => "/work",
            _ => ".",
        };
        let origin = Origin::Remote {
            control: std::sync::Mutex::new(Control::Docker(Arc::new(conn))),
            redial: None,
            dialect: frame::Dialect::Bash,
            transport: Transport::Docker,
            host: None,
            container: Some(container),
            user: None,
            sandbox: Box::new(settings.sandbox.clone()),
            default_workspace,
        };
        let s = Session::remote(origin, config, settings.allow_sh).await?;
        s.opened().await
    }

    pub(super) async fn remote(
        mut origin: Origin,
        mut config: SessionConfig,
        allow_sh: bool,
    ) -> Result<Session, SessionError> {
        let Origin::Remote {
            control,
            transport,
            dialect,
            ..
        } = &mut origin
        else {
            return Err(SessionError::NotReady("not a remote origin".into()));
        };
        let control = current(control);
        // bash, or `sh` where there is none and the operator allowed it.
        let has_bash = control
            .run("command -v bash >/dev/null 2>&1 && echo bash")
            .await
            .is_some_and(|(_, out)| out.trim() == "bash");
        let mut sh_note = None;
        if !has_bash {
            if !allow_sh {
                control.close().await;
                return Err(SessionError::NotReady(format!(
                    "the {} target has no bash: execkit frames commands with bash and its policies judge bash syntax; the operator can allow a POSIX sh (allow_sh = true), which loses bash syntax and job control",
                    transport.as_str()
                )));
            }
            *dialect = frame::Dialect::Posix;
            sh_note = Some(
                "no bash on the target: commands run under sh (the operator allowed it). Policies still judge bash syntax; bash-only syntax fails; without job control a timeout stops the running program only (the rest of the command line still runs)"
                    .to_string(),
            );
        }
        let dialect = *dialect;
        let id = frame::random_hex(8).map_err(SessionError::Spawn)?;
        let guard_info = RemoteGuardInfo::of(&origin, &id, &config);
        let (sandbox, default_workspace) = match &origin {
            Origin::Remote {
                sandbox,
                default_workspace,
                ..
            } => (sandbox.as_ref().clone(), *default_workspace),
            Origin::Local => (crate::remote_sandbox::RemoteSandbox::off(), "."),
        };
        let started = start_remote_shell(
            &control,
            &config,
            &sandbox,
            default_workspace,
            dialect,
            guard_info,
        )
        .await;
        let (shell, home, start, env, mut enforcement, limits) = match started {
            Ok(s) => s,
            Err(e) => {
                control.close().await;
                return Err(e);
            }
        };
        config.workspace = PathBuf::from(&start);
        let mut secrets = config.secrets.clone();
        secrets.add_env(
            env.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            &config.secret_env,
        );
        let protector = Protector::new(Redactor::new(&secrets), config.limits.capture);
        enforcement.notes.extend(sh_note);
        if let Some(limits) = limits {
            let (resources, notes) =
                crate::remote_limits::report(&limits, &config.limits.resources);
            enforcement.resources = resources;
            enforcement.notes.extend(notes);
        }
        let started = Started {
            id,
            origin,
            protector,
            home,
            dir: PathBuf::new(),
            tmp: PathBuf::new(),
            path: None,
            shell,
            cwd: start,
            enforcement,
        };
        Ok(Session::assemble(started, config))
    }
}
