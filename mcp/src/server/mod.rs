//! The MCP server: execkit sessions as tools, over rmcp.
//!
//! Every call goes the same way: arguments (which can only narrow operator settings) →
//! the session's policy decision → on Ask, a human approval through elicitation → the
//! runner (sandboxed shell, output protection) → a structured result plus a compact text
//! rendering. Denials and bad arguments are tool errors (`isError`) whose structured
//! content says why, so an agent can adapt instead of failing.
//!
//! Commands run in a task of their own: if the client goes away or cancels, the command is
//! interrupted through the runner (process groups, then the tree), never abandoned
//! mid-frame, so the session stays usable.

pub mod approval;
pub mod args;
pub mod caller;
pub mod checkpoints;
pub mod events;
pub mod output;
pub mod process_io;
mod processes;
pub mod runtime_asks;
pub mod table;
pub mod watch_socket;
mod watching;

use crate::operator::Operator;
use approval::Approvals;
use args::{CheckArgs, CreateArgs, DestroyArgs, ExecArgs, RestartArgs};
use caller::Caller;
use execkit_audit::ApprovalEvent;
use execkit_engine::{DecisionEnv, OpenTarget, Verdict};
use execkit_protect::Budget;
use execkit_runner::{Approval, ExecError, ExecOptions, Session, SessionError};
use output::{
    CreateOutput, DecisionOutput, DestroyOutput, ErrorKind, ErrorOutput, ExecOutput,
    IdentityOutput, ListOutput, RestartOutput, SandboxOutput, SessionRow,
};
use rmcp::handler::server::common::schema_for_output;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::{InputResponses, RequestState};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResponse, CallToolResult, ContentBlock, ElicitRequest, Implementation, InputRequest,
    InputRequests, InputRequiredResult, ProgressNotificationParam, ServerCapabilities,
    ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{tool, tool_handler, tool_router, ErrorData, RoleServer, ServerHandler};
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use table::{Entry, Table};

/// State shared by all calls.
pub struct Shared {
    /// The operator's settings and what was built from them.
    pub op: Operator,
    /// Open sessions.
    pub table: Table,
    /// Approvals waiting for a client retry (2026-07-28 form).
    pub approvals: Approvals,
    /// `session_exec` calls being answered.
    pub in_flight: InFlight,
    /// Held while a background process is counted against its identity's cap and started.
    pub process_starts: tokio::sync::Mutex<()>,
}

/// Counts calls being answered, so that shutdown can wait for their answers.
#[derive(Debug, Default)]
pub struct InFlight(std::sync::atomic::AtomicUsize);

/// One call being answered (counted until dropped).
pub struct InFlightCall<'a>(&'a InFlight);

