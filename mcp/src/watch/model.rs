//! What `execkit watch` shows, built from audit records: sessions, and per session the
//! commands in order with their decisions and results, and under each command the
//! programs it started as they were decided at their start (runtime decisions).
//!
//! Why a model of its own: the viewer is read-only by construction. It reads the records
//! the server already wrote (redacted before they were written) and keeps nothing it could
//! send anywhere; this module is pure (lines in, state out), so it is tested without a
//! terminal.

use execkit_audit::{
    ApprovalEvent, AuditEvent, CommandRecord, DecisionRecord, FactRecord, ProcessEvent, Verdict,
    Who,
};
use std::collections::HashMap;
use std::time::{Duration, SystemTime};

/// How an entry ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// Exit code, if it had one.
    pub exit_code: Option<i32>,
    /// Wall time.
    pub duration_ms: u64,
    /// Stopped by its timeout.
    pub timed_out: bool,
    /// Stopped by a cancel.
    pub cancelled: bool,
    /// Bytes on stdout and stderr (after protection).
    pub bytes: u64,
    /// Redactions made.
    pub redactions: u64,
}

/// What kind of entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A command (its decision, then its result).
    Command,
    /// A background process.
    Process,
    /// A checkpoint taken or restored.
    Checkpoint,
    /// A human asked, approving or declining an `ask`.
    Approval,
    /// A program started outside any command (a background job's child), decided at its
    /// start.
    Program,
}

/// One line of a session's history.
#[derive(Debug, Clone)]
pub struct Entry {
    /// What it is.
    pub kind: EntryKind,
    /// The command (redacted), or what happened.
    pub text: String,
    /// The cwd it was decided in.
    pub cwd: String,
    /// The verdict (a checkpoint is `Allow`).
    pub verdict: Verdict,
    /// Output so far while it runs (from the server's live progress lines).
    pub live: Option<Live>,
    /// Approved by a human (an `ask` that ran).
    pub approved_by: Option<String>,
    /// Each fact with its determining policies.
    pub facts: Vec<FactRecord>,
    /// Why it did not parse, if it did not.
    pub parse_error: Option<String>,
    /// When it was decided.
    pub at: Option<SystemTime>,
    /// How it ended; `None` while it runs (or for a denial: it never ran).
    pub finished: Option<Finished>,
    /// Background process id, for process entries.
    pub process: Option<String>,
    /// Programs the command started, decided at their start, in order.
    pub programs: Vec<ProgramStart>,
    /// What it printed, as the agent got it (a server's `transcript` event).
    pub output: Option<execkit_audit::TranscriptRecord>,
}

/// A program a command started, as it was decided at its start.
#[derive(Debug, Clone)]
pub struct ProgramStart {
    /// The program and its arguments (quoted, redacted).
    pub text: String,
    /// Where it started.
    pub cwd: String,
    /// What happened to it: `Allow` ran, anything else was refused.
    pub verdict: Verdict,
    /// Its parents, nearest first (`pid name`).
    pub parents: Vec<String>,
    /// The facts that decided it.
    pub facts: Vec<FactRecord>,
    /// A human approved it.
    pub approved_by: Option<String>,
}

impl ProgramStart {
    /// It was let run.
    pub fn ran(&self) -> bool {
        self.verdict == Verdict::Allow
            || (self.verdict == Verdict::Ask && self.approved_by.is_some())
    }
}

/// Where a running command has got: a server's live `progress` line (never in the audit
/// log; only `--socket` watchers get them).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct Live {
    /// Milliseconds since it started.
    #[serde(default)]
    pub elapsed_ms: u64,
    /// Bytes of stdout read so far.
    #[serde(default)]
    pub stdout_bytes: u64,
    /// Bytes of stderr read so far.
    #[serde(default)]
    pub stderr_bytes: u64,
    /// The end of the protected stdout so far (complete lines).
    #[serde(default)]
    pub stdout_tail: String,
    /// The end of the protected stderr so far.
    #[serde(default)]
    pub stderr_tail: String,
}

impl Entry {
    /// An allowed entry with no facts (a process start, a checkpoint).
    fn event(kind: EntryKind, text: String, cwd: String, at: Option<SystemTime>) -> Entry {
        Entry {
            kind,
            text,
            cwd,
            verdict: Verdict::Allow,
            approved_by: None,
            facts: Vec::new(),
            parse_error: None,
            at,
            finished: None,
            process: None,
            live: None,
            programs: Vec::new(),
            output: None,
        }
    }

