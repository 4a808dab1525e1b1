//! Options dicts from the Python layer, read strictly: every key must be one the call
//! knows, so a misspelt option is an error instead of a silently ignored setting.

use pyo3::conversion::FromPyObjectOwned;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

/// A dict of options being read; [`Options::finish`] rejects the keys nobody read.
pub struct Options<'py> {
    what: &'static str,
    dict: Option<Bound<'py, PyDict>>,
    read: BTreeSet<String>,
}

impl<'py> Options<'py> {
    /// Reads `dict` (None: no options) for the call `what`.
    pub fn new(what: &'static str, dict: Option<&Bound<'py, PyDict>>) -> Options<'py> {
        Options {
            what,
            dict: dict.cloned(),
            read: BTreeSet::new(),
        }
    }

    /// The value of `key`, if present and not None.
    pub fn get(&mut self, key: &str) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.read.insert(key.to_string());
        let Some(d) = &self.dict else { return Ok(None) };
        Ok(d.get_item(key)?.filter(|v| !v.is_none()))
    }

    /// `key` extracted as `T`, with the option named in the error.
    pub fn value<T: FromPyObjectOwned<'py>>(&mut self, key: &str) -> PyResult<Option<T>> {
        match self.get(key)? {
            None => Ok(None),
            Some(v) => v.extract::<T>().map(Some).map_err(|e| {
                let e: PyErr = e.into();
                PyTypeError::new_err(format!(
                    "{}: option `{key}`: {}",
                    self.what,
                    e.value(v.py())
                ))
            }),
        }
    }

    /// A filesystem path (str or os.PathLike).
    pub fn path(&mut self, key: &str) -> PyResult<Option<PathBuf>> {
        self.value::<PathBuf>(key)
    }

    /// A duration in seconds (int or float, > 0 and finite).
    pub fn seconds(&mut self, key: &str) -> PyResult<Option<Duration>> {
        let Some(s) = self.value::<f64>(key)? else {
            return Ok(None);
        };
        if !(s.is_finite() && s > 0.0 && s < 1e9) {
            return Err(PyValueError::new_err(format!(
                "{}: `{key}` must be a positive number of seconds, not {s}",
                self.what
            )));
        }
        Ok(Some(Duration::from_secs_f64(s)))
    }

    /// Fails on any key that was not read.
    pub fn finish(self) -> PyResult<()> {
        let Some(d) = &self.dict else { return Ok(()) };
        let mut unknown = Vec::new();
        for k in d.keys() {
            let name: String = k.extract().map_err(|_| {
                PyTypeError::new_err(format!("{}: option names must be strings", self.what))
            })?;
            if !self.read.contains(&name) {
                unknown.push(name);
            }
        }
        if unknown.is_empty() {
            return Ok(());
        }
        Err(PyTypeError::new_err(format!(
            "{}: unknown option{} {} (known: {})",
            self.what,
            if unknown.len() == 1 { "" } else { "s" },
            unknown
                .iter()
                .map(|u| format!("`{u}`"))
                .collect::<Vec<_>>()
                .join(", "),
            self.read.iter().cloned().collect::<Vec<_>>().join(", ")
        )))
    }
}
