//! The server's side of the remote helper's relay: each client the helper accepted in a
//! shell's network without a route (an ephemeral container's) arrives as a tunnel on the
//! helper's link and is served by this session's egress broker as if it had connected
//! here — parsed, decided with the program the helper named, resolved and dialled by the
//! server.
//!
//! Each direction has a window of [`TUNNEL_WINDOW`] bytes: the down direction waits for
//! the helper's acknowledgements before it sends more, and bytes coming up are
//! acknowledged once the broker took them. Bytes for a tunnel that is not open (refused
//! or gone) are acknowledged and dropped, so the helper never waits for them.

use super::proxy::{self, Client, Shared};
use super::EgressConfig;
use crate::exec_guard::RuntimeDecider;
use execkit_helper::msg::TunnelOpen;
use execkit_helper::wire::{self, Kind, WireError, TUNNEL_WINDOW};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use tokio::io::DuplexStream;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, oneshot, Semaphore};

/// Tunnels open at once.
const MAX_TUNNELS: usize = 512;
/// Bytes buffered between the broker and a tunnel's pumps.
const DUPLEX: usize = 64 * 1024;
/// Bytes sent down in one frame at most.
const CHUNK: usize = 64 * 1024;

/// The relayed clients of one link.
pub(crate) struct Tunnels {
    frames: mpsc::Sender<Vec<u8>>,
    /// The session's broker, once its decider exists; until then tunnels are refused.
    broker: OnceLock<Arc<Shared>>,
    open: Mutex<HashMap<u32, Entry>>,
}

struct Entry {
    up: mpsc::UnboundedSender<Up>,
    /// Bytes that may still go down before the helper acknowledges them.
    credit: Arc<Semaphore>,
    up_ended: bool,
    down_ended: bool,
    /// Dropped with the entry: the down direction stops then (the link is gone).
    _alive: oneshot::Sender<()>,
}

enum Up {
    Data(Vec<u8>),
    End,
}

fn id_frame(kind: Kind, id: u32, rest: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(wire::HEADER + 4 + rest.len());
    wire::encode_into(&mut f, kind, &[&id.to_be_bytes(), rest]);
    f
}

fn ack(id: u32, n: usize) -> Vec<u8> {
    let n = u32::try_from(n).unwrap_or(u32::MAX);
    id_frame(Kind::TunnelUpAck, id, &n.to_be_bytes())
}

impl Tunnels {
    /// Tunnels whose frames go out on `frames`.
    pub(crate) fn new(frames: mpsc::Sender<Vec<u8>>) -> Arc<Tunnels> {
        Arc::new(Tunnels {
            frames,
            broker: OnceLock::new(),
            open: Mutex::default(),
        })
    }

    /// Serves tunnels from now on with the session's decider and egress settings.
    pub(crate) fn arm(&self, decider: Arc<RuntimeDecider>, config: EgressConfig) {
        let _ = self.broker.set(Shared::relayed(decider, config));
    }

    /// One of the helper's tunnel frames.
    pub(crate) async fn frame(
        self: &Arc<Self>,
        kind: Kind,
        payload: &[u8],
    ) -> Result<(), WireError> {
        let (id, rest) = wire::split_id(kind, payload)?;
        match kind {
            Kind::TunnelOpen => {
                let program = serde_json::from_slice::<TunnelOpen>(rest)
                    .map(|o| o.program)
                    .unwrap_or_default();
                self.open(id, program).await;
            }
            Kind::TunnelUp => self.up(id, rest).await,
            Kind::TunnelUpEnd => self.up_end(id),
            _ => self.down_ack(id, wire::ack_count(kind, rest)?),
        }
        Ok(())
    }

