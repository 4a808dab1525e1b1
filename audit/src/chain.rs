//! The hash chain: how a record's hash is computed from its bytes and its predecessor's.
//!
//! A line is `{…fields…,"hash":"<64 hex>"}`. Its *body* is the same line with the final
//! `,"hash":"…"` removed, i.e. exactly the bytes that were hashed:
//! `hash = SHA-256(prev_hash_hex || "\n" || body)`. Hashing the bytes as written (not a
//! re-serialisation) means any edit, even of whitespace or key order, is detected.

use sha2::{Digest, Sha256};

/// Domain separator for the genesis record's `prev`: `SHA-256(GENESIS_DOMAIN || nonce)`.
pub const GENESIS_DOMAIN: &str = "execkit-audit-v1\n";

/// Lower-case hex of SHA-256 over the parts.
pub(crate) fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    hex::encode(h.finalize())
}

/// The hash of a record body given its predecessor's hash.
pub fn record_hash(prev: &str, body: &[u8]) -> String {
    sha256_hex(&[prev.as_bytes(), b"\n", body])
}

/// The `prev` of a genesis record with this nonce.
pub(crate) fn genesis_prev(nonce: &str) -> String {
    sha256_hex(&[GENESIS_DOMAIN.as_bytes(), nonce.as_bytes()])
}

/// Splits a line (without newline) into body and hash, if it ends with a hash field.
pub(crate) fn split_hash(line: &[u8]) -> Option<(Vec<u8>, &str)> {
    const SUFFIX_LEN: usize = r#","hash":""#.len() + 64 + r#""}"#.len();
    if line.len() < SUFFIX_LEN + 2 || !line.ends_with(b"\"}") {
        return None;
    }
    let at = line.len() - SUFFIX_LEN;
    let suffix = &line[at..];
    if !suffix.starts_with(br#","hash":""#) {
        return None;
    }
    let hex = std::str::from_utf8(&suffix[9..9 + 64]).ok()?;
    if !hex
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return None;
    }
    let mut body = line[..at].to_vec();
    body.push(b'}');
    Some((body, hex))
}

/// Appends the hash field to a serialised body (which ends with `}`).
pub(crate) fn seal(body: &str, hash: &str) -> String {
    let mut line = String::with_capacity(body.len() + 80);
    line.push_str(&body[..body.len() - 1]);
    line.push_str(",\"hash\":\"");
    line.push_str(hash);
    line.push_str("\"}\n");
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_split_round_trip() {
        let body = r#"{"seq":1,"prev":"ab"}"#;
        let h = record_hash("ab", body.as_bytes());
        let line = seal(body, &h);
        let (b, hh) = split_hash(line.trim_end().as_bytes()).unwrap();
        assert_eq!(b, body.as_bytes());
        assert_eq!(hh, h);
        assert!(split_hash(b"{\"seq\":1}").is_none());
    }
}
