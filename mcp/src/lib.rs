//! The execkit front ends: the MCP server (`execkit-mcp`) and the command-line interface
//! (`execkit`). Both binaries are thin; the work lives in the modules here and, below
//! them, in `execkit-grammar`, `execkit-engine`, `execkit-runner` and `execkit-audit`.

#![warn(missing_docs)]

pub mod audit_cmd;
pub mod config;
pub mod doctor;
pub mod http;
pub mod human;
pub mod mcp_doctor;
pub mod operator;
pub mod out;
pub mod policy_cmd;
pub mod policy_prove;
pub mod policy_replay;
pub mod policy_trace;
pub mod redact_cmd;
pub mod serve;
pub mod server;
pub mod session_cmd;
pub mod session_ops;
pub mod setup;
pub mod watch;
pub mod wire;
