//! `NativeSession`: one runner session, with a blocking and an awaitable form of every
//! call that waits.
//!
//! Every method that runs a command, opens a session or waits for a process exists twice:
//! `exec` blocks its Python thread with the GIL released (so other threads run), and
//! `exec_async` returns an asyncio awaitable (so the event loop runs). Both drive the same
//! future on the shared runtime. Opening options come from the caller, who is the operator
//! here; commands are what the policies judge.

use crate::convert::{from_py, to_py};
use crate::errors::{exec_error, start_error, CheckpointError, SessionClosed};
use crate::options::Options;
use crate::process::Process;
use crate::result::{Decision, ExecResult};
use crate::runtime::{awaitable, block_on, runtime};
use execkit_runner::audit::{ApprovalEvent, AuditLog, AuditOptions};
use execkit_runner::docker::{DockerSettings, DockerTarget};
use execkit_runner::protect::{Budget, KnownSecrets};
use execkit_runner::sandbox::Profile;
use execkit_runner::ssh::{SshSettings, SshTarget, UnknownHosts};
use execkit_runner::{
    Approval, ExecOptions, Identity, Limits, Session, SessionBuilder, SessionConfig, SpawnOptions,
    Verdict,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Where a session runs, read from the opening options.
enum Where {
    Local,
    Ssh(Box<(SshTarget, SshSettings)>),
    Docker(Box<(DockerTarget, DockerSettings)>),
}

/// A policy-checked shell session (use `execkit.Session` or `execkit.AsyncSession`).
#[pyclass(frozen, weakref, module = "execkit._execkit")]
pub struct NativeSession {
    session: Mutex<Option<Arc<Session>>>,
    transport: &'static str,
}

impl NativeSession {
    fn wrap(session: Session, transport: &'static str) -> NativeSession {
        NativeSession {
            session: Mutex::new(Some(Arc::new(session))),
            transport,
        }
    }

    /// The session, or `SessionClosed`.
    fn get(&self) -> PyResult<Arc<Session>> {
        self.session
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| SessionClosed::new_err("the session is closed"))
    }

    fn take(&self) -> Option<Arc<Session>> {
        self.session
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }
}

/// Reads the opening options into a configuration and a place to run.
fn opening(kind: &str, opts: Option<&Bound<'_, PyDict>>) -> PyResult<(SessionConfig, Where)> {
    let mut o = Options::new("open", opts);
    let mut b = SessionBuilder::new();
    let workspace = o.path("workspace")?;
    if let Some(ws) = &workspace {
        b = b.workspace(ws);
    }
    if let Some(p) = o.path("policies")? {
        b = b.policies(p);
    }
    if let Some(p) = o.value::<String>("profile")? {
        let profile: Profile = p
            .parse()
            .map_err(|e| PyValueError::new_err(format!("{e}")))?;
        b = b.profile(profile);
    }
    if let Some(w) = o.value::<Vec<PathBuf>>("writable")? {
        let mut sandbox = execkit_runner::sandbox::SandboxConfig {
            writable: w,
            ..Default::default()
        };
        if let Some(p) = b_profile(&mut o)? {
            sandbox.profile = p;
        }
        b = b.sandbox(sandbox);
    }
    let mut limits = Limits::default();
    if let Some(t) = o.seconds("timeout")? {
        limits.default_timeout = t;
        limits.max_timeout = limits.max_timeout.max(t);
    }
    if let Some(t) = o.seconds("max_timeout")? {
        limits.max_timeout = t;
        limits.default_timeout = limits.default_timeout.min(t);
    }
    b = b.limits(limits);
    if let Some(env) = o.value::<BTreeMap<String, String>>("env")? {
        for (k, v) in env {
            b = b.env(k, v);
        }
    }
    if let Some(values) = o.value::<Vec<String>>("secrets")? {
        let mut known = KnownSecrets::new();
        for v in &values {
            known.add(v);
        }
        b = b.secrets(known);
    }
    if let Some(path) = o.path("audit")? {
        let log = AuditLog::open(&path, AuditOptions::default()).map_err(|e| {
            crate::errors::StartError::new_err(format!("audit log {}: {e}", path.display()))
        })?;
        b = b.audit(Arc::new(Mutex::new(log)));
    }
    if let Some(home) = o.path("home")? {
        b = b.home(home);
    }
    let agent = o.value::<String>("identity")?;
    let groups = o.value::<Vec<String>>("groups")?;
    if agent.is_some() || groups.is_some() {
        let mut id = Identity::default();
        if let Some(a) = agent {
            id.agent = a;
        }
        if let Some(g) = groups {
            id.groups = g;
        }
        b = b.identity(id);
    }
    if let Some(false) = o.value::<bool>("checkpoints")? {
        let mut c = execkit_runner::checkpoint::CheckpointConfig::default();
        c.enabled = false;
        b = b.checkpoints(c);
    }
    let place = match kind {
        "ssh" => Where::Ssh(Box::new(ssh_target(&mut o)?)),
        "docker" => Where::Docker(Box::new(docker_target(&mut o, workspace)?)),
        _ => Where::Local,
    };
    o.finish()?;
    let config = b.build().map_err(start_error)?;
    Ok((config, place))
}

