//! The stdio wire between the client and the MCP library, with a line reader we control.
//!
//! The client's lines are read here (never more than the operator's cap per line), judged
//! by [`check`], and either passed to the library through an in-process pipe or answered
//! here with the JSON-RPC error the spec requires. The library's output and these answers
//! are written to stdout whole line by whole line, so they never interleave; a library
//! answer of `-32601` to a known method whose parameters it could not decode is corrected
//! to `-32602` on the way out.

pub mod check;

use check::Line;
use tokio::io::{
    AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, DuplexStream, ReadHalf,
    WriteHalf,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Bytes buffered between this layer and the library.
const PIPE: usize = 1 << 20;

/// The library's side of the wire.
pub type LibraryIo = (ReadHalf<DuplexStream>, WriteHalf<DuplexStream>);

/// The running reader and writer.
pub struct Wire {
    /// Ends when the client closes stdin (after telling the library).
    pub reader: JoinHandle<()>,
    /// Ends when the library closed its output (answers already queued are written).
    pub writer: JoinHandle<()>,
}

/// Starts guarding `input`/`output`; returns the halves to give the library.
pub fn guard<R, W>(input: R, output: W, max_line: usize) -> (LibraryIo, Wire)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (ours, theirs) = tokio::io::duplex(PIPE);
    let (from_lib, to_lib) = tokio::io::split(ours);
    let (replies_tx, replies_rx) = mpsc::channel(64);
    let reader = tokio::spawn(read_loop(input, to_lib, replies_tx, max_line));
    let writer = tokio::spawn(write_loop(from_lib, output, replies_rx));
    (tokio::io::split(theirs), Wire { reader, writer })
}

/// One line read with a cap.
enum Read {
    /// A whole line is in the buffer (newline removed).
    Line,
    /// A line longer than the cap was skipped; this many bytes.
    TooLong(usize),
    /// End of input.
    Eof,
}

/// Reads one line into `line` without ever holding more than `max` bytes of it.
async fn read_capped<R: AsyncRead + Unpin>(
    r: &mut BufReader<R>,
    line: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Read> {
    line.clear();
    let mut skipped = 0usize;
    loop {
        let buf = r.fill_buf().await?;
        if buf.is_empty() {
            return Ok(match (skipped, line.is_empty()) {
                (0, true) => Read::Eof,
                (0, false) => Read::Line,
                (n, _) => Read::TooLong(n),
            });
        }
        let (chunk, used, done) = match memchr::memchr(b'\n', buf) {
            Some(i) => (&buf[..i], i + 1, true),
            None => (buf, buf.len(), false),
        };
        if skipped > 0 || line.len() + chunk.len() > max {
            skipped += line.len() + chunk.len();
            line.clear();
        } else {
            line.extend_from_slice(chunk);
        }
        r.consume(used);
        if done {
            return Ok(if skipped > 0 {
                Read::TooLong(skipped)
            } else {
                Read::Line
            });
        }
    }
}

async fn read_loop<R: AsyncRead + Unpin>(
    input: R,
    mut to_lib: WriteHalf<DuplexStream>,
    replies: mpsc::Sender<Vec<u8>>,
    max_line: usize,
) {
    let mut r = BufReader::with_capacity(64 * 1024, input);
    let mut line = Vec::new();
    loop {
        let answer = match read_capped(&mut r, &mut line, max_line).await {
            Ok(Read::Eof) | Err(_) => break,
            Ok(Read::TooLong(n)) => Some(check::error(
                serde_json::Value::Null,
                check::Code::InvalidRequest,
                format!(
                    "Invalid Request: a message of {n} bytes is longer than the {max_line}-byte limit"
                ),
            )),
            Ok(Read::Line) => match check::check(&line) {
                Line::Blank => None,
                Line::Reply(v) => Some(v),
                Line::Forward { .. } => {
                    line.push(b'\n');
                    if to_lib.write_all(&line).await.is_err() {
                        break;
                    }
                    None
                }
            },
        };
        if let Some(v) = answer {
            tracing::debug!(reply = %v, "answered a malformed message");
            if replies.send(v.to_string().into_bytes()).await.is_err() {
                break;
            }
        }
    }
    // The client is gone: let the library see the end of its input.
    let _ = to_lib.shutdown().await;
}

/// Corrects the library's `-32601` for a known method (see [`check::fix_reply`]).
fn fix_library_line(line: &mut Vec<u8>) {
    // Cheap test first: only error answers with that code are parsed.
    let head = &line[..line.len().min(256)];
    if memchr::memmem::find(head, b"-32601").is_none() {
        return;
    }
    let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(line) else {
        return;
    };
    let Some(method) = v
        .pointer("/error/message")
        .and_then(|m| m.as_str())
        .map(str::to_string)
    else {
        return;
    };
    if check::fix_reply(&mut v, &method) {
        *line = v.to_string().into_bytes();
        line.push(b'\n');
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    from_lib: ReadHalf<DuplexStream>,
    mut output: W,
    mut replies: mpsc::Receiver<Vec<u8>>,
) {
    let mut lib = BufReader::with_capacity(64 * 1024, from_lib);
    let mut buf = Vec::new();
    let mut lib_open = true;
    let mut replies_open = true;
    while lib_open {
        tokio::select! {
            // `read_until` keeps a partial line in `buf` if the other branch wins.
            r = lib.read_until(b'\n', &mut buf), if lib_open => {
                match r {
                    Ok(0) | Err(_) => lib_open = false,
                    Ok(_) => {
                        fix_library_line(&mut buf);
                        if output.write_all(&buf).await.is_err() || output.flush().await.is_err() {
                            return;
                        }
                        buf.clear();
                    }
                }
            }
            m = replies.recv(), if replies_open => {
                match m {
                    None => replies_open = false,
                    Some(m) => {
                        if write_reply(&mut output, m).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
    }
    // The library is done: write the answers already waiting, then stop.
    while let Ok(m) = replies.try_recv() {
        if write_reply(&mut output, m).await.is_err() {
            return;
        }
    }
}

async fn write_reply<W: AsyncWrite + Unpin>(output: &mut W, mut m: Vec<u8>) -> std::io::Result<()> {
    m.push(b'\n');
    output.write_all(&m).await?;
    output.flush().await
}