    /// Programs it started that were refused at their start.
    pub fn refused_programs(&self) -> usize {
        self.programs.iter().filter(|p| !p.ran()).count()
    }

    /// Allowed to run (allow, or an approved ask).
    pub fn ran(&self) -> bool {
        self.verdict == Verdict::Allow
            || (self.verdict == Verdict::Ask && self.approved_by.is_some())
    }

    /// Still running: it ran and has no result yet.
    pub fn running(&self) -> bool {
        self.ran() && self.finished.is_none() && self.kind != EntryKind::Checkpoint
    }

    /// Time since it was decided.
    pub fn elapsed(&self, now: SystemTime) -> Option<Duration> {
        self.at.and_then(|t| now.duration_since(t).ok())
    }
}

/// One session.
#[derive(Debug, Clone)]
pub struct SessionView {
    /// Session id.
    pub id: String,
    /// Who and where.
    pub who: Who,
    /// Its history, oldest first.
    pub entries: Vec<Entry>,
    /// A `closed` record was seen.
    pub closed: bool,
}

impl SessionView {
    /// How many commands were denied (or asked and not approved), and programs refused at
    /// their start.
    pub fn denials(&self) -> usize {
        self.entries
            .iter()
            .map(|e| {
                let own = !e.ran() && !matches!(e.kind, EntryKind::Approval | EntryKind::Program);
                usize::from(own) + e.refused_programs()
            })
            .sum()
    }
}

/// Everything seen so far.
#[derive(Debug, Default)]
pub struct Model {
    /// Sessions in the order they first appeared.
    pub sessions: Vec<SessionView>,
    index: HashMap<String, usize>,
    /// Records read.
    pub records: u64,
    /// Lines that were not audit records (counted, never shown raw).
    pub unreadable: u64,
    /// Notes (server start, …), newest last.
    pub notes: Vec<String>,
}

fn time_of(v: &serde_json::Value) -> Option<SystemTime> {
    v.get("time")
        .and_then(|t| t.as_str())
        .and_then(|t| humantime::parse_rfc3339(t).ok())
}

impl Model {
    /// Takes one line of the log.
    pub fn ingest(&mut self, line: &str) {
        if line.trim().is_empty() {
            return;
        }
        let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else {
            self.unreadable += 1;
            return;
        };
        let at = time_of(&value);
        if value.get("kind").and_then(|k| k.as_str()) == Some("progress") {
            self.progress(&value);
            return;
        }
        let Ok(event) = serde_json::from_value::<AuditEvent>(value) else {
            self.unreadable += 1;
            return;
        };
        self.records += 1;
        match event {
            AuditEvent::Decision(d) => self.decision(d, at),
            AuditEvent::Command(c) => self.command(c),
            AuditEvent::Transcript(t) => self.transcript(t),
            AuditEvent::Process(p) => {
                let s = self.session(&p.who);
                match p.event {
                    ProcessEvent::Started { command, cwd, .. } => s.entries.push(Entry {
                        process: Some(p.process),
                        ..Entry::event(EntryKind::Process, command, cwd, at)
                    }),
                    ProcessEvent::Exited {
                        exit_code,
                        duration_ms,
                        stdout_bytes,
                        stderr_bytes,
                        redactions,
                        ..
                    } => {
                        if let Some(e) = s
                            .entries
                            .iter_mut()
                            .rev()
                            .find(|e| e.process.as_deref() == Some(p.process.as_str()))
                        {
                            e.finished = Some(Finished {
                                exit_code,
                                duration_ms,
                                timed_out: false,
                                cancelled: false,
                                bytes: stdout_bytes + stderr_bytes,
                                redactions: redactions.values().sum(),
                            });
                        }
                    }
                    _ => {}
                }
            }
            AuditEvent::Checkpoint(c) => {
                let s = self.session(&c.who);
                s.entries.push(Entry::event(
                    EntryKind::Checkpoint,
                    format!(
                        "checkpoint {} {} ({} files)",
                        c.checkpoint, c.event, c.files
                    ),
                    String::new(),
                    at,
                ));
            }
            AuditEvent::Session(r) => {
                let s = self.session(&r.who);
                s.closed = r.event == execkit_audit::SessionEvent::Closed;
            }
            AuditEvent::Approval(a) => {
                let what = match a.event {
                    ApprovalEvent::Requested => "asked a human".to_string(),
                    ApprovalEvent::Approved => {
                        format!("approved by {}", a.approver.as_deref().unwrap_or("?"))
                    }
                    _ => format!(
                        "declined{}",
                        a.reason
                            .as_deref()
                            .map(|r| format!(" ({r})"))
                            .unwrap_or_default()
                    ),
                };
                let s = self.session(&a.who);
                let mut e = Entry::event(
                    EntryKind::Approval,
                    format!("{what}: {}", a.command),
                    a.cwd.clone(),
                    at,
                );
                e.verdict = Verdict::Ask;
                s.entries.push(e);
            }
            AuditEvent::Note { message } => self.notes.push(message),
            _ => {}
        }
    }

