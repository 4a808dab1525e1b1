//! `execkit.policy.check`: a policy author's dry run, the same decision the CLI's
//! `execkit policy check` prints, without a session or a shell.
//!
//! Policies are read from disk on every call (an author edits them between calls); the
//! embedded `default` set is loaded once.

use crate::errors::StartError;
use crate::options::Options;
use crate::result::Decision;
use execkit_engine::{DecisionEnv, Engine, Transport};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::sync::{Arc, OnceLock};

fn default_engine() -> PyResult<Arc<Engine>> {
    static DEFAULT: OnceLock<Arc<Engine>> = OnceLock::new();
    if let Some(e) = DEFAULT.get() {
        return Ok(e.clone());
    }
    let e = Engine::default_set().map_err(|e| StartError::new_err(format!("policies: {e}")))?;
    Ok(DEFAULT.get_or_init(|| Arc::new(e)).clone())
}

/// The decision for `command` (options: cwd, workspace, home, policies, transport, host,
/// identity, groups).
#[pyfunction]
#[pyo3(signature = (command, options=None))]
pub fn policy_check(
    py: Python<'_>,
    command: String,
    options: Option<&Bound<'_, PyDict>>,
) -> PyResult<Decision> {
    let mut o = Options::new("policy.check", options);
    let engine = match o.path("policies")? {
        None => default_engine()?,
        Some(dir) => Arc::new(
            Engine::from_dir(&dir)
                .map_err(|e| StartError::new_err(format!("policies {}: {e}", dir.display())))?,
        ),
    };
    let here = std::env::current_dir()
        .map(|p| p.display().to_string())
        .map_err(|e| PyValueError::new_err(format!("the current directory: {e}")))?;
    // Paths as a shell takes them: relative to the current directory. Empty is an error,
    // never `/`; `cwd` never becomes the workspace.
    let absolute = |key: &str, v: Option<String>| -> PyResult<Option<String>> {
        match v {
            Some(v) if v.trim().is_empty() => Err(PyValueError::new_err(format!(
                "{key} is empty: give a directory"
            ))),
            Some(v) => Ok(Some(execkit_grammar::resolve_path(&here, &v))),
            None => Ok(None),
        }
    };
    let cwd = absolute("cwd", o.value::<String>("cwd")?)?;
    let workspace = absolute("workspace", o.value::<String>("workspace")?)?.unwrap_or(here.clone());
    let home = absolute("home", o.value::<String>("home")?)?
        .or_else(|| std::env::var("HOME").ok())
        .unwrap_or_else(|| "/root".into());
    let mut env = DecisionEnv::local(&workspace, &home);
    if cwd.is_some() {
        env.cwd = cwd;
    }
    if let Some(t) = o.value::<String>("transport")? {
        env.target.transport = t
            .parse::<Transport>()
            .map_err(|e| PyValueError::new_err(format!("transport: {e}")))?;
    }
    env.target.host = o.value::<String>("host")?;
    if let Some(a) = o.value::<String>("identity")? {
        env.identity.agent = a;
    }
    if let Some(g) = o.value::<Vec<String>>("groups")? {
        env.identity.groups = g;
    }
    o.finish()?;
    Ok(Decision(py.detach(|| engine.decide(&command, &env))))
}