/// `profile` again, for the sandbox built with `writable` (the builder's `sandbox` replaces
/// the whole configuration).
fn b_profile(o: &mut Options<'_>) -> PyResult<Option<Profile>> {
    match o.value::<String>("profile")? {
        None => Ok(None),
        Some(p) => p
            .parse()
            .map(Some)
            .map_err(|e| PyValueError::new_err(format!("{e}"))),
    }
}

fn ssh_target(o: &mut Options<'_>) -> PyResult<(SshTarget, SshSettings)> {
    let host = o
        .value::<String>("host")?
        .ok_or_else(|| PyTypeError::new_err("ssh: `host` is required"))?;
    let user = o
        .value::<String>("user")?
        .ok_or_else(|| PyTypeError::new_err("ssh: `user` is required"))?;
    let port = o.value::<u16>("port")?.unwrap_or(22);
    let known_hosts = o.path("known_hosts")?.ok_or_else(|| {
        PyTypeError::new_err("ssh: `known_hosts` is required (the operator's known_hosts file)")
    })?;
    let mut s = SshSettings::new(known_hosts);
    if let Some(keys) = o.get("key")? {
        s.identity_files = match keys.extract::<PathBuf>() {
            Ok(one) => vec![one],
            Err(_) => keys
                .extract::<Vec<PathBuf>>()
                .map_err(|_| PyTypeError::new_err("ssh: `key` is a path or a list of paths"))?,
        };
    }
    s.passphrase = o.value::<String>("passphrase")?;
    s.password = o.value::<String>("password")?;
    s.agent_socket = o.path("agent_socket")?;
    if o.value::<bool>("trust_on_first_use")?.unwrap_or(false) {
        s.unknown_hosts = UnknownHosts::TrustOnFirstUse;
    }
    if let Some(t) = o.seconds("connect_timeout")? {
        s.connect_timeout = t;
    }
    s.sandbox = remote_sandbox(o)?;
    Ok((SshTarget { host, port, user }, s))
}

/// The sandbox on an SSH host or in a container: `helper` (`"bundled"`, `"off"` or an
/// installed path), `require_sandbox`, `remote_workspace`.
fn remote_sandbox(o: &mut Options<'_>) -> PyResult<execkit_runner::remote_sandbox::RemoteSandbox> {
    use execkit_runner::remote_sandbox::{HelperSource, RemoteSandbox};
    let mut s = RemoteSandbox::default();
    if let Some(h) = o.value::<String>("helper")? {
        s.helper = HelperSource::from(h);
    }
    s.require = o.value::<bool>("require_sandbox")?.unwrap_or(false);
    s.workspace = o.value::<String>("remote_workspace")?;
    Ok(s)
}

fn docker_target(
    o: &mut Options<'_>,
    workspace: Option<PathBuf>,
) -> PyResult<(DockerTarget, DockerSettings)> {
    let container = o.value::<String>("container")?;
    let image = o.value::<String>("image")?;
    let target = match (container, image) {
        (Some(c), None) => DockerTarget::Container(c),
        (None, Some(i)) => DockerTarget::Image(i),
        _ => {
            return Err(PyTypeError::new_err(
                "docker: give exactly one of `container` (attach to a running one) or `image` (a fresh, hardened container)",
            ))
        }
    };
    let endpoint = o
        .value::<String>("endpoint")?
        .unwrap_or_else(|| "unix:///var/run/docker.sock".into());
    let mut s = DockerSettings::new(endpoint);
    if let Some(n) = o.value::<bool>("network")? {
        s.network = n;
    }
    s.user = o.value::<String>("user")?;
    // The directory bound at /work in an ephemeral container: `mount`, else the session's
    // workspace (as for a local session: `workspace`, else the current directory).
    let workspace = match workspace {
        Some(w) => Some(w),
        None => std::env::current_dir().ok(),
    };
    s.workspace = o.path("mount")?.or(workspace);
    s.sandbox = remote_sandbox(o)?;
    Ok((target, s))
}

