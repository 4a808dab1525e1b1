//! What tools return: the structured content (with its JSON schema, published as each
//! tool's `outputSchema`) and a compact text rendering of the same result. The text is
//! what most agents read, so it carries the output once and the metadata in one line.

use execkit_engine::{Decision, Verdict};
use execkit_protect::StreamReport;
use execkit_runner::sandbox::{CgroupVersion, Enforcement};
use execkit_runner::{ExecResult, LimitHit};
use schemars::JsonSchema;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// `session_create`'s result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CreateOutput {
    /// Pass this to the other tools.
    pub session_id: String,
    /// `local`.
    pub transport: String,
    /// The workspace.
    pub workspace: String,
    /// The starting directory.
    pub cwd: String,
    /// The confinement the kernel enforces for this session.
    pub sandbox: SandboxOutput,
    /// The policy set that decides every command.
    pub policy_set: String,
    /// Who the policies see.
    pub identity: IdentityOutput,
}

/// The sandbox a session got.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SandboxOutput {
    /// `read-only`, `workspace`, `workspace-net` or `off`.
    pub profile: String,
    /// `full`, `partial` or `none`.
    pub level: String,
    /// The kernel's Landlock ABI (0: none).
    pub landlock_abi: i32,
    /// Landlock filesystem rules applied.
    pub filesystem: bool,
    /// Network confinement applied (Landlock TCP rules or seccomp socket filter).
    pub network_restricted: bool,
    /// The seccomp filter applied.
    pub seccomp: bool,
    /// The session has its own PID namespace and `/proc`: it dies with the server and
    /// sees no process outside itself.
    pub pid_namespace: bool,
    /// The resource limits the kernel enforces for the session.
    pub resources: ResourcesOutput,
    /// Paths the session can write.
    pub writable: Vec<String>,
    /// What is missing, for humans.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl SandboxOutput {
    /// From the runner's report.
    pub fn from(e: &Enforcement) -> SandboxOutput {
        SandboxOutput {
            network_restricted: e.landlock_network || (e.seccomp && !e.profile.network()),
            profile: e.profile.as_str().to_string(),
            level: e.level.as_str().to_string(),
            landlock_abi: e.landlock_abi,
            filesystem: e.filesystem,
            seccomp: e.seccomp,
            pid_namespace: e.pid_namespace,
            resources: ResourcesOutput {
                cgroup: e.resources.cgroup.map(|v| match v {
                    CgroupVersion::V1 => "v1".to_string(),
                    _ => "v2".to_string(),
                }),
                max_processes: e.resources.processes,
                max_memory_bytes: e.resources.memory_bytes,
                memory_per_process: e.resources.memory_per_process,
                cpu_percent: e.resources.cpu_percent,
                max_open_files: e.resources.open_files,
                max_file_bytes: e.resources.file_bytes,
            },
            writable: e.writable.iter().map(|p| p.display().to_string()).collect(),
            notes: e.notes.clone(),
        }
    }
}

/// Resource limits as enforced (absent: not enforced).
#[derive(Debug, Serialize, JsonSchema)]
pub struct ResourcesOutput {
    /// The session's cgroup version (`v1`, `v2`), if it has one.
    pub cgroup: Option<String>,
    /// Processes alive at once.
    pub max_processes: Option<u64>,
    /// Memory in bytes (the whole session, or each process if `memory_per_process`).
    pub max_memory_bytes: Option<u64>,
    /// The memory limit binds each process, not the session (no memory cgroup).
    pub memory_per_process: bool,
    /// CPU in percent of one CPU.
    pub cpu_percent: Option<u32>,
    /// Open files per process.
    pub max_open_files: Option<u64>,
    /// Bytes per written file.
    pub max_file_bytes: Option<u64>,
}

/// Who a session acts as.
#[derive(Debug, Serialize, JsonSchema)]
pub struct IdentityOutput {
    /// The `Agent` entity.
    pub agent: String,
    /// The accountable human.
    pub operator: String,
    /// The Unix account the shell runs as.
    pub user: String,
}

