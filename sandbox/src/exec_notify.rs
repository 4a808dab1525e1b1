//! Every program a session starts, stopped at `execve` for a decision: a seccomp filter
//! that returns `SECCOMP_RET_USER_NOTIF` for `execve`/`execveat`, the listener descriptor
//! it yields (handed to a supervisor outside the sandbox), and the supervisor's side —
//! receiving a notification, reading what the stopped task asked to run, answering.
//!
//! # The race, and what holds
//!
//! The supervisor reads the path and argv from the stopped task's memory; the kernel
//! reads them again after the supervisor lets the call continue. Another thread of the
//! same process, or another process sharing the memory, can change them in between. What
//! is done about it ([`Supervisor::read_exec`], [`Supervisor::still_the_same`]): after
//! the decision the strings are read again and compared, and the notification is checked
//! to be still valid (`SECCOMP_IOCTL_NOTIF_ID_VALID`): a change fails the call with
//! `EACCES` (fail closed). What is left is the window between that second read and the
//! kernel's own copy; a program started through it still runs under the session's kernel
//! sandbox (Landlock, the seccomp deny-list, namespaces, limits), which bounds what it can
//! do. The decision is the policy's second reading, not the kernel's.

use crate::task_memory::TaskMemory;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// The audit architecture the filter checks (other architectures pass this filter; the
/// deny-list filter kills them).
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;

const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JMP_JEQ_K: u16 = 0x15;
const BPF_RET_K: u16 = 0x06;

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// The filter: `execve`, `execveat` and `connect` of the native architecture notify
/// (see [`crate::socket_notify`] for `connect`); everything else is allowed (by this
/// filter: the deny-list filter still applies, and its refusals come first).
///
/// `sendmsg` is not stopped: the shell's process sends this filter's listener with it
/// right after installing the filter, and the datagrams a `sendto`/`sendmsg` address
/// reach are no stream sockets (see the module's notes).
pub fn filter() -> Vec<libc::sock_filter> {
    vec![
        insn(BPF_LD_W_ABS, 0, 0, 4),
        insn(BPF_JMP_JEQ_K, 0, 4, AUDIT_ARCH),
        insn(BPF_LD_W_ABS, 0, 0, 0),
        insn(BPF_JMP_JEQ_K, 3, 0, libc::SYS_execve as u32),
        insn(BPF_JMP_JEQ_K, 2, 0, libc::SYS_execveat as u32),
        insn(BPF_JMP_JEQ_K, 1, 0, libc::SYS_connect as u32),
        insn(BPF_RET_K, 0, 0, libc::SECCOMP_RET_ALLOW),
        insn(BPF_RET_K, 0, 0, libc::SECCOMP_RET_USER_NOTIF),
    ]
}

/// Installs the filter on the calling process and returns the listener descriptor.
/// `no_new_privs` must be set already.
///
/// # Safety
/// Async-signal-safe only in the sense of its system calls; `prog` is built before `fork`
/// so that a forked child of a multi-threaded process calls this without allocating.
pub unsafe fn install(prog: &[libc::sock_filter]) -> io::Result<RawFd> {
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: seccomp(2) with a valid program that outlives the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
            &fprog as *const libc::sock_fprog,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd as RawFd)
}

/// Sends descriptor `fd` over the Unix socket `sock` (`SCM_RIGHTS`), without allocating.
///
/// # Safety
/// Only system calls and pointer arithmetic on a stack buffer: callable in a forked child.
pub unsafe fn send_fd(sock: RawFd, fd: RawFd) -> io::Result<()> {
    let mut byte = [b'L'];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // Room for one descriptor's control message (CMSG_SPACE(4) is 24 on 64-bit Linux).
    let mut control = [0u64; 4];
    // SAFETY: msghdr is plain data; zeroed is a valid value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE is arithmetic.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as _;
    // SAFETY: the header points into `control`, which is large enough for one descriptor.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if cmsg.is_null() {
            return Err(io::Error::other("no room for the control message"));
        }
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd);
        if libc::sendmsg(sock, &msg, 0) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Receives one descriptor sent with [`send_fd`] (blocking).
