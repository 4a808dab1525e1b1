//! Landlock rules: read everywhere except denied paths, write only to writable roots and a
//! few device files, no TCP when the network is off, and signal/abstract-socket scoping.

use crate::SandboxError;
use landlock::{
    Access, AccessFs, AccessNet, PathBeneath, PathFd, Ruleset, RulesetAttr, RulesetCreated,
    RulesetCreatedAttr, Scope, ABI,
};
use std::path::{Path, PathBuf};

/// The Landlock ABI we write rules for (filesystem incl. ioctl on devices, TCP, scopes).
const TARGET: ABI = ABI::V6;

/// Device files every shell may write.
const DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
];

/// Directories every shell may write: `/dev/shm` is where POSIX semaphores live (Python
/// multiprocessing needs it).
const SHARED_WRITABLE: &[&str] = &["/dev/shm"];

/// The running kernel's Landlock ABI version (0 when Landlock is missing or disabled).
pub fn kernel_landlock_abi() -> i32 {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_long = 1;
    // SAFETY: the documented version query: null attr, size 0, a flag.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if v < 0 {
        0
    } else {
        v as i32
    }
}

/// Which parts the kernel will enforce.
#[derive(Debug, Default, Clone, Copy)]
pub struct Applied {
    /// Filesystem rules (any ABI).
    pub filesystem: bool,
    /// TCP bind/connect rules (ABI 4+, when the network is off).
    pub network: bool,
    /// Signal and abstract-socket scoping (ABI 6+).
    pub scopes: bool,
}

/// A ruleset ready to be applied, and what it will enforce.
pub struct Built {
    /// The ruleset, built in the parent.
    pub ruleset: RulesetCreated,
    /// What the kernel will enforce.
    pub applied: Applied,
}

fn ll(e: impl std::fmt::Display) -> SandboxError {
    SandboxError::Landlock(e.to_string())
}

/// Paths read rules leave out, and paths beneath them read again.
#[derive(Debug, Default, Clone, Copy)]
pub struct Unreadable<'a> {
    /// The operator's `deny_read` (a writable root inside one is an error).
    pub denied: &'a [PathBuf],
    /// A closed home (writable roots inside it are granted as usual).
    pub home: Option<&'a Path>,
    /// Paths beneath the closed home granted read access again.
    pub reopened: &'a [PathBuf],
}

/// The ruleset: read everywhere but the unreadable paths, write beneath `writable` (and
/// the shared device files), no TCP when `block_tcp`, scoped signals and abstract sockets.
pub fn build(
    abi: i32,
    writable: &[PathBuf],
    unreadable: Unreadable<'_>,
    block_tcp: bool,
) -> Result<Built, SandboxError> {
    let deny_read = unreadable.denied;
    let mut ruleset = Ruleset::default()
        .handle_access(AccessFs::from_all(TARGET))
        .map_err(ll)?;
    if block_tcp {
        ruleset = ruleset
            .handle_access(AccessNet::from_all(TARGET))
            .map_err(ll)?;
    }
    ruleset = ruleset.scope(Scope::from_all(TARGET)).map_err(ll)?;
    let mut created = ruleset.create().map_err(ll)?;

    let read = AccessFs::from_read(TARGET);
    let mut roots = readable_roots(vec![PathBuf::from("/")], deny_read)?;
    if let Some(home) = unreadable.home {
        roots = readable_roots(roots, std::slice::from_ref(&home.to_path_buf()))?;
        roots.extend(readable_roots(unreadable.reopened.to_vec(), deny_read)?);
    }
    for root in roots {
        let Ok(fd) = PathFd::new(&root) else { continue };
        let access = if root.is_dir() {
            read
        } else {
            read & AccessFs::from_file(TARGET)
        };
        created = created.add_rule(PathBeneath::new(fd, access)).map_err(ll)?;
    }
    let all = AccessFs::from_all(TARGET);
    for dir in writable
        .iter()
        .cloned()
        .chain(SHARED_WRITABLE.iter().map(PathBuf::from))
    {
        if deny_read.iter().any(|d| dir.starts_with(d)) {
            return Err(SandboxError::Path {
                path: dir,
                message: "is both writable and denied for reading".into(),
            });
        }
        let Ok(fd) = PathFd::new(&dir) else { continue };
        let access = if dir.is_dir() {
            all
        } else {
            AccessFs::from_file(TARGET)
        };
        created = created.add_rule(PathBeneath::new(fd, access)).map_err(ll)?;
    }
    for dev in DEVICES {
        let Ok(fd) = PathFd::new(dev) else { continue };
        created = created
            .add_rule(PathBeneath::new(fd, AccessFs::from_file(TARGET)))
            .map_err(ll)?;
    }
    Ok(Built {
        ruleset: created,
        applied: Applied {
            filesystem: abi >= 1,
            network: block_tcp && abi >= 4,
            scopes: abi >= 6,
        },
    })
}

