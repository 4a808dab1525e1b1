//! The live event stream on a Unix socket, for `execkit watch --socket PATH`.
//!
//! Why a socket and not the network: watching a running server is for the operator on
//! that machine. The socket is created owner-only (0600), a peer whose uid is not the
//! server's is refused even where permissions would let it connect (root), and nothing a
//! peer writes is ever read: the stream is one way, JSON lines of redacted audit events
//! (the recent ones first, then live).

use super::events::EventHub;
use anyhow::{bail, Context as _};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::broadcast::error::RecvError;

/// A bound watch socket; the file is removed when it is dropped, if it is still this
/// socket's (never another server's that replaced it).
pub struct WatchSocket {
    listener: UnixListener,
    path: PathBuf,
    /// Device and inode of the socket file this process made.
    made: Option<(u64, u64)>,
}

fn identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

impl Drop for WatchSocket {
    fn drop(&mut self) {
        if self.made.is_some() && identity(&self.path) == self.made {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Binds the socket. A socket another live server is listening on is refused (one watch
/// socket per server: a second server with the same config must not take it over); a
/// stale one (nobody listening) is replaced; any other file is refused.
pub fn bind(path: &Path) -> anyhow::Result<WatchSocket> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                bail!(
                    "watch socket {}: another server is serving it; give this server its own [watch] socket",
                    path.display()
                );
            }
            std::fs::remove_file(path).with_context(|| format!("removing {}", path.display()))?
        }
        Ok(_) => bail!(
            "watch socket {}: a file that is not a socket is there; refusing to replace it",
            path.display()
        ),
        Err(_) => {}
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("watch socket {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("watch socket {}: chmod 0600", path.display()))?;
    Ok(WatchSocket {
        listener,
        made: identity(path),
        path: path.to_path_buf(),
    })
}

async fn feed(mut stream: UnixStream, hub: Arc<EventHub>) {
    let (backlog, mut rx, _counted) = hub.subscribe_with_backlog();
    for line in backlog {
        if stream
            .write_all(format!("{line}\n").as_bytes())
            .await
            .is_err()
        {
            return;
        }
    }
    loop {
        let line = match rx.recv().await {
            Ok(p) => format!("{}\n", p.line()),
            Err(RecvError::Lagged(n)) => {
                format!(
                    "{{\"kind\":\"note\",\"message\":\"watcher too slow: missed {n} events\"}}\n"
                )
            }
            Err(RecvError::Closed) => return,
        };
        if stream.write_all(line.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Accepts watchers until the task is dropped.
pub async fn serve(socket: WatchSocket, hub: Arc<EventHub>) {
    // The socket file was made by this process: its owner is the server's uid.
    let me = match std::fs::metadata(&socket.path) {
        Ok(m) => std::os::unix::fs::MetadataExt::uid(&m),
        Err(e) => {
            tracing::warn!(error = %e, "watch socket vanished; not serving it");
            return;
        }
    };
    loop {
        let Ok((stream, _)) = socket.listener.accept().await else {
            continue;
        };
        match stream.peer_cred() {
            Ok(c) if c.uid() == me => {
                tokio::spawn(feed(stream, hub.clone()));
            }
            Ok(c) => tracing::warn!(
                uid = c.uid(),
                "watch socket: refused a peer with another uid"
            ),
            Err(e) => tracing::warn!(error = %e, "watch socket: no peer credentials; refused"),
        }
    }
}

/// Binds the operator's watch socket, if any, and serves it: call before the server takes
/// requests. The task ends when the returned handle is aborted.
pub fn start(shared: &super::Shared) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let Some(path) = shared.op.config.watch.socket.as_deref() else {
        return Ok(None);
    };
    let socket = bind(path)?;
    Ok(Some(tokio::spawn(serve(socket, shared.op.events.clone()))))
}
