//! Runtime decisions: every program a session's shell starts — the agent's commands, and
//! what they start in turn (a Makefile's recipes, a git hook, an npm script, a sourced
//! file's commands, `python -c 'os.system(…)'`) — is decided by the same policies at the
//! moment it starts, before it runs.
//!
//! The shell's sandbox carries a seccomp filter that stops every `execve`/`execveat` and
//! notifies a listener ([`execkit_sandbox::exec_notify`]). Locally the shell's process
//! sends the listener to this server before it executes the shell, and a thread here
//! ([`ExecGuard`]) answers; on a remote target the helper holds the listener and asks
//! this server over its link. Either way the [`RuntimeDecider`] decides the program as
//! the simple command it is (its words single-quoted: no shell reading happens, the
//! program knowledge does), in the caller's working directory. An `ask` verdict asks the
//! human through the session's runtime approver, if it has one, while the program waits
//! (refused without one, or on time-out); a program whose facts a human approved for the
//! running command passes without asking again.
//!
//! Every runtime decision is recorded in the audit log (a decision record with its
//! runtime context: the process, its parents, the command it ran under), and the refusals
//! come back in the command's result. Policy verdicts are remembered per (program,
//! arguments, cwd), so a build's thousands of identical compiler starts cost one decision.

use crate::audit_record::{decision_record, Decided};
use crate::config::{Observer, RuntimeApprover, RuntimeAsk};
use crate::result::RuntimeDenial;
use execkit_audit::{AuditEvent, AuditLog, RuntimeContext, Who};
use execkit_engine::{Decision, DecisionEnv, Engine, Verdict};
use execkit_helper::msg::ProgramStart;
use execkit_sandbox::exec_notify::{self, ScriptStarts, Supervisor};
use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the decider needs to decide and to record.
#[derive(Clone)]
pub(crate) struct GuardSpec {
    pub engine: Arc<Engine>,
    /// The session's decision environment (the cwd is each caller's).
    pub env: DecisionEnv,
    /// The session's shell program: the first exec of a local shell.
    pub shell: PathBuf,
    pub redact: Arc<dyn Fn(&str) -> String + Send + Sync>,
    pub who: Who,
    pub log: Option<Arc<Mutex<AuditLog>>>,
    pub observer: Option<Observer>,
    pub approver: Option<RuntimeApprover>,
    pub approval_timeout: Duration,
    /// Resolve the paths a start names through the session's own links on this machine
    /// (a local session; see `crate::runtime_paths`).
    pub live_paths: bool,
}

/// Makes a remote session's decider once the helper has said where the shell runs.
pub(crate) type DeciderFor =
    Box<dyn FnOnce(&execkit_helper::msg::Ready) -> Arc<RuntimeDecider> + Send>;

/// What the session tells the decider about the command running now, and what the
/// decider found during it.
#[derive(Default)]
struct Current {
    /// The command, redacted (empty between commands).
    command: String,
    /// The command as sent (empty between commands).
    raw: String,
    /// The command as the session parsed it, for
    /// [`RuntimeDecider::decided_with_command`].
    prepared: Option<Arc<execkit_engine::Prepared>>,
    /// Its simple commands with literal words, read when first needed.
    literal: Option<Arc<Vec<execkit_engine::LiteralCommand>>>,
    /// (action, resource) of facts a human approved for it.
    approved: Vec<(String, String)>,
    /// Who approved them.
    approver: Option<String>,
    denials: Vec<RuntimeDenial>,
    allowed: u64,
}

/// Remembered verdicts at most (anything past this is decided afresh after the memory is
/// cleared).
const MEMO: usize = 4096;

/// The decision on one program.
pub(crate) struct Judged {
    /// Let it run.
    pub allow: bool,
    /// A policy verdict that may be remembered (not a human's answer).
    pub remember: bool,
    /// Allowed as words the running command's own decision allowed.
    by_command: bool,
    decision: Option<Decision>,
    reason: String,
    approved_by: Option<String>,
}

impl Judged {
    /// An allow the policies gave this very start before.
    pub(crate) fn remembered() -> Judged {
        Judged {
            allow: true,
            remember: true,
            by_command: false,
            decision: None,
            reason: String::new(),
            approved_by: None,
        }
    }
}

