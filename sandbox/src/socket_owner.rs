//! Which program opened a connection to a broker listening in a session's own network.
//!
//! The fast way, [`BrokerClients`]: every `connect` of the session is stopped and made by
//! the supervisor ([`crate::socket_notify::connect_for_then`]); a connection to the broker
//! is noted by its client port with the program that asked for it *before* the task's
//! `connect` returns, so before it can send the request the broker then reads. The slow
//! way, [`program`], for a connection nobody noted: the client's socket found in the
//! namespace's TCP table (`/proc/PID/net/tcp`, `tcp6`) by its port, then among the
//! descriptors of the processes in that namespace — milliseconds, as the kernel builds
//! that table by walking every TCP socket of the host.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Mutex;

/// Connections to a broker noted as the supervisor made them: client port → program.
#[derive(Debug, Default)]
pub struct BrokerClients {
    by_port: Mutex<HashMap<u16, String>>,
}

/// Noted connections kept at most (a client that never sends a request leaves one).
const MAX_NOTED: usize = 4096;

impl BrokerClients {
    /// Notes that `program` owns the connected socket `sock` (by its local port).
    pub fn note(&self, sock: &OwnedFd, program: String) {
        let Some(port) = local_port(sock) else { return };
        if let Ok(mut m) = self.by_port.lock() {
            if m.len() >= MAX_NOTED {
                m.clear();
            }
            m.insert(port, program);
        }
    }

    /// The program noted for the client at `port`, forgotten as it is taken.
    pub fn take(&self, port: u16) -> Option<String> {
        self.by_port.lock().ok()?.remove(&port)
    }
}

/// The local port of a connected IPv4 or IPv6 socket.
fn local_port(sock: &OwnedFd) -> Option<u16> {
    // SAFETY: sockaddr_storage is plain data; zeroed is valid.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: getsockname into storage of the length given, on a descriptor we own.
    let rc = unsafe { libc::getsockname(sock.as_raw_fd(), (&raw mut ss).cast(), &mut len) };
    if rc != 0 {
        return None;
    }
    match i32::from(ss.ss_family) {
        libc::AF_INET => {
            // SAFETY: the kernel filled a sockaddr_in for AF_INET.
            let a: &libc::sockaddr_in = unsafe { &*(&raw const ss).cast() };
            Some(u16::from_be(a.sin_port))
        }
        libc::AF_INET6 => {
            // SAFETY: the kernel filled a sockaddr_in6 for AF_INET6.
            let a: &libc::sockaddr_in6 = unsafe { &*(&raw const ss).cast() };
            Some(u16::from_be(a.sin6_port))
        }
        _ => None,
    }
}

/// True if `address` (as a stopped `connect` passed it) is `127.0.0.1:port` or its
/// IPv4-mapped IPv6 form: the broker of a session's own network.
pub fn is_broker_address(address: &[u8], port: u16) -> bool {
    let family = address.get(..2).map(|b| u16::from_ne_bytes([b[0], b[1]]));
    let port_ok = address.get(2..4) == Some(&port.to_be_bytes()[..]);
    match family.map(i32::from) {
        Some(libc::AF_INET) => port_ok && address.get(4..8) == Some(&[127, 0, 0, 1][..]),
        Some(libc::AF_INET6) => {
            let mapped = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1];
            port_ok && address.get(8..24) == Some(&mapped[..])
        }
        _ => false,
    }
}

/// The socket inode of the connection whose local end is `127.0.0.1:client_port` (or
/// `[::ffff:127.0.0.1]`) towards `broker_port`, in the namespace of `ns_pid`.
fn inode_of(ns_pid: i32, client_port: u16, broker_port: u16) -> Option<u64> {
    let local = format!(":{client_port:04X}");
    let remote = format!(":{broker_port:04X}");
    ["tcp", "tcp6"].iter().find_map(|t| {
        let text = std::fs::read_to_string(format!("/proc/{ns_pid}/net/{t}")).ok()?;
        text.lines().skip(1).find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let hit = f.len() > 9 && f[1].ends_with(&local) && f[2].ends_with(&remote);
            hit.then(|| f[9].parse().ok()).flatten()
        })
    })
}

/// The network namespace of a process (`net:[INODE]`).
fn net_of(pid: &str) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/ns/net")).ok()
}

/// The pid of a process in `ns_pid`'s network namespace holding socket `inode`.
fn holder(ns_pid: i32, inode: u64) -> Option<String> {
    let ns = net_of(&ns_pid.to_string())?;
    let want = PathBuf::from(format!("socket:[{inode}]"));
    let procs = std::fs::read_dir("/proc").ok()?;
    procs
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
        .filter(|p| net_of(p).as_ref() == Some(&ns))
        .find(|p| {
            std::fs::read_dir(format!("/proc/{p}/fd"))
                .into_iter()
                .flatten()
                .flatten()
                .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| t == want))
        })
}

/// The executable of the process that opened the connection from `client_port`, or
/// `None` when it cannot be found (it exited, or handed the socket on).
pub fn program(ns_pid: i32, client_port: u16, broker_port: u16) -> Option<String> {
    let inode = inode_of(ns_pid, client_port, broker_port)?;
    let pid = holder(ns_pid, inode)?;
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    Some(exe.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inet(ip: [u8; 4], port: u16) -> Vec<u8> {
        let mut b = (libc::AF_INET as u16).to_ne_bytes().to_vec();
        b.extend_from_slice(&port.to_be_bytes());
        b.extend_from_slice(&ip);
        b.extend_from_slice(&[0; 8]);
        b
    }

    fn inet6(ip: [u8; 16], port: u16) -> Vec<u8> {
        let mut b = (libc::AF_INET6 as u16).to_ne_bytes().to_vec();
        b.extend_from_slice(&port.to_be_bytes());
        b.extend_from_slice(&[0; 4]);
        b.extend_from_slice(&ip);
        b.extend_from_slice(&[0; 4]);
        b
    }

    #[test]
    fn only_the_brokers_own_address_is_the_broker() {
        let mapped = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1];
        let cases: [(Vec<u8>, bool); 7] = [
            (inet([127, 0, 0, 1], 3128), true),
            (inet6(mapped, 3128), true),
            (inet([127, 0, 0, 1], 3129), false),
            (inet([127, 0, 0, 2], 3128), false),
            (inet([10, 0, 0, 1], 3128), false),
            (inet6(std::net::Ipv6Addr::LOCALHOST.octets(), 3128), false),
            (vec![1, 0], false),
        ];
        for (address, want) in cases {
            assert_eq!(is_broker_address(&address, 3128), want, "{address:?}");
        }
    }

    #[test]
    fn a_noted_client_is_found_by_its_port_once() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let port = c.local_addr().unwrap().port();
        let clients = BrokerClients::default();
        clients.note(&OwnedFd::from(c), "/usr/bin/curl".into());
        assert_eq!(clients.take(port).as_deref(), Some("/usr/bin/curl"));
        assert_eq!(clients.take(port), None);
    }
}
