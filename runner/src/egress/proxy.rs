//! The broker's HTTP proxy: `CONNECT host:port` tunnels and absolute-form plain requests
//! (`GET http://host/path`), each decided before anything is dialled (hyper parses; no
//! TLS interception).

use super::judge::{judge, refuse_unread, Verdicted};
use super::{EgressConfig, BROKER_PORT};
use crate::exec_guard::RuntimeDecider;
use bytes::Bytes;
use execkit_engine::Connection;
use execkit_helper::tls_name::{client_hello, differs, Hello, MAX_RECORD, UNREADABLE};
use execkit_sandbox::socket_owner::{self, BrokerClients};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

type Body = BoxBody<Bytes, hyper::Error>;

/// Client connections one session's broker serves at once.
const MAX_CLIENTS: usize = 512;

/// How long a client may take to send a request's head.
const HEAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A session's broker: its accept loop ends when this is dropped.
pub(crate) struct Broker {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What every connection of one session shares.
pub(crate) struct Shared {
    decider: Arc<RuntimeDecider>,
    config: EgressConfig,
    /// Where the programs of clients are found: a process in the session's network
    /// namespace (the shell) and the connections to the broker the supervisor noted
    /// (none: each client comes with its program, from the remote helper's relay).
    owners: Option<(i32, Arc<BrokerClients>)>,
}

impl Shared {
    /// For clients that come with their program.
    pub(crate) fn relayed(decider: Arc<RuntimeDecider>, config: EgressConfig) -> Arc<Shared> {
        Arc::new(Shared {
            decider,
            config,
            owners: None,
        })
    }
}

impl Broker {
    /// Listens in the network namespace of `ns_pid` and serves the session's clients.
    pub(crate) fn start(
        ns_pid: i32,
        decider: Arc<RuntimeDecider>,
        config: EgressConfig,
        clients: Arc<BrokerClients>,
    ) -> std::io::Result<Broker> {
        let std_listener = super::netns::listen_in(ns_pid, BROKER_PORT)?;
        let listener = tokio::net::TcpListener::from_std(std_listener)?;
        let shared = Arc::new(Shared {
            decider,
            config,
            owners: Some((ns_pid, clients)),
        });
        let room = Arc::new(tokio::sync::Semaphore::new(MAX_CLIENTS));
        let task = tokio::spawn(async move {
            while let Ok((stream, peer)) = listener.accept().await {
                // A proxy answers in small writes: never hold one back for an ACK.
                let _ = stream.set_nodelay(true);
                // Past the cap a client is closed at once: a session cannot exhaust the
                // server's descriptors through its broker.
                let Ok(permit) = room.clone().try_acquire_owned() else {
                    continue;
                };
                let s = shared.clone();
                tokio::spawn(async move {
                    serve(stream, Client::at(peer.port()), s).await;
                    drop(permit);
                });
            }
        });
        Ok(Broker { task })
    }
}

/// One client connection: HTTP/1 with upgrades (for CONNECT).
pub(crate) async fn serve<I>(stream: I, client: Client, shared: Arc<Shared>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req| handle(req, shared.clone(), client.clone()));
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        // A client that sends its request and shuts its writing half is still answered
        // (and its request decided and recorded), not dropped unheard.
        .half_close(true)
        .preserve_header_case(true)
        .title_case_headers(true)
        .serve_connection(TokioIo::new(stream), svc)
        .with_upgrades()
        .await;
}

fn text(status: StatusCode, why: &str) -> Response<Body> {
    let mut r = Response::new(
        Full::new(Bytes::from(format!("execkit egress broker: {why}\n")))
            .map_err(|never| match never {})
            .boxed(),
    );
    *r.status_mut() = status;
    r
}

