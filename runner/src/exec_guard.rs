//! Runtime decisions: every program a session's shell starts — the agent's commands, and
//! what they start in turn (a Makefile's recipes, a git hook, an npm script, a sourced
//! file's commands, `python -c 'os.system(…)'`) — is decided by the same policies at the
//! moment it starts, before it runs.
//!
//! The shell's sandbox carries a seccomp filter that stops every `execve`/`execveat` and
//! notifies a listener ([`execkit_sandbox::exec_notify`]); the shell's process sends the
//! listener to this server before it executes the shell. A thread here receives each
//! stopped call, reads the program, its arguments and the caller's working directory,
//! decides them as the simple command they are (the words single-quoted: no shell reading
//! happens, the program knowledge does), and lets the call go on or fails it with
//! `EACCES`. An `ask` verdict asks the human through the session's runtime approver, if
//! it has one, while the program waits (refused without one, or on time-out); a program
//! whose facts a human approved for the running command passes without asking again.
//!
//! Every runtime decision is recorded in the audit log (a decision record with its
//! runtime context: the process, its parents, the command it ran under), and the refusals
//! come back in the command's result. Decisions are remembered per (program, arguments,
//! cwd), so a build's thousands of identical compiler starts cost one decision.
//!
//! The first call is the shell itself (`exec` of the session's shell program); it is
//! allowed as such and only as such.

use crate::audit_record::{decision_record, Decided};
use crate::config::Observer;
use crate::result::RuntimeDenial;
use execkit_audit::{AuditEvent, AuditLog, RuntimeContext, Who};
use execkit_engine::{Decision, DecisionEnv, Engine, Verdict};
use execkit_sandbox::exec_notify::{self, Exec, Supervisor};
use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A program that needs a human's approval at run time, as the approver is shown it.
#[derive(Debug, Clone)]
pub struct RuntimeAsk {
    /// The session.
    pub session: String,
    /// The program and its arguments, quoted, redacted.
    pub command: String,
    /// The session command it runs under, redacted.
    pub under: String,
    /// Where it runs.
    pub cwd: String,
    /// Its parents, nearest first.
    pub parents: Vec<String>,
    /// The decision (its blocking facts say what asks).
    pub decision: Decision,
}

/// Asks a human about a program that waits at `execve`; the answer is who approved it
/// (`Some(name)`) or a refusal (`None`). The receiver is waited on up to the guard's
/// approval time-out.
pub type RuntimeApprover =
    Arc<dyn Fn(RuntimeAsk) -> std::sync::mpsc::Receiver<Option<String>> + Send + Sync>;

/// What the guard needs to decide and to record.
#[derive(Clone)]
pub(crate) struct GuardSpec {
    pub engine: Arc<Engine>,
    /// The session's decision environment (the cwd is each caller's).
    pub env: DecisionEnv,
    /// The session's shell program: the first exec.
    pub shell: PathBuf,
    pub redact: Arc<dyn Fn(&str) -> String + Send + Sync>,
    pub who: Who,
    pub log: Option<Arc<Mutex<AuditLog>>>,
    pub observer: Option<Observer>,
    pub approver: Option<RuntimeApprover>,
    pub approval_timeout: Duration,
}

/// What the session tells the guard about the command running now, and what the guard
/// found during it.
#[derive(Default)]
struct Current {
    /// The command, redacted (empty between commands).
    command: String,
    /// (action, resource) of facts a human approved for it.
    approved: Vec<(String, String)>,
    /// Who approved them.
    approver: Option<String>,
    denials: Vec<RuntimeDenial>,
    allowed: u64,
}

