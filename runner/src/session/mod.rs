//! A session: one persistent shell, the policy check in front of it and the protection
//! pipeline behind it.
//!
//! The rooms, by job:
//! - [`state`]: the [`Session`] and what it holds, its reports, the audit and redaction
//!   every room shares, and closing;
//! - [`open`] and [`open_remote`]: starting the shell locally, over SSH or in a container;
//! - [`decide`]: the decision on a command in the session's state now;
//! - [`exec`]: one command from decision to result; [`run`]: the framing of its run in the
//!   shell (output, end marker, timeouts, cancellation);
//! - [`background`]: background processes; [`checkpoints`]: workspace checkpoints;
//!   [`restart`]: a new shell with the old one's cwd and exports.

mod background;
mod checkpoints;
mod decide;
mod exec;
mod open;
mod open_remote;
mod restart;
mod run;
mod state;

pub use decide::decide;
pub use restart::RestartReport;
pub use state::{Progress, Session, SessionInfo};
