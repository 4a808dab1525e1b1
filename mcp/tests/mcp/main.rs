//! End-to-end tests of `execkit-mcp`: the real binary, driven over stdio by rmcp's client.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a failed test

mod approval;
mod binary;
mod checkpoints;
mod common;
mod concurrency;
mod containment;
mod lifecycle;
mod processes;
mod protocol;
mod remote;
mod runtime;
mod siem;
mod tools;
mod watching;
