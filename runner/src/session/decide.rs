//! The decision on a command in the session's state now: the live facts the policies
//! ask about (paths, PATH, definitions), the decision itself off the async workers when
//! it is long, and its audit record; Ask passes only with an approval that covers it.

use super::state::{current, Origin, Session, Shown, State};
use crate::approval::{asking_facts, Approval};
use crate::result::{micros, Denial, ExecError, Stages};
use execkit_audit::AuditEvent;
use execkit_engine::{Decision, DecisionEnv, LiveQueries, Prepared, Verdict};
use std::sync::Arc;
use std::time::Instant;

/// Commands at least this long are parsed and decided on tokio's blocking pool. At the
/// script limits one decision can take most of a second, which would hold the
/// async worker every other session's requests need; the short commands agents send nearly
/// always are decided in place, where the hand-off to the pool would cost more than their
/// decision (~50–150 µs).
pub(super) const OFF_THREAD_FROM: usize = 64 * 1024;

/// The async form of [`execkit_engine::Engine::decide`]: `engine`'s decision on `command`
/// in `env`, made on the blocking pool when the command is long (see [`OFF_THREAD_FROM`]),
/// for sessions and for async callers deciding outside one (a dry run).
pub async fn decide(
    engine: &Arc<execkit_engine::Engine>,
    command: &str,
    env: &DecisionEnv,
) -> Decision {
    off_thread_if_long(engine, command, env, |e, c, env| e.decide(c, env)).await
}

/// `f(engine, command, env)`, on the blocking pool when `command` is long (the command and
/// the environment then copied to it). A panic in `f` is the caller's, as in place; should
/// the pool refuse the task (the runtime shutting down), `f` runs in place.
pub(super) async fn off_thread_if_long<T, F>(
    engine: &Arc<execkit_engine::Engine>,
    command: &str,
    env: &DecisionEnv,
    f: F,
) -> T
where
    T: Send + 'static,
    F: Fn(&execkit_engine::Engine, &str, &DecisionEnv) -> T + Send + Sync + 'static,
{
    if command.len() < OFF_THREAD_FROM {
        return f(engine, command, env);
    }
    let (shared, text, owned) = (engine.clone(), command.to_string(), env.clone());
    let f = Arc::new(f);
    let g = f.clone();
    match tokio::task::spawn_blocking(move || g(&shared, &text, &owned)).await {
        Ok(v) => v,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => f(engine, command, env),
    }
}

impl Session {
    /// The policy decision for a command in this session's current state, without running it.
    pub async fn decide(&self, command: &str) -> Decision {
        let cwd = self.cwd().await;
        let mut stages = Stages::default();
        let env = self.decision_env(&cwd, None);
        let (prepared, env) = self.prepare(command, env, &mut stages).await;
        let enforcement = self.state.lock().await.enforcement.clone();
        self.decide_prepared(command, &prepared, &env, &enforcement)
            .await
    }

    /// `command` parsed once in `env` (see [`execkit_engine::Engine::prepare`]), and `env`
    /// with the live lookups its facts ask for.
    pub(super) async fn prepare(
        &self,
        command: &str,
        env: DecisionEnv,
        stages: &mut Stages,
    ) -> (Arc<Prepared>, DecisionEnv) {
        let (prepared, queries, parsed_in, read_in) =
            off_thread_if_long(&self.config.engine, command, &env, |e, c, env| {
                let start = Instant::now();
                let p = e.prepare(c, env);
                let parsed = Instant::now();
                let q = e.live_queries(&p, env);
                (Arc::new(p), q, parsed - start, parsed.elapsed())
            })
            .await;
        stages.parse_us = micros(parsed_in);
        stages.live_queries_us = micros(read_in);
        let looked_up = Instant::now();
        let env = self.live_env(queries, env).await;
        stages.live_lookups_us = micros(looked_up.elapsed());
        (prepared, env)
    }

    /// The decision on a prepared command (off the async workers when it is long), with
    /// the writes the sandbox of `enforcement` will refuse refused.
    async fn decide_prepared(
        &self,
        command: &str,
        prepared: &Arc<Prepared>,
        env: &DecisionEnv,
        enforcement: &execkit_sandbox::Enforcement,
    ) -> Decision {
        let p = prepared.clone();
        let mut decision =
            off_thread_if_long(&self.config.engine, command, env, move |e, c, env| {
                e.decide_prepared(c, &p, env)
            })
            .await;
        crate::kernel_prediction::refuse_unwritable(&mut decision, enforcement);
        crate::kernel_prediction::refuse_unreachable(&mut decision, enforcement);
        decision
    }