async fn open(config: SessionConfig, place: Where) -> PyResult<NativeSession> {
    let (session, transport) = match place {
        Where::Local => (Session::local(config).await, "local"),
        Where::Ssh(t) => (Session::ssh(&t.0, &t.1, config).await, "ssh"),
        Where::Docker(t) => (Session::docker(&t.0, &t.1, config).await, "docker"),
    };
    session
        .map(|s| NativeSession::wrap(s, transport))
        .map_err(start_error)
}

/// A per-call budget from its dict (`{"mode": "tail", "lines": 20, "max_chars": 4000}`).
fn budget(value: Option<Bound<'_, PyAny>>, what: &str) -> PyResult<Budget> {
    let Some(v) = value else {
        return Ok(Budget::default());
    };
    let d = v.cast::<PyDict>().map_err(|_| {
        PyTypeError::new_err(format!("{what}: a dict such as execkit.Budget.tail(20)"))
    })?;
    const KEYS: [&str; 7] = [
        "mode",
        "lines",
        "head",
        "tail",
        "pattern",
        "context",
        "max_chars",
    ];
    for k in d.keys() {
        let k: String = k.extract()?;
        if !KEYS.contains(&k.as_str()) {
            return Err(PyValueError::new_err(format!(
                "{what}: unknown key `{k}` (known: {})",
                KEYS.join(", ")
            )));
        }
    }
    from_py(d.as_any(), what)
}

/// Per-call options of `exec`.
struct CallOptions {
    exec: ExecOptions,
    approved_by: Option<String>,
}

fn call_options(opts: Option<&Bound<'_, PyDict>>) -> PyResult<CallOptions> {
    let mut o = Options::new("exec", opts);
    let mut exec = ExecOptions::default()
        .with_stdout(budget(o.get("budget")?, "budget")?)
        .with_stderr(budget(o.get("stderr_budget")?, "stderr_budget")?);
    if let Some(t) = o.seconds("timeout")? {
        exec = exec.with_timeout(t);
    }
    let approved_by = o.value::<String>("approved_by")?;
    o.finish()?;
    Ok(CallOptions { exec, approved_by })
}

async fn exec(s: Arc<Session>, command: String, o: CallOptions) -> PyResult<ExecResult> {
    let mut opts = o.exec;
    if let Some(approver) = &o.approved_by {
        opts.approval = Some(approve(&s, approver, &command).await);
    }
    let r = s.exec(&command, &opts).await;
    r.map(ExecResult).map_err(|e| exec_error(e, &command))
}

/// The caller's approval of `command` as it is decided now; recorded in the audit log and
/// event stream when the decision asks for one (an approval never turns a deny into an
/// allow, and an allowed command needs none).
async fn approve(s: &Session, approver: &str, command: &str) -> Approval {
    let decision = s.decide(command).await;
    let approval = Approval::of(approver, command, &decision);
    if decision.verdict == Verdict::Ask {
        s.record_approval(ApprovalEvent::Approved, &approval, &s.cwd().await, None);
    }
    approval
}

fn spawn_options(opts: Option<&Bound<'_, PyDict>>) -> PyResult<(SpawnOptions, Option<String>)> {
    let mut o = Options::new("spawn", opts);
    let mut so = match o.value::<String>("name")? {
        Some(n) => SpawnOptions::named(&n),
        None => SpawnOptions::default(),
    };
    so.pty = o.value::<bool>("pty")?.unwrap_or(false);
    so.rows = o.value::<u16>("rows")?;
    so.cols = o.value::<u16>("cols")?;
    let approved_by = o.value::<String>("approved_by")?;
    o.finish()?;
    Ok((so, approved_by))
}

async fn spawn(
    s: Arc<Session>,
    command: String,
    mut so: SpawnOptions,
    approved_by: Option<String>,
) -> PyResult<Process> {
    if let Some(a) = &approved_by {
        so.approval = Some(approve(&s, a, &command).await);
    }
    s.spawn(&command, &so)
        .await
        .map(Process::new)
        .map_err(|e| exec_error(e, &command))
}

/// `value` as plain Python data, owned (for futures).
fn plain<T: serde::Serialize>(value: &T) -> PyResult<Py<PyAny>> {
    crate::runtime::attach_py(|py| to_py(py, value).map(Bound::unbind))
}

fn checkpoint_error(e: execkit_runner::checkpoint::CheckpointError) -> PyErr {
    CheckpointError::new_err(e.to_string())
}

