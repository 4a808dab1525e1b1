//! Frames on the helper's stdin and stdout: `[kind: u8][length: u32, big-endian][payload]`.
//!
//! Before the first frame the helper prints [`MAGIC`], the nonce the server passed on its
//! command line and a newline, so the server can skip whatever the remote account's
//! startup files printed first (banners, motd, `echo` in `~/.bashrc`). A frame longer
//! than [`MAX_FRAME`] or of an unknown kind is a protocol error: both sides give up and
//! the helper takes the shell's tree down (fail closed).

/// Printed by the helper before its first frame, followed by the nonce and `\n`.
pub const MAGIC: &[u8] = b"\x1fEKHELPER:";

/// The longest payload either side accepts.
pub const MAX_FRAME: usize = 1 << 20;

/// Bytes of one relayed client in flight in each direction before the other side
/// acknowledges them (see the `Tunnel*` kinds).
pub const TUNNEL_WINDOW: usize = 256 * 1024;

/// Bytes of a frame's header.
pub const HEADER: usize = 5;

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Server → helper, first: the session's setup ([`crate::msg::Start`], JSON).
    Start = 0x01,
    /// Server → helper: bytes for the shell's stdin.
    Input = 0x02,
    /// Server → helper: a request (`[id: u32][JSON` [`crate::msg::Call`]`]`).
    Call = 0x03,
    /// Server → helper: end the session (kill the tree, clean up, exit).
    Close = 0x04,
    /// Server → helper: still here (resets the idle limit).
    Ping = 0x05,
    /// Server → helper: the decision on a program stopped at its start
    /// ([`crate::msg::ExecVerdict`], JSON).
    ExecVerdict = 0x06,
    /// Server → helper: bytes for a relayed client (`[tunnel: u32][bytes]`).
    TunnelDown = 0x07,
    /// Server → helper: no more bytes for a relayed client (`[tunnel: u32]`).
    TunnelDownEnd = 0x08,
    /// Server → helper: bytes of a relayed client taken (`[tunnel: u32][count: u32]`).
    TunnelUpAck = 0x09,
    /// Helper → server: the shell runs ([`crate::msg::Ready`], JSON).
    Ready = 0x81,
    /// Helper → server: shell stdout (`[generation: u64][bytes]`).
    Stdout = 0x82,
    /// Helper → server: shell stderr (`[generation: u64][bytes]`).
    Stderr = 0x83,
    /// Helper → server: a stream ended (`[generation: u64][0 = stdout, 1 = stderr]`).
    StreamEnd = 0x84,
    /// Helper → server: the answer to a call (`[id: u32][JSON]`).
    Reply = 0x85,
    /// Helper → server: the shell ended ([`crate::msg::Exited`], JSON).
    Exited = 0x86,
    /// Helper → server: setup failed ([`crate::msg::Failed`], JSON); the helper exits.
    Failed = 0x87,
    /// Helper → server: a program stopped at its start, to be decided
    /// ([`crate::msg::ExecAsk`], JSON).
    ExecAsk = 0x88,
    /// Helper → server: a client of the shell's network connected to the relay
    /// (`[tunnel: u32][JSON` [`crate::msg::TunnelOpen`]`]`).
    TunnelOpen = 0x89,
    /// Helper → server: bytes from a relayed client (`[tunnel: u32][bytes]`).
    TunnelUp = 0x8A,
    /// Helper → server: a relayed client sent its last byte (`[tunnel: u32]`).
    TunnelUpEnd = 0x8B,
    /// Helper → server: bytes for a relayed client written (`[tunnel: u32][count: u32]`).
    TunnelDownAck = 0x8C,
}

