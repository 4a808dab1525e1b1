//! What the kernel says about the shell and its processes (`/proc`), and signalling them.
//! The local transport trusts these over anything the shell prints.

use std::path::PathBuf;

/// The pid of `pid` in the innermost PID namespace it lives in (`NSpid`'s last field):
/// what a shell in a namespace calls it.
pub fn ns_pid(pid: i32) -> Option<i32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with("NSpid:"))?;
    line.split_whitespace().last()?.parse().ok()
}

/// Fields of `/proc/PID/stat` we use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Process id.
    pub pid: i32,
    /// State letter (`R`, `S`, `Z`, ...).
    pub state: char,
    /// Parent pid.
    pub ppid: i32,
    /// Process group.
    pub pgid: i32,
    /// Session id.
    pub sid: i32,
    /// When it started, in clock ticks since boot (see [`boot_ticks_now`]).
    pub start: u64,
}

/// Reads `/proc/PID/stat`.
pub fn stat(pid: i32) -> Option<Stat> {
    named_stat(pid).map(|(s, _)| s)
}

/// Reads `/proc/PID/stat`, with the command name it holds (`comm`).
pub fn named_stat(pid: i32) -> Option<(Stat, String)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold anything: split after the last ')'.
    let close = text.rfind(')')?;
    let name = text[..close]
        .split_once('(')
        .map(|(_, n)| n.to_string())
        .unwrap_or_default();
    let rest = &text[close + 2..];
    let mut f = rest.split(' ');
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    let pgid = f.next()?.parse().ok()?;
    let sid = f.next()?.parse().ok()?;
    // Fields 7 to 21 (tty … itrealvalue), then 22: the start time.
    let start = f.nth(15)?.parse().ok()?;
    Some((
        Stat {
            pid,
            state,
            ppid,
            pgid,
            sid,
            start,
        },
        name,
    ))
}

/// Now, in the clock ticks since boot that `/proc/PID/stat` counts start times in (the
/// boot-time clock, floored to `_SC_CLK_TCK`): a process whose start is after this was
/// forked after this call.
pub fn boot_ticks_now() -> Option<u64> {
    // SAFETY: sysconf takes a constant and returns a number.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes only into the timespec it is given.
    let read = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    if hz <= 0 || read != 0 {
        return None;
    }
    let ns = u128::try_from(ts.tv_sec).ok()? * 1_000_000_000 + u128::try_from(ts.tv_nsec).ok()?;
    u64::try_from(ns * hz as u128 / 1_000_000_000).ok()
}

/// The signals `pid` does not leave to their default action, or has blocked or pending
/// (the union of `SigCgt`, `SigIgn`, `SigBlk`, `SigPnd` and `ShdPnd`; bit N-1 is signal N).
pub fn signals_not_default(pid: i32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mut mask = 0u64;
    let mut seen = 0;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        if matches!(key, "SigCgt" | "SigIgn" | "SigBlk" | "SigPnd" | "ShdPnd") {
            mask |= u64::from_str_radix(value.trim(), 16).ok()?;
            seen += 1;
        }
    }
    (seen == 5).then_some(mask)
}

/// Every process on the system.
pub fn all() -> Vec<Stat> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(stat)
        .collect()
}

/// Every process below `root` (not `root` itself), from one look at `/proc`.
pub fn descendants(root: i32) -> Vec<Stat> {
    let everything = all();
    let mut out: Vec<Stat> = Vec::new();
    let mut frontier = vec![root];
    let mut seen = std::collections::HashSet::new();
    while let Some(p) = frontier.pop() {
        for s in everything.iter().filter(|s| s.ppid == p) {
            if seen.insert(s.pid) {
                out.push(*s);
                frontier.push(s.pid);
            }
        }
    }
    out
}

/// `pid` and every process below it, plus every process in session `sid` (which catches
/// children re-parented away after their parent exited).
pub fn tree(pid: i32, sid: i32) -> Vec<Stat> {
    let everything = all();
    let mut keep: Vec<Stat> = Vec::new();
    let mut frontier = vec![pid];
    let mut seen = std::collections::HashSet::new();
    while let Some(p) = frontier.pop() {
        if !seen.insert(p) {
            continue;
        }
        for s in &everything {
            if s.pid == p {
                keep.push(*s);
            }
            if s.ppid == p {
                frontier.push(s.pid);
            }
        }
    }
    for s in &everything {
        if s.sid == sid && !seen.contains(&s.pid) {
            keep.push(*s);
            seen.insert(s.pid);
        }
    }
    keep
}

