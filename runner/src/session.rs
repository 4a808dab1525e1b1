//! A session: one persistent shell, the policy check in front of it and the protection
//! pipeline behind it.

use crate::builder::SessionBuilder;
use crate::config::SessionConfig;
use crate::frame::{self, Split, Splitter};
use crate::remote::Control;
use crate::result::{Denial, ExecError, ExecOptions, ExecResult, LimitHit, SessionError};
use crate::sandbox::cgroup::Counters;
use crate::sandbox::Enforcement;
use crate::shell::{Chunk, Shell, ShellEvent};
use execkit_audit::{AuditEvent, CommandRecord, StreamSummary, Who};
use execkit_engine::{Decision, DecisionEnv, Transport, Verdict};
use execkit_protect::{Protector, Redactor, StreamProtector};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, Notify};

/// What a session is, for reports (`execkit doctor`, the MCP server).
#[derive(Debug, Clone, Serialize)]
pub struct SessionInfo {
    /// Session id (random).
    pub id: String,
    /// The workspace.
    pub workspace: PathBuf,
    /// The private tmp dir (`TMPDIR`).
    pub tmp: PathBuf,
    /// The shell's pid (while it runs), as its own kernel numbers it (in its PID
    /// namespace where it has one).
    pub shell_pid: Option<i32>,
    /// The remote helper's pid on the target (remote sessions under the helper).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub helper_pid: Option<i32>,
    /// The container of a Docker session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// The confinement achieved.
    pub enforcement: Enforcement,
    /// The account the shell runs as.
    pub user: String,
}

/// A persistent local shell session.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let ws = std::env::temp_dir().join(format!("execkit-doc-session-{}", std::process::id()));
/// # std::fs::create_dir_all(ws.join("src"))?;
/// use execkit_runner::Session;
/// let session = Session::builder().workspace(&ws).local().await?;
/// session.exec("cd src && export MODE=fast").await?;
/// let r = session.exec("pwd; echo $MODE").await?;
/// assert_eq!(r.stdout, format!("{}/src\nfast\n", ws.canonicalize()?.display()));
/// session.close().await;
/// # std::fs::remove_dir_all(&ws)?;
/// # Ok(()) }
/// ```
pub struct Session {
    id: String,
    config: SessionConfig,
    /// Where the shell runs (and how to start a new one on restart).
    origin: Origin,
    protector: Protector,
    home: PathBuf,
    dir: PathBuf,
    tmp: PathBuf,
    running: Arc<Running>,
    state: Mutex<State>,
    /// The cwd as last reported, readable while a command runs (the state lock is held
    /// for a command's whole run).
    last_cwd: std::sync::Mutex<String>,
    /// The shell's PATH as its last command left it (reported by the framing).
    last_path: std::sync::Mutex<Option<String>>,
    /// Aliases and functions the session's commands defined (its shell knows them), for
    /// reading later commands the way the shell will.
    known: std::sync::Mutex<execkit_grammar::Definitions>,
    /// Background processes started with [`Session::spawn`].
    processes: Arc<crate::process::table::ProcessTable>,
    /// The checkpoint store, opened at the first checkpoint.
    checkpoints: Arc<std::sync::Mutex<Option<crate::checkpoint::Store>>>,
    /// The checkpoint store on the remote side (SSH, Docker), opened at the first one.
    remote_checkpoints: tokio::sync::Mutex<Option<crate::checkpoint::RemoteStore>>,
    /// The exported variables the shell last saved, read when it ended (for `restart`).
    saved_exports: std::sync::Mutex<Option<String>>,
}

/// What [`Session::restart`] brought back from the shell before.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RestartReport {
    /// The new shell's working directory.
    pub cwd: String,
    /// What was restored: `cwd` and the names of exported variables.
    pub restored: Vec<String>,
    /// What the policies (or the shell) refused to restore, with why.
    pub refused: Vec<String>,
}

/// Where a session's shell runs.
enum Origin {
    Local,
    Remote {
        /// How control commands and new shells reach the target (replaced when `restart`
        /// reconnects).
        control: std::sync::Mutex<Control>,
        /// How to connect again after the connection was lost (SSH).
        redial: Option<Box<Redial>>,
        /// The shell there (bash, or `sh` where the operator allowed it).
        dialect: frame::Dialect,
        transport: Transport,
        /// The SSH host or the container, for policies and the audit log.
        host: Option<String>,
        container: Option<String>,
        user: Option<String>,
        /// The operator's sandbox for the target (the helper's), and the transport's
        /// default workspace there.
        sandbox: Box<crate::remote_sandbox::RemoteSandbox>,
        default_workspace: &'static str,
    },
}

/// What `restart` needs to open a lost connection again, with the same host-key check.
enum Redial {
    Ssh(crate::ssh::SshTarget, crate::ssh::SshSettings),
}

#[derive(Default)]
struct Running {
    seq: AtomicU64,
    cancel: AtomicU64,
    notify: Notify,
    /// Bytes read from the shell's stdout / stderr during the current command.
    stdout_bytes: AtomicU64,
    stderr_bytes: AtomicU64,
    /// A caller asked for a fresh preview of the output (see [`Session::progress`]).
    preview_wanted: std::sync::atomic::AtomicBool,
    /// The latest preview: protected stdout and stderr so far, complete lines only.
    preview: std::sync::Mutex<(String, String)>,
}

/// The most of each stream a progress preview shows.
pub const PREVIEW_BYTES: usize = 2048;

/// How far the running command has got (see [`Session::progress`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// Bytes read so far from stdout (before protection; framing included).
    pub stdout_bytes: u64,
    /// Bytes read so far from stderr.
    pub stderr_bytes: u64,
    /// The end of stdout so far, protected exactly as the result will be (escapes
    /// stripped, secrets redacted), complete lines only, at most [`PREVIEW_BYTES`]. It
    /// lags by one call: each call asks for a fresh one and returns the latest.
    pub stdout_tail: String,
    /// The end of stderr so far, likewise.
    pub stderr_tail: String,
}

/// A human's approval of one command whose decision was Ask.
///
/// It names the exact command and the facts that were shown to the human;
/// [`Session::exec_approved`] refuses any other command, and refuses this one if the
/// decision at run time asks about anything else (for example because the cwd changed in
/// between).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// Who approved (an `Operator` entity id; policies see it as `identity.approved_by`).
    pub approver: String,
    /// The command line approved, exactly.
    pub command: String,
    /// `(action, resource)` of every fact that needed approval when the human was asked.
    pub facts: Vec<(String, String)>,
}

impl Approval {
    /// The approval of `command`, covering every fact of `decision` (its decision) that
    /// needs one.
    pub fn of(approver: &str, command: &str, decision: &Decision) -> Approval {
        Approval {
            approver: approver.to_string(),
            command: command.to_string(),
            facts: asking_facts(decision),
        }
    }
}

/// `(action, resource)` of the facts whose verdict is Ask.
fn asking_facts(decision: &Decision) -> Vec<(String, String)> {
    decision
        .facts
        .iter()
        .filter(|f| f.verdict == Verdict::Ask)
        .map(|f| (f.action.to_string(), f.resource.clone()))
        .collect()
}

struct State {
    shell: Option<Shell>,
    gone: Option<String>,
    closed: bool,
    cwd: String,
    enforcement: Enforcement,
}

impl Session {
    /// A builder for a session: workspace, policies, profile, limits, identity, audit log
    /// and secrets, each with a safe default.
    pub fn builder() -> SessionBuilder {
        SessionBuilder::new()
    }

    /// Starts a local session: creates the private tmp dir, spawns bash under the sandbox
    /// and waits until it is ready.
    pub async fn local(config: SessionConfig) -> Result<Session, SessionError> {
        let s = Session::start_local(config).await?;
        s.opened().await
    }

    /// Records that the session opened or closed.
    fn announce(&self, event: execkit_audit::SessionEvent) -> Result<(), String> {
        self.audit(AuditEvent::Session(execkit_audit::SessionRecord {
            who: self.who(),
            event,
        }))
    }

    /// Records the opening; a session whose opening cannot be recorded is closed again.
    async fn opened(self) -> Result<Session, SessionError> {
        match self.announce(execkit_audit::SessionEvent::Opened) {
            Ok(()) => Ok(self),
            Err(why) => {
                self.close().await;
                Err(SessionError::AuditUnavailable(why))
            }
        }
    }

    /// Records a step of a human approval of `approval.command` (asked, approved,
    /// declined) in the session's audit log and event stream, redacted like every record.
    /// The approver is recorded for `Approved` and `Declined`; `reason` says why one was
    /// refused.
    pub fn record_approval(
        &self,
        event: execkit_audit::ApprovalEvent,
        approval: &Approval,
        cwd: &str,
        reason: Option<&str>,
    ) {
        let answered = event != execkit_audit::ApprovalEvent::Requested;
        let _ = self.audit(AuditEvent::Approval(execkit_audit::ApprovalRecord {
            who: self.who(),
            command: self.redact(&approval.command),
            cwd: self.redact(cwd),
            event,
            approver: answered.then(|| approval.approver.clone()),
            facts: approval
                .facts
                .iter()
                .map(|(a, r)| self.redact(&format!("{a} {r}")))
                .collect(),
            reason: reason.map(|r| self.redact(r)),
        }));
    }

