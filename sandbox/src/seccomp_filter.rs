//! The seccomp deny-list. Default allow; listed syscalls fail with `EPERM` (so programs see
//! an ordinary error instead of dying), `clone3` fails with `ENOSYS` so libc falls back to
//! `clone`, whose namespace flags can be inspected. x32 system calls (numbers with bit 30
//! set, which seccompiler's per-number rules would not see) are refused up front, and
//! other architectures (32-bit `int 0x80`) kill the process.

use crate::SandboxError;
use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCmpArgLen as Len, SeccompCmpOp as Op,
    SeccompCondition as Cond, SeccompFilter, SeccompRule, TargetArch,
};
use std::collections::BTreeMap;

/// Syscalls refused outright.
const DENIED: &[libc::c_long] = &[
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    // Another process's descriptors and memory, where the container's or host's own
    // filter lets them through (a container with `SYS_PTRACE` in its bounding set).
    libc::SYS_pidfd_getfd,
    libc::SYS_process_madvise,
    libc::SYS_kcmp,
    libc::SYS_bpf,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_move_mount,
    libc::SYS_open_tree,
    libc::SYS_fsopen,
    libc::SYS_fsmount,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_userfaultfd,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_perf_event_open,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_personality,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_open_by_handle_at,
    libc::SYS_reboot,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_acct,
    // The host's names: a session does not have a UTS namespace of its own.
    libc::SYS_sethostname,
    libc::SYS_setdomainname,
];

/// `ioctl` requests refused: pushing input into a terminal, and its console cousin;
/// a socket's network namespace (`SIOCGSKNS`: a socket the server made before the
/// session had a network of its own would hand over the host's); a process's namespaces
/// from its pidfd (`PIDFD_GET_CGROUP_NAMESPACE` … `PIDFD_GET_UTS_NAMESPACE`).
const TIOCSTI: u64 = 0x5412;
const TIOCLINUX: u64 = 0x541C;
const SIOCGSKNS: u64 = 0x894C;
const PIDFD_NAMESPACES: std::ops::RangeInclusive<u64> = 0xFF01..=0xFF0A;

/// Namespace flags refused in `clone`.
const CLONE_NS_FLAGS: &[u64] = &[
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWCGROUP as u64,
];

const X32_SYSCALL_BIT: u32 = 0x4000_0000;

fn sc(e: impl std::fmt::Display) -> SandboxError {
    SandboxError::Seccomp(e.to_string())
}

fn arch() -> Result<TargetArch, SandboxError> {
    TargetArch::try_from(std::env::consts::ARCH).map_err(sc)
}

/// The deny-list program.
pub fn build(block_network: bool) -> Result<BpfProgram, SandboxError> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for &nr in DENIED {
        rules.insert(nr, vec![]);
    }
    let ioctl = [TIOCSTI, TIOCLINUX, SIOCGSKNS]
        .into_iter()
        .chain(PIDFD_NAMESPACES)
        .map(|req| {
            SeccompRule::new(vec![Cond::new(1, Len::Dword, Op::Eq, req).map_err(sc)?]).map_err(sc)
        })
        .collect::<Result<Vec<_>, _>>()?;
    rules.insert(libc::SYS_ioctl, ioctl);
    let clone = CLONE_NS_FLAGS
        .iter()
        .map(|&flag| {
            SeccompRule::new(vec![
                Cond::new(0, Len::Qword, Op::MaskedEq(flag), flag).map_err(sc)?
            ])
            .map_err(sc)
        })
        .collect::<Result<Vec<_>, _>>()?;
    rules.insert(libc::SYS_clone, clone);
    // TCP Fast Open opens a connection from `sendto`/`sendmsg` without `connect`, which
    // the runtime guard stops and notes (the broker learns its clients' programs there).
    for (nr, flags_arg) in [
        (libc::SYS_sendto, 3),
        (libc::SYS_sendmsg, 2),
        (libc::SYS_sendmmsg, 3),
    ] {
        let fast_open = libc::MSG_FASTOPEN as u64;
        let cond = Cond::new(flags_arg, Len::Dword, Op::MaskedEq(fast_open), fast_open);
        rules.insert(
            nr,
            vec![SeccompRule::new(vec![cond.map_err(sc)?]).map_err(sc)?],
        );
    }
    // VSOCK reaches the hypervisor and the host past any network namespace: refused in
    // every sandboxed profile. With the network blocked, every family but AF_UNIX is.
    let family = if block_network {
        Cond::new(0, Len::Dword, Op::Ne, libc::AF_UNIX as u64)
    } else {
        Cond::new(0, Len::Dword, Op::Eq, libc::AF_VSOCK as u64)
    };
    rules.insert(
        libc::SYS_socket,
        vec![SeccompRule::new(vec![family.map_err(sc)?]).map_err(sc)?],
    );
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch()?,
    )
    .map_err(sc)?;
    let body: BpfProgram = filter.try_into().map_err(sc)?;
    let mut program = x32_guard();
    program.extend(body);
    // clone3 takes its flags in a struct seccomp cannot read: make it look unimplemented,
    // so libc falls back to clone, whose flags the rules above see.
    let mut combined = clone3_prefix();
    combined.extend(program);
    Ok(combined)
}

const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JMP_JEQ_K: u16 = 0x05 | 0x10;
const BPF_JMP_JGE_K: u16 = 0x05 | 0x30;
const BPF_RET_K: u16 = 0x06;

/// `ld nr; <jump> k → ERRNO(errno)`: three instructions put in front of the compiled
/// program (its jumps are relative, so a prefix does not disturb them).
fn nr_guard(jump: u16, k: u32, errno: i32) -> Vec<sock_filter> {
    vec![
        sock_filter {
            code: BPF_LD_W_ABS,
            jt: 0,
            jf: 0,
            k: 0,
        },
        sock_filter {
            code: jump,
            jt: 0,
            jf: 1,
            k,
        },
        sock_filter {
            code: BPF_RET_K,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ERRNO | errno as u32,
        },
    ]
}

/// x32 system calls (bit 30 set) → EPERM.
fn x32_guard() -> Vec<sock_filter> {
    nr_guard(BPF_JMP_JGE_K, X32_SYSCALL_BIT, libc::EPERM)
}

/// `clone3` → ENOSYS.
fn clone3_prefix() -> Vec<sock_filter> {
    nr_guard(BPF_JMP_JEQ_K, libc::SYS_clone3 as u32, libc::ENOSYS)
}
