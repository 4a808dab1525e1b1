//! # execkit-runner: sessions
//!
//! A [`Session`] is one long-lived, non-interactive bash whose cwd, environment, shell
//! variables, functions and aliases persist across commands. Every command passes the
//! policy core first (a denial never reaches the shell), runs in its own process group
//! under the session's sandbox, and comes back as a structured [`ExecResult`] whose
//! output went through the protection pipeline (escapes stripped, secrets redacted,
//! bounded, shaped by the call's budgets).
//!
//! ```no_run
//! use execkit_runner::{ExecOptions, Session, SessionConfig};
//! # async fn demo(engine: std::sync::Arc<execkit_engine::Engine>) -> Result<(), Box<dyn std::error::Error>> {
//! let session = Session::local(SessionConfig::new("/work/project", engine)).await?;
//! let r = session.exec("ls src | head -3", &ExecOptions::default()).await?;
//! println!("{} (exit {:?}, {} ms)", r.stdout, r.exit_code, r.duration_ms);
//! session.close().await;
//! # Ok(()) }
//! ```
//!
//! See [`frame`] for how results are cut out of the shell's streams and [`sandbox`] for
//! the Landlock and seccomp confinement.

mod audit_record;
pub mod blocking;
mod config;
pub mod frame;
pub mod procs;
mod result;
pub mod sandbox;
mod session;
mod shell;

pub use config::{Limits, RunAs, SessionConfig, DEFAULT_PATH};
pub use result::{Denial, ExecError, ExecOptions, ExecResult, SessionError};
pub use session::{Approval, Progress, Session, SessionInfo};