    /// [`Session::local`] before its `opened` record.
    async fn start_local(config: SessionConfig) -> Result<Session, SessionError> {
        let workspace = config
            .workspace
            .canonicalize()
            .map_err(|e| SessionError::Workspace {
                path: config.workspace.display().to_string(),
                message: e.to_string(),
            })?;
        if !workspace.is_dir() {
            return Err(SessionError::Workspace {
                path: workspace.display().to_string(),
                message: "is not a directory".into(),
            });
        }
        if let Some(r) = &config.run_as {
            if !nix::unistd::geteuid().is_root() {
                return Err(SessionError::RunAsNeedsRoot(r.name.clone()));
            }
        }
        let mut config = config;
        config.workspace = workspace.clone();
        // Orphans of the shell's processes (`(cmd &)`, daemons) are re-parented to this
        // process instead of init, so they can be killed and reaped with the session.
        // SAFETY: prctl with constant arguments.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        let id = frame::random_hex(8).map_err(SessionError::Spawn)?;
        let base = config.tmp_base.clone().unwrap_or_else(std::env::temp_dir);
        crate::tmpdirs::sweep_stale(&base);
        let dir = base.join(crate::tmpdirs::session_dir_name(&id));
        let tmp = dir.join("tmp");
        make_private_dir(&dir, None).map_err(SessionError::Spawn)?;
        make_private_dir(&tmp, config.run_as.as_ref().map(|r| (r.uid, r.gid)))
            .map_err(SessionError::Spawn)?;
        let home = config
            .home
            .clone()
            .or_else(|| config.run_as.as_ref().map(|r| r.home.clone()))
            .or_else(|| std::env::var_os("HOME").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("/"));
        let mut secrets = config.secrets.clone();
        let env = crate::shell::environment(&config, &home, &tmp);
        secrets.add_env(
            env.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            &config.secret_env,
        );
        let protector = Protector::new(Redactor::new(&secrets), config.limits.capture);
        let who = Who {
            session: id.clone(),
            agent: config.identity.agent.clone(),
            operator: config.identity.operator.clone(),
            transport: "local".into(),
            target: workspace.display().to_string(),
        };
        let spec = guard_spec(&config, &id, &home, &protector, who);
        let spawned = Shell::spawn(&config, &home, &tmp, Some(spec)).await;
        let (shell, enforcement) = match spawned {
            Ok(s) => s,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        Ok(Session {
            id,
            origin: Origin::Local,
            protector,
            home,
            dir,
            tmp,
            running: Arc::new(Running::default()),
            last_cwd: std::sync::Mutex::new(workspace.display().to_string()),
            last_path: std::sync::Mutex::new(Some(crate::config::DEFAULT_PATH.to_string())),
            known: Default::default(),
            processes: crate::process::table::ProcessTable::new(config.limits.processes),
            checkpoints: Arc::default(),
            remote_checkpoints: tokio::sync::Mutex::new(None),
            saved_exports: std::sync::Mutex::new(None),
            state: Mutex::new(State {
                shell: Some(shell),
                gone: None,
                closed: false,
                cwd: workspace.display().to_string(),
                enforcement,
            }),
            config,
        })
    }

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
            .map_err(|e| SessionError::Transport(e.to_string()))?;
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
            .map_err(|e| SessionError::Transport(e.to_string()))?;
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

    async fn remote(
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
        Ok(Session {
            id,
            origin,
            protector,
            home,
            dir: PathBuf::new(),
            tmp: PathBuf::new(),
            running: Arc::new(Running::default()),
            last_cwd: std::sync::Mutex::new(start.clone()),
            last_path: std::sync::Mutex::new(None),
            known: Default::default(),
            processes: crate::process::table::ProcessTable::new(config.limits.processes),
            checkpoints: Arc::default(),
            remote_checkpoints: tokio::sync::Mutex::new(None),
            saved_exports: std::sync::Mutex::new(None),
            state: Mutex::new(State {
                shell: Some(shell),
                gone: None,
                closed: false,
                cwd: start,
                enforcement,
            }),
            config,
        })
    }

    /// The session id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// What the session is and how it is confined.
    pub async fn info(&self) -> SessionInfo {
        let st = self.state.lock().await;
        SessionInfo {
            id: self.id.clone(),
            workspace: self.config.workspace.clone(),
            tmp: self.tmp.clone(),
            shell_pid: st.shell.as_ref().map(|s| s.pid),
            helper_pid: st
                .shell
                .as_ref()
                .and_then(Shell::helper_link)
                .map(|l| l.ready.helper_pid),
            container: match &self.origin {
                Origin::Remote { container, .. } => container.clone(),
                Origin::Local => None,
            },
            enforcement: st.enforcement.clone(),
            user: self
                .config
                .run_as
                .as_ref()
                .map(|r| r.name.clone())
                .unwrap_or_else(|| format!("uid {}", nix::unistd::geteuid())),
        }
    }

    /// The shell's current directory as last reported.
    ///
    /// This does not wait for a running command: it answers with the cwd the previous
    /// command left.
    pub async fn cwd(&self) -> String {
        self.last_cwd
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set_cwd(&self, st: &mut State, cwd: String) {
        *self.last_cwd.lock().unwrap_or_else(|p| p.into_inner()) = cwd.clone();
        st.cwd = cwd;
    }

    /// The policy decision for a command in this session's current state, without running it.
    pub async fn decide(&self, command: &str) -> Decision {
        let cwd = self.cwd().await;
        let env = self.live_env(command, self.decision_env(&cwd, None)).await;
        decide_off_the_worker(&self.config.engine, command, &env).await
    }

    /// `env` with the real locations (through symlinks, on the target) of the paths the
    /// command names.
    async fn live_env(&self, command: &str, mut env: DecisionEnv) -> DecisionEnv {
        let q = off_thread_if_long(&self.config.engine, command, &env, |e, c, env| {
            e.live_queries(c, env)
        })
        .await;
        let shell_path = self.state_path().await;
        // The command's own `PATH=WORKSPACE_DIR:$PATH` comes first.
        let path_var = match (q.path_dirs.is_empty(), shell_path) {
            (true, p) => p,
            (false, p) => Some(format!(
                "{}:{}",
                q.path_dirs.join(":"),
                p.unwrap_or_else(|| crate::config::DEFAULT_PATH.to_string())
            )),
        };
        let cwd = env.cwd.clone().unwrap_or_else(|| env.workspace.clone());
        let (paths, programs) = match &self.origin {
            Origin::Local => (
                crate::live_paths::local(&q.paths),
                crate::live_paths::local_programs(&q.programs, path_var.as_deref(), &cwd),
            ),
            Origin::Remote { control, .. } => {
                crate::live_paths::remote(
                    &current(control),
                    &q.paths,
                    &q.programs,
                    path_var.as_deref(),
                    &cwd,
                )
                .await
            }
        };
        env.real_paths = paths;
        // Programs found outside the system's directories (the workspace, home, /tmp) are
        // judged as the files they are: workspace code, not the trusted tool of that name.
        let untrusted = [
            env.workspace.as_str(),
            env.home.as_str(),
            "/tmp",
            "/var/tmp",
            "/dev/shm",
        ];
        env.real_programs = programs
            .into_iter()
            .filter(|(_, p)| {
                untrusted
                    .iter()
                    .any(|d| p == d || p.starts_with(&format!("{}/", d.trim_end_matches('/'))))
            })
            .collect();
        env
    }

    /// The shell's PATH as the last command left it (`None` before the first command
    /// over SSH or Docker: then the target's login PATH).
    async fn state_path(&self) -> Option<String> {
        self.last_path
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// `text` with this session's redaction applied (known secrets and secret rules), for
    /// showing a command to a human or writing it to a log.
    pub fn redact(&self, text: &str) -> String {
        self.protector.redact_text(text).text
    }

    /// Output read so far by the command that is running, or `None` when none is.
    pub fn progress(&self) -> Option<Progress> {
        if self.running.seq.load(Ordering::SeqCst) == 0 {
            return None;
        }
        self.running.preview_wanted.store(true, Ordering::SeqCst);
        self.running.notify.notify_waiters();
        let (stdout_tail, stderr_tail) = self
            .running
            .preview
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        Some(Progress {
            stdout_bytes: self.running.stdout_bytes.load(Ordering::Relaxed),
            stderr_bytes: self.running.stderr_bytes.load(Ordering::Relaxed),
            stdout_tail,
            stderr_tail,
        })
    }

    fn decision_env(&self, cwd: &str, approved_by: Option<&str>) -> DecisionEnv {
        let mut env = DecisionEnv::local(
            &self.config.workspace.display().to_string(),
            &self.home.display().to_string(),
        );
        env.identity = self.config.identity.clone();
        env.identity.session_id = self.id.clone();
        env.cwd = Some(cwd.to_string());
        env.identity.approved_by = approved_by.map(str::to_string);
        env.known = self.known.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Origin::Remote {
            transport,
            host,
            container,
            user,
            ..
        } = &self.origin
        {
            env.target.transport = *transport;
            env.target.host = host.clone();
            env.target.container = container.clone();
            env.target.remote_user = user.clone();
        }
        env
    }

    fn who(&self) -> Who {
        who_of(&self.origin, &self.id, &self.config)
    }

    /// Writes `event` to the audit log (and the observers). `Err` says why the log could not
    /// take it: decisions and openings that cannot be recorded do not go ahead.
    fn audit(&self, event: AuditEvent) -> Result<(), String> {
        crate::audit_record::emit(
            self.config.audit.as_ref(),
            self.config.observer.as_deref(),
            &event,
        )
    }

    /// Cancels the command that is running, if any: it is interrupted like a timeout and
    /// its result comes back with `cancelled` set.
    pub fn cancel(&self) {
        let seq = self.running.seq.load(Ordering::SeqCst);
        if seq != 0 {
            self.running.cancel.store(seq, Ordering::SeqCst);
            self.running.notify.notify_waiters();
        }
    }

    /// Runs one command with the operator's defaults: policy check, then the shell, then
    /// output protection.
    ///
    /// A decision of Ask is refused like a denial (with [`ExecError::Denied`] and the Ask
    /// verdict); after a human approved it, use [`Session::exec_approved`].
    pub async fn exec(&self, command: &str) -> Result<ExecResult, ExecError> {
        self.exec_inner(command, &ExecOptions::default(), None)
            .await
    }

    /// Runs one command with per-call options (timeout, output budgets). Options can only
    /// narrow what the operator configured.
    pub async fn exec_with(
        &self,
        command: &str,
        opts: &ExecOptions,
    ) -> Result<ExecResult, ExecError> {
        self.exec_inner(command, opts, None).await
    }

    /// Runs a command a human approved. The decision is taken again with
    /// `identity.approved_by` set (so policies can tell); Deny still refuses, and so does an
    /// Ask about a fact the approval does not name. The audit record carries the approver.
    pub async fn exec_approved(
        &self,
        command: &str,
        opts: &ExecOptions,
        approval: &Approval,
    ) -> Result<ExecResult, ExecError> {
        self.exec_inner(command, opts, Some(approval)).await
    }

    /// Decides `command` in the session's state now, writes the decision record, and
    /// returns the decision if it may run (Allow, or Ask covered by `approval`).
    async fn authorize(
        &self,
        st: &State,
        command: &str,
        approval: Option<&Approval>,
    ) -> Result<Decision, ExecError> {
        let cwd = st.cwd.clone();
        let approver = approval.map(|a| a.approver.as_str());
        let env = self
            .live_env(command, self.decision_env(&cwd, approver))
            .await;
        let decision = decide_off_the_worker(&self.config.engine, command, &env).await;
        let redact = |t: &str| self.protector.redact_text(t).text;
        let mut record = crate::audit_record::decision_record(
            self.who(),
            crate::audit_record::Decided::Command(command),
            &env,
            &decision,
            &redact,
        );
        let approved = match (decision.verdict, approval) {
            (Verdict::Allow, _) => true,
            (Verdict::Ask, Some(a)) => {
                a.command == command && asking_facts(&decision).iter().all(|f| a.facts.contains(f))
            }
            _ => false,
        };
        if approved && decision.verdict == Verdict::Ask {
            record.approved_by = approver.map(str::to_string);
        }
        self.audit(AuditEvent::Decision(record))
            .map_err(ExecError::AuditUnavailable)?;
        if !approved {
            let mut denial = Denial::from_decision(decision);
            if denial.verdict == Verdict::Ask && approval.is_some() {
                denial.reason = format!(
                    "the approval does not cover this command as it stands now: {}",
                    denial.reason
                );
            }
            return Err(ExecError::Denied(Box::new(denial)));
        }
        Ok(decision)
    }

    async fn exec_inner(
        &self,
        command: &str,
        opts: &ExecOptions,
        approval: Option<&Approval>,
    ) -> Result<ExecResult, ExecError> {
        check_command(command)?;
        let out = self.protector.stream(&opts.stdout)?;
        let err = self.protector.stream(&opts.stderr)?;
        let limits = self.config.limits;
        let timeout = opts
            .timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(limits.default_timeout)
            .min(limits.max_timeout);

        let mut st = self.state.lock().await;
        if st.closed {
            return Err(ExecError::Closed);
        }
        let decision = self.authorize(&st, command, approval).await?;
        let cwd = st.cwd.clone();
        let redact = |t: &str| self.protector.redact_text(t).text;
        if st.shell.is_none() {
            let why = st.gone.clone().unwrap_or_else(|| "not running".into());
            return Err(ExecError::ShellGone(why));
        }
        if let Some(limit_bytes) = self.config.limits.resources.workspace_bytes {
            if self.workspace_over(limit_bytes).await && !frees_space(&decision) {
                return Err(ExecError::WorkspaceFull { limit_bytes });
            }
        }
        let checkpoint = self.checkpoint_before(&st, command, &decision).await?;
        let (run, counters, (runtime_denials, runtime_allowed)) = {
            let shell = st.shell.as_mut().ok_or(ExecError::Closed)?;
            let before = shell.counters();
            shell.guard_begin(
                command,
                &redact(command),
                &cwd,
                approval.map(|a| (&decision, a.approver.as_str())),
            );
            let run = Run::new(self, shell, out, err, timeout);
            let run = run.go(command).await;
            let after = st.shell.as_ref().map(Shell::counters).unwrap_or(before);
            let runtime = st
                .shell
                .as_ref()
                .map(Shell::guard_finish)
                .unwrap_or_default();
            (run, (before, after), runtime)
        };
        let run = match run {
            Ok(r) => r,
            Err(e) => {
                self.running.seq.store(0, Ordering::SeqCst);
                if let Some(mut sh) = st.shell.take() {
                    self.keep_exports(&sh).await;
                    sh.kill_all();
                }
                st.gone = Some(format!("lost contact with the shell: {e}"));
                return Err(ExecError::Io(e));
            }
        };
        self.running.seq.store(0, Ordering::SeqCst);
        let stdout = run.out.finish();
        let stderr = run.err.finish();
        if let Some(c) = run.cwd {
            self.set_cwd(&mut st, c);
        }
        if let Some(p) = run.path {
            *self.last_path.lock().unwrap_or_else(|e| e.into_inner()) = Some(p);
        }
        // The aliases and functions it defined, for reading the next commands.
        let defined = self
            .config
            .engine
            .definitions(command, &self.decision_env(&cwd, None));
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(&defined);
        if let Some(why) = run.shell_gone {
            if let Some(mut sh) = st.shell.take() {
                self.keep_exports(&sh).await;
                sh.kill_all();
            }
            st.gone = Some(why);
        }
        let mut limits_hit = limits_hit(
            &self.config.limits.resources,
            counters,
            run.exit_code,
            &stderr.text,
        );
        let shell_ended = st.shell.is_none();
        if let (Some(why), Some(limit)) = (st.gone.as_mut(), limits_hit.first()) {
            if shell_ended && !why.contains("connection") {
                *why = format!(
                    "{why}: {limit}; restart the session (its cwd and exported variables are restored)"
                );
            }
        }
        if let Some(limit_bytes) = self.config.limits.resources.workspace_bytes {
            if self.workspace_over(limit_bytes).await {
                limits_hit.push(LimitHit::Workspace { limit_bytes });
            }
        }
        let mut redactions = stdout.redactions.clone();
        for (k, v) in &stderr.redactions {
            *redactions.entry(k.clone()).or_default() += v;
        }
        let result = ExecResult {
            stdout: stdout.text,
            stderr: stderr.text,
            exit_code: run.exit_code,
            duration_ms: run.duration.as_millis() as u64,
            cwd: st.cwd.clone(),
            timed_out: run.timed_out,
            cancelled: run.cancelled,
            shell_exited: st.shell.is_none(),
            shell_exit_reason: st.shell.is_none().then(|| st.gone.clone()).flatten(),
            stdout_report: stdout.report,
            stderr_report: stderr.report,
            redactions,
            decision,
            limits_hit,
            background_jobs: run.left_background,
            checkpoint,
            runtime_denials,
            runtime_allowed,
        };
        let _ = self.audit(AuditEvent::Command(CommandRecord {
            who: self.who(),
            command: redact(command),
            cwd: redact(&cwd),
            exit_code: result.exit_code,
            duration_ms: result.duration_ms,
            timed_out: result.timed_out,
            cancelled: result.cancelled,
            stdout: StreamSummary::from(&result.stdout_report),
            stderr: StreamSummary::from(&result.stderr_report),
            redactions: result.redactions.clone(),
        }));
        self.transcript(&redact(command), &result);
        Ok(result)
    }

    /// The command's output as the agent got it, cut to the operator's transcript size,
    /// to the observers (and the audit log when the operator keeps transcripts there). A
    /// transcript the log cannot take is reported by its recovery record: the command has
    /// run and its result goes back regardless.
    fn transcript(&self, command: &str, result: &ExecResult) {
        let t = self.config.transcripts;
        if t.max_bytes == 0 || (self.config.observer.is_none() && !t.in_audit) {
            return;
        }
        let (stdout, stderr, omitted_bytes) =
            crate::result::cut_transcript(&result.stdout, &result.stderr, t.max_bytes);
        let event = AuditEvent::Transcript(execkit_audit::TranscriptRecord {
            who: self.who(),
            command: command.to_string(),
            stdout,
            stderr,
            omitted_bytes,
        });
        if t.in_audit {
            let _ = self.audit(event);
        } else if let Some(observe) = &self.config.observer {
            observe(&event);
        }
    }

    /// True if the workspace uses more than `cap` bytes (walked off the async threads).
    async fn workspace_over(&self, cap: u64) -> bool {
        let ws = self.config.workspace.clone();
        tokio::task::spawn_blocking(move || crate::disk::used_within(&ws, cap).is_none())
            .await
            // A walk that failed to finish counts as over the cap (fail closed).
            .unwrap_or(true)
    }

    /// Starts `command` as a background process (see [`crate::process`]): decided like
    /// [`Session::exec`] (a denial starts nothing; Ask is refused without an approval),
    /// then started by the session's shell in its current cwd and environment.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let ws = std::env::temp_dir().join(format!("execkit-doc-spawn-{}", std::process::id()));
    /// # std::fs::create_dir_all(&ws)?;
    /// use execkit_runner::{Session, SpawnOptions};
    /// use std::time::Duration;
    /// let session = Session::builder().workspace(&ws).local().await?;
    /// let p = session.spawn("echo ready; read line; echo got $line", &SpawnOptions::default()).await?;
    /// let until = execkit_runner::process::until_pattern("ready")?;
    /// p.wait(Duration::from_secs(5), Some(&until), None, None).await;
    /// p.write_stdin(b"hello\n", true).await?;
    /// p.wait(Duration::from_secs(5), None, None, None).await;
    /// assert_eq!(p.read(Some(Default::default()), None).stdout, "ready\ngot hello\n");
    /// session.close().await;
    /// # std::fs::remove_dir_all(&ws)?;
    /// # Ok(()) }
    /// ```
    pub async fn spawn(
        &self,
        command: &str,
        opts: &crate::process::SpawnOptions,
    ) -> Result<crate::process::ProcessHandle, ExecError> {
        self.spawn_with(command, opts, None).await
    }

    /// [`Session::spawn`] with a human's approval of an Ask decision (see
    /// [`Session::exec_approved`]).
    pub async fn spawn_with(
        &self,
        command: &str,
        opts: &crate::process::SpawnOptions,
        approval: Option<&Approval>,
    ) -> Result<crate::process::ProcessHandle, ExecError> {
        use crate::process::ProcessError;
        check_command(command)?;
        let pty = match opts.pty {
            false => None,
            true => Some(crate::process::launch::Pty {
                rows: opts.rows.unwrap_or(24).clamp(2, 1000),
                cols: opts.cols.unwrap_or(80).clamp(10, 1000),
            }),
        };
        self.processes.check_caps()?;
        let mut st = self.state.lock().await;
        if st.closed {
            return Err(ExecError::Closed);
        }
        self.authorize(&st, command, approval).await?;
        let cwd = st.cwd.clone();
        if st.shell.is_none() {
            let why = st.gone.clone().unwrap_or_else(|| "not running".into());
            return Err(ExecError::ShellGone(why));
        }
        let launched = match &self.origin {
            Origin::Local => {
                if pty.is_some()
                    && st.enforcement.level != crate::sandbox::Level::None
                    && !st.enforcement.pid_namespace
                {
                    return Err(ProcessError::Unsupported(
                        "pty mode needs the session's own mount namespace (for a devpts instance of its own); this session has none".into(),
                    )
                    .into());
                }
                self.launch_local(&mut st, command, pty).await?
            }
            Origin::Remote {
                control, dialect, ..
            } => {
                if pty.is_some() {
                    return Err(ProcessError::Unsupported(
                        "pty mode is available in local sessions only".into(),
                    )
                    .into());
                }
                self.launch_remote(&mut st, command, current(control), *dialect)
                    .await?
            }
        };
        drop(st);
        let id = format!("p-{}", frame::random_hex(4).map_err(ExecError::Io)?);
        let redact = |t: &str| self.protector.redact_text(t).text;
        let auditor = crate::process::state::Auditor {
            log: self.config.audit.clone(),
            observer: self.config.observer.clone(),
            who: self.who(),
        };
        let handle = crate::process::ProcessHandle::start(
            crate::process::state::NewProcess {
                id: id.clone(),
                session_id: self.id.clone(),
                name: opts.name.as_ref().map(|n| n.chars().take(64).collect()),
                command: redact(command),
                cwd: redact(&cwd),
                pgid: launched.pgid,
                signaller: launched.signaller,
                limits: self.config.limits.processes,
                out: self.protector.passthrough(),
                err: self.protector.passthrough(),
                auditor: auditor.clone(),
                slot: crate::process::state::LiveSlot::take(),
            },
            launched.stdin,
            launched.events,
            launched.ready,
        );
        // The start was decided and recorded before it ran; a `started` record lost to
        // the log is reported by its recovery record.
        let _ = auditor.record(
            &id,
            execkit_audit::ProcessEvent::Started {
                command: redact(command),
                cwd: redact(&cwd),
                name: opts.name.clone(),
                pgid: launched.pgid,
            },
        );
        self.processes.add(handle.clone());
        Ok(handle)
    }

    /// Runs the wrapper line of a background process through the shell; returns the pid
    /// the shell printed for the job and the shell's new children.
    async fn run_wrapper(
        &self,
        st: &mut State,
        line: &str,
    ) -> Result<(Option<i32>, Vec<i32>), ExecError> {
        let budget = execkit_protect::Budget::default();
        let (out, err) = (
            self.protector.stream(&budget)?,
            self.protector.stream(&budget)?,
        );
        let shell = st.shell.as_mut().ok_or(ExecError::Closed)?;
        let before = shell.background.clone();
        let run = Run::new(self, shell, out, err, Duration::from_secs(10))
            .go(line)
            .await;
        self.running.seq.store(0, Ordering::SeqCst);
        let run = match run {
            Ok(r) => r,
            Err(e) => {
                if let Some(mut sh) = st.shell.take() {
                    sh.kill_all();
                }
                st.gone = Some(format!("lost contact with the shell: {e}"));
                return Err(ExecError::Io(e));
            }
        };
        let printed = run.out.finish().text.trim().parse::<i32>().ok();
        let shell = st.shell.as_mut().ok_or(ExecError::Closed)?;
        let new = shell
            .background
            .iter()
            .copied()
            .filter(|c| !before.contains(c))
            .collect();
        Ok((printed, new))
    }

    /// Marks `pid` as a background process of ours in the shell (so it never makes a
    /// later command rotate its pipes or count as a job left behind).
    fn adopt(st: &mut State, pid: Option<i32>, local: bool) {
        let Some(shell) = st.shell.as_mut() else {
            return;
        };
        if let Some(p) = pid {
            shell.managed.push(p);
        }
        if local {
            shell.managed.retain(|&p| crate::procs::stat(p).is_some());
        }
        let managed = &shell.managed;
        shell.rotate = shell.background.iter().any(|c| !managed.contains(c));
    }

    /// Starts the wrapper on FIFOs in the private tmp dir, read by this process.
    async fn launch_local(
        &self,
        st: &mut State,
        command: &str,
        pty: Option<crate::process::launch::Pty>,
    ) -> Result<Launched, ExecError> {
        use crate::process::launch::Fifos;
        use crate::process::state::{forward_pipe, Event};
        use crate::process::ProcessError;
        let owner = self.config.run_as.as_ref().map(|r| (r.uid, r.gid));
        let fifos =
            Fifos::create(&self.tmp, owner).map_err(|e| ProcessError::Start(e.to_string()))?;
        let line = fifos.wrapper(command, pty);
        if let (Some(p), Some(shell)) = (pty, st.shell.as_ref()) {
            for (program, argv) in crate::process::launch::pty_starts(p) {
                shell.guard_expect(program, argv);
            }
        }
        let opening = fifos.open();
        let (printed, new) = match self.run_wrapper(st, &line).await {
            Ok(x) => x,
            Err(e) => {
                opening.abort();
                return Err(e);
            }
        };
        // Our child whose pid in the shell's PID namespace is the one it printed.
        let pgid = new
            .iter()
            .copied()
            .find(|&c| Some(crate::procs::ns_pid(c).unwrap_or(c)) == printed)
            .or_else(|| (new.len() == 1).then(|| new[0]));
        Self::adopt(st, pgid, true);
        let pipes = match opening.await {
            Ok(Ok(p)) => p,
            other => {
                if let Some(g) = pgid {
                    crate::procs::signal_group(g, libc::SIGKILL);
                }
                let why = match other {
                    Ok(Err(e)) => e.to_string(),
                    _ => "the pipe task failed".into(),
                };
                return Err(ProcessError::Start(why).into());
            }
        };
        let (tx, mut events) = tokio::sync::mpsc::channel(64);
        forward_pipe(pipes.stdout, tx.clone(), |data| Event::Output {
            err: false,
            data,
        });
        forward_pipe(pipes.stderr, tx.clone(), |data| Event::Output {
            err: true,
            data,
        });
        forward_pipe(pipes.status, tx, Event::Status);
        let ready = crate::process::state::await_ready(&mut events).await;
        Ok(Launched {
            pgid,
            signaller: crate::process::state::Signaller::Local,
            stdin: Box::new(pipes.stdin),
            events,
            ready,
        })
    }

    /// Starts the wrapper on FIFOs in the private directory on the remote side, reached
    /// through channels of their own.
    async fn launch_remote(
        &self,
        st: &mut State,
        command: &str,
        control: Control,
        dialect: frame::Dialect,
    ) -> Result<Launched, ExecError> {
        use crate::process::remote_pipes::RemoteFifos;
        use crate::process::ProcessError;
        if dialect != frame::Dialect::Bash {
            return Err(ProcessError::Unsupported(
                "background processes need bash on the target (this one runs sh)".into(),
            )
            .into());
        }
        let dir = st
            .shell
            .as_ref()
            .and_then(Shell::remote_tmp)
            .ok_or_else(|| {
                ProcessError::Unsupported(
                    "the target has no private directory for the process's pipes (mktemp failed at session start)".into(),
                )
            })?;
        let fifos = RemoteFifos::create(&control, &dir)
            .await
            .map_err(ProcessError::Start)?;
        let (tx, mut events) = tokio::sync::mpsc::channel(64);
        let stdin = match fifos.attach(&control, dialect, tx).await {
            Ok(s) => s,
            Err(e) => {
                fifos.release(&control).await;
                return Err(ProcessError::Start(e).into());
            }
        };
        let (printed, _) = match self.run_wrapper(st, &fifos.wrapper(command)).await {
            Ok(x) => x,
            Err(e) => {
                fifos.release(&control).await;
                return Err(e);
            }
        };
        // The printed pid is the job's process group, as the shell numbers it: the helper
        // (where there is one) translates it; without the helper there is no PID
        // namespace and it is the remote kernel's own.
        Self::adopt(st, printed, false);
        let ready = crate::process::state::await_ready(&mut events).await;
        fifos.remove(&control).await;
        let signaller = match st.shell.as_ref().and_then(Shell::helper_link) {
            Some(link) => crate::process::state::Signaller::Helper(link),
            None => crate::process::state::Signaller::Remote(control),
        };
        Ok(Launched {
            pgid: printed,
            signaller,
            stdin,
            events,
            ready,
        })
    }

    /// Takes a checkpoint of the workspace files (see [`crate::checkpoint`]). No command
    /// runs while it is taken.
    pub async fn checkpoint(
        &self,
        label: Option<&str>,
    ) -> Result<crate::checkpoint::CheckpointInfo, crate::checkpoint::CheckpointError> {
        let st = self.state.lock().await;
        self.checkpoint_locked(&st, label, None).await
    }

    /// The remote store, opened on first use in the session's private directory there.
    async fn remote_store(
        &self,
        st: &State,
    ) -> Result<
        tokio::sync::MutexGuard<'_, Option<crate::checkpoint::RemoteStore>>,
        crate::checkpoint::CheckpointError,
    > {
        use crate::checkpoint::{CheckpointError, RemoteStore};
        let mut g = self.remote_checkpoints.lock().await;
        if g.is_none() {
            let Origin::Remote { control, .. } = &self.origin else {
                return Err(CheckpointError::Unsupported("not a remote session".into()));
            };
            let dir = st
                .shell
                .as_ref()
                .and_then(Shell::remote_tmp)
                .ok_or_else(|| {
                    CheckpointError::Unsupported(
                        "the target has no private directory for a checkpoint store".into(),
                    )
                })?;
            let ws = self.config.workspace.display().to_string();
            *g = Some(
                RemoteStore::open(current(control), &dir, &ws, &self.config.checkpoints).await?,
            );
        }
        Ok(g)
    }

    /// The store, opened on first use (local sessions only).
    fn checkpoint_store(
        &self,
    ) -> Result<
        Arc<std::sync::Mutex<Option<crate::checkpoint::Store>>>,
        crate::checkpoint::CheckpointError,
    > {
        use crate::checkpoint::{CheckpointError, Store};
        let cfg = &self.config.checkpoints;
        if !cfg.enabled {
            return Err(CheckpointError::Disabled);
        }
        let mut g = self.checkpoints.lock().unwrap_or_else(|p| p.into_inner());
        if g.is_none() {
            let dir = match &cfg.store_dir {
                Some(d) => d.join(format!("execkit-checkpoints-{}", self.id)),
                None => self.dir.join("checkpoints"),
            };
            *g = Some(Store::open(&dir, &self.config.workspace, cfg)?);
        }
        drop(g);
        Ok(self.checkpoints.clone())
    }

    async fn checkpoint_locked(
        &self,
        st: &State,
        label: Option<&str>,
        automatic: Option<&str>,
    ) -> Result<crate::checkpoint::CheckpointInfo, crate::checkpoint::CheckpointError> {
        use crate::checkpoint::CheckpointError;
        if !self.config.checkpoints.enabled {
            return Err(CheckpointError::Disabled);
        }
        let info = if let Origin::Remote { .. } = self.origin {
            let mut g = self.remote_store(st).await?;
            match g.as_mut() {
                Some(s) => s.checkpoint(label, automatic).await?,
                None => return Err(CheckpointError::Disabled),
            }
        } else {
            let store = self.checkpoint_store()?;
            let (label, automatic) = (label.map(str::to_string), automatic.map(str::to_string));
            tokio::task::spawn_blocking(move || {
                let mut g = store.lock().unwrap_or_else(|p| p.into_inner());
                match g.as_mut() {
                    Some(s) => s.checkpoint(label.as_deref(), automatic.as_deref()),
                    None => Err(CheckpointError::Disabled),
                }
            })
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))??
        };
        let _ = self.audit(AuditEvent::Checkpoint(execkit_audit::CheckpointRecord {
            who: self.who(),
            checkpoint: info.id.clone(),
            event: "taken".into(),
            files: info.files,
            bytes: info.bytes,
            deleted: 0,
            automatic: info.automatic.as_deref().map(|a| self.redact(a)),
        }));
        Ok(info)
    }

    /// The checkpoint a policy asks for before `command` runs (`@checkpoint` on a permit
    /// that allowed it): taken now, or the command is refused when it cannot be. Sessions
    /// without checkpoints (turned off by the operator, remote transports) run it without.
    async fn checkpoint_before(
        &self,
        st: &State,
        command: &str,
        decision: &Decision,
    ) -> Result<Option<String>, ExecError> {
        let asked = decision.checkpoint_policies();
        if asked.is_empty() || !self.config.checkpoints.enabled {
            return Ok(None);
        }
        let why = format!("before: {}", command.chars().take(160).collect::<String>());
        match self.checkpoint_locked(st, None, Some(&why)).await {
            Ok(info) => Ok(Some(info.id)),
            Err(e) => Err(ExecError::Rejected(format!(
                "the policies ({}) ask for a checkpoint before this command, and it could not be taken: {e}",
                asked.join(", ")
            ))),
        }
    }

    /// The checkpoints kept, oldest first.
    pub async fn checkpoints(
        &self,
    ) -> Result<Vec<crate::checkpoint::CheckpointInfo>, crate::checkpoint::CheckpointError> {
        if !self.config.checkpoints.enabled {
            return Err(crate::checkpoint::CheckpointError::Disabled);
        }
        if let Origin::Remote { .. } = self.origin {
            let st = self.state.lock().await;
            let g = self.remote_store(&st).await?;
            return match g.as_ref() {
                Some(s) => s.list().await,
                None => Ok(Vec::new()),
            };
        }
        let store = self.checkpoint_store()?;
        let g = store.lock().unwrap_or_else(|p| p.into_inner());
        Ok(g.as_ref().map(|s| s.list()).unwrap_or_default())
    }

    /// Puts the workspace files back as they were at checkpoint `id`. Authorized like a
    /// write into the workspace (the policies decide a write of `WORKSPACE/.execkit-restore`
    /// and the decision is audited); no command runs meanwhile.
    pub async fn restore(&self, id: &str) -> Result<crate::checkpoint::RestoreReport, ExecError> {
        use crate::checkpoint::CheckpointError;
        let st = self.state.lock().await;
        let probe = format!(
            ": > {}",
            frame::ansi_c_quote(&format!(
                "{}/.execkit-restore",
                self.config.workspace.display()
            ))
        );
        let env = self.decision_env(&st.cwd, None);
        let decision = self.config.engine.decide(&probe, &env);
        let redact = |t: &str| self.protector.redact_text(t).text;
        let label = format!(
            "checkpoint restore {}",
            id.chars().take(64).collect::<String>()
        );
        let record = crate::audit_record::decision_record(
            self.who(),
            crate::audit_record::Decided::Labelled {
                label: &label,
                text: &probe,
            },
            &env,
            &decision,
            &redact,
        );
        self.audit(AuditEvent::Decision(record))
            .map_err(ExecError::AuditUnavailable)?;
        if decision.verdict != Verdict::Allow {
            return Err(ExecError::Denied(Box::new(Denial::from_decision(decision))));
        }
        if !self.config.checkpoints.enabled {
            return Err(checkpoint_error(CheckpointError::Disabled));
        }
        let report = if let Origin::Remote { .. } = self.origin {
            let mut g = self.remote_store(&st).await.map_err(checkpoint_error)?;
            match g.as_mut() {
                Some(s) => s.restore(id).await.map_err(checkpoint_error)?,
                None => return Err(checkpoint_error(CheckpointError::Disabled)),
            }
        } else {
            let store = self.checkpoint_store().map_err(checkpoint_error)?;
            let id_owned = id.to_string();
            tokio::task::spawn_blocking(move || {
                let mut g = store.lock().unwrap_or_else(|p| p.into_inner());
                match g.as_mut() {
                    Some(s) => s.restore(&id_owned),
                    None => Err(CheckpointError::Disabled),
                }
            })
            .await
            .map_err(|e| ExecError::Io(std::io::Error::other(e.to_string())))?
            .map_err(checkpoint_error)?
        };
        drop(st);
        let _ = self.audit(AuditEvent::Checkpoint(execkit_audit::CheckpointRecord {
            who: self.who(),
            checkpoint: report.id.clone(),
            event: "restored".into(),
            files: report.written + report.created,
            bytes: 0,
            deleted: report.deleted,
            automatic: None,
        }));
        Ok(report)
    }

    /// What changed in the workspace since checkpoint `id` (paths, counts and a unified
    /// diff of text files, redacted like command output).
    pub async fn checkpoint_diff(
        &self,
        id: &str,
    ) -> Result<crate::checkpoint::DiffSummary, crate::checkpoint::CheckpointError> {
        let st = self.state.lock().await;
        if !self.config.checkpoints.enabled {
            return Err(crate::checkpoint::CheckpointError::Disabled);
        }
        if let Origin::Remote { .. } = self.origin {
            let mut g = self.remote_store(&st).await?;
            let mut d = match g.as_mut() {
                Some(s) => s.diff(id).await?,
                None => return Err(crate::checkpoint::CheckpointError::Disabled),
            };
            d.diff = self.redact(&d.diff);
            return Ok(d);
        }
        let store = self.checkpoint_store()?;
        let protector = self.protector.clone();
        let id = id.to_string();
        tokio::task::spawn_blocking(move || {
            let mut g = store.lock().unwrap_or_else(|p| p.into_inner());
            let redact = |t: &str| protector.redact_text(t).text;
            match g.as_mut() {
                Some(s) => s.diff(&id, &redact),
                None => Err(crate::checkpoint::CheckpointError::Disabled),
            }
        })
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?
    }

    /// The background process with this id.
    pub fn process(
        &self,
        id: &str,
    ) -> Result<crate::process::ProcessHandle, crate::process::ProcessError> {
        self.processes.get(id)
    }

    /// Every background process still known (exited ones until their idle TTL).
    pub fn processes(&self) -> Vec<crate::process::ProcessInfo> {
        self.processes.list()
    }

    /// Remembers what the shell last saved of its exported variables.
    async fn keep_exports(&self, shell: &Shell) {
        if let Some(text) = shell.saved_exports().await {
            *self.saved_exports.lock().unwrap_or_else(|e| e.into_inner()) = Some(text);
        }
    }

    /// Starts a new shell in place of the old one (ended or not): background processes
    /// are stopped, shell variables and functions are gone, and the working directory and
    /// exported variables the old shell had are restored — by one command the policies
    /// decide like any other (what they refuse is listed in the report). Over SSH a lost
    /// connection is made again, with the same host-key check.
    pub async fn restart(&self) -> Result<RestartReport, SessionError> {
        self.processes.kill_all("session restarted").await;
        let mut st = self.state.lock().await;
        let cwd_before = st.cwd.clone();
        if let Some(mut sh) = st.shell.take() {
            // A live shell saves its exports as it exits (its EXIT trap).
            if sh.exports.is_some() && sh.write(b"builtin exit 0\n").await.is_ok() {
                let _ = tokio::time::timeout(Duration::from_secs(2), sh.wait_exit()).await;
            }
            self.keep_exports(&sh).await;
            sh.kill_all();
        }
        let exports_before = self
            .saved_exports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        match &self.origin {
            Origin::Local => {
                let (shell, enforcement) = Shell::spawn(
                    &self.config,
                    &self.home,
                    &self.tmp,
                    Some(guard_spec(
                        &self.config,
                        &self.id,
                        &self.home,
                        &self.protector,
                        self.who(),
                    )),
                )
                .await?;
                st.shell = Some(shell);
                st.enforcement = enforcement;
            }
            Origin::Remote {
                control,
                redial,
                dialect,
                ..
            } => {
                let mut now = current(control);
                if let (true, Some(Redial::Ssh(target, settings))) =
                    (now.is_lost(), redial.as_deref())
                {
                    // The connection is gone: connect again, with the same host-key check.
                    now.close().await;
                    let conn = crate::ssh::SshConnection::connect(settings, target)
                        .await
                        .map_err(|e| SessionError::Transport(e.to_string()))?;
                    now = Control::Ssh(Arc::new(conn));
                    *control.lock().unwrap_or_else(|e| e.into_inner()) = now.clone();
                }
                let (sandbox, default_workspace) = match &self.origin {
                    Origin::Remote {
                        sandbox,
                        default_workspace,
                        ..
                    } => (sandbox.as_ref().clone(), *default_workspace),
                    Origin::Local => (crate::remote_sandbox::RemoteSandbox::off(), "."),
                };
                let (shell, _, _, _, enforcement, _) = start_remote_shell(
                    &now,
                    &self.config,
                    &sandbox,
                    default_workspace,
                    *dialect,
                    RemoteGuardInfo::of(&self.origin, &self.id, &self.config),
                )
                .await?;
                st.shell = Some(shell);
                st.enforcement = enforcement;
            }
        }
        st.gone = None;
        st.closed = false;
        let ws = self.config.workspace.display().to_string();
        self.set_cwd(&mut st, ws);
        *self.last_path.lock().unwrap_or_else(|e| e.into_inner()) = match self.origin {
            Origin::Local => Some(crate::config::DEFAULT_PATH.to_string()),
            Origin::Remote { .. } => None,
        };
        // A new shell knows none of the old one's aliases and functions.
        *self.known.lock().unwrap_or_else(|e| e.into_inner()) = Default::default();
        let exports_now = match st.shell.as_ref() {
            Some(sh) => sh.saved_exports().await,
            None => None,
        };
        drop(st);
        Ok(self
            .bring_back(cwd_before, exports_before, exports_now)
            .await)
    }

    /// Brings the cwd and the exported variables of the shell before back, in one
    /// command, or piece by piece when that one is refused.
    async fn bring_back(
        &self,
        cwd: String,
        before: Option<String>,
        now: Option<String>,
    ) -> RestartReport {
        let mut parts: Vec<(String, String)> = Vec::new();
        if cwd != self.cwd().await {
            parts.push(("cwd".into(), format!("cd -- {}", frame::single_quote(&cwd))));
        }
        let (before, now) = (
            crate::exports::parse(before.as_deref().unwrap_or("")),
            crate::exports::parse(now.as_deref().unwrap_or("")),
        );
        for (k, v) in crate::exports::changed(&before, &now) {
            parts.push((k.clone(), format!("export {k}={}", frame::ansi_c_quote(v))));
        }
        let mut report = RestartReport::default();
        if !parts.is_empty() {
            let all: Vec<&str> = parts.iter().map(|(_, c)| c.as_str()).collect();
            match self.exec(&all.join(" && ")).await {
                Ok(r) if r.exit_code == Some(0) => {
                    report.restored = parts.iter().map(|(w, _)| w.clone()).collect();
                }
                _ => {
                    for (what, command) in &parts {
                        match self.exec(command).await {
                            Ok(r) if r.exit_code == Some(0) => report.restored.push(what.clone()),
                            Ok(r) => report.refused.push(format!(
                                "{what}: exit status {:?}: {}",
                                r.exit_code,
                                r.stderr.trim()
                            )),
                            Err(e) => report.refused.push(format!("{what}: {e}")),
                        }
                    }
                }
            }
        }
        report.cwd = self.cwd().await;
        report
    }

    /// Ends the session: kills the shell and everything it started, waits for them, and
    /// removes the private tmp dir.
    pub async fn close(&self) {
        self.cancel();
        self.processes.kill_all("session closed").await;
        let mut st = self.state.lock().await;
        if !st.closed {
            // Closing goes ahead whether or not the log takes the record (it said why).
            let _ = self.announce(execkit_audit::SessionEvent::Closed);
        }
        st.closed = true;
        if let Some(mut sh) = st.shell.take() {
            sh.kill_all();
            let _ = tokio::time::timeout(Duration::from_secs(5), sh.wait_exit()).await;
        }
        if let Origin::Remote { control, .. } = &self.origin {
            current(control).close().await;
        }
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A checkpoint failure where an [`ExecError`] is expected.
fn checkpoint_error(e: crate::checkpoint::CheckpointError) -> ExecError {
    ExecError::Checkpoint(e)
}

/// A background process the shell has started, before it is wrapped in a handle.
struct Launched {
    pgid: Option<i32>,
    signaller: crate::process::state::Signaller,
    stdin: crate::process::state::Stdin,
    events: tokio::sync::mpsc::Receiver<crate::process::state::Event>,
    ready: (Vec<u8>, Vec<crate::process::state::Event>),
}

/// Refuses what can never be a command line: NUL bytes, and the framing's reserved names.
fn check_command(command: &str) -> Result<(), ExecError> {
    if command.contains('\0') {
        return Err(ExecError::Rejected(
            "the command contains a NUL byte".into(),
        ));
    }
    if command.contains("__ek_") {
        return Err(ExecError::Rejected(
            "names starting with `__ek_` are reserved for the session's framing".into(),
        ));
    }
    Ok(())
}

/// Why a remote session's shell is gone when its connection dropped.
const TRANSPORT_LOST: &str = "the connection to the remote host was lost (restart connects again)";

/// The remote connection in use now.
fn current(control: &std::sync::Mutex<Control>) -> Control {
    control.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Ok(mut st) = self.state.try_lock() {
            if let Some(mut sh) = st.shell.take() {
                sh.kill_all();
            }
        }
        if let Origin::Remote { control, .. } = &self.origin {
            let control = current(control);
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move { control.close().await });
            }
        }
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn make_private_dir(p: &std::path::Path, owner: Option<(u32, u32)>) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new().mode(0o700).create(p)?;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700))?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(p, Some(uid), Some(gid))?;
        if let Some(parent) = p.parent() {
            // The shell's user must be able to reach its tmp dir.
            std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o711))?;
        }
    }
    Ok(())
}