/// Grants read, write and terminal ioctls on the calling process's own devpts instance
/// (`/dev/pts`, and `/dev/ptmx` bound to its `ptmx`). Only for a child that mounted them
/// in its private mount namespace (`namespaces::PRIVATE_PTS`): the terminals there are
/// the session's alone. (TIOCSTI stays refused by seccomp.)
pub fn add_own_pts(created: RulesetCreated) -> std::io::Result<RulesetCreated> {
    let io = |e: landlock::RulesetError| std::io::Error::other(e.to_string());
    let pts = PathFd::new("/dev/pts").map_err(|e| std::io::Error::other(e.to_string()))?;
    let ptmx = PathFd::new("/dev/ptmx").map_err(|e| std::io::Error::other(e.to_string()))?;
    let file = AccessFs::from_file(TARGET);
    created
        .add_rule(PathBeneath::new(pts, file | AccessFs::ReadDir))
        .map_err(io)?
        .add_rule(PathBeneath::new(ptmx, file))
        .map_err(io)
}

/// Grants every file right beneath the calling process's `/dev/shm`. Only for a child that
/// mounted a tmpfs of its own there (`namespaces::PRIVATE_SHM`): the rule made for the
/// host's `/dev/shm` does not reach the new mount.
pub fn add_own_shm(created: RulesetCreated) -> std::io::Result<RulesetCreated> {
    let fd = PathFd::new("/dev/shm").map_err(|e| std::io::Error::other(e.to_string()))?;
    created
        .add_rule(PathBeneath::new(fd, AccessFs::from_all(TARGET)))
        .map_err(|e| std::io::Error::other(e.to_string()))
}

/// Grants read access beneath the calling process's `/proc`. Only for a child that mounted
/// its own `/proc` after the ruleset was built: Landlock skips covered mount points when it
/// walks up a path, so the rules made for the server's `/proc` do not reach the new mount.
pub fn add_own_proc(created: RulesetCreated) -> std::io::Result<RulesetCreated> {
    let fd = PathFd::new("/proc").map_err(|e| std::io::Error::other(e.to_string()))?;
    created
        .add_rule(PathBeneath::new(fd, AccessFs::from_read(TARGET)))
        .map_err(|e| std::io::Error::other(e.to_string()))
}

/// True if no denied path touches `/proc` (so the session's own `/proc` may be readable).
pub fn proc_not_denied(deny_read: &[PathBuf]) -> bool {
    let proc = Path::new("/proc");
    !deny_read
        .iter()
        .any(|d| d.starts_with(proc) || proc.starts_with(d))
}

/// The smallest set of paths whose union is everything beneath `roots` except the denied
/// paths: each denied path's ancestors are replaced by their other children (Landlock
/// rules only add).
fn readable_roots(mut roots: Vec<PathBuf>, deny: &[PathBuf]) -> Result<Vec<PathBuf>, SandboxError> {
    for d in deny {
        if !d.is_absolute() {
            return Err(SandboxError::Path {
                path: d.clone(),
                message: "deny_read paths must be absolute".into(),
            });
        }
        let mut next = Vec::new();
        for r in roots {
            carve(&r, d, &mut next);
        }
        roots = next;
    }
    Ok(roots)
}

fn carve(root: &Path, deny: &Path, out: &mut Vec<PathBuf>) {
    if root.starts_with(deny) {
        return;
    }
    if !deny.starts_with(root) || !root.is_dir() {
        out.push(root.to_path_buf());
        return;
    }
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for e in entries.flatten() {
        carve(&e.path(), deny, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carving_leaves_out_only_the_denied_path() {
        let dir = std::env::temp_dir().join(format!("ek-carve-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("a/secret")).unwrap();
        std::fs::create_dir_all(dir.join("a/open")).unwrap();
        std::fs::create_dir_all(dir.join("b")).unwrap();
        let mut out = Vec::new();
        carve(&dir, &dir.join("a/secret"), &mut out);
        out.sort();
        assert_eq!(out, vec![dir.join("a/open"), dir.join("b")]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn carving_drops_roots_beneath_the_denied_path() {
        let dir = std::env::temp_dir().join(format!("ek-carve2-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("home/.cache")).unwrap();
        std::fs::create_dir_all(dir.join("other")).unwrap();
        let roots = vec![dir.join("home/.cache"), dir.join("other")];
        let out = readable_roots(roots, &[dir.join("home")]).unwrap();
        assert_eq!(out, vec![dir.join("other")]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
