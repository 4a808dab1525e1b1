//! The one tokio runtime every session of this process runs on, and the blocking bridge
//! for the synchronous API.
//!
//! A synchronous call drives its future on the calling thread with the GIL released
//! (the runtime's workers run the I/O and timers), waking every 100 ms to let Python deliver signals: Ctrl-C during a long
//! `exec` cancels the command (the session stays usable) and raises `KeyboardInterrupt`.
//! An asynchronous call runs the same future and settles an asyncio future on the caller's
//! loop with `call_soon_threadsafe`; cancelling the asyncio future aborts the task.
//!
//! Why not `pyo3-async-runtimes`: its completion path takes the GIL on a blocking thread
//! after the asyncio future is already settled, so the interpreter can begin finalizing
//! while that thread still needs the GIL, and CPython then ends the thread mid-Rust
//! (an abort at exit, seen in 4 of 15 runs of twenty `AsyncSession`s). Here every entry
//! into Python from a runtime thread goes through [`attach`], which an `atexit` hook
//! closes: it waits (GIL released) for the threads already inside and turns the rest
//! away, so no runtime thread touches Python once finalization starts.

use crate::errors::ExecKitError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::IntoPyObjectExt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();

/// How often a blocking call wakes to check for signals.
const SIGNAL_POLL: Duration = Duration::from_millis(100);

/// How long a cancelled command may take to come back before the call gives up on it.
const CANCEL_WAIT: Duration = Duration::from_secs(30);

/// The runtime, started on first use.
pub fn runtime() -> PyResult<&'static tokio::runtime::Runtime> {
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .max(2);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("execkit")
        .enable_all()
        .build()
        .map_err(|e| ExecKitError::new_err(format!("cannot start the runtime: {e}")))?;
    Ok(RUNTIME.get_or_init(|| rt))
}

/// Runtime threads inside Python right now (see [`attach`]).
static INSIDE: AtomicUsize = AtomicUsize::new(0);
/// Set by the `atexit` hook: runtime threads stay out of Python from then on.
static CLOSED: AtomicBool = AtomicBool::new(false);
/// How long the `atexit` hook waits for threads already inside Python.
const EXIT_WAIT: Duration = Duration::from_secs(5);

/// Starts the runtime and registers the `atexit` hook that closes [`attach`].
pub fn install(m: &Bound<'_, PyModule>) -> PyResult<()> {
    runtime()?;
    let py = m.py();
    let hook = wrap_pyfunction!(close_python_to_runtime_threads, m)?;
    py.import("atexit")?.call_method1("register", (hook,))?;
    Ok(())
}

/// Turns runtime threads away from Python and waits, with the GIL released, for those
/// already inside to leave. Registered with `atexit`, which runs before finalization.
#[pyfunction]
fn close_python_to_runtime_threads(py: Python<'_>) {
    CLOSED.store(true, Ordering::SeqCst);
    py.detach(|| {
        let deadline = Instant::now() + EXIT_WAIT;
        while INSIDE.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
}

/// Runs `f` with the GIL from a runtime thread, unless the interpreter is shutting down
/// (then `None`: whatever `f` would have done in Python is dropped).
pub fn attach<R>(f: impl for<'py> FnOnce(Python<'py>) -> R) -> Option<R> {
    INSIDE.fetch_add(1, Ordering::SeqCst);
    let out = if CLOSED.load(Ordering::SeqCst) {
        None
    } else {
        Some(Python::attach(f))
    };
    INSIDE.fetch_sub(1, Ordering::SeqCst);
    out
}

/// [`attach`] for code that builds a Python value or error.
pub fn attach_py<R>(f: impl for<'py> FnOnce(Python<'py>) -> PyResult<R>) -> PyResult<R> {
    attach(f).unwrap_or_else(|| Err(ExecKitError::new_err("the interpreter is shutting down")))
}