async fn checkpoint(s: Arc<Session>, label: Option<String>) -> PyResult<Py<PyAny>> {
    let info = s
        .checkpoint(label.as_deref())
        .await
        .map_err(checkpoint_error)?;
    plain(&info)
}

async fn checkpoints(s: Arc<Session>) -> PyResult<Py<PyAny>> {
    let list = s.checkpoints().await.map_err(checkpoint_error)?;
    plain(&list)
}

async fn restore(s: Arc<Session>, id: String) -> PyResult<Py<PyAny>> {
    let report = s
        .restore(&id)
        .await
        .map_err(|e| exec_error(e, &format!("restore {id}")))?;
    plain(&report)
}

async fn diff(s: Arc<Session>, id: String) -> PyResult<Py<PyAny>> {
    let d = s.checkpoint_diff(&id).await.map_err(checkpoint_error)?;
    plain(&d)
}

#[pymethods]
impl NativeSession {
    /// Opens a session (`kind`: `local`, `ssh` or `docker`) with the GIL released.
    #[staticmethod]
    #[pyo3(signature = (kind, options=None))]
    fn open(
        py: Python<'_>,
        kind: &str,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<NativeSession> {
        let (config, place) = opening(kind, options)?;
        block_on(py, open(config, place), || {})
    }

    /// `open` as an awaitable.
    #[staticmethod]
    #[pyo3(signature = (kind, options=None))]
    fn open_async<'py>(
        py: Python<'py>,
        kind: &str,
        options: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (config, place) = opening(kind, options)?;
        awaitable(py, open(config, place), None)
    }

    /// The session id.
    #[getter]
    fn id(&self) -> PyResult<String> {
        Ok(self.get()?.id().to_string())
    }

