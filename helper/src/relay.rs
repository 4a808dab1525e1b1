//! The helper's relay: the way out of a shell whose network is the helper's own and has
//! no route (an ephemeral container's `none` network).
//!
//! The helper listens on `127.0.0.1:PORT` in that network and carries each client's bytes
//! to the server over its link, untouched; the server's egress broker parses, decides and
//! dials there, exactly as for a local session. The helper parses nothing and dials
//! nothing. It only says which program opened each client (as the exec listener noted
//! the connection, else from `/proc`).
//!
//! Flow control is a window per direction: at most [`WINDOW`] bytes (a quarter MiB) of one client are on
//! their way before the other side acknowledges them, so a client that stops reading, or
//! an upstream that does, holds that much and never stalls the link.
//!
//! Trade-offs: two threads per client (at most [`MAX_CLIENTS`]); every byte crosses the
//! link, which the container's attach stream bounds.

use execkit_helper::msg::{Start, TunnelOpen};
use execkit_helper::wire::Kind;
use execkit_sandbox::socket_owner::BrokerClients;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};

/// Clients relayed at once.
const MAX_CLIENTS: usize = 512;
/// Bytes of one client in flight in each direction.
const WINDOW: usize = execkit_helper::wire::TUNNEL_WINDOW;
/// Bytes read from a client at a time.
const CHUNK: usize = 64 * 1024;

/// The relay's listener, where the session asks for it: `Ok(None)` when it does not,
/// `Err` (a note for the report) when the helper's network has a way out, which would
/// let the shell go around the relay, or the port is taken.
pub(crate) fn listen(start: &Start) -> Result<Option<TcpListener>, String> {
    let Some(b) = start.broker.as_ref().filter(|b| b.relay) else {
        return Ok(None);
    };
    let others = interfaces_besides_loopback()
        .map_err(|e| format!("cannot list the network's interfaces: {e}"))?;
    if !others.is_empty() {
        return Err(format!(
            "the network has interfaces besides the loopback ({}), a way around the relay",
            others.join(", ")
        ));
    }
    TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, b.port))
        .map(Some)
        .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}", b.port))
}

/// The network interfaces of the helper's network other than `lo`.
fn interfaces_besides_loopback() -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/sys/class/net")? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name != "lo" {
            out.push(name);
        }
    }
    Ok(out)
}

/// Sends one frame to the server (the supervisor's one writer).
pub(crate) type SendFrame = fn(Kind, &[&[u8]]) -> io::Result<()>;

/// The relay of one session.
#[derive(Clone)]
pub(crate) struct Relay {
    shared: Arc<Shared>,
}

struct Shared {
    clients: Mutex<HashMap<u32, Arc<Client>>>,
    next_id: AtomicU32,
    count: AtomicUsize,
    noted: Arc<BrokerClients>,
    port: u16,
    /// The shell (the clients' network is its).
    shell: i32,
    send: SendFrame,
}

/// What the server's frames reach of one client.
struct Client {
    down: mpsc::Sender<Down>,
    credit: Credit,
}

enum Down {
    Data(Vec<u8>),
    End,
}

/// Bytes one side may still send before the other acknowledges them.
struct Credit {
    left: Mutex<usize>,
    changed: Condvar,
}

impl Credit {
    fn new() -> Credit {
        Credit {
            left: Mutex::new(WINDOW),
            changed: Condvar::new(),
        }
    }

    /// Waits for credit and takes up to `max` (at least one byte).
    fn take(&self, max: usize) -> usize {
        let mut left = self.left.lock().unwrap_or_else(|p| p.into_inner());
        while *left == 0 {
            left = self.changed.wait(left).unwrap_or_else(|p| p.into_inner());
        }
        let n = (*left).min(max);
        *left -= n;
        n
    }

    fn give(&self, n: usize) {
        let mut left = self.left.lock().unwrap_or_else(|p| p.into_inner());
        *left = (*left + n).min(WINDOW);
        self.changed.notify_all();
    }
}

impl Relay {
    /// Relays the clients of `listener` on threads of its own.
    pub(crate) fn start(
        listener: TcpListener,
        port: u16,
        shell: i32,
        send: SendFrame,
    ) -> io::Result<Relay> {
        let relay = Relay {
            shared: Arc::new(Shared {
                clients: Mutex::default(),
                next_id: AtomicU32::new(1),
                count: AtomicUsize::new(0),
                noted: Arc::default(),
                port,
                shell,
                send,
            }),
        };
        let r = relay.clone();
        std::thread::Builder::new()
            .name("relay".into())
            .spawn(move || r.accept_loop(&listener))?;
        Ok(relay)
    }

    /// The port it listens on.
    pub(crate) fn port(&self) -> u16 {
        self.shared.port
    }

    /// Where the exec listener notes each connection to the relay with its program.
    pub(crate) fn clients(&self) -> Arc<BrokerClients> {
        self.shared.noted.clone()
    }

