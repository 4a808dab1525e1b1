//! A control group per session: process count, memory and CPU limits the kernel enforces
//! on the whole session tree, and counters that tell which limit a command hit.
//!
//! cgroup v2 is used where the server's own cgroup delegates the `pids`/`memory`/`cpu`
//! controllers to its children (systemd `Delegate=yes`, or an operator-prepared subtree);
//! otherwise the v1 hierarchies of those controllers (the hybrid layout many hosts still
//! have). Session groups are created as children of the cgroup the server itself is in,
//! named like the session directory (`execkit-session-<pid>.<start>-<id>-<n>`), joined by
//! the shell's first process before it forks anything (it writes `0` to `cgroup.procs`
//! between fork and exec), and removed when the session ends; groups of dead servers are
//! removed by the next server. Where no cgroup can be created, the runner falls back to
//! rlimits and says so in the enforcement report.

use std::collections::HashSet;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The controllers used, in v1 mount-option / v2 controller names.
const CONTROLLERS: [&str; 3] = ["pids", "memory", "cpu"];

/// What the runner asks of a session's cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Wanted {
    /// `pids.max`.
    pub processes: Option<u64>,
    /// `memory.max` / `memory.limit_in_bytes`.
    pub memory_bytes: Option<u64>,
    /// CPU quota in percent of one CPU (`200` = two CPUs).
    pub cpu_percent: Option<u32>,
}

impl Wanted {
    fn any(&self) -> bool {
        self.processes.is_some() || self.memory_bytes.is_some() || self.cpu_percent.is_some()
    }
}

pub use execkit_sandbox::CgroupVersion;

/// Counters read before and after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Counters {
    /// Processes killed by the OOM killer in the group.
    pub oom_kills: u64,
    /// Forks refused at `pids.max`.
    pub pids_max: u64,
}

/// One session's group(s): a directory per hierarchy (one for v2).
#[derive(Debug)]
pub(crate) struct SessionCgroup {
    pub version: CgroupVersion,
    dirs: Vec<PathBuf>,
    procs: Vec<OwnedFd>,
    memory_events: Option<PathBuf>,
    pids_events: Option<PathBuf>,
    /// What was applied.
    pub applied: Wanted,
}

/// A cgroup line of `/proc/self/cgroup`: hierarchy controllers and the path.
struct Membership {
    controllers: Vec<String>,
    path: String,
}

fn memberships() -> Vec<Membership> {
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let _id = f.next()?;
            let controllers = f.next()?;
            let path = f.next()?;
            Some(Membership {
                controllers: controllers
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect(),
                path: path.to_string(),
            })
        })
        .collect()
}

/// A cgroup mount: its root inside the hierarchy, where it is mounted, v2 or not, and (v1)
/// its controllers.
struct Mount {
    root: String,
    point: PathBuf,
    v2: bool,
    options: Vec<String>,
}

fn mounts() -> Vec<Mount> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let lf: Vec<&str> = left.split(' ').collect();
            let rf: Vec<&str> = right.split(' ').collect();
            let fstype = *rf.first()?;
            if fstype != "cgroup" && fstype != "cgroup2" {
                return None;
            }
            Some(Mount {
                root: lf.get(3)?.to_string(),
                point: PathBuf::from(lf.get(4)?),
                v2: fstype == "cgroup2",
                options: rf
                    .get(2)
                    .map(|o| o.split(',').map(str::to_string).collect())
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// The directory of a membership under a mount (the path is relative to the hierarchy's
/// root; the mount may show only a subtree of it).
fn dir_of(m: &Mount, path: &str) -> Option<PathBuf> {
    let rel = if m.root == "/" {
        path
    } else {
        path.strip_prefix(m.root.as_str())?
    };
    Some(m.point.join(rel.trim_start_matches('/')))
}

fn read_u64_field(file: &Path, key: &str) -> u64 {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                let (k, v) = l.split_once(' ')?;
                (k == key).then(|| v.trim().parse().ok()).flatten()
            })
        })
        .unwrap_or(0)
}

