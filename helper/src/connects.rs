//! The shell's `connect` calls, stopped with its program starts: the helper makes the
//! connection itself ([`execkit_sandbox::socket_notify`]); a Unix socket file outside the
//! workspace and the private directory waits for the server's decision (an
//! [`execkit_helper::msg::ExecAsk`] naming the socket).

use execkit_sandbox::exec_notify::Supervisor;
use execkit_sandbox::socket_notify::{self, Destination, Peer, SocketFile, SocketStop};
use execkit_sandbox::socket_owner::{is_broker_address, BrokerClients};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// The executable of task `pid` ("" when it cannot be read).
fn program_of(pid: i32) -> String {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// Connections waiting for the server.
#[derive(Default)]
pub(crate) struct Connects {
    /// Directories whose sockets are the session's own (canonical).
    own: Vec<PathBuf>,
    /// The shell has a network of its own, whose abstract names are the session's.
    private_network: bool,
    waiting: HashMap<u64, (SocketStop, SocketFile)>,
    /// The broker's port and where connections to it are noted with their program.
    broker: Option<(u16, Arc<BrokerClients>)>,
}

/// What to do with a stopped `connect`.
pub(crate) enum Next {
    /// Answered already.
    Done,
    /// Ask the server about this connection by `program` to the socket at `path`.
    Ask { program: String, path: String },
}

impl Connects {
    /// Connections whose sockets in `own` are the session's own; with `private_network`
    /// the abstract names are too.
    pub(crate) fn new(own: Vec<PathBuf>, private_network: bool) -> Connects {
        Connects {
            own,
            private_network,
            waiting: HashMap::new(),
            broker: None,
        }
    }

    /// Notes each connection to the broker at `127.0.0.1:port` in `clients`.
    pub(crate) fn note_broker_clients(&mut self, port: u16, clients: Arc<BrokerClients>) {
        self.broker = Some((port, clients));
    }

    /// For a connection to the broker: note its program once it is connected.
    fn note(&self, stop: &SocketStop) -> Option<socket_notify::Connected> {
        let (port, clients) = self.broker.as_ref()?;
        if !is_broker_address(&stop.address, *port) {
            return None;
        }
        let (clients, program) = (clients.clone(), program_of(stop.pid));
        Some(Box::new(move |sock| clients.note(sock, program)))
    }

    /// Answers a stopped `connect`, or says what to ask the server.
    pub(crate) fn stopped(&mut self, sup: &Supervisor, n: &libc::seccomp_notif) -> Next {
        let stop = match socket_notify::read(n) {
            Ok(s) => s,
            Err(e) => {
                let invalid = e.kind() == std::io::ErrorKind::InvalidInput;
                let _ = sup.answer(
                    n.id,
                    false,
                    if invalid { libc::EINVAL } else { libc::EFAULT },
                );
                return Next::Done;
            }
        };
        let path = match &stop.peer {
            Peer::UnixPath(p) => p.clone(),
            // Sharing the host's network, the session's abstract names are the host's, which
            // a connection made here would reach past the sandbox's scoping. In a network of
            // its own they are the session's: the socket, made there, looks them up there.
            Peer::Abstract if !self.private_network => {
                let _ = sup.answer(n.id, false, libc::EACCES);
                return Next::Done;
            }
            Peer::Abstract | Peer::Other => {
                let to = Destination::Bytes(stop.address.clone());
                socket_notify::connect_for_then(sup, &stop, to, None, self.note(&stop));
                return Next::Done;
            }
        };
        let file = match socket_notify::resolve(stop.pid, &path) {
            Ok(f) => f,
            Err(errno) => {
                let _ = sup.answer(n.id, false, errno);
                return Next::Done;
            }
        };
        if self
            .own
            .iter()
            .any(|d| std::path::Path::new(&file.path).starts_with(d))
        {
            socket_notify::connect_for(sup, &stop, Destination::File(file), None);
            return Next::Done;
        }
        let program = program_of(stop.pid);
        let path = file.path.clone();
        self.waiting.insert(stop.id, (stop, file));
        Next::Ask { program, path }
    }

    /// The server's verdict on a waiting connection; false when `id` is none of ours.
    pub(crate) fn verdict(&mut self, sup: &Supervisor, id: u64, allow: bool) -> bool {
        let Some((stop, file)) = self.waiting.remove(&id) else {
            return false;
        };
        if allow {
            socket_notify::connect_for(sup, &stop, Destination::File(file), None);
        } else {
            let _ = sup.answer(id, false, libc::EACCES);
        }
        true
    }
}
