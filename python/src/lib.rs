//! # execkit for Python: the native half
//!
//! `execkit._execkit` is the compiled module behind the `execkit` Python package. It holds
//! no policy of its own: every call goes through the same [`execkit_runner::Session`] the
//! MCP server uses, so a command from Python is parsed, authorized by Cedar, sandboxed and
//! its output protected exactly as a command from an MCP client is.
//!
//! The Python package (`python/execkit/`) is the public face: typed signatures, docstrings,
//! the `AsyncSession` flavour. This crate gives it a small, strict surface: options arrive
//! as dicts whose keys are checked (an unknown key is an error, never ignored), results go
//! back as frozen classes, and every wait releases the GIL.
//!
//! Why a shared runtime: one multi-threaded tokio runtime per process runs every session,
//! so `AsyncSession`s awaited together really run together, and a blocking `exec` only
//! parks its own Python thread (see [`runtime`]).

mod convert;
mod errors;
mod options;
mod policy;
mod process;
mod result;
mod runtime;
mod session;

use pyo3::prelude::*;

/// The compiled half of the `execkit` package (import `execkit`, not this).
#[pymodule]
fn _execkit(m: &Bound<'_, PyModule>) -> PyResult<()> {
    runtime::install(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<session::NativeSession>()?;
    m.add_class::<result::ExecResult>()?;
    m.add_class::<result::Decision>()?;
    m.add_class::<process::Process>()?;
    m.add_function(wrap_pyfunction!(policy::policy_check, m)?)?;
    errors::register(m)?;
    Ok(())
}