/// `session_exec`'s result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ExecOutput {
    /// The session.
    pub session_id: String,
    /// Exit status (128 + signal when killed); absent if it could not be known.
    pub exit_code: Option<i32>,
    /// Protected stdout (ANSI stripped, secrets redacted, budget applied).
    pub stdout: String,
    /// Protected stderr.
    pub stderr: String,
    /// The directory after the command.
    pub cwd: String,
    /// Wall time.
    pub duration_ms: u64,
    /// Stopped by the timeout.
    pub timed_out: bool,
    /// Stopped by a cancellation.
    pub cancelled: bool,
    /// The shell itself ended (the session must be destroyed and created again).
    pub shell_exited: bool,
    /// Present when stdout was cut: what was kept and what was dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdout_truncation: Option<Truncation>,
    /// Present when stderr was cut.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stderr_truncation: Option<Truncation>,
    /// Secrets redacted, by rule.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub redactions: BTreeMap<String, u64>,
    /// The human who approved this command, when the policies asked for approval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    /// Session resource limits the command ran into, in words.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub limits_hit: Vec<LimitOutput>,
    /// Background jobs (`cmd &`) the command left running: their output is not kept.
    /// Start such commands with process_start instead.
    #[serde(skip_serializing_if = "is_zero")]
    pub background_jobs: usize,
    /// A checkpoint taken before the command because a policy asks for one:
    /// session_restore with this id undoes the command's file changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
    /// Programs the command started (a script's command, a Makefile recipe, a hook) that
    /// the policies refused as they started: each failed with "permission denied".
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub runtime_denials: Vec<RuntimeDenialOutput>,
    /// How many programs the command started that the policies allowed as they started.
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub runtime_allowed: u64,
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

/// A program refused as it started.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RuntimeDenialOutput {
    /// The program.
    pub program: String,
    /// Its arguments, argv[0] first.
    pub argv: Vec<String>,
    /// Where it was to run.
    pub cwd: String,
    /// Its parents, nearest first (pid and name).
    pub parents: Vec<String>,
    /// `deny`, or `ask` (a human's approval was needed and not given).
    pub verdict: String,
    /// Why, with the policy's advice.
    pub reason: String,
    /// The policies that refused it.
    pub policies: Vec<String>,
    /// For a refused connection: where it was to go (`host:port`); `program` opened it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// A resource limit a command ran into.
#[derive(Debug, Serialize, JsonSchema)]
pub struct LimitOutput {
    /// `memory`, `processes`, `file_size` or `workspace`.
    pub kind: String,
    /// The limit (bytes, or processes).
    pub limit: u64,
    /// What happened, in words.
    pub message: String,
}

impl From<&LimitHit> for LimitOutput {
    fn from(h: &LimitHit) -> LimitOutput {
        let (kind, limit) = match *h {
            LimitHit::Memory { limit_bytes } => ("memory", limit_bytes),
            LimitHit::Processes { max_processes } => ("processes", max_processes),
            LimitHit::FileSize { limit_bytes } => ("file_size", limit_bytes),
            LimitHit::Workspace { limit_bytes } => ("workspace", limit_bytes),
            _ => ("other", 0),
        };
        LimitOutput {
            kind: kind.into(),
            limit,
            message: h.to_string(),
        }
    }
}

/// How a stream was cut.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Truncation {
    /// The budget mode.
    pub mode: String,
    /// Bytes and lines of the whole (protected) stream.
    pub bytes_total: u64,
    /// Lines of the whole stream.
    pub lines_total: u64,
    /// Bytes returned.
    pub bytes_kept: u64,
    /// Lines returned.
    pub lines_kept: u64,
    /// Bytes not returned.
    pub elided_bytes: u64,
    /// For `grep`: matching lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matches: Option<u64>,
}

impl Truncation {
    fn of(r: &StreamReport) -> Option<Truncation> {
        (r.truncated || r.matches.is_some()).then(|| Truncation {
            mode: r.mode.as_str().to_string(),
            bytes_total: r.bytes_total,
            lines_total: r.lines_total,
            bytes_kept: r.bytes_kept,
            lines_kept: r.lines_kept,
            elided_bytes: r.elided_bytes,
            matches: r.matches,
        })
    }
}

