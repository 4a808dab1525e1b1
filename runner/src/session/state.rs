//! The session and what it holds: its shell's state, the reports it gives (info, cwd,
//! progress), the audit records and redaction every room shares, and closing.

use crate::approval::Approval;
use crate::config::SessionConfig;
use crate::frame;
use crate::remote::Control;
use crate::sandbox::Enforcement;
use crate::shell::Shell;
use execkit_audit::{AuditEvent, Who};
use execkit_engine::{DecisionEnv, Transport};
use execkit_protect::Protector;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
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
/// session.exec("cd src && export MODE=fast", &Default::default()).await?;
/// let r = session.exec("pwd; echo $MODE", &Default::default()).await?;
/// assert_eq!(r.stdout, format!("{}/src\nfast\n", ws.canonicalize()?.display()));
/// session.close().await;
/// # std::fs::remove_dir_all(&ws)?;
/// # Ok(()) }
/// ```
pub struct Session {
    pub(super) id: String,
    pub(super) config: SessionConfig,
    /// Where the shell runs (and how to start a new one on restart).
    pub(super) origin: Origin,
    pub(super) protector: Protector,
    pub(super) home: PathBuf,
    pub(super) dir: PathBuf,
    pub(super) tmp: PathBuf,
    pub(super) running: Arc<Running>,
    pub(super) state: Mutex<State>,
    /// The cwd as last reported, readable while a command runs (the state lock is held
    /// for a command's whole run).
    pub(super) last_cwd: std::sync::Mutex<String>,
    /// The shell's PATH as its last command left it (reported by the framing).
    pub(super) last_path: std::sync::Mutex<Option<String>>,
    /// Aliases and functions the session's commands defined (its shell knows them), for
    /// reading later commands the way the shell will.
    pub(super) known: std::sync::Mutex<execkit_grammar::Definitions>,
    /// Background processes started with [`Session::spawn`].
    pub(super) processes: Arc<crate::process::table::ProcessTable>,
    /// The checkpoint store, opened at the first checkpoint.
    pub(super) checkpoints: Arc<std::sync::Mutex<Option<crate::checkpoint::Store>>>,
    /// The checkpoint store on the remote side (SSH, Docker), opened at the first one.
    pub(super) remote_checkpoints: tokio::sync::Mutex<Option<crate::checkpoint::RemoteStore>>,
    /// The exported variables the shell last saved, read when it ended (for `restart`).
    pub(super) saved_exports: std::sync::Mutex<Option<String>>,
}

/// Where a session's shell runs.
pub(super) enum Origin {
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
pub(super) enum Redial {
    Ssh(crate::ssh::SshTarget, crate::ssh::SshSettings),
}

#[derive(Default)]
pub(super) struct Running {
    pub(super) seq: AtomicU64,
    pub(super) cancel: AtomicU64,
    pub(super) notify: Notify,
    /// Bytes read from the shell's stdout / stderr during the current command.
    pub(super) stdout_bytes: AtomicU64,
    pub(super) stderr_bytes: AtomicU64,
    /// A caller asked for a fresh preview of the output (see [`Session::progress`]).
    pub(super) preview_wanted: std::sync::atomic::AtomicBool,
    /// The latest preview: protected stdout and stderr so far, complete lines only.
    pub(super) preview: std::sync::Mutex<(String, String)>,
}

/// How far the running command has got (see [`Session::progress`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// Bytes read so far from stdout (before protection; framing included).
    pub stdout_bytes: u64,
    /// Bytes read so far from stderr.
    pub stderr_bytes: u64,
    /// The end of stdout so far, protected exactly as the result will be (escapes
    /// stripped, secrets redacted), complete lines only, at most [`Progress::TAIL_BYTES`]. It
    /// lags by one call: each call asks for a fresh one and returns the latest.
    pub stdout_tail: String,
    /// The end of stderr so far, likewise.
    pub stderr_tail: String,
}

impl Progress {
    /// The most of each stream a progress preview shows.
    pub const TAIL_BYTES: usize = 2048;
}