/// Removes groups of dead servers under `parent`, once per parent per process.
fn sweep_once(parent: &Path) {
    static SWEPT: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);
    if let Ok(mut s) = SWEPT.lock() {
        if !s
            .get_or_insert_with(HashSet::new)
            .insert(parent.to_path_buf())
        {
            return;
        }
    }
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        if let Some(name) = e.file_name().to_str() {
            if crate::tmpdirs::is_stale(name) {
                let _ = std::fs::remove_dir(e.path());
            }
        }
    }
}

/// The v2 parent, if it delegates every controller we need to its children.
fn v2_parent(mounts: &[Mount], members: &[Membership]) -> Option<PathBuf> {
    let m = members.iter().find(|m| m.controllers.is_empty())?;
    let mount = mounts.iter().find(|x| x.v2)?;
    let parent = dir_of(mount, &m.path)?;
    let available = std::fs::read_to_string(parent.join("cgroup.controllers")).ok()?;
    let delegated = std::fs::read_to_string(parent.join("cgroup.subtree_control")).ok()?;
    let all_in = |text: &str| {
        CONTROLLERS
            .iter()
            .all(|c| text.split_whitespace().any(|w| w == *c))
    };
    (all_in(&available) && all_in(&delegated)).then_some(parent)
}

fn write(dir: &Path, file: &str, value: &str) -> std::io::Result<()> {
    std::fs::write(dir.join(file), value)
}

fn open_procs(dir: &Path) -> std::io::Result<OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(dir.join("cgroup.procs"))?;
    Ok(f.into())
}

impl SessionCgroup {
    /// Creates the session's group named `name` with the limits in `wanted`. `Ok(None)`
    /// when nothing is wanted or this host offers no usable cgroup (the caller falls back
    /// to rlimits and reports it).
    pub(crate) fn create(name: &str, wanted: Wanted) -> Result<Option<SessionCgroup>, String> {
        if !wanted.any() {
            return Ok(None);
        }
        let mounts = mounts();
        let members = memberships();
        if let Some(parent) = v2_parent(&mounts, &members) {
            sweep_once(&parent);
            let dir = parent.join(name);
            std::fs::create_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            let mut g = SessionCgroup {
                version: CgroupVersion::V2,
                dirs: vec![dir.clone()],
                procs: Vec::new(),
                memory_events: Some(dir.join("memory.events")),
                pids_events: Some(dir.join("pids.events")),
                applied: Wanted::default(),
            };
            g.apply_v2(&dir, wanted)
                .map_err(|e| format!("{}: {e}", dir.display()))?;
            g.procs
                .push(open_procs(&dir).map_err(|e| format!("{}: {e}", dir.display()))?);
            return Ok(Some(g));
        }
        // v1: one group per controller hierarchy.
        let mut g = SessionCgroup {
            version: CgroupVersion::V1,
            dirs: Vec::new(),
            procs: Vec::new(),
            memory_events: None,
            pids_events: None,
            applied: Wanted::default(),
        };
        for controller in CONTROLLERS {
            let needed = match controller {
                "pids" => wanted.processes.is_some(),
                "memory" => wanted.memory_bytes.is_some(),
                _ => wanted.cpu_percent.is_some(),
            };
            if !needed {
                continue;
            }
            let Some(member) = members
                .iter()
                .find(|m| m.controllers.iter().any(|c| c == controller))
            else {
                continue;
            };
            let Some(mount) = mounts
                .iter()
                .find(|m| !m.v2 && m.options.iter().any(|o| o == controller))
            else {
                continue;
            };
            let Some(parent) = dir_of(mount, &member.path) else {
                continue;
            };
            sweep_once(&parent);
            let dir = parent.join(name);
            if std::fs::create_dir(&dir).is_err() {
                continue;
            }
            g.dirs.push(dir.clone());
            let applied = match controller {
                "pids" => wanted.processes.map(|n| {
                    g.pids_events = Some(dir.join("pids.events"));
                    write(&dir, "pids.max", &n.to_string()).map(|_| g.applied.processes = Some(n))
                }),
                "memory" => wanted.memory_bytes.map(|b| {
                    g.memory_events = Some(dir.join("memory.oom_control"));
                    write(&dir, "memory.limit_in_bytes", &b.to_string())
                        .map(|_| g.applied.memory_bytes = Some(b))
                }),
                _ => wanted.cpu_percent.map(|p| {
                    let period = 100_000u64;
                    write(&dir, "cpu.cfs_period_us", &period.to_string())
                        .and_then(|_| {
                            write(
                                &dir,
                                "cpu.cfs_quota_us",
                                &(period * u64::from(p) / 100).to_string(),
                            )
                        })
                        .map(|_| g.applied.cpu_percent = Some(p))
                }),
            };
            if let Some(Err(e)) = applied {
                return Err(format!("{}: {e}", dir.display()));
            }
            g.procs
                .push(open_procs(&dir).map_err(|e| format!("{}: {e}", dir.display()))?);
        }
        Ok((!g.dirs.is_empty()).then_some(g))
    }

