//! Starting the shell: a child made with `clone(2)` — in new user, PID and mount
//! namespaces where the account may create them — that mounts its own `/proc`, builds
//! and applies the sandbox, and executes the shell with a socket for stdin and pipes for
//! stdout and stderr.
//!
//! The child builds the Landlock ruleset itself (the helper is single-threaded, so its
//! forked child may allocate) after its namespaces exist, and reports what it will enforce
//! over a close-on-exec pipe before it executes the shell: a report followed by the end of
//! the pipe means the shell runs; an `E` line means it does not, and why.

use crate::sys;
use execkit_helper::msg::{ShellKind, Start};
use execkit_sandbox::{prepared, Enforcement, Rlimits};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

/// Which namespaces the shell gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Namespaces {
    /// None: the helper is the tree's subreaper.
    None,
    /// PID and mount namespaces (root, or an account with `CAP_SYS_ADMIN`).
    Privileged,
    /// A user namespace (the account mapped to itself), then PID and mount namespaces.
    User,
}

impl Namespaces {
    fn flags(self) -> libc::c_long {
        let ns = (libc::CLONE_NEWPID | libc::CLONE_NEWNS) as libc::c_long;
        match self {
            Namespaces::None => 0,
            Namespaces::Privileged => ns,
            Namespaces::User => ns | libc::CLONE_NEWUSER as libc::c_long,
        }
    }
}

/// A running shell.
#[derive(Debug)]
pub struct Shell {
    /// Its pid as the helper sees it.
    pub pid: i32,
    /// The namespaces it has.
    pub namespaces: Namespaces,
    /// Our end of its stdin socket (non-blocking).
    pub stdin: OwnedFd,
    /// What `/proc/PID/fd/0` names its end (`socket:[INO]`).
    pub stdin_id: String,
    /// Its stdout and stderr (read ends, non-blocking).
    pub stdout: OwnedFd,
    /// Its stderr.
    pub stderr: OwnedFd,
    /// What the kernel enforces.
    pub enforcement: Enforcement,
    /// The listener of the shell's `execve` notifications (when programs are decided at
    /// their start); the shell's own `exec` has been answered already.
    pub exec_listener: Option<execkit_sandbox::exec_notify::Supervisor>,
    /// The egress broker's listening socket inside the shell's own network (when it has
    /// one).
    pub broker_listener: Option<OwnedFd>,
}

/// Everything the child needs, resolved before `clone`.
pub struct Plan<'a> {
    /// The session's setup.
    pub start: &'a Start,
    /// The shell binary.
    pub program: PathBuf,
    /// The workspace (resolved, existing).
    pub workspace: PathBuf,
    /// The private directory.
    pub private_dir: PathBuf,
    /// Extra writable paths (resolved).
    pub writable: Vec<PathBuf>,
    /// Unreadable paths (resolved, existing).
    pub deny_read: Vec<PathBuf>,
    /// The account's home.
    pub home: PathBuf,
    /// The shell's environment.
    pub env: Vec<(String, String)>,
    /// The shell shares the helper's network, which has no route out (an ephemeral
    /// container's `none` network) and where the helper's relay listens.
    pub relayed: bool,
}

/// Looks `name` up on `PATH`.
pub fn find_program(name: &str, path: &str) -> Option<PathBuf> {
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(name))
        .find(|p| {
            let Ok(c) = sys::cstring(&p.to_string_lossy(), "program") else {
                return false;
            };
            // SAFETY: access(2) on a C string.
            unsafe { libc::access(c.as_ptr(), libc::X_OK) == 0 }
        })
}

/// The namespaces to try first for this account.
pub fn wanted(start: &Start) -> Namespaces {
    if !start.namespaces {
        Namespaces::None
    } else if
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() } == 0 {
        Namespaces::Privileged
    } else {
        Namespaces::User
    }
}

/// Starts the shell with `ns`, falling back to fewer namespaces when the kernel or the
/// account refuses them; why each was refused is added to the report's notes.
pub fn start(plan: &Plan<'_>, ns: Namespaces) -> io::Result<Shell> {
    let mut order = vec![ns];
    if ns == Namespaces::Privileged {
        order.push(Namespaces::User);
    }
    if ns != Namespaces::None {
        order.push(Namespaces::None);
    }
    let mut notes = Vec::new();
    let mut exec_decisions = plan.start.exec_decisions;
    let mut order = order.into_iter().peekable();
    while let Some(&ns) = order.peek() {
        match spawn(plan, ns, exec_decisions) {
            Ok(mut shell) => {
                shell.enforcement.notes.extend(notes);
                return Ok(shell);
            }
            Err(Failure::ExecListener(why)) if exec_decisions => {
                exec_decisions = false;
                notes.push(format!(
                    "no runtime decisions of the programs commands start: {why}"
                ));
            }
            Err(Failure::Namespaces(why)) if ns != Namespaces::None => {
                notes.push(why);
                order.next();
            }
            Err(Failure::Namespaces(why) | Failure::Other(why) | Failure::ExecListener(why)) => {
                return Err(io::Error::other(why))
            }
        }
    }
    Err(io::Error::other(notes.join("; ")))
}