pub fn recv_fd(sock: RawFd) -> io::Result<OwnedFd> {
    let mut byte = [0u8];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut control = [0u64; 4];
    // SAFETY: msghdr is plain data; zeroed is a valid value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    loop {
        // SAFETY: recvmsg into buffers that outlive the call.
        let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the shell's process ended before it sent its exec listener",
            ));
        }
        break;
    }
    // SAFETY: the control buffer was filled by recvmsg; the macros walk it.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if cmsg.is_null()
            || (*cmsg).cmsg_level != libc::SOL_SOCKET
            || (*cmsg).cmsg_type != libc::SCM_RIGHTS
        {
            return Err(io::Error::other("no descriptor in the message"));
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>());
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Which call a notification is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecCall {
    /// `execve(path, argv, envp)`.
    Execve,
    /// `execveat(dirfd, path, argv, envp, flags)`.
    Execveat,
}

/// One stopped `execve`: who, and what it asked to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exec {
    /// The notification's id (to answer it).
    pub id: u64,
    /// The task's pid, as the supervisor's PID namespace numbers it.
    pub pid: i32,
    /// Which call.
    pub call: ExecCall,
    /// The path as passed (relative paths are the task's cwd's, or `dirfd`'s).
    pub path: String,
    /// For `execveat` with a directory descriptor other than `AT_FDCWD`: what it names.
    pub dir: Option<String>,
    /// `AT_EMPTY_PATH` with an empty path: the descriptor itself is run.
    pub empty_path: bool,
    /// The arguments, `argv[0]` first.
    pub argv: Vec<String>,
    /// The task's working directory.
    pub cwd: String,
    /// The executable the task runs while it makes the call: the program starting this
    /// one (`/usr/bin/make` for a recipe's shell).
    pub caller: String,
    /// A start through a descriptor (`execveat(fd, "", AT_EMPTY_PATH)`, `/proc/self/fd/N`,
    /// `/dev/fd/N`): its number in the task and what it names there (a path, or
    /// `/memfd:NAME (deleted)` for a file that has none).
    pub descriptor: Option<(i32, String)>,
}

/// Limits on what is read from a stopped task.
const MAX_ARGS: usize = 8192;
const MAX_TOTAL: usize = 2 * 1024 * 1024;

/// The listener's side: receive, read, answer.
#[derive(Debug)]
pub struct Supervisor {
    fd: OwnedFd,
}

/// The raw arguments of a notification, kept to compare after the decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    args: [u64; 6],
    strings: Vec<Vec<u8>>,
    /// Where relative paths resolve: a sibling thread may `chdir` while the call waits.
    cwd: String,
}

impl Supervisor {
    /// A supervisor on a listener descriptor.
    pub fn new(fd: OwnedFd) -> Supervisor {
        Supervisor { fd }
    }

