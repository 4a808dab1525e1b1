//! The run of one command in the shell: the framed command goes in, output is protected
//! as it streams, the end marker is confirmed (a forged one in the output is not), and
//! timeouts and cancellation interrupt and then kill what the command started.

use super::state::{Progress, Session};
use crate::frame::{self, Split, Splitter};
use crate::shell::{Shell, ShellEvent};
use crate::stream::Chunk;
use execkit_protect::StreamProtector;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Why a remote session's shell is gone when its connection dropped.
pub(super) const TRANSPORT_LOST: &str =
    "the connection to the remote host was lost (restart connects again)";

/// Where stdout framing is.
pub(super) enum Out {
    /// Command output, looking for the ask marker.
    Running(Splitter),
    /// Ask marker seen; waiting for the kernel to confirm the shell reads stdin. Holds
    /// what came after the marker.
    Pending(Vec<u8>),
    /// Nonce sent; bytes until the end marker are kept in case the confirmed ask marker
    /// was a forgery followed by the real one.
    AwaitEnd(Splitter, Vec<u8>),
    /// Reading status and cwd up to the terminator.
    AwaitFin(Splitter, Vec<u8>),
    /// Finished.
    Done,
}

/// One command's run.
pub(super) struct Run<'a> {
    pub(super) session: &'a Session,
    pub(super) shell: &'a mut Shell,
    pub(super) res: Outcome,
    pub(super) timeout: Duration,
    pub(super) out_state: Out,
    pub(super) err_split: Option<Splitter>,
    pub(super) err_done: bool,
    pub(super) eof: (bool, bool),
    /// This command's ask marker.
    pub(super) ask: Vec<u8>,
    pub(super) fin_needle: Vec<u8>,
}

/// The bytes before the first `:` and those after it.
pub(super) fn split_at_colon(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = memchr::memchr(b':', b)?;
    Some((&b[..at], &b[at + 1..]))
}

/// Output held after an unconfirmed ask marker before it is taken as the command's own.
pub(super) const PENDING_LIMIT: usize = 1 << 20;

/// What a run leaves behind.
pub(super) struct Outcome {
    pub(super) out: StreamProtector,
    pub(super) err: StreamProtector,
    pub(super) exit_code: Option<i32>,
    pub(super) cwd: Option<String>,
    /// The shell's PATH after the command.
    pub(super) path: Option<String>,
    pub(super) timed_out: bool,
    pub(super) cancelled: bool,
    pub(super) shell_gone: Option<String>,
    pub(super) duration: Duration,
    /// Background jobs the command left (not counting our own processes).
    pub(super) left_background: usize,
    /// Time spent protecting output as it streamed.
    pub(super) protect: Duration,
}

impl Outcome {
    /// Protects a piece of stdout (timed).
    fn push_out(&mut self, data: &[u8]) {
        let start = Instant::now();
        self.out.push(data);
        self.protect += start.elapsed();
    }

    /// Protects a piece of stderr (timed).
    fn push_err(&mut self, data: &[u8]) {
        let start = Instant::now();
        self.err.push(data);
        self.protect += start.elapsed();
    }
}

/// Interrupt escalation after a timeout or cancel.
pub(super) struct Stopper {
    pub(super) stage: u32,
    pub(super) next: Instant,
}