enum Failure {
    /// The namespaces could not be made or set up (retry with fewer).
    Namespaces(String),
    /// The exec listener could not be received or did not see the shell start (retry
    /// without runtime decisions; the report says so).
    ExecListener(String),
    /// Anything else.
    Other(String),
}

fn spawn(plan: &Plan<'_>, ns: Namespaces, exec_decisions: bool) -> Result<Shell, Failure> {
    let other = |what: &str, e: io::Error| Failure::Other(format!("{what}: {e}"));
    // A network of its own only with namespaces, and only where connections are decided.
    let net =
        !plan.relayed && ns != Namespaces::None && exec_decisions && plan.start.broker.is_some();
    let (ours, theirs) = sys::socketpair().map_err(|e| other("stdin socket", e))?;
    // SAFETY: shutdown on our own sockets.
    unsafe {
        libc::shutdown(theirs.as_raw_fd(), libc::SHUT_WR);
        libc::shutdown(ours.as_raw_fd(), libc::SHUT_RD);
    }
    let ino = std::fs::metadata(format!("/proc/self/fd/{}", theirs.as_raw_fd()))
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .map_err(|e| other("stdin socket", e))?;
    let (out_r, out_w) = sys::pipe().map_err(|e| other("stdout pipe", e))?;
    let (err_r, err_w) = sys::pipe().map_err(|e| other("stderr pipe", e))?;
    let (sync_r, sync_w) = sys::pipe().map_err(|e| other("sync pipe", e))?;
    let (rep_r, rep_w) = sys::pipe().map_err(|e| other("report pipe", e))?;
    let notify = if exec_decisions {
        Some(sys::socketpair().map_err(|e| other("exec listener socket", e))?)
    } else {
        None
    };
    let broker = if net {
        Some(sys::socketpair().map_err(|e| other("broker socket", e))?)
    } else {
        None
    };
    let filter = execkit_sandbox::exec_notify::filter();
    // SAFETY: getuid/getgid cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    // SAFETY: raw clone(2) with fork semantics (no stack given) in a single-threaded
    // process; the child only runs `child` and never returns.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            ns.flags() | net_flag(net) | libc::SIGCHLD as libc::c_long,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if pid < 0 {
        let e = io::Error::last_os_error();
        return Err(if ns == Namespaces::None {
            Failure::Other(format!("clone: {e}"))
        } else {
            Failure::Namespaces(format!("no {} namespaces ({e})", describe(ns)))
        });
    }
    if pid == 0 {
        drop((ours, out_r, err_r, sync_w, rep_r));
        let fds = ChildFds {
            stdin: theirs.as_raw_fd(),
            stdout: out_w.as_raw_fd(),
            stderr: err_w.as_raw_fd(),
            sync: sync_r.as_raw_fd(),
            report: rep_w.as_raw_fd(),
            notify: notify.as_ref().map(|(_, c)| c.as_raw_fd()),
            broker: broker.as_ref().map(|(_, c)| c.as_raw_fd()),
            filter: &filter,
        };
        child(plan, ns, (uid, gid), &fds);
    }
    let pid = pid as i32;
    drop((theirs, out_w, err_w, sync_r, rep_w));
    let notify = notify.map(|(ours, theirs)| {
        drop(theirs);
        ours
    });
    let broker = broker.map(|(ours, theirs)| {
        drop(theirs);
        ours
    });
    if sys::write_all(sync_w.as_raw_fd(), b"g").is_err() {
        reap(pid);
        return Err(Failure::Other("the shell's process died at once".into()));
    }
    drop(sync_w);
    // The report, line by line until the pipe closes at `exec`: `R` what the sandbox
    // enforces, `L` the exec listener was sent (the shell's own `exec` then waits for our
    // answer), `W` why there is none, `N`/`E` why the shell did not start.
    let mut pending = Vec::new();
    let mut text = String::new();
    let mut enforcement = None;
    let mut listener = None;
    let mut broker_listener = None;
    let mut warnings = Vec::new();
    let mut buf = [0u8; 4096];
    let mut open = true;
    while open {
        match sys::read(rep_r.as_raw_fd(), &mut buf) {
            Ok(0) | Err(_) => open = false,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
        }
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
            text.push_str(&line);
            text.push('\n');
            if let Some(json) = line.strip_prefix('R') {
                enforcement = serde_json::from_str::<Enforcement>(json).ok();
            } else if line == "L" {
                match notify.as_ref().map(|s| first_exec(s, pid, &plan.program)) {
                    Some(Ok(sup)) => listener = Some(sup),
                    Some(Err(e)) => {
                        sys::kill(pid, libc::SIGKILL);
                        reap(pid);
                        return Err(Failure::ExecListener(format!("the exec listener: {e}")));
                    }
                    None => {}
                }
            } else if line == "B" {
                let got = broker
                    .as_ref()
                    .map(|s| execkit_sandbox::exec_notify::recv_fd(s.as_raw_fd()));
                match got {
                    Some(Ok(fd)) => broker_listener = Some(fd),
                    Some(Err(e)) => {
                        sys::kill(pid, libc::SIGKILL);
                        reap(pid);
                        return Err(Failure::Other(format!("the broker's listener: {e}")));
                    }
                    None => {}
                }
            } else if let Some(why) = line.strip_prefix('W') {
                warnings.push(why.to_string());
            } else if let Some(why) = line.strip_prefix('N') {
                reap(pid);
                return Err(Failure::Namespaces(why.to_string()));
            } else if let Some(why) = line.strip_prefix('E') {
                reap(pid);
                return Err(Failure::Other(why.to_string()));
            }
        }
    }
    let Some(enforcement) = enforcement else {
        reap(pid);
        return Err(Failure::Other(format!(
            "the shell's process ended before it reported its sandbox: {}",
            text.trim()
        )));
    };
    let mut enforcement = enforcement;
    enforcement.exec_decisions = listener.is_some();
    for w in warnings {
        enforcement.notes.push(format!(
            "no runtime decisions of the programs commands start: {w}"
        ));
    }
    for fd in [&ours, &out_r, &err_r] {
        sys::set_nonblocking(fd.as_raw_fd()).map_err(|e| other("non-blocking", e))?;
    }
    Ok(Shell {
        pid,
        namespaces: ns,
        stdin: ours,
        stdin_id: format!("socket:[{ino}]"),
        stdout: out_r,
        stderr: err_r,
        enforcement,
        exec_listener: listener,
        broker_listener,
    })
}