impl ExecOutput {
    /// From the runner's result.
    pub fn from(session_id: &str, r: ExecResult, approved_by: Option<String>) -> ExecOutput {
        ExecOutput {
            session_id: session_id.to_string(),
            exit_code: r.exit_code,
            stdout_truncation: Truncation::of(&r.stdout_report),
            stderr_truncation: Truncation::of(&r.stderr_report),
            stdout: r.stdout,
            stderr: r.stderr,
            cwd: r.cwd,
            duration_ms: r.duration_ms,
            timed_out: r.timed_out,
            cancelled: r.cancelled,
            shell_exited: r.shell_exited,
            redactions: r.redactions,
            approved_by,
            limits_hit: r.limits_hit.iter().map(LimitOutput::from).collect(),
            background_jobs: r.background_jobs,
            checkpoint: r.checkpoint,
            runtime_denials: r
                .runtime_denials
                .into_iter()
                .map(|d| RuntimeDenialOutput {
                    program: d.program,
                    argv: d.argv,
                    cwd: d.cwd,
                    parents: d.parents,
                    verdict: d.verdict.as_str().to_string(),
                    reason: d.reason,
                    policies: d.policies,
                    destination: d.destination,
                })
                .collect(),
            runtime_allowed: r.runtime_allowed,
        }
    }

    /// `exit 0 · 3 ms · /cwd`, then stdout, then stderr under a marker.
    pub fn render(&self) -> String {
        let mut s = match self.exit_code {
            Some(c) => format!("exit {c}"),
            None => "exit ?".to_string(),
        };
        let _ = write!(s, " · {} ms · {}", self.duration_ms, self.cwd);
        for (flag, word) in [
            (self.timed_out, "timed out"),
            (self.cancelled, "cancelled"),
            (self.shell_exited, "shell exited"),
        ] {
            if flag {
                let _ = write!(s, " · {word}");
            }
        }
        if let Some(a) = &self.approved_by {
            let _ = write!(s, " · approved by {a}");
        }
        if !self.redactions.is_empty() {
            let n: u64 = self.redactions.values().sum();
            let _ = write!(s, " · {n} redacted");
        }
        for l in &self.limits_hit {
            let _ = write!(s, " · {}", l.message);
        }
        if let Some(c) = &self.checkpoint {
            let _ = write!(
                s,
                " · checkpoint {c} taken first (session_restore undoes it)"
            );
        }
        if self.background_jobs > 0 {
            let _ = write!(
                s,
                " · left {} background job(s) whose output is dropped: use process_start to keep a process's output",
                self.background_jobs
            );
        }
        for d in &self.runtime_denials {
            let under = d
                .parents
                .first()
                .map(|p| format!(" (started by {p})"))
                .unwrap_or_default();
            let _ = match &d.destination {
                Some(to) => write!(
                    s,
                    "\nrefused at the connection: {to} by {}: {}",
                    d.program, d.reason
                ),
                None => write!(
                    s,
                    "\nrefused at its start: {}{under}: {}",
                    d.argv.join(" "),
                    d.reason
                ),
            };
        }
        append_streams(&mut s, &self.stdout, &self.stderr, " · no output");
        s
    }
}

/// A header's body: stdout, then stderr under a `[stderr]` marker, or `none` appended to
/// the header when both are empty.
pub fn append_streams(s: &mut String, stdout: &str, stderr: &str, none: &str) {
    if stdout.is_empty() && stderr.is_empty() {
        s.push_str(none);
        return;
    }
    s.push('\n');
    s.push_str(stdout);
    if !stderr.is_empty() {
        if !stdout.is_empty() && !stdout.ends_with('\n') {
            s.push('\n');
        }
        s.push_str("[stderr]\n");
        s.push_str(stderr);
    }
}

/// `session_destroy`'s result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DestroyOutput {
    /// The session.
    pub session_id: String,
    /// True: it existed and is now gone.
    pub destroyed: bool,
}

/// `session_restart`'s result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RestartOutput {
    /// The session.
    pub session_id: String,
    /// The new shell's working directory.
    pub cwd: String,
    /// What was brought back from the shell before: `cwd` and exported variable names.
    pub restored: Vec<String>,
    /// What the policies or the shell refused to bring back, with why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<String>,
    /// The sandbox the new shell runs under.
    pub sandbox: SandboxOutput,
}

/// `session_list`'s result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ListOutput {
    /// Open sessions, oldest first.
    pub sessions: Vec<SessionRow>,
    /// The operator's cap.
    pub max_sessions: usize,
    /// Set while the audit log cannot record (why): commands are refused until it can.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_unavailable: Option<String>,
}