impl<'a> Run<'a> {
    pub(super) fn new(
        session: &'a Session,
        shell: &'a mut Shell,
        out: StreamProtector,
        err: StreamProtector,
        timeout: Duration,
    ) -> Run<'a> {
        Run {
            session,
            shell,
            res: Outcome {
                out,
                err,
                exit_code: None,
                cwd: None,
                path: None,
                timed_out: false,
                cancelled: false,
                shell_gone: None,
                duration: Duration::ZERO,
                left_background: 0,
                protect: Duration::ZERO,
            },
            timeout,
            out_state: Out::Done,
            err_split: None,
            err_done: false,
            eof: (false, false),
            ask: Vec::new(),
            fin_needle: Vec::new(),
        }
    }

    pub(super) async fn go(mut self, command: &str) -> std::io::Result<Outcome> {
        // Anything left from before this command belongs to no one.
        let gen_before = self.shell.generation();
        while let Ok(c) = self.shell.rx.try_recv() {
            if c.data.is_none() && c.gen == gen_before {
                self.res.shell_gone = Some("the shell's output closed".into());
                return Ok(self.outcome());
            }
        }
        let prefix = if self.shell.rotate {
            self.shell.rotate_pipes().await?
        } else {
            String::new()
        };
        self.shell.seq += 1;
        let seq = self.shell.seq;
        let gen = self.shell.generation();
        self.ask = frame::ask_marker(&self.shell.token, seq);
        self.out_state = Out::Running(Splitter::new(self.ask.clone()));
        let running = self.session.running.clone();
        running.stdout_bytes.store(0, Ordering::Relaxed);
        running.stderr_bytes.store(0, Ordering::Relaxed);
        *running.preview.lock().unwrap_or_else(|p| p.into_inner()) = Default::default();
        running.seq.store(seq, Ordering::SeqCst);
        let background_before = self.shell.background.clone();
        let line = frame::command_line(command, seq, &prefix, self.shell.dialect);
        let started = Instant::now();
        self.shell.write(line.as_bytes()).await?;
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut stopper: Option<Stopper> = None;
        let tick = Duration::from_millis(1);
        loop {
            if matches!(self.out_state, Out::Done) && self.err_done {
                break;
            }
            if self.res.shell_gone.is_some() {
                break;
            }
            let pending = matches!(self.out_state, Out::Pending(_));
            if pending {
                self.try_confirm(false).await?;
                if !matches!(self.out_state, Out::Pending(_)) {
                    continue;
                }
            }
            let cancel_wait = running.notify.notified();
            tokio::select! {
                ev = self.shell.next_event() => match ev {
                    ShellEvent::Chunk(Some(c)) => self.on_chunk(c, gen).await?,
                    ShellEvent::Chunk(None) => {
                        self.res.shell_gone = Some("the shell's output closed".into())
                    }
                    ShellEvent::Exited(code) => {
                    self.drain_after_exit(gen).await?;
                    self.res.exit_code = code;
                    self.res.shell_gone = Some(match code {
                        _ if self.shell.transport_lost() => TRANSPORT_LOST.into(),
                        Some(c) => format!("the shell exited with status {c}"),
                        None => "the shell exited".into(),
                    });
                    }
                },
                _ = tokio::time::sleep_until(deadline), if stopper.is_none() => {
                    self.res.timed_out = true;
                    stopper = Some(Stopper { stage: 0, next: Instant::now() });
                }
                // Woken by `cancel()`; the check below decides whether it is ours.
                _ = cancel_wait, if stopper.is_none() => {}
                _ = tokio::time::sleep(tick), if pending || stopper.is_some() => {}
            }
            if running.preview_wanted.swap(false, Ordering::SeqCst) {
                let preview = (
                    self.res.out.preview(Progress::TAIL_BYTES),
                    self.res.err.preview(Progress::TAIL_BYTES),
                );
                *running.preview.lock().unwrap_or_else(|p| p.into_inner()) = preview;
            }
            if running.cancel.load(Ordering::SeqCst) == seq && stopper.is_none() {
                self.res.cancelled = true;
                stopper = Some(Stopper {
                    stage: 0,
                    next: Instant::now(),
                });
            }
            if let Some(s) = &mut stopper {
                if Instant::now() >= s.next {
                    self.escalate(s, &background_before).await;
                }
            }
        }
        if self.res.shell_gone.is_some() && self.res.exit_code.is_none() {
            // The shell closed its output (`exec >&-`) and may still be running: the
            // command lasts until it exits; a shell without output is ended after 2 s.
            match tokio::time::timeout(Duration::from_secs(2), self.shell.wait_exit()).await {
                Ok(code) => self.res.exit_code = code,
                _ => {
                    self.shell.kill_all();
                    self.res.exit_code = self.shell.wait_exit().await;
                }
            }
        }
        if self.res.shell_gone.is_some() && self.shell.transport_lost() {
            self.res.shell_gone = Some(TRANSPORT_LOST.into());
        }
        self.res.duration = started.elapsed();
        self.finish_framing();
        if self.res.shell_gone.is_none() {
            // The kernel's word on the cwd, not the shell's.
            if let Some(c) = self.shell.kernel_cwd() {
                self.res.cwd = Some(c.display().to_string());
            }
        }
        self.shell.unlink_fifos();
        self.shell.reap_orphans();
        self.res.left_background = self
            .shell
            .background
            .iter()
            .filter(|c| !background_before.contains(c) && !self.shell.managed.contains(c))
            .count();
        Ok(self.outcome())
    }

    pub(super) fn outcome(self) -> Outcome {
        self.res
    }

    /// One step of SIGINT → SIGTERM → SIGKILL on the command's process groups; a command
    /// running inside the shell itself (a builtin loop) gets SIGINT on the shell, whose
    /// trap breaks out; last of all the shell is killed.
    pub(super) async fn escalate(&mut self, s: &mut Stopper, background_before: &[i32]) {
        let grace = self.session.config.limits.grace;
        let in_command = matches!(self.out_state, Out::Running(_));
        let groups = self.shell.child_groups(background_before).await;
        let sig = match s.stage {
            0 => Some(libc::SIGINT),
            1 => Some(libc::SIGTERM),
            2 => Some(libc::SIGKILL),
            _ => None,
        };
        match sig {
            Some(sig) => {
                self.shell.signal_groups(&groups, sig).await;
                if groups.is_empty() && in_command {
                    self.shell.signal_shell(libc::SIGINT).await;
                }
                s.next = Instant::now() + grace;
            }
            None if s.stage < 6 => {
                if in_command {
                    self.shell.signal_shell(libc::SIGINT).await;
                }
                s.next = Instant::now() + grace;
            }
            None => {
                self.shell.kill_all();
                s.next = Instant::now() + Duration::from_secs(3600);
            }
        }
        s.stage += 1;
    }

    pub(super) async fn drain_after_exit(&mut self, gen: u64) -> std::io::Result<()> {
        // The pipes may still hold the last output; give the readers a moment.
        let until = tokio::time::Instant::now() + Duration::from_millis(200);
        while !(self.eof.0 && self.eof.1) {
            match tokio::time::timeout_at(until, self.shell.rx.recv()).await {
                Ok(Some(c)) => self.on_chunk(c, gen).await?,
                _ => break,
            }
        }
        Ok(())
    }

    pub(super) async fn on_chunk(&mut self, c: Chunk, gen: u64) -> std::io::Result<()> {
        if c.gen != gen {
            return Ok(());
        }
        let Some(data) = c.data else {
            if c.err {
                self.eof.1 = true;
            } else {
                self.eof.0 = true;
            }
            if self.eof.0 && self.eof.1 && self.res.shell_gone.is_none() {
                self.res.shell_gone = Some("the shell's output closed".into());
            }
            return Ok(());
        };
        let counter = if c.err {
            &self.session.running.stderr_bytes
        } else {
            &self.session.running.stdout_bytes
        };
        counter.fetch_add(data.len() as u64, Ordering::Relaxed);
        if c.err {
            self.on_stderr(&data);
        } else {
            self.on_stdout(data);
            if matches!(self.out_state, Out::Pending(_)) {
                self.try_confirm(true).await?;
            }
        }
        Ok(())
    }

    pub(super) fn on_stderr(&mut self, data: &[u8]) {
        if self.err_done {
            return;
        }
        match &mut self.err_split {
            None => self.res.push_err(data),
            Some(split) => match split.push(data) {
                Split::Data(d) => self.res.push_err(&d),
                Split::Found { before, .. } => {
                    self.res.push_err(&before);
                    self.err_done = true;
                }
            },
        }
    }

    pub(super) fn on_stdout(&mut self, mut data: Vec<u8>) {
        loop {
            match &mut self.out_state {
                Out::Running(split) => match split.push(&data) {
                    Split::Data(d) => {
                        self.res.push_out(&d);
                        return;
                    }
                    Split::Found { before, after } => {
                        self.res.push_out(&before);
                        self.out_state = Out::Pending(after);
                        return;
                    }
                },
                Out::Pending(held) => {
                    held.extend_from_slice(&data);
                    // A second ask marker means the first was the command's own output.
                    if let Some(at) = memchr::memmem::rfind(held, &self.ask) {
                        let rest = held.split_off(at + self.ask.len());
                        let mut earlier = std::mem::replace(held, rest);
                        earlier.truncate(at);
                        self.push_forged_ask(&earlier);
                    } else if held.len() > PENDING_LIMIT && !self.shell.waiting_for_input_now() {
                        // A real ask is followed at once by the shell reading its stdin,
                        // not by a megabyte of output: this one was the command's.
                        let held = std::mem::take(held);
                        self.push_forged_ask(&[]);
                        let mut split = Splitter::new(self.ask.clone());
                        if let Split::Data(d) = split.push(&held) {
                            self.res.push_out(&d);
                        }
                        self.out_state = Out::Running(split);
                    }
                    return;
                }
                Out::AwaitEnd(split, gathered) => match split.push(&data) {
                    Split::Data(d) => {
                        gathered.extend(d);
                        return;
                    }
                    Split::Found { before, after } => {
                        gathered.extend(before);
                        // If a later ask marker came before the end, the confirmed one was
                        // forged by the command and everything up to the last is output.
                        if let Some(at) = memchr::memmem::rfind(gathered, &self.ask) {
                            let earlier = gathered[..at].to_vec();
                            self.push_forged_ask(&earlier);
                        }
                        let fin = self.fin_needle.clone();
                        self.out_state = Out::AwaitFin(Splitter::new(fin), Vec::new());
                        data = after;
                    }
                },
                Out::AwaitFin(split, body) => match split.push(&data) {
                    Split::Data(d) => {
                        body.extend(d);
                        return;
                    }
                    Split::Found { before, .. } => {
                        body.extend(before);
                        let body = std::mem::take(body);
                        self.parse_end(&body);
                        self.out_state = Out::Done;
                        return;
                    }
                },
                Out::Done => return,
            }
        }
    }

    /// Sends the nonce once the kernel shows the shell blocked reading its stdin: only
    /// then is the command really over. `spin` waits briefly for the shell to get there.
    pub(super) async fn try_confirm(&mut self, spin: bool) -> std::io::Result<()> {
        if !matches!(self.out_state, Out::Pending(_)) {
            return Ok(());
        }
        let tries = if spin { 10 } else { 1 };
        let mut ready = false;
        let remote = self.shell.is_remote();
        let mut children = Vec::new();
        for i in 0..tries {
            if let Some(c) = self.shell.confirm_over().await {
                children = c;
                ready = true;
                break;
            }
            if i + 1 < tries {
                // The shell calls read(2) microseconds after printing the marker.
                if remote {
                    // Each check is already a round trip: retry at once, then back off.
                    if i >= 2 {
                        tokio::time::sleep(Duration::from_millis(1 << (i - 2).min(4))).await;
                    }
                } else {
                    std::thread::sleep(Duration::from_micros(10 << i.min(5)));
                }
            }
        }
        if !ready {
            return Ok(());
        }
        // Children still alive now are background jobs: give the next command new pipes.
        self.shell.background = children;
        let managed = &self.shell.managed;
        if self.shell.background.iter().any(|c| !managed.contains(c)) {
            self.shell.rotate = true;
        }
        let nonce = frame::random_hex(16)?;
        self.shell.write(format!("{nonce}\n").as_bytes()).await?;
        self.fin_needle = frame::stdout_fin(&nonce);
        self.err_split = Some(Splitter::new(frame::stderr_end(&nonce)));
        let end = Out::AwaitEnd(Splitter::new(frame::stdout_end_prefix(&nonce)), Vec::new());
        if let Out::Pending(held) = std::mem::replace(&mut self.out_state, end) {
            if !held.is_empty() {
                self.on_stdout(held);
            }
        }
        Ok(())
    }

    /// `<status>:<len>:<PATH>:<cwd>\n` from the end marker. The PATH is taken by its
    /// length, so no byte in it can shift the fields; a body that does not fit the shape
    /// leaves cwd and PATH as they were.
    pub(super) fn parse_end(&mut self, body: &[u8]) {
        let Some((status, rest)) = split_at_colon(body) else {
            return;
        };
        if let Ok(code) = String::from_utf8_lossy(status).trim().parse::<i32>() {
            self.res.exit_code = Some(code);
        }
        let Some((len, rest)) = split_at_colon(rest) else {
            return;
        };
        let Some(len) = std::str::from_utf8(len)
            .ok()
            .and_then(|l| l.parse::<usize>().ok())
        else {
            return;
        };
        let (Some(path), Some(b':')) = (rest.get(..len), rest.get(len).copied()) else {
            return;
        };
        let cwd = &rest[len + 1..];
        let cwd = cwd.strip_suffix(b"\n").unwrap_or(cwd);
        self.res.path = Some(String::from_utf8_lossy(path).into_owned());
        if !cwd.is_empty() {
            self.res.cwd = Some(String::from_utf8_lossy(cwd).into_owned());
        }
    }

    /// An ask marker that turned out to be the command's own output goes back into its
    /// stdout, followed by what came after it.
    pub(super) fn push_forged_ask(&mut self, after: &[u8]) {
        self.res.push_out(&self.ask);
        self.res.push_out(after);
    }

    /// Hands bytes still held by the framing to the streams (the shell ended mid-frame).
    pub(super) fn finish_framing(&mut self) {
        match &mut self.out_state {
            Out::Running(split) => {
                let held = split.take_held();
                self.res.push_out(&held);
            }
            Out::Pending(held) => {
                let held = std::mem::take(held);
                self.push_forged_ask(&held);
            }
            _ => {}
        }
        if !self.err_done {
            if let Some(split) = &mut self.err_split {
                let held = split.take_held();
                self.res.push_err(&held);
            }
        }
    }
}
