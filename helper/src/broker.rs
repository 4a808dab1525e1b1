//! The helper's egress broker: the only way out of a remote shell's own network.
//!
//! The shell's process made the listening socket on `127.0.0.1:PORT` inside its new
//! network namespace and handed it over ([`crate::spawn`]); the helper accepts there and
//! dials from the host's network. Each client is one HTTP proxy request — `CONNECT
//! host:port` (a tunnel; no TLS interception) or an absolute-form `http://` request
//! (forwarded once, with `Connection: close`) — decided by the server before anything is
//! dialled, as the local broker does:
//!
//! 1. on the name as asked, before it is resolved;
//! 2. on the address the helper resolved (the operator's `hosts` first, then the target's
//!    resolver), which is the address it dials: no rebinding window.
//!
//! A tunnel's client bytes pass only once a TLS hello in them that asks for another name
//! than the tunnel's host has been decided on that name too
//! ([`execkit_helper::tls_name`]); an unreadable hello is refused.
//!
//! Each decision is an [`ExecAsk`] with a [`ConnectAsk`], sent from the client's thread;
//! the verdict comes back through the supervisor's loop ([`Broker::verdict`]). A refusal
//! reaches the client as `403` with the server's reason. Request heads are parsed by
//! `httparse` and targets by `http`'s URI parser.
//!
//! Trade-offs: a thread per client (at most [`MAX_CLIENTS`]); one plain-HTTP request per
//! client connection; names resolve through the C library's resolver of a static binary,
//! which reads `/etc/hosts` and DNS — an operator whose target resolves otherwise maps
//! names with `[sandbox.egress] hosts`.

use execkit_helper::msg::{BrokerStart, ConnectAsk, ExecAsk, ExecVerdict, ProgramStart};
use execkit_helper::tls_name::{client_hello, differs, Hello, MAX_RECORD, UNREADABLE};
use execkit_sandbox::socket_owner::BrokerClients;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// Client connections served at once.
const MAX_CLIENTS: usize = 512;
/// The longest request head read.
const MAX_HEAD: usize = 64 * 1024;
/// How long a client may take to send its head, and a dial to complete.
const TIMEOUT: Duration = Duration::from_secs(30);
/// How long a decision may take (a human may be asked).
const DECISION_TIMEOUT: Duration = Duration::from_secs(600);

/// Sends an ask to the server (the supervisor's one writer).
pub(crate) type SendAsk = fn(&ExecAsk) -> io::Result<()>;

/// The broker of one session: its accept thread and the asks waiting for the server.
#[derive(Clone)]
pub(crate) struct Broker {
    shared: Arc<Shared>,
}

struct Shared {
    waiting: Mutex<HashMap<u64, mpsc::Sender<ExecVerdict>>>,
    next_id: AtomicU64,
    clients: AtomicUsize,
    clients_noted: Arc<BrokerClients>,
    start: BrokerStart,
    /// The shell (its network namespace is the clients').
    shell: i32,
    send: SendAsk,
}

impl Broker {
    /// Serves clients on `listener` (inside the shell's network) on threads of its own.
    pub(crate) fn start(
        listener: OwnedFd,
        start: BrokerStart,
        shell: i32,
        send: SendAsk,
    ) -> io::Result<Broker> {
        let listener = TcpListener::from(listener);
        listener.set_nonblocking(false)?;
        let shared = Arc::new(Shared {
            waiting: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            clients: AtomicUsize::new(0),
            clients_noted: Arc::default(),
            start,
            shell,
            send,
        });
        let broker = Broker { shared };
        let b = broker.clone();
        std::thread::Builder::new()
            .name("broker".into())
            .spawn(move || b.accept_loop(&listener))?;
        Ok(broker)
    }

    /// The port it listens on in the shell's network.
    pub(crate) fn port(&self) -> u16 {
        self.shared.start.port
    }

    /// Where the exec listener notes each connection to the broker with its program.
    pub(crate) fn clients(&self) -> Arc<BrokerClients> {
        self.shared.clients_noted.clone()
    }

    /// The server's verdict on a waiting connection.
    pub(crate) fn verdict(&self, v: ExecVerdict) {
        let waiter = self
            .shared
            .waiting
            .lock()
            .ok()
            .and_then(|mut m| m.remove(&v.id));
        if let Some(w) = waiter {
            let _ = w.send(v);
        }
    }