/// Where a request asks to go: (host, port, scheme).
fn destination(req: &Request<Incoming>) -> Result<(String, u16, Option<String>), String> {
    let uri = req.uri();
    let host = uri
        .host()
        .ok_or_else(|| format!("no host in `{uri}`: use the broker as an HTTP proxy"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase();
    if req.method() == Method::CONNECT {
        let port = uri.port_u16().ok_or("CONNECT without a port")?;
        return Ok((host, port, None));
    }
    match uri.scheme_str() {
        Some("http") if !host_header_names(req, &host) => {
            Err("the Host header names another host than the request".into())
        }
        Some("http") => Ok((host, uri.port_u16().unwrap_or(80), Some("http".into()))),
        other => Err(format!(
            "only http:// requests are forwarded (got {other:?}); https goes through CONNECT"
        )),
    }
}

/// True if the request has no `Host` header or one naming `host` (any port): a shared
/// server is not asked for another of its sites than the one decided.
fn host_header_names(req: &Request<Incoming>, host: &str) -> bool {
    let Some(value) = req.headers().get(hyper::header::HOST) else {
        return true;
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<hyper::http::uri::Authority>().ok())
        .is_some_and(|a| {
            let h = a.host().trim_start_matches('[').trim_end_matches(']');
            h.trim_end_matches('.').eq_ignore_ascii_case(host)
        })
}

/// One client connection, whose requests come one after another.
#[derive(Clone)]
pub(crate) struct Client {
    /// Its port (in the session's network).
    port: u16,
    /// The program that opened it, found at its first request.
    program: Arc<tokio::sync::OnceCell<String>>,
    upstreams: Upstreams,
}

impl Client {
    /// The client connected from `port`, its program yet to be found.
    fn at(port: u16) -> Client {
        Client {
            port,
            program: Arc::default(),
            upstreams: Upstreams::default(),
        }
    }

    /// A client whose program is known.
    pub(crate) fn of(program: String) -> Client {
        let c = Client::at(0);
        let _ = c.program.set(program);
        c
    }
}

async fn handle(
    req: Request<Incoming>,
    shared: Arc<Shared>,
    client: Client,
) -> Result<Response<Body>, Infallible> {
    let (host, port, scheme) = match destination(&req) {
        Ok(d) => d,
        Err(why) => return Ok(text(StatusCode::BAD_REQUEST, &why)),
    };
    let program = client
        .program
        .get_or_init(|| program_of(&shared, client.port))
        .await
        .clone();
    let mut conn = Connection {
        host,
        port,
        scheme,
        program,
        address: None,
    };
    let approved = match decide(&shared, &conn, None).await {
        Ok(who) => who,
        Err(refused) => return Ok(refused),
    };
    let addr = match resolve(&shared.config, &conn.host, port).await {
        Ok(a) => a,
        Err(why) => return Ok(text(StatusCode::BAD_GATEWAY, &why)),
    };
    conn.address = Some(addr.ip());
    if let Err(refused) = decide(&shared, &conn, approved).await {
        return Ok(refused);
    }
    if req.method() != Method::CONNECT {
        return Ok(forward(req, addr, &conn.authority(), &client.upstreams).await);
    }
    match TcpStream::connect(addr).await {
        Ok(upstream) => {
            let _ = upstream.set_nodelay(true);
            tokio::spawn(tunnel(req, upstream, shared, conn));
            Ok(Response::new(
                http_body_util::Empty::new()
                    .map_err(|never| match never {})
                    .boxed(),
            ))
        }
        Err(e) => Ok(text(
            StatusCode::BAD_GATEWAY,
            &format!("{}: {e}", conn.authority()),
        )),
    }
}

/// The upstream connections of one client connection, kept alive between its forwarded
/// requests, by the address decided (each request is still decided on its own).
type Upstreams = Arc<tokio::sync::Mutex<HashMap<SocketAddr, SendRequest<Incoming>>>>;

/// An idle upstream connection to `addr` of this client, if one is still open.
async fn reuse(upstreams: &Upstreams, addr: SocketAddr) -> Option<SendRequest<Incoming>> {
    let mut sender = upstreams.lock().await.remove(&addr)?;
    sender.ready().await.ok()?;
    Some(sender)
}

/// A new HTTP/1 connection to `addr`.
async fn dial(addr: SocketAddr) -> Result<SendRequest<Incoming>, String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    Ok(sender)
}

/// The program that opened the client connection from `port`: as the supervisor noted
/// it, else (slowly) from `/proc`; "" when unknown.
async fn program_of(shared: &Arc<Shared>, port: u16) -> String {
    let Some((ns, clients)) = shared.owners.clone() else {
        return String::new();
    };
    if let Some(p) = clients.take(port) {
        return p;
    }
    tokio::task::spawn_blocking(move || socket_owner::program(ns, port, BROKER_PORT))
        .await
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// The policies' refusal as the client's response, or who approved it (`None`: the
/// policies allowed it without asking). `approved`: the human who approved this
/// connection's name.
async fn decide(
    shared: &Arc<Shared>,
    conn: &Connection,
    approved: Option<String>,
) -> Result<Option<String>, Response<Body>> {
    let s = shared.clone();
    let c = conn.clone();
    let v = tokio::task::spawn_blocking(move || judge(&s.decider, &c, approved.as_deref()))
        .await
        .unwrap_or(Verdicted {
            allow: false,
            reason: "the decision failed".into(),
            approved_by: None,
        });
    if v.allow {
        return Ok(v.approved_by);
    }
    let mut r = text(
        StatusCode::FORBIDDEN,
        &format!("{} refused: {}", conn.authority(), v.reason),
    );
    if let Ok(h) = hyper::header::HeaderValue::from_str(&v.reason.replace(['\r', '\n'], " ")) {
        r.headers_mut().insert("x-execkit-reason", h);
    }
    Err(r)
}

/// The first address of `host` (the operator's map first, then the system resolver).
async fn resolve(config: &EgressConfig, host: &str, port: u16) -> Result<SocketAddr, String> {
    if let Some(ip) = config.hosts.get(host) {
        return Ok(SocketAddr::new(*ip, port));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} has no address"))
}

/// Splices the client's upgraded connection and the upstream one. The upstream's bytes
/// flow at once (a server may speak first); the client's pass once a TLS name in its first
/// bytes that differs from the tunnel's host has been decided too (an unreadable hello
/// never passes).
async fn tunnel(
    req: Request<Incoming>,
    upstream: TcpStream,
    shared: Arc<Shared>,
    conn: Connection,
) {
    let Ok(upgraded) = hyper::upgrade::on(req).await else {
        return;
    };
    let (mut client_read, mut client_write) = tokio::io::split(TokioIo::new(upgraded));
    let (mut up_read, mut up_write) = upstream.into_split();
    let down = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut up_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
    });
    let first = first_bytes(&mut client_read).await;
    if tls_name_allowed(&shared, &conn, &first).await && up_write.write_all(&first).await.is_ok() {
        let _ = tokio::io::copy(&mut client_read, &mut up_write).await;
        let _ = up_write.shutdown().await;
        let _ = down.await;
    } else {
        down.abort();
    }
}