    fn apply_v2(&mut self, dir: &Path, w: Wanted) -> std::io::Result<()> {
        if let Some(n) = w.processes {
            write(dir, "pids.max", &n.to_string())?;
            self.applied.processes = Some(n);
        }
        if let Some(b) = w.memory_bytes {
            write(dir, "memory.max", &b.to_string())?;
            // No swap escape hatch where swap accounting exists.
            let _ = write(dir, "memory.swap.max", "0");
            self.applied.memory_bytes = Some(b);
        }
        if let Some(p) = w.cpu_percent {
            let period = 100_000u64;
            write(
                dir,
                "cpu.max",
                &format!("{} {period}", period * u64::from(p) / 100),
            )?;
            self.applied.cpu_percent = Some(p);
        }
        Ok(())
    }

    /// The `cgroup.procs` descriptors the child writes `0` to, to join every group.
    pub(crate) fn procs_fds(&self) -> Vec<RawFd> {
        self.procs.iter().map(AsRawFd::as_raw_fd).collect()
    }

    /// The counters now.
    pub(crate) fn counters(&self) -> Counters {
        Counters {
            oom_kills: self
                .memory_events
                .as_deref()
                .map(|f| read_u64_field(f, "oom_kill"))
                .unwrap_or(0),
            pids_max: self
                .pids_events
                .as_deref()
                .map(|f| read_u64_field(f, "max"))
                .unwrap_or(0),
        }
    }
}

impl Drop for SessionCgroup {
    /// Removes the groups once their processes are gone (in the background: the kernel
    /// may take a moment to empty them after the kill).
    fn drop(&mut self) {
        let dirs = std::mem::take(&mut self.dirs);
        if dirs.is_empty() {
            return;
        }
        self.procs.clear();
        let _ = std::thread::Builder::new()
            .name("execkit-cgroup-rm".into())
            .spawn(move || {
                for _ in 0..200 {
                    let left: Vec<&PathBuf> = dirs
                        .iter()
                        .filter(|d| {
                            std::fs::remove_dir(d).is_err() && std::path::Path::new(d).exists()
                        })
                        .collect();
                    if left.is_empty() {
                        return;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            });
    }
}

/// Joins every group by writing `0` (the calling process) to each `cgroup.procs`.
///
/// # Safety
/// Call only in a forked child before `exec`: only `write(2)` on the given descriptors.
pub(crate) unsafe fn join_in_child(fds: &[RawFd]) -> std::io::Result<()> {
    for &fd in fds {
        // SAFETY: writing one byte from a static buffer to a descriptor we own.
        if unsafe { libc::write(fd, c"0".as_ptr().cast(), 1) } != 1 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
