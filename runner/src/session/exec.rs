//! One command from decision to result: the checks before it runs, its run, the limits
//! it hit, its protected output, and the command and transcript records.

use super::run::Run;
use super::state::{Session, Shown};
use crate::result::{micros, ExecError, ExecOptions, ExecResult, LimitHit, Stages};
use crate::sandbox::cgroup::Counters;
use crate::shell::Shell;
use execkit_audit::{AuditEvent, CommandRecord, StreamSummary};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Refuses what can never be a command line: NUL bytes, and the framing's reserved names.
pub(super) fn check_command(command: &str) -> Result<(), ExecError> {
    if command.contains('\0') {
        return Err(ExecError::Rejected(
            "the command contains a NUL byte".into(),
        ));
    }
    if command.contains("__ek_") {
        return Err(ExecError::Rejected(
            "names starting with `__ek_` are reserved for the session's framing".into(),
        ));
    }
    Ok(())
}

/// True if every program the command runs only looks at or frees disk space, and nothing
/// is redirected into a file.
pub(super) fn frees_space(d: &execkit_engine::Decision) -> bool {
    use execkit_engine::Action;
    d.facts.iter().all(|f| match f.action {
        Action::Exec => crate::disk::CLEANUP_PROGRAMS.contains(&f.program.as_str()),
        Action::WritePath => false,
        _ => true,
    })
}

/// The limits a command ran into: the cgroup's counters moved (memory, processes), or a
/// writer died of `SIGXFSZ` (bash's exit status 128+25, or its report on stderr).
pub(super) fn limits_hit(
    res: &crate::config::Resources,
    (before, after): (Counters, Counters),
    exit_code: Option<i32>,
    stderr: &str,
) -> Vec<LimitHit> {
    let mut hits = Vec::new();
    if after.oom_kills > before.oom_kills {
        if let Some(limit_bytes) = res.memory_bytes {
            hits.push(LimitHit::Memory { limit_bytes });
        }
    }
    // The cgroup counted refused forks; without one (rlimits, remote targets) bash says
    // so on stderr when a fork fails.
    let fork_refused = stderr.contains("fork: Resource temporarily unavailable")
        || stderr.contains("fork: retry: Resource temporarily unavailable");
    if after.pids_max > before.pids_max || fork_refused {
        if let Some(max_processes) = res.processes {
            hits.push(LimitHit::Processes { max_processes });
        }
    }
    if let Some(limit_bytes) = res.file_bytes {
        if exit_code == Some(128 + libc::SIGXFSZ) || stderr.contains("File size limit exceeded") {
            hits.push(LimitHit::FileSize { limit_bytes });
        }
    }
    hits
}

