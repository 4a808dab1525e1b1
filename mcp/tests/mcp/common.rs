//! A real MCP client (rmcp) driving the real `execkit-mcp` binary over stdio, with a
//! per-test workspace and operator config. Shared by the tests and the stdio bench.

#![allow(dead_code)]

use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, ElicitRequestParams,
    ElicitResult, ElicitationAction, Implementation, ProgressNotificationParam, ProtocolVersion,
};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt, RequestContext, RunningService};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, ErrorData, RoleClient, ServiceExt};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// How the test client answers approval requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Human {
    /// The client does not declare elicitation.
    Absent,
    /// Accepts with `approve: true`.
    Approves,
    /// Declines.
    Declines,
}

/// The test client: answers elicitations as told and records what it saw.
#[derive(Clone)]
pub struct Client {
    pub human: Human,
    pub asked: Arc<Mutex<Vec<String>>>,
    pub progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
    /// `notifications/message` lines received.
    pub logs: Arc<Mutex<Vec<Value>>>,
    /// `notifications/resources/updated` URIs received.
    pub updated: Arc<Mutex<Vec<String>>>,
}

impl Client {
    pub fn new(human: Human) -> Client {
        Client {
            human,
            asked: Arc::default(),
            progress: Arc::default(),
            logs: Arc::default(),
            updated: Arc::default(),
        }
    }
}

impl ClientHandler for Client {
    fn get_info(&self) -> ClientConfig {
        let caps = if self.human == Human::Absent {
            ClientCapabilities::default()
        } else {
            ClientCapabilities::builder().enable_elicitation().build()
        };
        ClientConfig::new(caps, Implementation::new("execkit-tests", "0"))
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _ctx: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        if let ElicitRequestParams::FormElicitationParams { message, .. } = &request {
            self.asked.lock().unwrap().push(message.clone());
        }
        Ok(match self.human {
            Human::Approves => {
                ElicitResult::new(ElicitationAction::Accept).with_content(json!({"approve": true}))
            }
            _ => ElicitResult::new(ElicitationAction::Decline),
        })
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _ctx: rmcp::service::NotificationContext<RoleClient>,
    ) {
        self.progress.lock().unwrap().push(params);
    }

    #[allow(deprecated)]
    async fn on_logging_message(
        &self,
        params: rmcp::model::LoggingMessageNotificationParam,
        _ctx: rmcp::service::NotificationContext<RoleClient>,
    ) {
        self.logs
            .lock()
            .unwrap()
            .push(json!({"level": params.level, "logger": params.logger, "data": params.data}));
    }

    async fn on_resource_updated(
        &self,
        params: rmcp::model::ResourceUpdatedNotificationParam,
        _ctx: rmcp::service::NotificationContext<RoleClient>,
    ) {
        self.updated.lock().unwrap().push(params.uri);
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A variable in every test server's environment that no session may ever read.
pub const SERVER_CANARY: &str = "canary-3b7e91d04c5a";

/// A policy directory (under `root`) that permits everything, for tests of what the kernel
/// contains when the policy does not.
pub fn permit_all_policies(root: &Path) -> String {
    let dir = root.join("permit-all");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("all.cedar"),
        "@id(\"permit-all\") permit(principal, action, resource);",
    )
    .unwrap();
    format!("[policy]\ndir = {:?}\n", dir.display().to_string())
}

/// A scratch workspace (removed on drop) with a config file for the server.
pub struct Setup {
    pub root: PathBuf,
    /// The server's `TMPDIR` (where session directories go).
    pub tmp: PathBuf,
    pub workspace: PathBuf,
    pub config: PathBuf,
    pub audit: PathBuf,
    pub stderr: PathBuf,
}

impl Setup {
    /// A workspace and a config: the given TOML is appended to the defaults used here
    /// (workspace, audit path).
    pub fn new(extra_toml: &str) -> Setup {
        Self::build(extra_toml, true)
    }

    /// Like [`Setup::new`] with no audit log.
    pub fn without_audit(extra_toml: &str) -> Setup {
        Self::build(extra_toml, false)
    }

