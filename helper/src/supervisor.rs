//! `execkit-helper shell NONCE`: the remote session's keeper.
//!
//! It greets the server (so banners before it are skipped), reads the session's
//! [`Start`], starts the shell ([`crate::spawn`]) and reports [`Ready`]; then, in one
//! `poll(2)` loop on one thread, it relays the server's input to the shell's stdin socket,
//! the shell's output (tagged with its stream generation) to the server, answers the
//! server's calls from `/proc`, and reaps. The tree is killed and the private directory
//! removed when the server says `Close`, when its stdin ends (the connection is gone: the
//! server exited or was killed, or the network dropped), when no frame arrived for the
//! idle limit, or on a protocol error.

use crate::spawn::{self, Namespaces, Plan};
use crate::{sys, tree};
use execkit_helper::msg::{Call, Exited, Failed, Ready, Reply, Rotated, Start, Waiting};
use execkit_helper::wire::{self, Decoder, Kind};
use execkit_sandbox::procs;
use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Bytes read per chunk.
const CHUNK: usize = 64 * 1024;

/// Index of the first output stream among the polled descriptors (after stdin, SIGCHLD,
/// the shell's stdin and the exec listener).
const STREAMS: usize = 4;

/// Frames are written whole by one thread at a time (the loop and the broker's clients).
static OUT: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Sends one frame to the server.
fn send(kind: Kind, parts: &[&[u8]]) -> io::Result<()> {
    let mut out = Vec::new();
    wire::encode_into(&mut out, kind, parts);
    let _one = OUT.lock().unwrap_or_else(|p| p.into_inner());
    sys::write_all(1, &out)
}

/// Sends a broker's question to the server.
fn send_ask(ask: &execkit_helper::msg::ExecAsk) -> io::Result<()> {
    send_json(Kind::ExecAsk, ask)
}

fn send_json<T: serde::Serialize>(kind: Kind, value: &T) -> io::Result<()> {
    let json = serde_json::to_vec(value).map_err(io::Error::other)?;
    send(kind, &[&json])
}

fn fail(stage: &str, message: impl std::fmt::Display) -> i32 {
    let _ = send_json(
        Kind::Failed,
        &Failed {
            stage: stage.into(),
            message: message.to_string(),
        },
    );
    2
}

/// Reads one whole frame from the blocking stdin.
fn read_frame() -> io::Result<(Kind, Vec<u8>)> {
    let mut head = [0u8; wire::HEADER];
    sys::read_exact(0, &mut head)?;
    let kind =
        Kind::from_byte(head[0]).ok_or_else(|| io::Error::other(wire::WireError::Kind(head[0])))?;
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > wire::MAX_FRAME {
        return Err(io::Error::other(wire::WireError::TooLong(len)));
    }
    let mut payload = vec![0u8; len];
    sys::read_exact(0, &mut payload)?;
    Ok((kind, payload))
}

/// `~/rest` under `home`; anything else as it is.
fn expand(p: &str, home: &str) -> PathBuf {
    match p.strip_prefix("~/") {
        Some(rest) => Path::new(home).join(rest),
        None if p == "~" => PathBuf::from(home),
        None => PathBuf::from(p),
    }
}

/// A fresh private directory (mode 0700) under `$TMPDIR` or `/tmp`.
fn private_dir() -> io::Result<PathBuf> {
    let base = std::env::var("TMPDIR")
        .ok()
        .filter(|t| t.starts_with('/'))
        .unwrap_or_else(|| "/tmp".into());
    for _ in 0..16 {
        let p = Path::new(&base).join(format!(".ek-{}", sys::random_hex(6)?));
        match std::fs::create_dir(&p) {
            Ok(()) => {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700))?;
                return Ok(p);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io::Error::new(e.kind(), format!("{base}: {e}"))),
        }
    }
    Err(io::Error::other("no unused private directory name"))
}

