//! `execkit-helper guard`: the main process of an ephemeral container.
//!
//! It is the container's PID 1: it reaps whatever is re-parented to it and waits for the
//! end of its stdin, which is the server's attach stream. When the server closes the
//! session, exits or is killed, the daemon closes that stream; the guard exits, and with
//! PID 1 gone the kernel kills every other process in the container, which the daemon
//! then removes (it was created with auto-remove). `SIGTERM`/`SIGINT` (`docker stop`) end
//! it too.

use crate::sys;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Runs the guard; returns its exit code.
pub fn run() -> i32 {
    // SAFETY: sigset operations on a local set, sigprocmask and signalfd with it.
    let signals = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGCHLD, libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        let fd = libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC);
        if fd < 0 {
            eprintln!(
                "execkit-helper guard: signalfd: {}",
                std::io::Error::last_os_error()
            );
            return 1;
        }
        OwnedFd::from_raw_fd(fd)
    };
    let _ = sys::prctl(libc::PR_SET_CHILD_SUBREAPER, 1);
    // Not a source of descriptors or memory for the session's processes (same account).
    let _ = sys::prctl(libc::PR_SET_DUMPABLE, 0);
    let mut buf = [0u8; 4096];
    loop {
        let mut fds = [
            libc::pollfd {
                fd: 0,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: signals.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        if sys::poll(&mut fds, -1).is_err() {
            return 1;
        }
        if fds[1].revents != 0 {
            let mut info = [0u8; 128];
            while let Ok(n) = sys::read(signals.as_raw_fd(), &mut info) {
                if n < 4 {
                    break;
                }
                let signo = u32::from_ne_bytes([info[0], info[1], info[2], info[3]]) as i32;
                if signo != libc::SIGCHLD {
                    return 0;
                }
            }
            while sys::reap_any().is_some() {}
        }
        if fds[0].revents != 0 && !matches!(sys::read(0, &mut buf), Ok(n) if n > 0) {
            return 0;
        }
    }
}
