//! The session's processes as the helper sees them: everything below the helper (it is
//! the tree's child subreaper, so orphans — `setsid`, double forks, `disown` — are
//! re-parented to it, never to the host's init), their numbers in the shell's PID
//! namespace, and killing them all.

use crate::sys;

/// Fields of `/proc/PID/stat` and `/proc/PID/status` the helper uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proc {
    /// The pid as the helper sees it.
    pub pid: i32,
    /// Its parent.
    pub ppid: i32,
    /// Its state letter.
    pub state: char,
}

fn stat(pid: i32) -> Option<Proc> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    let mut f = rest.split(' ');
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    Some(Proc { pid, ppid, state })
}

/// Every process below `root` (not `root` itself).
pub fn descendants(root: i32) -> Vec<Proc> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let all: Vec<Proc> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(stat)
        .collect();
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for c in all.iter().filter(|c| c.ppid == p) {
            if !out.iter().any(|o: &Proc| o.pid == c.pid) {
                out.push(*c);
                frontier.push(c.pid);
            }
        }
    }
    out
}

/// The direct children of `pid` (a single-threaded process such as the shell).
pub fn children(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

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
        let live: Vec<Proc> = descendants(me)
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
