//! Forwarding each record to syslog as it is written, so a SIEM receives every decision as
//! it happens and holds a copy of the chain outside the file.
//!
//! Messages are RFC 5424: `<PRI>1 TIMESTAMP HOST APP PROCID MSGID [execkit@32473 seq="N"
//! hash="H"] RECORD`, where MSGID is the record's kind (`decision`, `command`, …), the
//! structured data carries the record's sequence number and hash (an anchor of the chain:
//! the SIEM's copy catches records later cut from the file or rewritten), and the message is
//! the record's line exactly as the file holds it (`execkit audit verify` reads it back).
//! `32473` is the private enterprise number RFC 5612 reserves for examples; the SD-ID is
//! stable and documented, not registered.
//!
//! Transports: a Unix datagram socket (`/dev/log`, rsyslog's `imuxsock`), UDP, and TCP with
//! octet-counting framing (RFC 6587: `LEN SP MSG`, what rsyslog's `imtcp` reads). A TCP
//! connection that breaks is made again once per record. TLS is left to a local relay
//! (rsyslog with `omfwd` over TLS reading the Unix socket).
//!
//! Trade-off: a record is forwarded after it is in the file and under the log's lock, so
//! the SIEM sees records in chain order; a slow syslog slows appends. With `required` a
//! record that cannot be forwarded fails the append (the command is refused); without it
//! the failure is reported on stderr and the file stays the record.

use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::Duration;

/// How long a TCP connect or write may take before the forward fails.
const NET_TIMEOUT: Duration = Duration::from_secs(2);

/// Where syslog messages go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyslogAddress {
    /// A Unix datagram socket (`unix:/dev/log`).
    Unix(PathBuf),
    /// UDP (`udp:HOST:PORT`).
    Udp(String),
    /// TCP with octet-counting framing (`tcp:HOST:PORT`).
    Tcp(String),
}

impl std::str::FromStr for SyslogAddress {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (scheme, rest) = s.split_once(':').ok_or_else(|| {
            format!("`{s}`: a syslog address is unix:PATH, udp:HOST:PORT or tcp:HOST:PORT")
        })?;
        match scheme {
            "unix" if rest.starts_with('/') => Ok(SyslogAddress::Unix(PathBuf::from(rest))),
            "udp" | "tcp"
                if rest
                    .rsplit_once(':')
                    .is_some_and(|(_, p)| p.parse::<u16>().is_ok()) =>
            {
                Ok(if scheme == "udp" {
                    SyslogAddress::Udp(rest.to_string())
                } else {
                    SyslogAddress::Tcp(rest.to_string())
                })
            }
            _ => Err(format!(
                "`{s}`: a syslog address is unix:/ABSOLUTE/PATH, udp:HOST:PORT or tcp:HOST:PORT"
            )),
        }
    }
}

/// Syslog facilities an operator may choose (RFC 5424 numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Facility {
    /// Security/authorization messages (10): the default, since these are decisions.
    #[default]
    Authpriv,
    /// Security/authorization (4).
    Auth,
    /// User-level (1).
    User,
    /// Daemon (3).
    Daemon,
    /// Local use 0–7 (16–23).
    Local0,
    /// Local use 1.
    Local1,
    /// Local use 2.
    Local2,
    /// Local use 3.
    Local3,
    /// Local use 4.
    Local4,
    /// Local use 5.
    Local5,
    /// Local use 6.
    Local6,
    /// Local use 7.
    Local7,
}

impl Facility {
    fn code(self) -> u8 {
        match self {
            Facility::User => 1,
            Facility::Daemon => 3,
            Facility::Auth => 4,
            Facility::Authpriv => 10,
            Facility::Local0 => 16,
            Facility::Local1 => 17,
            Facility::Local2 => 18,
            Facility::Local3 => 19,
            Facility::Local4 => 20,
            Facility::Local5 => 21,
            Facility::Local6 => 22,
            Facility::Local7 => 23,
        }
    }
}

/// RFC 5424 severities used for records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// A refusal, or records lost to the file (4).
    Warning = 4,
    /// A decision that asked a human (5).
    Notice = 5,
    /// Everything else (6).
    Informational = 6,
}

/// The operator's syslog settings.
#[derive(Debug, Clone)]
pub struct SyslogOptions {
    /// Where to send.
    pub address: SyslogAddress,
    /// The facility.
    pub facility: Facility,
    /// APP-NAME (default `execkit`).
    pub app_name: String,
    /// A record that cannot be forwarded fails the append (its command is refused).
    pub required: bool,
}

/// Why a record could not be forwarded.
#[derive(Debug, thiserror::Error)]
#[error("syslog {address}: {source}")]
pub struct SyslogError {
    address: String,
    source: std::io::Error,
}

enum Conn {
    Unix(UnixDatagram),
    Udp(UdpSocket),
    /// The address, and the connection while it holds.
    Tcp(String, Option<TcpStream>),
}

/// One record as a syslog message.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// Its severity.
    pub severity: Severity,
    /// MSGID: the record's kind.
    pub kind: &'a str,
    /// The record's sequence number.
    pub seq: u64,
    /// The record's hash.
    pub hash: &'a str,
    /// The record's time (RFC 3339).
    pub time: &'a str,
    /// The record's line, without its `\n`.
    pub line: &'a str,
}