/// A session's runtime decisions: the supervising thread, and its link to the session.
pub(crate) struct ExecGuard {
    current: Arc<Mutex<Current>>,
    /// Dropping the write end ends the thread.
    stop: Option<OwnedFd>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Programs that run a script given as their first argument: a script's `#!` line names
/// one, and when it is reached through `env` (`#!/usr/bin/env node`) its start is a second
/// `execve` of `interpreter script args…` by the same process.
const INTERPRETERS: &[&str] = &[
    "node", "nodejs", "python", "python3", "python2", "ruby", "perl", "php", "bash", "sh",
    "dash", "zsh", "ksh", "lua", "tclsh", "Rscript", "deno", "bun",
];

/// Remembered decisions at most (a build repeats itself; anything past this is decided
/// afresh after the memory is cleared).
const MEMO: usize = 4096;

impl ExecGuard {
    /// Starts the thread; it first receives the listener the shell's process sends over
    /// `sock`, then answers every notification until the session's processes are gone or
    /// the guard is dropped.
    pub(crate) fn start(sock: OwnedFd, spec: GuardSpec) -> std::io::Result<ExecGuard> {
        let (stop_r, stop_w) = pipe()?;
        let current: Arc<Mutex<Current>> = Arc::default();
        let shared = current.clone();
        let thread = std::thread::Builder::new()
            .name("execkit-exec-guard".into())
            .spawn(move || {
                let Ok(listener) = exec_notify::recv_fd(sock.as_raw_fd()) else {
                    return;
                };
                drop(sock);
                Guard {
                    sup: Supervisor::new(listener),
                    spec,
                    current: shared,
                    memo: HashMap::new(),
                    shell_pid: None,
                    scripts: HashMap::new(),
                }
                .run(&stop_r);
            })?;
        Ok(ExecGuard {
            current,
            stop: Some(stop_w),
            thread: Some(thread),
        })
    }