    /// The listener descriptor (to poll it).
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Receives the next notification (blocks unless polled readable first). `Ok(None)`:
    /// the notification vanished before it was received (the task died).
    pub fn recv(&self) -> io::Result<Option<libc::seccomp_notif>> {
        // SAFETY: seccomp_notif is plain data; the kernel requires it zeroed.
        let mut n: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        loop {
            // SAFETY: the documented ioctl with a pointer to the struct.
            let rc = unsafe {
                libc::ioctl(
                    self.fd.as_raw_fd(),
                    libc::SECCOMP_IOCTL_NOTIF_RECV as _,
                    &mut n as *mut libc::seccomp_notif,
                )
            };
            if rc == 0 {
                return Ok(Some(n));
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::ENOENT) => return Ok(None),
                _ => return Err(e),
            }
        }
    }

    /// True while the notification still stands (its task waits in the call).
    pub fn valid(&self, id: u64) -> bool {
        // SAFETY: the documented ioctl with a pointer to the id.
        unsafe {
            libc::ioctl(
                self.fd.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_ID_VALID as _,
                &id as *const u64,
            ) == 0
        }
    }

    /// Lets the call go on (`allow`) or fails it with `errno`.
    pub fn answer(&self, id: u64, allow: bool, errno: i32) -> io::Result<()> {
        let flags = if allow {
            libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32
        } else {
            0
        };
        self.respond(id, if allow { 0 } else { -errno }, flags)
    }

    /// Answers a call the supervisor carried out itself: it returns 0, or fails with the
    /// errno of `result`.
    pub fn answer_done(&self, id: u64, result: Result<(), i32>) -> io::Result<()> {
        self.respond(id, result.err().map_or(0, |e| -e), 0)
    }

    /// A second handle on the same listener (to answer from another thread).
    pub fn try_clone(&self) -> io::Result<Supervisor> {
        Ok(Supervisor {
            fd: self.fd.try_clone()?,
        })
    }

    fn respond(&self, id: u64, error: i32, flags: u32) -> io::Result<()> {
        let resp = libc::seccomp_notif_resp {
            id,
            val: 0,
            error,
            flags,
        };
        // SAFETY: the documented ioctl with a pointer to the response.
        let rc = unsafe {
            libc::ioctl(
                self.fd.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_SEND as _,
                &resp as *const libc::seccomp_notif_resp,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Reads what the notified task asked to run, through `/proc/PID/mem`, and the raw
    /// bytes to compare later ([`Supervisor::still_the_same`]).
    pub fn read_exec(&self, n: &libc::seccomp_notif) -> io::Result<(Exec, Snapshot)> {
        let pid = n.pid as i32;
        let a = n.data.args;
        let call = if n.data.nr == libc::SYS_execveat as i32 {
            ExecCall::Execveat
        } else {
            ExecCall::Execve
        };
        let (dirfd, path_ptr, argv_ptr, flags) = match call {
            ExecCall::Execve => (libc::AT_FDCWD, a[0], a[1], 0),
            ExecCall::Execveat => (a[0] as i32, a[1], a[2], a[4] as i32),
        };
        let mut mem = TaskMemory::open(pid)?;
        let mut strings = Vec::new();
        let path = mem.string_at(path_ptr)?;
        strings.push(path.clone());
        let mut argv = Vec::new();
        let mut total = path.len();
        if argv_ptr != 0 {
            for i in 0..MAX_ARGS {
                let p = mem.u64_at(argv_ptr + (i as u64) * 8)?;
                if p == 0 {
                    break;
                }
                let s = mem.string_at(p)?;
                total += s.len();
                if total > MAX_TOTAL {
                    return Err(io::Error::other("the arguments are over 2 MiB"));
                }
                strings.push(s.clone());
                argv.push(String::from_utf8_lossy(&s).into_owned());
                if i + 1 == MAX_ARGS {
                    return Err(io::Error::other("more than 8192 arguments"));
                }
            }
        }
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd"))?
            .display()
            .to_string();
        let caller = std::fs::read_link(format!("/proc/{pid}/exe"))?
            .display()
            .to_string();
        let dir = (call == ExecCall::Execveat && dirfd != libc::AT_FDCWD)
            .then(|| {
                std::fs::read_link(format!("/proc/{pid}/fd/{dirfd}"))
                    .map(|p| p.display().to_string())
            })
            .transpose()?;
        let empty_path = flags & libc::AT_EMPTY_PATH != 0 && path.is_empty();
        let path = String::from_utf8_lossy(&path).into_owned();
        let descriptor = descriptor_of(pid, &path, empty_path.then_some(dirfd))?;
        let exec = Exec {
            id: n.id,
            pid,
            call,
            path,
            dir,
            empty_path,
            argv,
            cwd,
            caller,
            descriptor,
        };
        let snap = Snapshot {
            args: a,
            strings,
            cwd: exec.cwd.clone(),
        };
        Ok((exec, snap))
    }

    /// Reads the strings of `snap`'s call again: true if nothing changed and the task
    /// still waits. False (fail closed) on any change, on a read error, or when the
    /// notification is gone.
    pub fn still_the_same(&self, n: &libc::seccomp_notif, snap: &Snapshot) -> bool {
        match self.read_exec(n) {
            Ok((_, again)) => again == *snap && self.valid(n.id),
            Err(_) => false,
        }
    }
}

/// Whether this kernel can give a session exec notifications (probed once in a child:
/// `SECCOMP_FILTER_FLAG_NEW_LISTENER` needs Linux 5.0, the continue flag 5.5).
pub fn available() -> Result<(), String> {
    static PROBE: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    PROBE
        .get_or_init(|| {
            let prog = filter();
            // SAFETY: fork; the child only calls prctl, seccomp and _exit.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                // SAFETY: system calls then _exit in the child.
                unsafe {
                    let code = if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                        1
                    } else {
                        match install(&prog) {
                            Ok(_) => 0,
                            Err(e) => e.raw_os_error().unwrap_or(1),
                        }
                    };
                    libc::_exit(code);
                }
            }
            if pid < 0 {
                return Err(format!("fork: {}", io::Error::last_os_error()));
            }
            let mut status = 0;
            // SAFETY: waitpid on our child.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
                Ok(())
            } else {
                Err(format!(
                    "this kernel refuses seccomp user notification ({})",
                    io::Error::from_raw_os_error(libc::WEXITSTATUS(status))
                ))
            }
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A child under the filter runs `/bin/echo` (allowed) and `/bin/false` (refused):
    /// the supervisor sees both with their argv and cwd, and the refusal is EACCES.
    #[test]
    fn a_child_s_execs_are_stopped_read_and_answered() {
        if available().is_err() {
            return;
        }
        let (a, b) = {
            let mut fds = [0; 2];
            // SAFETY: socketpair into a local array.
            let rc =
                unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, fds.as_mut_ptr()) };
            assert_eq!(rc, 0);
            // SAFETY: fresh descriptors.
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
        };
        let prog = filter();
        let script =
            std::ffi::CString::new("/bin/echo hello >/dev/null; /bin/false; echo $? >&2").unwrap();
        // SAFETY: fork in a test; the child makes system calls and execs.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: child side: prctl, seccomp, sendmsg, execv.
            unsafe {
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                let fd = install(&prog).unwrap_or(-1);
                if fd < 0 || send_fd(b.as_raw_fd(), fd).is_err() {
                    libc::_exit(90);
                }
                let sh = c"/bin/sh";
                let dash_c = c"-c";
                let argv = [
                    sh.as_ptr(),
                    dash_c.as_ptr(),
                    script.as_ptr(),
                    std::ptr::null(),
                ];
                libc::execv(sh.as_ptr(), argv.as_ptr());
                libc::_exit(91);
            }
        }
        drop(b);
        let sup = Supervisor::new(recv_fd(a.as_raw_fd()).unwrap());
        let mut seen = Vec::new();
        for _ in 0..3 {
            let n = sup.recv().unwrap().unwrap();
            let (exec, snap) = sup.read_exec(&n).unwrap();
            assert!(sup.still_the_same(&n, &snap));
            let allow = !exec.path.ends_with("false");
            sup.answer(n.id, allow, libc::EACCES).unwrap();
            seen.push((exec.path.clone(), exec.argv.clone()));
        }
        let mut status = 0;
        // SAFETY: waitpid on our child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(libc::WEXITSTATUS(status), 0, "{seen:?}");
        assert_eq!(seen[0].0, "/bin/sh");
        assert_eq!(
            seen[1],
            (
                "/bin/echo".to_string(),
                vec!["/bin/echo".to_string(), "hello".to_string()]
            )
        );
        assert_eq!(seen[2].0, "/bin/false");
    }
}

