//! The server's end of the remote helper's protocol ([`execkit_helper::wire`]): one byte
//! channel (an SSH exec channel or an attached `docker exec`) carrying the shell's input,
//! its output streams, the server's calls and the helper's replies.
//!
//! [`Link::start`] skips whatever the remote account printed before the helper's greeting
//! (banners, motd), sends the session's [`Start`] and waits for [`Ready`] (or the reason
//! the helper could not start the shell). A reader task then hands output to the session
//! as [`Chunk`]s (only the current stream generation's data; ends always), replies to
//! their callers, and the shell's end to [`Link::exit`]; a ping keeps the helper's idle
//! limit from firing while the server lives. When the channel ends without the helper
//! saying the shell exited, the connection is gone ([`Link::lost`]).

use crate::stream::Chunk;
use execkit_helper::msg::{Call, ExecAsk, ExecVerdict, Exited, Failed, Ready, Reply, Start};
use execkit_helper::wire::{self, Decoder, Greeting, Kind};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch};

/// How long the helper may take to greet and to start the shell.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Most bytes of prelude (banners) skipped before the greeting.
const PRELUDE_LIMIT: usize = 256 * 1024;
/// Interval of the keep-alive ping.
pub(crate) const PING_EVERY: Duration = Duration::from_secs(10);
/// The helper's idle limit: with no frame for this long it takes the tree down.
pub(crate) const IDLE_SECS: u64 = 90;

/// A raw byte channel to a remote command: its stdin, its stdout, and what it printed on
/// stderr (kept for error messages).
pub(crate) struct RawChannel {
    pub input: Box<dyn AsyncWrite + Send + Unpin>,
    pub output: mpsc::Receiver<Vec<u8>>,
    pub stderr: Arc<Mutex<Vec<u8>>>,
}

type Pending = Arc<Mutex<HashMap<u32, oneshot::Sender<Reply>>>>;

/// A started helper.
pub(crate) struct Link {
    frames: mpsc::Sender<Vec<u8>>,
    pending: Pending,
    next_id: AtomicU32,
    exit: watch::Receiver<Option<Option<i32>>>,
    lost: Arc<AtomicBool>,
    /// The clients the helper relays from the shell's network (served once armed).
    pub tunnels: Arc<crate::egress::tunnel::Tunnels>,
    /// What the helper reported when the shell started.
    pub ready: Ready,
}

/// Why the helper did not start the shell.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LinkError {
    /// The helper said why.
    #[error("the remote helper could not start the shell ({stage}): {message}")]
    Failed { stage: String, message: String },
    /// It never greeted (not found, not executable, wrong architecture, refused by the
    /// verification before it ran, …).
    #[error("the remote helper did not start: {0}")]
    NoGreeting(String),
    /// The protocol broke.
    #[error("the remote helper broke the protocol: {0}")]
    Protocol(String),
}

fn text_of(bytes: &[u8]) -> String {
    let t = String::from_utf8_lossy(bytes);
    let t = t.trim();
    let cut: String = t
        .chars()
        .rev()
        .take(600)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    if cut.is_empty() {
        "(nothing printed)".into()
    } else {
        cut
    }
}

