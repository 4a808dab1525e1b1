//! The exceptions, and how runner errors become them.
//!
//! ```text
//! ExecKitError
//! ├── Denied            the policies refused the command; it never ran
//! │   └── NeedsApproval a policy asks a human first (retry with approved_by=...)
//! ├── Rejected          refused before the policies (NUL bytes, oversize, workspace full)
//! ├── Timeout           raised by the Python layer; carries the partial result
//! ├── ShellGone         the shell ended (exit, killed): restart() the session
//! ├── SessionClosed     the session was closed
//! ├── StartError        a session could not start (policies, sandbox, SSH, Docker)
//! ├── ProcessError      a background process could not be started or used
//! └── CheckpointError   a checkpoint could not be taken, listed, restored or diffed
//! ```
//!
//! A denial carries what a caller needs to explain or retry it: `verdict`, `reason`,
//! `command`, `facts` (the blocking facts, each with its policies and advice), `advice`,
//! `policies` (the determining policy ids) and the whole `decision`.

use crate::convert::to_py;
use crate::result::Decision;
use execkit_runner::{Denial, ExecError, SessionError, Verdict};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;

create_exception!(
    execkit,
    ExecKitError,
    PyException,
    "Base of every execkit error."
);
create_exception!(
    execkit,
    Denied,
    ExecKitError,
    "The policies refused the command; it never reached the shell. Attributes: verdict, reason, command, facts, advice, policies, decision."
);
create_exception!(
    execkit,
    NeedsApproval,
    Denied,
    "A policy asks a human to approve the command first. Run it again with approved_by=OPERATOR once a human agreed."
);
create_exception!(
    execkit,
    Rejected,
    ExecKitError,
    "Refused before the policies were asked (NUL bytes, oversize command, workspace over its disk cap)."
);
create_exception!(
    execkit,
    Timeout,
    ExecKitError,
    "The command ran out of time and was interrupted; the session is still usable. Attribute: result (the partial ExecResult)."
);
create_exception!(
    execkit,
    ShellGone,
    ExecKitError,
    "The session's shell ended (exit, killed); call restart() for a new one."
);
create_exception!(
    execkit,
    SessionClosed,
    ExecKitError,
    "The session was closed."
);
create_exception!(
    execkit,
    StartError,
    ExecKitError,
    "A session could not start: policies, sandbox, workspace, SSH or Docker."
);
create_exception!(
    execkit,
    ProcessError,
    ExecKitError,
    "A background process could not be started or used."
);
create_exception!(
    execkit,
    CheckpointError,
    ExecKitError,
    "A checkpoint could not be taken, listed, restored or diffed."
);

/// Adds the exception classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("ExecKitError", py.get_type::<ExecKitError>())?;
    m.add("Denied", py.get_type::<Denied>())?;
    m.add("NeedsApproval", py.get_type::<NeedsApproval>())?;
    m.add("Rejected", py.get_type::<Rejected>())?;
    m.add("Timeout", py.get_type::<Timeout>())?;
    m.add("ShellGone", py.get_type::<ShellGone>())?;
    m.add("SessionClosed", py.get_type::<SessionClosed>())?;
    m.add("StartError", py.get_type::<StartError>())?;
    m.add("ProcessError", py.get_type::<ProcessError>())?;
    m.add("CheckpointError", py.get_type::<CheckpointError>())?;
    Ok(())
}

/// The exception for a failed command (`command` is the command line, for denials).
pub fn exec_error(e: ExecError, command: &str) -> PyErr {
    match e {
        ExecError::Denied(d) => denied(*d, command),
        ExecError::Rejected(_) | ExecError::WorkspaceFull { .. } => {
            Rejected::new_err(e.to_string())
        }
        ExecError::Budget(_) => PyValueError::new_err(e.to_string()),
        ExecError::ShellGone(_) => ShellGone::new_err(e.to_string()),
        ExecError::Closed => SessionClosed::new_err(e.to_string()),
        ExecError::Process(_) => ProcessError::new_err(e.to_string()),
        ExecError::Checkpoint(_) => CheckpointError::new_err(e.to_string()),
        _ => ExecKitError::new_err(e.to_string()),
    }
}

/// The exception for a session that could not start.
pub fn start_error(e: SessionError) -> PyErr {
    StartError::new_err(e.to_string())
}

/// `Denied` (or `NeedsApproval`) with the denial's parts as attributes.
pub fn denied(d: Denial, command: &str) -> PyErr {
    let plain = Denied::new_err(format!("denied by policy: {}", d.reason));
    crate::runtime::attach(|py| match denied_in(py, d, command) {
        Ok(e) => e,
        Err(e) => e,
    })
    .unwrap_or(plain)
}

fn denied_in(py: Python<'_>, d: Denial, command: &str) -> PyResult<PyErr> {
    let ask = d.verdict == Verdict::Ask;
    let message = format!(
        "{}: {}",
        if ask {
            "needs approval"
        } else {
            "denied by policy"
        },
        d.reason
    );
    let err = if ask {
        NeedsApproval::new_err(message)
    } else {
        Denied::new_err(message)
    };
    let value = err.value(py);
    let blocking: Vec<_> = d.decision.blocking().collect();
    let advice: Vec<&str> = blocking
        .iter()
        .flat_map(|f| f.policies.iter())
        .filter_map(|p| p.advice.as_deref())
        .collect();
    value.setattr("verdict", d.verdict.as_str())?;
    value.setattr("reason", &d.reason)?;
    value.setattr("command", command)?;
    value.setattr("facts", to_py(py, &blocking)?)?;
    value.setattr("advice", dedup(advice))?;
    value.setattr("policies", d.decision.blocking_policy_ids())?;
    value.setattr("decision", Py::new(py, Decision::from(d.decision))?)?;
    Ok(err)
}

fn dedup(mut v: Vec<&str>) -> Vec<&str> {
    let mut seen = std::collections::HashSet::new();
    v.retain(|s| seen.insert(*s));
    v
}
