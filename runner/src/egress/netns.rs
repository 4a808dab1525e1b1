//! A listening socket made inside a session's network namespace.

use std::io;
use std::os::fd::AsRawFd;

/// Binds `127.0.0.1:port` in the network namespace of process `pid`: a short-lived thread
/// enters the namespace (`setns` changes only the calling thread's) and binds; the socket
/// stays in that namespace after the thread is gone.
pub(crate) fn listen_in(pid: i32, port: u16) -> io::Result<std::net::TcpListener> {
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))?;
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: setns(2) on an open namespace descriptor, in this thread only.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(io::Error::last_os_error());
            }
            let l = std::net::TcpListener::bind(("127.0.0.1", port))?;
            l.set_nonblocking(true)?;
            Ok(l)
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("the namespace thread panicked")))
    })
}