/// Decides programs at their start for one session, and keeps what happened for the
/// running command's result. Shared by the local guard thread and the remote link.
pub(crate) struct RuntimeDecider {
    spec: GuardSpec,
    current: Mutex<Current>,
    /// Policy verdicts by [`memo_key`].
    memo: Mutex<HashMap<String, Verdict>>,
    /// Starts of execkit's own programs the session is about to make (a PTY's `script`),
    /// each let pass once.
    own: Mutex<Vec<(String, Vec<String>)>>,
    /// Connections a human approved, by (program, host, port): who approved them.
    approved_connections: Mutex<HashMap<ConnectionKey, String>>,
}

/// A connection as a human's approval is remembered: (program, host, port).
pub(crate) type ConnectionKey = (String, String, u16);

/// Approved connections remembered at most per session.
const APPROVED_CONNECTIONS_MAX: usize = 1024;

impl RuntimeDecider {
    pub(crate) fn new(spec: GuardSpec) -> Arc<RuntimeDecider> {
        Arc::new(RuntimeDecider {
            spec,
            current: Mutex::default(),
            memo: Mutex::default(),
            own: Mutex::default(),
            approved_connections: Mutex::default(),
        })
    }

    /// Who approved this (program, host, port) earlier in the session, if anyone did.
    pub(crate) fn approved_connection(&self, key: &ConnectionKey) -> Option<String> {
        self.approved_connections.lock().ok()?.get(key).cloned()
    }

    /// Remembers a human's approval of a connection for the rest of the session.
    pub(crate) fn remember_connection(&self, key: ConnectionKey, who: String) {
        if let Ok(mut m) = self.approved_connections.lock() {
            if m.len() >= APPROVED_CONNECTIONS_MAX {
                m.clear();
            }
            m.insert(key, who);
        }
    }

    /// A command starts: its text as sent and redacted, the directory it starts in (as
    /// `prepared`, the command parsed there), and its decision when a human approved it.
    pub(crate) fn begin(
        &self,
        raw: &str,
        command: &str,
        prepared: &Arc<execkit_engine::Prepared>,
        approved: Option<(&Decision, &str)>,
    ) {
        if let Ok(mut c) = self.current.lock() {
            *c = Current {
                command: command.to_string(),
                raw: raw.to_string(),
                prepared: Some(prepared.clone()),
                approved: approved
                    .map(|(d, _)| {
                        d.facts
                            .iter()
                            .map(|f| (f.action.name().to_string(), f.resource.clone()))
                            .collect()
                    })
                    .unwrap_or_default(),
                approver: approved.map(|(_, who)| who.to_string()),
                ..Current::default()
            };
        }
    }

    /// The command ended: what was refused during it, and how many programs started.
    pub(crate) fn finish(&self) -> (Vec<RuntimeDenial>, u64) {
        match self.current.lock() {
            Ok(mut c) => {
                let out = (std::mem::take(&mut c.denials), c.allowed);
                *c = Current::default();
                out
            }
            Err(_) => (Vec::new(), 0),
        }
    }