impl Kind {
    /// The kind of a header byte.
    pub fn from_byte(b: u8) -> Option<Kind> {
        Some(match b {
            0x01 => Kind::Start,
            0x02 => Kind::Input,
            0x03 => Kind::Call,
            0x04 => Kind::Close,
            0x05 => Kind::Ping,
            0x06 => Kind::ExecVerdict,
            0x07 => Kind::TunnelDown,
            0x08 => Kind::TunnelDownEnd,
            0x09 => Kind::TunnelUpAck,
            0x81 => Kind::Ready,
            0x82 => Kind::Stdout,
            0x83 => Kind::Stderr,
            0x84 => Kind::StreamEnd,
            0x85 => Kind::Reply,
            0x86 => Kind::Exited,
            0x87 => Kind::Failed,
            0x88 => Kind::ExecAsk,
            0x89 => Kind::TunnelOpen,
            0x8A => Kind::TunnelUp,
            0x8B => Kind::TunnelUpEnd,
            0x8C => Kind::TunnelDownAck,
            _ => return None,
        })
    }
}

/// Why bytes are not a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// An unknown kind byte.
    #[error("unknown frame kind {0:#04x}")]
    Kind(u8),
    /// A payload over [`MAX_FRAME`].
    #[error("frame of {0} bytes is over the {MAX_FRAME}-byte limit")]
    TooLong(usize),
    /// A payload too short for its kind's fixed fields.
    #[error("a {0:?} frame is too short")]
    Short(Kind),
    /// The prelude ran past its limit without the magic line.
    #[error("no helper greeting within {0} bytes of output")]
    NoGreeting(usize),
}

/// One frame: `kind` and `payload`, as bytes to send.
pub fn encode(kind: Kind, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len());
    encode_into(&mut out, kind, &[payload]);
    out
}

/// Appends one frame whose payload is the concatenation of `parts`.
pub fn encode_into(out: &mut Vec<u8>, kind: Kind, parts: &[&[u8]]) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    out.push(kind as u8);
    out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
    for p in parts {
        out.extend_from_slice(p);
    }
}

/// Splits a byte stream into frames.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    at: usize,
}

impl Decoder {
    /// An empty decoder.
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Adds bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.at > 0 && self.at == self.buf.len() {
            self.buf.clear();
            self.at = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, if one is buffered.
    pub fn next_frame(&mut self) -> Result<Option<(Kind, Vec<u8>)>, WireError> {
        let rest = &self.buf[self.at..];
        if rest.len() < HEADER {
            self.compact();
            return Ok(None);
        }
        let kind = Kind::from_byte(rest[0]).ok_or(WireError::Kind(rest[0]))?;
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        if len > MAX_FRAME {
            return Err(WireError::TooLong(len));
        }
        if rest.len() < HEADER + len {
            self.compact();
            return Ok(None);
        }
        let payload = rest[HEADER..HEADER + len].to_vec();
        self.at += HEADER + len;
        Ok(Some((kind, payload)))
    }

    fn compact(&mut self) {
        if self.at > 0 {
            self.buf.drain(..self.at);
            self.at = 0;
        }
    }
}

/// Finds the helper's greeting (`MAGIC nonce \n`) in what the connection printed first;
/// returns the bytes after it, or `None` while it has not arrived.
#[derive(Debug)]
pub struct Greeting {
    needle: Vec<u8>,
    seen: Vec<u8>,
    limit: usize,
}

impl Greeting {
    /// Looks for the greeting with `nonce`, giving up after `limit` bytes of prelude.
    pub fn new(nonce: &str, limit: usize) -> Greeting {
        let mut needle = MAGIC.to_vec();
        needle.extend_from_slice(nonce.as_bytes());
        needle.push(b'\n');
        Greeting {
            needle,
            seen: Vec::new(),
            limit,
        }
    }

    /// Feeds bytes; `Ok(Some(rest))` once the greeting was found.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Option<Vec<u8>>, WireError> {
        self.seen.extend_from_slice(bytes);
        if let Some(at) = find(&self.seen, &self.needle) {
            return Ok(Some(self.seen.split_off(at + self.needle.len())));
        }
        if self.seen.len() > self.limit + self.needle.len() {
            return Err(WireError::NoGreeting(self.limit));
        }
        Ok(None)
    }

