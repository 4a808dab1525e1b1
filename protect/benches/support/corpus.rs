//! Inputs shared by the protection benchmarks (each bench uses a subset).
#![allow(dead_code)]

use execkit_protect::{KnownSecrets, RedactionCounts, Redactor};

/// Redacts `text` streamed in 64 KiB chunks (cut at char boundaries), as the runner feeds
/// it.
pub fn redact_streamed(redactor: &Redactor, text: &str) -> (String, RedactionCounts) {
    let mut s = redactor.stream();
    let mut out = String::with_capacity(text.len() + 1024);
    let mut rest = text;
    while !rest.is_empty() {
        let mut cut = rest.len().min(64 * 1024);
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        s.push(&rest[..cut], &mut out);
        rest = &rest[cut..];
    }
    let counts = s.finish(&mut out);
    (out, counts)
}

/// A real build log captured on this machine (cargo, npm, pip, apt, gcc, git, dpkg).
pub const BUILD_LOG: &str = include_str!("../../tests/fixtures/benign-build.log");

/// A tiny deterministic PRNG (xorshift), so inputs are the same on every run.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn string(&mut self, alphabet: &[u8], n: usize) -> String {
        (0..n)
            .map(|_| alphabet[(self.next() % alphabet.len() as u64) as usize] as char)
            .collect()
    }
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// 100 known secret values, as a session with a rich environment would have.
pub fn known_values() -> KnownSecrets {
    let mut rng = Rng::new(42);
    let mut k = KnownSecrets::new();
    for _ in 0..100 {
        k.add(&rng.string(ALNUM, 24));
    }
    k
}

/// The build log repeated to about `bytes`, with a few secrets sprinkled in.
pub fn build_log(bytes: usize) -> String {
    let mut rng = Rng::new(7);
    let mut out = String::with_capacity(bytes + BUILD_LOG.len());
    while out.len() < bytes {
        for (i, line) in BUILD_LOG.lines().enumerate() {
            out.push_str(line);
            out.push('\n');
            if i % 1000 == 500 {
                out.push_str(&format!(
                    "export GITHUB_TOKEN=ghp_{}\n",
                    rng.string(ALNUM, 36)
                ));
            }
        }
    }
    out
}

/// Text where most lines carry a secret of some family.
pub fn secret_dense(bytes: usize) -> String {
    let mut rng = Rng::new(9);
    let mut out = String::with_capacity(bytes + 256);
    let mut i = 0u64;
    while out.len() < bytes {
        let line = match i % 8 {
            0 => format!(
                "AWS_ACCESS_KEY_ID=AKIA{}\n",
                rng.string(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)
            ),
            1 => format!("password={}\n", rng.string(ALNUM, 14)),
            2 => format!("Authorization: Bearer {}\n", rng.string(ALNUM, 40)),
            3 => format!("token: ghp_{}\n", rng.string(ALNUM, 36)),
            4 => format!("postgres://app:{}@db:5432/app\n", rng.string(ALNUM, 16)),
            5 => format!("\"api_key\": \"{}\",\n", rng.string(ALNUM, 32)),
            6 => format!(
                "xoxb-{}-{}-{}\n",
                rng.string(b"0123456789", 12),
                rng.string(b"0123456789", 12),
                rng.string(ALNUM, 24)
            ),
            _ => format!("plain text line number {i} with nothing in it\n"),
        };
        out.push_str(&line);
        i += 1;
    }
    out
}

/// Long lines (48 KB) each holding many quoted and bare assignments, as a minified config
/// or a one-line JSON document would: they exercise the gate's line-shape check, which must
/// not read the whole line for every value judged on it.
pub fn long_secret_lines(bytes: usize) -> String {
    let mut rng = Rng::new(13);
    let mut out = String::with_capacity(bytes + (64 << 10));
    while out.len() < bytes {
        let start = out.len();
        while out.len() - start < 48 << 10 {
            out.push_str(&format!(
                "\"password\": \"{}\", token=ghp_{} ",
                rng.string(ALNUM, 14),
                rng.string(ALNUM, 36)
            ));
        }
        out.push('\n');
    }
    out
}

/// Random base64, in 76-column lines.
pub fn random_base64(bytes: usize) -> String {
    let mut rng = Rng::new(11);
    let mut out = String::with_capacity(bytes + 80);
    while out.len() < bytes {
        out.push_str(&rng.string(B64, 76));
        out.push('\n');
    }
    out
}

/// Command output as a terminal program writes it: colours, progress bars with `\r`, a
/// few secrets; about `bytes` long.
pub fn terminal_output(bytes: usize) -> Vec<u8> {
    let log = build_log(bytes);
    let mut out = Vec::with_capacity(bytes + bytes / 8);
    for (i, line) in log.lines().enumerate() {
        match i % 10 {
            0 => out.extend_from_slice(format!("\x1b[1;32m{line}\x1b[0m\n").as_bytes()),
            3 => out.extend_from_slice(format!("[{:>3}%]\r\x1b[K{line}\n", i % 100).as_bytes()),
            _ => {
                out.extend_from_slice(line.as_bytes());
                out.push(b'\n');
            }
        }
    }
    out
}