/// The helper's `shell` mode; returns the exit code.
pub fn run(nonce: &str) -> i32 {
    // Nothing inherited past stdio; no core dumps and no `/proc/PID/fd` for processes of
    // the same account (the shell cannot open the connection's pipes); orphans of the
    // tree come to us.
    // SAFETY: close_range on descriptors we do not use.
    unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    sys::ignore_sigpipe();
    let _ = sys::prctl(libc::PR_SET_DUMPABLE, 0);
    if let Err(e) = sys::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) {
        return fail("subreaper", e);
    }
    let mut greeting = wire::MAGIC.to_vec();
    greeting.extend_from_slice(nonce.as_bytes());
    greeting.push(b'\n');
    if sys::write_all(1, &greeting).is_err() {
        return 1;
    }
    let start: Start = match read_frame() {
        Ok((Kind::Start, p)) => match serde_json::from_slice(&p) {
            Ok(s) => s,
            Err(e) => return fail("start", format!("bad Start message: {e}")),
        },
        Ok((k, _)) => return fail("start", format!("expected Start, got {k:?}")),
        Err(e) => return fail("start", e),
    };
    let Some(home) = sys::home_dir() else {
        return fail(
            "setup",
            "the account has no home directory ($HOME unset, no passwd entry)",
        );
    };
    let private = match private_dir() {
        Ok(p) => p,
        Err(e) => return fail("setup", format!("private directory: {e}")),
    };
    let code = match session(&start, &home, &private) {
        Ok(code) => code,
        Err((stage, e)) => fail(stage, e),
    };
    let _ = std::fs::remove_dir_all(&private);
    code
}

type StageError = (&'static str, String);

fn session(start: &Start, home: &str, private: &Path) -> Result<i32, StageError> {
    let workspace = expand(&start.workspace, home);
    if start.create_workspace && !workspace.exists() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&workspace)
            .map_err(|e| ("workspace", format!("{}: {e}", workspace.display())))?;
    }
    let workspace = workspace
        .canonicalize()
        .map_err(|e| ("workspace", format!("{}: {e}", workspace.display())))?;
    let writable = start.writable.iter().map(|p| expand(p, home)).collect();
    let deny_read = start
        .deny_read
        .iter()
        .map(|p| expand(p, home))
        .filter(|p| p.symlink_metadata().is_ok())
        .collect();
    let mut env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| !start.env.iter().any(|(n, _)| n == k))
        .filter(|(k, _)| k != "TMPDIR" && k != "HOME")
        .collect();
    env.extend(start.env.iter().cloned());
    env.push(("HOME".into(), home.into()));
    env.push(("TMPDIR".into(), private.display().to_string()));
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    let program = spawn::find_program(start.shell.program(), &path).ok_or_else(|| {
        (
            "shell",
            format!(
                "no `{}` on the account's PATH ({path})",
                start.shell.program()
            ),
        )
    })?;
    let plan = Plan {
        start,
        program,
        workspace: workspace.clone(),
        private_dir: private.to_path_buf(),
        writable,
        deny_read,
        home: PathBuf::from(home),
        env: env.clone(),
        relayed: false,
    };
    let mut plan = plan;
    let relay = crate::relay::listen(start);
    plan.relayed = matches!(relay, Ok(Some(_)));
    let sigchld = sys::sigchld_fd().map_err(|e| ("setup", format!("signalfd: {e}")))?;
    let mut shell =
        spawn::start(&plan, spawn::wanted(start)).map_err(|e| ("sandbox", e.to_string()))?;
    let egress = start_egress(start, &mut shell, relay);
    note_unmakeable_connections(&mut shell);
    let (machine, kernel) = sys::uname();
    let ready = Ready {
        version: execkit_helper::version_line(),
        helper_pid: std::process::id() as i32,
        home: home.into(),
        workspace: workspace.display().to_string(),
        private_dir: private.display().to_string(),
        machine,
        kernel,
        enforcement: shell.enforcement.clone(),
        env,
    };
    if send_json(Kind::Ready, &ready).is_err() {
        tree::kill_all(Some(shell.pid));
        return Ok(1);
    }
    let mut s = Supervisor::new(
        shell,
        sigchld,
        private.to_path_buf(),
        start.idle_secs,
        &ready.workspace,
    );
    s.with_egress(egress);
    let code = s.run();
    tree::kill_all(s.ns_init());
    Ok(code)
}