    /// `env` with the real locations (through symlinks, on the target) of the paths the
    /// command names.
    async fn live_env(&self, q: LiveQueries, mut env: DecisionEnv) -> DecisionEnv {
        let shell_path = self.state_path().await;
        // The command's own `PATH=WORKSPACE_DIR:$PATH` comes first.
        let path_var = match (q.path_dirs.is_empty(), shell_path) {
            (true, p) => p,
            (false, p) => Some(format!(
                "{}:{}",
                q.path_dirs.join(":"),
                p.unwrap_or_else(|| crate::config::DEFAULT_PATH.to_string())
            )),
        };
        let cwd = env.cwd.clone().unwrap_or_else(|| env.workspace.clone());
        let (paths, programs) = match &self.origin {
            Origin::Local => (
                crate::live_paths::local(&q.paths),
                crate::live_paths::local_programs(&q.programs, path_var.as_deref(), &cwd),
            ),
            Origin::Remote { control, .. } => {
                crate::live_paths::remote(
                    &current(control),
                    &q.paths,
                    &q.programs,
                    path_var.as_deref(),
                    &cwd,
                )
                .await
            }
        };
        env.real_paths = paths;
        // Programs found outside the system's directories (the workspace, home, /tmp) are
        // judged as the files they are: workspace code, not the trusted tool of that name.
        let untrusted = [
            env.workspace.as_str(),
            env.home.as_str(),
            "/tmp",
            "/var/tmp",
            "/dev/shm",
        ];
        env.real_programs = programs
            .into_iter()
            .filter(|(_, p)| {
                untrusted
                    .iter()
                    .any(|d| p == d || p.starts_with(&format!("{}/", d.trim_end_matches('/'))))
            })
            .collect();
        env
    }

    /// The shell's PATH as the last command left it (`None` before the first command
    /// over SSH or Docker: then the target's login PATH).
    pub(super) async fn state_path(&self) -> Option<String> {
        self.last_path
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Decides `command` in the session's state now, writes the decision record, and
    /// returns the decision if it may run (Allow, or Ask covered by `approval`), with the
    /// command as parsed for it.
    pub(super) async fn authorize(
        &self,
        st: &State,
        command: &str,
        approval: Option<&Approval>,
        shown: &Shown<'_>,
        stages: &mut Stages,
    ) -> Result<(Decision, Arc<Prepared>), ExecError> {
        let cwd = st.cwd.clone();
        let approver = approval.map(|a| a.approver.as_str());
        let env = self.decision_env(&cwd, approver);
        let (prepared, env) = self.prepare(command, env, stages).await;
        let deciding = Instant::now();
        let decision = self
            .decide_prepared(command, &prepared, &env, &st.enforcement)
            .await;
        stages.decide_us = micros(deciding.elapsed());
        let recording = Instant::now();
        let redact = |t: &str| shown.redact(t);
        let mut record = crate::audit_record::decision_record(
            self.who(),
            crate::audit_record::Decided::Command(command),
            &env,
            &decision,
            &redact,
        );
        let approved = match (decision.verdict, approval) {
            (Verdict::Allow, _) => true,
            (Verdict::Ask, Some(a)) => {
                a.command == command && asking_facts(&decision).iter().all(|f| a.facts.contains(f))
            }
            _ => false,
        };
        if approved && decision.verdict == Verdict::Ask {
            record.approved_by = approver.map(str::to_string);
        }
        let recorded = self.audit(AuditEvent::Decision(record));
        stages.audit_decision_us = micros(recording.elapsed());
        recorded.map_err(ExecError::AuditUnavailable)?;
        if !approved {
            let mut denial = Denial::from_decision(decision);
            if denial.verdict == Verdict::Ask && approval.is_some() {
                denial.reason = format!(
                    "the approval does not cover this command as it stands now: {}",
                    denial.reason
                );
            }
            return Err(ExecError::Denied(Box::new(denial)));
        }
        Ok((decision, prepared))
    }
}
