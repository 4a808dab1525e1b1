//! `Process`: a background process of a session (`session.spawn`). Its output is kept
//! (protected, bounded: head plus a rolling tail) and read with a cursor, so nothing is
//! read twice and nothing is missed unless it fell out of the ring, which the result says.

use crate::convert::to_py;
use crate::errors::ProcessError;
use crate::runtime::{awaitable, block_on};
use execkit_runner::process::{until_pattern, Cursor, ProcessSignal};
use execkit_runner::ProcessHandle;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use std::time::Duration;

/// A background process.
#[pyclass(frozen, module = "execkit")]
pub struct Process(ProcessHandle);

impl Process {
    /// Wraps a handle.
    pub fn new(h: ProcessHandle) -> Process {
        Process(h)
    }
}

fn cursor(c: Option<&str>) -> PyResult<Option<Cursor>> {
    c.map(|c| {
        c.parse::<Cursor>()
            .map_err(|e| PyValueError::new_err(e.to_string()))
    })
    .transpose()
}

fn timeout(seconds: f64) -> PyResult<Duration> {
    if !(seconds.is_finite() && (0.0..1e9).contains(&seconds)) {
        return Err(PyValueError::new_err(format!(
            "timeout must be a non-negative number of seconds, not {seconds}"
        )));
    }
    Ok(Duration::from_secs_f64(seconds))
}

fn process_error(e: execkit_runner::process::ProcessError) -> PyErr {
    ProcessError::new_err(e.to_string())
}

fn signal_of(name: &str) -> PyResult<ProcessSignal> {
    ProcessSignal::parse(name).ok_or_else(|| {
        PyValueError::new_err(format!(
            "unknown signal `{name}` (one of {})",
            ProcessSignal::ALL.map(|s| s.name()).join(", ")
        ))
    })
}

/// What a wait needs, checked before anything waits.
struct WaitArgs {
    timeout: Duration,
    until: Option<regex::Regex>,
    cursor: Option<Cursor>,
    max_bytes: Option<usize>,
}

fn wait_args(
    seconds: f64,
    until: Option<&str>,
    from: Option<&str>,
    max_bytes: Option<usize>,
) -> PyResult<WaitArgs> {
    Ok(WaitArgs {
        timeout: timeout(seconds)?,
        until: until
            .map(until_pattern)
            .transpose()
            .map_err(process_error)?,
        cursor: cursor(from)?,
        max_bytes,
    })
}

async fn wait(h: ProcessHandle, a: WaitArgs) -> PyResult<Py<PyAny>> {
    let out = h
        .wait(a.timeout, a.until.as_ref(), a.cursor, a.max_bytes)
        .await;
    crate::runtime::attach_py(|py| to_py(py, &out).map(Bound::unbind))
}

/// Bytes from `str` (UTF-8) or `bytes`.
fn data_of(data: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(s) = data.extract::<String>() {
        return Ok(s.into_bytes());
    }
    data.extract::<Vec<u8>>()
        .map_err(|_| PyValueError::new_err("stdin data is str or bytes"))
}

#[pymethods]
impl Process {
    /// Its id (`p-` and 8 hex digits).
    #[getter]
    fn id(&self) -> &str {
        self.0.id()
    }

    /// True once it exited.
    #[getter]
    fn done(&self) -> bool {
        self.0.done()
    }

    /// Its state: `{"state": "running", "stopped": false}` or
    /// `{"state": "exited", "code": 0}` (with `signal` when one ended it).
    #[getter]
    fn state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.0.state())
    }

    /// Id, name, command (redacted), cwd, state, age, stream totals, stdin.
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.0.info())
    }

    /// New output since `cursor` (`"OUT:ERR"` byte offsets; default: since the last read),
    /// at most `max_bytes` of text. The dict's `next_cursor` is where the next read starts.
    #[pyo3(signature = (cursor=None, max_bytes=None))]
    fn read<'py>(
        &self,
        py: Python<'py>,
        cursor: Option<&str>,
        max_bytes: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let out = self.0.read(self::cursor(cursor)?, max_bytes);
        to_py(py, &out)
    }

    /// Waits until it exits, `timeout` seconds pass, or the regex `until` matches new
    /// output; returns `{"reason", "matched", "output", "waited_ms"}`.
    #[pyo3(signature = (timeout=30.0, until=None, cursor=None, max_bytes=None))]
    fn wait(
        &self,
        py: Python<'_>,
        timeout: f64,
        until: Option<&str>,
        cursor: Option<&str>,
        max_bytes: Option<usize>,
    ) -> PyResult<Py<PyAny>> {
        let a = wait_args(timeout, until, cursor, max_bytes)?;
        block_on(py, wait(self.0.clone(), a), || {})
    }

    /// `wait` as an awaitable.
    #[pyo3(signature = (timeout=30.0, until=None, cursor=None, max_bytes=None))]
    fn wait_async<'py>(
        &self,
        py: Python<'py>,
        timeout: f64,
        until: Option<&str>,
        cursor: Option<&str>,
        max_bytes: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let a = wait_args(timeout, until, cursor, max_bytes)?;
        awaitable(py, wait(self.0.clone(), a), None)
    }

    /// Writes to its stdin (str or bytes); `close=True` closes stdin after (EOF).
    /// Returns the bytes written.
    #[pyo3(signature = (data, close=false))]
    fn write(&self, py: Python<'_>, data: &Bound<'_, PyAny>, close: bool) -> PyResult<usize> {
        let bytes = data_of(data)?;
        let h = self.0.clone();
        block_on(
            py,
            async move { h.write_stdin(&bytes, close).await.map_err(process_error) },
            || {},
        )
    }

    /// `write` as an awaitable.
    #[pyo3(signature = (data, close=false))]
    fn write_async<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        close: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let bytes = data_of(data)?;
        let h = self.0.clone();
        awaitable(
            py,
            async move { h.write_stdin(&bytes, close).await.map_err(process_error) },
            None,
        )
    }

    /// Sends a signal to its process group: INT, TERM, KILL, HUP, QUIT, USR1, USR2, STOP, CONT.
    fn signal(&self, py: Python<'_>, name: &str) -> PyResult<()> {
        let sig = signal_of(name)?;
        let h = self.0.clone();
        block_on(
            py,
            async move { h.signal(sig).await.map_err(process_error) },
            || {},
        )
    }

    /// SIGTERM, the operator's grace period, then SIGKILL; returns the state after.
    fn terminate(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let h = self.0.clone();
        block_on(
            py,
            async move {
                let st = h.terminate().await;
                crate::runtime::attach_py(|py| to_py(py, &st).map(Bound::unbind))
            },
            || {},
        )
    }

    /// `terminate` as an awaitable.
    fn terminate_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let h = self.0.clone();
        awaitable(
            py,
            async move {
                let st = h.terminate().await;
                crate::runtime::attach_py(|py| to_py(py, &st).map(Bound::unbind))
            },
            None,
        )
    }

    fn __repr__(&self) -> String {
        let i = self.0.info();
        format!("<execkit process {} {:?} {:?}>", i.id, i.command, i.state)
    }
}
