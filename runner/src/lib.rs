//! # execkit-runner: policy-checked shell sessions for AI agents
//!
//! This is the one crate a Rust user adds. A [`Session`] is one long-lived, non-interactive
//! bash whose cwd, environment, shell variables, functions and aliases persist across
//! commands. Every command passes the policy core first (a denial never reaches the shell),
//! runs in its own process group under the session's sandbox, and comes back as a
//! structured [`ExecResult`] whose output went through the protection pipeline (escapes
//! stripped, secrets redacted, bounded, shaped by the call's budgets).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = std::env::temp_dir().join(format!("execkit-doc-lib-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! # std::env::set_current_dir(&dir)?;
//! let r = execkit_runner::Session::builder().local().await?.exec("echo hi", &Default::default()).await?;
//! assert_eq!(r.stdout, "hi\n");
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(()) }
//! ```
//!
//! Everything has a safe default: the embedded `default` policy set, the `workspace`
//! sandbox profile on the current directory, default limits. [`SessionBuilder`] sets the
//! rest; [`Session::exec`] takes per-call [`ExecOptions`] (timeout, output budgets, a human's approval);
//! [`blocking::BlockingSession`] is the same API without async.
//!
//! The layers below are re-exported, so one dependency gives all of them:
//! [`Engine`] and [`Decision`] (dry runs: [`Engine::decide`]), [`protect`] (strip, redact,
//! bound, budget) and [`audit`] (the hash-chained log).
//!
//! See `frame.rs` for how results are cut out of the shell's streams and [`sandbox`] for
//! the Landlock and seccomp confinement.

#![warn(missing_docs)]
// Process control (pre-exec hooks, signals, `/proc` and prctl calls) needs libc; every
// unsafe block carries a SAFETY comment (clippy::undocumented_unsafe_blocks).
#![allow(unsafe_code)]

mod approval;
mod audit_record;
pub mod blocking;
mod builder;
pub mod checkpoint;
mod config;
mod disk;
pub mod docker;
pub mod egress;
mod exec_guard;
mod exports;
mod frame;
mod git_identity;
mod helper_binary;
mod helper_link;
mod helper_shell;
pub mod kernel_prediction;
pub mod known_hosts;
mod live_paths;
mod local_paths;
pub mod process;
pub(crate) use execkit_sandbox::procs;
mod remote;
mod remote_helper;
mod remote_limits;
pub mod remote_sandbox;
mod result;
mod runtime_paths;
pub mod sandbox;
mod session;
mod shell;
mod socket_guard;
pub mod ssh;
mod stream;
mod tmpdirs;

pub use approval::Approval;
pub use builder::SessionBuilder;
pub use config::{
    Limits, Observer, Resources, RunAs, RunAsError, RuntimeApprover, RuntimeAsk, SessionConfig,
    Transcripts, DEFAULT_PATH,
};
pub use process::{ProcessHandle, ProcessLimits, SpawnOptions};
pub use result::{
    ByteSize, Denial, ExecError, ExecOptions, ExecResult, LimitHit, RuntimeDenial, SessionError,
    Stages,
};
pub use session::{decide, Progress, RestartReport, Session, SessionInfo};

pub use execkit_audit as audit;
pub use execkit_engine::{
    Decision, DecisionEnv, Engine, FactDecision, Identity, LoadError, OpenTarget, PolicyBundle,
    PolicyHit, Transport, Verdict,
};
pub use execkit_protect as protect;