/// The way out of the shell's network: the helper's relay where the shell shares the
/// helper's private network, else its broker where the shell has a network of its own;
/// otherwise a note says why the shell reaches no network.
fn start_egress(
    start: &Start,
    shell: &mut spawn::Shell,
    relay: Result<Option<std::net::TcpListener>, String>,
) -> Egress {
    let Some(config) = start.broker.clone() else {
        return Egress::None;
    };
    let why = match (relay, shell.broker_listener.take()) {
        (Ok(Some(l)), _) => match crate::relay::Relay::start(l, config.port, shell.pid, send) {
            Ok(r) => {
                shell.enforcement.egress_broker = true;
                return Egress::Relay(r);
            }
            Err(e) => format!("the relay did not start: {e}"),
        },
        (Err(why), _) => why,
        (Ok(None), Some(l)) => match crate::broker::Broker::start(l, config, shell.pid, send_ask) {
            Ok(b) => {
                shell.enforcement.egress_broker = true;
                return Egress::Broker(b);
            }
            Err(e) => format!("the broker did not start: {e}"),
        },
        (Ok(None), None) => "the shell has no network of its own here".to_string(),
    };
    shell.enforcement.notes.push(format!(
        "no egress broker ({why}): the session has no network but Unix sockets"
    ));
    Egress::None
}

/// Says so when the helper cannot make the shell's connections here: it takes a connecting
/// socket from the shell with `pidfd_getfd`, which a container's seccomp profile may refuse
/// (Docker's, without `SYS_PTRACE`). Every `connect` the shell makes then fails with
/// `EACCES`; the note is what explains it.
fn note_unmakeable_connections(shell: &mut spawn::Shell) {
    if shell.exec_listener.is_none() {
        return;
    }
    if let Err(e) = sys::pidfd_getfd_works() {
        shell.enforcement.notes.push(format!(
            "no connections from the shell, not even to its own sockets: the helper makes each one, and this host refuses it the call it needs (pidfd_getfd: {e}); in a container, run an ephemeral one, whose helper gets it"
        ));
    }
}

/// How the shell's connections leave its network.
enum Egress {
    None,
    /// The helper's broker decides (by the server) and dials.
    Broker(crate::broker::Broker),
    /// The helper relays each client's bytes to the server's broker.
    Relay(crate::relay::Relay),
}

/// One output stream of the shell.
struct Stream {
    fd: OwnedFd,
    generation: u64,
    err: bool,
}

struct Supervisor {
    shell: spawn::Shell,
    alive: bool,
    sigchld: OwnedFd,
    streams: Vec<Stream>,
    input: VecDeque<u8>,
    decoder: Decoder,
    private: PathBuf,
    generation: u64,
    fifos: Vec<PathBuf>,
    idle: Option<Duration>,
    last_frame: Instant,
    /// Programs the shell starts, stopped at `execve` until the server decides them.
    execs: Option<Execs>,
    /// The way out of the shell's network.
    egress: Egress,
}