/// Receives the exec listener from the shell's process and answers its first call: the
/// shell's own `exec` of `program`, allowed as such and only as such.
fn first_exec(
    sock: &OwnedFd,
    pid: i32,
    program: &Path,
) -> io::Result<execkit_sandbox::exec_notify::Supervisor> {
    use execkit_sandbox::exec_notify::{recv_fd, Supervisor};
    let sup = Supervisor::new(recv_fd(sock.as_raw_fd())?);
    let mut fds = [libc::pollfd {
        fd: sup.raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    }];
    if sys::poll(&mut fds, 10_000)? == 0 {
        return Err(io::Error::other("the shell never asked to start"));
    }
    let n = sup
        .recv()?
        .ok_or_else(|| io::Error::other("the shell's first exec vanished"))?;
    let (exec, _) = sup.read_exec(&n)?;
    let ours = exec.path == program.to_string_lossy() && n.pid as i32 == pid;
    sup.answer(n.id, ours, libc::EACCES)?;
    if !ours {
        return Err(io::Error::other(format!(
            "the first exec was `{}`, not the shell",
            exec.path
        )));
    }
    Ok(sup)
}

fn net_flag(net: bool) -> libc::c_long {
    if net {
        libc::CLONE_NEWNET as libc::c_long
    } else {
        0
    }
}

fn describe(ns: Namespaces) -> &'static str {
    match ns {
        Namespaces::None => "",
        Namespaces::Privileged => "PID and mount",
        Namespaces::User => "user, PID and mount",
    }
}

fn reap(pid: i32) {
    let mut status = 0;
    // SAFETY: waitpid on our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
}

/// Maps the account to itself in the calling process's new user namespace (what an
/// unprivileged process may write: one line, its own ids, after `setgroups` is denied).
/// `uid`/`gid` are the ids from before the namespace existed. The helper is not dumpable
/// (so its `/proc` entries belong to root), and the child inherits that: it becomes
/// dumpable first so that it may write its own maps (`exec` makes the shell dumpable in
/// any case).
fn map_own_ids(uid: libc::uid_t, gid: libc::gid_t) -> io::Result<()> {
    sys::prctl(libc::PR_SET_DUMPABLE, 1)?;
    std::fs::write("/proc/self/setgroups", "deny")?;
    std::fs::write("/proc/self/uid_map", format!("{uid} {uid} 1\n"))?;
    std::fs::write("/proc/self/gid_map", format!("{gid} {gid} 1\n"))
}