/// The client's first bytes in a tunnel, until they say whether and which TLS name they
/// ask for (all of them at the end of the stream).
async fn first_bytes<R: tokio::io::AsyncRead + Unpin>(r: &mut R) -> Vec<u8> {
    let mut first = Vec::new();
    let mut chunk = [0u8; 4096];
    while client_hello(&first) == Hello::Partial && first.len() < MAX_RECORD {
        match r.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => first.extend_from_slice(&chunk[..n]),
        }
    }
    first
}

/// True unless the tunnel's TLS hello asks for another name than its host and the
/// policies refuse that name (on the address already dialled), or cannot be read.
async fn tls_name_allowed(shared: &Arc<Shared>, conn: &Connection, first: &[u8]) -> bool {
    let mut sni = conn.clone();
    match client_hello(first) {
        Hello::Name(Some(name)) if differs(&conn.host, &name) => sni.host = name,
        Hello::Unreadable => {
            let s = shared.clone();
            let _ =
                tokio::task::spawn_blocking(move || refuse_unread(&s.decider, &sni, UNREADABLE))
                    .await;
            return false;
        }
        _ => return true,
    }
    decide(shared, &sni, None).await.is_ok()
}

/// Sends a plain request upstream in origin form and returns its response.
async fn forward(
    mut req: Request<Incoming>,
    addr: SocketAddr,
    authority: &str,
    upstreams: &Upstreams,
) -> Response<Body> {
    let origin = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    if let Ok(u) = origin.parse() {
        *req.uri_mut() = u;
    }
    for h in ["proxy-connection", "proxy-authorization"] {
        req.headers_mut().remove(h);
    }
    let mut sender = match reuse(upstreams, addr).await {
        Some(s) => s,
        None => match dial(addr).await {
            Ok(s) => s,
            Err(e) => return text(StatusCode::BAD_GATEWAY, &format!("{authority}: {e}")),
        },
    };
    let resp = sender.send_request(req).await;
    upstreams.lock().await.insert(addr, sender);
    match resp {
        Ok(resp) => resp.map(|b| b.boxed()),
        Err(e) => text(StatusCode::BAD_GATEWAY, &e.to_string()),
    }
}
