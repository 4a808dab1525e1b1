//! Local sessions, for real: a sandboxed bash on this kernel. One test binary, one module
//! per area.

mod common;
mod framing;
mod lifecycle;
mod sandbox;
mod session_state;
