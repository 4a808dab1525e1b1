//! A started process: the tasks that pump its pipes through protection into its buffers,
//! and the handle the caller reads, writes, signals and waits with.

use super::buffer::{Slice, StreamBuffer};
use super::missed_signals;
use super::{
    Cursor, ProcessError, ProcessInfo, ProcessLimits, ProcessOutput, ProcessSignal, ProcessState,
    StreamTotals, WaitOutcome, WaitReason,
};
use crate::remote::Control;
use execkit_audit::{AuditEvent, AuditLog, ProcessEvent, ProcessRecord, Who};
use execkit_protect::{RedactionCounts, StreamProtector};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::sync::watch;

/// Bytes a read returns when the caller names no limit, and the most it may ask for.
pub(crate) const DEFAULT_READ_BYTES: usize = 64 * 1024;
const MAX_READ_BYTES: usize = 1 << 20;
/// How long a write may wait for a process that does not read its stdin.
const STDIN_TIMEOUT: Duration = Duration::from_secs(5);
/// After the exit, how long output still held by grandchildren is waited for.
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(200);

/// Processes alive in this server (every session), for the per-server cap.
pub(crate) static LIVE: AtomicUsize = AtomicUsize::new(0);

/// One count in [`LIVE`], given back when the process exits or is dropped.
pub(crate) struct LiveSlot(());

impl LiveSlot {
    pub(crate) fn take() -> LiveSlot {
        LIVE.fetch_add(1, Ordering::SeqCst);
        LiveSlot(())
    }
}

impl Drop for LiveSlot {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Where audit records of a process go.
#[derive(Clone)]
pub(crate) struct Auditor {
    pub log: Option<Arc<Mutex<AuditLog>>>,
    pub observer: Option<crate::config::Observer>,
    pub who: Who,
}

impl Auditor {
    /// Writes one event of a process; `Err` says why the log could not take it.
    pub fn record(&self, process: &str, event: ProcessEvent) -> Result<(), String> {
        if self.log.is_none() && self.observer.is_none() {
            return Ok(());
        }
        let event = AuditEvent::Process(ProcessRecord {
            who: self.who.clone(),
            process: process.to_string(),
            event,
        });
        crate::audit_record::emit(self.log.as_ref(), self.observer.as_deref(), &event)
    }
}

/// How signals reach the process group.
pub(crate) enum Signaller {
    /// This machine's kernel (the pgid is a host pid).
    Local,
    /// `kill` through the remote control channel.
    Remote(Control),
    /// The remote helper, which knows the shell's PID namespace and signals only the
    /// session's processes.
    Helper(std::sync::Arc<crate::helper_link::Link>),
}

/// What the pumps update and readers look at.
struct Streams {
    out: StreamBuffer,
    err: StreamBuffer,
    out_p: Option<StreamProtector>,
    err_p: Option<StreamProtector>,
    out_raw: u64,
    err_raw: u64,
    out_closed: bool,
    err_closed: bool,
    /// Redactions of streams that have ended.
    finished_redactions: RedactionCounts,
    /// The next read's cursor when the caller gives none.
    cursor: Cursor,
    exit: Option<Option<i32>>,
    exited_at: Option<Instant>,
    stopped: bool,
    /// The last signal sent (to tell a KILLed wrapper's silent exit).
    last_signal: Option<ProcessSignal>,
    slot: Option<LiveSlot>,
}

pub(crate) struct Inner {
    pub id: String,
    pub session_id: String,
    pub name: Option<String>,
    pub command: String,
    pub cwd: String,
    pub pgid: Option<i32>,
    signaller: Signaller,
    /// The group's looks for signals a fork in flight made it miss.
    looks: missed_signals::Looks,
    started: Instant,
    limits: ProcessLimits,
    stdin: tokio::sync::Mutex<Option<Stdin>>,
    stdin_bytes: AtomicU64,
    stdin_closed: AtomicBool,
    st: Mutex<Streams>,
    changed: watch::Sender<u64>,
    auditor: Auditor,
}

/// Where a process's stdin goes: a local pipe, or a remote channel's input.
pub(crate) type Stdin = Box<dyn tokio::io::AsyncWrite + Send + Unpin>;

/// What the pipes of a process deliver, in order per stream.
#[derive(Debug)]
pub(crate) enum Event {
    /// Bytes from stdout (`err` false) or stderr; `None` when the stream ended.
    Output { err: bool, data: Option<Vec<u8>> },
    /// Bytes from the status pipe; `None` when it ended.
    Status(Option<Vec<u8>>),
}

/// Forwards a local pipe into the event channel.
pub(crate) fn forward_pipe(
    mut r: pipe::Receiver,
    tx: tokio::sync::mpsc::Sender<Event>,
    make: fn(Option<Vec<u8>>) -> Event,
) {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = r.read(&mut buf).await.unwrap_or(0);
            let data = (n > 0).then(|| buf[..n].to_vec());
            if tx.send(make(data)).await.is_err() || n == 0 {
                return;
            }
        }
    });
}