    /// A new client: served by the broker, or (unarmed, too many) ended at once.
    async fn open(self: &Arc<Self>, id: u32, program: String) {
        let broker = self.broker.get().cloned();
        let room = self
            .open
            .lock()
            .map(|m| m.len() < MAX_TUNNELS)
            .unwrap_or(false);
        let Some(broker) = broker.filter(|_| room) else {
            let _ = self
                .frames
                .send(id_frame(Kind::TunnelDownEnd, id, &[]))
                .await;
            return;
        };
        // The broker's side buffers little: what waits for the client waits in the
        // window (a stalled client holds a quarter MiB of this server, not megabytes).
        let (ours, theirs) = tokio::io::duplex(DUPLEX);
        tokio::spawn(proxy::serve(theirs, Client::of(program), broker));
        let (r, w) = tokio::io::split(ours);
        let (up, rx) = mpsc::unbounded_channel();
        let credit = Arc::new(Semaphore::new(TUNNEL_WINDOW));
        let (alive, gone) = oneshot::channel();
        if let Ok(mut m) = self.open.lock() {
            let entry = Entry {
                up,
                credit: credit.clone(),
                up_ended: false,
                down_ended: false,
                _alive: alive,
            };
            m.insert(id, entry);
        }
        tokio::spawn(carry_up(self.frames.clone(), id, w, rx));
        let down = carry_down(Arc::downgrade(self), id, r, credit);
        tokio::spawn(async move {
            tokio::select! {
                () = down => {}
                _ = gone => {}
            }
        });
    }

    /// The client's bytes, for the broker (acknowledged at once when the tunnel is gone).
    async fn up(&self, id: u32, bytes: &[u8]) {
        let sent = self.open.lock().ok().and_then(|m| {
            m.get(&id)
                .map(|e| e.up.send(Up::Data(bytes.to_vec())).is_ok())
        });
        if sent != Some(true) {
            let _ = self.frames.send(ack(id, bytes.len())).await;
        }
    }

    fn up_end(&self, id: u32) {
        if let Some(e) = self.open.lock().ok().as_mut().and_then(|m| m.get_mut(&id)) {
            let _ = e.up.send(Up::End);
            e.up_ended = true;
        }
        self.forget_if_over(id);
    }

    fn down_ack(&self, id: u32, n: u32) {
        if let Some(e) = self.open.lock().ok().as_ref().and_then(|m| m.get(&id)) {
            e.credit.add_permits(n as usize);
        }
    }

    fn down_ended(&self, id: u32) {
        if let Some(e) = self.open.lock().ok().as_mut().and_then(|m| m.get_mut(&id)) {
            e.down_ended = true;
        }
        self.forget_if_over(id);
    }

    fn forget_if_over(&self, id: u32) {
        if let Ok(mut m) = self.open.lock() {
            if m.get(&id).is_some_and(|e| e.up_ended && e.down_ended) {
                m.remove(&id);
            }
        }
    }
}

/// The client's bytes into the broker, each acknowledged once taken; at its end, the
/// broker's reading half ends.
async fn carry_up(
    frames: mpsc::Sender<Vec<u8>>,
    id: u32,
    mut w: WriteHalf<DuplexStream>,
    mut rx: mpsc::UnboundedReceiver<Up>,
) {
    while let Some(u) = rx.recv().await {
        match u {
            Up::Data(b) => {
                let _ = w.write_all(&b).await;
                if frames.send(ack(id, b.len())).await.is_err() {
                    return;
                }
            }
            Up::End => {
                let _ = w.shutdown().await;
                return;
            }
        }
    }
}

/// The broker's bytes down to the client within the window; then its end.
async fn carry_down(
    tunnels: Weak<Tunnels>,
    id: u32,
    mut r: ReadHalf<DuplexStream>,
    credit: Arc<Semaphore>,
) {
    let Some(frames) = tunnels.upgrade().map(|t| t.frames.clone()) else {
        return;
    };
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = r.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            break;
        }
        // `n` ≤ CHUNK < the window: always grantable.
        let Ok(permit) = credit.acquire_many(n as u32).await else {
            return;
        };
        permit.forget();
        if frames
            .send(id_frame(Kind::TunnelDown, id, &buf[..n]))
            .await
            .is_err()
        {
            return;
        }
    }
    let _ = frames.send(id_frame(Kind::TunnelDownEnd, id, &[])).await;
    if let Some(t) = tunnels.upgrade() {
        t.down_ended(id);
    }
}
