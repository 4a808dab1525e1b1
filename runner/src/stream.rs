//! The output streams every transport shares: a [`Chunk`] of output, the [`StreamSink`]
//! one stream of a shell writes into (rotated per command generation), and the [`Streams`]
//! a started remote shell hands back. A leaf: the local shell, the remote shell and the
//! SSH and Docker transports all build on it, and it on none of them.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::io::AsyncWrite;
use tokio::sync::{mpsc, watch};

/// A piece of output (or the end of a stream: `data == None`).
#[derive(Debug)]
pub struct Chunk {
    /// Pipe generation.
    pub gen: u64,
    /// From stderr.
    pub err: bool,
    /// The bytes; `None` at end of stream.
    pub data: Option<Vec<u8>>,
}

/// Where one rotated output stream goes: chunks of generation `gen`, passed on only while
/// that generation is current (a stale one keeps draining so late writers never block).
pub(crate) struct StreamSink {
    gen: u64,
    err: bool,
    current: Arc<AtomicU64>,
    tx: mpsc::Sender<Chunk>,
    /// Counts the streams still open (one less when this one is dropped).
    live: Arc<AtomicUsize>,
}

impl StreamSink {
    pub(crate) fn new(
        gen: u64,
        err: bool,
        current: &Arc<AtomicU64>,
        tx: &mpsc::Sender<Chunk>,
        live: &Arc<AtomicUsize>,
    ) -> StreamSink {
        live.fetch_add(1, Ordering::SeqCst);
        StreamSink {
            gen,
            err,
            current: current.clone(),
            tx: tx.clone(),
            live: live.clone(),
        }
    }

    /// A sink of its own, outside the shell's generations (a background process's
    /// stream): everything is passed on, and it counts toward no rotation limit.
    pub(crate) fn detached(tx: mpsc::Sender<Chunk>) -> StreamSink {
        StreamSink::new(
            0,
            false,
            &Arc::new(AtomicU64::new(0)),
            &tx,
            &Arc::new(AtomicUsize::new(0)),
        )
    }

    /// Passes data on; false once nobody listens any more.
    pub(crate) async fn send(&self, data: Vec<u8>) -> bool {
        if self.current.load(Ordering::SeqCst) != self.gen {
            return true;
        }
        self.tx
            .send(Chunk {
                gen: self.gen,
                err: self.err,
                data: Some(data),
            })
            .await
            .is_ok()
    }

    /// The stream ended.
    pub(crate) async fn end(&self) {
        let _ = self
            .tx
            .send(Chunk {
                gen: self.gen,
                err: self.err,
                data: None,
            })
            .await;
    }
}

impl Drop for StreamSink {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The shell's streams once started.
pub(crate) struct Streams {
    pub input: Box<dyn AsyncWrite + Send + Unpin>,
    /// `Some(exit code)` once the shell ended.
    pub exit: watch::Receiver<Option<Option<i32>>>,
    /// Set (before the streams end) when the shell's channel closed without an exit
    /// status: the connection went away, not the shell.
    pub lost: Arc<std::sync::atomic::AtomicBool>,
}