/// One open session.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SessionRow {
    /// Id.
    pub session_id: String,
    /// `local`.
    pub transport: String,
    /// Workspace.
    pub workspace: String,
    /// Current directory.
    pub cwd: String,
    /// Seconds since it was created.
    pub age_secs: u64,
    /// Seconds since it was last used.
    pub idle_secs: u64,
    /// The command running now (redacted), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub running: Option<String>,
}

impl ListOutput {
    /// One line per session.
    pub fn render(&self) -> String {
        let mut s = if self.sessions.is_empty() {
            format!("no sessions (max {})", self.max_sessions)
        } else {
            format!(
                "{} of max {} sessions",
                self.sessions.len(),
                self.max_sessions
            )
        };
        if let Some(why) = &self.audit_unavailable {
            let _ = write!(
                s,
                "\nthe audit log cannot record, so commands are refused: {why}"
            );
        }
        for r in &self.sessions {
            let _ = write!(
                s,
                "\n{} {} {} age {}s idle {}s",
                r.session_id, r.transport, r.cwd, r.age_secs, r.idle_secs
            );
            if let Some(c) = &r.running {
                let _ = write!(s, " running: {c}");
            }
        }
        s
    }
}

/// A policy decision: `policy_check`'s result, and the structured content of a denial.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DecisionOutput {
    /// `allow`, `ask` (a human must approve) or `deny`.
    pub verdict: String,
    /// Why, in one line.
    pub reason: String,
    /// Set when the command could not be parsed (then the verdict is `deny`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parse_error: Option<String>,
    /// The directory the decision assumed.
    pub cwd: String,
    /// Every fact the command was split into, with its own decision.
    pub facts: Vec<FactOutput>,
    /// Set on a denial from `session_exec`: nothing ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denied: Option<bool>,
}

/// Bytes of a fact's command shown with it, at most.
const SHOWN_COMMAND_BYTES: usize = 512;

/// A fact's command as shown with the fact: whole, or its first [`SHOWN_COMMAND_BYTES`]
/// and how long it is. Every fact of a command carries its text, so one command of many
/// words (`cat f0 f1 …`, thousands of path facts) would repeat a long text thousands of
/// times in the answer.
fn shown_command(text: &str) -> String {
    if text.len() <= SHOWN_COMMAND_BYTES {
        return text.to_string();
    }
    let cut = execkit_protect::floor_boundary(text, SHOWN_COMMAND_BYTES);
    format!("{}… ({} bytes)", &text[..cut], text.len())
}

/// One fact and its decision.
#[derive(Debug, Serialize, JsonSchema)]
pub struct FactOutput {
    /// Cedar action (`exec`, `write_path`, `path_arg`, `chdir`, `connect`, ...).
    pub action: String,
    /// Cedar resource, e.g. `Program::"rm"`.
    pub resource: String,
    /// The simple command it came from.
    pub command: String,
    /// `allow`, `ask` or `deny`.
    pub verdict: String,
    /// Why.
    pub reason: String,
    /// The policies that determined it (forbids for a denial, `@ask` permits for an ask).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<PolicyOutput>,
}

/// A determining policy.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PolicyOutput {
    /// Its `@id`.
    pub id: String,
    /// `permit` or `forbid`.
    pub effect: String,
    /// Its `@advice`: what to do instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advice: Option<String>,
}

impl DecisionOutput {
    /// From the engine's decision. Allowed facts keep their permit ids only when asked
    /// (`with_permits`), so denials stay short.
    pub fn from(d: &Decision, cwd: &str, reason: String, with_permits: bool) -> DecisionOutput {
        DecisionOutput {
            verdict: d.verdict.as_str().to_string(),
            reason,
            parse_error: d.parse_error.clone(),
            cwd: cwd.to_string(),
            facts: d
                .facts
                .iter()
                .map(|f| FactOutput {
                    action: f.action.to_string(),
                    resource: f.resource.clone(),
                    command: shown_command(&f.command),
                    verdict: f.verdict.as_str().to_string(),
                    reason: f.reason.clone(),
                    policies: if f.verdict == Verdict::Allow && !with_permits {
                        Vec::new()
                    } else {
                        f.policies
                            .iter()
                            .map(|p| PolicyOutput {
                                id: p.id.clone(),
                                effect: p.effect.to_string(),
                                advice: p.advice.clone(),
                            })
                            .collect()
                    },
                })
                .collect(),
            denied: None,
        }
    }