/// Commands at least this long are parsed and decided on tokio's blocking pool. At the
/// script limits one decision can take most of a second, which would hold the
/// async worker every other session's requests need; the short commands agents send nearly
/// always are decided in place, where the hand-off to the pool would cost more than their
/// decision (~50–150 µs).
const OFF_THREAD_FROM: usize = 64 * 1024;

/// `engine`'s decision on `command` in `env`, made on the blocking pool when the command is
/// long (see [`OFF_THREAD_FROM`]): for sessions and for async callers deciding outside one
/// (the MCP server's `policy_check`).
pub async fn decide_off_the_worker(
    engine: &Arc<execkit_engine::Engine>,
    command: &str,
    env: &DecisionEnv,
) -> Decision {
    off_thread_if_long(engine, command, env, |e, c, env| e.decide(c, env)).await
}

/// `f(engine, command, env)`, on the blocking pool when `command` is long (the command and
/// the environment then copied to it). A panic in `f` is the caller's, as in place; should
/// the pool refuse the task (the runtime shutting down), `f` runs in place.
async fn off_thread_if_long<T: Send + 'static>(
    engine: &Arc<execkit_engine::Engine>,
    command: &str,
    env: &DecisionEnv,
    f: fn(&execkit_engine::Engine, &str, &DecisionEnv) -> T,
) -> T {
    if command.len() < OFF_THREAD_FROM {
        return f(engine, command, env);
    }
    let (shared, text, owned) = (engine.clone(), command.to_string(), env.clone());
    match tokio::task::spawn_blocking(move || f(&shared, &text, &owned)).await {
        Ok(v) => v,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => f(engine, command, env),
    }
}

