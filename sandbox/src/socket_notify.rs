//! `connect`, stopped for a decision (the filter is [`crate::exec_notify::filter`]).
//!
//! # Why
//!
//! Connecting to a Unix socket file is not a Landlock right (ABI ≤ 7), and a session's
//! network namespace does not separate socket files. A daemon of the session's account
//! with a control socket — tmux, screen, ssh-agent, gpg-agent, the user's D-Bus — or the
//! Docker socket would otherwise carry a command out of the sandbox (`tmux new-window
//! 'touch /tmp/x'` writes where the session cannot). So every `connect` is read here, and
//! a Unix socket file outside the session's own directories is decided before it is
//! reached.
//!
//! # What holds, and what is left
//!
//! The kernel never reads the address again: the supervisor takes the task's socket
//! (`pidfd_getfd`) and connects it itself, on a thread of its own with the task's
//! credentials ([`connect_for`]) — to the bytes it read for any address other than a Unix
//! path, and for a Unix path to the very socket file it resolved and decided (an `O_PATH`
//! descriptor, reached through `/proc/thread-self/fd/N`). Neither a later change of the
//! task's memory nor a swapped symlink changes where the socket goes. What differs from
//! the kernel's own `connect`: the peer's `SO_PEERCRED` names the supervisor's process
//! (with the task's user and group).
//!
//! Datagrams sent with an address (`sendto`, `sendmsg`) are not stopped: they reach only
//! datagram sockets the account may write (on usual systems the log's `/dev/log` and the
//! journal), never a stream socket, and stopping `sendmsg` would stop the call that hands
//! this filter's listener over.

use crate::exec_notify::Supervisor;
use crate::task_memory::TaskMemory;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Whether a notification is for `connect`.
pub fn is_connect(n: &libc::seccomp_notif) -> bool {
    i64::from(n.data.nr) == libc::SYS_connect
}

/// Where an address points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// A Unix socket file, the path as passed (relative paths are the task's cwd's).
    UnixPath(Vec<u8>),
    /// An abstract Unix name (its namespace is the socket's network namespace).
    Abstract,
    /// Any other address: IPv4, IPv6, an unnamed Unix address, `AF_UNSPEC`.
    Other,
}

/// One stopped `connect`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketStop {
    /// The notification's id.
    pub id: u64,
    /// The task, as the supervisor's PID namespace numbers it.
    pub pid: i32,
    /// The socket descriptor, as the task numbers it.
    pub fd: RawFd,
    /// What the address names.
    pub peer: Peer,
    /// The address bytes, as read.
    pub address: Vec<u8>,
}

/// The largest address the kernel takes (`sizeof(struct sockaddr_storage)`).
const MAX_ADDRESS: u64 = 128;

/// Reads what a stopped `connect` names. An [`io::ErrorKind::InvalidInput`] error is a
/// call the kernel would refuse (`EINVAL`); other errors mean the task could not be read.
pub fn read(n: &libc::seccomp_notif) -> io::Result<SocketStop> {
    let a = n.data.args;
    if !is_connect(n) || a[2] < 2 || a[2] > MAX_ADDRESS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "an address length the kernel refuses",
        ));
    }
    let address = TaskMemory::open(n.pid as i32)?.bytes_at(a[1], a[2] as usize)?;
    Ok(SocketStop {
        id: n.id,
        pid: n.pid as i32,
        fd: a[0] as RawFd,
        peer: peer_of(&address),
        address,
    })
}

/// What an address's bytes name.
pub fn peer_of(bytes: &[u8]) -> Peer {
    if bytes.len() < 2 {
        return Peer::Other;
    }
    let family = u16::from_ne_bytes([bytes[0], bytes[1]]);
    if i32::from(family) != libc::AF_UNIX || bytes.len() == 2 {
        return Peer::Other;
    }
    let path = &bytes[2..];
    if path[0] == 0 {
        return Peer::Abstract;
    }
    let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
    Peer::UnixPath(path[..end].to_vec())
}

