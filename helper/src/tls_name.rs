//! The server name a TLS client asks for (SNI), read from the first bytes of a tunnel
//! without terminating TLS. Both egress brokers use it: a `CONNECT` tunnel whose TLS name
//! differs from its `CONNECT` host is decided on that name too, so a client cannot reach
//! another site of a shared front end (a CDN) through a tunnel decided for a listed one.
//!
//! The ClientHello is parsed by `tls-parser`. Only the first record is read (at most
//! [`MAX_RECORD`] bytes); a ClientHello split across records is unreadable, and the brokers
//! refuse it (clients send the whole hello in one record).

use tls_parser::{
    parse_tls_extensions, parse_tls_plaintext, SNIType, TlsExtension, TlsMessage,
    TlsMessageHandshake,
};

/// Why a tunnel whose hello cannot be read is refused.
pub const UNREADABLE: &str = "the tunnel's TLS hello cannot be read, so the name it asks for cannot be decided (send the whole ClientHello in its first record)";

/// The longest first record read: a header and the largest plaintext record.
pub const MAX_RECORD: usize = 5 + 16384;

/// What the first bytes of a tunnel say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hello {
    /// Not all of the first record yet.
    Partial,
    /// Not a TLS handshake: another protocol runs in the tunnel.
    NotTls,
    /// A ClientHello, with the name it asks for (lower case, no trailing dot), if any.
    Name(Option<String>),
    /// A TLS handshake record whose ClientHello cannot be read.
    Unreadable,
}

/// Reads the first bytes `buf` a client sent into a tunnel.
///
/// ```
/// use execkit_helper::tls_name::{client_hello, Hello};
/// assert_eq!(client_hello(b"GET / HTTP/1.1\r\n"), Hello::NotTls);
/// assert_eq!(client_hello(&[0x16, 3, 1]), Hello::Partial);
/// ```
pub fn client_hello(buf: &[u8]) -> Hello {
    match buf.first() {
        None => return Hello::Partial,
        Some(&b) if b != 0x16 => return Hello::NotTls,
        Some(_) => {}
    }
    if buf.len() < 5 {
        return Hello::Partial;
    }
    let end = 5 + usize::from(u16::from_be_bytes([buf[3], buf[4]]));
    if end > MAX_RECORD {
        return Hello::Unreadable;
    }
    if buf.len() < end {
        return Hello::Partial;
    }
    let Ok((_, record)) = parse_tls_plaintext(&buf[..end]) else {
        return Hello::Unreadable;
    };
    for m in record.msg {
        if let TlsMessage::Handshake(TlsMessageHandshake::ClientHello(ch)) = m {
            return match server_name(ch.ext) {
                Ok(name) => Hello::Name(name),
                Err(()) => Hello::Unreadable,
            };
        }
    }
    Hello::Unreadable
}

/// The host name of the SNI extension in `ext`, if there is one.
fn server_name(ext: Option<&[u8]>) -> Result<Option<String>, ()> {
    let Some(ext) = ext else {
        return Ok(None);
    };
    let (_, exts) = parse_tls_extensions(ext).map_err(|_| ())?;
    for e in exts {
        if let TlsExtension::SNI(names) = e {
            let host = names.iter().find(|(t, _)| *t == SNIType::HostName);
            return match host {
                Some((_, n)) => std::str::from_utf8(n)
                    .map(|n| Some(n.trim_end_matches('.').to_ascii_lowercase()))
                    .map_err(|_| ()),
                None => Ok(None),
            };
        }
    }
    Ok(None)
}

/// True if the TLS `name` is another host than the tunnel's `host` (case and a trailing
/// dot aside).
pub fn differs(host: &str, name: &str) -> bool {
    !host
        .trim_end_matches('.')
        .eq_ignore_ascii_case(name.trim_end_matches('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ClientHello `openssl s_client -servername pypi.org` sent.
    const HELLO: &[u8] = include_bytes!("../tests/data/client-hello-pypi.org.bin");

    #[test]
    fn the_name_is_read_from_a_real_client_hello_in_any_split() {
        for cut in 0..HELLO.len() {
            assert_eq!(client_hello(&HELLO[..cut]), Hello::Partial, "cut {cut}");
        }
        assert_eq!(client_hello(HELLO), Hello::Name(Some("pypi.org".into())));
        let mut more = HELLO.to_vec();
        more.extend_from_slice(b"\x17\x03\x03");
        assert_eq!(client_hello(&more), Hello::Name(Some("pypi.org".into())));
    }

    #[test]
    fn broken_hellos_are_unreadable() {
        let mut bad = HELLO.to_vec();
        // The handshake's length past the record's end.
        bad[6] = 0xff;
        assert_eq!(client_hello(&bad), Hello::Unreadable);
        assert_eq!(client_hello(&[0x16, 3, 1, 0xff, 0xff]), Hello::Unreadable);
        assert_eq!(client_hello(&[0x16, 3, 1, 0, 1, 0]), Hello::Unreadable);
    }

    #[test]
    fn names_differ_by_more_than_case_and_a_trailing_dot() {
        assert!(!differs("PyPI.org.", "pypi.org"));
        assert!(differs("pypi.org", "evil.test"));
        assert!(differs("151.101.0.223", "pypi.org"));
    }
}