/// Direct children of a single-threaded process.
pub fn children(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// True if `pid` is blocked in `read(0, …)`.
pub fn blocked_reading_stdin(pid: i32) -> bool {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/syscall")) else {
        return false;
    };
    let mut f = text.split_whitespace();
    let nr = f.next().and_then(|n| n.parse::<i64>().ok());
    let fd = f
        .next()
        .and_then(|a| i64::from_str_radix(a.trim_start_matches("0x"), 16).ok());
    nr == Some(libc::SYS_read) && fd == Some(0)
}

/// What `/proc/PID/fd/N` points to (`pipe:[1234]`, a path, ...).
pub fn fd_target(pid: i32, fd: i32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok()
}

/// The process's working directory, as the kernel has it.
pub fn cwd(pid: i32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/cwd")).ok()
}

/// Sends a signal to a process group; true if it was delivered to someone.
pub fn signal_group(pgid: i32, sig: i32) -> bool {
    if pgid <= 1 {
        return false;
    }
    // SAFETY: kill(2) with a negative pid addresses a process group.
    unsafe { libc::kill(-pgid, sig) == 0 }
}

/// Sends a signal to one process; true if delivered.
pub fn signal(pid: i32, sig: i32) -> bool {
    if pid <= 1 {
        return false;
    }
    // SAFETY: plain kill(2).
    unsafe { libc::kill(pid, sig) == 0 }
}

/// SIGKILLs `pid`'s whole tree (every process below it and in its session), repeating
/// until nothing is left or `rounds` is used up, so forks racing the kill are caught.
/// Dead orphans that were re-parented to this process are reaped; `pid` itself is left
/// for its owner to wait on.
pub fn kill_tree(pid: i32, sid: i32, rounds: usize) {
    let me = std::process::id() as i32;
    for _ in 0..rounds {
        let procs = tree(pid, sid);
        let live: Vec<&Stat> = procs.iter().filter(|s| s.state != 'Z').collect();
        let ours: Vec<&Stat> = procs
            .iter()
            .filter(|s| s.state == 'Z' && s.ppid == me && s.pid != pid)
            .collect();
        for s in &ours {
            reap(s.pid);
        }
        if live.is_empty() && ours.is_empty() {
            return;
        }
        for s in &live {
            signal(s.pid, libc::SIGKILL);
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// Reaps dead processes of session `sid` that were re-parented to this process (all but
/// `except`, which its owner waits on). Looks only at this process's own children, so it
/// is cheap enough to run after every command.
pub fn reap_orphans(sid: i32, except: i32) {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return;
    };
    for t in tasks.flatten() {
        let Ok(kids) = std::fs::read_to_string(t.path().join("children")) else {
            continue;
        };
        for pid in kids
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            if pid == except {
                continue;
            }
            if let Some(s) = stat(pid) {
                if s.sid == sid && s.state == 'Z' {
                    reap(pid);
                }
            }
        }
    }
}

fn reap(pid: i32) {
    let mut status = 0;
    // SAFETY: waitpid on a specific child, non-blocking.
    unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_stat() {
        let me = std::process::id() as i32;
        let s = stat(me).unwrap();
        assert_eq!(s.pid, me);
        assert!(s.ppid > 0);
        assert!(cwd(me).is_some());
        let now = boot_ticks_now().unwrap();
        assert!(s.start > 0 && s.start <= now, "{} > {now}", s.start);
    }

    #[test]
    fn an_ignored_signal_is_not_default_and_an_untouched_one_is() {
        let me = std::process::id() as i32;
        let before = signals_not_default(me).unwrap();
        // SIGPIPE is ignored by the Rust runtime; SIGWINCH is left alone by it and by cargo.
        assert_ne!(before & (1 << (libc::SIGPIPE - 1)), 0);
        assert_eq!(before & (1 << (libc::SIGWINCH - 1)), 0);
    }
}
