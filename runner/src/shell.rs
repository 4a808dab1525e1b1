//! One running bash: spawning it sandboxed, its stdin, and the tasks that read its output.
//!
//! Output arrives as [`Chunk`]s tagged with a *generation*. When a command leaves
//! background processes behind, the next command gets fresh stdout/stderr pipes (FIFOs in
//! the private tmp dir, opened by the shell with `exec 1>|… 2>|…`) and the generation
//! moves on; whatever the old processes write later lands on the old pipes and is
//! dropped, never attributed to a later command.

use crate::config::SessionConfig;
use crate::frame;
use crate::procs;
use crate::remote::{Control, RemoteShell};
use crate::sandbox::cgroup::{self, Counters, SessionCgroup, Wanted};
use crate::sandbox::{self, namespaces, Enforcement};
use crate::stream::Chunk;
use crate::SessionError;
use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// Bytes read per chunk.
const CHUNK: usize = 64 * 1024;

/// What [`Shell::next_event`] saw.
pub enum ShellEvent {
    /// An output chunk (`None`: every output sender is gone).
    Chunk(Option<Chunk>),
    /// The shell exited with this code.
    Exited(Option<i32>),
}

/// A live shell.
pub struct Shell {
    /// The shell's pid (on the host it runs on).
    pub pid: i32,
    io: Io,
    pub rx: mpsc::Receiver<Chunk>,
    tx: mpsc::Sender<Chunk>,
    current: Arc<AtomicU64>,
    pub token: String,
    pub seq: u64,
    /// Set when the last command left children behind: rotate pipes before the next one.
    pub rotate: bool,
    /// The shell's children when the last command ended (background jobs).
    pub background: Vec<i32>,
    /// What kind of shell it is.
    pub dialect: frame::Dialect,
    /// Children that are background processes of ours (`Session::spawn`): their output
    /// goes to pipes of their own, so they never make the next command rotate its pipes.
    pub managed: Vec<i32>,
    /// Where the shell writes its exported variables after each command (on its host).
    pub exports: Option<String>,
}

/// Where the shell runs and how to reach it.
enum Io {
    Local(Box<Local>),
    Remote(Box<crate::remote::RemoteShell>),
    Helper(Box<crate::helper_shell::HelperShell>),
}

/// A shell on this machine, under the sandbox.
struct Local {
    child: Child,
    /// Our end of the shell's stdin socket.
    stdin: tokio::net::UnixStream,
    /// What `/proc/PID/fd/0` of the shell reads while it is ours (`socket:[INO]`).
    stdin_id: String,
    /// FIFOs of the current generation, unlinked once the command using them is done.
    fifos: Vec<PathBuf>,
    tmp: PathBuf,
    run_as: Option<(u32, u32)>,
    /// The session's cgroup (removed when the shell is dropped).
    cgroup: Option<SessionCgroup>,
    /// Runtime decisions of every program the shell starts.
    guard: Option<crate::exec_guard::ExecGuard>,
    /// The egress broker in the shell's own network (dropped with the shell).
    _egress: Option<crate::egress::Broker>,
}

/// The session's egress broker, when its network is `policy` and its own: `Ok(None)` when
/// it has none to have, `Err` (a note for the report) when it cannot start — the session
/// then reaches nothing outside its loopback.
fn start_broker(
    config: &SessionConfig,
    enforcement: &Enforcement,
    pid: i32,
    guard: Option<&crate::exec_guard::ExecGuard>,
    clients: Arc<execkit_sandbox::socket_owner::BrokerClients>,
) -> Result<Option<crate::egress::Broker>, String> {
    if !brokered(config) || !enforcement.private_network {
        return Ok(None);
    }
    let Some(g) = guard else {
        return Err("no egress broker: connections are decided by the runtime guard, which is off; nothing leaves the session's network".into());
    };
    crate::egress::Broker::start(
        pid,
        g.decider.clone(),
        config.sandbox.egress.clone(),
        clients,
    )
    .map(Some)
    .map_err(|e| format!("no egress broker ({e}): nothing leaves the session's network"))
}

/// True if the session's connections go through the broker (its network is `policy` and
/// the profile gives it no network of the host's).
pub(crate) fn brokered(config: &SessionConfig) -> bool {
    let p = config.sandbox.profile;
    config.sandbox.network == crate::egress::NetworkMode::Policy
        && !p.network()
        && p != sandbox::Profile::Off
}