/// Runs `fut` to completion with the GIL released. On a pending signal (Ctrl-C), calls
/// `interrupt`, waits for the future to finish what it was doing, and raises the signal's
/// exception.
pub fn block_on<F, T>(py: Python<'_>, fut: F, interrupt: impl Fn()) -> PyResult<T>
where
    F: Future<Output = PyResult<T>> + Send + 'static,
    T: Send + 'static,
{
    let rt = runtime()?;
    // Driven on this thread (the runtime's workers run its I/O and timers): no hand-off
    // to a worker and back.
    let mut fut = Box::pin(fut);
    loop {
        let step =
            py.detach(|| rt.block_on(async { tokio::time::timeout(SIGNAL_POLL, &mut fut).await }));
        match step {
            Ok(done) => return done,
            Err(_pending) => {
                if let Err(signal) = py.check_signals() {
                    interrupt();
                    let _ = py.detach(|| {
                        rt.block_on(async { tokio::time::timeout(CANCEL_WAIT, &mut fut).await })
                    });
                    return Err(signal);
                }
            }
        }
    }
}

/// Runs `fut` as an asyncio awaitable on the running loop. Cancelling the awaitable calls
/// `on_cancel` (an `exec` cancels its command); the task itself always runs to its end,
/// because dropping a session call midway would leave the shell mid-command.
pub fn awaitable<'py, F, T>(
    py: Python<'py>,
    fut: F,
    on_cancel: Option<OnCancel>,
) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = PyResult<T>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    let rt = runtime()?;
    let event_loop = py.import("asyncio")?.call_method0("get_running_loop")?;
    let py_fut = event_loop.call_method0("create_future")?;
    let loop_ref = event_loop.unbind();
    let fut_ref = py_fut.clone().unbind();
    rt.spawn(async move {
        let result = fut.await;
        // Settling takes the GIL: off the runtime's workers, so they keep running.
        let _ = tokio::task::spawn_blocking(move || {
            attach(|py| settle(py, &loop_ref, &fut_ref, result));
        })
        .await;
    });
    if let Some(f) = on_cancel {
        py_fut.call_method1("add_done_callback", (CancelHook(Mutex::new(Some(f))),))?;
    }
    Ok(py_fut)
}

/// Hands `result` to the asyncio future, on its loop's thread.
fn settle<T>(py: Python<'_>, event_loop: &Py<PyAny>, fut: &Py<PyAny>, result: PyResult<T>)
where
    T: for<'a> IntoPyObject<'a>,
{
    let (ok, value) = match result.and_then(|v| v.into_py_any(py)) {
        Ok(v) => (true, v),
        Err(e) => (false, e.into_value(py).into_any()),
    };
    let sent = settler(py).and_then(|f| {
        event_loop
            .bind(py)
            .call_method1("call_soon_threadsafe", (f, fut.bind(py), ok, value))
    });
    if let Err(e) = sent {
        // The loop is closed: nobody awaits this any more.
        e.print(py);
    }
}

/// The loop-side half of [`settle`]: `fut.set_result` / `fut.set_exception` unless the
/// future was cancelled meanwhile.
fn settler(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static SETTLE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    SETTLE
        .get_or_try_init(py, || {
            Ok::<_, PyErr>(wrap_pyfunction!(settle_future, py)?.into_any().unbind())
        })
        .map(|f| f.bind(py))
}

#[pyfunction]
fn settle_future(fut: &Bound<'_, PyAny>, ok: bool, value: &Bound<'_, PyAny>) -> PyResult<()> {
    if fut.call_method0("done")?.is_truthy()? {
        return Ok(());
    }
    if ok {
        fut.call_method1("set_result", (value,))?;
    } else {
        fut.call_method1("set_exception", (value,))?;
    }
    Ok(())
}

/// What an awaitable does when it is cancelled.
pub type OnCancel = Box<dyn Fn() + Send + Sync>;

/// The asyncio future's done-callback: runs the cancel action once if it was cancelled.
#[pyclass(frozen)]
struct CancelHook(Mutex<Option<OnCancel>>);

#[pymethods]
impl CancelHook {
    fn __call__(&self, fut: &Bound<'_, PyAny>) -> PyResult<()> {
        if fut.call_method0("cancelled")?.is_truthy()? {
            if let Some(f) = self.0.lock().unwrap_or_else(|p| p.into_inner()).take() {
                f();
            }
        }
        Ok(())
    }
}