    /// `local`, `ssh` or `docker`.
    #[getter]
    fn transport(&self) -> &'static str {
        self.transport
    }

    /// False once closed.
    #[getter]
    fn open_now(&self) -> bool {
        self.session
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// Runs a command (policy check, shell, output protection), blocking this thread only.
    #[pyo3(signature = (command, options=None))]
    fn exec(
        &self,
        py: Python<'_>,
        command: String,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<ExecResult> {
        let s = self.get()?;
        let o = call_options(options)?;
        let c = s.clone();
        block_on(py, exec(s, command, o), move || c.cancel())
    }

    /// `exec` as an awaitable.
    #[pyo3(signature = (command, options=None))]
    fn exec_async<'py>(
        &self,
        py: Python<'py>,
        command: String,
        options: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let s = self.get()?;
        let o = call_options(options)?;
        let c = s.clone();
        awaitable(py, exec(s, command, o), Some(Box::new(move || c.cancel())))
    }

    /// Cancels the running command, if any (it comes back with `cancelled` set).
    fn cancel(&self) -> PyResult<()> {
        self.get()?.cancel();
        Ok(())
    }

    /// The policy decision for a command in the session's current state, without running it.
    fn decide(&self, py: Python<'_>, command: String) -> PyResult<Decision> {
        let s = self.get()?;
        block_on(
            py,
            async move { Ok(Decision(s.decide(&command).await)) },
            || {},
        )
    }

    /// `decide` as an awaitable.
    fn decide_async<'py>(&self, py: Python<'py>, command: String) -> PyResult<Bound<'py, PyAny>> {
        let s = self.get()?;
        awaitable(
            py,
            async move { Ok(Decision(s.decide(&command).await)) },
            None,
        )
    }

    /// The shell's working directory.
    fn cwd(&self, py: Python<'_>) -> PyResult<String> {
        let s = self.get()?;
        block_on(py, async move { Ok(s.cwd().await) }, || {})
    }

    /// What the session is: id, workspace, private tmp, shell pid, enforcement, user.
    fn info(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let s = self.get()?;
        let info = block_on(py, async move { Ok(s.info().await) }, || {})?;
        Ok(to_py(py, &info)?.unbind())
    }

    /// Where the running command has got (None when none runs): byte counts and the end
    /// of its protected output so far (complete lines). Each call asks for a fresh
    /// preview and returns the latest one.
    fn progress(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        match self.get()?.progress() {
            Some(p) => Ok(to_py(py, &p)?.unbind()),
            None => Ok(py.None()),
        }
    }

    /// `text` redacted as this session redacts output.
    fn redact(&self, text: &str) -> PyResult<String> {
        Ok(self.get()?.redact(text))
    }

    /// Starts a background process.
    #[pyo3(signature = (command, options=None))]
    fn spawn(
        &self,
        py: Python<'_>,
        command: String,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Process> {
        let s = self.get()?;
        let (so, approved_by) = spawn_options(options)?;
        block_on(py, spawn(s, command, so, approved_by), || {})
    }

    /// `spawn` as an awaitable.
    #[pyo3(signature = (command, options=None))]
    fn spawn_async<'py>(
        &self,
        py: Python<'py>,
        command: String,
        options: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let s = self.get()?;
        let (so, approved_by) = spawn_options(options)?;
        awaitable(py, spawn(s, command, so, approved_by), None)
    }

    /// The background process with this id.
    fn process(&self, id: &str) -> PyResult<Process> {
        self.get()?
            .process(id)
            .map(Process::new)
            .map_err(|e| crate::errors::ProcessError::new_err(e.to_string()))
    }

    /// Every background process still known, as dicts.
    fn processes(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(to_py(py, &self.get()?.processes())?.unbind())
    }

    /// Takes a checkpoint of the workspace files.
    #[pyo3(signature = (label=None))]
    fn checkpoint(&self, py: Python<'_>, label: Option<String>) -> PyResult<Py<PyAny>> {
        let s = self.get()?;
        block_on(py, checkpoint(s, label), || {})
    }

    /// `checkpoint` as an awaitable.
    #[pyo3(signature = (label=None))]
    fn checkpoint_async<'py>(
        &self,
        py: Python<'py>,
        label: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let s = self.get()?;
        awaitable(py, checkpoint(s, label), None)
    }

    /// The checkpoints kept, oldest first.
    fn checkpoints(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let s = self.get()?;
        block_on(py, checkpoints(s), || {})
    }

    /// `checkpoints` as an awaitable.
    fn checkpoints_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let s = self.get()?;
        awaitable(py, checkpoints(s), None)
    }

    /// Puts the workspace files back as they were at a checkpoint (authorized as a write).
    fn restore(&self, py: Python<'_>, id: String) -> PyResult<Py<PyAny>> {
        let s = self.get()?;
        block_on(py, restore(s, id), || {})
    }

    /// `restore` as an awaitable.
    fn restore_async<'py>(&self, py: Python<'py>, id: String) -> PyResult<Bound<'py, PyAny>> {
        let s = self.get()?;
        awaitable(py, restore(s, id), None)
    }

    /// What changed since a checkpoint (paths, counts, a redacted unified diff).
    fn diff(&self, py: Python<'_>, id: String) -> PyResult<Py<PyAny>> {
        let s = self.get()?;
        block_on(py, diff(s, id), || {})
    }

    /// `diff` as an awaitable.
    fn diff_async<'py>(&self, py: Python<'py>, id: String) -> PyResult<Bound<'py, PyAny>> {
        let s = self.get()?;
        awaitable(py, diff(s, id), None)
    }

    /// Starts a new shell in place of the old one (after it ended, or to start over):
    /// its cwd and exported variables are restored by a command the policies decide.
    /// Returns what was restored (`cwd`, `restored`, `refused`).
    fn restart(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let s = self.get()?;
        let report = block_on(
            py,
            async move { s.restart().await.map_err(start_error) },
            || {},
        )?;
        Ok(to_py(py, &report)?.unbind())
    }

    /// `restart` as an awaitable.
    fn restart_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let s = self.get()?;
        awaitable(
            py,
            async move {
                let report = s.restart().await.map_err(start_error)?;
                plain(&report)
            },
            None,
        )
    }

    /// Ends the session: kills the shell and everything it started. Closing twice is fine.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        match self.take() {
            Some(s) => block_on(
                py,
                async move {
                    s.close().await;
                    Ok(())
                },
                || {},
            ),
            None => Ok(()),
        }
    }

    /// `close` as an awaitable.
    fn close_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let s = self.take();
        awaitable(
            py,
            async move {
                if let Some(s) = s {
                    s.close().await;
                }
                Ok(())
            },
            None,
        )
    }

    fn __repr__(&self) -> String {
        match self.get() {
            Ok(s) => format!("<execkit session {} ({})>", s.id(), self.transport),
            Err(_) => format!("<execkit session (closed, {})>", self.transport),
        }
    }
}

impl Drop for NativeSession {
    /// A session dropped without `close()` is closed here, so its shell and processes do
    /// not outlive it.
    fn drop(&mut self) {
        let Some(s) = self.take() else { return };
        if tokio::runtime::Handle::try_current().is_ok() {
            // Dropped on a runtime thread (an awaitable's last reference): close there.
            tokio::spawn(async move { s.close().await });
            return;
        }
        if let Ok(rt) = runtime() {
            rt.block_on(s.close());
        }
    }
}