    fn command_of(start: &ProgramStart) -> String {
        std::iter::once(start.program.clone())
            .chain(start.argv.iter().skip(1).cloned())
            .map(|w| crate::frame::single_quote(&w))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Decides `start`; blocks while a human is asked.
    pub(crate) fn judge(&self, start: &ProgramStart) -> Judged {
        self.judge_linked(start, self.through_links(start))
    }

    /// [`RuntimeDecider::judge`] of a start whose [`RuntimeDecider::through_links`] is
    /// `linked`.
    pub(crate) fn judge_linked(&self, start: &ProgramStart, linked: bool) -> Judged {
        let key = memo_key(start);
        if !linked && self.remembered(&key) {
            return Judged::remembered();
        }
        if self.own_start(start) {
            // Not for the helper to remember: the next such start is the agent's own.
            return Judged {
                by_command: true,
                remember: false,
                ..Judged::remembered()
            };
        }
        let command = Self::command_of(start);
        let mut env = self.spec.env.clone();
        env.cwd = Some(start.cwd.clone());
        env.started_by = Some(start.caller.clone());
        let decision = if linked {
            crate::runtime_paths::decide_live(&self.spec.engine, &command, env)
        } else {
            self.spec.engine.decide(&command, &env)
        };
        let mut judged = Judged {
            allow: decision.verdict == Verdict::Allow,
            remember: decision.verdict != Verdict::Ask,
            by_command: false,
            reason: crate::result::Denial::reason_for(&decision),
            approved_by: None,
            decision: None,
        };
        if decision.verdict != Verdict::Allow && self.decided_with_command(start) {
            judged.allow = true;
            judged.remember = false;
            judged.by_command = true;
        } else if decision.verdict == Verdict::Ask {
            judged.approved_by = self.approval(start, &command, &decision);
            judged.allow = judged.approved_by.is_some();
            if !judged.allow {
                judged.reason = format!("{} (not approved)", judged.reason);
            }
        } else if let (false, Ok(mut m)) = (linked, self.memo.lock()) {
            if m.len() >= MEMO {
                m.clear();
            }
            m.insert(key, decision.verdict);
        }
        judged.decision = Some(decision);
        judged
    }

    /// The session is about to start one of execkit's own programs, `program` with
    /// exactly `argv` (its wrapper around a command the policies allowed): that start
    /// passes once.
    pub(crate) fn expect_own(&self, program: String, argv: Vec<String>) {
        if let Ok(mut o) = self.own.lock() {
            o.push((program, argv));
        }
    }

    /// Takes the expectation `start` matches, if any.
    fn own_start(&self, start: &ProgramStart) -> bool {
        let Ok(mut o) = self.own.lock() else {
            return false;
        };
        match o
            .iter()
            .position(|(p, a)| *a == start.argv && start.program == *p)
        {
            Some(i) => {
                o.remove(i);
                true
            }
            None => false,
        }
    }

    /// Whether the policies allowed this very start before (then it needs no parents, no
    /// decision and no record).
    fn remembered(&self, key: &str) -> bool {
        self.memo
            .lock()
            .is_ok_and(|m| m.get(key) == Some(&Verdict::Allow))
    }

    /// [`RuntimeDecider::remembered`] for a start.
    /// Decides and records the `#!` interpreters the kernel will start in place of the
    /// script `start` (each as the same process, with the script's path and arguments):
    /// the first refused, if one is.
    pub(crate) fn judge_interpreters(
        &self,
        start: &ProgramStart,
        chain: Vec<(String, Vec<String>)>,
    ) -> Option<(ProgramStart, Judged)> {
        for (program, argv) in chain {
            let one = ProgramStart {
                program,
                argv,
                ..start.clone()
            };
            let mut judged = self.judge(&one);
            self.record(&one, &mut judged);
            if !judged.allow {
                return Some((one, judged));
            }
        }
        None
    }

    /// True if the policies allowed `start` before and it reaches through no link
    /// (`linked`, see [`RuntimeDecider::through_links`]).
    pub(crate) fn allowed_before(&self, start: &ProgramStart, linked: bool) -> bool {
        !linked && self.remembered(&memo_key(start))
    }

    /// True if `start` names a path through a link the session could have made (local
    /// sessions only): decided with the link followed, and never remembered.
    pub(crate) fn through_links(&self, start: &ProgramStart) -> bool {
        self.spec.live_paths && crate::runtime_paths::through_links(start, &self.spec.env)
    }

    /// Whether the running command's own decision allowed exactly these words in this
    /// directory: started by the shell for a simple command of the text, the program was
    /// decided with what the text shows around it (a pipeline's `xargs` with its input),
    /// which deciding it alone cannot see. Its own children are still decided.
    fn decided_with_command(&self, start: &ProgramStart) -> bool {
        let (prepared, known) = match self.current.lock() {
            Ok(c) => match &c.prepared {
                Some(p) if !c.raw.is_empty() => (p.clone(), c.literal.clone()),
                _ => return false,
            },
            Err(_) => return false,
        };
        let literal = known.unwrap_or_else(|| {
            let l = Arc::new(self.spec.engine.literal_commands(&prepared));
            if let Ok(mut c) = self.current.lock() {
                if c.prepared
                    .as_ref()
                    .is_some_and(|p| Arc::ptr_eq(p, &prepared))
                {
                    c.literal = Some(l.clone());
                }
            }
            l
        });
        literal
            .iter()
            .any(|c| c.argv == start.argv && c.cwds.contains(&start.cwd))
    }

    /// Who approved an `ask`: covered by what a human approved for the running command,
    /// or asked now (the program waits).
    fn approval(&self, start: &ProgramStart, command: &str, decision: &Decision) -> Option<String> {
        let (under, covered, approver) = {
            let c = self.current.lock().ok()?;
            let covered = c.approver.is_some()
                && decision.blocking().all(|f| {
                    c.approved
                        .iter()
                        .any(|(a, r)| a == f.action.name() && *r == f.resource)
                });
            (c.command.clone(), covered, c.approver.clone())
        };
        if covered {
            return approver;
        }
        let ask = self.spec.approver.as_ref()?;
        let rx = ask(RuntimeAsk {
            session: self.spec.who.session.clone(),
            command: (self.spec.redact)(command),
            under,
            cwd: (self.spec.redact)(&start.cwd),
            parents: start.parents.clone(),
            decision: decision.clone(),
        });
        rx.recv_timeout(self.spec.approval_timeout).ok().flatten()
    }

    /// A refusal that is not the policies' (the program could not be read, or changed
    /// while it was decided): `judged` is replaced.
    pub(crate) fn overrule(judged: &mut Judged, why: &str) {
        judged.allow = false;
        judged.remember = false;
        judged.reason = why.to_string();
    }

    /// Records what happened, before the program is answered: the audit log first (an
    /// allowed start whose record cannot be written is refused: nothing runs unrecorded),
    /// then the running command's result (so a refusal is never missing from the result
    /// of a command that saw it).
    pub(crate) fn record(&self, start: &ProgramStart, judged: &mut Judged) {
        if self.repeated_refusal(start, judged) {
            return;
        }
        let under = self.under();
        if let Err(why) = self.audit(start, judged, under.clone()) {
            if judged.allow {
                Self::overrule(
                    judged,
                    &format!("the audit log cannot record this program's start, so it does not run: {why}"),
                );
            }
        }
        self.note(start, judged);
    }

    /// The command the running programs run under (redacted; empty between commands).
    pub(crate) fn under(&self) -> String {
        self.current
            .lock()
            .map(|c| c.command.clone())
            .unwrap_or_default()
    }

    /// A refusal the command already saw: a shell searching PATH asks again for the same
    /// words under the next directory (`/usr/bin/find`, then `/bin/find`); one refusal is
    /// reported and recorded.
    fn repeated_refusal(&self, start: &ProgramStart, judged: &Judged) -> bool {
        if judged.allow {
            return false;
        }
        let redact = |t: &str| (self.spec.redact)(t);
        let Ok(c) = self.current.lock() else {
            return false;
        };
        c.denials.iter().any(|d| {
            d.argv.len() == start.argv.len()
                && d.argv.iter().zip(&start.argv).all(|(a, b)| *a == redact(b))
                && d.cwd == redact(&start.cwd)
                && d.parents == start.parents
        })
    }

    /// Counts the program, or keeps its refusal for the running command's result.
    fn note(&self, start: &ProgramStart, judged: &Judged) {
        let redact = |t: &str| (self.spec.redact)(t);
        let Ok(mut c) = self.current.lock() else {
            return;
        };
        if judged.allow {
            c.allowed += 1;
            return;
        }
        let policies = judged
            .decision
            .as_ref()
            .map(blocking_policies)
            .unwrap_or_default();
        c.denials.push(RuntimeDenial {
            program: redact(&start.program),
            argv: start.argv.iter().map(|a| redact(a)).collect(),
            cwd: redact(&start.cwd),
            parents: start.parents.clone(),
            verdict: judged
                .decision
                .as_ref()
                .map_or(Verdict::Deny, |d| d.verdict),
            reason: redact(&judged.reason),
            policies,
            destination: None,
        });
    }

    /// Writes the decision, with its runtime context (`under`: the command), to the log.
    fn audit(&self, start: &ProgramStart, judged: &Judged, under: String) -> Result<(), String> {
        let Some(decision) = &judged.decision else {
            return Ok(());
        };
        let redact = |t: &str| (self.spec.redact)(t);
        let command = Self::command_of(start);
        let mut env = self.spec.env.clone();
        env.cwd = Some(start.cwd.clone());
        let mut rec = decision_record(
            self.spec.who.clone(),
            Decided::Command(&command),
            &env,
            decision,
            &redact,
        );
        rec.approved_by = judged.approved_by.clone();
        if !judged.allow {
            rec.verdict = execkit_audit::Verdict::Deny;
        } else if judged.by_command {
            rec.verdict = execkit_audit::Verdict::Allow;
        }
        rec.runtime = Some(RuntimeContext {
            under,
            pid: start.pid,
            parents: start.parents.clone(),
            by_command: judged.by_command,
        });
        self.emit(AuditEvent::Decision(rec))
    }

    /// A program refused before it could be decided (what it asked to run was unreadable).
    pub(crate) fn unreadable(&self, parents: Vec<String>, why: &str) {
        if let Ok(mut c) = self.current.lock() {
            c.denials.push(RuntimeDenial {
                program: "?".into(),
                argv: Vec::new(),
                cwd: String::new(),
                parents,
                verdict: Verdict::Deny,
                reason: format!("what the program asked to run could not be read: {why}"),
                policies: Vec::new(),
                destination: None,
            });
        }
    }

    /// The session's spec (policies, environment, redaction, approver).
    pub(crate) fn spec(&self) -> &GuardSpec {
        &self.spec
    }

    /// Keeps a refusal for the running command's result.
    pub(crate) fn refused(&self, denial: RuntimeDenial) {
        if let Ok(mut c) = self.current.lock() {
            c.denials.push(denial);
        }
    }

    pub(crate) fn emit(&self, event: AuditEvent) -> Result<(), String> {
        crate::audit_record::emit(
            self.spec.log.as_ref(),
            self.spec.observer.as_deref(),
            &event,
        )
    }
}

/// The policies that refused a decision's blocking facts, each once, in order.
pub(crate) fn blocking_policies(decision: &Decision) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for id in decision
        .blocking()
        .flat_map(|f| f.policies.iter().map(|p| &p.id))
    {
        if !out.contains(id) {
            out.push(id.clone());
        }
    }
    out
}

