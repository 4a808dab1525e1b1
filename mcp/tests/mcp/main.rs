//! End-to-end tests of `execkit-mcp`: the real binary, driven over stdio by rmcp's client.

mod approval;
mod binary;
mod common;
mod concurrency;
mod lifecycle;
mod tools;
