//! What a command gives back: [`ExecResult`] for one that ran, [`Decision`] for a policy
//! verdict (a dry run, or the decision that let a command run).
//!
//! Both are frozen: a result is a record of what happened, not something to edit. The
//! nested parts (facts, stream reports, redaction counts) are plain dicts with the same
//! keys as the MCP server's structured results.

use crate::convert::to_py;
use execkit_runner::{Denial, Verdict};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// The result of a command that ran: protected output, exit status, where the shell is
/// now, and how the output was shaped.
#[pyclass(frozen, module = "execkit")]
pub struct ExecResult(pub execkit_runner::ExecResult);

#[pymethods]
impl ExecResult {
    /// Stdout after protection (escapes stripped, secrets redacted, bounded, budgeted).
    #[getter]
    fn stdout(&self) -> &str {
        &self.0.stdout
    }

    /// Stderr after protection.
    #[getter]
    fn stderr(&self) -> &str {
        &self.0.stderr
    }

    /// Exit status (None when the shell died before reporting one).
    #[getter]
    fn exit_code(&self) -> Option<i32> {
        self.0.exit_code
    }

    /// Wall time from sending the command to its end, in milliseconds.
    #[getter]
    fn duration_ms(&self) -> u64 {
        self.0.duration_ms
    }

    /// The shell's working directory after the command.
    #[getter]
    fn cwd(&self) -> &str {
        &self.0.cwd
    }

    /// The timeout fired and the command was interrupted.
    #[getter]
    fn timed_out(&self) -> bool {
        self.0.timed_out
    }

    /// The command was cancelled (Ctrl-C in Python, or `cancel()`).
    #[getter]
    fn cancelled(&self) -> bool {
        self.0.cancelled
    }

    /// The shell itself ended (`exit`, killed): call `restart()`.
    #[getter]
    fn shell_exited(&self) -> bool {
        self.0.shell_exited
    }

    /// True when the command exited 0 and was neither interrupted nor cancelled.
    #[getter]
    fn ok(&self) -> bool {
        self.0.exit_code == Some(0) && !self.0.timed_out && !self.0.cancelled
    }

    /// Per stream (`stdout`, `stderr`): exact byte and line totals, what was kept, the
    /// budget applied and whether anything was cut.
    #[getter]
    fn reports<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("stdout", to_py(py, &self.0.stdout_report)?)?;
        d.set_item("stderr", to_py(py, &self.0.stderr_report)?)?;
        Ok(d)
    }

    /// Redactions per rule id, both streams together (empty when nothing was redacted).
    #[getter]
    fn redactions<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.0.redactions)
    }

    /// The policy decision that let the command run.
    #[getter]
    fn decision(&self) -> Decision {
        Decision(self.0.decision.clone())
    }

    /// Session limits the command ran into, as sentences (empty when none).
    #[getter]
    fn limits_hit(&self) -> Vec<String> {
        self.0.limits_hit.iter().map(|l| l.to_string()).collect()
    }

    /// Background jobs (`cmd &`) the command left running.
    #[getter]
    fn background_jobs(&self) -> usize {
        self.0.background_jobs
    }

    /// The checkpoint a policy had taken before the command ran (`@checkpoint`), if any.
    #[getter]
    fn checkpoint(&self) -> Option<&str> {
        self.0.checkpoint.as_deref()
    }

    /// Everything as plain data (the MCP server's structured result).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.0)
    }

    fn __repr__(&self) -> String {
        let flags = [
            (self.0.timed_out, " timed_out"),
            (self.0.cancelled, " cancelled"),
            (self.0.shell_exited, " shell_exited"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, s)| *s)
        .collect::<String>();
        format!(
            "ExecResult(exit_code={}, stdout={} bytes, stderr={} bytes, cwd={:?}, {} ms{flags})",
            self.0
                .exit_code
                .map(|c| c.to_string())
                .unwrap_or_else(|| "None".into()),
            self.0.stdout.len(),
            self.0.stderr.len(),
            self.0.cwd,
            self.0.duration_ms,
        )
    }
}

/// A policy decision: the verdict, and every fact of the command with the policies that
/// determined it.
#[pyclass(frozen, module = "execkit")]
pub struct Decision(pub execkit_runner::Decision);

impl From<execkit_runner::Decision> for Decision {
    fn from(d: execkit_runner::Decision) -> Decision {
        Decision(d)
    }
}

#[pymethods]
impl Decision {
    /// `"allow"`, `"ask"` (a human must approve) or `"deny"`.
    #[getter]
    fn verdict(&self) -> &'static str {
        self.0.verdict.as_str()
    }

    /// True only for `"allow"`.
    #[getter]
    fn allowed(&self) -> bool {
        self.0.verdict == Verdict::Allow
    }

    /// One line for humans when not allowed: the first blocking fact, its reason and the
    /// blocking policy's advice. None when allowed.
    #[getter]
    fn reason(&self) -> Option<String> {
        (self.0.verdict != Verdict::Allow).then(|| Denial::reason_for(&self.0))
    }

    /// Every fact (action, resource, verdict, reason, policies with their advice), in
    /// source order.
    #[getter]
    fn facts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.0.facts)
    }

    /// The facts that were not allowed.
    #[getter]
    fn blocking<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.0.blocking().collect::<Vec<_>>())
    }

    /// Ids of the policies that determined the facts that were not allowed.
    #[getter]
    fn policies(&self) -> Vec<String> {
        self.0
            .blocking_policy_ids()
            .into_iter()
            .map(String::from)
            .collect()
    }

    /// Why the command could not be parsed (the verdict is then deny), if it could not.
    #[getter]
    fn parse_error(&self) -> Option<&str> {
        self.0.parse_error.as_deref()
    }

    /// Why the command's entities could not be built (the verdict is then deny).
    #[getter]
    fn entity_error(&self) -> Option<&str> {
        self.0.entity_error.as_deref()
    }

    /// How many simple commands the script holds.
    #[getter]
    fn commands(&self) -> usize {
        self.0.commands
    }

    /// Everything as plain data (the CLI's `policy check --json`).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.0)
    }

    fn __repr__(&self) -> String {
        match self.reason() {
            None => format!("Decision(allow, {} facts)", self.0.facts.len()),
            Some(r) => format!("Decision({}, {r:?})", self.0.verdict.as_str()),
        }
    }
}