/// A connection to syslog that sends one message per record.
pub struct Syslog {
    options: SyslogOptions,
    host: String,
    procid: String,
    conn: Conn,
}

impl std::fmt::Debug for Syslog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Syslog")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Syslog {
    /// Opens the socket (a TCP connection is made now, and again after it breaks).
    pub fn connect(options: SyslogOptions) -> Result<Syslog, SyslogError> {
        let err = |source| SyslogError {
            address: format!("{:?}", options.address),
            source,
        };
        let conn = match &options.address {
            SyslogAddress::Unix(p) => {
                let s = UnixDatagram::unbound().map_err(err)?;
                s.connect(p).map_err(err)?;
                Conn::Unix(s)
            }
            SyslogAddress::Udp(a) => {
                let s = UdpSocket::bind("0.0.0.0:0").map_err(err)?;
                s.connect(a.as_str()).map_err(err)?;
                Conn::Udp(s)
            }
            SyslogAddress::Tcp(a) => Conn::Tcp(a.clone(), Some(tcp(a).map_err(err)?)),
        };
        Ok(Syslog {
            host: hostname(),
            procid: std::process::id().to_string(),
            options,
            conn,
        })
    }

    /// Whether a failed forward fails the append.
    pub fn required(&self) -> bool {
        self.options.required
    }

    /// Sends one record.
    pub fn send(&mut self, m: &Message<'_>) -> Result<(), SyslogError> {
        let msg = self.format(m);
        let address = format!("{:?}", self.options.address);
        let err = |source| SyslogError {
            address: address.clone(),
            source,
        };
        match &mut self.conn {
            Conn::Unix(s) => s.send(msg.as_bytes()).map(|_| ()).map_err(err),
            Conn::Udp(s) => s.send(msg.as_bytes()).map(|_| ()).map_err(err),
            Conn::Tcp(addr, stream) => {
                let framed = format!("{} {msg}", msg.len());
                // Once on the open connection, once on a new one.
                if let Some(s) = stream.as_mut() {
                    if s.write_all(framed.as_bytes()).is_ok() {
                        return Ok(());
                    }
                }
                *stream = None;
                let mut s = tcp(addr).map_err(err)?;
                s.write_all(framed.as_bytes()).map_err(err)?;
                *stream = Some(s);
                Ok(())
            }
        }
    }

    /// The RFC 5424 message.
    fn format(&self, m: &Message<'_>) -> String {
        let pri = u16::from(self.options.facility.code()) * 8 + m.severity as u16;
        format!(
            "<{pri}>1 {} {} {} {} {} [execkit@32473 seq=\"{}\" hash=\"{}\"] {}",
            m.time,
            nil_or(&self.host, 255),
            nil_or(&self.options.app_name, 48),
            nil_or(&self.procid, 128),
            nil_or(m.kind, 32),
            m.seq,
            m.hash,
            m.line,
        )
    }
}

fn tcp(addr: &str) -> std::io::Result<TcpStream> {
    let mut last = std::io::Error::other("the address resolved to nothing");
    for a in addr.to_socket_addrs()? {
        match TcpStream::connect_timeout(&a, NET_TIMEOUT) {
            Ok(s) => {
                s.set_write_timeout(Some(NET_TIMEOUT))?;
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// A header field: printable US-ASCII without spaces, at most `max` long, or `-`.
fn nil_or(s: &str, max: usize) -> String {
    let v: String = s
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if v.is_empty() {
        "-".into()
    } else {
        v
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_or_say_what_is_expected() {
        assert_eq!(
            "unix:/dev/log".parse(),
            Ok(SyslogAddress::Unix("/dev/log".into()))
        );
        assert_eq!(
            "tcp:127.0.0.1:601".parse(),
            Ok(SyslogAddress::Tcp("127.0.0.1:601".into()))
        );
        assert_eq!(
            "udp:[::1]:514".parse(),
            Ok(SyslogAddress::Udp("[::1]:514".into()))
        );
        for bad in [
            "/dev/log",
            "unix:dev/log",
            "tcp:host",
            "http://x:1",
            "tcp:h:99999",
        ] {
            assert!(bad.parse::<SyslogAddress>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_message_is_rfc_5424_with_the_record_as_its_text() {
        let dir = std::env::temp_dir().join(format!("ek-syslog-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("log.sock");
        let rx = UnixDatagram::bind(&sock).unwrap();
        let mut s = Syslog::connect(SyslogOptions {
            address: SyslogAddress::Unix(sock.clone()),
            facility: Facility::Local3,
            app_name: "exec kit".into(),
            required: true,
        })
        .unwrap();
        s.send(&Message {
            severity: Severity::Warning,
            kind: "decision",
            seq: 7,
            hash: "abc",
            time: "2026-11-26T03:00:00.000Z",
            line: r#"{"seq":7}"#,
        })
        .unwrap();
        let mut buf = [0u8; 512];
        let n = rx.recv(&mut buf).unwrap();
        let got = std::str::from_utf8(&buf[..n]).unwrap();
        // local3 (19) * 8 + warning (4) = 156; the blank in APP-NAME is dropped.
        let want_tail = format!(
            " execkit {} decision [execkit@32473 seq=\"7\" hash=\"abc\"] {{\"seq\":7}}",
            std::process::id()
        );
        assert!(got.starts_with("<156>1 2026-11-26T03:00:00.000Z "), "{got}");
        assert!(got.ends_with(&want_tail), "{got}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
