//! Every `connect` of a local session, answered by the exec guard's thread: a Unix socket
//! file outside the session's own directories is decided by the policies as a `connect`
//! to `Host::"unix:/path"` (refused by the shipped sets unless an operator lists it in
//! `HostGroup::"unix-sockets"`), and every connection that goes ahead is made by the
//! supervisor to what was read and decided ([`execkit_sandbox::socket_notify`]).

use crate::exec_guard::RuntimeDecider;
use crate::result::RuntimeDenial;
use execkit_engine::{Connection, Verdict};
use execkit_sandbox::exec_notify::Supervisor;
use execkit_sandbox::socket_notify::{self, Creds, Destination, Peer, SocketFile, SocketStop};
use execkit_sandbox::socket_owner::{is_broker_address, BrokerClients};
use std::path::{Path, PathBuf};

/// What a session's sockets may reach without a decision, and how connections are made.
#[derive(Debug, Clone)]
pub(crate) struct SocketScope {
    /// Directories whose socket files are the session's own (the workspace, its private
    /// tmp, its private `/dev/shm`), canonical.
    pub own: Vec<PathBuf>,
    /// The session has a network namespace of its own (abstract Unix names are then its
    /// own too).
    pub private_network: bool,
    /// The account connections are made as (the run-as account).
    pub creds: Option<Creds>,
    /// Connections to the session's egress broker, noted with their program.
    pub broker_clients: std::sync::Arc<BrokerClients>,
}

impl SocketScope {
    fn is_own(&self, path: &str) -> bool {
        self.own.iter().any(|d| Path::new(path).starts_with(d))
    }
}

/// Answers one stopped `connect`.
pub(crate) fn handle(
    sup: &Supervisor,
    decider: &RuntimeDecider,
    scope: &SocketScope,
    n: &libc::seccomp_notif,
) {
    let stop = match socket_notify::read(n) {
        Ok(s) => s,
        Err(e) => {
            let errno = if e.kind() == std::io::ErrorKind::InvalidInput {
                libc::EINVAL
            } else {
                libc::EFAULT
            };
            let _ = sup.answer(n.id, false, errno);
            return;
        }
    };
    match destination(decider, scope, &stop) {
        Ok(to) => socket_notify::connect_for_then(sup, &stop, to, scope.creds, note(scope, &stop)),
        Err(errno) => {
            let _ = sup.answer(n.id, false, errno);
        }
    }
}

/// Where the connection goes, or the errno that refuses it.
fn destination(
    decider: &RuntimeDecider,
    scope: &SocketScope,
    stop: &SocketStop,
) -> Result<Destination, i32> {
    match &stop.peer {
        Peer::UnixPath(p) => unix_file(decider, scope, stop.pid, p).map(Destination::File),
        Peer::Abstract if !scope.private_network => {
            refuse_abstract(decider, stop.pid);
            Err(libc::EACCES)
        }
        Peer::Abstract | Peer::Other => Ok(Destination::Bytes(stop.address.clone())),
    }
}

/// The socket file `path` names for task `pid`, if the session may reach it: its own, or
/// allowed by the policies.
fn unix_file(
    decider: &RuntimeDecider,
    scope: &SocketScope,
    pid: i32,
    path: &[u8],
) -> Result<SocketFile, i32> {
    let file = socket_notify::resolve(pid, path)?;
    if scope.is_own(&file.path) {
        return Ok(file);
    }
    let c = Connection::unix(&file.path, program_of(pid));
    if crate::egress::judge::judge(decider, &c, None).allow {
        Ok(file)
    } else {
        Err(libc::EACCES)
    }
}

/// The executable task `pid` runs.
/// For a connection to the session's broker: note its program once it is connected.
fn note(scope: &SocketScope, stop: &SocketStop) -> Option<socket_notify::Connected> {
    let to_broker = scope.private_network
        && stop.peer == Peer::Other
        && is_broker_address(&stop.address, crate::egress::BROKER_PORT);
    let clients = scope.broker_clients.clone();
    let program = to_broker.then(|| program_of(stop.pid))?;
    Some(Box::new(move |sock| clients.note(sock, program)))
}

fn program_of(pid: i32) -> String {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// An abstract Unix name in a session that shares the host's network namespace: the
/// supervisor would reach the host's names for it, so it is refused.
fn refuse_abstract(decider: &RuntimeDecider, pid: i32) {
    decider.refused(RuntimeDenial {
        program: program_of(pid),
        argv: Vec::new(),
        cwd: String::new(),
        parents: Vec::new(),
        verdict: Verdict::Deny,
        reason: "an abstract Unix socket: this session shares the host's network, so its abstract names are the host's (sessions with a network of their own reach their own)".into(),
        policies: Vec::new(),
        destination: Some("unix:@(abstract)".into()),
    });
}