impl InFlight {
    /// Counts a call until the returned guard is dropped.
    pub fn enter(&self) -> InFlightCall<'_> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        InFlightCall(self)
    }

    /// Calls being answered now.
    pub fn count(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for InFlightCall<'_> {
    fn drop(&mut self) {
        self.0 .0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The execkit MCP server.
#[derive(Clone)]
pub struct ExecKitServer {
    shared: Arc<Shared>,
    tool_router: ToolRouter<ExecKitServer>,
    /// The client's logging level and resource subscriptions (see `watching`).
    watch: Arc<watching::Watching>,
    /// Serving HTTP: every caller must carry a verified token (see [`caller`]).
    over_http: bool,
}

type ToolResult = Result<CallToolResponse, ErrorData>;

/// A tool result: compact text plus structured content.
fn ok<T: Serialize>(text: String, value: &T) -> ToolResult {
    let mut r = CallToolResult::success(vec![ContentBlock::text(text)]);
    r.structured_content = Some(serde_json::to_value(value).map_err(internal)?);
    Ok(r.into())
}

/// A tool error: compact text plus structured content.
fn tool_error<T: Serialize>(text: String, value: &T) -> ToolResult {
    let mut r = CallToolResult::error(vec![ContentBlock::text(text)]);
    r.structured_content = Some(serde_json::to_value(value).map_err(internal)?);
    Ok(r.into())
}

/// Rewrites every tool's input and output schema to standard JSON Schema: schemars marks
/// integers with `format: "uint64"`, `"uint"`, `"int32"` …, formats JSON Schema does not
/// define, which TypeScript clients' validators warn about on every `tools/list`. The
/// `minimum: 0` schemars writes alongside keeps the meaning.
fn standard_schemas(mut router: ToolRouter<ExecKitServer>) -> ToolRouter<ExecKitServer> {
    for route in router.map.values_mut() {
        let input = strip_formats(serde_json::Value::Object(
            (*route.attr.input_schema).clone(),
        ));
        if let serde_json::Value::Object(m) = input {
            route.attr.input_schema = Arc::new(m);
        }
        if let Some(out) = &route.attr.output_schema {
            if let serde_json::Value::Object(m) =
                strip_formats(serde_json::Value::Object((**out).clone()))
            {
                route.attr.output_schema = Some(Arc::new(m));
            }
        }
    }
    router
}

/// Formats JSON Schema 2020-12 defines; any other `format` is removed.
const STANDARD_FORMATS: &[&str] = &[
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uuid",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

fn strip_formats(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                // Only a string `format` is a format keyword (a property may be named so).
                .filter(|(k, v)| match (k.as_str(), v.as_str()) {
                    ("format", Some(f)) => STANDARD_FORMATS.contains(&f),
                    _ => true,
                })
                .map(|(k, v)| (k, strip_formats(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(strip_formats).collect()),
        other => other,
    }
}

/// The session budget a create call asks for.
fn budget_of(a: &CreateArgs) -> Result<Option<Budget>, String> {
    a.output_budget
        .as_ref()
        .map(|b| b.to_budget())
        .transpose()
        .map_err(|e| e.to_string())
}

/// Characters of an agent-supplied value quoted back in an error.
const ECHO_CHARS: usize = 64;

/// An agent-supplied value as errors quote it: at most [`ECHO_CHARS`] characters (a
/// megabyte id must not come back twice in the answer).
fn echo(value: &str) -> String {
    match value.char_indices().nth(ECHO_CHARS) {
        None => value.to_string(),
        Some((cut, _)) => format!("{}… ({} bytes)", &value[..cut], value.len()),
    }
}

/// A tool error of a kind other than a policy decision.
fn fail(kind: ErrorKind, message: impl Into<String>) -> ToolResult {
    let message = message.into();
    tool_error(
        format!("error: {message}"),
        &ErrorOutput {
            error: kind,
            message,
        },
    )
}

fn internal(e: impl std::fmt::Display) -> ErrorData {
    ErrorData::internal_error(e.to_string(), None)
}

/// A denial as a tool error: each fact's decision, the determining policies and advice.
fn denied(d: &execkit_runner::Denial, cwd: &str, extra: Option<&str>) -> ToolResult {
    let reason = match extra {
        Some(x) => format!("{x}; {}", d.reason),
        None => d.reason.clone(),
    };
    let mut out = DecisionOutput::from(&d.decision, cwd, reason, false);
    out.denied = Some(true);
    tool_error(out.render(), &out)
}

impl ExecKitServer {
    /// A server for this operator runtime.
    pub fn new(op: Operator) -> ExecKitServer {
        let l = &op.config.limits;
        let table = Table::new(l.max_sessions, Duration::from_secs(l.idle_ttl_secs));
        let approvals = Approvals::new(Duration::from_secs(l.approval_timeout_secs.max(1)));
        ExecKitServer {
            shared: Arc::new(Shared {
                op,
                table,
                approvals,
                in_flight: InFlight::default(),
                process_starts: tokio::sync::Mutex::new(()),
            }),
            tool_router: standard_schemas(
                Self::tool_router() + Self::process_router() + Self::checkpoint_router(),
            ),
            watch: Arc::default(),
            over_http: false,
        }
    }

    /// The shared state (for the idle reaper and shutdown).
    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// A handler for one more HTTP client connection: the same sessions and settings, its
    /// own watching state (log level, subscriptions); every request needs a token.
    pub fn for_connection(&self) -> ExecKitServer {
        ExecKitServer {
            shared: self.shared.clone(),
            tool_router: self.tool_router.clone(),
            watch: Arc::default(),
            over_http: true,
        }
    }

    /// The caller of a request to this handler.
    fn caller_of(&self, extensions: &rmcp::model::Extensions) -> Caller {
        Caller::of(extensions, self.over_http)
    }

    /// The session `id`, if the caller may use it (marked as used now). Another
    /// identity's session is as unknown as one that never existed.
    fn entry(&self, id: &str) -> Option<Arc<Entry>> {
        let caller = Caller::current();
        self.shared
            .table
            .get(id)
            .filter(|e| caller.owns(e.owner.as_deref()))
    }

    /// The caller's sessions, oldest first.
    fn entries(&self) -> Vec<Arc<Entry>> {
        let caller = Caller::current();
        self.shared
            .table
            .all()
            .into_iter()
            .filter(|e| caller.owns(e.owner.as_deref()))
            .collect()
    }

    /// The identity the caller's commands are decided with.
    fn identity(&self) -> execkit_engine::Identity {
        Caller::current().identity(self.shared.op.identity())
    }

    /// Who an approval given through this caller's client is recorded as: on stdio the
    /// operator's configured human; over HTTP the token's subject (the client answering is
    /// the token holder's, so an approval there is theirs, never the operator's).
    fn approver(&self) -> String {
        match Caller::current() {
            Caller::Token(t) => t.subject,
            Caller::Operator => self.shared.op.config.identity.operator.clone(),
            Caller::Nobody => String::new(),
        }
    }

    /// A slot for a session of the caller's, within the server's and the identity's caps.
    fn reserve(&self) -> Result<table::Reservation<'_>, table::Full> {
        let caller = Caller::current();
        let per_owner = match caller {
            Caller::Token(_) => self.shared.op.config.http.sessions_per_identity,
            Caller::Operator => usize::MAX,
            Caller::Nobody => 0,
        };
        self.shared.table.reserve(caller.owner(), per_owner)
    }

    fn unknown_session(&self, id: &str) -> ToolResult {
        let id = echo(id);
        fail(
            ErrorKind::UnknownSession,
            format!(
                "unknown session `{id}`: it was destroyed, reaped after {} s idle, or never existed; create one with session_create",
                self.shared.op.config.limits.idle_ttl_secs
            ),
        )
    }
}

/// Closes sessions idle longer than the operator's TTL, forever.
pub async fn reap_idle(shared: Arc<Shared>) {
    let ttl = Duration::from_secs(shared.op.config.limits.idle_ttl_secs);
    let every = (ttl / 4).clamp(Duration::from_millis(200), Duration::from_secs(30));
    loop {
        tokio::time::sleep(every).await;
        for e in shared.table.take_idle() {
            tracing::info!(session = e.session.id(), "closing idle session");
            e.session.close().await;
        }
    }
}

/// Closes every session (at shutdown).
/// On shutdown: cancels every running command and waits (up to `within`) until every
/// `session_exec` call has its answer, so clients get "cancelled", not silence.
pub async fn cancel_in_flight(shared: &Shared, within: Duration) {
    for e in shared.table.all() {
        e.session.cancel();
    }
    let deadline = tokio::time::Instant::now() + within;
    while shared.in_flight.count() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Closes every session (killing their process trees).
pub async fn close_all(shared: &Shared) {
    for e in shared.table.drain() {
        e.session.close().await;
    }
}

fn exec_options(budget: Option<Budget>, timeout_ms: Option<u64>) -> ExecOptions {
    let budget = budget.unwrap_or_default();
    let mut o = ExecOptions::default()
        .with_stdout(budget.clone())
        .with_stderr(budget);
    o.timeout_ms = timeout_ms;
    o
}

/// True when the negotiated revision forbids server-to-client requests (2026-07-28 on):
/// approvals then travel as `input_required` results.
fn stateless_revision(ctx: &RequestContext<RoleServer>) -> bool {
    ctx.protocol_version()
        .map(|v| !v.has_initialize())
        .unwrap_or(false)
}

/// Whether the client declared it can show forms to its human.
fn client_can_elicit(ctx: &RequestContext<RoleServer>) -> bool {
    let caps = ctx
        .meta
        .client_capabilities()
        .or_else(|| ctx.peer.peer_info().map(|i| i.capabilities.clone()));
    match caps.and_then(|c| c.elicitation) {
        Some(e) => e.form.is_some() || e.url.is_none(),
        None => false,
    }
}

/// How an Ask was settled.
enum Settled {
    Approved(Approval),
    Declined(String),
    /// Answered with `input_required`; the client retries.
    Deferred(CallToolResponse),
}

#[tool_router]
impl ExecKitServer {
    /// Starts a persistent shell session.
    #[tool(
        description = "Start a persistent, sandboxed shell session (cwd, variables and functions persist between commands). Returns the session_id, the sandbox the kernel enforces, the policy set and the identity.",
        annotations(
            title = "Create shell session",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        ),
        output_schema = schema_for_output::<CreateOutput>()
    )]
    async fn session_create(&self, Parameters(a): Parameters<CreateArgs>) -> ToolResult {
        let transport = a.transport.as_deref().unwrap_or("local");
        let target = match (transport, &a.host, &a.container, &a.image) {
            ("local", None, None, None) if a.port.is_none() && a.user.is_none() => {
                OpenTarget::local()
            }
            ("local", ..) => {
                return fail(
                    ErrorKind::BadArguments,
                    "a local session takes no host, port, user, container or image",
                )
            }
            ("ssh", Some(host), None, None) => {
                OpenTarget::ssh(host, a.port, a.user.as_deref())
            }
            ("ssh", ..) => {
                return fail(
                    ErrorKind::BadArguments,
                    "an ssh session needs `host` (and optionally `port`, `user`), no container or image",
                )
            }
            ("docker", None, Some(c), None) if a.port.is_none() && a.user.is_none() => {
                OpenTarget::docker_container(c)
            }
            ("docker", None, None, Some(i)) if a.port.is_none() && a.user.is_none() => {
                OpenTarget::docker_image(i)
            }
            ("docker", ..) => {
                return fail(
                    ErrorKind::BadArguments,
                    "a docker session needs exactly one of `container` or `image`",
                )
            }
            (other, ..) => {
                return fail(
                    ErrorKind::BadArguments,
                    format!(
                        "unknown transport `{}`; expected `local`, `ssh` or `docker`",
                        echo(other)
                    ),
                )
            }
        };
        // The target is a Cedar decision of its own, before anything connects.
        let op = &self.shared.op;
        let ws = op.default_workspace.display().to_string();
        let mut env =
            DecisionEnv::local(&ws, &std::env::var("HOME").unwrap_or_else(|_| "/".into()));
        env.identity = self.identity();
        let decision = op.engine.decide_open(&target, &env);
        if decision.verdict != Verdict::Allow {
            tracing::info!(target = %target.id(), "session target denied by policy");
            let d = execkit_runner::Denial::from_decision(decision);
            return denied(&d, &ws, Some("this session target is not allowed"));
        }
        if transport != "local" {
            return self
                .create_remote(transport, &a, &target, budget_of(&a))
                .await;
        }
        let budget = match a.output_budget.as_ref().map(|b| b.to_budget()).transpose() {
            Ok(b) => b,
            Err(e) => return fail(ErrorKind::BadArguments, e.to_string()),
        };
        let workspace = match op.workspace(a.workspace.as_deref()) {
            Ok(w) => w,
            Err(e) => return fail(ErrorKind::Workspace, e.to_string()),
        };
        let slot = match self.reserve() {
            Ok(s) => s,
            Err(e) => return fail(ErrorKind::Limit, e.to_string()),
        };
        let asks = Arc::new(runtime_asks::AskSlot::default());
        let session = match op
            .session_config(workspace.clone())
            .identity(self.identity())
            .runtime_approver(runtime_asks::approver(
                asks.clone(),
                tokio::runtime::Handle::current(),
            ))
            .local()
            .await
        {
            Ok(s) => s,
            Err(e @ SessionError::AuditUnavailable(_)) => {
                return fail(ErrorKind::AuditUnavailable, e.to_string())
            }
            Err(e) => return fail(ErrorKind::Session, format!("cannot start the session: {e}")),
        };
        let info = session.info().await;
        let cwd = session.cwd().await;
        let id = session.id().to_string();
        let owner = slot.owner();
        self.shared.table.insert(
            slot,
            Arc::new(Entry::new(
                session,
                "local",
                workspace.clone(),
                budget,
                asks,
                owner,
            )),
        );
        tracing::info!(session = %id, workspace = %workspace.display(), "session created");
        let identity = self.identity();
        let out = CreateOutput {
            session_id: id.clone(),
            transport: "local".into(),
            workspace: workspace.display().to_string(),
            cwd,
            sandbox: SandboxOutput::from(&info.enforcement),
            policy_set: op.policy_set.clone(),
            identity: IdentityOutput {
                agent: identity.agent,
                operator: identity.operator,
                user: info.user,
            },
        };
        let text = format!(
            "session {id} · local · {} · sandbox {} ({}) · policies: {}",
            out.cwd, out.sandbox.profile, out.sandbox.level, out.policy_set
        );
        ok(text, &out)
    }

    /// Opens an SSH or Docker session the policies allowed, with the operator's settings.
    async fn create_remote(
        &self,
        transport: &str,
        a: &CreateArgs,
        target: &OpenTarget,
        budget: Result<Option<Budget>, String>,
    ) -> ToolResult {
        let budget = match budget {
            Ok(b) => b,
            Err(e) => return fail(ErrorKind::BadArguments, e),
        };
        let op = &self.shared.op;
        let asks = Arc::new(runtime_asks::AskSlot::default());
        let config = match op
            .session_config(op.default_workspace.clone())
            .identity(self.identity())
            .runtime_approver(runtime_asks::approver(
                asks.clone(),
                tokio::runtime::Handle::current(),
            ))
            .build()
        {
            Ok(c) => c,
            Err(e) => return fail(ErrorKind::Session, e.to_string()),
        };
        let slot = match self.reserve() {
            Ok(s) => s,
            Err(e) => return fail(ErrorKind::Limit, e.to_string()),
        };
        let opened = match transport {
            "ssh" => {
                let Some(sc) = &op.config.ssh else {
                    return fail(
                        ErrorKind::NotAvailable,
                        "the operator has not configured SSH ([ssh] in the server's config)",
                    );
                };
                let Some(user) = a.user.clone().or_else(|| sc.user.clone()) else {
                    return fail(
                        ErrorKind::BadArguments,
                        "an ssh session needs `user` (the operator set no default)",
                    );
                };
                let t = execkit_runner::ssh::SshTarget {
                    host: target.host.clone().unwrap_or_default(),
                    port: a.port.unwrap_or(22),
                    user,
                };
                Session::ssh(&t, &crate::operator::ssh_settings(sc), config).await
            }
            _ => {
                let Some(dc) = &op.config.docker else {
                    return fail(
                        ErrorKind::NotAvailable,
                        "the operator has not configured Docker ([docker] in the server's config)",
                    );
                };
                let t = match (&a.container, &a.image) {
                    (Some(c), _) => execkit_runner::docker::DockerTarget::Container(c.clone()),
                    (None, Some(i)) => execkit_runner::docker::DockerTarget::Image(i.clone()),
                    (None, None) => {
                        return fail(
                            ErrorKind::BadArguments,
                            "a docker session needs `container` or `image`",
                        )
                    }
                };
                // An ephemeral container gets the workspace (the operator's, or one the
                // agent named inside it) bound at /work.
                let workspace = match op.workspace(a.workspace.as_deref()) {
                    Ok(w) => w,
                    Err(e) => return fail(ErrorKind::Workspace, e.to_string()),
                };
                let settings = crate::operator::docker_settings(dc, Some(workspace));
                Session::docker(&t, &settings, config).await
            }
        };
        let session = match opened {
            Ok(s) => s,
            Err(e @ SessionError::AuditUnavailable(_)) => {
                return fail(ErrorKind::AuditUnavailable, e.to_string())
            }
            Err(e) => {
                return fail(
                    ErrorKind::Session,
                    format!("cannot open the {transport} session: {e}"),
                )
            }
        };
        let info = session.info().await;
        let cwd = session.cwd().await;
        let id = session.id().to_string();
        let workspace = info.workspace.clone();
        let owner = slot.owner();
        self.shared.table.insert(
            slot,
            Arc::new(Entry::new(
                session,
                if transport == "ssh" { "ssh" } else { "docker" },
                workspace.clone(),
                budget,
                asks,
                owner,
            )),
        );
        tracing::info!(session = %id, target = %target.id(), "remote session created");
        let identity = self.identity();
        let out = CreateOutput {
            session_id: id.clone(),
            transport: transport.to_string(),
            workspace: workspace.display().to_string(),
            cwd,
            sandbox: SandboxOutput::from(&info.enforcement),
            policy_set: op.policy_set.clone(),
            identity: IdentityOutput {
                agent: identity.agent,
                operator: identity.operator,
                user: info.user,
            },
        };
        let guard = if info.enforcement.level == execkit_runner::sandbox::Level::None {
            "no sandbox on the target: the policies are the guard".to_string()
        } else {
            format!(
                "sandbox {} ({}) on the target",
                out.sandbox.profile, out.sandbox.level
            )
        };
        let text = format!(
            "session {id} · {transport} · {} · {} · {guard} · policies: {}",
            target.id(),
            out.cwd,
            out.policy_set
        );
        ok(text, &out)
    }

    /// Runs a command in a session.
    #[tool(
        description = "Run a bash command line in a session. Every part of it (programs, paths, redirects, substitutions, wrappers) is checked against the operator's Cedar policies first; a denial returns each fact's decision and the policies' advice, and nothing runs. Some commands need a human's approval, which is asked for through the client. Output comes back ANSI-stripped, with secrets redacted, within the budget.",
        annotations(
            title = "Run command in session",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = true
        ),
        output_schema = schema_for_output::<ExecOutput>()
    )]
    async fn session_exec(
        &self,
        Parameters(a): Parameters<ExecArgs>,
        RequestState(state): RequestState,
        InputResponses(responses): InputResponses,
        ctx: RequestContext<RoleServer>,
    ) -> ToolResult {
        let _counted = self.shared.in_flight.enter();
        let Some(entry) = self.entry(&a.session_id) else {
            return self.unknown_session(&a.session_id);
        };
        let budget = match a.budget.as_ref().map(|b| b.to_budget()).transpose() {
            Ok(b) => b.or_else(|| entry.budget.clone()),
            Err(e) => return fail(ErrorKind::BadArguments, e.to_string()),
        };
        let opts = exec_options(budget, a.timeout_ms);
        // A retry carrying the human's answer to an earlier `input_required`.
        let answered = match state {
            Some(handle) => {
                let Some(p) = self.shared.approvals.take(&handle) else {
                    return fail(
                        ErrorKind::BadArguments,
                        "unknown or expired approval state; call session_exec again",
                    );
                };
                if p.session_id != a.session_id || p.command != a.command {
                    return fail(
                        ErrorKind::BadArguments,
                        "the approval state belongs to another command; call session_exec again",
                    );
                }
                Some((p, approval::approved_in(responses.as_ref())))
            }
            None => None,
        };

        let ct = ctx.ct.clone();
        let _turn = tokio::select! {
            g = entry.exec_lock.lock() => g,
            _ = ct.cancelled() => return fail(ErrorKind::Cancelled, "cancelled before the command started"),
        };
        entry.set_running(Some(entry.session.redact(&a.command)));
        // Programs the command starts that an `@ask` stops are put to this call's client.
        entry.asks.fill(
            &ctx,
            &self.approver(),
            Duration::from_secs(self.shared.op.config.limits.approval_timeout_secs),
        );
        let result = self.exec_locked(&entry, &a, &opts, answered, &ctx).await;
        entry.asks.clear();
        entry.set_running(None);
        result
    }

    /// Ends a session.
    #[tool(
        description = "End a session: its shell and every process it started are killed and its private tmp dir is removed.",
        annotations(
            title = "Destroy shell session",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        ),
        output_schema = schema_for_output::<DestroyOutput>()
    )]
    async fn session_destroy(&self, Parameters(a): Parameters<DestroyArgs>) -> ToolResult {
        let Some(e) = self
            .entry(&a.session_id)
            .and_then(|_| self.shared.table.remove(&a.session_id))
        else {
            return fail(
                ErrorKind::UnknownSession,
                format!(
                    "unknown session `{}` (already destroyed or reaped?)",
                    echo(&a.session_id)
                ),
            );
        };
        e.session.cancel();
        e.session.close().await;
        tracing::info!(session = %a.session_id, "session destroyed");
        let out = DestroyOutput {
            session_id: a.session_id.clone(),
            destroyed: true,
        };
        ok(format!("session {} destroyed", a.session_id), &out)
    }

    /// Replaces a session's shell.
    #[tool(
        description = "Start a new shell in a session whose shell ended (a limit, `exit`, a lost connection) or to start over: background processes are stopped, the working directory and exported variables are restored (by a command the policies decide; what they refuse is listed), shell variables and functions are not. Over SSH a lost connection is made again with the same host-key check.",
        annotations(
            title = "Restart shell session",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = false
        ),
        output_schema = schema_for_output::<RestartOutput>()
    )]
    async fn session_restart(&self, Parameters(a): Parameters<RestartArgs>) -> ToolResult {
        let Some(entry) = self.entry(&a.session_id) else {
            return self.unknown_session(&a.session_id);
        };
        let _turn = entry.exec_lock.lock().await;
        let report = match entry.session.restart().await {
            Ok(r) => r,
            Err(e) => {
                return fail(
                    ErrorKind::Session,
                    format!("cannot restart session {}: {e}", a.session_id),
                )
            }
        };
        let info = entry.session.info().await;
        tracing::info!(session = %a.session_id, "session restarted");
        let out = RestartOutput {
            session_id: a.session_id.clone(),
            cwd: report.cwd,
            restored: report.restored,
            refused: report.refused,
            sandbox: SandboxOutput::from(&info.enforcement),
        };
        let mut text = format!(
            "session {} restarted · {} · restored: {}",
            a.session_id,
            out.cwd,
            if out.restored.is_empty() {
                "nothing".to_string()
            } else {
                out.restored.join(", ")
            }
        );
        if !out.refused.is_empty() {
            text.push_str(&format!(" · refused: {}", out.refused.join("; ")));
        }
        ok(text, &out)
    }

    /// Lists sessions.
    #[tool(
        description = "List open sessions: id, transport, cwd, age, idle time and the command running now; and, while the audit log cannot record, why (commands are refused until it can).",
        annotations(
            title = "List shell sessions",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        ),
        output_schema = schema_for_output::<ListOutput>()
    )]
    async fn session_list(&self) -> ToolResult {
        let out = self.list_output().await;
        ok(out.render(), &out)
    }

    /// The open sessions, as `session_list` and the `execkit://sessions` resource show them.
    async fn list_output(&self) -> ListOutput {
        let mut sessions = Vec::new();
        for e in self.entries() {
            sessions.push(SessionRow {
                session_id: e.session.id().to_string(),
                transport: e.transport.to_string(),
                workspace: e.workspace.display().to_string(),
                cwd: e.session.cwd().await,
                age_secs: e.created.elapsed().as_secs(),
                idle_secs: if e.running().is_some() {
                    0
                } else {
                    e.idle().as_secs()
                },
                running: e.running(),
            });
        }
        let audit_unavailable = self
            .shared
            .op
            .audit
            .as_ref()
            .and_then(|log| match log.lock() {
                Ok(log) => log.failing().map(str::to_string),
                Err(_) => Some("the audit log's lock was poisoned by a panic".into()),
            });
        ListOutput {
            sessions,
            max_sessions: self.shared.table.max(),
            audit_unavailable,
        }
    }

    /// The policy decision for a command, without running it.
    #[tool(
        description = "Dry-run the policy decision for a command line without running anything: the verdict (allow, ask or deny), every fact it was split into, the determining policies and their advice. With session_id it is judged in that session's cwd.",
        annotations(
            title = "Check command against policy",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        ),
        output_schema = schema_for_output::<DecisionOutput>()
    )]
    async fn policy_check(&self, Parameters(a): Parameters<CheckArgs>) -> ToolResult {
        let (decision, cwd) = match &a.session_id {
            Some(id) => {
                let Some(entry) = self.entry(id) else {
                    return self.unknown_session(id);
                };
                (
                    entry.session.decide(&a.command).await,
                    entry.session.cwd().await,
                )
            }
            None => {
                let op = &self.shared.op;
                let ws = op.default_workspace.display().to_string();
                let home = std::env::var("HOME").unwrap_or_else(|_| "/".into());
                let mut env = DecisionEnv::local(&ws, &home);
                env.identity = self.identity();
                env.cwd = Some(ws.clone());
                let mut decision = execkit_runner::decide(&op.engine, &a.command, &env).await;
                let sandbox = &op.config.sandbox;
                let roots = execkit_runner::kernel_prediction::dry_run_roots(
                    sandbox.profile,
                    &op.default_workspace,
                    &sandbox.writable,
                );
                if let Some(roots) = roots {
                    execkit_runner::kernel_prediction::refuse_outside(&mut decision, &roots, None);
                }
                (decision, ws)
            }
        };
        let reason = if decision.verdict == Verdict::Allow {
            "every fact is permitted".to_string()
        } else {
            execkit_runner::Denial::reason_for(&decision)
        };
        let out = DecisionOutput::from(&decision, &cwd, reason, true);
        ok(out.render(), &out)
    }
}