    /// What was printed before the greeting (for error messages).
    pub fn prelude(&self) -> &[u8] {
        &self.seen
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The generation and bytes of a `Stdout`/`Stderr` payload.
pub fn split_stream(kind: Kind, payload: &[u8]) -> Result<(u64, &[u8]), WireError> {
    if payload.len() < 8 {
        return Err(WireError::Short(kind));
    }
    let (g, data) = payload.split_at(8);
    let mut gen = [0u8; 8];
    gen.copy_from_slice(g);
    Ok((u64::from_be_bytes(gen), data))
}

/// The count of a tunnel's acknowledgement (after its id).
pub fn ack_count(kind: Kind, rest: &[u8]) -> Result<u32, WireError> {
    let b: [u8; 4] = rest.try_into().map_err(|_| WireError::Short(kind))?;
    Ok(u32::from_be_bytes(b))
}

/// The id and JSON of a `Call`/`Reply` payload (and the id and rest of a tunnel's).
pub fn split_id(kind: Kind, payload: &[u8]) -> Result<(u32, &[u8]), WireError> {
    if payload.len() < 4 {
        return Err(WireError::Short(kind));
    }
    let (i, json) = payload.split_at(4);
    Ok((u32::from_be_bytes([i[0], i[1], i[2], i[3]]), json))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_survive_any_split() {
        let mut bytes = encode(Kind::Input, b"echo hi\n");
        bytes.extend(encode(Kind::Ping, b""));
        let mut call = Vec::new();
        encode_into(
            &mut call,
            Kind::Call,
            &[&7u32.to_be_bytes(), b"{\"op\":\"cwd\"}"],
        );
        bytes.extend(call);
        for step in 1..bytes.len() {
            let mut d = Decoder::new();
            let mut got = Vec::new();
            for c in bytes.chunks(step) {
                d.push(c);
                while let Some(f) = d.next_frame().unwrap() {
                    got.push(f);
                }
            }
            assert_eq!(got.len(), 3, "step {step}");
            assert_eq!(got[0], (Kind::Input, b"echo hi\n".to_vec()));
            assert_eq!(got[1], (Kind::Ping, Vec::new()));
            let (id, json) = split_id(Kind::Call, &got[2].1).unwrap();
            assert_eq!((id, json), (7, &b"{\"op\":\"cwd\"}"[..]));
        }
    }

    #[test]
    fn bad_frames_are_errors() {
        let mut d = Decoder::new();
        d.push(&[0x7f, 0, 0, 0, 0]);
        assert_eq!(d.next_frame(), Err(WireError::Kind(0x7f)));
        let mut d = Decoder::new();
        d.push(&[0x02, 0xff, 0xff, 0xff, 0xff]);
        assert!(matches!(d.next_frame(), Err(WireError::TooLong(_))));
        assert_eq!(
            split_stream(Kind::Stdout, b"1234"),
            Err(WireError::Short(Kind::Stdout))
        );
    }

    #[test]
    fn the_greeting_is_found_after_a_banner_in_any_split() {
        let mut text = b"Welcome to host\nLast login: never\n".to_vec();
        text.extend_from_slice(MAGIC);
        text.extend_from_slice(b"abc123\n");
        text.extend(encode(Kind::Ready, b"{}"));
        for step in 1..text.len() {
            let mut g = Greeting::new("abc123", 1 << 16);
            let mut rest = None;
            for c in text.chunks(step) {
                if let Some(r) = rest.as_mut() {
                    let r: &mut Vec<u8> = r;
                    r.extend_from_slice(c);
                    continue;
                }
                rest = g.push(c).unwrap();
            }
            assert_eq!(rest.unwrap(), encode(Kind::Ready, b"{}"), "step {step}");
        }
        let mut g = Greeting::new("abc123", 8);
        assert!(g.push(b"a much longer banner than eight bytes").is_err());
    }
}