/// The file the call would run, as the calling task sees the filesystem (its root and
/// cwd, through `/proc`: the task may have a mount namespace of its own).
pub fn task_path(exec: &Exec) -> std::path::PathBuf {
    use std::path::PathBuf;
    if let Some((fd, _)) = &exec.descriptor {
        return PathBuf::from(format!("/proc/{}/fd/{fd}", exec.pid));
    }
    let root = PathBuf::from(format!("/proc/{}/root", exec.pid));
    if exec.empty_path {
        return exec
            .dir
            .as_deref()
            .map_or(root.clone(), |d| root.join(d.trim_start_matches('/')));
    }
    if exec.path.starts_with('/') {
        return root.join(exec.path.trim_start_matches('/'));
    }
    match &exec.dir {
        Some(dir) => root.join(dir.trim_start_matches('/')).join(&exec.path),
        None => PathBuf::from(format!("/proc/{}/cwd", exec.pid)).join(&exec.path),
    }
}

/// The program the call runs, as a path the caller would write (absolute when the call
/// names a directory descriptor).
pub fn program(exec: &Exec) -> String {
    if let Some((_, names)) = &exec.descriptor {
        return if names_a_file(names) {
            names.clone()
        } else {
            FILELESS.to_string()
        };
    }
    if exec.empty_path {
        return exec.dir.clone().unwrap_or_default();
    }
    match (&exec.dir, exec.path.starts_with('/')) {
        (Some(dir), false) => std::path::Path::new(dir)
            .join(&exec.path)
            .display()
            .to_string(),
        _ => exec.path.clone(),
    }
}

