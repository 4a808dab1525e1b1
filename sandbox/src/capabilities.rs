//! Every capability dropped before the shell starts.
//!
//! A shell that runs as root (a local session without `run_as`, a container's root) keeps
//! root's capabilities in the user namespace it was started in unless they are taken away:
//! `CAP_NET_ADMIN` over a network it can get a handle on, `CAP_SYS_ADMIN`,
//! `CAP_DAC_OVERRIDE` over other accounts' files. Landlock and the seccomp deny-list bound
//! much of that, but not all (a red team added a network interface to the host's network
//! from such a shell). So the bounding set, the ambient set and the effective, permitted
//! and inheritable sets are emptied; with `no_new_privs` no `exec` gives any back. Root
//! stays root by uid: its own files are still its own.
//!
//! Raw system calls only: this runs in a forked child before `exec`.

use std::io;

/// `_LINUX_CAPABILITY_VERSION_3`: two 32-bit words per set.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Empties the calling process's capability sets (the bounding set only where it may:
/// a process without `CAP_SETPCAP` has nothing an `exec` could raise under
/// `no_new_privs`).
///
/// # Safety
/// Raw system calls only; safe in a forked child.
pub unsafe fn drop_all() -> io::Result<()> {
    // SAFETY: (whole body) prctl and capset with constant arguments and stack data.
    unsafe {
        for cap in 0..64 {
            if libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 {
                // EINVAL: past the kernel's last capability; EPERM: no CAP_SETPCAP.
                break;
            }
        }
        // Old kernels have no ambient set (EINVAL): nothing to clear there.
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        );
        let mut header = CapHeader {
            version: CAPABILITY_VERSION_3,
            pid: 0,
        };
        let none = [CapData {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        }; 2];
        if libc::syscall(libc::SYS_capset, &raw mut header, none.as_ptr()) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}
