//! # execkit-sandbox: the kernel's part of a session's confinement
//!
//! The pieces of the sandbox that do not care where the shell runs, shared by the runner
//! (local sessions, applied between `fork` and `exec` of the shell) and by the remote
//! helper (`execkit-helper`, which applies the same rules on an SSH host or in a
//! container):
//!
//! - [`capabilities`]: every capability dropped, root's included;
//! - [`home`]: the home closed but for toolchains and caches;
//! - [`landlock_rules`]: read everywhere but the denied paths and the closed home, write only the writable
//!   roots, no TCP when the network is off, signal and abstract-socket scoping;
//! - [`seccomp_filter`]: the deny-list (ptrace, mount, namespaces, keyrings, io_uring, …,
//!   sockets other than `AF_UNIX` when the network is off);
//! - [`rlimits`]: per-process limits set before `exec`;
//! - [`loopback`]: a session network's loopback and the broker's listener in it;
//! - [`socket_owner`]: which program opened a connection to the broker;
//! - [`procs`]: what `/proc` says about the shell and its processes, and signalling them;
//! - [`report`]: the profile asked for and the [`Enforcement`] reached, layer by layer.
//!
//! Nothing here allocates in a forked child of a multi-threaded process: rulesets and BPF
//! programs are built before `fork`, and the `apply`/`*_in_child` functions only make
//! system calls.

// Landlock, seccomp, prctl, setrlimit and /proc need libc; every unsafe block carries a
// SAFETY comment (clippy::undocumented_unsafe_blocks).
#![allow(unsafe_code)]
#![warn(missing_docs)]

pub mod capabilities;
pub mod exec_notify;
pub mod home;
pub mod landlock_rules;
pub mod loopback;
pub mod prepared;
pub mod procs;
pub mod report;
pub mod rlimits;
pub mod seccomp_filter;
pub mod socket_notify;
pub mod socket_owner;
mod task_memory;

pub use landlock_rules::kernel_landlock_abi;
pub use report::{
    CgroupVersion, Enforcement, Level, Profile, ResourceReport, SandboxError, UnknownProfile,
};
pub use rlimits::Rlimits;