/// True if the session's sandbox closes its home.
pub(crate) fn closes_home(config: &SessionConfig) -> bool {
    config.sandbox.home.close && config.sandbox.profile != sandbox::Profile::Off
}

/// The clean environment a shell starts with.
pub fn environment(config: &SessionConfig, home: &Path, tmp: &Path) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for (k, v) in [
        ("PATH", crate::config::DEFAULT_PATH),
        ("LANG", "C.UTF-8"),
        ("TERM", "dumb"),
        ("PAGER", "cat"),
        ("GIT_PAGER", "cat"),
        ("MANPAGER", "cat"),
        ("SYSTEMD_PAGER", ""),
        ("LESS", "-FRX"),
        ("NO_COLOR", "1"),
        ("CLICOLOR", "0"),
        ("GIT_TERMINAL_PROMPT", "0"),
        ("DEBIAN_FRONTEND", "noninteractive"),
        ("SHELL", "/bin/bash"),
    ] {
        env.insert(k.to_string(), v.to_string());
    }
    env.insert("HOME".into(), home.display().to_string());
    env.insert("TMPDIR".into(), tmp.display().to_string());
    if brokered(config) {
        for (k, v) in crate::egress::proxy_environment() {
            env.insert(k.to_string(), v);
        }
    }
    if closes_home(config) {
        let git = crate::git_identity::path(tmp);
        env.insert("GIT_CONFIG_GLOBAL".into(), git.display().to_string());
    }
    for (k, v) in &config.env {
        env.insert(k.clone(), v.clone());
    }
    env
}

impl Shell {
    /// A shell over `io` before its init script ran (pid 0 until it reports one).
    fn around(
        io: Io,
        (tx, rx): (mpsc::Sender<Chunk>, mpsc::Receiver<Chunk>),
        current: Arc<AtomicU64>,
        token: String,
        dialect: frame::Dialect,
        exports: Option<String>,
    ) -> Shell {
        Shell {
            pid: 0,
            io,
            rx,
            tx,
            current,
            token,
            seq: 0,
            rotate: false,
            background: Vec::new(),
            dialect,
            managed: Vec::new(),
            exports,
        }
    }