    fn build(extra_toml: &str, audit_on: bool) -> Setup {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let root =
            std::env::temp_dir().join(format!("execkit-mcp-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let workspace = root.join("ws");
        std::fs::create_dir_all(workspace.join("sub")).unwrap();
        let tmp = root.join("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        let audit = root.join("audit.jsonl");
        let config = root.join("execkit.toml");
        let mut text = format!(
            "[workspaces]\ndefault = {:?}\nallowed = [{:?}]\n",
            workspace.display().to_string(),
            root.display().to_string(),
        );
        if audit_on {
            text.push_str(&format!(
                "[audit]\npath = {:?}\n",
                audit.display().to_string()
            ));
        }
        text.push_str(extra_toml);
        std::fs::write(&config, text).unwrap();
        Setup {
            stderr: root.join("server.stderr"),
            tmp,
            root,
            workspace,
            config,
            audit,
        }
    }

    /// Starts the server and connects with `initialize` (the revision rmcp negotiates).
    pub async fn connect(&self, human: Human) -> RunningService<RoleClient, Client> {
        self.connect_with_pid(human).await.0
    }

    /// Like [`Setup::connect`], also returning the server's pid.
    pub async fn connect_with_pid(
        &self,
        human: Human,
    ) -> (RunningService<RoleClient, Client>, u32) {
        let t = self.transport();
        let pid = t.id().expect("server pid");
        let c = Client::new(human)
            .serve(t)
            .await
            .expect("MCP handshake with execkit-mcp");
        (c, pid)
    }

    /// Starts the server and connects with `server/discover` (revision 2026-07-28).
    pub async fn connect_stateless(&self, human: Human) -> RunningService<RoleClient, Client> {
        Client::new(human)
            .serve_with_lifecycle(
                self.transport(),
                ClientLifecycleMode::Discover {
                    preferred_versions: vec![ProtocolVersion::V_2026_07_28],
                },
            )
            .await
            .expect("MCP discover with execkit-mcp")
    }

    fn transport(&self) -> TokioChildProcess {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_execkit-mcp"));
        cmd.arg("--config").arg(&self.config);
        cmd.env_remove("EXECKIT_CONFIG");
        cmd.env("RUST_LOG", "execkit=debug");
        cmd.env("TMPDIR", &self.tmp);
        cmd.env("EXECKIT_TEST_CANARY", SERVER_CANARY);
        let stderr = std::fs::File::create(&self.stderr).unwrap();
        let (t, _) = TokioChildProcess::builder(cmd)
            .stderr(stderr)
            .spawn()
            .expect("spawn execkit-mcp");
        t
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Arguments from a JSON object literal.
pub fn args(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("arguments must be an object, got {other}"),
    }
}

/// Calls a tool (MRTR rounds driven by the client).
pub async fn call(c: &RunningService<RoleClient, Client>, tool: &str, a: Value) -> CallToolResult {
    c.call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(args(a)))
        .await
        .unwrap_or_else(|e| panic!("{tool} failed at the protocol level: {e}"))
}

/// The structured content of a result.
pub fn structured(r: &CallToolResult) -> &Value {
    r.structured_content
        .as_ref()
        .unwrap_or_else(|| panic!("no structured content in {r:?}"))
}

/// The text content of a result.
pub fn text(r: &CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// True for a tool error.
pub fn is_error(r: &CallToolResult) -> bool {
    r.is_error == Some(true)
}

/// Creates a session and returns its id.
pub async fn create(c: &RunningService<RoleClient, Client>) -> String {
    let r = call(c, "session_create", json!({})).await;
    assert!(!is_error(&r), "session_create failed: {}", text(&r));
    structured(&r)["session_id"].as_str().unwrap().to_string()
}

/// Runs a command that must succeed at the tool level and returns the structured result.
pub async fn exec(c: &RunningService<RoleClient, Client>, id: &str, command: &str) -> Value {
    let r = call(
        c,
        "session_exec",
        json!({"session_id": id, "command": command}),
    )
    .await;
    assert!(!is_error(&r), "`{command}` failed: {}", text(&r));
    structured(&r).clone()
}

/// The audit log's records.
pub fn audit_records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The audit records of one kind (`decision`, `command`) for one command.
pub fn audit_of(path: &Path, kind: &str, command: &str) -> Vec<Value> {
    audit_records(path)
        .into_iter()
        .filter(|r| r["kind"] == kind && r["command"] == command)
        .collect()
}

/// Live (not zombie) processes whose command line contains `marker`.
pub fn live_with(marker: &str) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    dir.flatten()
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let zombie = stat
                .rsplit_once(") ")
                .is_some_and(|(_, r)| r.starts_with('Z'));
            (!zombie && String::from_utf8_lossy(&cmd).contains(marker)).then_some(pid)
        })
        .collect()
}