/// The descriptor a call runs, if it runs one: `dirfd` of an `AT_EMPTY_PATH` call, or
/// the `N` of a path `/proc/self/fd/N`, `/proc/thread-self/fd/N`, `/proc/PID/fd/N` (the
/// caller's pid as the supervisor numbers it; in a PID namespace of its own the task's
/// number differs, and such a path is decided as the path it is) or `/dev/fd/N`; with
/// what it names in the task.
fn descriptor_of(pid: i32, path: &str, empty: Option<i32>) -> io::Result<Option<(i32, String)>> {
    let fd = match empty {
        Some(fd) => Some(fd),
        None => fd_in_path(pid, path),
    };
    let Some(fd) = fd else {
        return Ok(None);
    };
    let names = std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))?;
    Ok(Some((fd, names.display().to_string())))
}

/// What a start through a descriptor that names no file is decided as (a `memfd`, a
/// deleted file, an anonymous inode): nothing on disk says what it is, and the kernel's
/// path rules cannot see it.
pub const FILELESS: &str = "(fileless)";

/// True if `target` (a descriptor's link in `/proc/PID/fd`) names a file on disk.
fn names_a_file(target: &str) -> bool {
    target.starts_with('/') && !target.starts_with("/memfd:") && !target.ends_with(" (deleted)")
}

/// The `N` of a path naming the caller's descriptor `N` (see [`descriptor_of`]).
fn fd_in_path(pid: i32, path: &str) -> Option<i32> {
    let own = format!("/proc/{pid}/fd/");
    let rest = [
        "/proc/self/fd/",
        "/proc/thread-self/fd/",
        "/dev/fd/",
        own.as_str(),
    ]
    .iter()
    .find_map(|p| path.strip_prefix(p))?;
    rest.parse().ok()
}

/// True if the file starts with `#!` (the kernel runs its interpreter in its place).
pub fn is_script(file: &std::path::Path) -> bool {
    use std::io::Read;
    let mut b = [0u8; 2];
    std::fs::File::open(file)
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok_and(|()| &b == b"#!")
}

/// The `#!` line of `file` as the kernel reads it (its first 256 bytes): the interpreter
/// and the one optional argument (the rest of the line, blanks trimmed), or `None` when
/// the file is not a script.
///
/// ```
/// let dir = std::env::temp_dir().join(format!("ek-doc-shebang-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let f = dir.join("s");
/// std::fs::write(&f, "#! /bin/cat  /home/a/.ssh/id_rsa  x \nrest\n").unwrap();
/// let line = execkit_sandbox::exec_notify::interpreter_line(&f).unwrap();
/// assert_eq!(line, ("/bin/cat".into(), Some("/home/a/.ssh/id_rsa  x".into())));
/// std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn interpreter_line(file: &std::path::Path) -> Option<(String, Option<String>)> {
    use std::io::Read;
    let mut buf = [0u8; 256];
    let mut f = std::fs::File::open(file).ok()?;
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    let line = buf[..n].strip_prefix(b"#!")?;
    let line = line.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let line = line.trim_matches([' ', '\t']);
    let (interp, arg) = match line.find([' ', '\t']) {
        Some(i) => (&line[..i], line[i..].trim_matches([' ', '\t'])),
        None => (line, ""),
    };
    (!interp.is_empty()).then(|| {
        (
            interp.to_string(),
            (!arg.is_empty()).then(|| arg.to_string()),
        )
    })
}

/// The starts the kernel makes in place of `exec` when it runs a script (`file`): each
/// `#!` interpreter with its argument, the script's path as the call named it and the
/// call's arguments — recursively, as deep as the kernel goes (4) — each as (program,
/// argv). A known interpreter without an argument (`#!/bin/sh`, `#!/usr/bin/python3`)
/// runs nothing but the script already decided, and `#!/usr/bin/env NAME` shows its
/// next start to the supervisor itself: neither is listed.
pub fn interpreter_starts(exec: &Exec, file: &std::path::Path) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut script = file.to_path_buf();
    let mut named = program(exec);
    let mut rest: Vec<String> = exec.argv.iter().skip(1).cloned().collect();
    for _ in 0..4 {
        let Some((interp, arg)) = interpreter_line(&script) else {
            break;
        };
        let mut argv = vec![interp.clone()];
        argv.extend(arg.clone());
        argv.push(named.clone());
        argv.extend(rest.iter().cloned());
        if !runs_only_the_script(&interp, arg.as_deref()) {
            out.push((interp.clone(), argv.clone()));
        }
        rest = argv[1..].to_vec();
        script = in_task(exec, &interp);
        named = interp;
    }
    out
}

