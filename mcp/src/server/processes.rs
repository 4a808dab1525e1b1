//! The `process_*` tools: background processes of a session (dev servers, watchers,
//! REPLs) under the same policies, sandbox, redaction and audit as `session_exec`.

use super::approval;
use super::args::ExecArgs;
use super::output::ErrorKind;
use super::process_io::{
    ListArgs, ListOutput, ProcessRow, ReadArgs, ReadOutput, SignalArgs, SignalOutput, StartArgs,
    WaitArgs, WaitOutput, WriteArgs, WriteOutput,
};
use super::{denied, echo, fail, ok, ExecKitServer, Settled, ToolResult};
use execkit_engine::Verdict;
use execkit_runner::process::{
    until_pattern, Cursor, ProcessError, ProcessHandle, ProcessSignal, SpawnOptions, WaitReason,
};
use execkit_runner::{Approval, ExecError, Session};
use rmcp::handler::server::common::schema_for_output;
use rmcp::handler::server::tool::{InputResponses, RequestState};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::ProgressNotificationParam;
use rmcp::service::RequestContext;
use rmcp::{tool, tool_router, RoleServer};
use std::time::Duration;

/// A runner error about a process as a tool error.
fn process_fail(e: ProcessError) -> ToolResult {
    let kind = match &e {
        ProcessError::Unknown(_) => ErrorKind::UnknownProcess,
        ProcessError::Cap { .. } => ErrorKind::Limit,
        ProcessError::BadCursor(_) | ProcessError::BadPattern(_) => ErrorKind::BadArguments,
        ProcessError::Unsupported(_) => ErrorKind::NotAvailable,
        ProcessError::AuditUnavailable(_) => ErrorKind::AuditUnavailable,
        _ => ErrorKind::Process,
    };
    fail(kind, e.to_string())
}

impl ExecKitServer {
    /// The process with this id, in whichever session holds it.
    fn find_process(&self, id: &str) -> Result<ProcessHandle, ProcessError> {
        for e in self.entries() {
            if let Ok(p) = e.session.process(id) {
                e.touch();
                return Ok(p);
            }
        }
        Err(ProcessError::Unknown(echo(id)))
    }

    /// Starts a process if the identity's cap allows it: the count and the start happen
    /// under one lock, so calls that arrive together cannot all pass the count.
    async fn spawn_within_cap(
        &self,
        session: &Session,
        command: &str,
        opts: &SpawnOptions,
    ) -> Result<ProcessHandle, ExecError> {
        let _one_at_a_time = self.shared.process_starts.lock().await;
        self.identity_process_cap().map_err(ExecError::Process)?;
        session.spawn(command, opts).await
    }

    /// On HTTP, the background processes one identity may have running at once.
    fn identity_process_cap(&self) -> Result<(), ProcessError> {
        if !matches!(
            super::caller::Caller::current(),
            super::caller::Caller::Token(_)
        ) {
            return Ok(());
        }
        let cap = self.shared.op.config.http.processes_per_identity;
        let running = self
            .entries()
            .iter()
            .flat_map(|e| e.session.processes())
            .filter(|p| {
                matches!(
                    p.state,
                    execkit_runner::process::ProcessState::Running { .. }
                )
            })
            .count();
        if running >= cap {
            return Err(ProcessError::Cap {
                running,
                cap,
                scope: "per identity",
            });
        }
        Ok(())
    }

    fn cursor(raw: Option<&str>) -> Result<Option<Cursor>, ProcessError> {
        raw.map(|c| c.parse::<Cursor>()).transpose()
    }
}

