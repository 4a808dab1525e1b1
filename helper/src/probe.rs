//! `execkit-helper probe`: what this kernel and account can give a session, as JSON (for
//! `execkit doctor` and the session notes).

use crate::sys;
use execkit_helper::msg::Probe;

/// Probes and prints; returns the exit code.
pub fn run() -> i32 {
    let (machine, kernel) = sys::uname();
    // SAFETY: getuid/geteuid cannot fail; prctl(PR_GET_SECCOMP) takes no pointer.
    let (uid, euid, seccomp) = unsafe {
        (
            libc::getuid(),
            libc::geteuid(),
            libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) >= 0,
        )
    };
    let probe = Probe {
        version: execkit_helper::version_line(),
        machine,
        kernel,
        landlock_abi: execkit_sandbox::kernel_landlock_abi(),
        seccomp,
        namespaces: namespaces(euid == 0),
        uid,
    };
    match serde_json::to_string(&probe) {
        Ok(j) => {
            println!("{j}");
            0
        }
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

/// Tries to make PID and mount namespaces in a throwaway child.
fn namespaces(root: bool) -> Result<String, String> {
    let mut tried = Vec::new();
    for (how, flags) in [
        ("root", libc::CLONE_NEWPID | libc::CLONE_NEWNS),
        (
            "user",
            libc::CLONE_NEWUSER | libc::CLONE_NEWPID | libc::CLONE_NEWNS,
        ),
    ] {
        if how == "root" && !root {
            continue;
        }
        // SAFETY: fork in a single-threaded process; the child only calls unshare/_exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: unshare then _exit in the child.
            unsafe {
                libc::_exit(if libc::unshare(flags) == 0 {
                    0
                } else {
                    *libc::__errno_location()
                })
            };
        }
        if pid < 0 {
            return Err(format!("fork: {}", std::io::Error::last_os_error()));
        }
        let mut status = 0;
        // SAFETY: waitpid on our child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        let (code, _) = sys::decode_status(status);
        if code == 0 {
            return Ok(how.into());
        }
        tried.push(format!(
            "{how}: {}",
            std::io::Error::from_raw_os_error(code)
        ));
    }
    Err(tried.join("; "))
}