pub(super) struct State {
    pub(super) shell: Option<Shell>,
    pub(super) gone: Option<String>,
    pub(super) closed: bool,
    pub(super) cwd: String,
    pub(super) enforcement: Enforcement,
}

/// The remote connection in use now.
pub(super) fn current(control: &std::sync::Mutex<Control>) -> Control {
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

/// Who and where, for the audit log.
pub(super) fn who_of(origin: &Origin, id: &str, config: &SessionConfig) -> Who {
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

/// A command and its cwd as records show them, redacted once for every record of one exec
/// (the decision, the runtime guard, the command record, the transcript); any other text
/// is redacted when asked for.
pub(super) struct Shown<'a> {
    session: &'a Session,
    command: (&'a str, String),
    cwd: (&'a str, String),
}

impl<'a> Shown<'a> {
    pub(super) fn new(session: &'a Session, command: &'a str, cwd: &'a str) -> Shown<'a> {
        Shown {
            session,
            command: (command, session.redact(command)),
            cwd: (cwd, session.redact(cwd)),
        }
    }

    /// The command, redacted.
    pub(super) fn command(&self) -> &str {
        &self.command.1
    }

    /// The cwd, redacted.
    pub(super) fn cwd(&self) -> &str {
        &self.cwd.1
    }

    /// `text`, redacted (the command's and the cwd's from the copies made once).
    pub(super) fn redact(&self, text: &str) -> String {
        if text == self.command.0 {
            self.command.1.clone()
        } else if text == self.cwd.0 {
            self.cwd.1.clone()
        } else {
            self.session.redact(text)
        }
    }
}

/// What a started shell hands to the session that holds it (see [`Session::assemble`]).
pub(super) struct Started {
    pub(super) id: String,
    pub(super) origin: Origin,
    pub(super) protector: Protector,
    pub(super) home: PathBuf,
    pub(super) dir: PathBuf,
    pub(super) tmp: PathBuf,
    /// The shell's PATH when known before its first command.
    pub(super) path: Option<String>,
    pub(super) shell: Shell,
    pub(super) cwd: String,
    pub(super) enforcement: Enforcement,
}

impl Session {
    /// The session around a shell that has started.
    pub(super) fn assemble(s: Started, config: SessionConfig) -> Session {
        Session {
            id: s.id,
            origin: s.origin,
            protector: s.protector,
            home: s.home,
            dir: s.dir,
            tmp: s.tmp,
            running: Arc::new(Running::default()),
            last_cwd: std::sync::Mutex::new(s.cwd.clone()),
            last_path: std::sync::Mutex::new(s.path),
            known: Default::default(),
            processes: crate::process::table::ProcessTable::new(config.limits.processes),
            checkpoints: Arc::default(),
            remote_checkpoints: tokio::sync::Mutex::new(None),
            saved_exports: std::sync::Mutex::new(None),
            state: Mutex::new(State {
                shell: Some(s.shell),
                gone: None,
                closed: false,
                cwd: s.cwd,
                enforcement: s.enforcement,
            }),
            config,
        }
    }

    /// Records that the session opened or closed.
    pub(super) fn announce(&self, event: execkit_audit::SessionEvent) -> Result<(), String> {
        self.audit(AuditEvent::Session(execkit_audit::SessionRecord {
            who: self.who(),
            event,
        }))
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

    pub(super) fn set_cwd(&self, st: &mut State, cwd: String) {
        *self.last_cwd.lock().unwrap_or_else(|p| p.into_inner()) = cwd.clone();
        st.cwd = cwd;
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

    pub(super) fn decision_env(&self, cwd: &str, approved_by: Option<&str>) -> DecisionEnv {
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

    pub(super) fn who(&self) -> Who {
        who_of(&self.origin, &self.id, &self.config)
    }

    /// Writes `event` to the audit log (and the observers). `Err` says why the log could not
    /// take it: decisions and openings that cannot be recorded do not go ahead.
    pub(super) fn audit(&self, event: AuditEvent) -> Result<(), String> {
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
