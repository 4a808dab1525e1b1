//! A session's own loopback: set up in a forked child that has just entered a network
//! namespace of its own, before the sandbox and `exec`.
//!
//! Only raw system calls on the stack (no allocation), as a forked child of a
//! multi-threaded process requires.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// Sets the loopback interface of the calling process's (new) network namespace up, so
/// servers the session starts on `127.0.0.1` answer its own clients.
///
/// # Safety
/// Only in a forked child that entered its own network namespace.
pub unsafe fn up() -> io::Result<()> {
    // SAFETY: (whole body) socket(2) and ioctl(2) on a zeroed `ifreq` on the stack.
    unsafe {
        let fd = check(libc::socket(
            libc::AF_INET,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            0,
        ))?;
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo\0".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        let got = libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req);
        if got == 0 {
            req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        }
        let set = if got == 0 {
            libc::ioctl(fd, libc::SIOCSIFFLAGS, &req)
        } else {
            got
        };
        let err = io::Error::last_os_error();
        libc::close(fd);
        if set < 0 {
            return Err(err);
        }
        Ok(())
    }
}

/// A close-on-exec TCP socket listening on `127.0.0.1:port` in the calling process's
/// network namespace (where it stays when handed to a process outside it).
///
/// # Safety
/// Only raw system calls; safe in a forked child.
pub unsafe fn listen(port: u16) -> io::Result<OwnedFd> {
    // SAFETY: (whole body) socket/setsockopt/bind/listen on a descriptor we own and a
    // `sockaddr_in` on the stack.
    unsafe {
        let fd = check(libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
        ))?;
        let owned = OwnedFd::from_raw_fd(fd);
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_port = port.to_be();
        addr.sin_addr.s_addr = u32::from_be_bytes([127, 0, 0, 1]).to_be();
        check(libc::bind(
            fd,
            (&raw const addr).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        ))?;
        check(libc::listen(fd, 128))?;
        Ok(owned)
    }
}
