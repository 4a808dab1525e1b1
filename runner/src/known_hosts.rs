//! Host-key verification against an operator's OpenSSH `known_hosts` file, for the SSH
//! transport: the agent never chooses whom to trust.
//!
//! Supported, as `sshd(8)` documents the format: comments and blank lines; comma-separated
//! host patterns with `*`/`?` wildcards and `!` negation; `[host]:port` for ports other than
//! 22; hashed hosts (`|1|salt|hmac-sha1`); several keys per host; the `@revoked` marker (a
//! revoked key is refused even if another line trusts it); `@cert-authority` lines are
//! recognized, and since host certificates are not supported a host known only through a CA
//! is refused with a reason saying so.
//!
//! Fail closed: a host with known keys presenting any key not among them is a changed key,
//! whatever the key type (OpenSSH would ask about an unseen key type; a server for agents
//! must not).

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// What a line of the file marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    None,
    Revoked,
    CertAuthority,
}

/// Whom a line is for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Hosts {
    /// `|1|salt|hash`.
    Hashed { salt: Vec<u8>, hash: Vec<u8> },
    /// Patterns, each possibly negated.
    Patterns(Vec<(bool, String)>),
}

#[derive(Debug, Clone)]
struct Entry {
    line: usize,
    marker: Marker,
    hosts: Hosts,
    key_type: String,
    key: Vec<u8>,
}

/// A parsed `known_hosts` file.
#[derive(Debug, Clone, Default)]
pub struct KnownHosts {
    entries: Vec<Entry>,
}

/// A line that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("known_hosts line {line}: {message}")]
pub struct KnownHostsError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// The verdict on a presented host key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HostKeyVerdict {
    /// The key is listed for this host (on this line).
    Trusted {
        /// The line.
        line: usize,
    },
    /// The key is listed as `@revoked`: refuse.
    Revoked {
        /// The line.
        line: usize,
    },
    /// The host has other keys: the key changed (or someone is in the middle). Refuse and
    /// never reconnect on your own.
    Changed {
        /// The lines that list this host's keys.
        lines: Vec<usize>,
    },
    /// Only a `@cert-authority` line covers the host: host certificates are not supported.
    CertificatesUnsupported {
        /// The line.
        line: usize,
    },
    /// Nothing is known about the host.
    Unknown,
}

impl HostKeyVerdict {
    /// True only for [`HostKeyVerdict::Trusted`].
    pub fn is_trusted(&self) -> bool {
        matches!(self, HostKeyVerdict::Trusted { .. })
    }
}

impl std::fmt::Display for HostKeyVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostKeyVerdict::Trusted { line } => write!(f, "host key trusted (known_hosts line {line})"),
            HostKeyVerdict::Revoked { line } => {
                write!(f, "host key is REVOKED (known_hosts line {line}): refusing to connect")
            }
            HostKeyVerdict::Changed { lines } => write!(
                f,
                "HOST KEY CHANGED: the host presented a key that is not among its known keys (known_hosts lines {lines:?}); refusing to connect — if the change is expected, the operator must update known_hosts"
            ),
            HostKeyVerdict::CertificatesUnsupported { line } => write!(
                f,
                "the host is known only through a @cert-authority line ({line}); host certificates are not supported: list the host key itself"
            ),
            HostKeyVerdict::Unknown => write!(
                f,
                "unknown host: its key is not in the operator's known_hosts; refusing to connect"
            ),
        }
    }
}

/// `host` for port 22, `[host]:port` otherwise: the name known_hosts lists.
pub fn host_name(host: &str, port: u16) -> String {
    let host = host.to_ascii_lowercase();
    if port == 22 {
        host
    } else {
        format!("[{host}]:{port}")
    }
}

/// `*` and `?` glob, case-insensitive.
fn glob(pattern: &str, name: &str) -> bool {
    wildmatch::WildMatch::new(&pattern.to_ascii_lowercase()).matches(name)
}