impl Link {
    /// Greets, sends `start`, waits for the shell. Output chunks go to `chunks` while
    /// their generation is `current`.
    pub(crate) async fn start(
        raw: RawChannel,
        nonce: &str,
        start: &Start,
        chunks: mpsc::Sender<Chunk>,
        current: Arc<AtomicU64>,
        asks: Option<mpsc::Sender<ExecAsk>>,
    ) -> Result<Link, LinkError> {
        let RawChannel {
            mut input,
            mut output,
            stderr,
        } = raw;
        let (frames, mut frames_rx) = mpsc::channel::<Vec<u8>>(64);
        tokio::spawn(async move {
            while let Some(bytes) = frames_rx.recv().await {
                if input.write_all(&bytes).await.is_err() || input.flush().await.is_err() {
                    break;
                }
            }
            let _ = input.shutdown().await;
        });
        let why_not = |prelude: &[u8]| {
            let err = stderr.lock().map(|e| text_of(&e)).unwrap_or_default();
            format!("stdout: {}; stderr: {err}", text_of(prelude))
        };
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        let mut greeting = Greeting::new(nonce, PRELUDE_LIMIT);
        let rest = loop {
            match tokio::time::timeout_at(deadline, output.recv()).await {
                Ok(Some(bytes)) => match greeting.push(&bytes) {
                    Ok(Some(rest)) => break rest,
                    Ok(None) => {}
                    Err(e) => return Err(LinkError::NoGreeting(e.to_string())),
                },
                Ok(None) => return Err(LinkError::NoGreeting(why_not(greeting.prelude()))),
                Err(_) => {
                    return Err(LinkError::NoGreeting(format!(
                        "no greeting within {START_TIMEOUT:?} ({})",
                        why_not(greeting.prelude())
                    )))
                }
            }
        };
        let json = serde_json::to_vec(start).map_err(|e| LinkError::Protocol(e.to_string()))?;
        let _ = frames.send(wire::encode(Kind::Start, &json)).await;
        let mut decoder = Decoder::new();
        decoder.push(&rest);
        let ready = loop {
            match decoder.next_frame() {
                Err(e) => return Err(LinkError::Protocol(e.to_string())),
                Ok(Some((Kind::Ready, p))) => {
                    break serde_json::from_slice::<Ready>(&p)
                        .map_err(|e| LinkError::Protocol(format!("Ready: {e}")))?
                }
                Ok(Some((Kind::Failed, p))) => {
                    let f: Failed = serde_json::from_slice(&p)
                        .map_err(|e| LinkError::Protocol(format!("Failed: {e}")))?;
                    return Err(LinkError::Failed {
                        stage: f.stage,
                        message: f.message,
                    });
                }
                Ok(Some((k, _))) => return Err(LinkError::Protocol(format!("{k:?} before Ready"))),
                Ok(None) => match tokio::time::timeout_at(deadline, output.recv()).await {
                    Ok(Some(bytes)) => decoder.push(&bytes),
                    Ok(None) => {
                        return Err(LinkError::NoGreeting(format!(
                            "the helper ended before the shell started ({})",
                            why_not(b"")
                        )))
                    }
                    Err(_) => {
                        return Err(LinkError::NoGreeting(format!(
                            "the shell did not start within {START_TIMEOUT:?}"
                        )))
                    }
                },
            }
        };
        let pending: Pending = Arc::default();
        let tunnels = crate::egress::tunnel::Tunnels::new(frames.clone());
        let (exit_tx, exit) = watch::channel(None);
        let lost = Arc::new(AtomicBool::new(false));
        tokio::spawn(read_loop(
            decoder,
            output,
            chunks,
            current,
            pending.clone(),
            exit_tx,
            lost.clone(),
            (asks, frames.clone(), tunnels.clone()),
        ));
        let pinger = frames.downgrade();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(PING_EVERY).await;
                let Some(f) = pinger.upgrade() else { return };
                if f.send(wire::encode(Kind::Ping, b"")).await.is_err() {
                    return;
                }
            }
        });
        Ok(Link {
            frames,
            pending,
            next_id: AtomicU32::new(1),
            exit,
            lost,
            tunnels,
            ready,
        })
    }

    /// Bytes for the shell's stdin.
    pub(crate) async fn input(&self, bytes: &[u8]) -> std::io::Result<()> {
        let mut frame = Vec::with_capacity(bytes.len() + wire::HEADER);
        for part in bytes.chunks(wire::MAX_FRAME) {
            wire::encode_into(&mut frame, Kind::Input, &[part]);
        }
        self.frames
            .send(frame)
            .await
            .map_err(|_| std::io::Error::other("the connection to the remote helper is closed"))
    }

    /// A call and its answer (`None`: no answer — the link is gone or the call failed).
    pub(crate) async fn call(&self, call: &Call) -> Option<serde_json::Value> {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().ok()?.insert(id, tx);
        let json = serde_json::to_vec(call).ok()?;
        let mut frame = Vec::new();
        wire::encode_into(&mut frame, Kind::Call, &[&id.to_be_bytes(), &json]);
        if self.frames.send(frame).await.is_err() {
            return None;
        }
        match tokio::time::timeout(CALL_TIMEOUT, rx).await {
            Ok(Ok(Reply::Ok(v))) => Some(v),
            _ => {
                if let Ok(mut p) = self.pending.lock() {
                    p.remove(&id);
                }
                None
            }
        }
    }

    /// A call whose answer is of type `T`.
    pub(crate) async fn call_as<T: serde::de::DeserializeOwned>(&self, call: &Call) -> Option<T> {
        serde_json::from_value(self.call(call).await?).ok()
    }

    /// Answers a program the helper stopped at its start.
    pub(crate) async fn verdict(&self, v: ExecVerdict) {
        if let Ok(json) = serde_json::to_vec(&v) {
            let _ = self
                .frames
                .send(wire::encode(Kind::ExecVerdict, &json))
                .await;
        }
    }

    /// Asks the helper to end the session (kill the tree, clean up, exit).
    pub(crate) fn close(&self) {
        let _ = self.frames.try_send(wire::encode(Kind::Close, b""));
    }

    /// Waits for the shell's end: its exit code (`None` when the connection went first).
    pub(crate) async fn exit_code(&self) -> Option<i32> {
        let mut rx = self.exit.clone();
        let code = rx.wait_for(Option::is_some).await.map(|v| v.flatten());
        code.ok().flatten()
    }

    /// True when the channel ended without the helper reporting the shell's end.
    pub(crate) fn lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }
}