/// The memory's key for a program start: program, cwd, caller and arguments,
/// NUL-separated (no word holds a NUL), so that a lookup hashes one string and copies
/// nothing else.
fn memo_key(start: &ProgramStart) -> String {
    let mut k = String::with_capacity(
        start.program.len()
            + start.cwd.len()
            + start.caller.len()
            + start.argv.iter().map(|a| a.len() + 1).sum::<usize>()
            + 3,
    );
    k.push_str(&start.program);
    k.push('\0');
    k.push_str(&start.cwd);
    k.push('\0');
    k.push_str(&start.caller);
    for a in &start.argv {
        k.push('\0');
        k.push_str(a);
    }
    k
}

/// Answers a stopped `connect` (the same listener stops it with the program starts); the
/// session that starts the guard says how.
pub(crate) type ConnectHandler =
    Box<dyn Fn(&Supervisor, &RuntimeDecider, &libc::seccomp_notif) + Send>;

/// A local session's runtime decisions: the supervising thread.
pub(crate) struct ExecGuard {
    pub(crate) decider: Arc<RuntimeDecider>,
    /// Dropping the write end ends the thread.
    stop: Option<OwnedFd>,
}

impl ExecGuard {
    /// Starts the thread; it first receives the listener the shell's process sends over
    /// `sock`, then answers every notification until the session's processes are gone or
    /// the guard is dropped.
    pub(crate) fn start(
        sock: OwnedFd,
        spec: GuardSpec,
        on_connect: ConnectHandler,
    ) -> std::io::Result<ExecGuard> {
        let (stop_r, stop_w) = pipe()?;
        let shell = spec.shell.clone();
        let decider = RuntimeDecider::new(spec);
        let d = decider.clone();
        std::thread::Builder::new()
            .name("execkit-exec-guard".into())
            .spawn(move || {
                let Ok(listener) = exec_notify::recv_fd(sock.as_raw_fd()) else {
                    return;
                };
                drop(sock);
                Guard {
                    sup: Supervisor::new(listener),
                    decider: d,
                    shell,
                    shell_pid: None,
                    scripts: ScriptStarts::default(),
                    lineage: exec_notify::Lineage::default(),
                    on_connect,
                }
                .run(&stop_r);
            })?;
        Ok(ExecGuard {
            decider,
            stop: Some(stop_w),
        })
    }
}