struct ChildFds<'a> {
    stdin: RawFd,
    stdout: RawFd,
    stderr: RawFd,
    sync: RawFd,
    report: RawFd,
    /// Where to send the exec listener, when programs are decided at their start.
    notify: Option<RawFd>,
    /// Where to send the broker's listener, when the shell has a network of its own.
    broker: Option<RawFd>,
    filter: &'a [libc::sock_filter],
}

/// The child: never returns.
fn child(plan: &Plan<'_>, ns: Namespaces, ids: (libc::uid_t, libc::gid_t), fds: &ChildFds) -> ! {
    let report = |tag: char, text: &str| {
        let line = format!("{tag}{}\n", text.replace('\n', " "));
        let _ = sys::write_all(fds.report, line.as_bytes());
    };
    // Dies with the helper; then waits until the helper has mapped our ids (its death
    // before that ends the wait with end-of-file).
    if sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong).is_err() {
        report('E', "cannot ask for the parent-death signal");
        exit(1);
    }
    let mut b = [0u8; 1];
    if !matches!(sys::read(fds.sync, &mut b), Ok(1)) {
        exit(1);
    }
    if ns == Namespaces::User {
        if let Err(e) = map_own_ids(ids.0, ids.1) {
            report(
                'N',
                &format!("no user namespace (cannot map the account into it: {e})"),
            );
            exit(1);
        }
    }
    if ns != Namespaces::None {
        if let Err(e) = mount_own_proc() {
            report('N', &format!("no {} namespaces ({e})", describe(ns)));
            exit(1);
        }
    }
    if let Some(sock) = fds.broker {
        if let Err(e) = own_network(sock, plan.start.broker.as_ref().map_or(0, |b| b.port)) {
            report('N', &format!("no network of its own ({e})"));
            exit(1);
        }
        let _ = sys::write_all(fds.report, b"B\n");
    }
    if let Err(e) = setup(plan, ns, fds) {
        report('E', &e);
        exit(1);
    }
    let err = exec(plan, fds.broker.is_some() || plan.relayed);
    report(
        'E',
        &format!("cannot run {}: {err}", plan.program.display()),
    );
    exit(127)
}

fn exit(code: i32) -> ! {
    // SAFETY: _exit ends the child without running the parent's destructors.
    unsafe { libc::_exit(code) }
}

/// Sets up the shell's own network (in the child, in its new network namespace): the
/// loopback up, and the broker's listener on it sent to the helper over `sock`.
fn own_network(sock: RawFd, port: u16) -> io::Result<()> {
    // SAFETY: the child entered its own network namespace; raw system calls only.
    unsafe { execkit_sandbox::loopback::up()? };
    // SAFETY: as above.
    let listener = unsafe { execkit_sandbox::loopback::listen(port)? };
    // SAFETY: sendmsg over our socket, then close it.
    let sent = unsafe { execkit_sandbox::exec_notify::send_fd(sock, listener.as_raw_fd()) };
    // SAFETY: closing the descriptor we were given for this.
    unsafe { libc::close(sock) };
    sent
}

/// Makes the mount tree private and mounts a `/proc` that shows only the namespace.
fn mount_own_proc() -> io::Result<()> {
    // SAFETY: mount(2) with constant C strings, in the child's own mount namespace.
    unsafe {
        sys::check(libc::c_long::from(libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )))?;
        sys::check(libc::c_long::from(libc::mount(
            c"proc".as_ptr(),
            c"/proc".as_ptr(),
            c"proc".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            std::ptr::null(),
        )))?;
    }
    Ok(())
}