fn b64(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

fn hmac_sha1(key: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    let mut m = <Hmac<Sha1> as Mac>::new_from_slice(key).ok()?;
    m.update(data);
    Some(m.finalize().into_bytes().to_vec())
}

impl Hosts {
    fn matches(&self, name: &str) -> bool {
        match self {
            Hosts::Hashed { salt, hash } => {
                hmac_sha1(salt, name.as_bytes()).is_some_and(|h| &h == hash)
            }
            Hosts::Patterns(ps) => {
                let mut hit = false;
                for (negated, p) in ps {
                    if glob(p, name) {
                        if *negated {
                            return false;
                        }
                        hit = true;
                    }
                }
                hit
            }
        }
    }
}

impl KnownHosts {
    /// Parses the text of a `known_hosts` file. A malformed line is an error (an operator
    /// file that does not say what the operator thinks must not be half-used).
    pub fn parse(text: &str) -> Result<KnownHosts, KnownHostsError> {
        let mut entries = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let t = raw.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let err = |message: &str| KnownHostsError {
                line,
                message: message.to_string(),
            };
            let mut fields = t.split_whitespace();
            let mut first = fields.next().ok_or_else(|| err("empty"))?;
            let marker = match first {
                "@revoked" => Marker::Revoked,
                "@cert-authority" => Marker::CertAuthority,
                m if m.starts_with('@') => return Err(err(&format!("unknown marker `{m}`"))),
                _ => Marker::None,
            };
            if marker != Marker::None {
                first = fields.next().ok_or_else(|| err("no host patterns"))?;
            }
            let hosts = if let Some(rest) = first.strip_prefix("|1|") {
                let (salt, hash) = rest
                    .split_once('|')
                    .ok_or_else(|| err("hashed host without `|salt|hash`"))?;
                Hosts::Hashed {
                    salt: b64(salt).ok_or_else(|| err("hashed host salt is not base64"))?,
                    hash: b64(hash).ok_or_else(|| err("hashed host hash is not base64"))?,
                }
            } else {
                Hosts::Patterns(
                    first
                        .split(',')
                        .filter(|p| !p.is_empty())
                        .map(|p| match p.strip_prefix('!') {
                            Some(n) => (true, n.to_ascii_lowercase()),
                            None => (false, p.to_ascii_lowercase()),
                        })
                        .collect(),
                )
            };
            let key_type = fields.next().ok_or_else(|| err("no key type"))?.to_string();
            let key = fields
                .next()
                .and_then(b64)
                .ok_or_else(|| err("no base64 key"))?;
            entries.push(Entry {
                line,
                marker,
                hosts,
                key_type,
                key,
            });
        }
        Ok(KnownHosts { entries })
    }

    /// Judges the key (`key_type`, wire-format `key_blob`) that `host:port` presented.
    pub fn check(&self, host: &str, port: u16, key_type: &str, key_blob: &[u8]) -> HostKeyVerdict {
        let name = host_name(host, port);
        let mut trusted = None;
        let mut known_lines = Vec::new();
        let mut ca_line = None;
        for e in self.entries.iter().filter(|e| e.hosts.matches(&name)) {
            let same = e.key_type == key_type && e.key == key_blob;
            match e.marker {
                Marker::Revoked => {} // checked for every host below
                Marker::CertAuthority => ca_line = ca_line.or(Some(e.line)),
                Marker::None => {
                    known_lines.push(e.line);
                    if same {
                        trusted = trusted.or(Some(e.line));
                    }
                }
            }
        }
        // A revoked key is refused whoever it claims to be.
        if let Some(e) = self
            .entries
            .iter()
            .find(|e| e.marker == Marker::Revoked && e.key_type == key_type && e.key == key_blob)
        {
            return HostKeyVerdict::Revoked { line: e.line };
        }
        match (trusted, known_lines.is_empty(), ca_line) {
            (Some(line), ..) => HostKeyVerdict::Trusted { line },
            (None, false, _) => HostKeyVerdict::Changed { lines: known_lines },
            (None, true, Some(line)) => HostKeyVerdict::CertificatesUnsupported { line },
            (None, true, None) => HostKeyVerdict::Unknown,
        }
    }

    /// A hashed line (`|1|salt|hmac`), as `ssh-keygen -H` writes, for the given salt.
    pub fn hashed_line(
        host: &str,
        port: u16,
        key_type: &str,
        key_blob: &[u8],
        salt: &[u8],
    ) -> String {
        let e = &base64::engine::general_purpose::STANDARD;
        let hash = hmac_sha1(salt, host_name(host, port).as_bytes()).unwrap_or_default();
        format!(
            "|1|{}|{} {key_type} {}",
            e.encode(salt),
            e.encode(hash),
            e.encode(key_blob)
        )
    }

    /// The line trust-on-first-use appends (plain host name, as `ssh` writes with
    /// `HashKnownHosts no`).
    pub fn line_for(host: &str, port: u16, key_type: &str, key_blob: &[u8]) -> String {
        format!(
            "{} {key_type} {}",
            host_name(host, port),
            base64::engine::general_purpose::STANDARD.encode(key_blob)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str = "ssh-ed25519";
    // Two different ed25519-looking blobs (the verifier compares bytes, it does not parse).
    fn key(n: u8) -> Vec<u8> {
        let mut k = b"\0\0\0\x0bssh-ed25519\0\0\0\x20".to_vec();
        k.extend(std::iter::repeat_n(n, 32));
        k
    }
    fn b(n: u8) -> String {
        base64::engine::general_purpose::STANDARD.encode(key(n))
    }

    #[test]
    fn plain_patterns_ports_and_several_keys() {
        let text = format!(
            "# comment\n\nbuild-1.internal,10.0.0.7 {ED} {}\n[build-1.internal]:2222 {ED} {}\n*.lab.internal,!secret.lab.internal {ED} {}\nmulti.internal ssh-rsa {}\nmulti.internal {ED} {}\n",
            b(1),
            b(2),
            b(3),
            b(4),
            b(5)
        );
        let k = KnownHosts::parse(&text).unwrap();
        assert_eq!(
            k.check("build-1.internal", 22, ED, &key(1)),
            HostKeyVerdict::Trusted { line: 3 }
        );
        assert_eq!(
            k.check("BUILD-1.internal", 22, ED, &key(1)),
            HostKeyVerdict::Trusted { line: 3 }
        );
        assert_eq!(
            k.check("10.0.0.7", 22, ED, &key(1)),
            HostKeyVerdict::Trusted { line: 3 }
        );
        // Port 2222 is another name with its own key.
        assert_eq!(
            k.check("build-1.internal", 2222, ED, &key(2)),
            HostKeyVerdict::Trusted { line: 4 }
        );
        assert_eq!(
            k.check("build-1.internal", 2222, ED, &key(1)),
            HostKeyVerdict::Changed { lines: vec![4] }
        );
        assert_eq!(
            k.check("a.lab.internal", 22, ED, &key(3)),
            HostKeyVerdict::Trusted { line: 5 }
        );
        assert_eq!(
            k.check("secret.lab.internal", 22, ED, &key(3)),
            HostKeyVerdict::Unknown
        );
        assert_eq!(
            k.check("multi.internal", 22, ED, &key(5)),
            HostKeyVerdict::Trusted { line: 7 }
        );
        // An unseen key, of any type, for a known host is a change.
        assert_eq!(
            k.check("multi.internal", 22, "ecdsa-sha2-nistp256", &key(9)),
            HostKeyVerdict::Changed { lines: vec![6, 7] }
        );
        assert_eq!(
            k.check("elsewhere.example", 22, ED, &key(1)),
            HostKeyVerdict::Unknown
        );
    }

    #[test]
    fn hashed_entries_match_their_host_and_port_only() {
        // HMAC-SHA1(salt = bytes 0..20, "build-1.internal") and "[build-1.internal]:2222",
        // computed independently with Python's hmac module.
        let text = format!(
            "|1|AAECAwQFBgcICQoLDA0ODxAREhM=|PLE751H3fdbaq+JJoflM7FeQnYE= {ED} {}\n|1|AAECAwQFBgcICQoLDA0ODxAREhM=|e71bhbAhwulP/OBWFSmj3HaA7J8= {ED} {}\n",
            b(1),
            b(2)
        );
        let k = KnownHosts::parse(&text).unwrap();
        assert_eq!(
            k.check("build-1.internal", 22, ED, &key(1)),
            HostKeyVerdict::Trusted { line: 1 }
        );
        assert_eq!(
            k.check("build-1.internal", 2222, ED, &key(2)),
            HostKeyVerdict::Trusted { line: 2 }
        );
        assert_eq!(
            k.check("build-1.internal", 22, ED, &key(2)),
            HostKeyVerdict::Changed { lines: vec![1] }
        );
        assert_eq!(
            k.check("build-2.internal", 22, ED, &key(1)),
            HostKeyVerdict::Unknown
        );
    }

    #[test]
    fn revoked_keys_are_refused_even_when_trusted_and_ca_only_hosts_are_explained() {
        let text = format!(
            "build-1.internal {ED} {}\n@revoked * {ED} {}\n@cert-authority *.ca.internal {ED} {}\n",
            b(1),
            b(1),
            b(7)
        );
        let k = KnownHosts::parse(&text).unwrap();
        assert_eq!(
            k.check("build-1.internal", 22, ED, &key(1)),
            HostKeyVerdict::Revoked { line: 2 }
        );
        let v = k.check("x.ca.internal", 22, ED, &key(8));
        assert_eq!(v, HostKeyVerdict::CertificatesUnsupported { line: 3 });
        assert!(v.to_string().contains("not supported"));
        assert!(!v.is_trusted());
        assert!(HostKeyVerdict::Changed { lines: vec![1] }
            .to_string()
            .contains("CHANGED"));
    }

    #[test]
    fn malformed_files_are_refused_with_the_line() {
        for (text, line) in [
            ("@bogus host ssh-ed25519 AAAA\n", 1),
            ("# ok\nhost-only\n", 2),
            ("host ssh-ed25519 !!notbase64!!\n", 1),
            ("|1|nosalt ssh-ed25519 AAAA\n", 1),
        ] {
            assert_eq!(KnownHosts::parse(text).unwrap_err().line, line, "{text}");
        }
        let l = KnownHosts::line_for("Build-1.internal", 2222, ED, &key(1));
        let k = KnownHosts::parse(&l).unwrap();
        assert!(k.check("build-1.internal", 2222, ED, &key(1)).is_trusted());
    }
}