    /// A command starts: its (redacted) text, and its decision when a human approved it.
    pub(crate) fn begin(&self, command: &str, approved: Option<(&Decision, &str)>) {
        if let Ok(mut c) = self.current.lock() {
            *c = Current {
                command: command.to_string(),
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
}

impl Drop for ExecGuard {
    fn drop(&mut self) {
        self.stop.take();
        // The thread ends at its next poll; it is not joined (it may be answering a
        // program of a shell that is being killed, which the kernel then ends).
        self.thread.take();
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

/// The thread's state.
struct Guard {
    sup: Supervisor,
    spec: GuardSpec,
    current: Arc<Mutex<Current>>,
    memo: HashMap<(String, Vec<String>, String), Verdict>,
    shell_pid: Option<i32>,
    /// Scripts (`#!`) allowed to start, by the process that started them: the script's
    /// path and its arguments, so that the same process going on to run
    /// `interpreter script args…` (through `env`) is the same decision.
    scripts: HashMap<i32, (PathBuf, Vec<String>)>,
}

/// What happened to one program.
struct Outcome {
    allow: bool,
    decision: Option<Decision>,
    reason: String,
    approved_by: Option<String>,
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
        let (exec, snap) = match self.sup.read_exec(n) {
            Ok(x) => x,
            Err(e) => {
                // What cannot be read is not run.
                let _ = self.sup.answer(n.id, false, libc::EACCES);
                if self.sup.valid(n.id) || e.kind() != std::io::ErrorKind::NotFound {
                    self.note_unreadable(n.pid as i32, &e.to_string());
                }
                return;
            }
        };
        let Some(shell_pid) = self.shell_pid else {
            // The first call: the shell itself.
            let allow = Path::new(&exec.path) == self.spec.shell;
            self.shell_pid = Some(exec.pid);
            let _ = self.sup.answer(n.id, allow, libc::EACCES);
            return;
        };
        // A program that does not exist is not run, and its caller's search goes on as it
        // would (`execvp` tries the next directory on ENOENT).
        let file = task_path(&exec);
        if std::fs::metadata(&file).is_err() {
            let _ = self.sup.answer(n.id, false, libc::ENOENT);
            return;
        }
        // Read before the answer: a refused program's process is gone soon after.
        let parents = parents(exec.pid, shell_pid);
        if self.continues_script(&exec, &file) {
            let _ = self.sup.answer(n.id, self.sup.still_the_same(n, &snap), libc::EACCES);
            return;
        }
        let mut outcome = self.decide(&exec, &parents);
        if outcome.allow && is_script(&file) {
            if self.scripts.len() >= MEMO {
                self.scripts.clear();
            }
            self.scripts
                .insert(exec.pid, (file.clone(), exec.argv.iter().skip(1).cloned().collect()));
        }
        if outcome.allow && !self.sup.still_the_same(n, &snap) {
            outcome = Outcome {
                allow: false,
                decision: outcome.decision,
                reason: "the program's arguments changed while it was being decided (refused: the check must see what runs)".into(),
                approved_by: None,
            };
        }
        let _ = self.sup.answer(n.id, outcome.allow, libc::EACCES);
        self.record(&exec, parents, outcome);
    }

    /// True when `exec` is the interpreter of a script this process was just allowed to
    /// start, reached through `env`: `interpreter script args…` with the same script and
    /// the same arguments (the interpreter must be one; anything else is decided).
    fn continues_script(&mut self, exec: &Exec, file: &Path) -> bool {
        let Some((script, args)) = self.scripts.remove(&exec.pid) else {
            return false;
        };
        let interpreter = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
        let named = exec.argv.get(1).map(|a| {
            let p = Path::new(a);
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                Path::new(&format!("/proc/{}/cwd", exec.pid)).join(p)
            }
        });
        let same_script = named.is_some_and(|n| {
            match (std::fs::canonicalize(&n), std::fs::canonicalize(&script)) {
                (Ok(a), Ok(b)) => a == b,
                _ => false,
            }
        });
        (INTERPRETERS.contains(&interpreter)
            || INTERPRETERS.contains(&file.file_name().and_then(|n| n.to_str()).unwrap_or("")))
            && same_script
            && exec.argv.get(2..).is_some_and(|rest| rest == args.as_slice())
    }

    /// The program the call runs (as the kernel will resolve it).
    fn program(exec: &Exec) -> String {
        if exec.empty_path {
            return exec.dir.clone().unwrap_or_default();
        }
        match (&exec.dir, exec.path.starts_with('/')) {
            (Some(dir), false) => Path::new(dir).join(&exec.path).display().to_string(),
            _ => exec.path.clone(),
        }
    }

    fn command_of(exec: &Exec) -> String {
        std::iter::once(Self::program(exec))
            .chain(exec.argv.iter().skip(1).cloned())
            .map(|w| crate::frame::single_quote(&w))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn decide(&mut self, exec: &Exec, parents: &[String]) -> Outcome {
        let program = Self::program(exec);
        let key = (program.clone(), exec.argv.clone(), exec.cwd.clone());
        if let Some(v) = self.memo.get(&key) {
            if *v == Verdict::Allow {
                return Outcome {
                    allow: true,
                    decision: None,
                    reason: String::new(),
                    approved_by: None,
                };
            }
        }
        let command = Self::command_of(exec);
        let mut env = self.spec.env.clone();
        env.cwd = Some(exec.cwd.clone());
        let decision = self.spec.engine.decide(&command, &env);
        let reason = crate::result::Denial::reason_for(&decision);
        let mut outcome = Outcome {
            allow: decision.verdict == Verdict::Allow,
            reason,
            approved_by: None,
            decision: None,
        };
        if decision.verdict == Verdict::Ask {
            outcome.approved_by = self.approval(exec, parents, &command, &decision);
            outcome.allow = outcome.approved_by.is_some();
            if !outcome.allow {
                outcome.reason = format!("{} (not approved)", outcome.reason);
            }
        } else {
            if self.memo.len() >= MEMO {
                self.memo.clear();
            }
            self.memo.insert(key, decision.verdict);
        }
        outcome.decision = Some(decision);
        outcome
    }

    /// Who approved an `ask`: covered by what a human approved for the running command,
    /// or asked now (the program waits).
    fn approval(
        &self,
        exec: &Exec,
        parents: &[String],
        command: &str,
        decision: &Decision,
    ) -> Option<String> {
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
            cwd: (self.spec.redact)(&exec.cwd),
            parents: parents.to_vec(),
            decision: decision.clone(),
        });
        rx.recv_timeout(self.spec.approval_timeout).ok().flatten()
    }

    fn record(&mut self, exec: &Exec, parents: Vec<String>, outcome: Outcome) {
        let under = self
            .current
            .lock()
            .map(|c| c.command.clone())
            .unwrap_or_default();
        let redact = |t: &str| (self.spec.redact)(t);
        if let Some(decision) = &outcome.decision {
            let command = Self::command_of(exec);
            let mut env = self.spec.env.clone();
            env.cwd = Some(exec.cwd.clone());
            let mut rec = decision_record(
                self.spec.who.clone(),
                Decided::Command(&command),
                &env,
                decision,
                &redact,
            );
            rec.approved_by = outcome.approved_by.clone();
            if !outcome.allow {
                rec.verdict = execkit_audit::Verdict::Deny;
            }
            rec.runtime = Some(RuntimeContext {
                under: under.clone(),
                pid: exec.pid,
                parents: parents.clone(),
            });
            self.emit(AuditEvent::Decision(rec));
        }
        let Ok(mut c) = self.current.lock() else {
            return;
        };
        if outcome.allow {
            c.allowed += 1;
        } else {
            c.denials.push(RuntimeDenial {
                program: redact(&Self::program(exec)),
                argv: exec.argv.iter().map(|a| redact(a)).collect(),
                cwd: redact(&exec.cwd),
                parents,
                verdict: outcome
                    .decision
                    .as_ref()
                    .map_or(Verdict::Deny, |d| d.verdict),
                reason: redact(&outcome.reason),
                policies: outcome
                    .decision
                    .as_ref()
                    .map(|d| {
                        d.blocking()
                            .flat_map(|f| f.policies.iter().map(|p| p.id.clone()))
                            .collect()
                    })
                    .unwrap_or_default(),
            });
        }
    }

    fn note_unreadable(&mut self, pid: i32, why: &str) {
        if let Ok(mut c) = self.current.lock() {
            c.denials.push(RuntimeDenial {
                program: "?".into(),
                argv: Vec::new(),
                cwd: String::new(),
                parents: self.shell_pid.map(|s| parents(pid, s)).unwrap_or_default(),
                verdict: Verdict::Deny,
                reason: format!("what the program asked to run could not be read: {why}"),
                policies: Vec::new(),
            });
        }
    }

    fn emit(&self, event: AuditEvent) {
        if let Some(o) = &self.spec.observer {
            o(&event);
        }
        if let Some(log) = &self.spec.log {
            if let Ok(mut log) = log.lock() {
                if let Err(e) = log.append(&event) {
                    eprintln!("execkit: audit append failed: {e}");
                }
            }
        }
    }
}

/// The file the call would run, as the calling task sees the filesystem (its root and
/// cwd: the session may have a mount namespace of its own).
fn task_path(exec: &Exec) -> PathBuf {
    let root = PathBuf::from(format!("/proc/{}/root", exec.pid));
    if exec.empty_path {
        return exec.dir.as_deref().map_or(root.clone(), |d| root.join(d.trim_start_matches('/')));
    }
    if exec.path.starts_with('/') {
        return root.join(exec.path.trim_start_matches('/'));
    }
    match &exec.dir {
        Some(dir) => root.join(dir.trim_start_matches('/')).join(&exec.path),
        None => PathBuf::from(format!("/proc/{}/cwd", exec.pid)).join(&exec.path),
    }
}

/// True if the file starts with `#!` (the kernel runs its interpreter).
fn is_script(file: &Path) -> bool {
    use std::io::Read;
    let mut b = [0u8; 2];
    std::fs::File::open(file)
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok_and(|()| &b == b"#!")
}

/// `pid`'s parents up to (and including) the session's shell, nearest first, as
/// `pid name` (at most 16).
fn parents(pid: i32, shell: i32) -> Vec<String> {
    let mut out = Vec::new();
    let mut p = pid;
    for _ in 0..16 {
        let Some(s) = crate::procs::stat(p) else { break };
        if p == shell {
            break;
        }
        p = s.ppid;
        let name = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
        // As the session numbers it (its PID namespace).
        let shown = crate::procs::ns_pid(p).unwrap_or(p);
        out.push(format!("{shown} {}", name.trim()));
        if p == shell || p <= 1 {
            break;
        }
    }
    out
}
