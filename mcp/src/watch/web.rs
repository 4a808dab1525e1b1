//! `execkit watch --audit FILE --http 127.0.0.1:PORT` (or `--socket PATH --http …`, to
//! follow a running server with its live progress lines): the same read-only view as a
//! web page, with server-sent events.
//!
//! Why these rules: the page shows what agents ran, which is sensitive even redacted, and
//! agent-controlled text ends up in a browser.
//! - Loopback only: any other address is refused before binding.
//! - A random token (128 bits, printed once at start) is required on every request,
//!   compared in constant time; without it every path answers 401. With `--token-file` it
//!   is kept in an owner-only file and reused, so the URL survives restarts (an open page
//!   reconnects by itself); `EXECKIT_WATCH_TOKEN` sets it instead.
//! - GET only; there is nothing to write to. The server holds the log's lines and nothing
//!   else.
//! - The page sets agent text only as `textContent`, and its Content-Security-Policy allows
//!   only its own nonce'd script and style, no other origin, no framing, no referrer (the
//!   token is in the URL).

use super::Source;
use anyhow::{bail, Context as _};
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::stream;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::broadcast;

const PAGE: &str = include_str!("page.html");

/// The lines seen so far, and new ones as they come.
struct Shared {
    token: String,
    lines: RwLock<Vec<Arc<str>>>,
    new: broadcast::Sender<(usize, Arc<str>)>,
}

#[derive(serde::Deserialize)]
struct Auth {
    token: Option<String>,
}

fn random_hex(bytes: usize) -> anyhow::Result<String> {
    let mut b = vec![0u8; bytes];
    getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(hex::encode(b))
}

fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn authorized(s: &Shared, q: &Auth) -> bool {
    q.token.as_deref().is_some_and(|t| same(t, &s.token))
}

fn hardened(mut r: Response, csp: &str) -> Response {
    let h = r.headers_mut();
    for (k, v) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ] {
        h.insert(k, HeaderValue::from_static(v));
    }
    if let Ok(v) = HeaderValue::from_str(csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    r
}

fn unauthorized() -> Response {
    hardened(
        (StatusCode::UNAUTHORIZED, "a valid ?token= is required\n").into_response(),
        "default-src 'none'",
    )
}

async fn page(State(s): State<Arc<Shared>>, Query(q): Query<Auth>) -> Response {
    if !authorized(&s, &q) {
        return unauthorized();
    }
    let Ok(nonce) = random_hex(16) else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "no randomness\n").into_response();
    };
    let html = PAGE.replace("__NONCE__", &nonce);
    let csp = format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    );
    hardened(
        ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response(),
        &csp,
    )
}

async fn events(State(s): State<Arc<Shared>>, Query(q): Query<Auth>) -> Response {
    if !authorized(&s, &q) {
        return unauthorized();
    }
    // Subscribe first, then take the lines so far: nothing falls between the two.
    let rx = s.new.subscribe();
    let past: Vec<Arc<str>> = s.lines.read().map(|l| l.clone()).unwrap_or_default();
    let from = past.len();
    let backlog = stream::iter(past.into_iter().map(|l| Ok(Event::default().data(&*l))));
    let live = stream::unfold(rx, move |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok((i, line)) if i >= from => {
                    return Some((Ok::<Event, Infallible>(Event::default().data(&*line)), rx))
                }
                Ok(_) => continue,
                // A slow client missed lines: say so, as a comment, and go on.
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    return Some((
                        Ok(Event::default().comment(format!("missed {n} records"))),
                        rx,
                    ))
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    let s: Sse<_> = Sse::new(futures_util::StreamExt::chain(backlog, live));
    hardened(
        s.keep_alive(KeepAlive::default()).into_response(),
        "default-src 'none'",
    )
}

/// Index of a live progress line: sent to the pages watching now, never kept for later
/// ones (a new page would only see stale progress).
const LIVE: usize = usize::MAX;

fn is_progress(line: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(line)
        .is_ok_and(|v| v.get("kind").and_then(|k| k.as_str()) == Some("progress"))
}

async fn follow(mut source: Source, shared: Arc<Shared>) {
    loop {
        if let Ok(polled) = source.poll() {
            if polled.restarted {
                if let Ok(mut l) = shared.lines.write() {
                    l.clear();
                }
            }
            for line in polled.lines {
                let line: Arc<str> = Arc::from(line);
                if is_progress(&line) {
                    let _ = shared.new.send((LIVE, line));
                    continue;
                }
                let index = match shared.lines.write() {
                    Ok(mut l) => {
                        l.push(line.clone());
                        l.len() - 1
                    }
                    Err(_) => continue,
                };
                let _ = shared.new.send((index, line));
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Shortest operator-set token accepted.
const MIN_TOKEN_CHARS: usize = 32;

/// The page's token: `EXECKIT_WATCH_TOKEN`, else the one kept in `file` (made owner-only
/// with a new random token when missing; refused when others may read it), else a new
/// random one.
pub(crate) fn token(file: Option<&std::path::Path>) -> anyhow::Result<String> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if let Ok(t) = std::env::var("EXECKIT_WATCH_TOKEN") {
        if t.len() < MIN_TOKEN_CHARS || !t.bytes().all(|b| b.is_ascii_alphanumeric()) {
            bail!("EXECKIT_WATCH_TOKEN must be at least {MIN_TOKEN_CHARS} letters or digits");
        }
        return Ok(t);
    }
    let Some(path) = file else {
        return random_hex(16);
    };
    match std::fs::metadata(path) {
        Ok(m) => {
            if m.permissions().mode() & 0o077 != 0 {
                bail!(
                    "{}: others may read this token file (chmod 600 it)",
                    path.display()
                );
            }
            let t = std::fs::read_to_string(path)
                .with_context(|| format!("token file {}", path.display()))?
                .trim()
                .to_string();
            if t.len() < MIN_TOKEN_CHARS || !t.bytes().all(|b| b.is_ascii_alphanumeric()) {
                bail!(
                    "{}: not a token (at least {MIN_TOKEN_CHARS} letters or digits)",
                    path.display()
                );
            }
            Ok(t)
        }
        Err(_) => {
            let t = random_hex(16)?;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("token file {}", path.display()))?;
            std::io::Write::write_all(&mut f, format!("{t}\n").as_bytes())
                .with_context(|| format!("token file {}", path.display()))?;
            Ok(t)
        }
    }
}

/// Serves the page until interrupted.
pub(crate) fn serve(
    source: Source,
    label: &str,
    addr: SocketAddr,
    token: String,
) -> anyhow::Result<()> {
    if !addr.ip().is_loopback() {
        bail!("the web viewer binds to loopback only (127.0.0.1 or ::1), not {addr}");
    }
    let (new, _) = broadcast::channel(4096);
    let shared = Arc::new(Shared {
        token: token.clone(),
        lines: RwLock::new(Vec::new()),
        new,
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let local = listener.local_addr()?;
        eprintln!("execkit watch: serving {label} read-only");
        // The one line a script needs: the URL with its token.
        crate::outln!("http://{local}/?token={token}");
        tokio::spawn(follow(source, shared.clone()));
        let app = Router::new()
            .route("/", get(page))
            .route("/events", get(events))
            .fallback(|| async { unauthorized() })
            .with_state(shared);
        axum::serve(listener, app).await.context("web viewer")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(same("abcd", "abcd"));
        assert!(!same("abcd", "abce"));
        assert!(!same("abc", "abcd"));
        assert!(!same("", "a"));
    }
}