/// Flags a known interpreter's `#!` line may carry that change how its script runs, not
/// what runs (no code, module, file or directory): by interpreter, the letters of one
/// cluster (`#!/bin/sh -e`, `#!/bin/bash -eu`, `#!/usr/bin/python3 -u`, `#!/usr/bin/perl -w`).
/// `-c`, `-m`, `-e`, `-M`, `-r`, `-I` with a directory and the like are not among them.
const INERT_FLAGS: &[(&[&str], &str)] = &[
    (&["sh", "bash", "dash", "zsh", "ksh"], "aefhuvxBCEHPTn"),
    (&["python", "python2", "python3"], "uEsIOBSbqRdvx"),
    (&["perl"], "wWXTtUs"),
    (&["ruby"], "wWv"),
];

/// True for a `#!` line that runs nothing but its script: a known interpreter without an
/// argument or with inert flags only (see [`INERT_FLAGS`]), or `env` naming one (whose
/// start the supervisor sees next).
fn runs_only_the_script(interp: &str, arg: Option<&str>) -> bool {
    let name = std::path::Path::new(interp)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let base = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    let known = |n: &str| INTERPRETERS.contains(&n);
    match arg {
        None => known(name) || known(base),
        Some(a) if name == "env" => !a.starts_with('-') && !a.contains([' ', '\t']),
        Some(a) => inert_flags(base, a) || inert_flags(name, a),
    }
}

/// True if `arg` is one cluster of [`INERT_FLAGS`] letters of `interpreter`.
fn inert_flags(interpreter: &str, arg: &str) -> bool {
    let Some(letters) = INERT_FLAGS
        .iter()
        .find(|(names, _)| names.contains(&interpreter))
        .map(|(_, l)| *l)
    else {
        return false;
    };
    let shell = letters.contains('B');
    let cluster = arg
        .strip_prefix('-')
        .or_else(|| arg.strip_prefix('+').filter(|_| shell));
    cluster.is_some_and(|c| !c.is_empty() && c.chars().all(|ch| letters.contains(ch)))
}

/// `path` as the task of `exec` opens it (its root, or its cwd for a relative path).
fn in_task(exec: &Exec, path: &str) -> std::path::PathBuf {
    let p = std::path::Path::new(path);
    if p.is_absolute() {
        std::path::PathBuf::from(format!("/proc/{}/root", exec.pid))
            .join(path.trim_start_matches('/'))
    } else {
        std::path::PathBuf::from(format!("/proc/{}/cwd", exec.pid)).join(p)
    }
}

/// Programs that run a script given as their first argument: a script's `#!` line names
/// one, and when it is reached through `env` (`#!/usr/bin/env node`) its start is a second
/// `execve` of `interpreter script args…` by the same process.
pub const INTERPRETERS: &[&str] = &[
    "node", "nodejs", "python", "python3", "python2", "ruby", "perl", "php", "bash", "sh", "dash",
    "zsh", "ksh", "lua", "tclsh", "Rscript", "deno", "bun",
];

/// Scripts allowed to start, by the process that started them, so that the same process
/// going on to run `interpreter script args…` (through `env`) is taken as the same
/// program, not decided again as the interpreter reading a file. Only a known interpreter
/// with the same script first and the same arguments after it continues a script: a
/// `#!/usr/bin/env -S rm -rf …` line is decided as the `rm` it runs.
#[derive(Debug, Default)]
pub struct ScriptStarts {
    started: std::collections::HashMap<i32, (std::path::PathBuf, Vec<String>)>,
}

impl ScriptStarts {
    /// Remembers that `exec` (running `file`) was allowed, if `file` is a script.
    pub fn allowed(&mut self, exec: &Exec, file: &std::path::Path) {
        if !is_script(file) {
            return;
        }
        if self.started.len() >= 4096 {
            self.started.clear();
        }
        self.started.insert(
            exec.pid,
            (
                file.to_path_buf(),
                exec.argv.iter().skip(1).cloned().collect(),
            ),
        );
    }