/// A Unix socket file as the task would reach it, held open (`O_PATH`) so that what was
/// decided is what is connected.
#[derive(Debug)]
pub struct SocketFile {
    /// Its path, as this process sees it.
    pub path: String,
    file: OwnedFd,
}

/// Resolves a Unix socket path the way task `pid` would: in its root and mount namespace,
/// relative paths from its working directory, symlinks followed, no magic links
/// (`/proc/PID/fd/N`, `/proc/PID/root`). `Err(errno)`: what the task's own call would have
/// met (`ENOENT`, `ECONNREFUSED` for a file that is not a socket, `EACCES` for a path
/// through a magic link).
pub fn resolve(pid: i32, path: &[u8]) -> Result<SocketFile, i32> {
    use std::os::unix::ffi::OsStrExt;
    let mut full = Vec::new();
    if path.first() != Some(&b'/') {
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).map_err(|_| libc::EACCES)?;
        full.extend_from_slice(cwd.as_os_str().as_bytes());
        full.push(b'/');
    }
    full.extend_from_slice(path);
    let root = open_path(libc::AT_FDCWD, format!("/proc/{pid}/root").as_bytes(), 0)
        .map_err(|_| libc::EACCES)?;
    let resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    let file = open_path(root.as_raw_fd(), &full, resolve).map_err(|e| match e {
        libc::ENOENT | libc::ENOTDIR | libc::ENAMETOOLONG | libc::EACCES => e,
        _ => libc::EACCES,
    })?;
    match is_socket(&file) {
        None => return Err(libc::EACCES),
        Some(false) => return Err(libc::ECONNREFUSED),
        Some(true) => {}
    }
    let shown = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .map_err(|_| libc::EACCES)?;
    Ok(SocketFile {
        path: shown.to_string_lossy().into_owned(),
        file,
    })
}

/// `openat2(dirfd, path, O_PATH | O_CLOEXEC, resolve)`; `Err(errno)`.
fn open_path(dirfd: RawFd, path: &[u8], resolve: u64) -> Result<OwnedFd, i32> {
    let c = std::ffi::CString::new(path).map_err(|_| libc::EINVAL)?;
    // SAFETY: open_how is plain data; zeroed is valid.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_PATH | libc::O_CLOEXEC) as u64;
    how.resolve = resolve;
    // SAFETY: openat2 with a valid string and a struct that outlive the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dirfd,
            c.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EACCES));
    }
    // SAFETY: a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Where a [`connect_for`] connects the task's socket.
#[derive(Debug)]
pub enum Destination {
    /// The address bytes read from the task (any family but a Unix path).
    Bytes(Vec<u8>),
    /// A resolved, decided Unix socket file.
    File(SocketFile),
}

/// The user and group a connection is made as (the session's run-as account).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Creds {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// Carries out the stopped `connect` of `stop` itself: takes the task's socket, connects
/// it to `to` on a thread of its own (as `creds`, when given), and answers the
/// notification with the result. A socket that cannot be taken is answered at once
/// (`EBADF`, `ENOTSOCK`, `EACCES`).
pub fn connect_for(sup: &Supervisor, stop: &SocketStop, to: Destination, creds: Option<Creds>) {
    connect_for_then(sup, stop, to, creds, None);
}

/// What runs once the supervisor's `connect` succeeded, before the task's returns.
pub type Connected = Box<dyn FnOnce(&OwnedFd) + Send>;

/// [`connect_for`], then `then` with the connected socket before the task is answered.
pub fn connect_for_then(
    sup: &Supervisor,
    stop: &SocketStop,
    to: Destination,
    creds: Option<Creds>,
    then: Option<Connected>,
) {
    let sock = match take_socket(stop.pid, stop.fd) {
        Ok(s) => s,
        Err(e) => {
            let _ = sup.answer_done(stop.id, Err(e));
            return;
        }
    };
    let Ok(answer) = sup.try_clone() else {
        let _ = sup.answer_done(stop.id, Err(libc::EAGAIN));
        return;
    };
    let id = stop.id;
    let spawned = std::thread::Builder::new()
        .name("execkit-connect".into())
        .spawn(move || {
            let result = become_(creds).and_then(|()| connect_to(&sock, &to));
            if let (Ok(_), Some(f)) = (&result, then) {
                f(&sock);
            }
            let _ = answer.answer_done(id, result);
        });
    if spawned.is_err() {
        let _ = sup.answer_done(stop.id, Err(libc::EAGAIN));
    }
}

