//! # execkit-tests: test-side code shared by the test suite and the fuzz targets
//!
//! Oracles live here, not in the production crates (as wasmtime keeps its oracles in a
//! fuzzing crate): the engine ships no code whose only caller is a test. The integration
//! tests themselves live in `tests/`.

#![warn(missing_docs)]

pub mod oracle;