    /// The verdict line, then each fact that is not allowed with its policies and advice.
    pub fn render(&self) -> String {
        let head = if self.denied == Some(true) {
            if self.verdict == "ask" {
                "not run (needs approval)"
            } else {
                "denied"
            }
        } else {
            self.verdict.as_str()
        };
        // Each piece of text appears once: the reason line already carries the parse error
        // or the first blocking policy's advice.
        let mut s = format!("{head}: {}", self.reason);
        if let Some(e) = &self.parse_error {
            if !self.reason.contains(e.as_str()) {
                let _ = write!(s, "\nparse error: {e}");
            }
        }
        for f in self.facts.iter().filter(|f| f.verdict != "allow") {
            let _ = write!(s, "\n- {} {} [{}]", f.action, f.resource, f.verdict);
            for p in &f.policies {
                let _ = write!(s, " {}", p.id);
                match &p.advice {
                    Some(a) if !s.contains(a.as_str()) => {
                        let _ = write!(s, ": {a}");
                    }
                    _ => {}
                }
            }
        }
        s
    }
}

/// The stable kind of a tool error that is not a policy decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The arguments are malformed, unknown or out of range.
    BadArguments,
    /// No session has this id (it was destroyed, reaped as idle, or never existed).
    UnknownSession,
    /// The feature (e.g. a transport) is not available in this build.
    NotAvailable,
    /// An operator limit (the session cap) was reached.
    Limit,
    /// The workspace is not allowed or does not exist.
    Workspace,
    /// The session cannot run commands (its shell ended, it failed to start, I/O failed).
    Session,
    /// The client cancelled the call before the command started.
    Cancelled,
    /// No background process has this id (it was forgotten after it exited, or never
    /// existed).
    UnknownProcess,
    /// A background process could not be used (its stdin is closed or full, it exited).
    Process,
    /// A human declined.
    Denied,
    /// The audit log cannot record the decision (full, read-only, immutable): nothing runs
    /// and no session opens until the operator fixes it.
    AuditUnavailable,
}

/// The structured content of a tool error that is not a policy decision.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ErrorOutput {
    /// What kind of error it is.
    pub error: ErrorKind,
    /// For humans and agents.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_command_is_shown_cut_with_its_length() {
        assert_eq!(shown_command("ls -la"), "ls -la");
        let exact = "a".repeat(SHOWN_COMMAND_BYTES);
        assert_eq!(shown_command(&exact), exact);
        let long = format!("cat {}", "f ".repeat(5000));
        let shown = shown_command(&long);
        assert_eq!(
            shown,
            format!("{}… (10004 bytes)", &long[..SHOWN_COMMAND_BYTES])
        );
        // Cut on a character boundary: `é` is two bytes, the 512th byte is inside one.
        let wide = format!("x{}", "é".repeat(600));
        let shown = shown_command(&wide);
        assert!(
            shown.starts_with(&wide[..SHOWN_COMMAND_BYTES - 1]),
            "{shown}"
        );
        assert!(shown.ends_with("é… (1201 bytes)"), "{shown}");
    }

    fn fact(id: &str, advice: &str) -> FactOutput {
        FactOutput {
            action: "path_arg".into(),
            resource: "Path::\"/root/.ssh\"".into(),
            command: "rm -rf ~/.ssh".into(),
            verdict: "deny".into(),
            reason: "forbidden".into(),
            policies: vec![PolicyOutput {
                id: id.into(),
                effect: "forbid".into(),
                advice: Some(advice.into()),
            }],
        }
    }

    #[test]
    fn a_denial_renders_each_advice_once() {
        let out = DecisionOutput {
            verdict: "deny".into(),
            reason: "path_arg Path::\"/root/.ssh\": forbidden (Keep out of credentials.)".into(),
            parse_error: None,
            cwd: "/w".into(),
            facts: vec![
                fact("deny-credential-files", "Keep out of credentials."),
                fact("deny-write-system-dirs", "Never write system dirs."),
            ],
            denied: Some(true),
        };
        let text = out.render();
        assert!(text.starts_with("denied: "), "{text}");
        assert_eq!(
            text.matches("Keep out of credentials.").count(),
            1,
            "{text}"
        );
        assert_eq!(
            text.matches("Never write system dirs.").count(),
            1,
            "{text}"
        );
        assert!(text.contains("deny-credential-files"), "{text}");
    }
}