/// True if every program the command runs only looks at or frees disk space, and nothing
/// is redirected into a file.
fn frees_space(d: &execkit_engine::Decision) -> bool {
    use execkit_engine::Action;
    d.facts.iter().all(|f| match f.action {
        Action::Exec => crate::disk::CLEANUP_PROGRAMS.contains(&f.program.as_str()),
        Action::WritePath => false,
        _ => true,
    })
}

/// The limits a command ran into: the cgroup's counters moved (memory, processes), or a
/// writer died of `SIGXFSZ` (bash's exit status 128+25, or its report on stderr).
fn limits_hit(
    res: &crate::config::Resources,
    (before, after): (Counters, Counters),
    exit_code: Option<i32>,
    stderr: &str,
) -> Vec<LimitHit> {
    let mut hits = Vec::new();
    if after.oom_kills > before.oom_kills {
        if let Some(limit_bytes) = res.memory_bytes {
            hits.push(LimitHit::Memory { limit_bytes });
        }
    }
    // The cgroup counted refused forks; without one (rlimits, remote targets) bash says
    // so on stderr when a fork fails.
    let fork_refused = stderr.contains("fork: Resource temporarily unavailable")
        || stderr.contains("fork: retry: Resource temporarily unavailable");
    if after.pids_max > before.pids_max || fork_refused {
        if let Some(max_processes) = res.processes {
            hits.push(LimitHit::Processes { max_processes });
        }
    }
    if let Some(limit_bytes) = res.file_bytes {
        if exit_code == Some(128 + libc::SIGXFSZ) || stderr.contains("File size limit exceeded") {
            hits.push(LimitHit::FileSize { limit_bytes });
        }
    }
    hits
}