    fn client(&self, id: u32) -> Option<Arc<Client>> {
        self.shared.clients.lock().ok()?.get(&id).cloned()
    }

    /// The server's bytes for client `id`.
    pub(crate) fn down(&self, id: u32, bytes: &[u8]) {
        if let Some(c) = self.client(id) {
            let _ = c.down.send(Down::Data(bytes.to_vec()));
        }
    }

    /// The server's side of client `id` ended.
    pub(crate) fn down_end(&self, id: u32) {
        if let Some(c) = self.client(id) {
            let _ = c.down.send(Down::End);
        }
    }

    /// The server took `n` bytes of client `id`.
    pub(crate) fn up_ack(&self, id: u32, n: u32) {
        if let Some(c) = self.client(id) {
            c.credit.give(n as usize);
        }
    }

    fn accept_loop(&self, listener: &TcpListener) {
        for stream in listener.incoming() {
            let Ok(stream) = stream else {
                // Out of descriptors or threads: let clients finish before the next one.
                std::thread::sleep(std::time::Duration::from_millis(50));
                continue;
            };
            if self.shared.count.fetch_add(1, Ordering::SeqCst) >= MAX_CLIENTS {
                self.shared.count.fetch_sub(1, Ordering::SeqCst);
                continue;
            }
            let r = self.clone();
            let spawned = std::thread::Builder::new()
                .name("relay-client".into())
                .spawn(move || {
                    r.serve(stream);
                    r.shared.count.fetch_sub(1, Ordering::SeqCst);
                });
            if spawned.is_err() {
                self.shared.count.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    /// One client: announced, its bytes carried up here and down on a writer thread.
    fn serve(&self, stream: TcpStream) {
        let id = self.shared.next_id.fetch_add(1, Ordering::SeqCst);
        let (tx, rx) = mpsc::channel();
        let client = Arc::new(Client {
            down: tx,
            credit: Credit::new(),
        });
        if let Ok(mut m) = self.shared.clients.lock() {
            m.insert(id, client.clone());
        }
        let open = TunnelOpen {
            program: self.program_of(&stream),
        };
        let announced = serde_json::to_vec(&open)
            .map_err(io::Error::other)
            .and_then(|json| (self.shared.send)(Kind::TunnelOpen, &[&id.to_be_bytes(), &json]));
        let writer = stream.try_clone().ok().and_then(|w| {
            let send = self.shared.send;
            std::thread::Builder::new()
                .name("relay-down".into())
                .spawn(move || write_down(w, id, &rx, send))
                .ok()
        });
        if announced.is_ok() && writer.is_some() {
            self.carry_up(&stream, id, &client.credit);
        }
        // The server's side ends on its own (after the client's end reached it).
        if let Some(w) = writer {
            let _ = w.join();
        }
        let _ = stream.shutdown(Shutdown::Both);
        if let Ok(mut m) = self.shared.clients.lock() {
            m.remove(&id);
        }
    }

    /// The client's bytes to the server, within the window; then its end.
    fn carry_up(&self, mut stream: &TcpStream, id: u32, credit: &Credit) {
        let mut buf = vec![0u8; CHUNK];
        loop {
            let room = credit.take(CHUNK);
            let n = match stream.read(&mut buf[..room]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    credit.give(room);
                    continue;
                }
                Ok(n) => n,
                Err(_) => 0,
            };
            credit.give(room - n);
            if n == 0 {
                let _ = (self.shared.send)(Kind::TunnelUpEnd, &[&id.to_be_bytes()]);
                return;
            }
            if (self.shared.send)(Kind::TunnelUp, &[&id.to_be_bytes(), &buf[..n]]).is_err() {
                return;
            }
        }
    }

    /// The executable of the process that opened `client` — as the exec listener noted
    /// it, else (slowly) from `/proc` — or "" when unknown.
    fn program_of(&self, client: &TcpStream) -> String {
        let port = client.peer_addr().map(|a| a.port()).unwrap_or(0);
        if let Some(p) = self.shared.noted.take(port) {
            return p;
        }
        execkit_sandbox::socket_owner::program(self.shared.shell, port, self.shared.port)
            .unwrap_or_default()
    }
}

/// The server's bytes to the client, each write acknowledged (a failed write too: the
/// bytes are gone either way); at the server's end, the client's reading half ends.
fn write_down(mut stream: TcpStream, id: u32, rx: &mpsc::Receiver<Down>, send: SendFrame) {
    while let Ok(d) = rx.recv() {
        match d {
            Down::Data(b) => {
                let _ = stream.write_all(&b);
                let n = u32::try_from(b.len()).unwrap_or(u32::MAX);
                if send(Kind::TunnelDownAck, &[&id.to_be_bytes(), &n.to_be_bytes()]).is_err() {
                    break;
                }
            }
            Down::End => {
                let _ = stream.shutdown(Shutdown::Write);
                break;
            }
        }
    }
}