/// The helper's side of runtime decisions: the listener, the calls waiting for the
/// server's verdict, the verdicts it said may be remembered, the scripts allowed to start.
struct Execs {
    sup: execkit_sandbox::exec_notify::Supervisor,
    waiting: std::collections::HashMap<
        u64,
        (
            libc::seccomp_notif,
            execkit_sandbox::exec_notify::Snapshot,
            execkit_sandbox::exec_notify::Exec,
            PathBuf,
        ),
    >,
    /// Starts the server allowed and said may be remembered (cleared past
    /// [`REMEMBERED_MAX`]).
    remembered: std::collections::HashSet<Remembered>,
    scripts: execkit_sandbox::exec_notify::ScriptStarts,
    lineage: execkit_sandbox::exec_notify::Lineage,
    connects: crate::connects::Connects,
}

/// Remembered starts at most.
const REMEMBERED_MAX: usize = 4096;

/// A start as remembered: program, arguments, working directory and caller (what the
/// policies may see of it).
type Remembered = (String, Vec<String>, String, String);

fn remembered_key(exec: &execkit_sandbox::exec_notify::Exec) -> Remembered {
    (
        execkit_sandbox::exec_notify::program(exec),
        exec.argv.clone(),
        exec.cwd.clone(),
        exec.caller.clone(),
    )
}

enum Step {
    Go,
    Stop(i32),
}

impl Supervisor {
    fn new(
        shell: spawn::Shell,
        sigchld: OwnedFd,
        private: PathBuf,
        idle_secs: u64,
        workspace: &str,
    ) -> Self {
        // SAFETY: dup of descriptors we own, to keep them apart from the shell struct.
        let (out, err) = unsafe {
            (
                OwnedFd::from_raw_fd(libc::dup(shell.stdout.as_raw_fd())),
                OwnedFd::from_raw_fd(libc::dup(shell.stderr.as_raw_fd())),
            )
        };
        Supervisor {
            streams: vec![
                Stream {
                    fd: out,
                    generation: 0,
                    err: false,
                },
                Stream {
                    fd: err,
                    generation: 0,
                    err: true,
                },
            ],
            shell,
            alive: true,
            sigchld,
            input: VecDeque::new(),
            decoder: Decoder::new(),
            private,
            generation: 0,
            fifos: Vec::new(),
            idle: (idle_secs > 0).then(|| Duration::from_secs(idle_secs)),
            last_frame: Instant::now(),
            execs: None,
            egress: Egress::None,
        }
        .with_execs(workspace)
    }

    /// Serves the shell's network through `egress`: the connections to it the exec
    /// listener makes are noted with their program.
    fn with_egress(&mut self, egress: Egress) {
        let noted = match &egress {
            Egress::None => None,
            Egress::Broker(b) => Some((b.port(), b.clients())),
            Egress::Relay(r) => Some((r.port(), r.clients())),
        };
        if let (Some(e), Some((port, clients))) = (self.execs.as_mut(), noted) {
            e.connects.note_broker_clients(port, clients);
        }
        self.egress = egress;
    }

    fn with_execs(mut self, workspace: &str) -> Self {
        let workspace = PathBuf::from(workspace);
        self.execs = self.shell.exec_listener.take().map(|sup| Execs {
            sup,
            waiting: Default::default(),
            remembered: Default::default(),
            scripts: Default::default(),
            lineage: Default::default(),
            connects: crate::connects::Connects::new(
                own_dirs(&workspace, &self.private),
                self.shell.enforcement.private_network,
            ),
        });
        self
    }

    fn ns_init(&self) -> Option<i32> {
        (self.alive && self.shell.namespaces != Namespaces::None).then_some(self.shell.pid)
    }

    fn run(&mut self) -> i32 {
        loop {
            match self.turn() {
                Ok(Step::Go) => {}
                Ok(Step::Stop(code)) => return code,
                Err(_) => return 1,
            }
        }
    }