impl Drop for ExecGuard {
    fn drop(&mut self) {
        // The thread ends at its next poll; it is not joined (it may be answering a
        // program of a shell that is being killed, which the kernel then ends).
        self.stop.take();
    }
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fresh descriptors we own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The local thread's state.
struct Guard {
    sup: Supervisor,
    decider: Arc<RuntimeDecider>,
    shell: PathBuf,
    shell_pid: Option<i32>,
    scripts: ScriptStarts,
    lineage: exec_notify::Lineage,
    on_connect: ConnectHandler,
}

impl Guard {
    fn run(&mut self, stop: &OwnedFd) {
        loop {
            let mut fds = [
                libc::pollfd {
                    fd: self.sup.raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: stop.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // SAFETY: poll over a local array.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
            if n < 0 {
                if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return;
            }
            if fds[1].revents != 0 {
                return;
            }
            if fds[0].revents & libc::POLLIN == 0 {
                // POLLHUP: no process of the session is left under the filter.
                return;
            }
            match self.sup.recv() {
                Ok(Some(n)) => self.handle(&n),
                Ok(None) => {}
                Err(_) => return,
            }
        }
    }

    fn handle(&mut self, n: &libc::seccomp_notif) {
        if execkit_sandbox::socket_notify::is_connect(n) {
            (self.on_connect)(&self.sup, &self.decider, n);
            return;
        }
        let (exec, snap) = match self.sup.read_exec(n) {
            Ok(x) => x,
            Err(e) => {
                // What cannot be read is not run.
                let _ = self.sup.answer(n.id, false, libc::EACCES);
                if self.sup.valid(n.id) || e.kind() != std::io::ErrorKind::NotFound {
                    let parents = self
                        .shell_pid
                        .map(|s| self.lineage.parents(n.pid as i32, s))
                        .unwrap_or_default();
                    self.decider.unreadable(parents, &e.to_string());
                }
                return;
            }
        };
        let Some(shell_pid) = self.shell_pid else {
            // The first call: the shell itself, and only it.
            let allow = Path::new(&exec.path) == self.shell;
            self.shell_pid = Some(exec.pid);
            let _ = self.sup.answer(n.id, allow, libc::EACCES);
            return;
        };
        // A program that does not exist is not run, and its caller's search goes on as
        // it would (`execvp` tries the next directory on ENOENT).
        let file = exec_notify::task_path(&exec);
        if std::fs::metadata(&file).is_err() {
            let _ = self.sup.answer(n.id, false, libc::ENOENT);
            return;
        }
        if self.scripts.continues(&exec, &file) {
            let _ = self
                .sup
                .answer(n.id, self.sup.still_the_same(n, &snap), libc::EACCES);
            return;
        }
        let mut start = ProgramStart {
            program: exec_notify::program(&exec),
            argv: exec.argv.clone(),
            cwd: exec.cwd.clone(),
            parents: Vec::new(),
            pid: exec.pid,
            caller: exec.caller.clone(),
        };
        let linked = self.decider.through_links(&start);
        let mut judged = if self.decider.allowed_before(&start, linked) {
            // Nothing is recorded of a start allowed before: no parents needed.
            Judged::remembered()
        } else {
            // Read before the answer: a refused program's process is gone soon after.
            start.parents = self.lineage.parents(exec.pid, shell_pid);
            start.pid = crate::procs::ns_pid(exec.pid).unwrap_or(exec.pid);
            self.decider.judge_linked(&start, linked)
        };
        if judged.allow && !self.sup.still_the_same(n, &snap) {
            RuntimeDecider::overrule(
                &mut judged,
                "the program's arguments changed while it was being decided (refused: the check must see what runs)",
            );
        }
        self.decider.record(&start, &mut judged);
        if judged.allow {
            let chain = exec_notify::interpreter_starts(&exec, &file);
            if !chain.is_empty() {
                if start.parents.is_empty() {
                    start.parents = self.lineage.parents(exec.pid, shell_pid);
                    start.pid = crate::procs::ns_pid(exec.pid).unwrap_or(exec.pid);
                }
                judged.allow = self.decider.judge_interpreters(&start, chain).is_none();
            }
        }
        if judged.allow {
            self.scripts.allowed(&exec, &file);
        }
        let _ = self.sup.answer(n.id, judged.allow, libc::EACCES);
    }
}