    /// Spawns bash under the sandbox and waits until it has run the init script.
    pub async fn spawn(
        config: &SessionConfig,
        home: &Path,
        tmp: &Path,
        guard: Option<crate::exec_guard::GuardSpec>,
    ) -> Result<(Shell, Enforcement), SessionError> {
        let prepared = sandbox::prepare(&config.sandbox, &config.workspace, home, tmp)?;
        let mut enforcement = prepared.enforcement.clone();
        let clients = Arc::new(execkit_sandbox::socket_owner::BrokerClients::default());
        // Runtime decisions: a listener for the shell's execs, sent back over a socket.
        let guard = match guard {
            Some(spec)
                if config.exec_decisions && config.sandbox.profile != sandbox::Profile::Off =>
            {
                match execkit_sandbox::exec_notify::available() {
                    Ok(()) => {
                        let (ours, theirs) =
                            std::os::unix::net::UnixStream::pair().map_err(SessionError::Spawn)?;
                        let g = crate::exec_guard::ExecGuard::start(
                            std::os::fd::OwnedFd::from(ours),
                            spec,
                            connects(socket_scope(
                                config,
                                tmp,
                                prepared.private_network,
                                clients.clone(),
                            )),
                        )
                        .map_err(SessionError::Spawn)?;
                        enforcement.exec_decisions = true;
                        Some((g, std::os::fd::OwnedFd::from(theirs)))
                    }
                    Err(why) if !config.sandbox.allow_best_effort => {
                        return Err(SessionError::SandboxRequired(format!(
                            "this kernel cannot decide programs at their start ({why}), and the sandbox is not best-effort"
                        )));
                    }
                    Err(why) => {
                        enforcement.notes.push(format!(
                            "no runtime decisions of the programs commands start: {why}"
                        ));
                        None
                    }
                }
            }
            _ => None,
        };
        let notify = guard.as_ref().map(|(_, theirs)| {
            (
                std::os::fd::AsRawFd::as_raw_fd(theirs),
                execkit_sandbox::exec_notify::filter(),
            )
        });
        // The session's cgroup (named after its directory, plus a spawn counter so a
        // restarted shell gets a fresh group) and the rlimits that complete it.
        let res = config.limits.resources;
        let group_name = format!(
            "{}-{}",
            tmp.parent()
                .and_then(|d| d.file_name())
                .and_then(|n| n.to_str())
                .unwrap_or("execkit-session"),
            frame::random_hex(4).map_err(SessionError::Spawn)?
        );
        let cgroup = match SessionCgroup::create(
            &group_name,
            Wanted {
                processes: res.processes,
                memory_bytes: res.memory_bytes,
                cpu_percent: res.cpu_percent,
            },
        ) {
            Ok(g) => g,
            Err(e) => {
                enforcement
                    .notes
                    .push(format!("no session cgroup ({e}): falling back to rlimits"));
                None
            }
        };
        let (rlimits, report, notes) =
            sandbox::rlimits::plan(&res, cgroup.as_ref(), config.run_as.is_some());
        enforcement.resources = report;
        enforcement.notes.extend(notes);
        let cgroup_fds = cgroup.as_ref().map(|g| g.procs_fds()).unwrap_or_default();
        let (stdin, stdin_id, shell_end) = stdin_socket().map_err(SessionError::Spawn)?;
        let mut cmd = Command::new(&config.shell);
        cmd.arg("--noprofile")
            .arg("--norc")
            .env_clear()
            .envs(environment(config, home, tmp))
            .current_dir(&config.workspace)
            .stdin(std::process::Stdio::from(shell_end))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let namespaces = prepared.namespaces;
        let creds = config.run_as.as_ref().map(|r| (r.uid, r.gid));
        if !namespaces {
            // With namespaces the user is switched after mounting `/proc` (see below).
            if let Some((uid, gid)) = creds {
                cmd.uid(uid).gid(gid);
            }
        }
        let prepared = Arc::new(prepared);
        let p = prepared.clone();
        // SAFETY: the closure only makes async-signal-safe system calls (setsid, close_range, unshare,
        // fork, mount, setuid, prctl, landlock_restrict_self, seccomp) on data built before
        // fork.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // Nothing the server inherited (a client's pipe, a harness's descriptor)
                // reaches the shell: every descriptor past stdio closes at `exec`.
                if libc::syscall(
                    libc::SYS_close_range,
                    3u32,
                    u32::MAX,
                    libc::CLOSE_RANGE_CLOEXEC,
                ) < 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                cgroup::join_in_child(&cgroup_fds)?;
                rlimits.apply_in_child()?;
                if namespaces {
                    namespaces::enter(creds, p.private_network)?;
                } else {
                    namespaces::die_with_parent()?;
                }
                p.apply_in_child()?;
                if let Some((sock, prog)) = &notify {
                    let fd = execkit_sandbox::exec_notify::install(prog)?;
                    execkit_sandbox::exec_notify::send_fd(*sock, fd)?;
                    libc::close(fd);
                    libc::close(*sock);
                }
                Ok(())
            });
        }
        // With runtime decisions the shell's own `exec` waits for the guard's answer, which
        // the guard's own thread gives: the spawn may block this thread that long. It must
        // not move to a pool thread: the shell dies with the thread that forked it
        // (`PR_SET_PDEATHSIG` follows the parent thread), and pool threads end when idle.
        let c = cmd.spawn().map_err(SessionError::Spawn)?;
        // The shell's end of the stdin socket must not stay open here.
        drop(cmd);
        let (mut child, guard) = match guard {
            Some((g, theirs)) => {
                drop(theirs);
                (c, Some(g))
            }
            None => (c, None),
        };
        drop(prepared);
        let spawned = child
            .id()
            .map(|p| p as i32)
            .ok_or_else(|| SessionError::NotReady("the shell exited at once".into()))?;
        // With namespaces our child is the keeper and the shell its only child (forked
        // before `spawn` returned: the keeper closes the exec-error pipe after forking).
        let pid = if namespaces {
            *procs::children(spawned).first().ok_or_else(|| {
                SessionError::NotReady("the shell exited at once (no namespace)".into())
            })?
        } else {
            spawned
        };
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| SessionError::NotReady("no stdout".into()))?;
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| SessionError::NotReady("no stderr".into()))?;
        let (tx, rx) = mpsc::channel(64);
        let current = Arc::new(AtomicU64::new(0));
        tokio::spawn(read_loop(stdout, 0, false, current.clone(), tx.clone()));
        tokio::spawn(read_loop(stderr, 0, true, current.clone(), tx.clone()));
        let token = frame::random_hex(8).map_err(SessionError::Spawn)?;
        let egress = start_broker(config, &enforcement, pid, guard.as_ref(), clients);
        match &egress {
            Ok(Some(_)) => enforcement.egress_broker = true,
            Ok(None) => {}
            Err(why) => enforcement.notes.push(why.clone()),
        }
        let io = Io::Local(Box::new(Local {
            child,
            stdin,
            stdin_id,
            fifos: Vec::new(),
            tmp: tmp.to_path_buf(),
            run_as: config.run_as.as_ref().map(|r| (r.uid, r.gid)),
            cgroup,
            guard,
            _egress: egress.ok().flatten(),
        }));
        let exports = Some(tmp.join(crate::exports::FILE).display().to_string());
        let mut shell = Shell::around(io, (tx, rx), current, token, frame::Dialect::Bash, exports);
        shell.pid = pid;
        shell.wait_ready().await?;
        Ok((shell, enforcement))
    }

    /// Sends the init script and waits for the ready marker; returns the pid the shell
    /// reports for itself (`$$`, as its own kernel numbers it).
    async fn wait_ready(&mut self) -> Result<i32, SessionError> {
        let init = frame::init_script(&self.token, self.dialect, self.exports.as_deref());
        self.write(init.as_bytes())
            .await
            .map_err(|e| SessionError::NotReady(format!("cannot write to the shell: {e}")))?;
        let mut split = frame::Splitter::new(frame::ready_marker(&self.token));
        let mut errors = Vec::new();
        let mut pid_text: Option<Vec<u8>> = None;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let chunk = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .map_err(|_| {
                    SessionError::NotReady("no answer from the shell within 10 s".into())
                })?;
            match chunk {
                Some(Chunk {
                    err: true,
                    data: Some(d),
                    ..
                }) => errors.extend(d),
                Some(Chunk {
                    err: false,
                    data: Some(d),
                    ..
                }) => {
                    match &mut pid_text {
                        Some(t) => t.extend_from_slice(&d),
                        None => {
                            if let frame::Split::Found { after, .. } = split.push(&d) {
                                pid_text = Some(after);
                            }
                        }
                    }
                    if let Some(t) = &pid_text {
                        if let Some(end) = t.iter().position(|&b| b == b'\n') {
                            let pid = String::from_utf8_lossy(&t[..end]).trim().parse::<i32>();
                            return pid.map_err(|_| {
                                SessionError::NotReady("the shell's ready marker has no pid".into())
                            });
                        }
                    }
                }
                _ => {
                    let status = self.wait_exit().await;
                    return Err(SessionError::NotReady(format!(
                        "the shell exited ({}): {}",
                        status.map(|c| format!("code {c}")).unwrap_or_default(),
                        String::from_utf8_lossy(&errors).trim()
                    )));
                }
            }
        }
    }

    /// Starts a persistent bash on a remote host or in a container and waits until it is
    /// ready; it knows its remote pid, architecture and stdin. `setup` is shell code run
    /// before the framing starts (the remote resource limits).
    pub(crate) async fn spawn_remote(
        control: Control,
        setup: &str,
        dialect: frame::Dialect,
    ) -> Result<Shell, SessionError> {
        let (tx, rx) = mpsc::channel(64);
        let streams = control
            .open_shell(tx.clone(), dialect)
            .await
            .map_err(SessionError::NotReady)?;
        let token = frame::random_hex(8).map_err(SessionError::Spawn)?;
        let io = Io::Remote(Box::new(RemoteShell::new(control, streams)));
        let current = Arc::new(AtomicU64::new(0));
        let mut shell = Shell::around(io, (tx, rx), current, token, dialect, None);
        shell
            .write(format!("{}{setup}", crate::remote::PRELUDE).as_bytes())
            .await
            .map_err(|e| SessionError::NotReady(format!("cannot write to the shell: {e}")))?;
        shell.pid = shell.wait_ready().await?;
        if let Io::Remote(r) = &mut shell.io {
            r.learn(shell.pid, dialect)
                .await
                .map_err(SessionError::NotReady)?;
        }
        Ok(shell)
    }

    /// Starts the remote helper with `launch`, sends it the session's `start`, and waits
    /// until its shell is ready; returns the shell and what the helper reported.
    ///
    /// With `decider` (made once the helper reported where the shell runs), the programs
    /// the helper stops at their start are decided here.
    pub(crate) async fn spawn_helper(
        control: Control,
        launch: crate::remote_helper::Launch,
        start: &execkit_helper::msg::Start,
        nonce: &str,
        dialect: frame::Dialect,
        decider: Option<crate::exec_guard::DeciderFor>,
    ) -> Result<(Shell, execkit_helper::msg::Ready), SessionError> {
        use crate::remote_helper::Launch;
        let (tx, rx) = mpsc::channel(64);
        let current = Arc::new(AtomicU64::new(0));
        let not_ready = |e: String| SessionError::NotReady(e);
        let (raw, cleanup) = match (&control, launch) {
            (Control::Ssh(c), Launch::Ssh(cmd)) => (
                c.open_raw(&cmd)
                    .await
                    .map_err(|e| not_ready(e.to_string()))?,
                None,
            ),
            (Control::Docker(d), Launch::Docker(argv, cleanup)) => (
                d.open_raw(&argv)
                    .await
                    .map_err(|e| not_ready(e.to_string()))?,
                cleanup,
            ),
            _ => {
                return Err(not_ready(
                    "the helper's launch does not fit the transport".into(),
                ))
            }
        };
        let (asks_tx, asks) = match decider {
            Some(_) => {
                let (t, r) = mpsc::channel(256);
                (Some(t), Some(r))
            }
            None => (None, None),
        };
        let started = crate::helper_link::Link::start(
            raw,
            nonce,
            start,
            tx.clone(),
            current.clone(),
            asks_tx,
        )
        .await;
        if let Some(path) = &cleanup {
            let _ = control
                .run(&format!("rm -f {}", frame::single_quote(path)))
                .await;
        }
        let link = Arc::new(started.map_err(|e| not_ready(e.to_string()))?);
        let ready = link.ready.clone();
        let token = frame::random_hex(8).map_err(SessionError::Spawn)?;
        let decider = match (decider, asks) {
            (Some(make), Some(asks)) if ready.enforcement.exec_decisions => {
                let d = make(&ready);
                crate::helper_shell::answer_asks(link.clone(), d.clone(), asks);
                if let Some(b) = start.broker.as_ref().filter(|b| b.relay) {
                    let config = crate::egress::EgressConfig {
                        hosts: b.hosts.clone(),
                    };
                    link.tunnels.arm(d.clone(), config);
                }
                Some(d)
            }
            _ => None,
        };
        let io = Io::Helper(Box::new(crate::helper_shell::HelperShell {
            link,
            decider,
            cwd: std::sync::Mutex::new(None),
        }));
        let exports = (dialect == frame::Dialect::Bash)
            .then(|| format!("{}/{}", ready.private_dir, crate::exports::FILE));
        let mut shell = Shell::around(io, (tx, rx), current, token, dialect, exports);
        match shell.wait_ready().await {
            Ok(pid) => shell.pid = pid,
            Err(e) => {
                shell.kill_all();
                return Err(e);
            }
        }
        Ok((shell, ready))
    }

    /// What the shell last wrote to its exported-variables file (bash shells held here
    /// or by the helper).
    pub(crate) async fn saved_exports(&self) -> Option<String> {
        match &self.io {
            Io::Local(_) => std::fs::read_to_string(self.exports.as_ref()?).ok(),
            Io::Helper(h) => {
                self.exports.as_ref()?;
                h.link.call_as(&execkit_helper::msg::Call::Exports).await
            }
            Io::Remote(_) => None,
        }
    }

    /// A command starts: runtime decisions are now recorded under it (`raw` as sent,
    /// `command` redacted, `prepared` as the session parsed it in its cwd; `approved`: its
    /// decision and approver, when a human approved it).
    pub(crate) fn guard_begin(
        &self,
        raw: &str,
        command: &str,
        prepared: &Arc<execkit_engine::Prepared>,
        approved: Option<(&execkit_engine::Decision, &str)>,
    ) {
        if let Some(d) = self.decider() {
            d.begin(raw, command, prepared, approved);
        }
    }

    /// The shell is about to start one of execkit's own programs, `program` with exactly
    /// `argv`.
    pub(crate) fn guard_expect(&self, program: String, argv: Vec<String>) {
        if let Some(d) = self.decider() {
            d.expect_own(program, argv);
        }
    }

    /// The command ended: the programs refused while it ran, and how many started.
    pub(crate) fn guard_finish(&self) -> (Vec<crate::result::RuntimeDenial>, u64) {
        self.decider().map(|d| d.finish()).unwrap_or_default()
    }

    /// The session's runtime decider, where programs are decided as they start.
    fn decider(&self) -> Option<&crate::exec_guard::RuntimeDecider> {
        match &self.io {
            Io::Local(l) => l.guard.as_ref().map(|g| g.decider.as_ref()),
            Io::Helper(h) => h.decider.as_deref(),
            Io::Remote(_) => None,
        }
    }

    /// The helper's link, for a shell the remote helper holds.
    pub(crate) fn helper_link(&self) -> Option<Arc<crate::helper_link::Link>> {
        match &self.io {
            Io::Helper(h) => Some(h.link.clone()),
            _ => None,
        }
    }

    /// The generation of the current pipes.
    pub fn generation(&self) -> u64 {
        self.current.load(Ordering::SeqCst)
    }

    /// Writes to the shell's stdin.
    pub async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match &mut self.io {
            Io::Local(l) => {
                l.stdin.write_all(bytes).await?;
                l.stdin.flush().await
            }
            Io::Remote(r) => r.write(bytes).await,
            Io::Helper(h) => h.write(bytes).await,
        }
    }

    /// The next output chunk or the shell's exit, whichever comes first (cancel-safe).
    pub async fn next_event(&mut self) -> ShellEvent {
        let Shell { rx, io, .. } = self;
        tokio::select! {
            c = rx.recv() => ShellEvent::Chunk(c),
            code = Self::io_exit(io) => ShellEvent::Exited(code),
        }
    }

    async fn io_exit(io: &mut Io) -> Option<i32> {
        match io {
            Io::Local(l) => l.child.wait().await.ok().and_then(|s| {
                use std::os::unix::process::ExitStatusExt;
                s.code().or_else(|| s.signal().map(|sig| 128 + sig))
            }),
            Io::Remote(r) => r.wait_exit().await,
            Io::Helper(h) => h.wait_exit().await,
        }
    }

    /// Waits until the shell has exited; its exit code (128 + signal when killed).
    pub async fn wait_exit(&mut self) -> Option<i32> {
        Self::io_exit(&mut self.io).await
    }

    /// True if the shell is blocked reading its stdin from us: the command is over.
    pub async fn waiting_for_input(&self) -> bool {
        match &self.io {
            Io::Local(l) => {
                procs::blocked_reading_stdin(self.pid)
                    && procs::fd_target(self.pid, 0)
                        .is_some_and(|t| t.as_os_str() == l.stdin_id.as_str())
            }
            Io::Remote(r) => r.waiting_for_input(self.pid).await,
            Io::Helper(h) => h.confirm_over().await.is_some(),
        }
    }

    /// [`Shell::waiting_for_input`] without waiting: the local kernel's answer; a remote
    /// shell is taken as not waiting (used only to unmask a forged ask marker that is
    /// followed by a megabyte of output, which a real one never is).
    pub fn waiting_for_input_now(&self) -> bool {
        match &self.io {
            Io::Local(l) => {
                procs::blocked_reading_stdin(self.pid)
                    && procs::fd_target(self.pid, 0)
                        .is_some_and(|t| t.as_os_str() == l.stdin_id.as_str())
            }
            Io::Remote(_) | Io::Helper(_) => false,
        }
    }

    /// If the shell is blocked reading its stdin from us (the command is over), its
    /// children now — background jobs — in one look (one control command remotely).
    pub async fn confirm_over(&self) -> Option<Vec<i32>> {
        match &self.io {
            Io::Local(_) => self
                .waiting_for_input()
                .await
                .then(|| procs::children(self.pid)),
            Io::Remote(r) => r.waiting_with_children(self.pid).await,
            Io::Helper(h) => h.confirm_over().await,
        }
    }

    /// The process groups of the shell's children now (the shell's own left out; remotely,
    /// a child in the shell's group as a negated pid).
    pub async fn child_groups(&self, except: &[i32]) -> Vec<i32> {
        match &self.io {
            Io::Local(_) => procs::children(self.pid)
                .into_iter()
                .filter(|c| !except.contains(c))
                .filter_map(procs::stat)
                .map(|s| s.pgid)
                .filter(|&g| g != self.pid)
                .collect(),
            // A child in the shell's own group (a `sh` without job control) is signalled
            // alone (negated: a single process), never through the shell's group.
            Io::Remote(r) => r
                .children(self.pid)
                .await
                .into_iter()
                .filter(|(c, _)| !except.contains(c))
                .map(|(c, g)| if g == 0 || g == self.pid { -c } else { g })
                .collect(),
            Io::Helper(h) => h.child_groups(except).await,
        }
    }

    /// Sends `sig` to process groups.
    pub async fn signal_groups(&self, groups: &[i32], sig: i32) {
        match &self.io {
            Io::Local(_) => {
                for g in groups {
                    procs::signal_group(*g, sig);
                }
            }
            Io::Remote(r) => r.signal_groups(groups, sig).await,
            Io::Helper(h) => h.signal(groups, sig).await,
        }
    }

    /// Sends `sig` to the shell itself.
    pub async fn signal_shell(&self, sig: i32) {
        match &self.io {
            Io::Local(_) => {
                procs::signal(self.pid, sig);
            }
            Io::Remote(r) => r.signal_groups(&[-self.pid], sig).await,
            Io::Helper(h) => h.signal_shell(sig).await,
        }
    }

    /// The shell's working directory as the kernel has it: this machine's `/proc`, the
    /// helper's, or (a remote shell without the helper) the remote `/proc` read when the
    /// command's end was confirmed.
    pub fn kernel_cwd(&self) -> Option<PathBuf> {
        match &self.io {
            Io::Local(_) => procs::cwd(self.pid),
            Io::Helper(h) => h.cwd(),
            Io::Remote(r) => r.take_kernel_cwd().map(PathBuf::from),
        }
    }

    /// Reaps dead orphans re-parented to this process (local shells only).
    pub fn reap_orphans(&self) {
        if let Io::Local(_) = &self.io {
            procs::reap_orphans(self.pid, self.pid);
        }
    }

    /// The cgroup's limit counters now (zero without a cgroup).
    pub fn counters(&self) -> Counters {
        match &self.io {
            Io::Local(l) => l
                .cgroup
                .as_ref()
                .map(SessionCgroup::counters)
                .unwrap_or_default(),
            Io::Remote(_) | Io::Helper(_) => Counters::default(),
        }
    }

    /// True when the shell is remote and its connection has dropped.
    pub fn transport_lost(&self) -> bool {
        match &self.io {
            Io::Local(_) => false,
            Io::Remote(r) => r.transport_lost(),
            Io::Helper(h) => h.link.lost(),
        }
    }

    /// The session's private directory on the remote side (remote shells that have one).
    pub fn remote_tmp(&self) -> Option<String> {
        match &self.io {
            Io::Local(_) => None,
            Io::Remote(r) => r.private_dir(),
            Io::Helper(h) => Some(h.link.ready.private_dir.clone()),
        }
    }

    /// True for a shell on another host or in a container.
    pub fn is_remote(&self) -> bool {
        matches!(self.io, Io::Remote(_) | Io::Helper(_))
    }

    /// Prepares fresh pipes for the next command and returns the shell code that
    /// switches to them (remotely: FIFOs on the remote host read by channels of their own;
    /// empty when the remote side cannot, and the streams stay as they are).
    pub async fn rotate_pipes(&mut self) -> std::io::Result<String> {
        let l = match &mut self.io {
            Io::Local(l) => l,
            Io::Remote(r) => {
                self.rotate = false;
                return Ok(r.rotate(&self.current, &self.tx).await.unwrap_or_default());
            }
            Io::Helper(h) => {
                self.rotate = false;
                return Ok(h.rotate(&self.current).await.unwrap_or_default());
            }
        };
        let name = frame::random_hex(8)?;
        let out = l.tmp.join(format!(".ek-{name}-out"));
        let err = l.tmp.join(format!(".ek-{name}-err"));
        for p in [&out, &err] {
            mkfifo(p)?;
            if let Some((uid, gid)) = l.run_as {
                std::os::unix::fs::chown(p, Some(uid), Some(gid))?;
            }
        }
        let gen = self.current.fetch_add(1, Ordering::SeqCst) + 1;
        for (p, is_err) in [(&out, false), (&err, true)] {
            let path = p.clone();
            let tx = self.tx.clone();
            let current = self.current.clone();
            tokio::spawn(async move {
                // Blocks until the shell opens the write end, so we never see an early EOF.
                let opened = tokio::task::spawn_blocking(move || std::fs::File::open(path)).await;
                let receiver = match opened {
                    Ok(Ok(file)) => tokio::net::unix::pipe::Receiver::from_file(file).ok(),
                    _ => None,
                };
                match receiver {
                    Some(r) => read_loop(r, gen, is_err, current, tx).await,
                    // Could not read the new FIFO: report the stream as closed.
                    None => {
                        let _ = tx
                            .send(Chunk {
                                gen,
                                err: is_err,
                                data: None,
                            })
                            .await;
                    }
                }
            });
        }
        l.fifos = vec![out.clone(), err.clone()];
        self.rotate = false;
        Ok(format!(
            "exec 1>|{} 2>|{}; ",
            frame::ansi_c_quote(&out.display().to_string()),
            frame::ansi_c_quote(&err.display().to_string())
        ))
    }

    /// Removes this generation's FIFO names (the open pipes stay).
    pub fn unlink_fifos(&mut self) {
        let Io::Local(l) = &mut self.io else {
            return;
        };
        for p in l.fifos.drain(..) {
            // Wake a reader still blocked in open (the shell never opened it).
            let _ = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&p);
            let _ = std::fs::remove_file(&p);
        }
    }

    /// Kills the shell and everything it started.
    pub fn kill_all(&mut self) {
        self.unlink_fifos();
        match &mut self.io {
            Io::Local(l) => {
                procs::kill_tree(self.pid, self.pid, 50);
                let _ = l.child.start_kill();
            }
            Io::Remote(r) => r.kill_all(self.pid),
            Io::Helper(h) => h.kill_all(),
        }
    }
}