    /// True when `exec` (running `file`) is the interpreter of the script its process was
    /// just allowed to start.
    pub fn continues(&mut self, exec: &Exec, file: &std::path::Path) -> bool {
        use std::path::Path;
        let Some((script, args)) = self.started.remove(&exec.pid) else {
            return false;
        };
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let base = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
        if !INTERPRETERS.contains(&name) && !INTERPRETERS.contains(&base) {
            return false;
        }
        let named = exec.argv.get(1).map(|a| {
            let p = Path::new(a);
            if p.is_absolute() {
                Path::new(&format!("/proc/{}/root", exec.pid)).join(a.trim_start_matches('/'))
            } else {
                Path::new(&format!("/proc/{}/cwd", exec.pid)).join(p)
            }
        });
        let same_script = named.is_some_and(|n| {
            matches!(
                (std::fs::canonicalize(&n), std::fs::canonicalize(&script)),
                (Ok(a), Ok(b)) if a == b
            )
        });
        same_script
            && exec
                .argv
                .get(2..)
                .is_some_and(|rest| rest == args.as_slice())
    }
}

/// `pid`'s parents up to (and including) `shell`, nearest first, as `pid name` with the
/// pid as the task's own PID namespace numbers it (at most 16).
pub fn parents(pid: i32, shell: i32) -> Vec<String> {
    Lineage::default().parents(pid, shell)
}

/// Processes seen as parents, by pid and start time (a pid reused by a later process is
/// another key), with how they are shown: a build's `make` and shell are the parents of
/// every compiler start, and reading a process's namespace pid (`/proc/PID/status`) is
/// the dear part of finding its parents.
#[derive(Default)]
pub struct Lineage {
    shown: std::collections::HashMap<(i32, u64), String>,
}

/// Parents remembered at most (the memory is cleared past this).
const LINEAGE_MAX: usize = 4096;

impl Lineage {
    /// [`parents`], remembering how each parent is shown.
    pub fn parents(&mut self, pid: i32, shell: i32) -> Vec<String> {
        let mut out = Vec::new();
        let Some((mut cur, _)) = crate::procs::named_stat(pid) else {
            return out;
        };
        if self.shown.len() >= LINEAGE_MAX {
            self.shown.clear();
        }
        for _ in 0..16 {
            if cur.pid == shell {
                break;
            }
            let Some((parent, name)) = crate::procs::named_stat(cur.ppid) else {
                break;
            };
            let line = self
                .shown
                .entry((parent.pid, parent.start))
                .or_insert_with(|| {
                    let shown = crate::procs::ns_pid(parent.pid).unwrap_or(parent.pid);
                    format!("{shown} {name}")
                });
            out.push(line.clone());
            if parent.pid == shell || parent.pid <= 1 {
                break;
            }
            cur = parent;
        }
        out
    }
}

#[cfg(test)]
mod interpreter_line_tests {
    use super::runs_only_the_script;

    #[test]
    fn only_lines_that_can_run_more_than_their_script_are_decided() {
        let cases = [
            ("/bin/sh", None, true),
            ("/bin/sh", Some("-e"), true),
            ("/bin/bash", Some("-eux"), true),
            ("/usr/bin/python3.12", Some("-u"), true),
            ("/usr/bin/perl", Some("-w"), true),
            ("/usr/bin/env", Some("python3"), true),
            ("/bin/sh", Some("-c"), false),
            ("/bin/sh", Some("-e -c x"), false),
            ("/usr/bin/python3", Some("-cimport os"), false),
            ("/usr/bin/python3", Some("-mhttp.server"), false),
            ("/usr/bin/perl", Some("-e"), false),
            ("/usr/bin/perl", Some("-MFoo"), false),
            ("/usr/bin/node", Some("--require=./x.js"), false),
            ("/usr/bin/env", Some("-S rm -rf /"), false),
            ("/bin/cat", None, false),
            ("/bin/cat", Some("/home/a/.ssh/id_rsa"), false),
            ("./interp", None, false),
        ];
        for (interp, arg, only) in cases {
            assert_eq!(runs_only_the_script(interp, arg), only, "{interp} {arg:?}");
        }
    }
}