impl ExecKitServer {
    /// The part of `session_exec` that runs with the session's turn held.
    async fn exec_locked(
        &self,
        entry: &Arc<Entry>,
        a: &ExecArgs,
        opts: &ExecOptions,
        answered: Option<(approval::Pending, bool)>,
        ctx: &RequestContext<RoleServer>,
    ) -> ToolResult {
        let session = &entry.session;
        let cwd = session.cwd().await;
        let approver = self.approver();
        let (mut approval, declined) = match answered {
            Some((p, yes)) => {
                let answer = Approval {
                    approver: approver.clone(),
                    command: a.command.clone(),
                    facts: p.facts,
                };
                if yes {
                    session.record_approval(ApprovalEvent::Approved, &answer, &cwd, None);
                    (Some(answer), None)
                } else {
                    let why = "the human declined";
                    session.record_approval(ApprovalEvent::Declined, &answer, &cwd, Some(why));
                    (None, Some(why.to_string()))
                }
            }
            None => (None, None),
        };
        // The runner decides and, on Allow, runs in one step; only an Ask comes back here
        // to be put to the human (and is then decided again with the approval attached).
        let mut result = self
            .run(entry.clone(), &a.command, opts, approval.clone(), ctx)
            .await;
        if let Err(ExecError::Denied(d)) = &result {
            if d.verdict == Verdict::Ask && approval.is_none() && declined.is_none() {
                match self
                    .ask(entry, a, &cwd, &d.decision, &approver, ctx)
                    .await?
                {
                    Settled::Deferred(r) => return Ok(r),
                    Settled::Declined(why) => return denied(d, &cwd, Some(&why)),
                    Settled::Approved(ap) => {
                        approval = Some(ap);
                        result = self
                            .run(entry.clone(), &a.command, opts, approval.clone(), ctx)
                            .await;
                    }
                }
            }
        }
        let approved_by = approval.map(|ap| ap.approver);
        match result {
            Ok(r) => {
                tracing::debug!(session = %a.session_id, stages = ?r.stages, "command stages (µs)");
                let out = ExecOutput::from(&a.session_id, r, approved_by);
                ok(out.render(), &out)
            }
            Err(ExecError::Denied(d)) => denied(&d, &cwd, declined.as_deref()),
            Err(e @ (ExecError::Rejected(_) | ExecError::Budget(_))) => {
                fail(ErrorKind::BadArguments, e.to_string())
            }
            Err(e @ ExecError::WorkspaceFull { .. }) => fail(ErrorKind::Limit, e.to_string()),
            Err(e @ ExecError::AuditUnavailable(_)) => {
                fail(ErrorKind::AuditUnavailable, e.to_string())
            }
            Err(ExecError::ShellGone(why)) => fail(
                ErrorKind::Session,
                format!("the session's shell has ended ({why}); destroy it with session_destroy and create a new one"),
            ),
            Err(e) => fail(ErrorKind::Session, e.to_string()),
        }
    }