/// The shell's stdin: a Unix socket pair, not a pipe. A pipe can be opened again for
/// writing through `/proc/PID/fd/0` by anything running as the shell's user, which would
/// put lines into the shell's input that no policy decided; a socket cannot be opened
/// through `/proc` at all (ENXIO). The shell's end is shut for writing, so nothing the
/// shell writes to it (`echo >&0` from the saved descriptor) reaches us either.
///
/// Returns our end, what `/proc/PID/fd/0` names the shell's end (`socket:[INO]`), and the
/// shell's end.
fn stdin_socket() -> std::io::Result<(tokio::net::UnixStream, String, std::os::fd::OwnedFd)> {
    let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
    theirs.shutdown(std::net::Shutdown::Write)?;
    ours.shutdown(std::net::Shutdown::Read)?;
    let theirs = std::fs::File::from(std::os::fd::OwnedFd::from(theirs));
    let ino = theirs.metadata()?.ino();
    ours.set_nonblocking(true)?;
    let ours = tokio::net::UnixStream::from_std(ours)?;
    Ok((ours, format!("socket:[{ino}]"), theirs.into()))
}

pub(crate) fn mkfifo(p: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::other("NUL in FIFO path"))?;
    // SAFETY: a valid C string and mode.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

async fn read_loop<R: AsyncRead + Unpin>(
    mut r: R,
    gen: u64,
    err: bool,
    current: Arc<AtomicU64>,
    tx: mpsc::Sender<Chunk>,
) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = tx
                    .send(Chunk {
                        gen,
                        err,
                        data: None,
                    })
                    .await;
                return;
            }
            Ok(n) => {
                // A stale generation keeps draining (so late writers never block) but
                // nothing it reads is passed on.
                if current.load(Ordering::SeqCst) != gen {
                    continue;
                }
                if tx
                    .send(Chunk {
                        gen,
                        err,
                        data: Some(buf[..n].to_vec()),
                    })
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

/// The guard's answer to a stopped `connect`: the socket guard's, within `scope`.
fn connects(scope: crate::socket_guard::SocketScope) -> crate::exec_guard::ConnectHandler {
    Box::new(move |sup, decider, n| crate::socket_guard::handle(sup, decider, &scope, n))
}

/// What the session's sockets reach without a decision: the workspace and its private
/// tmp (see [`crate::socket_guard`]).
fn socket_scope(
    config: &SessionConfig,
    tmp: &Path,
    private_network: bool,
    broker_clients: Arc<execkit_sandbox::socket_owner::BrokerClients>,
) -> crate::socket_guard::SocketScope {
    let own = [config.workspace.as_path(), tmp]
        .iter()
        .filter_map(|p| std::fs::canonicalize(p).ok())
        .collect();
    crate::socket_guard::SocketScope {
        own,
        private_network,
        broker_clients,
        creds: config
            .run_as
            .as_ref()
            .map(|r| execkit_sandbox::socket_notify::Creds {
                uid: r.uid,
                gid: r.gid,
            }),
    }
}
