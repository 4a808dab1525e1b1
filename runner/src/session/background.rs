//! Background processes: decided like a command, started by the session's shell (or a
//! remote launcher) in its cwd and environment, and adopted by the process table.

use super::exec::check_command;
use super::run::Run;
use super::state::{current, Origin, Session, Shown, State};
use crate::frame;
use crate::remote::Control;
use crate::result::ExecError;
use crate::shell::Shell;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// A background process the shell has started, before it is wrapped in a handle.
pub(super) struct Launched {
    pub(super) pgid: Option<i32>,
    pub(super) signaller: crate::process::state::Signaller,
    pub(super) stdin: crate::process::state::Stdin,
    pub(super) events: tokio::sync::mpsc::Receiver<crate::process::state::Event>,
    pub(super) ready: (Vec<u8>, Vec<crate::process::state::Event>),
}

impl Session {
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
        let approval = opts.approval.as_ref();
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
        let cwd = st.cwd.clone();
        let shown = Shown::new(self, command, &cwd);
        self.authorize(&st, command, approval, &shown, &mut Default::default())
            .await?;
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
                command: shown.command().to_string(),
                cwd: shown.cwd().to_string(),
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
                command: shown.command().to_string(),
                cwd: shown.cwd().to_string(),
                name: opts.name.clone(),
                pgid: launched.pgid,
            },
        );
        self.processes.add(handle.clone());
        Ok(handle)
    }

    /// Runs the wrapper line of a background process through the shell; returns the pid
    /// the shell printed for the job and the shell's new children.
    pub(super) async fn run_wrapper(
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
    pub(super) fn adopt(st: &mut State, pid: Option<i32>, local: bool) {
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
    pub(super) async fn launch_local(
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
    pub(super) async fn launch_remote(
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
}