/// A copy of descriptor `fd` of task `pid`, if it is a socket.
fn take_socket(pid: i32, fd: RawFd) -> Result<OwnedFd, i32> {
    const PIDFD_THREAD: libc::c_int = libc::O_EXCL;
    // SAFETY: pidfd_open on a plain pid.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, PIDFD_THREAD) };
    if pidfd < 0 {
        return Err(libc::EACCES);
    }
    // SAFETY: a fresh descriptor we own.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as RawFd) };
    // SAFETY: pidfd_getfd on our pidfd and the task's descriptor number.
    let got = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
    if got < 0 {
        let e = io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EBADF);
        return Err(if e == libc::EBADF { e } else { libc::EACCES });
    }
    // SAFETY: a fresh descriptor we own.
    let sock = unsafe { OwnedFd::from_raw_fd(got as RawFd) };
    if is_socket(&sock) != Some(true) {
        return Err(libc::ENOTSOCK);
    }
    Ok(sock)
}

/// Whether `fd` is a socket (`None`: it cannot be told).
fn is_socket(fd: &OwnedFd) -> Option<bool> {
    // SAFETY: stat is plain data; zeroed is valid.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat into that struct, on a descriptor we own.
    let rc = unsafe { libc::fstat(fd.as_raw_fd(), &mut st) };
    (rc == 0).then_some(st.st_mode & libc::S_IFMT == libc::S_IFSOCK)
}

/// Takes `creds` for the calling thread only (raw system calls: the C library's wrappers
/// would change every thread of the process). The thread cannot go back: it ends after one
/// connection.
fn become_(creds: Option<Creds>) -> Result<(), i32> {
    let Some(c) = creds else {
        return Ok(());
    };
    // SAFETY: raw credential system calls on plain integers, for this thread.
    let ok = unsafe {
        libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()) == 0
            && libc::syscall(libc::SYS_setresgid, c.gid, c.gid, c.gid) == 0
            && libc::syscall(libc::SYS_setresuid, c.uid, c.uid, c.uid) == 0
    };
    if ok {
        Ok(())
    } else {
        Err(libc::EACCES)
    }
}