/// Where stdout framing is.
enum Out {
    /// Command output, looking for the ask marker.
    Running(Splitter),
    /// Ask marker seen; waiting for the kernel to confirm the shell reads stdin. Holds
    /// what came after the marker.
    Pending(Vec<u8>),
    /// Nonce sent; bytes until the end marker are kept in case the confirmed ask marker
    /// was a forgery followed by the real one.
    AwaitEnd(Splitter, Vec<u8>),
    /// Reading status and cwd up to the terminator.
    AwaitFin(Splitter, Vec<u8>),
    /// Finished.
    Done,
}

/// One command's run.
struct Run<'a> {
    session: &'a Session,
    shell: &'a mut Shell,
    res: Outcome,
    timeout: Duration,
    out_state: Out,
    err_split: Option<Splitter>,
    err_done: bool,
    eof: (bool, bool),
    /// This command's ask marker.
    ask: Vec<u8>,
    fin_needle: Vec<u8>,
}

/// The bytes before the first `:` and those after it.
fn split_at_colon(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = memchr::memchr(b':', b)?;
    Some((&b[..at], &b[at + 1..]))
}

/// Output held after an unconfirmed ask marker before it is taken as the command's own.
const PENDING_LIMIT: usize = 1 << 20;

/// What a run leaves behind.
struct Outcome {
    out: StreamProtector,
    err: StreamProtector,
    exit_code: Option<i32>,
    cwd: Option<String>,
    /// The shell's PATH after the command.
    path: Option<String>,
    timed_out: bool,
    cancelled: bool,
    shell_gone: Option<String>,
    duration: Duration,
    /// Background jobs the command left (not counting our own processes).
    left_background: usize,
}

