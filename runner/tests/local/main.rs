//! Local sessions, for real: a sandboxed bash on this kernel. One test binary, one module
//! per area.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a failed test

mod audit_faults;
mod checkpoints;
mod closed_home;
mod common;
mod docker_connect;
mod docker_egress;
mod egress;
mod egress_npm;
mod egress_tunnels;
mod frame_subversion;
mod lifecycle;
mod limits;
mod processes;
mod remote_egress;
mod remote_guarantees;
mod remote_runtime;
mod remote_sessions;
mod runtime_decisions;
mod runtime_descriptors;
mod sandbox;
mod session_state;
mod ssh_connect;
mod suite;
mod unix_sockets;
mod write_then_run;