/// `connect(sock, to)`; `Err(errno)`.
fn connect_to(sock: &OwnedFd, to: &Destination) -> Result<(), i32> {
    let via;
    let bytes: &[u8] = match to {
        Destination::Bytes(b) => b,
        Destination::File(f) => {
            via = unix_address(format!("/proc/thread-self/fd/{}", f.file.as_raw_fd()).as_bytes());
            &via
        }
    };
    loop {
        // SAFETY: connect with a buffer of `bytes.len()` bytes that outlives the call.
        let rc = unsafe {
            libc::connect(
                sock.as_raw_fd(),
                bytes.as_ptr().cast(),
                bytes.len() as libc::socklen_t,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO);
        if e != libc::EINTR {
            return Err(e);
        }
    }
}

/// A `sockaddr_un` naming `path`, as bytes.
fn unix_address(path: &[u8]) -> Vec<u8> {
    let mut out = (libc::AF_UNIX as u16).to_ne_bytes().to_vec();
    out.extend_from_slice(path);
    out.push(0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (address bytes, what they name): the table the decisions start from.
    #[test]
    fn addresses_name_their_peer() {
        let unix = |p: &[u8]| unix_address(p);
        let mut inet = (libc::AF_INET as u16).to_ne_bytes().to_vec();
        inet.extend_from_slice(&[0, 80, 127, 0, 0, 1]);
        let cases: Vec<(Vec<u8>, Peer)> = vec![
            (
                unix(b"/run/docker.sock"),
                Peer::UnixPath(b"/run/docker.sock".to_vec()),
            ),
            (unix(b"rel/s"), Peer::UnixPath(b"rel/s".to_vec())),
            (unix(b"\0abstract"), Peer::Abstract),
            ((libc::AF_UNIX as u16).to_ne_bytes().to_vec(), Peer::Other),
            (inet, Peer::Other),
            (vec![1], Peer::Other),
        ];
        for (bytes, want) in cases {
            assert_eq!(peer_of(&bytes), want, "{bytes:?}");
        }
    }

    /// A socket file is resolved in the caller's root, through symlinks; magic links and
    /// files that are not sockets are refused with what the kernel would say.
    #[test]
    fn socket_files_resolve_as_the_task_sees_them() {
        let dir = std::env::temp_dir().join(format!("ek-sock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("s");
        let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        std::os::unix::fs::symlink(&sock, dir.join("link")).unwrap();
        std::fs::write(dir.join("plain"), b"x").unwrap();
        let me = std::process::id() as i32;
        let p = |n: &str| dir.join(n).display().to_string().into_bytes();
        let real = std::fs::canonicalize(&sock).unwrap().display().to_string();
        assert_eq!(resolve(me, &p("s")).unwrap().path, real);
        assert_eq!(resolve(me, &p("link")).unwrap().path, real);
        assert_eq!(resolve(me, &p("plain")).unwrap_err(), libc::ECONNREFUSED);
        assert_eq!(resolve(me, &p("missing")).unwrap_err(), libc::ENOENT);
        let magic = format!("/proc/self/root{}", real).into_bytes();
        assert_eq!(resolve(me, &magic).unwrap_err(), libc::EACCES);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A child under the filter connects twice: the supervisor carries out the first
    /// (the listener sees it arrive) and refuses the second with `EACCES`; the child's
    /// results say so.
    #[test]
    fn a_decided_connect_is_made_by_the_supervisor_and_a_refused_one_fails() {
        use crate::exec_notify::{available, filter, install, recv_fd, send_fd};
        if available().is_err() {
            return;
        }
        let dir = std::env::temp_dir().join(format!("ek-conn-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let listener = std::os::unix::net::UnixListener::bind(dir.join("ok")).unwrap();
        let _other = std::os::unix::net::UnixListener::bind(dir.join("no")).unwrap();
        let ok = unix_address(dir.join("ok").display().to_string().as_bytes());
        let no = unix_address(dir.join("no").display().to_string().as_bytes());
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let prog = filter();
        // SAFETY: fork in a test; the child makes system calls only, then _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: child side: prctl, seccomp, sendmsg, socket, connect, _exit.
            unsafe {
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                let fd = install(&prog).unwrap_or(-1);
                if fd < 0 || send_fd(b.as_raw_fd(), fd).is_err() {
                    libc::_exit(90);
                }
                let try_ = |addr: &[u8]| {
                    let s = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
                    let rc = libc::connect(s, addr.as_ptr().cast(), addr.len() as u32);
                    if rc == 0 {
                        0
                    } else {
                        *libc::__errno_location()
                    }
                };
                let first = try_(&ok);
                let second = try_(&no);
                libc::_exit(if first == 0 && second == libc::EACCES {
                    0
                } else {
                    1
                });
            }
        }
        drop(b);
        let sup = Supervisor::new(recv_fd(a.as_raw_fd()).unwrap());
        for _ in 0..2 {
            let n = sup.recv().unwrap().unwrap();
            let stop = read(&n).unwrap();
            let Peer::UnixPath(path) = &stop.peer else {
                panic!("{stop:?}");
            };
            if path.ends_with(b"/ok") {
                let file = resolve(stop.pid, path).unwrap();
                connect_for(&sup, &stop, Destination::File(file), None);
            } else {
                sup.answer(n.id, false, libc::EACCES).unwrap();
            }
        }
        let mut status = 0;
        // SAFETY: waitpid on our child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(libc::WEXITSTATUS(status), 0);
        listener.set_nonblocking(true).unwrap();
        assert!(listener.accept().is_ok(), "the allowed connection arrived");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
