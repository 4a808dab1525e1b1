//! Which program opened a connection to a broker listening in a session's own network:
//! the client's socket, found in that namespace's TCP table (`/proc/PID/net/tcp`, `tcp6`)
//! by its port, then among the descriptors of the processes in that namespace.
//!
//! Trade-off: a scan of `/proc` per connection (a few hundred microseconds with a few
//! hundred processes); the kernel has no cheaper way from a TCP peer to its process.

use std::path::PathBuf;

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
