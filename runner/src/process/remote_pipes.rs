//! The pipes of a background process on an SSH host or in a container.
//!
//! The same wrapper line as locally (`launch.rs`) runs in the session's remote shell, on
//! four FIFOs in the session's private directory there. Two channels (SSH) or execs
//! (Docker) of their own connect us to them:
//!
//! - an *io* shell whose stdin goes to the process's stdin and whose stdout and stderr
//!   carry the process's: `cat <&0 >IN & cat ERR >&2 & exec cat OUT`;
//! - a *status* stream, `exec cat < STATUS`.
//!
//! Both are started before the wrapper line is sent, so the FIFO opens meet. Signals go
//! through the control path (`kill -SIG -PGID`). OpenSSH allows 10 channels per
//! connection by default (`MaxSessions`): the shell, the control shell and rotated
//! streams use some, so keep the per-session process cap low for SSH targets.

use super::state::{Event, Stdin};
use crate::remote::Control;
use crate::stream::Chunk;
use crate::stream::StreamSink;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// The four FIFOs of one process on the remote side.
pub(crate) struct RemoteFifos {
    stdin: String,
    stdout: String,
    stderr: String,
    status: String,
}

/// Single-quoted for a POSIX shell (the paths are plain: see `RemoteShell::learn`).
fn q(p: &str) -> String {
    format!("'{p}'")
}

impl RemoteFifos {
    /// Creates them in `dir` (the session's private directory on the remote side).
    pub async fn create(control: &Control, dir: &str) -> Result<RemoteFifos, String> {
        let name = crate::frame::random_hex(8).map_err(|e| e.to_string())?;
        let path = |what: &str| format!("{dir}/.ek-p{name}-{what}");
        let f = RemoteFifos {
            stdin: path("in"),
            stdout: path("out"),
            stderr: path("err"),
            status: path("st"),
        };
        let made = control
            .run(&format!(
                "mkfifo -m 600 {} {} {} {}",
                q(&f.stdin),
                q(&f.stdout),
                q(&f.stderr),
                q(&f.status)
            ))
            .await;
        match made {
            Some((Some(0), _)) => Ok(f),
            _ => Err("could not create the process's FIFOs on the remote side (mkfifo)".into()),
        }
    }

    /// The line the remote shell runs.
    pub fn wrapper(&self, command: &str) -> String {
        super::launch::wrapper_line(
            command,
            [&self.stdin, &self.stdout, &self.stderr, &self.status],
            None,
        )
    }

    /// Opens the io shell and the status stream, forwarding everything to `tx`; returns
    /// the process's stdin.
    pub async fn attach(
        &self,
        control: &Control,
        dialect: crate::frame::Dialect,
        tx: mpsc::Sender<Event>,
    ) -> Result<Stdin, String> {
        // The status stream first: the wrapper opens it before anything else.
        let (stx, mut srx) = mpsc::channel::<Chunk>(16);
        control
            .stream(
                &format!("exec cat < {}", q(&self.status)),
                StreamSink::detached(stx),
            )
            .await?;
        let status_tx = tx.clone();
        tokio::spawn(async move {
            while let Some(c) = srx.recv().await {
                let end = c.data.is_none();
                if status_tx.send(Event::Status(c.data)).await.is_err() || end {
                    return;
                }
            }
            let _ = status_tx.send(Event::Status(None)).await;
        });
        let (itx, mut irx) = mpsc::channel::<Chunk>(64);
        let streams = control.open_shell(itx, dialect).await?;
        let mut input: Stdin = streams.input;
        // One line, parsed whole before it runs, so the shell reads no more of its stdin:
        // every later byte goes to the first `cat`.
        let pump = format!(
            "cat <&0 >{i} 2>/dev/null & cat {e} >&2 & exec cat {o} 2>/dev/null\n",
            i = q(&self.stdin),
            e = q(&self.stderr),
            o = q(&self.stdout),
        );
        input
            .write_all(pump.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        input.flush().await.map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            let mut ended = [false, false];
            while let Some(c) = irx.recv().await {
                if c.data.is_none() {
                    ended[usize::from(c.err)] = true;
                }
                let ev = Event::Output {
                    err: c.err,
                    data: c.data,
                };
                if tx.send(ev).await.is_err() {
                    return;
                }
            }
            for err in [false, true] {
                if !ended[usize::from(err)] {
                    let _ = tx.send(Event::Output { err, data: None }).await;
                }
            }
        });
        Ok(input)
    }

    /// Removes the names (the open pipes stay).
    pub async fn remove(&self, control: &Control) {
        let _ = control
            .run(&format!(
                "rm -f {} {} {} {}",
                q(&self.stdin),
                q(&self.stdout),
                q(&self.stderr),
                q(&self.status)
            ))
            .await;
    }

    /// After a failed start: opens each FIFO read-write once, so that readers blocked in
    /// open return, then removes them.
    pub async fn release(&self, control: &Control) {
        let all = [&self.stdin, &self.stdout, &self.stderr, &self.status]
            .map(|p| q(p))
            .join(" ");
        let _ = control
            .run(&format!(
                "for f in {all}; do [ -p \"$f\" ] && : 1<>\"$f\"; done; rm -f {all}"
            ))
            .await;
    }
}