impl Session {
    /// Runs one command: the policy check, then the shell, then output protection.
    ///
    /// The options narrow what the operator configured (timeout, output budgets). A
    /// decision of Ask is refused like a denial (with [`ExecError::Denied`] and the Ask
    /// verdict) unless the options carry a human's [`Approval`]: then the decision is taken
    /// again with `identity.approved_by` set (so policies can tell); Deny still refuses, and
    /// so does an Ask about a fact the approval does not name. The audit record carries the
    /// approver.
    pub async fn exec(&self, command: &str, opts: &ExecOptions) -> Result<ExecResult, ExecError> {
        let started = Instant::now();
        let mut stages = Stages::default();
        let approval = opts.approval.as_ref();
        check_command(command)?;
        let out = self.protector.stream(&opts.stdout)?;
        let err = self.protector.stream(&opts.stderr)?;
        let limits = self.config.limits;
        let timeout = opts
            .timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(limits.default_timeout)
            .min(limits.max_timeout);

        let mut st = self.state.lock().await;
        if st.closed {
            return Err(ExecError::Closed);
        }
        let cwd = st.cwd.clone();
        let shown = Shown::new(self, command, &cwd);
        let (decision, prepared) = self
            .authorize(&st, command, approval, &shown, &mut stages)
            .await?;
        let checking = Instant::now();
        if st.shell.is_none() {
            let why = st.gone.clone().unwrap_or_else(|| "not running".into());
            return Err(ExecError::ShellGone(why));
        }
        if let Some(limit_bytes) = self.config.limits.resources.workspace_bytes {
            if self.workspace_over(limit_bytes).await && !frees_space(&decision) {
                return Err(ExecError::WorkspaceFull { limit_bytes });
            }
        }
        let checkpoint = self.checkpoint_before(&st, command, &decision).await?;
        stages.checkpoint_us = micros(checking.elapsed());
        let running = Instant::now();
        let (run, counters, (runtime_denials, runtime_allowed)) = {
            let shell = st.shell.as_mut().ok_or(ExecError::Closed)?;
            let before = shell.counters();
            shell.guard_begin(
                command,
                shown.command(),
                &prepared,
                approval.map(|a| (&decision, a.approver.as_str())),
            );
            let run = Run::new(self, shell, out, err, timeout);
            let run = run.go(command).await;
            let after = st.shell.as_ref().map(Shell::counters).unwrap_or(before);
            let runtime = st
                .shell
                .as_ref()
                .map(Shell::guard_finish)
                .unwrap_or_default();
            (run, (before, after), runtime)
        };
        let run = match run {
            Ok(r) => r,
            Err(e) => {
                self.running.seq.store(0, Ordering::SeqCst);
                if let Some(mut sh) = st.shell.take() {
                    self.keep_exports(&sh).await;
                    sh.kill_all();
                }
                st.gone = Some(format!("lost contact with the shell: {e}"));
                return Err(ExecError::Io(e));
            }
        };
        self.running.seq.store(0, Ordering::SeqCst);
        let streamed = run.protect;
        stages.run_us = micros(running.elapsed().saturating_sub(streamed));
        let finishing = Instant::now();
        let stdout = run.out.finish();
        let stderr = run.err.finish();
        stages.protect_us = micros(streamed + finishing.elapsed());
        if let Some(c) = run.cwd {
            self.set_cwd(&mut st, c);
        }
        if let Some(p) = run.path {
            *self.last_path.lock().unwrap_or_else(|e| e.into_inner()) = Some(p);
        }
        // The aliases and functions it defined, for reading the next commands.
        let defined = prepared.definitions();
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(&defined);
        if let Some(why) = run.shell_gone {
            if let Some(mut sh) = st.shell.take() {
                self.keep_exports(&sh).await;
                sh.kill_all();
            }
            st.gone = Some(why);
        }
        let mut limits_hit = limits_hit(
            &self.config.limits.resources,
            counters,
            run.exit_code,
            &stderr.text,
        );
        let shell_ended = st.shell.is_none();
        if let (Some(why), Some(limit)) = (st.gone.as_mut(), limits_hit.first()) {
            if shell_ended && !why.contains("connection") {
                *why = format!(
                    "{why}: {limit}; restart the session (its cwd and exported variables are restored)"
                );
            }
        }
        if let Some(limit_bytes) = self.config.limits.resources.workspace_bytes {
            if self.workspace_over(limit_bytes).await {
                limits_hit.push(LimitHit::Workspace { limit_bytes });
            }
        }
        let mut redactions = stdout.redactions.clone();
        for (k, v) in &stderr.redactions {
            *redactions.entry(k.clone()).or_default() += v;
        }
        let mut result = ExecResult {
            stdout: stdout.text,
            stderr: stderr.text,
            exit_code: run.exit_code,
            duration_ms: run.duration.as_millis() as u64,
            cwd: st.cwd.clone(),
            timed_out: run.timed_out,
            cancelled: run.cancelled,
            shell_exited: st.shell.is_none(),
            shell_exit_reason: st.shell.is_none().then(|| st.gone.clone()).flatten(),
            stdout_report: stdout.report,
            stderr_report: stderr.report,
            redactions,
            decision,
            limits_hit,
            background_jobs: run.left_background,
            checkpoint,
            runtime_denials,
            runtime_allowed,
            stages,
        };
        let recording = Instant::now();
        let _ = self.audit(AuditEvent::Command(CommandRecord {
            who: self.who(),
            command: shown.command().to_string(),
            cwd: shown.cwd().to_string(),
            exit_code: result.exit_code,
            duration_ms: result.duration_ms,
            timed_out: result.timed_out,
            cancelled: result.cancelled,
            stdout: StreamSummary::from(&result.stdout_report),
            stderr: StreamSummary::from(&result.stderr_report),
            redactions: result.redactions.clone(),
        }));
        result.stages.audit_command_us = micros(recording.elapsed());
        self.transcript(shown.command(), &result);
        result.stages.total_us = micros(started.elapsed());
        Ok(result)
    }

    /// The command's output as the agent got it, cut to the operator's transcript size,
    /// to the observers (and the audit log when the operator keeps transcripts there). A
    /// transcript the log cannot take is reported by its recovery record: the command has
    /// run and its result goes back regardless.
    pub(super) fn transcript(&self, command: &str, result: &ExecResult) {
        let t = self.config.transcripts;
        if t.max_bytes == 0 || (self.config.observer.is_none() && !t.in_audit) {
            return;
        }
        let (stdout, stderr, omitted_bytes) =
            crate::result::cut_transcript(&result.stdout, &result.stderr, t.max_bytes);
        let event = AuditEvent::Transcript(execkit_audit::TranscriptRecord {
            who: self.who(),
            command: command.to_string(),
            stdout,
            stderr,
            omitted_bytes,
        });
        if t.in_audit {
            let _ = self.audit(event);
        } else if let Some(observe) = &self.config.observer {
            observe(&event);
        }
    }

    /// True if the workspace uses more than `cap` bytes (walked off the async threads).
    pub(super) async fn workspace_over(&self, cap: u64) -> bool {
        let ws = self.config.workspace.clone();
        tokio::task::spawn_blocking(move || crate::disk::used_within(&ws, cap).is_none())
            .await
            // A walk that failed to finish counts as over the cap (fail closed).
            .unwrap_or(true)
    }
}