#[tool_router(router = process_router, vis = "pub(crate)")]
impl ExecKitServer {
    /// Starts a background process.
    #[tool(
        description = "Start a long-running command in the background (dev server, watcher, REPL, tail -f) in a session's current cwd, environment and sandbox. It is checked against the policies exactly like session_exec (a denial starts nothing). Returns a process_id for process_read / process_write / process_wait / process_signal.",
        annotations(
            title = "Start background process",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = true
        ),
        output_schema = schema_for_output::<ProcessRow>()
    )]
    async fn process_start(
        &self,
        Parameters(a): Parameters<StartArgs>,
        RequestState(state): RequestState,
        InputResponses(responses): InputResponses,
        ctx: RequestContext<RoleServer>,
    ) -> ToolResult {
        let Some(entry) = self.entry(&a.session_id) else {
            return self.unknown_session(&a.session_id);
        };
        let mut opts = SpawnOptions::default();
        opts.name = a.name.as_ref().map(|n| n.chars().take(64).collect());
        opts.pty = a.pty.unwrap_or(false);
        opts.rows = a.rows;
        opts.cols = a.cols;
        let session: &Session = &entry.session;
        let cwd = session.cwd().await;
        let approver = self.approver();
        let mut approval: Option<Approval> = None;
        if let Some(handle) = state {
            let Some(p) = self.shared.approvals.take(&handle) else {
                return fail(
                    ErrorKind::BadArguments,
                    "unknown or expired approval state; call process_start again",
                );
            };
            if p.session_id != a.session_id || p.command != a.command {
                return fail(
                    ErrorKind::BadArguments,
                    "the approval state belongs to another command; call process_start again",
                );
            }
            if !approval::approved_in(responses.as_ref()) {
                return fail(ErrorKind::Denied, "the human declined");
            }
            approval = Some(Approval {
                approver: approver.clone(),
                command: a.command.clone(),
                facts: p.facts,
            });
        }
        let _turn = entry.exec_lock.lock().await;
        opts.approval = approval;
        let mut started = self.spawn_within_cap(session, &a.command, &opts).await;
        if let Err(ExecError::Denied(d)) = &started {
            if d.verdict == Verdict::Ask && opts.approval.is_none() {
                let as_exec = ExecArgs {
                    session_id: a.session_id.clone(),
                    command: a.command.clone(),
                    budget: None,
                    timeout_ms: None,
                };
                match self
                    .ask(&entry, &as_exec, &cwd, &d.decision, &approver, &ctx)
                    .await?
                {
                    Settled::Deferred(r) => return Ok(r),
                    Settled::Declined(why) => return denied(d, &cwd, Some(&why)),
                    Settled::Approved(ap) => {
                        opts.approval = Some(ap);
                        started = self.spawn_within_cap(session, &a.command, &opts).await;
                    }
                }
            }
        }
        match started {
            Ok(p) => {
                let row = ProcessRow::from(p.info());
                ok(format!("started {}", row.line()), &row)
            }
            Err(ExecError::Denied(d)) => denied(&d, &cwd, None),
            Err(ExecError::Process(e)) => process_fail(e),
            Err(e @ ExecError::Rejected(_)) => fail(ErrorKind::BadArguments, e.to_string()),
            Err(e) => fail(ErrorKind::Session, e.to_string()),
        }
    }

    /// Reads new output.
    #[tool(
        description = "Read a background process's new output since a cursor (default: since your previous read), ANSI-stripped and redacted. Each line is returned once; pass next_cursor back. If output fell out of the bounded buffer the result says how many bytes were lost.",
        annotations(
            title = "Read background process output",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        ),
        output_schema = schema_for_output::<ReadOutput>()
    )]
    async fn process_read(&self, Parameters(a): Parameters<ReadArgs>) -> ToolResult {
        let p = match self.find_process(&a.process_id) {
            Ok(x) => x,
            Err(e) => return process_fail(e),
        };
        let cursor = match Self::cursor(a.cursor.as_deref()) {
            Ok(c) => c,
            Err(e) => return process_fail(e),
        };
        let mut out = ReadOutput::from(
            p.id(),
            p.read(cursor, a.max_bytes.map(|m| m.min(1 << 20) as usize)),
        );
        if let Some(b) = &a.budget {
            let budget = match b.to_budget() {
                Ok(b) => b,
                Err(e) => return fail(ErrorKind::BadArguments, e.to_string()),
            };
            out.stdout = shape(&out.stdout, &budget);
            out.stderr = shape(&out.stderr, &budget);
        }
        ok(out.render(), &out)
    }

    /// Writes to stdin.
    #[tool(
        description = "Write text to a background process's stdin (add \\n to end a line); close: true closes stdin afterwards. Recorded in the audit log by size only.",
        annotations(
            title = "Write to background process",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        ),
        output_schema = schema_for_output::<WriteOutput>()
    )]
    async fn process_write(&self, Parameters(a): Parameters<WriteArgs>) -> ToolResult {
        let p = match self.find_process(&a.process_id) {
            Ok(x) => x,
            Err(e) => return process_fail(e),
        };
        let close = a.close.unwrap_or(false);
        match p.write_stdin(a.data.as_bytes(), close).await {
            Ok(n) => {
                let out = WriteOutput {
                    process_id: p.id().to_string(),
                    bytes: n as u64,
                    stdin_closed: p.info().stdin_closed,
                };
                let text = format!(
                    "wrote {n} bytes to {}{}",
                    out.process_id,
                    if out.stdin_closed {
                        " · stdin closed"
                    } else {
                        ""
                    }
                );
                ok(text, &out)
            }
            Err(e) => process_fail(e),
        }
    }

    /// Signals the process group.
    #[tool(
        description = "Send a signal to a background process's whole process group: INT, TERM, KILL, HUP, QUIT, USR1, USR2, STOP or CONT.",
        annotations(
            title = "Signal background process",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = false
        ),
        output_schema = schema_for_output::<SignalOutput>()
    )]
    async fn process_signal(&self, Parameters(a): Parameters<SignalArgs>) -> ToolResult {
        let Some(sig) = ProcessSignal::parse(&a.signal) else {
            return fail(
                ErrorKind::BadArguments,
                format!(
                    "unknown signal `{}`: use one of INT, TERM, KILL, HUP, QUIT, USR1, USR2, STOP, CONT",
                    echo(&a.signal)
                ),
            );
        };
        let p = match self.find_process(&a.process_id) {
            Ok(x) => x,
            Err(e) => return process_fail(e),
        };
        if let Err(e) = p.signal(sig).await {
            return process_fail(e);
        }
        // Give a fatal signal a moment to land, so the answer can say it did.
        if !matches!(sig, ProcessSignal::Stop | ProcessSignal::Cont) {
            p.wait(Duration::from_millis(200), None, None, Some(0))
                .await;
        }
        let out = SignalOutput {
            process_id: p.id().to_string(),
            signal: sig.name().to_string(),
            state: p.state().into(),
        };
        ok(out.render(), &out)
    }

    /// Waits for exit, a pattern or a timeout.
    #[tool(
        description = "Wait until a background process exits, its new output matches `until` (a regular expression, e.g. `Listening on`), or timeout_ms elapses; returns the output seen since the cursor. Sends progress notifications while waiting and stops waiting when cancelled.",
        annotations(
            title = "Wait for background process",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        ),
        output_schema = schema_for_output::<WaitOutput>()
    )]
    async fn process_wait(
        &self,
        Parameters(a): Parameters<WaitArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> ToolResult {
        let p = match self.find_process(&a.process_id) {
            Ok(x) => x,
            Err(e) => return process_fail(e),
        };
        let cursor = match Self::cursor(a.cursor.as_deref()) {
            Ok(c) => c,
            Err(e) => return process_fail(e),
        };
        let until = match a.until.as_deref().map(until_pattern).transpose() {
            Ok(u) => u,
            Err(e) => return process_fail(e),
        };
        let max_ms = self.shared.op.config.limits.max_timeout_ms;
        let timeout = Duration::from_millis(a.timeout_ms.min(max_ms));
        let max_bytes = a.max_bytes.map(|m| m.min(1 << 20) as usize);
        let token = ctx.meta.get_progress_token();
        let every = Duration::from_millis(self.shared.op.config.limits.progress_interval_ms);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        let waiting = p.wait(timeout, until.as_ref(), cursor, max_bytes);
        tokio::pin!(waiting);
        let started = std::time::Instant::now();
        let outcome = loop {
            tokio::select! {
                w = &mut waiting => break w,
                _ = ctx.ct.cancelled() => {
                    let mut w = execkit_runner::process::WaitOutcome {
                        reason: WaitReason::Cancelled,
                        matched: None,
                        output: p.read(cursor, max_bytes),
                        waited_ms: started.elapsed().as_millis() as u64,
                    };
                    w.reason = WaitReason::Cancelled;
                    break w;
                }
                _ = tick.tick() => {
                    if let Some(token) = &token {
                        let i = p.info();
                        let param = ProgressNotificationParam::new(token.clone(), started.elapsed().as_millis() as f64)
                            .with_message(format!(
                                "waiting {:.1} s · {} lines stdout · {} lines stderr",
                                started.elapsed().as_secs_f64(),
                                i.stdout.lines,
                                i.stderr.lines
                            ));
                        if let Err(err) = ctx.peer.notify_progress(param).await {
                            tracing::debug!(%err, "progress notification not sent");
                        }
                    }
                }
            }
        };
        let out = WaitOutput::from(p.id(), outcome);
        ok(out.render(), &out)
    }

    /// Lists processes.
    #[tool(
        description = "List background processes (of one session or all): id, name, state, exit status, age, output totals.",
        annotations(
            title = "List background processes",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        ),
        output_schema = schema_for_output::<ListOutput>()
    )]
    async fn process_list(&self, Parameters(a): Parameters<ListArgs>) -> ToolResult {
        let mut processes = Vec::new();
        for e in self.entries() {
            if a.session_id.as_deref().is_some_and(|s| s != e.session.id()) {
                continue;
            }
            processes.extend(e.session.processes().into_iter().map(ProcessRow::from));
        }
        if let Some(s) = &a.session_id {
            if self.entry(s).is_none() {
                return self.unknown_session(s);
            }
        }
        let out = ListOutput { processes };
        ok(out.render(), &out)
    }
}

/// New text of one stream within a budget (line head/tail, character caps).
fn shape(text: &str, budget: &execkit_protect::Budget) -> String {
    match execkit_protect::Shaper::new(budget, execkit_protect::CaptureLimits::default()) {
        Ok(mut s) => {
            s.push(text);
            s.finish().text
        }
        Err(_) => text.to_string(),
    }
}