/// Interrupt escalation after a timeout or cancel.
struct Stopper {
    stage: u32,
    next: Instant,
}

impl<'a> Run<'a> {
    fn new(
        session: &'a Session,
        shell: &'a mut Shell,
        out: StreamProtector,
        err: StreamProtector,
        timeout: Duration,
    ) -> Run<'a> {
        Run {
            session,
            shell,
            res: Outcome {
                out,
                err,
                exit_code: None,
                cwd: None,
                path: None,
                timed_out: false,
                cancelled: false,
                shell_gone: None,
                duration: Duration::ZERO,
                left_background: 0,
            },
            timeout,
            out_state: Out::Done,
            err_split: None,
            err_done: false,
            eof: (false, false),
            ask: Vec::new(),
            fin_needle: Vec::new(),
        }
    }

    async fn go(mut self, command: &str) -> std::io::Result<Outcome> {
        // Anything left from before this command belongs to no one.
        let gen_before = self.shell.generation();
        while let Ok(c) = self.shell.rx.try_recv() {
            if c.data.is_none() && c.gen == gen_before {
                self.res.shell_gone = Some("the shell's output closed".into());
                return Ok(self.outcome());
            }
        }
        let prefix = if self.shell.rotate {
            self.shell.rotate_pipes().await?
        } else {
            String::new()
        };
        self.shell.seq += 1;
        let seq = self.shell.seq;
        let gen = self.shell.generation();
        self.ask = frame::ask_marker(&self.shell.token, seq);
        self.out_state = Out::Running(Splitter::new(self.ask.clone()));
        let running = self.session.running.clone();
        running.stdout_bytes.store(0, Ordering::Relaxed);
        running.stderr_bytes.store(0, Ordering::Relaxed);
        *running.preview.lock().unwrap_or_else(|p| p.into_inner()) = Default::default();
        running.seq.store(seq, Ordering::SeqCst);
        let background_before = self.shell.background.clone();
        let line = frame::command_line(command, seq, &prefix, self.shell.dialect);
        let started = Instant::now();
        self.shell.write(line.as_bytes()).await?;
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut stopper: Option<Stopper> = None;
        let tick = Duration::from_millis(1);
        loop {
            if matches!(self.out_state, Out::Done) && self.err_done {
                break;
            }
            if self.res.shell_gone.is_some() {
                break;
            }
            let pending = matches!(self.out_state, Out::Pending(_));
            if pending {
                self.try_confirm(false).await?;
                if !matches!(self.out_state, Out::Pending(_)) {
                    continue;
                }
            }
            let cancel_wait = running.notify.notified();
            tokio::select! {
                ev = self.shell.next_event() => match ev {
                    ShellEvent::Chunk(Some(c)) => self.on_chunk(c, gen).await?,
                    ShellEvent::Chunk(None) => {
                        self.res.shell_gone = Some("the shell's output closed".into())
                    }
                    ShellEvent::Exited(code) => {
                    self.drain_after_exit(gen).await?;
                    self.res.exit_code = code;
                    self.res.shell_gone = Some(match code {
                        _ if self.shell.transport_lost() => TRANSPORT_LOST.into(),
                        Some(c) => format!("the shell exited with status {c}"),
                        None => "the shell exited".into(),
                    });
                    }
                },
                _ = tokio::time::sleep_until(deadline), if stopper.is_none() => {
                    self.res.timed_out = true;
                    stopper = Some(Stopper { stage: 0, next: Instant::now() });
                }
                // Woken by `cancel()`; the check below decides whether it is ours.
                _ = cancel_wait, if stopper.is_none() => {}
                _ = tokio::time::sleep(tick), if pending || stopper.is_some() => {}
            }
            if running.preview_wanted.swap(false, Ordering::SeqCst) {
                let preview = (
                    self.res.out.preview(PREVIEW_BYTES),
                    self.res.err.preview(PREVIEW_BYTES),
                );
                *running.preview.lock().unwrap_or_else(|p| p.into_inner()) = preview;
            }
            if running.cancel.load(Ordering::SeqCst) == seq && stopper.is_none() {
                self.res.cancelled = true;
                stopper = Some(Stopper {
                    stage: 0,
                    next: Instant::now(),
                });
            }
            if let Some(s) = &mut stopper {
                if Instant::now() >= s.next {
                    self.escalate(s, &background_before).await;
                }
            }
        }
        if self.res.shell_gone.is_some() && self.res.exit_code.is_none() {
            // The shell closed its output (`exec >&-`) and may still be running: the
            // command lasts until it exits; a shell without output is ended after 2 s.
            match tokio::time::timeout(Duration::from_secs(2), self.shell.wait_exit()).await {
                Ok(code) => self.res.exit_code = code,
                _ => {
                    self.shell.kill_all();
                    self.res.exit_code = self.shell.wait_exit().await;
                }
            }
        }
        if self.res.shell_gone.is_some() && self.shell.transport_lost() {
            self.res.shell_gone = Some(TRANSPORT_LOST.into());
        }
        self.res.duration = started.elapsed();
        self.finish_framing();
        if self.res.shell_gone.is_none() {
            // The kernel's word on the cwd, not the shell's.
            if let Some(c) = self.shell.kernel_cwd() {
                self.res.cwd = Some(c.display().to_string());
            }
        }
        self.shell.unlink_fifos();
        self.shell.reap_orphans();
        self.res.left_background = self
            .shell
            .background
            .iter()
            .filter(|c| !background_before.contains(c) && !self.shell.managed.contains(c))
            .count();
        Ok(self.outcome())
    }

    fn outcome(self) -> Outcome {
        self.res
    }

    /// One step of SIGINT → SIGTERM → SIGKILL on the command's process groups; a command
    /// running inside the shell itself (a builtin loop) gets SIGINT on the shell, whose
    /// trap breaks out; last of all the shell is killed.
    async fn escalate(&mut self, s: &mut Stopper, background_before: &[i32]) {
        let grace = self.session.config.limits.grace;
        let in_command = matches!(self.out_state, Out::Running(_));
        let groups = self.shell.child_groups(background_before).await;
        let sig = match s.stage {
            0 => Some(libc::SIGINT),
            1 => Some(libc::SIGTERM),
            2 => Some(libc::SIGKILL),
            _ => None,
        };
        match sig {
            Some(sig) => {
                self.shell.signal_groups(&groups, sig).await;
                if groups.is_empty() && in_command {
                    self.shell.signal_shell(libc::SIGINT).await;
                }
                s.next = Instant::now() + grace;
            }
            None if s.stage < 6 => {
                if in_command {
                    self.shell.signal_shell(libc::SIGINT).await;
                }
                s.next = Instant::now() + grace;
            }
            None => {
                self.shell.kill_all();
                s.next = Instant::now() + Duration::from_secs(3600);
            }
        }
        s.stage += 1;
    }

    async fn drain_after_exit(&mut self, gen: u64) -> std::io::Result<()> {
        // The pipes may still hold the last output; give the readers a moment.
        let until = tokio::time::Instant::now() + Duration::from_millis(200);
        while !(self.eof.0 && self.eof.1) {
            match tokio::time::timeout_at(until, self.shell.rx.recv()).await {
                Ok(Some(c)) => self.on_chunk(c, gen).await?,
                _ => break,
            }
        }
        Ok(())
    }

    async fn on_chunk(&mut self, c: Chunk, gen: u64) -> std::io::Result<()> {
        if c.gen != gen {
            return Ok(());
        }
        let Some(data) = c.data else {
            if c.err {
                self.eof.1 = true;
            } else {
                self.eof.0 = true;
            }
            if self.eof.0 && self.eof.1 && self.res.shell_gone.is_none() {
                self.res.shell_gone = Some("the shell's output closed".into());
            }
            return Ok(());
        };
        let counter = if c.err {
            &self.session.running.stderr_bytes
        } else {
            &self.session.running.stdout_bytes
        };
        counter.fetch_add(data.len() as u64, Ordering::Relaxed);
        if c.err {
            self.on_stderr(&data);
        } else {
            self.on_stdout(data);
            if matches!(self.out_state, Out::Pending(_)) {
                self.try_confirm(true).await?;
            }
        }
        Ok(())
    }

    fn on_stderr(&mut self, data: &[u8]) {
        if self.err_done {
            return;
        }
        match &mut self.err_split {
            None => self.res.err.push(data),
            Some(split) => match split.push(data) {
                Split::Data(d) => self.res.err.push(&d),
                Split::Found { before, .. } => {
                    self.res.err.push(&before);
                    self.err_done = true;
                }
            },
        }
    }

    fn on_stdout(&mut self, mut data: Vec<u8>) {
        loop {
            match &mut self.out_state {
                Out::Running(split) => match split.push(&data) {
                    Split::Data(d) => {
                        self.res.out.push(&d);
                        return;
                    }
                    Split::Found { before, after } => {
                        self.res.out.push(&before);
                        self.out_state = Out::Pending(after);
                        return;
                    }
                },
                Out::Pending(held) => {
                    held.extend_from_slice(&data);
                    // A second ask marker means the first was the command's own output.
                    if let Some(at) = memchr::memmem::rfind(held, &self.ask) {
                        let rest = held.split_off(at + self.ask.len());
                        let mut earlier = std::mem::replace(held, rest);
                        earlier.truncate(at);
                        self.push_forged_ask(&earlier);
                    } else if held.len() > PENDING_LIMIT && !self.shell.waiting_for_input_now() {
                        // A real ask is followed at once by the shell reading its stdin,
                        // not by a megabyte of output: this one was the command's.
                        let held = std::mem::take(held);
                        self.push_forged_ask(&[]);
                        let mut split = Splitter::new(self.ask.clone());
                        if let Split::Data(d) = split.push(&held) {
                            self.res.out.push(&d);
                        }
                        self.out_state = Out::Running(split);
                    }
                    return;
                }
                Out::AwaitEnd(split, gathered) => match split.push(&data) {
                    Split::Data(d) => {
                        gathered.extend(d);
                        return;
                    }
                    Split::Found { before, after } => {
                        gathered.extend(before);
                        // If a later ask marker came before the end, the confirmed one was
                        // forged by the command and everything up to the last is output.
                        if let Some(at) = memchr::memmem::rfind(gathered, &self.ask) {
                            let earlier = gathered[..at].to_vec();
                            self.push_forged_ask(&earlier);
                        }
                        let fin = self.fin_needle.clone();
                        self.out_state = Out::AwaitFin(Splitter::new(fin), Vec::new());
                        data = after;
                    }
                },
                Out::AwaitFin(split, body) => match split.push(&data) {
                    Split::Data(d) => {
                        body.extend(d);
                        return;
                    }
                    Split::Found { before, .. } => {
                        body.extend(before);
                        let body = std::mem::take(body);
                        self.parse_end(&body);
                        self.out_state = Out::Done;
                        return;
                    }
                },
                Out::Done => return,
            }
        }
    }

    /// Sends the nonce once the kernel shows the shell blocked reading its stdin: only
    /// then is the command really over. `spin` waits briefly for the shell to get there.
    async fn try_confirm(&mut self, spin: bool) -> std::io::Result<()> {
        if !matches!(self.out_state, Out::Pending(_)) {
            return Ok(());
        }
        let tries = if spin { 10 } else { 1 };
        let mut ready = false;
        let remote = self.shell.is_remote();
        let mut children = Vec::new();
        for i in 0..tries {
            if let Some(c) = self.shell.confirm_over().await {
                children = c;
                ready = true;
                break;
            }
            if i + 1 < tries {
                // The shell calls read(2) microseconds after printing the marker.
                if remote {
                    // Each check is already a round trip: retry at once, then back off.
                    if i >= 2 {
                        tokio::time::sleep(Duration::from_millis(1 << (i - 2).min(4))).await;
                    }
                } else {
                    std::thread::sleep(Duration::from_micros(10 << i.min(5)));
                }
            }
        }
        if !ready {
            return Ok(());
        }
        // Children still alive now are background jobs: give the next command new pipes.
        self.shell.background = children;
        let managed = &self.shell.managed;
        if self.shell.background.iter().any(|c| !managed.contains(c)) {
            self.shell.rotate = true;
        }
        let nonce = frame::random_hex(16)?;
        self.shell.write(format!("{nonce}\n").as_bytes()).await?;
        self.fin_needle = frame::stdout_fin(&nonce);
        self.err_split = Some(Splitter::new(frame::stderr_end(&nonce)));
        let end = Out::AwaitEnd(Splitter::new(frame::stdout_end_prefix(&nonce)), Vec::new());
        if let Out::Pending(held) = std::mem::replace(&mut self.out_state, end) {
            if !held.is_empty() {
                self.on_stdout(held);
            }
        }
        Ok(())
    }

    /// `<status>:<len>:<PATH>:<cwd>\n` from the end marker. The PATH is taken by its
    /// length, so no byte in it can shift the fields; a body that does not fit the shape
    /// leaves cwd and PATH as they were.
    fn parse_end(&mut self, body: &[u8]) {
        let Some((status, rest)) = split_at_colon(body) else {
            return;
        };
        if let Ok(code) = String::from_utf8_lossy(status).trim().parse::<i32>() {
            self.res.exit_code = Some(code);
        }
        let Some((len, rest)) = split_at_colon(rest) else {
            return;
        };
        let Some(len) = std::str::from_utf8(len)
            .ok()
            .and_then(|l| l.parse::<usize>().ok())
        else {
            return;
        };
        let (Some(path), Some(b':')) = (rest.get(..len), rest.get(len).copied()) else {
            return;
        };
        let cwd = &rest[len + 1..];
        let cwd = cwd.strip_suffix(b"\n").unwrap_or(cwd);
        self.res.path = Some(String::from_utf8_lossy(path).into_owned());
        if !cwd.is_empty() {
            self.res.cwd = Some(String::from_utf8_lossy(cwd).into_owned());
        }
    }

    /// An ask marker that turned out to be the command's own output goes back into its
    /// stdout, followed by what came after it.
    fn push_forged_ask(&mut self, after: &[u8]) {
        self.res.out.push(&self.ask);
        self.res.out.push(after);
    }

    /// Hands bytes still held by the framing to the streams (the shell ended mid-frame).
    fn finish_framing(&mut self) {
        match &mut self.out_state {
            Out::Running(split) => {
                let held = split.take_held();
                self.res.out.push(&held);
            }
            Out::Pending(held) => {
                let held = std::mem::take(held);
                self.push_forged_ask(&held);
            }
            _ => {}
        }
        if !self.err_done {
            if let Some(split) = &mut self.err_split {
                let held = split.take_held();
                self.res.err.push(&held);
            }
        }
    }
}

