//! The session's processes as the helper sees them: everything below the helper (it is
//! the tree's child subreaper, so orphans — `setsid`, double forks, `disown` — are
//! re-parented to it, never to the host's init), their numbers in the shell's PID
//! namespace, and killing them all.

use crate::sys;

pub use execkit_sandbox::procs::{children, descendants};

/// A process's `(pid, process group)` in the innermost PID namespace it lives in, and in
/// the helper's: `((inner pid, inner pgid), (outer pid, outer pgid))`.
pub fn ids(pid: i32) -> Option<((i32, i32), (i32, i32))> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<(i32, i32)> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        let nums: Vec<i32> = line[name.len()..]
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect();
        Some((*nums.first()?, *nums.last()?))
    };
    let (pid_out, pid_in) = field("NSpid:")?;
    let (pgid_out, pgid_in) = field("NSpgid:")?;
    Some(((pid_in, pgid_in), (pid_out, pgid_out)))
}

/// SIGKILLs every process below the helper, again and again until none is left (forks
/// racing the kill are caught the next round), reaping as it goes. With `ns_init`, the
/// PID namespace's init is killed first, which takes the whole namespace with it.
pub fn kill_all(ns_init: Option<i32>) {
    if let Some(init) = ns_init {
        sys::kill(init, libc::SIGKILL);
    }
    let me = std::process::id() as i32;
    for _ in 0..500 {
        while sys::reap_any().is_some() {}
        let live: Vec<execkit_sandbox::procs::Stat> = descendants(me)
            .into_iter()
            .filter(|p| p.state != 'Z')
            .collect();
        if live.is_empty() {
            while sys::reap_any().is_some() {}
            return;
        }
        for p in &live {
            sys::kill(p.pid, libc::SIGKILL);
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}