    fn turn(&mut self) -> io::Result<Step> {
        let mut fds = vec![
            pollfd(0, libc::POLLIN),
            pollfd(self.sigchld.as_raw_fd(), libc::POLLIN),
            pollfd(
                self.shell.stdin.as_raw_fd(),
                if self.alive && !self.input.is_empty() {
                    libc::POLLOUT
                } else {
                    0
                },
            ),
            pollfd(
                self.execs.as_ref().map_or(-1, |e| e.sup.raw_fd()),
                libc::POLLIN,
            ),
        ];
        fds.extend(
            self.streams
                .iter()
                .map(|s| pollfd(s.fd.as_raw_fd(), libc::POLLIN)),
        );
        let timeout = match self.idle {
            Some(idle) => {
                let left = idle.saturating_sub(self.last_frame.elapsed());
                if left.is_zero() {
                    return Ok(Step::Stop(3));
                }
                i32::try_from(left.as_millis()).unwrap_or(i32::MAX).max(1)
            }
            None => -1,
        };
        sys::poll(&mut fds, timeout)?;
        let ready = |i: usize| fds[i].revents != 0;
        for i in (STREAMS..fds.len()).rev() {
            if ready(i) {
                self.read_stream(i - STREAMS)?;
            }
        }
        if ready(2) {
            self.write_input();
        }
        if ready(3) {
            if fds[3].revents & libc::POLLIN != 0 {
                self.exec_stopped()?;
            } else {
                // No process of the session is left under the filter.
                self.execs = None;
            }
        }
        if ready(1) {
            self.reap()?;
        }
        if ready(0) {
            let mut buf = vec![0u8; CHUNK];
            let n = sys::read(0, &mut buf)?;
            if n == 0 {
                return Ok(Step::Stop(0));
            }
            self.last_frame = Instant::now();
            self.decoder.push(&buf[..n]);
            loop {
                match self.decoder.next_frame() {
                    Ok(Some((kind, payload))) => {
                        if let Step::Stop(code) = self.frame(kind, payload)? {
                            return Ok(Step::Stop(code));
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        eprintln!("execkit-helper: protocol error: {e}");
                        return Ok(Step::Stop(4));
                    }
                }
            }
        }
        Ok(Step::Go)
    }

    fn frame(&mut self, kind: Kind, payload: Vec<u8>) -> io::Result<Step> {
        match kind {
            Kind::Input => {
                if self.alive {
                    self.input.extend(payload);
                    self.write_input();
                }
            }
            Kind::Call => {
                let (id, json) = wire::split_id(kind, &payload).map_err(io::Error::other)?;
                let reply = match serde_json::from_slice::<Call>(json) {
                    Ok(call) => self.call(call),
                    Err(e) => Reply::Err(format!("bad call: {e}")),
                };
                let json = serde_json::to_vec(&reply).map_err(io::Error::other)?;
                send(Kind::Reply, &[&id.to_be_bytes(), &json])?;
            }
            Kind::Ping => {}
            Kind::ExecVerdict => {
                let v: execkit_helper::msg::ExecVerdict =
                    serde_json::from_slice(&payload).map_err(io::Error::other)?;
                self.exec_verdict(v);
            }
            Kind::Close => return Ok(Step::Stop(0)),
            Kind::TunnelDown | Kind::TunnelDownEnd | Kind::TunnelUpAck => {
                self.tunnel(kind, &payload)?;
            }
            other => {
                eprintln!("execkit-helper: unexpected {other:?} frame from the server");
                return Ok(Step::Stop(4));
            }
        }
        Ok(Step::Go)
    }

    /// A frame for one of the relay's clients.
    fn tunnel(&self, kind: Kind, payload: &[u8]) -> io::Result<()> {
        let (id, rest) = wire::split_id(kind, payload).map_err(io::Error::other)?;
        let Egress::Relay(r) = &self.egress else {
            return Ok(());
        };
        match kind {
            Kind::TunnelDown => r.down(id, rest),
            Kind::TunnelDownEnd => r.down_end(id),
            _ => r.up_ack(id, wire::ack_count(kind, rest).map_err(io::Error::other)?),
        }
        Ok(())
    }

    /// A program stopped at its start: answered here when the answer is known (missing,
    /// a script's interpreter, remembered), else asked of the server.
    fn exec_stopped(&mut self) -> io::Result<()> {
        use execkit_sandbox::exec_notify::task_path;
        let shell = self.shell.pid;
        let Some(e) = self.execs.as_mut() else {
            return Ok(());
        };
        let Some(n) = e.sup.recv()? else {
            return Ok(());
        };
        if execkit_sandbox::socket_notify::is_connect(&n) {
            return match e.connects.stopped(&e.sup, &n) {
                crate::connects::Next::Done => Ok(()),
                crate::connects::Next::Ask { program, path } => {
                    let start = execkit_helper::msg::ProgramStart {
                        program,
                        argv: Vec::new(),
                        cwd: String::new(),
                        parents: e.lineage.parents(n.pid as i32, shell),
                        pid: tree::ids(n.pid as i32).map_or(n.pid as i32, |((p, _), _)| p),
                        caller: String::new(),
                    };
                    let ask = execkit_helper::msg::ExecAsk {
                        id: n.id,
                        start,
                        socket: Some(path),
                        connection: None,
                        interpreters: Vec::new(),
                    };
                    let json = serde_json::to_vec(&ask).map_err(io::Error::other)?;
                    send(Kind::ExecAsk, &[&json])
                }
            };
        }
        let (exec, snap) = match e.sup.read_exec(&n) {
            Ok(x) => x,
            Err(_) => {
                // What cannot be read is not run.
                let _ = e.sup.answer(n.id, false, libc::EACCES);
                return Ok(());
            }
        };
        let file = task_path(&exec);
        if std::fs::metadata(&file).is_err() {
            let _ = e.sup.answer(n.id, false, libc::ENOENT);
            return Ok(());
        }
        let key = remembered_key(&exec);
        // A script's `#!` line is read at each start: a remembered script whose line now
        // names another interpreter is decided again.
        let interpreters = execkit_sandbox::exec_notify::interpreter_starts(&exec, &file);
        let remembered = e.remembered.contains(&key) && interpreters.is_empty();
        if e.scripts.continues(&exec, &file) || remembered {
            let same = e.sup.still_the_same(&n, &snap);
            if same {
                e.scripts.allowed(&exec, &file);
            }
            let _ = e.sup.answer(n.id, same, libc::EACCES);
            return Ok(());
        }
        let start = execkit_helper::msg::ProgramStart {
            program: key.0,
            argv: key.1,
            cwd: key.2,
            parents: e.lineage.parents(exec.pid, shell),
            pid: tree::ids(exec.pid).map_or(exec.pid, |((p, _), _)| p),
            caller: key.3,
        };
        let ask = execkit_helper::msg::ExecAsk {
            id: n.id,
            start,
            socket: None,
            connection: None,
            interpreters,
        };
        e.waiting.insert(n.id, (n, snap, exec, file));
        let json = serde_json::to_vec(&ask).map_err(io::Error::other)?;
        send(Kind::ExecAsk, &[&json])
    }

    /// The server decided a program that waits.
    fn exec_verdict(&mut self, v: execkit_helper::msg::ExecVerdict) {
        if v.connection {
            if let Egress::Broker(b) = &self.egress {
                b.verdict(v);
            }
            return;
        }
        let Some(e) = self.execs.as_mut() else {
            return;
        };
        if e.connects.verdict(&e.sup, v.id, v.allow) {
            return;
        }
        let Some((n, snap, exec, file)) = e.waiting.remove(&v.id) else {
            return;
        };
        let allow = v.allow && e.sup.still_the_same(&n, &snap);
        if allow {
            e.scripts.allowed(&exec, &file);
            if v.remember {
                if e.remembered.len() >= REMEMBERED_MAX {
                    e.remembered.clear();
                }
                e.remembered.insert(remembered_key(&exec));
            }
        }
        let _ = e.sup.answer(n.id, allow, libc::EACCES);
    }

    fn write_input(&mut self) {
        while !self.input.is_empty() {
            let (a, _) = self.input.as_slices();
            match sys::write(self.shell.stdin.as_raw_fd(), a) {
                Ok(n) if n > 0 => {
                    self.input.drain(..n);
                }
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    // The shell closed its stdin: what it did not read is lost with it.
                    self.input.clear();
                    break;
                }
            }
        }
    }