/// What a remote shell start yields: the shell, the remote home, the start directory, the
/// environment it started with, what is enforced there, and (without the helper) the
/// shell's `/proc/PID/limits` text.
type RemoteStart = (
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
async fn start_remote_shell(
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
            let start = helper_start(config, sandbox, default_workspace, dialect, ephemeral);
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
fn helper_start(
    config: &SessionConfig,
    sandbox: &crate::remote_sandbox::RemoteSandbox,
    default_workspace: &str,
    dialect: frame::Dialect,
    ephemeral_container: bool,
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
    }
}

/// What a local shell's runtime decisions need: the policies, the session's decision
/// environment, redaction, the audit sinks and the approver.
fn guard_spec(
    config: &SessionConfig,
    id: &str,
    home: &std::path::Path,
    protector: &Protector,
    who: Who,
) -> crate::exec_guard::GuardSpec {
    let mut env = DecisionEnv::local(
        &config.workspace.display().to_string(),
        &home.display().to_string(),
    );
    env.identity = config.identity.clone();
    env.identity.session_id = id.to_string();
    let p = protector.clone();
    crate::exec_guard::GuardSpec {
        engine: config.engine.clone(),
        env,
        shell: config.shell.clone(),
        redact: Arc::new(move |t: &str| p.redact_text(t).text),
        who,
        log: config.audit.clone(),
        observer: config.observer.clone(),
        approver: config.runtime_approver.clone(),
        approval_timeout: Duration::from_secs(300),
    }
}

/// Who and where, for the audit log.
fn who_of(origin: &Origin, id: &str, config: &SessionConfig) -> Who {
    Who {
        session: id.to_string(),
        agent: config.identity.agent.clone(),
        operator: config.identity.operator.clone(),
        transport: match origin {
            Origin::Local => "local".into(),
            Origin::Remote { transport, .. } => transport.as_str().into(),
        },
        target: match origin {
            Origin::Remote {
                host: Some(h),
                user,
                ..
            } => format!("{}@{h}", user.as_deref().unwrap_or("")),
            Origin::Remote {
                container: Some(c), ..
            } => c.clone(),
            _ => config.workspace.display().to_string(),
        },
    }
}

/// What a remote session's runtime decisions need from the session: its id, how it is
/// recorded, and the target the policies see.
struct RemoteGuardInfo {
    id: String,
    who: Who,
    target: execkit_engine::Target,
}

impl RemoteGuardInfo {
    fn of(origin: &Origin, id: &str, config: &SessionConfig) -> RemoteGuardInfo {
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
    fn decider_for(self, config: &SessionConfig) -> crate::exec_guard::DeciderFor {
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
            })
        })
    }
}