    /// Attaches a live progress line to the running command it is about (the newest
    /// running entry of that session with that command line); others are ignored.
    fn progress(&mut self, v: &serde_json::Value) {
        let (Some(session), Some(command)) = (
            v.get("session").and_then(|s| s.as_str()),
            v.get("command").and_then(|s| s.as_str()),
        ) else {
            self.unreadable += 1;
            return;
        };
        let Ok(live) = serde_json::from_value::<Live>(v.clone()) else {
            self.unreadable += 1;
            return;
        };
        self.records += 1;
        let Some(i) = self.index.get(session) else {
            return;
        };
        if let Some(e) = self.sessions[*i]
            .entries
            .iter_mut()
            .rev()
            .find(|e| e.kind == EntryKind::Command && e.running() && e.text == command)
        {
            e.live = Some(live);
        }
    }

    fn session(&mut self, who: &Who) -> &mut SessionView {
        let i = match self.index.get(&who.session) {
            Some(i) => *i,
            None => {
                self.sessions.push(SessionView {
                    id: who.session.clone(),
                    who: who.clone(),
                    entries: Vec::new(),
                    closed: false,
                });
                self.index
                    .insert(who.session.clone(), self.sessions.len() - 1);
                self.sessions.len() - 1
            }
        };
        &mut self.sessions[i]
    }

    fn decision(&mut self, d: DecisionRecord, at: Option<SystemTime>) {
        if d.runtime.is_some() {
            return self.runtime(d, at);
        }
        let s = self.session(&d.who);
        s.entries.push(Entry {
            programs: Vec::new(),
            live: None,
            kind: EntryKind::Command,
            text: d.command,
            cwd: d.cwd,
            verdict: d.verdict,
            approved_by: d.approved_by,
            facts: d.facts,
            parse_error: d.parse_error,
            at,
            finished: None,
            process: None,
            output: None,
        });
    }

    /// A program decided at its start goes under the command it ran under: the newest
    /// command of the session with that text (a background job's child, started between
    /// commands, gets an entry of its own).
    fn runtime(&mut self, d: DecisionRecord, at: Option<SystemTime>) {
        let ctx = d.runtime.clone().unwrap_or_default();
        let program = ProgramStart {
            text: d.command.clone(),
            cwd: d.cwd.clone(),
            verdict: d.verdict,
            parents: ctx.parents.clone(),
            facts: d.facts.clone(),
            approved_by: d.approved_by.clone(),
        };
        let s = self.session(&d.who);
        let under = (!ctx.under.is_empty()).then_some(ctx.under.as_str());
        if let Some(e) = under.and_then(|u| {
            s.entries
                .iter_mut()
                .rev()
                .find(|e| e.kind == EntryKind::Command && e.ran() && e.text == u)
        }) {
            e.programs.push(program);
            return;
        }
        let mut e = Entry::event(EntryKind::Program, d.command, d.cwd, at);
        e.verdict = d.verdict;
        e.facts = d.facts;
        e.approved_by = d.approved_by;
        e.programs.push(program);
        s.entries.push(e);
    }

    /// A command's output goes to the newest finished command of the session with that
    /// text that has none yet.
    fn transcript(&mut self, t: execkit_audit::TranscriptRecord) {
        let s = self.session(&t.who);
        if let Some(e) = s.entries.iter_mut().rev().find(|e| {
            e.kind == EntryKind::Command
                && !e.running()
                && e.output.is_none()
                && e.text == t.command
        }) {
            e.output = Some(t);
        }
    }

