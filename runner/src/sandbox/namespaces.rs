//! A PID and mount namespace per session, so the session can neither outlive its server nor
//! see it.
//!
//! Between `fork` and `exec` the child calls `unshare(CLONE_NEWPID | CLONE_NEWNS)` and forks
//! once more. The intermediate process (the *keeper*, still in the server's namespace)
//! closes every descriptor it inherited, asks for `SIGKILL` when the server dies
//! (`PR_SET_PDEATHSIG`) and waits for its one child, exiting with its status. The
//! grandchild is PID 1 of the new namespace: it makes the mount tree private, mounts a
//! fresh `/proc` (which shows only the session's processes), asks for `SIGKILL` when the
//! keeper dies, drops to the run-as user if one is set, and goes on to the sandbox and
//! `exec` of the shell.
//!
//! When the server dies for any reason, the keeper is killed, then the shell, and when a
//! PID namespace's init dies the kernel kills every process in it: background jobs,
//! `setsid`/`nohup` escapees and all.
//!
//! Everything in the child is a raw system call on data prepared before `fork` (no
//! allocation, no locks), as required in a forked child of a multi-threaded process.

use std::io;
use std::sync::OnceLock;

/// Credentials the grandchild switches to after mounting (uid, gid).
pub(crate) type Creds = Option<(u32, u32)>;

use execkit_sandbox::prepared::{PRIVATE_PTS, PRIVATE_SHM};

/// Mounts a tmpfs of the session's own on `/dev/shm`, in its private mount namespace;
/// false when the mount fails (the host's then stays, as without namespaces).
///
/// # Safety
/// Only in a forked child that entered its own mount namespace.
unsafe fn mount_private_shm() -> bool {
    // SAFETY: mount(2) with constant C strings, in the caller's private mount namespace.
    unsafe {
        libc::mount(
            c"tmpfs".as_ptr(),
            c"/dev/shm".as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            c"mode=1777".as_ptr().cast(),
        ) == 0
    }
}

/// Mounts a new devpts instance on `/dev/pts` and its `ptmx` over `/dev/ptmx`, in the
/// session's private mount namespace; false when either mount fails (no PTYs then).
///
/// # Safety
/// Only in a forked child that entered its own mount namespace.
unsafe fn mount_private_pts() -> bool {
    // SAFETY: mount(2) with constant C strings, in the caller's private mount namespace.
    unsafe {
        libc::mount(
            c"devpts".as_ptr(),
            c"/dev/pts".as_ptr(),
            c"devpts".as_ptr(),
            libc::MS_NOSUID | libc::MS_NOEXEC,
            c"newinstance,ptmxmode=0666,mode=0620".as_ptr().cast(),
        ) == 0
            && libc::mount(
                c"/dev/pts/ptmx".as_ptr(),
                c"/dev/ptmx".as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null(),
            ) == 0
    }
}

/// True if this process can give sessions their own PID and mount namespaces (probed once,
/// by starting `/bin/sh -c :` that way).
pub(crate) fn available() -> bool {
    static PROBE: OnceLock<bool> = OnceLock::new();
    *PROBE.get_or_init(|| {
        let mut cmd = std::process::Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(":")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        // SAFETY: `enter` only makes async-signal-safe system calls.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || enter(None, true));
        }
        cmd.status().is_ok_and(|s| s.success())
    })
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Moves the calling (forked, not yet exec'd) process into new PID and mount namespaces,
/// and with `private_net` a network namespace of its own whose loopback is up (the keeper
/// is in it too: `/proc/<keeper>/ns/net` names it). Returns only in the grandchild that
/// is PID 1 there; the keeper never returns.
///
/// # Safety
/// Call only in a forked child before `exec` (a `pre_exec` closure).
pub(crate) unsafe fn enter(creds: Creds, private_net: bool) -> io::Result<()> {
    let net = if private_net { libc::CLONE_NEWNET } else { 0 };
    // SAFETY: (whole body) raw system calls on constants and plain integers, allowed
    // between fork and exec.
    unsafe {
        check(libc::unshare(libc::CLONE_NEWPID | libc::CLONE_NEWNS | net))?;
        let pid = libc::fork();
        if pid < 0 {
            return Err(io::Error::last_os_error());
        }
        if pid > 0 {
            keep(pid);
        }
        // PID 1 of the new namespace: the shell itself, after `exec`.
        check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0))?;
        check(libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ))?;
        check(libc::mount(
            c"proc".as_ptr(),
            c"/proc".as_ptr(),
            c"proc".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            std::ptr::null(),
        ))?;
        PRIVATE_PTS.store(mount_private_pts(), std::sync::atomic::Ordering::SeqCst);
        PRIVATE_SHM.store(mount_private_shm(), std::sync::atomic::Ordering::SeqCst);
        if private_net {
            execkit_sandbox::loopback::up()?;
        }
        // Its own session (the runner finds the tree by session id).
        check(libc::setsid())?;
        if let Some((uid, gid)) = creds {
            check(libc::setgroups(0, std::ptr::null()))?;
            check(libc::setgid(gid))?;
            check(libc::setuid(uid))?;
            // A credential change clears the parent-death signal: ask again.
            check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0))?;
        }
        Ok(())
    }
}

fn exit_code(status: libc::c_int) -> libc::c_int {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        1
    }
}

/// The keeper: holds nothing, dies with the server, exits with the shell's status.
unsafe fn keep(child: libc::pid_t) -> ! {
    // SAFETY: (whole body) raw system calls between fork and exit.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        // Every inherited descriptor: the shell's pipes (so EOF reaches the server when the
        // shell exits) and the spawn error pipe (so the server sees the exec, not us).
        libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32);
        let mut status = 0;
        loop {
            let r = libc::waitpid(child, &mut status, 0);
            if r == child {
                break;
            }
            if r < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                libc::_exit(1);
            }
        }
        libc::_exit(exit_code(status))
    }
}

/// Sets `SIGKILL` as the calling process's parent-death signal (the fallback when there
/// are no namespaces: at least the shell dies with the server).
///
/// # Safety
/// Call only in a forked child before `exec`.
pub(crate) unsafe fn die_with_parent() -> io::Result<()> {
    // SAFETY: prctl with constant arguments.
    check(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) })
}