    fn read_stream(&mut self, i: usize) -> io::Result<()> {
        let mut buf = vec![0u8; CHUNK];
        let s = &self.streams[i];
        match sys::read(s.fd.as_raw_fd(), &mut buf) {
            Ok(0) => {
                let s = self.streams.remove(i);
                send(
                    Kind::StreamEnd,
                    &[&s.generation.to_be_bytes(), &[u8::from(s.err)]],
                )
            }
            Ok(n) => send(
                if s.err { Kind::Stderr } else { Kind::Stdout },
                &[&s.generation.to_be_bytes(), &buf[..n]],
            ),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(_) => {
                let s = self.streams.remove(i);
                send(
                    Kind::StreamEnd,
                    &[&s.generation.to_be_bytes(), &[u8::from(s.err)]],
                )
            }
        }
    }

    /// Reaps; when the shell has ended, drains its output, kills what is left of the tree
    /// and reports the end.
    fn reap(&mut self) -> io::Result<()> {
        sys::drain(&self.sigchld);
        while let Some((pid, status)) = sys::reap_any() {
            if pid == self.shell.pid && self.alive {
                self.alive = false;
                for i in (0..self.streams.len()).rev() {
                    if self.streams[i].generation == self.generation {
                        while i < self.streams.len() && self.drain_stream(i)? {}
                    }
                }
                tree::kill_all(None);
                let (code, signal) = sys::decode_status(status);
                send_json(Kind::Exited, &Exited { code, signal })?;
            }
        }
        Ok(())
    }