    fn command(&mut self, c: CommandRecord) {
        let s = self.session(&c.who);
        if let Some(e) = s
            .entries
            .iter_mut()
            .rev()
            .find(|e| e.kind == EntryKind::Command && e.running() && e.text == c.command)
        {
            e.finished = Some(Finished {
                exit_code: c.exit_code,
                duration_ms: c.duration_ms,
                timed_out: c.timed_out,
                cancelled: c.cancelled,
                bytes: c.stdout.bytes + c.stderr.bytes,
                redactions: c.redactions.values().sum(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(session: &str) -> String {
        format!(
            r#""session":"{session}","agent":"agent","operator":"operator","transport":"local""#
        )
    }

    fn decision(session: &str, command: &str, verdict: &str) -> String {
        format!(
            r#"{{"v":1,"seq":1,"time":"2026-11-23T03:10:27.802Z","prev":"x","kind":"decision",{},"command":"{command}","cwd":"/w","verdict":"{verdict}","facts":[{{"action":"exec","resource":"Program::\"x\"","verdict":"{verdict}","policies":["p-1"],"reason":"r"}}],"hash":"h"}}"#,
            who(session)
        )
    }

    fn finished(session: &str, command: &str, exit: i32) -> String {
        format!(
            r#"{{"v":1,"seq":2,"time":"2026-11-23T03:10:28.802Z","prev":"x","kind":"command",{},"command":"{command}","cwd":"/w","exit_code":{exit},"duration_ms":7,"timed_out":false,"cancelled":false,"stdout":{{"raw_bytes":3,"bytes":3,"lines":1,"bytes_kept":3,"truncated":false}},"stderr":{{"raw_bytes":0,"bytes":0,"lines":0,"bytes_kept":0,"truncated":false}},"redactions":{{"github-pat":2}},"hash":"h"}}"#,
            who(session)
        )
    }

    #[test]
    fn a_transcript_goes_to_its_finished_command() {
        let mut m = Model::default();
        for _ in 0..2 {
            m.ingest(&decision("s1", "ls", "allow"));
            m.ingest(&finished("s1", "ls", 0));
        }
        let t = format!(
            r#"{{"v":1,"seq":3,"time":"2026-11-23T03:10:29.802Z","prev":"x","kind":"transcript",{},"command":"ls","stdout":"a\nb\n","stderr":"","hash":"h"}}"#,
            who("s1")
        );
        m.ingest(&t);
        let e = &m.sessions[0].entries;
        assert!(e[0].output.is_none(), "the newest ls gets it");
        assert_eq!(
            e[1].output.as_ref().map(|o| o.stdout.as_str()),
            Some("a\nb\n")
        );
        // A second one goes to the older command that has none yet.
        m.ingest(&t);
        assert!(m.sessions[0].entries[0].output.is_some());
    }

    #[test]
    fn decisions_and_results_pair_up_per_session() {
        let mut m = Model::default();
        m.ingest(&decision("s1", "ls", "allow"));
        m.ingest(&decision("s2", "cat ~/.ssh/id_rsa", "deny"));
        m.ingest(&decision("s1", "sleep 9", "allow"));
        m.ingest(&finished("s1", "ls", 0));
        m.ingest("not json at all");
        m.ingest(r#"{"kind":"decision","nonsense":true}"#);
        assert_eq!(m.records, 4);
        assert_eq!(m.unreadable, 2);
        assert_eq!(m.sessions.len(), 2);
        let s1 = &m.sessions[0];
        assert_eq!(s1.entries.len(), 2);
        let ls = &s1.entries[0];
        assert_eq!(ls.finished.as_ref().map(|f| f.exit_code), Some(Some(0)));
        assert_eq!(ls.finished.as_ref().map(|f| f.redactions), Some(2));
        assert!(s1.entries[1].running(), "sleep has no result yet");
        let t0 = humantime::parse_rfc3339("2026-11-23T03:10:30.802Z").unwrap();
        assert_eq!(s1.entries[1].elapsed(t0), Some(Duration::from_secs(3)));
        let s2 = &m.sessions[1];
        assert_eq!(s2.denials(), 1);
        assert!(!s2.entries[0].running(), "a denial never runs");
        assert_eq!(s2.entries[0].facts[0].policies, vec!["p-1".to_string()]);
        assert!(!s2.closed);
        m.ingest(&format!(
            r#"{{"v":1,"seq":9,"time":"2026-11-23T03:10:31.000Z","prev":"x","kind":"session",{},"event":"closed","hash":"h"}}"#,
            who("s2")
        ));
        assert!(m.sessions[1].closed);
    }

    fn approval(session: &str, event: &str, extra: &str) -> String {
        format!(
            r#"{{"v":1,"seq":3,"time":"2026-11-23T03:10:29.000Z","prev":"x","kind":"approval",{},"command":"git push","cwd":"/w","event":"{event}","facts":["exec Program::\"git\""]{extra},"hash":"h"}}"#,
            who(session)
        )
    }

    #[test]
    fn approvals_are_their_own_entries_and_not_denials() {
        let mut m = Model::default();
        m.ingest(&decision("s", "git push", "ask"));
        m.ingest(&approval("s", "requested", ""));
        m.ingest(&approval("s", "approved", r#","approver":"alice""#));
        m.ingest(&approval(
            "s",
            "declined",
            r#","approver":"bob","reason":"the human declined""#,
        ));
        assert_eq!(m.unreadable, 0);
        let s = &m.sessions[0];
        let texts: Vec<&str> = s.entries[1..].iter().map(|e| e.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "asked a human: git push",
                "approved by alice: git push",
                "declined (the human declined): git push"
            ]
        );
        assert!(s.entries[1..].iter().all(|e| e.kind == EntryKind::Approval));
        assert_eq!(s.denials(), 1, "only the ask itself counts");
    }

    #[test]
    fn progress_lines_show_output_so_far_on_the_running_command() {
        let mut m = Model::default();
        m.ingest(&decision("s", "make", "allow"));
        m.ingest(r#"{"kind":"progress","session":"s","command":"make","elapsed_ms":1500,"stdout_bytes":12,"stderr_bytes":0,"stdout_tail":"cc main.c\n","stderr_tail":""}"#);
        m.ingest(r#"{"kind":"progress","session":"other","command":"make","elapsed_ms":1}"#);
        let e = &m.sessions[0].entries[0];
        let live = e.live.as_ref().expect("attached");
        assert_eq!(
            (live.stdout_bytes, live.stdout_tail.as_str()),
            (12, "cc main.c\n")
        );
        m.ingest(&finished("s", "make", 0));
        // A late line for a finished command changes nothing.
        m.ingest(r#"{"kind":"progress","session":"s","command":"make","elapsed_ms":9,"stdout_tail":"late\n"}"#);
        assert_eq!(
            m.sessions[0].entries[0].live.as_ref().map(|l| l.elapsed_ms),
            Some(1500)
        );
        m.ingest(r#"{"kind":"progress","command":"no session"}"#);
        assert_eq!(m.unreadable, 1);
    }

    fn runtime(session: &str, program: &str, under: &str, verdict: &str) -> String {
        format!(
            r#"{{"v":1,"seq":4,"time":"2026-11-23T03:10:29.000Z","prev":"x","kind":"decision",{},"command":"{program}","cwd":"/w","verdict":"{verdict}","facts":[{{"action":"exec","resource":"Program::\"x\"","verdict":"{verdict}","policies":["p-2"],"reason":"r"}}],"runtime":{{"under":"{under}","pid":7,"parents":["3 sh","1 bash"]}},"hash":"h"}}"#,
            who(session)
        )
    }

    #[test]
    fn programs_decided_at_their_start_go_under_their_command() {
        let mut m = Model::default();
        m.ingest(&decision("s", "make", "allow"));
        m.ingest(&runtime("s", "'cc' 'a.c'", "make", "allow"));
        m.ingest(&runtime("s", "'rm' '-rf' '/h'", "make", "deny"));
        m.ingest(&finished("s", "make", 2));
        m.ingest(&runtime("s", "'curl' 'x'", "", "deny"));
        assert_eq!(m.unreadable, 0);
        let s = &m.sessions[0];
        assert_eq!(s.entries.len(), 2, "{:?}", s.entries);
        let make = &s.entries[0];
        let texts: Vec<&str> = make.programs.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(texts, ["'cc' 'a.c'", "'rm' '-rf' '/h'"]);
        assert_eq!(make.refused_programs(), 1);
        assert_eq!(make.programs[1].parents, ["3 sh", "1 bash"]);
        assert!(
            make.finished.is_some(),
            "the result still pairs with the command"
        );
        let orphan = &s.entries[1];
        assert_eq!(orphan.kind, EntryKind::Program);
        assert_eq!(orphan.refused_programs(), 1);
        assert_eq!(s.denials(), 2);
    }

    #[test]
    fn a_result_for_a_denied_command_is_not_attached_to_it() {
        let mut m = Model::default();
        m.ingest(&decision("s", "rm -rf /", "deny"));
        m.ingest(&finished("s", "rm -rf /", 0));
        assert!(m.sessions[0].entries[0].finished.is_none());
    }
}
