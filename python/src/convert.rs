//! Serde values to and from Python objects, through the `json` module: the results' nested
//! parts (facts, reports, process output) keep exactly the shape the MCP server and the
//! CLI's `--json` give them, so one schema documents all three.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// `value` as plain Python data (dicts, lists, str, int, float, bool, None).
pub fn to_py<'py, T: Serialize + ?Sized>(
    py: Python<'py>,
    value: &T,
) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(value)
        .map_err(|e| PyValueError::new_err(format!("cannot convert a result: {e}")))?;
    py.import("json")?.call_method1("loads", (text,))
}

/// Plain Python data as `T`; `what` names it in the error.
pub fn from_py<T: DeserializeOwned>(value: &Bound<'_, PyAny>, what: &str) -> PyResult<T> {
    let py = value.py();
    let text: String = py
        .import("json")?
        .call_method1("dumps", (value,))
        .map_err(|e| PyValueError::new_err(format!("{what}: not plain data ({e})")))?
        .extract()?;
    serde_json::from_str(&text).map_err(|e| PyValueError::new_err(format!("{what}: {e}")))
}