/// A background process of a session. Cheap to clone; every clone is the same process.
#[derive(Clone)]
pub struct ProcessHandle(pub(crate) Arc<Inner>);

/// What a new process is made of (see `Session::spawn`).
pub(crate) struct NewProcess {
    pub id: String,
    pub session_id: String,
    pub name: Option<String>,
    pub command: String,
    pub cwd: String,
    pub pgid: Option<i32>,
    pub signaller: Signaller,
    pub limits: ProcessLimits,
    pub out: StreamProtector,
    pub err: StreamProtector,
    pub auditor: Auditor,
    pub slot: LiveSlot,
}

impl ProcessHandle {
    /// Wraps the pipes of a started process and starts pumping them.
    pub(crate) fn start(
        n: NewProcess,
        stdin: Stdin,
        events: tokio::sync::mpsc::Receiver<Event>,
        ready: (Vec<u8>, Vec<Event>),
    ) -> ProcessHandle {
        let (changed, _) = watch::channel(0u64);
        let inner = Arc::new(Inner {
            id: n.id,
            session_id: n.session_id,
            name: n.name,
            command: n.command,
            cwd: n.cwd,
            pgid: n.pgid,
            signaller: n.signaller,
            looks: missed_signals::Looks::default(),
            started: Instant::now(),
            limits: n.limits,
            stdin: tokio::sync::Mutex::new(Some(stdin)),
            stdin_bytes: AtomicU64::new(0),
            stdin_closed: AtomicBool::new(false),
            st: Mutex::new(Streams {
                out: StreamBuffer::new(n.limits.head_bytes, n.limits.tail_bytes),
                err: StreamBuffer::new(n.limits.head_bytes, n.limits.tail_bytes),
                out_p: Some(n.out),
                err_p: Some(n.err),
                out_raw: 0,
                err_raw: 0,
                out_closed: false,
                err_closed: false,
                finished_redactions: RedactionCounts::new(),
                cursor: Cursor::default(),
                exit: None,
                exited_at: None,
                stopped: false,
                last_signal: None,
                slot: Some(n.slot),
            }),
            changed,
            auditor: n.auditor,
        });
        tokio::spawn(pump(inner.clone(), events, ready));
        ProcessHandle(inner)
    }