    /// Asks the human about an Ask decision, in the form the protocol revision allows.
    async fn ask(
        &self,
        entry: &Entry,
        a: &ExecArgs,
        cwd: &str,
        decision: &execkit_engine::Decision,
        approver: &str,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<Settled, ErrorData> {
        let session = &entry.session;
        let shown = Approval::of(approver, &a.command, decision);
        let message = approval::message(&session.redact(&a.command), cwd, &a.session_id, decision);
        if stateless_revision(ctx) {
            session.record_approval(ApprovalEvent::Requested, &shown, cwd, None);
            let handle = self
                .shared
                .approvals
                .park(&a.session_id, &a.command, shown.facts)
                .map_err(internal)?;
            let mut requests = InputRequests::new();
            requests.insert(
                approval::INPUT_KEY.into(),
                InputRequest::Elicitation(ElicitRequest::new(approval::request(message))),
            );
            return Ok(Settled::Deferred(
                InputRequiredResult::new(Some(requests), Some(handle)).into(),
            ));
        }
        let refuse = |why: String| {
            session.record_approval(ApprovalEvent::Declined, &shown, cwd, Some(&why));
            Ok(Settled::Declined(why))
        };
        if !client_can_elicit(ctx) {
            return refuse(
                "this command needs a human's approval and the client cannot ask (no elicitation support)".into(),
            );
        }
        session.record_approval(ApprovalEvent::Requested, &shown, cwd, None);
        let timeout = Duration::from_secs(self.shared.op.config.limits.approval_timeout_secs);
        let answer = tokio::select! {
            r = ctx.peer.create_elicitation_with_timeout(approval::request(message), Some(timeout)) => r,
            _ = ctx.ct.cancelled() => return refuse("the call was cancelled while waiting for approval".into()),
        };
        match answer {
            Ok(r) if approval::approved(&r.action, r.content.as_ref()) => {
                session.record_approval(ApprovalEvent::Approved, &shown, cwd, None);
                Ok(Settled::Approved(shown))
            }
            Ok(_) => refuse("the human declined".into()),
            Err(e) => refuse(format!("no approval ({e})")),
        }
    }

    /// Runs the command in its own task, sending progress while it runs and interrupting
    /// it when the call is cancelled.
    async fn run(
        &self,
        entry: Arc<Entry>,
        command: &str,
        opts: &ExecOptions,
        approval: Option<Approval>,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<execkit_runner::ExecResult, ExecError> {
        // A 2026-07-28 request may carry its own log level (`_meta`): this command's
        // events at or above it are sent as `notifications/message` while it runs.
        let per_request = ctx.meta.log_level();
        let mut events = per_request.map(|_| self.shared.op.events.subscribe());
        let task_entry = entry.clone();
        // The command as progress shows it, redacted at the first progress report.
        let mut shown: Option<String> = None;
        let text = command.to_string();
        let mut opts = opts.clone();
        opts.approval = approval;
        let mut task = tokio::spawn(async move { task_entry.session.exec(&text, &opts).await });
        let token = ctx.meta.get_progress_token();
        let every = Duration::from_millis(self.shared.op.config.limits.progress_interval_ms);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        let started = Instant::now();
        let mut cancelling = false;
        loop {
            tokio::select! {
                r = &mut task => {
                    if let (Some(rx), Some(min)) = (events.as_mut(), per_request) {
                        // What the command recorded before it returned.
                        while let Ok(e) = rx.try_recv() {
                            self.log_for_request(&e, entry.session.id(), min, ctx).await;
                        }
                    }
                    return r.unwrap_or_else(|e| Err(ExecError::Io(std::io::Error::other(e.to_string()))));
                }
                Some(e) = watching::next_event(events.as_mut()) => {
                    if let Some(min) = per_request {
                        self.log_for_request(&e, entry.session.id(), min, ctx).await;
                    }
                }
                _ = ctx.ct.cancelled(), if !cancelling => {
                    cancelling = true;
                    entry.session.cancel();
                }
                _ = tick.tick() => {
                    if cancelling {
                        // The command may not have started when the first cancel came.
                        entry.session.cancel();
                    } else {
                        let shown = shown.get_or_insert_with(|| entry.session.redact(command));
                        self.progress(&entry, shown, token.as_ref(), started.elapsed(), ctx).await;
                    }
                }
            }
        }
    }

    /// Reports a running command's progress: to the client when it sent a progress token,
    /// and to socket watchers (with the end of the output so far) when any are connected.
    async fn progress(
        &self,
        entry: &Entry,
        shown: &str,
        token: Option<&rmcp::model::ProgressToken>,
        elapsed: Duration,
        ctx: &RequestContext<RoleServer>,
    ) {
        let hub = &self.shared.op.events;
        if token.is_none() && !hub.has_watchers() {
            return;
        }
        let Some(p) = entry.session.progress() else {
            return;
        };
        if hub.has_watchers() {
            hub.publish_progress(entry.session.id(), shown, elapsed.as_millis() as u64, &p);
        }
        if let Some(token) = token {
            let (o, e) = (p.stdout_bytes, p.stderr_bytes);
            let param = ProgressNotificationParam::new(token.clone(), elapsed.as_millis() as f64)
                .with_message(format!(
                    "running {:.1} s · {o} bytes stdout · {e} bytes stderr",
                    elapsed.as_secs_f64()
                ));
            if let Err(err) = ctx.peer.notify_progress(param).await {
                tracing::debug!(%err, "progress notification not sent");
            }
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for ExecKitServer {
    #[allow(deprecated)] // logging and resources/subscribe: what both MCP clients speak today
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_logging()
                .enable_resources()
                .enable_resources_subscribe()
                .build(),
        )
            .with_server_info(Implementation::new("execkit", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "execkit runs shell commands for you in persistent, sandboxed sessions. Call session_create once, then session_exec for each command (cd and exports persist). For dev servers, watchers and REPLs use process_start, then process_wait (until a readiness line), process_read (new output since your last read), process_write and process_signal. Every command is checked against the operator's policies: if one is denied, read the advice in the result and adapt; use policy_check to test a command without running it. Destroy sessions you no longer need.",
            )
    }

    /// Every tool call runs as its caller (see [`caller`]).
    async fn call_tool(
        &self,
        request: rmcp::model::CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let caller = self.caller_of(&context.extensions);
        let tcc = rmcp::handler::server::tool::ToolCallContext::new(self, request, context);
        caller.scope(self.tool_router.call(tcc)).await
    }

    async fn on_initialized(&self, context: rmcp::service::NotificationContext<RoleServer>) {
        self.start_watching(context.peer, self.caller_of(&context.extensions));
    }

    #[allow(deprecated)]
    async fn set_level(
        &self,
        request: rmcp::model::SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.watch.set_level(request.level);
        self.start_watching(context.peer, self.caller_of(&context.extensions));
        Ok(())
    }

    async fn list_resources(
        &self,
        _request: Option<rmcp::model::PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ListResourcesResult, ErrorData> {
        Ok(self
            .caller_of(&context.extensions)
            .scope(self.resources())
            .await)
    }

    async fn list_resource_templates(
        &self,
        _request: Option<rmcp::model::PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ListResourceTemplatesResult, ErrorData> {
        Ok(Self::resource_templates())
    }

    async fn read_resource(
        &self,
        request: rmcp::model::ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ReadResourceResponse, ErrorData> {
        let caller = self.caller_of(&context.extensions);
        Ok(caller.scope(self.read(&request.uri)).await?.into())
    }

    #[allow(deprecated)]
    async fn subscribe(
        &self,
        request: rmcp::model::SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.watch.subscribe(&request.uri)?;
        self.start_watching(context.peer, self.caller_of(&context.extensions));
        Ok(())
    }

    #[allow(deprecated)]
    async fn unsubscribe(
        &self,
        request: rmcp::model::UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.watch.unsubscribe(&request.uri);
        Ok(())
    }

    fn accepted_subscription_filter(
        &self,
        requested: &rmcp::model::SubscriptionFilter,
    ) -> Option<rmcp::model::SubscriptionFilter> {
        Some(watching::accepted_filter(requested))
    }

    async fn listen(&self, context: rmcp::service::SubscriptionContext) -> Result<(), ErrorData> {
        self.listen_for_updates(context).await
    }
}