    fn accept_loop(&self, listener: &TcpListener) {
        for client in listener.incoming() {
            let Ok(client) = client else {
                // Out of descriptors or threads: let clients finish before the next one.
                std::thread::sleep(std::time::Duration::from_millis(50));
                continue;
            };
            // Past the cap a client is closed at once.
            if self.shared.clients.fetch_add(1, Ordering::SeqCst) >= MAX_CLIENTS {
                self.shared.clients.fetch_sub(1, Ordering::SeqCst);
                continue;
            }
            let b = self.clone();
            let spawned = std::thread::Builder::new().spawn(move || {
                b.serve(client);
                b.shared.clients.fetch_sub(1, Ordering::SeqCst);
            });
            if spawned.is_err() {
                self.shared.clients.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    fn serve(&self, mut client: TcpStream) {
        if let Err(refusal) = self.proxy(&mut client) {
            let _ = client.write_all(&refusal.response());
        }
        let _ = client.shutdown(Shutdown::Both);
    }

    /// One client's request, decided, dialled and spliced.
    fn proxy(&self, client: &mut TcpStream) -> Result<(), Refusal> {
        client
            .set_read_timeout(Some(TIMEOUT))
            .map_err(Refusal::io)?;
        let (head, rest) = read_head(client)?;
        let req = Head::parse(&head)?;
        let program = self.program_of(client);
        let mut ask = ConnectAsk {
            host: req.host.clone(),
            port: req.port,
            scheme: req.scheme.clone(),
            address: None,
            approved_by: None,
            unreadable: None,
        };
        ask.approved_by = self.decide(&program, &ask)?;
        let addr = resolve(&self.shared.start, &ask.host, ask.port)?;
        ask.address = Some(addr.ip());
        self.decide(&program, &ask)?;
        let upstream = TcpStream::connect_timeout(&addr, TIMEOUT)
            .map_err(|e| Refusal::gateway(format!("{}:{}: {e}", ask.host, ask.port)))?;
        client.set_read_timeout(None).map_err(Refusal::io)?;
        match &req.forward {
            None => {
                client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .map_err(Refusal::io)?;
                self.tunnel(client, upstream, &rest, &program, &ask);
            }
            Some(origin_head) => answer(client, upstream, origin_head),
        }
        Ok(())
    }

    /// Splices a decided tunnel; the client's first bytes pass only once a TLS name in them
    /// that differs from the tunnel's host has been decided too (and an unreadable hello
    /// never).
    fn tunnel(
        &self,
        client: &mut TcpStream,
        mut upstream: TcpStream,
        rest: &[u8],
        program: &str,
        ask: &ConnectAsk,
    ) {
        let Some(down) = carry_down(client, &upstream) else {
            return;
        };
        let first = first_bytes(client, rest);
        if self.tls_name_allowed(program, ask, &first) && upstream.write_all(&first).is_ok() {
            let _ = io::copy(client, &mut upstream);
        }
        let _ = upstream.shutdown(Shutdown::Both);
        let _ = client.shutdown(Shutdown::Both);
        let _ = down.join();
    }

    /// True unless the tunnel's TLS hello asks for another name than its host and the
    /// server refuses that name, or cannot be read.
    fn tls_name_allowed(&self, program: &str, ask: &ConnectAsk, first: &[u8]) -> bool {
        let mut sni = ask.clone();
        sni.approved_by = None;
        match client_hello(first) {
            Hello::Name(Some(name)) if differs(&ask.host, &name) => sni.host = name,
            Hello::Unreadable => {
                sni.unreadable = Some(UNREADABLE.into());
            }
            _ => return true,
        }
        self.decide(program, &sni).is_ok()
    }

    /// The executable of the process that opened `client` — as the exec listener noted
    /// it, else (slowly) from `/proc` — or "" when unknown.
    fn program_of(&self, client: &TcpStream) -> String {
        let port = client.peer_addr().map(|a| a.port()).unwrap_or(0);
        if let Some(p) = self.shared.clients_noted.take(port) {
            return p;
        }
        execkit_sandbox::socket_owner::program(self.shared.shell, port, self.shared.start.port)
            .unwrap_or_default()
    }

    /// Asks the server about `ask` by `program`; who approved it, or the refusal.
    fn decide(&self, program: &str, ask: &ConnectAsk) -> Result<Option<String>, Refusal> {
        let id = self.shared.next_id.fetch_add(1, Ordering::SeqCst);
        let (tx, rx) = mpsc::channel();
        if let Ok(mut m) = self.shared.waiting.lock() {
            m.insert(id, tx);
        }
        let msg = ExecAsk {
            id,
            start: ProgramStart {
                program: program.to_string(),
                argv: Vec::new(),
                cwd: String::new(),
                parents: Vec::new(),
                pid: 0,
                caller: String::new(),
            },
            socket: None,
            connection: Some(ask.clone()),
            interpreters: Vec::new(),
        };
        let verdict = (self.shared.send)(&msg)
            .ok()
            .and_then(|()| rx.recv_timeout(DECISION_TIMEOUT).ok());
        if let Ok(mut m) = self.shared.waiting.lock() {
            m.remove(&id);
        }
        let who = format!("{}:{}", ask.host, ask.port);
        match verdict {
            Some(v) if v.allow => Ok(v.approved_by),
            Some(v) => Err(Refusal::forbidden(&who, v.reason.as_deref())),
            None => Err(Refusal::forbidden(
                &who,
                Some("no decision from the server"),
            )),
        }
    }
}

/// Reads until the end of the request head: (head, bytes after it).
fn read_head(client: &mut TcpStream) -> Result<(Vec<u8>, Vec<u8>), Refusal> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = find_end(&buf) {
            let rest = buf.split_off(end);
            return Ok((buf, rest));
        }
        if buf.len() > MAX_HEAD {
            return Err(Refusal::bad("the request head is too long"));
        }
        match client.read(&mut chunk) {
            Ok(0) => return Err(Refusal::bad("the client closed before its request")),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(Refusal::io(e)),
        }
    }
}

/// Where the head ends, if it is complete.
fn find_end(buf: &[u8]) -> Option<usize> {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    match httparse::Request::new(&mut headers).parse(buf) {
        Ok(httparse::Status::Complete(n)) => Some(n),
        // A malformed head ends here too: `Head::parse` says what is wrong with it.
        Err(_) => Some(buf.len()),
        Ok(httparse::Status::Partial) => None,
    }
}

/// A proxy request as the broker acts on it.
struct Head {
    host: String,
    port: u16,
    scheme: Option<String>,
    /// A plain request's head, rewritten for the origin server (none: a tunnel).
    forward: Option<Vec<u8>>,
}

impl Head {
    fn parse(bytes: &[u8]) -> Result<Head, Refusal> {
        let mut headers = [httparse::EMPTY_HEADER; 128];
        let mut req = httparse::Request::new(&mut headers);
        req.parse(bytes)
            .map_err(|e| Refusal::bad(&format!("not an HTTP proxy request: {e}")))?;
        let (Some(method), Some(target)) = (req.method, req.path) else {
            return Err(Refusal::bad("not an HTTP proxy request"));
        };
        let uri: http::Uri = target
            .parse()
            .map_err(|e| Refusal::bad(&format!("`{target}`: {e}")))?;
        let host = host_of(&uri)?;
        if method == "CONNECT" {
            let port = uri
                .port_u16()
                .ok_or_else(|| Refusal::bad("CONNECT without a port"))?;
            return Ok(Head {
                host,
                port,
                scheme: None,
                forward: None,
            });
        }
        if uri.scheme_str() != Some("http") {
            return Err(Refusal::bad(
                "only http:// requests are forwarded; https goes through CONNECT",
            ));
        }
        plain_request_checks(&host, req.headers)?;
        let forward = origin_head(method, &uri, req.headers);
        let port = uri.port_u16().unwrap_or(80);
        Ok(Head {
            host,
            port,
            scheme: Some("http".into()),
            forward: Some(forward),
        })
    }
}

/// A forwarded plain request carries no body (uploads go through a tunnel, where the
/// broker never reads the bytes) and no `Host` naming another host than the one decided:
/// nothing after its head reaches the upstream, and a shared server is not asked for
/// another of its sites.
fn plain_request_checks(host: &str, headers: &[httparse::Header<'_>]) -> Result<(), Refusal> {
    for h in headers {
        let value = String::from_utf8_lossy(h.value);
        let body = h.name.eq_ignore_ascii_case("transfer-encoding")
            || (h.name.eq_ignore_ascii_case("content-length") && value.trim() != "0");
        if body {
            return Err(Refusal::bad(
                "a plain http:// request with a body is not forwarded: use https (CONNECT)",
            ));
        }
        if h.name.eq_ignore_ascii_case("host") && !same_host(host, &value) {
            return Err(Refusal::bad(
                "the Host header names another host than the request",
            ));
        }
    }
    Ok(())
}

/// True if a `Host` header's value names `host` (any port).
fn same_host(host: &str, value: &str) -> bool {
    value.trim().parse::<http::uri::Authority>().is_ok_and(|a| {
        let h = a.host().trim_start_matches('[').trim_end_matches(']');
        h.trim_end_matches('.').eq_ignore_ascii_case(host)
    })
}

/// The host a target names, as the policies see it.
fn host_of(uri: &http::Uri) -> Result<String, Refusal> {
    let host = uri
        .host()
        .ok_or_else(|| Refusal::bad("no host in the request: use the broker as an HTTP proxy"))?;
    Ok(host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase())
}

/// The request head for the origin server: origin-form target, no proxy headers, one
/// request per connection.
fn origin_head(method: &str, uri: &http::Uri, headers: &[httparse::Header<'_>]) -> Vec<u8> {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut out = format!("{method} {path} HTTP/1.1\r\n").into_bytes();
    let dropped = [
        "proxy-connection",
        "proxy-authorization",
        "connection",
        "keep-alive",
    ];
    for h in headers
        .iter()
        .filter(|h| !dropped.iter().any(|d| h.name.eq_ignore_ascii_case(d)))
    {
        out.extend_from_slice(h.name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(h.value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out
}

/// The first address of `host`: the operator's map, an address literal, or the resolver.
fn resolve(start: &BrokerStart, host: &str, port: u16) -> Result<SocketAddr, Refusal> {
    if let Some(ip) = start.hosts.get(host) {
        return Ok(SocketAddr::new(*ip, port));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    (host, port)
        .to_socket_addrs()
        .map_err(|e| Refusal::gateway(format!("cannot resolve {host}: {e}")))?
        .next()
        .ok_or_else(|| Refusal::gateway(format!("{host} has no address")))
}

/// Sends one plain request's head upstream and its answer back; nothing else the client
/// sent reaches the upstream.
fn answer(client: &mut TcpStream, mut upstream: TcpStream, head: &[u8]) {
    if upstream.write_all(head).is_ok() {
        let _ = upstream.shutdown(Shutdown::Write);
        let _ = io::copy(&mut upstream, client);
    }
}

/// Copies both ways until each side ends; `first` goes upstream before the client's bytes.
/// The bytes of a tunnel the client sends until they say whether and which TLS name it
/// asks for (`rest`: those read with the head); all of them at the end of the stream.
fn first_bytes(client: &mut TcpStream, rest: &[u8]) -> Vec<u8> {
    let mut first = rest.to_vec();
    let mut chunk = [0u8; 4096];
    while client_hello(&first) == Hello::Partial && first.len() < MAX_RECORD {
        match client.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => first.extend_from_slice(&chunk[..n]),
        }
    }
    first
}

/// Copies the upstream's bytes to the client on a thread of its own (a server may speak
/// first); the thread ends with the upstream's stream.
fn carry_down(client: &TcpStream, upstream: &TcpStream) -> Option<std::thread::JoinHandle<()>> {
    let (mut up_read, mut client_write) = (upstream.try_clone().ok()?, client.try_clone().ok()?);
    Some(std::thread::spawn(move || {
        let _ = io::copy(&mut up_read, &mut client_write);
        let _ = client_write.shutdown(Shutdown::Write);
    }))
}

/// Why a client is not served, as its response says./// Why a client is not served, as its response says.
#[derive(Debug)]
struct Refusal {
    status: &'static str,
    reason: String,
}

impl Refusal {
    fn bad(why: &str) -> Refusal {
        Refusal {
            status: "400 Bad Request",
            reason: why.to_string(),
        }
    }

    fn gateway(why: String) -> Refusal {
        Refusal {
            status: "502 Bad Gateway",
            reason: why,
        }
    }

    fn io(e: io::Error) -> Refusal {
        Refusal::bad(&e.to_string())
    }

    fn forbidden(dest: &str, why: Option<&str>) -> Refusal {
        Refusal {
            status: "403 Forbidden",
            reason: format!(
                "{dest} refused: {}",
                why.unwrap_or("refused by the policies")
            ),
        }
    }

    fn response(&self) -> Vec<u8> {
        let reason: String = self
            .reason
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c
                } else {
                    ' '
                }
            })
            .collect();
        let body = format!("execkit egress broker: {reason}\n");
        format!(
            "HTTP/1.1 {}\r\nContent-Type: text/plain\r\nX-Execkit-Reason: {reason}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            self.status,
            body.len()
        )
        .into_bytes()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)] // test code: a failure is a failed test
    use super::*;

    /// The destination decided (host, port), or the refusal's status.
    type Outcome = Result<(&'static str, u16), &'static str>;

    /// (request head, outcome).
    const CASES: &[(&str, Outcome)] = &[
        (
            "CONNECT pypi.org:443 HTTP/1.1\r\nHost: pypi.org:443\r\n\r\n",
            Ok(("pypi.org", 443)),
        ),
        (
            "CONNECT PyPI.Org.:443 HTTP/1.1\r\n\r\n",
            Ok(("pypi.org", 443)),
        ),
        ("CONNECT [::1]:22 HTTP/1.1\r\n\r\n", Ok(("::1", 22))),
        // The authority decides, never the Host header.
        (
            "CONNECT evil.test:443 HTTP/1.1\r\nHost: pypi.org:443\r\n\r\n",
            Ok(("evil.test", 443)),
        ),
        (
            "GET http://registry.test:8080/simple/ HTTP/1.1\r\nHost: registry.test:8080\r\n\r\n",
            Ok(("registry.test", 8080)),
        ),
        (
            "GET http://pypi.org@evil.test/ HTTP/1.1\r\n\r\n",
            Ok(("evil.test", 80)),
        ),
        (
            "GET http://a.test/ HTTP/1.1\r\nHost: A.test.:80\r\n\r\n",
            Ok(("a.test", 80)),
        ),
        // Another site of the same server, a body after the head: not forwarded.
        (
            "GET http://a.test/ HTTP/1.1\r\nHost: evil.test\r\n\r\n",
            Err("400"),
        ),
        (
            "POST http://a.test/ HTTP/1.1\r\nContent-Length: 5\r\n\r\n",
            Err("400"),
        ),
        (
            "POST http://a.test/ HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n",
            Err("400"),
        ),
        ("CONNECT pypi.org HTTP/1.1\r\n\r\n", Err("400")),
        (
            "GET /simple/ HTTP/1.1\r\nHost: pypi.org\r\n\r\n",
            Err("400"),
        ),
        ("GET https://pypi.org/ HTTP/1.1\r\n\r\n", Err("400")),
        ("GET ftp://pypi.org/ HTTP/1.1\r\n\r\n", Err("400")),
        ("CONNECT pypi.org:443\r\n\r\n", Err("400")),
        (
            "CONNECT pypi.org:443 HTTP/1.1\r\nBad Header\r\n\r\n",
            Err("400"),
        ),
    ];

    #[test]
    fn heads_are_read_as_the_destination_they_name() {
        for (head, want) in CASES {
            match (Head::parse(head.as_bytes()), want) {
                (Ok(h), Ok((host, port))) => {
                    assert_eq!((h.host.as_str(), h.port), (*host, *port), "{head:?}")
                }
                (Err(r), Err(status)) => assert!(r.status.starts_with(status), "{head:?}"),
                (Ok(h), Err(_)) => panic!("{head:?} went to {}:{}", h.host, h.port),
                (Err(r), Ok(_)) => panic!("{head:?} refused: {}", r.reason),
            }
        }
    }

    #[test]
    fn a_forwarded_request_loses_its_proxy_headers_and_closes() {
        let head = "GET http://registry.test/a?b=1 HTTP/1.1\r\nHost: registry.test\r\nProxy-Authorization: Basic eA==\r\nConnection: keep-alive\r\nAccept: */*\r\n\r\n";
        let h = Head::parse(head.as_bytes()).unwrap();
        let out = String::from_utf8(h.forward.unwrap()).unwrap();
        assert_eq!(
            out,
            "GET /a?b=1 HTTP/1.1\r\nHost: registry.test\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        );
    }
}