    /// Reads what a stream holds now; false once it is empty or ended.
    fn drain_stream(&mut self, i: usize) -> io::Result<bool> {
        let mut buf = vec![0u8; CHUNK];
        let s = &self.streams[i];
        match sys::read(s.fd.as_raw_fd(), &mut buf) {
            Ok(n) if n > 0 => {
                send(
                    if s.err { Kind::Stderr } else { Kind::Stdout },
                    &[&s.generation.to_be_bytes(), &buf[..n]],
                )?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn call(&mut self, call: Call) -> Reply {
        let value = match call {
            Call::Waiting => serde_json::to_value(self.waiting()),
            Call::Children => serde_json::to_value(self.children()),
            Call::Signal { targets, sig } => serde_json::to_value(self.signal(&targets, sig)),
            Call::SignalShell { sig } => {
                serde_json::to_value(self.alive && sys::kill(self.shell.pid, sig))
            }
            Call::Rotate => match self.rotate() {
                Ok(r) => serde_json::to_value(r),
                Err(e) => return Reply::Err(format!("cannot rotate the streams: {e}")),
            },
            Call::Exports => match std::fs::read(self.private.join(".ek-exports")) {
                Ok(b) => serde_json::to_value(String::from_utf8_lossy(&b)),
                Err(e) => return Reply::Err(format!("exports: {e}")),
            },
            Call::Cwd => match std::fs::read_link(format!("/proc/{}/cwd", self.shell.pid)) {
                Ok(p) => serde_json::to_value(p.display().to_string()),
                Err(e) => return Reply::Err(format!("cwd: {e}")),
            },
        };
        match value {
            Ok(v) => Reply::Ok(v),
            Err(e) => Reply::Err(e.to_string()),
        }
    }

    /// The shell's number for one of the helper's pids.
    fn inner(&self, pid: i32) -> Option<(i32, i32)> {
        tree::ids(pid).map(|(inner, _)| inner)
    }

    fn waiting(&self) -> Waiting {
        let pid = self.shell.pid;
        let blocked = self.alive
            && procs::blocked_reading_stdin(pid)
            && procs::fd_target(pid, 0)
                .is_some_and(|t| t.as_os_str() == self.shell.stdin_id.as_str());
        let (children, cwd) = if blocked {
            let kids = tree::children(pid)
                .into_iter()
                .filter_map(|c| self.inner(c).map(|(p, _)| p))
                .collect();
            let cwd = std::fs::read_link(format!("/proc/{pid}/cwd"))
                .ok()
                .map(|p| p.display().to_string());
            (kids, cwd)
        } else {
            (Vec::new(), None)
        };
        Waiting {
            waiting: blocked,
            children,
            cwd,
        }
    }

    /// `(pid, pgid)` of the shell's children as the shell numbers them; a child in the
    /// shell's own group gets group 0.
    fn children(&self) -> Vec<(i32, i32)> {
        let Some((_, shell_group)) = self.inner(self.shell.pid) else {
            return Vec::new();
        };
        tree::children(self.shell.pid)
            .into_iter()
            .filter_map(|c| self.inner(c))
            .map(|(p, g)| (p, if g == shell_group { 0 } else { g }))
            .collect()
    }

    /// Signals groups (> 0) or single processes (< 0) named as the shell numbers them,
    /// among the session's own processes only.
    fn signal(&self, targets: &[i32], sig: i32) -> usize {
        let me = std::process::id() as i32;
        let procs: Vec<((i32, i32), (i32, i32))> = tree::descendants(me)
            .iter()
            .filter_map(|p| tree::ids(p.pid))
            .collect();
        let mut delivered = 0;
        for &t in targets {
            let hit = if t > 0 {
                procs
                    .iter()
                    .find(|((_, g), _)| *g == t)
                    .is_some_and(|(_, (_, outer_g))| *outer_g > 1 && sys::kill(-outer_g, sig))
            } else {
                procs
                    .iter()
                    .find(|((p, _), _)| *p == -t)
                    .is_some_and(|(_, (outer_p, _))| sys::kill(*outer_p, sig))
            };
            delivered += usize::from(hit);
        }
        delivered
    }

    fn rotate(&mut self) -> io::Result<Rotated> {
        let name = sys::random_hex(8)?;
        let out = self.private.join(format!(".ek-{name}-out"));
        let err = self.private.join(format!(".ek-{name}-err"));
        let mut opened = Vec::new();
        for p in [&out, &err] {
            let c = sys::cstring(&p.to_string_lossy(), "fifo")?;
            // SAFETY: mkfifo and open on a C string.
            unsafe {
                sys::check(libc::c_long::from(libc::mkfifo(c.as_ptr(), 0o600)))?;
                let fd = sys::check(libc::c_long::from(libc::open(
                    c.as_ptr(),
                    libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC,
                )))?;
                opened.push(OwnedFd::from_raw_fd(fd as RawFd));
            }
        }
        for old in self.fifos.drain(..) {
            let _ = std::fs::remove_file(old);
        }
        self.generation += 1;
        let mut it = opened.into_iter();
        for err_stream in [false, true] {
            if let Some(fd) = it.next() {
                self.streams.push(Stream {
                    fd,
                    generation: self.generation,
                    err: err_stream,
                });
            }
        }
        self.fifos = vec![out.clone(), err.clone()];
        Ok(Rotated {
            generation: self.generation,
            stdout: out.display().to_string(),
            stderr: err.display().to_string(),
        })
    }
}

fn pollfd(fd: RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

/// The directories whose socket files are the session's own: the workspace and the
/// private directory, canonical.
fn own_dirs(workspace: &Path, private: &Path) -> Vec<PathBuf> {
    [workspace, private]
        .iter()
        .filter_map(|p| std::fs::canonicalize(p).ok())
        .collect()
}