/// Where the helper's questions about programs go: the session's decider, or — without
/// one — a refusal sent straight back on the frames channel (fail closed).
/// The tunnels are the clients the helper relays.
type Asks = (
    Option<mpsc::Sender<ExecAsk>>,
    mpsc::Sender<Vec<u8>>,
    Arc<crate::egress::tunnel::Tunnels>,
);

#[allow(clippy::too_many_arguments)]
async fn read_loop(
    mut decoder: Decoder,
    mut output: mpsc::Receiver<Vec<u8>>,
    chunks: mpsc::Sender<Chunk>,
    current: Arc<AtomicU64>,
    pending: Pending,
    exit: watch::Sender<Option<Option<i32>>>,
    lost: Arc<AtomicBool>,
    (asks, frames, tunnels): Asks,
) {
    let mut exited = false;
    'outer: loop {
        loop {
            let frame = match decoder.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(_) => break 'outer,
            };
            match frame {
                (k @ (Kind::Stdout | Kind::Stderr), p) => {
                    let Ok((gen, data)) = wire::split_stream(k, &p) else {
                        break 'outer;
                    };
                    if current.load(Ordering::SeqCst) != gen {
                        continue;
                    }
                    let chunk = Chunk {
                        gen,
                        err: k == Kind::Stderr,
                        data: Some(data.to_vec()),
                    };
                    if chunks.send(chunk).await.is_err() {
                        break 'outer;
                    }
                }
                (Kind::StreamEnd, p) => {
                    let Ok((gen, rest)) = wire::split_stream(Kind::StreamEnd, &p) else {
                        break 'outer;
                    };
                    let err = rest.first() == Some(&1);
                    let _ = chunks
                        .send(Chunk {
                            gen,
                            err,
                            data: None,
                        })
                        .await;
                }
                (Kind::Reply, p) => {
                    let Ok((id, json)) = wire::split_id(Kind::Reply, &p) else {
                        break 'outer;
                    };
                    let reply = serde_json::from_slice::<Reply>(json)
                        .unwrap_or_else(|e| Reply::Err(e.to_string()));
                    let waiter = pending.lock().ok().and_then(|mut m| m.remove(&id));
                    if let Some(w) = waiter {
                        let _ = w.send(reply);
                    }
                }
                (Kind::ExecAsk, p) => {
                    let Ok(ask) = serde_json::from_slice::<ExecAsk>(&p) else {
                        break 'outer;
                    };
                    let (id, connection) = (ask.id, ask.connection.is_some());
                    let queued = match &asks {
                        Some(tx) => tx.send(ask).await.is_ok(),
                        None => false,
                    };
                    if !queued {
                        let no = ExecVerdict {
                            id,
                            allow: false,
                            remember: false,
                            connection,
                            reason: Some("no runtime decisions in this session".into()),
                            approved_by: None,
                        };
                        if let Ok(json) = serde_json::to_vec(&no) {
                            let _ = frames.send(wire::encode(Kind::ExecVerdict, &json)).await;
                        }
                    }
                }
                (
                    k @ (Kind::TunnelOpen
                    | Kind::TunnelUp
                    | Kind::TunnelUpEnd
                    | Kind::TunnelDownAck),
                    p,
                ) => {
                    if tunnels.frame(k, &p).await.is_err() {
                        break 'outer;
                    }
                }
                (Kind::Exited, p) => {
                    let code = serde_json::from_slice::<Exited>(&p).ok().map(|e| e.code);
                    exited = true;
                    let _ = exit.send(Some(code));
                }
                _ => break 'outer,
            }
        }
        match output.recv().await {
            Some(bytes) => decoder.push(&bytes),
            None => break,
        }
    }
    if !exited {
        lost.store(true, Ordering::SeqCst);
        let gen = current.load(Ordering::SeqCst);
        for err in [false, true] {
            let _ = chunks
                .send(Chunk {
                    gen,
                    err,
                    data: None,
                })
                .await;
        }
        let _ = exit.send(Some(None));
    }
    if let Ok(mut p) = pending.lock() {
        p.clear();
    }
}