/// Everything between the namespaces and `exec`: a session of its own, the descriptors,
/// the workspace as cwd, the sandbox (report first), the rlimits.
fn setup(plan: &Plan<'_>, ns: Namespaces, fds: &ChildFds) -> Result<(), String> {
    // SAFETY: setsid and dup2 on descriptors we hold.
    unsafe {
        if libc::setsid() < 0 {
            return Err(format!("setsid: {}", io::Error::last_os_error()));
        }
        for (from, to) in [(fds.stdin, 0), (fds.stdout, 1), (fds.stderr, 2)] {
            if libc::dup2(from, to) < 0 {
                return Err(format!("dup2: {}", io::Error::last_os_error()));
            }
        }
    }
    std::env::set_current_dir(&plan.workspace)
        .map_err(|e| format!("workspace {}: {e}", plan.workspace.display()))?;
    let start = plan.start;
    let prepared = prepared::prepare(&prepared::Request {
        profile: start.profile,
        workspace: &plan.workspace,
        private_tmp: &plan.private_dir,
        writable: &plan.writable,
        deny_read: &plan.deny_read,
        home: start.home.closing(&plan.home),
        allow_best_effort: start.allow_best_effort,
        namespaces: ns != Namespaces::None || start.own_pid_namespace,
        private_network: fds.broker.is_some() || plan.relayed,
        no_namespace_note: "no PID namespace (the account may not create user namespaces here): the helper, as the tree's subreaper, still kills every process of the session at its end, but processes outside the session are visible",
    })
    .map_err(|e| e.to_string())?;
    let mut enforcement = prepared.enforcement.clone();
    enforcement.resources.open_files = start.rlimits.nofile;
    enforcement.resources.file_bytes = start.rlimits.fsize;
    enforcement.resources.processes = start.rlimits.nproc;
    enforcement.resources.memory_bytes = start.rlimits.address_space;
    enforcement.resources.memory_per_process = start.rlimits.address_space.is_some();
    let json = serde_json::to_string(&enforcement).map_err(|e| e.to_string())?;
    let _ = sys::write_all(fds.report, format!("R{json}\n").as_bytes());
    apply_rlimits(&start.rlimits)?;
    prepared
        .apply_in_child()
        .map_err(|e| format!("the sandbox could not be applied: {e}"))?;
    if let Some(sock) = fds.notify {
        if start.profile == execkit_sandbox::Profile::Off {
            let _ = sys::write_all(fds.report, b"Wthe profile is off\n");
        } else {
            // The helper reads each starting program's arguments from this process's
            // memory, which a process that is not dumpable keeps from it unless it holds
            // CAP_SYS_PTRACE (a container drops that). The shell's `exec` would make it
            // dumpable anyway; its first call is read before that.
            sys::prctl(libc::PR_SET_DUMPABLE, 1).map_err(|e| format!("dumpable: {e}"))?;
            // SAFETY: seccomp and sendmsg system calls on a filter built before the fork.
            match unsafe { execkit_sandbox::exec_notify::install(fds.filter) } {
                Ok(fd) => {
                    // SAFETY: sendmsg over our socket, then close.
                    let sent = unsafe { execkit_sandbox::exec_notify::send_fd(sock, fd) };
                    // SAFETY: closing descriptors we own.
                    unsafe {
                        libc::close(fd);
                        libc::close(sock);
                    }
                    sent.map_err(|e| format!("cannot send the exec listener: {e}"))?;
                    let _ = sys::write_all(fds.report, b"L\n");
                }
                Err(e) => {
                    let _ = sys::write_all(
                        fds.report,
                        format!("Wthe kernel refuses seccomp user notification ({e})\n").as_bytes(),
                    );
                }
            }
        }
    }
    sys::reset_signals();
    Ok(())
}

fn apply_rlimits(r: &Rlimits) -> Result<(), String> {
    // SAFETY: only setrlimit(2).
    unsafe { r.apply_in_child() }.map_err(|e| format!("rlimits: {e}"))
}

fn exec(plan: &Plan<'_>, net: bool) -> io::Error {
    let program = match sys::cstring(&plan.program.to_string_lossy(), "the shell's path") {
        Ok(p) => p,
        Err(e) => return e,
    };
    let kind: ShellKind = plan.start.shell;
    let mut args = vec![program.clone()];
    for a in kind.args() {
        match sys::cstring(a, "an argument") {
            Ok(c) => args.push(c),
            Err(e) => return e,
        }
    }
    let mut env = Vec::new();
    let broker_env = match (net, &plan.start.broker) {
        (true, Some(b)) => b.env.as_slice(),
        _ => &[],
    };
    let own = plan
        .env
        .iter()
        .filter(|(k, _)| !broker_env.iter().any(|(b, _)| b == k));
    for (k, v) in own.chain(broker_env) {
        match sys::cstring(&format!("{k}={v}"), "the environment") {
            Ok(c) => env.push(c),
            Err(e) => return e,
        }
    }
    let argv: Vec<*const libc::c_char> = args
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let envp: Vec<*const libc::c_char> = env
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    // SAFETY: null-terminated arrays of valid C strings that outlive the call.
    unsafe { libc::execve(program.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    io::Error::last_os_error()
}