    /// The process id (`p-` and 8 hex digits).
    pub fn id(&self) -> &str {
        &self.0.id
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Streams> {
        self.0.st.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Its state now.
    pub fn state(&self) -> ProcessState {
        state_of(&self.lock())
    }

    /// True once it exited and its output is fully read from the pipes (or grandchildren
    /// kept them open past a short drain).
    pub fn done(&self) -> bool {
        done(&self.lock())
    }

    /// When it exited, if it did.
    pub(crate) fn exited_at(&self) -> Option<Instant> {
        self.lock().exited_at
    }

    /// How long it has been running.
    pub fn age(&self) -> Duration {
        self.0.started.elapsed()
    }

    /// What it is, for lists.
    pub fn info(&self) -> ProcessInfo {
        let st = self.lock();
        let (out, err) = totals(&st);
        ProcessInfo {
            id: self.0.id.clone(),
            session_id: self.0.session_id.clone(),
            name: self.0.name.clone(),
            command: self.0.command.clone(),
            cwd: self.0.cwd.clone(),
            pgid: self.0.pgid,
            state: state_of(&st),
            age_ms: self.0.started.elapsed().as_millis() as u64,
            stdout: out,
            stderr: err,
            stdin_bytes: self.0.stdin_bytes.load(Ordering::Relaxed),
            stdin_closed: self.0.stdin_closed.load(Ordering::Relaxed),
        }
    }

    /// New output since `cursor` (or since the previous read when `None`), at most
    /// `max_bytes` of text (64 KiB by default, 1 MiB at most).
    pub fn read(&self, cursor: Option<Cursor>, max_bytes: Option<usize>) -> ProcessOutput {
        let mut st = self.lock();
        read_locked(&mut st, cursor, max_bytes)
    }

    /// Waits until the process exits, `timeout` elapses, or `until` matches output that
    /// came after the cursor; returns the output since the cursor (like [`Self::read`]).
    pub async fn wait(
        &self,
        timeout: Duration,
        until: Option<&regex::Regex>,
        cursor: Option<Cursor>,
        max_bytes: Option<usize>,
    ) -> WaitOutcome {
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + timeout;
        let mut rx = self.0.changed.subscribe();
        let from = cursor.unwrap_or_else(|| self.lock().cursor);
        // Where the scan for `until` resumes in each stream.
        let mut scan = from;
        let mut matched = None;
        let reason = loop {
            {
                let st = self.lock();
                if let Some(re) = until {
                    for (buf, at) in [(&st.out, &mut scan.stdout), (&st.err, &mut scan.stderr)] {
                        if matched.is_some() {
                            break;
                        }
                        let start = buf.line_start_before(*at);
                        let Slice { text, next, .. } = buf.read(start, usize::MAX);
                        if let Some(m) = re.find(&text) {
                            matched = Some(m.as_str().chars().take(1000).collect::<String>());
                        }
                        *at = next;
                    }
                    if matched.is_some() {
                        break WaitReason::Matched;
                    }
                }
                if done(&st) {
                    break WaitReason::Exited;
                }
            }
            let exit_drain = self
                .lock()
                .exited_at
                .map(|t| t + DRAIN_AFTER_EXIT)
                .map(tokio::time::Instant::from_std);
            tokio::select! {
                r = rx.changed() => {
                    if r.is_err() {
                        break WaitReason::Exited;
                    }
                }
                _ = tokio::time::sleep_until(deadline) => break WaitReason::Timeout,
                _ = async {
                    match exit_drain {
                        Some(t) => tokio::time::sleep_until(t).await,
                        None => std::future::pending().await,
                    }
                } => {}
            }
        };
        let output = self.read(Some(from), max_bytes);
        WaitOutcome {
            reason,
            matched,
            output,
            waited_ms: started.elapsed().as_millis() as u64,
        }
    }

    /// Writes to its stdin; `close` closes stdin afterwards (the process sees EOF).
    pub async fn write_stdin(&self, data: &[u8], close: bool) -> Result<usize, ProcessError> {
        let mut stdin = self.0.stdin.lock().await;
        let Some(pipe) = stdin.as_mut() else {
            return Err(ProcessError::StdinClosed(self.0.id.clone()));
        };
        // Once the wrapper reported the exit, the input has no reader left: a killed
        // group's last members may not have closed their end yet, and a write would
        // then seem to succeed.
        if matches!(self.state(), ProcessState::Exited { .. }) {
            return Err(ProcessError::Exited(self.0.id.clone()));
        }
        self.0
            .auditor
            .record(
                &self.0.id,
                ProcessEvent::Input {
                    bytes: data.len() as u64,
                    closed: close,
                },
            )
            .map_err(ProcessError::AuditUnavailable)?;
        let mut written = 0usize;
        let res = tokio::time::timeout(STDIN_TIMEOUT, async {
            while written < data.len() {
                match pipe.write(&data[written..]).await {
                    Ok(0) => return Err(std::io::Error::from(std::io::ErrorKind::WriteZero)),
                    Ok(n) => written += n,
                    Err(e) => return Err(e),
                }
            }
            pipe.flush().await
        })
        .await;
        self.0
            .stdin_bytes
            .fetch_add(written as u64, Ordering::Relaxed);
        let outcome = match res {
            Ok(Ok(())) => Ok(written),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                *stdin = None;
                self.0.stdin_closed.store(true, Ordering::Relaxed);
                Err(ProcessError::StdinClosed(self.0.id.clone()))
            }
            Ok(Err(e)) => Err(ProcessError::Io(e)),
            Err(_) => Err(ProcessError::StdinFull(
                STDIN_TIMEOUT.as_millis() as u64,
                written,
            )),
        };
        if close && outcome.is_ok() {
            // A remote channel's writer says EOF only when shut down, not when dropped.
            if let Some(mut w) = stdin.take() {
                let _ = tokio::time::timeout(STDIN_TIMEOUT, w.shutdown()).await;
            }
            self.0.stdin_closed.store(true, Ordering::Relaxed);
        }
        outcome
    }

    /// Sends `sig` to the process group.
    pub async fn signal(&self, sig: ProcessSignal) -> Result<(), ProcessError> {
        let pgid = {
            let mut st = self.lock();
            if done(&st) {
                return Err(ProcessError::Exited(self.0.id.clone()));
            }
            let Some(pgid) = self.0.pgid else {
                return Err(ProcessError::Exited(self.0.id.clone()));
            };
            st.last_signal = Some(sig);
            match sig {
                ProcessSignal::Stop => st.stopped = true,
                ProcessSignal::Cont => st.stopped = false,
                _ => {}
            }
            pgid
        };
        // Recorded before it is sent (the exit it causes is recorded after it). A signal
        // the log cannot record is not sent, unless it only stops or ends the process.
        let recorded = self.0.auditor.record(
            &self.0.id,
            ProcessEvent::Signal {
                signal: sig.name().to_string(),
            },
        );
        if let Err(why) = recorded {
            if !sig.only_stops() {
                return Err(ProcessError::AuditUnavailable(why));
            }
        }
        self.deliver(pgid, sig).await;
        Ok(())
    }

    /// Sends `sig` to the group; members that a fork in flight made miss it get it again
    /// (see `missed_signals`).
    async fn deliver(&self, pgid: i32, sig: ProcessSignal) {
        match &self.0.signaller {
            Signaller::Local => missed_signals::deliver_here(&self.0.looks, pgid, sig),
            Signaller::Remote(control) => {
                missed_signals::deliver_remote(&self.0.looks, control, pgid, sig).await;
            }
            Signaller::Helper(link) => {
                let call = execkit_helper::msg::Call::Signal {
                    targets: vec![pgid],
                    sig: sig.number(),
                };
                let _ = link.call(&call).await;
            }
        }
    }

    /// SIGTERM to the group (and SIGCONT, so a stopped one can act on it), the operator's
    /// grace period, then SIGKILL. Returns the state after.
    pub async fn terminate(&self) -> ProcessState {
        if self.signal(ProcessSignal::Term).await.is_err() {
            return self.state();
        }
        let _ = self.signal(ProcessSignal::Cont).await;
        let grace = self.0.limits.grace;
        if self.wait(grace, None, None, Some(0)).await.reason == WaitReason::Exited {
            return self.state();
        }
        let _ = self.signal(ProcessSignal::Kill).await;
        self.wait(Duration::from_secs(2), None, None, Some(0)).await;
        self.state()
    }

    /// SIGKILL to the group at once, without waiting (closing the session).
    pub(crate) async fn kill_now(&self) {
        if let (Some(pgid), false) = (self.0.pgid, self.done()) {
            self.lock().last_signal = Some(ProcessSignal::Kill);
            self.deliver(pgid, ProcessSignal::Kill).await;
        }
    }

    /// Records why the reaper ended or forgot it.
    pub(crate) fn audit_reaped(&self, reason: &str) {
        let _ = self.0.auditor.record(
            &self.0.id,
            ProcessEvent::Reaped {
                reason: reason.to_string(),
            },
        );
    }
}

fn state_of(st: &Streams) -> ProcessState {
    match st.exit {
        None => ProcessState::Running {
            stopped: st.stopped,
        },
        Some(code) => ProcessState::Exited {
            code,
            signal: match code {
                Some(c) if c > 128 => ProcessSignal::ALL
                    .into_iter()
                    .find(|s| s.number() == c - 128),
                None => st.last_signal.filter(|s| *s == ProcessSignal::Kill),
                _ => None,
            },
        },
    }
}

fn done(st: &Streams) -> bool {
    match st.exited_at {
        None => false,
        Some(t) => (st.out_closed && st.err_closed) || t.elapsed() >= DRAIN_AFTER_EXIT,
    }
}

fn totals(st: &Streams) -> (StreamTotals, StreamTotals) {
    (
        StreamTotals {
            raw_bytes: st.out_raw,
            bytes: st.out.total(),
            lines: st.out.lines(),
            closed: st.out_closed,
        },
        StreamTotals {
            raw_bytes: st.err_raw,
            bytes: st.err.total(),
            lines: st.err.lines(),
            closed: st.err_closed,
        },
    )
}

fn redactions(st: &Streams) -> RedactionCounts {
    let mut all = st.finished_redactions.clone();
    for p in [&st.out_p, &st.err_p].into_iter().flatten() {
        for (k, v) in p.redactions_so_far() {
            *all.entry(k).or_default() += v;
        }
    }
    all
}

fn read_locked(
    st: &mut Streams,
    cursor: Option<Cursor>,
    max_bytes: Option<usize>,
) -> ProcessOutput {
    let max = max_bytes.unwrap_or(DEFAULT_READ_BYTES).min(MAX_READ_BYTES);
    let from = cursor.unwrap_or(st.cursor);
    // Each stream gets half first; what one leaves, the other may use.
    let mut out = read_stream(&st.out, from.stdout, max / 2);
    let err = read_stream(&st.err, from.stderr, max.saturating_sub(out.text.len()));
    let room = max.saturating_sub(out.text.len() + err.text.len());
    if room > 0 && out.next < st.out.total() {
        let more = read_stream(&st.out, out.next, room);
        out.text.push_str(&more.text);
        out.next = more.next;
        out.lost += more.lost;
    }
    let next = Cursor {
        stdout: out.next,
        stderr: err.next,
    };
    st.cursor = next;
    let (o, e) = totals(st);
    ProcessOutput {
        stdout: out.text,
        stderr: err.text,
        next_cursor: next.to_string(),
        stdout_lost: out.lost,
        stderr_lost: err.lost,
        more: (o.bytes - next.stdout) + (e.bytes - next.stderr),
        state: state_of(st),
        stdout_totals: o,
        stderr_totals: e,
        redactions: redactions(st),
    }
}

/// Up to `max` bytes of one stream from `from`, across the head, the gap and the ring.
fn read_stream(buf: &StreamBuffer, from: u64, max: usize) -> Slice {
    let mut acc = Slice {
        next: from.min(buf.total()),
        ..Slice::default()
    };
    while acc.text.len() < max {
        let s = buf.read(acc.next, max - acc.text.len());
        acc.lost += s.lost;
        if s.text.is_empty() {
            acc.next = acc.next.max(s.next);
            break;
        }
        acc.text.push_str(&s.text);
        acc.next = s.next;
    }
    acc
}

/// Takes the process's events until every stream and the status pipe ended: output
/// through the protector into its buffer, the status into the exit.
async fn pump(
    inner: Arc<Inner>,
    mut events: tokio::sync::mpsc::Receiver<Event>,
    (early, replay): (Vec<u8>, Vec<Event>),
) {
    let mut status = early;
    let mut status_done = false;
    let mut text = String::new();
    let mut replay = replay.into_iter();
    loop {
        let ev = match replay.next() {
            Some(e) => e,
            None => match events.recv().await {
                Some(e) => e,
                None => break,
            },
        };
        match ev {
            Event::Output { err, data } => {
                {
                    let mut st = inner.st.lock().unwrap_or_else(|p| p.into_inner());
                    push_output(&mut st, err, data.as_deref(), &mut text);
                }
                inner.changed.send_modify(|v| *v += 1);
            }
            Event::Status(Some(d)) => {
                if status.len() < 80 {
                    status.extend_from_slice(&d);
                }
            }
            Event::Status(None) => {
                if !status_done {
                    status_done = true;
                    record_exit(&inner, &status);
                }
            }
        }
    }
    // Every sender is gone: whatever did not end, ended.
    {
        let mut st = inner.st.lock().unwrap_or_else(|p| p.into_inner());
        for err in [false, true] {
            push_output(&mut st, err, None, &mut text);
        }
    }
    if !status_done {
        record_exit(&inner, &status);
    }
    inner.changed.send_modify(|v| *v += 1);
}

/// One piece of one stream (`None`: it ended) into its buffer, through the protector.
fn push_output(st: &mut Streams, err: bool, data: Option<&[u8]>, text: &mut String) {
    let (p, b, raw, closed) = if err {
        (
            &mut st.err_p,
            &mut st.err,
            &mut st.err_raw,
            &mut st.err_closed,
        )
    } else {
        (
            &mut st.out_p,
            &mut st.out,
            &mut st.out_raw,
            &mut st.out_closed,
        )
    };
    match data {
        None => {
            if let Some(p) = p.take() {
                let fin = p.finish();
                b.push(&fin.text);
                for (k, v) in fin.redactions {
                    *st.finished_redactions.entry(k).or_default() += v;
                }
            }
            *closed = true;
        }
        Some(d) => {
            if let Some(p) = p.as_mut() {
                *raw += d.len() as u64;
                p.push(d);
                text.clear();
                p.drain(text);
                b.push(text);
            }
        }
    }
}

/// Reads status events until the command's subshell says it is about to run the command
/// (or the status ends, or 10 s pass). Returns the status bytes read and the events that
/// came meanwhile, in order, for the pump.
pub(crate) async fn await_ready(
    events: &mut tokio::sync::mpsc::Receiver<Event>,
) -> (Vec<u8>, Vec<Event>) {
    let ready = super::launch::READY.as_bytes();
    let mut got = Vec::new();
    let mut other = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while got.len() < ready.len() {
            match events.recv().await {
                Some(Event::Status(Some(d))) => got.extend_from_slice(&d),
                Some(Event::Status(None)) | None => {
                    other.push(Event::Status(None));
                    return;
                }
                Some(e) => other.push(e),
            }
        }
    })
    .await;
    (got, other)
}

/// Records the exit the wrapper reported (or its silent end).
///
/// The audit record is written under the state's lock, before waiters are woken: whoever
/// sees the process exited finds its exit in the log.
fn record_exit(inner: &Arc<Inner>, text: &[u8]) {
    let code = super::launch::parse_status(text);
    {
        let mut st = inner.st.lock().unwrap_or_else(|p| p.into_inner());
        st.exit = Some(code);
        st.exited_at = Some(Instant::now());
        st.stopped = false;
        st.slot = None;
        let (out, err) = totals(&st);
        let signal = match state_of(&st) {
            ProcessState::Exited { signal, .. } => signal.map(|s| s.name().to_string()),
            ProcessState::Running { .. } => None,
        };
        let _ = inner.auditor.record(
            &inner.id,
            ProcessEvent::Exited {
                exit_code: code,
                signal,
                duration_ms: inner.started.elapsed().as_millis() as u64,
                stdout_bytes: out.raw_bytes,
                stderr_bytes: err.raw_bytes,
                redactions: redactions(&st),
            },
        );
    }
    inner.changed.send_modify(|v| *v += 1);
}
