//! # execkit-helper: the remote side of a session
//!
//! A small static binary the server runs on an SSH host (uploaded into a per-user cache
//! named by its SHA-256, or installed by the operator) or in a container (bind-mounted or
//! copied in through the Docker API). It holds the session's shell the way the local
//! runner does:
//!
//! - **the sandbox**: Landlock, seccomp, `no_new_privs`, rlimits and — where the remote
//!   user may create them (root, or unprivileged user namespaces) — PID and mount
//!   namespaces, applied by [`execkit_sandbox`] exactly as locally;
//! - **the lifetime**: it is a child subreaper, so every process the shell starts stays
//!   below it (`setsid` and double forks included); when its connection ends (end of
//!   stdin, a `Close` frame, or no frame for the idle limit) it kills the whole tree —
//!   the PID namespace's init where there is one — and removes its private directory;
//! - **the framing**: the shell's stdin is a socket pair the helper owns, which cannot be
//!   reopened through `/proc`, and the helper itself is not dumpable, so nothing the shell
//!   runs can open the connection's pipes; the server's checks (is the shell blocked
//!   reading its stdin?) are answered by the helper from the remote kernel.
//!
//! Decisions stay on the server: the helper has no policy engine and no parser.
//!
//! This library is the wire protocol ([`wire`]) and its messages ([`msg`]), shared by the
//! server (the runner) and the binary.

#![warn(missing_docs)]

pub mod msg;
pub mod tls_name;
pub mod wire;

/// The protocol version; a server refuses a helper that speaks another.
pub const PROTOCOL: u32 = 1;

/// What `execkit-helper --version` prints (one line).
pub fn version_line() -> String {
    format!(
        "execkit-helper {} protocol {PROTOCOL} {}",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH
    )
}
