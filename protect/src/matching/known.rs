//! Known secret values: exact strings the operator names (from files or environment
//! variables read at startup) and the values of sensitive variables in a session's
//! environment. Each value is also searched for in its base64 forms (at all three byte
//! alignments, so it is found inside a longer base64 blob) and its URL-encoded form.
//!
//! The engine does no I/O: callers read the files and pass the contents.

use base64::Engine as _;

/// Which environment variables hold secrets, by name (globs with `*`, ASCII
/// case-insensitive).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SecretEnvPolicy {
    /// A variable whose name matches one of these is sensitive…
    pub include: Vec<String>,
    /// …unless it also matches one of these.
    pub exclude: Vec<String>,
    /// Values shorter than this (in bytes) are ignored: redacting `1` everywhere helps nobody.
    pub min_len: usize,
}

impl Default for SecretEnvPolicy {
    fn default() -> Self {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect();
        SecretEnvPolicy {
            include: s(&[
                "*TOKEN*",
                "*SECRET*",
                "*PASSWORD*",
                "*PASSWD*",
                "*PASSPHRASE*",
                "*_PASS",
                "*_PWD",
                "*API_KEY*",
                "*APIKEY*",
                "*PRIVATE_KEY*",
                "*ACCESS_KEY*",
                "*CREDENTIAL*",
                "*AUTH*",
                "*_DSN",
                "*SESSION_KEY*",
                "*SIGNING_KEY*",
                "*ENCRYPTION_KEY*",
                "AWS_*",
                "*_PAT",
                "DATABASE_URL",
                "*CONNECTION_STRING*",
            ]),
            exclude: s(&[
                "AWS_REGION",
                "AWS_DEFAULT_REGION",
                "AWS_PROFILE",
                "AWS_DEFAULT_OUTPUT",
                "AWS_PAGER",
                "AWS_SDK_LOAD_CONFIG",
                "AWS_CONFIG_FILE",
                "AWS_SHARED_CREDENTIALS_FILE",
                "*_FILE",
                "*_PATH",
                "*_DIR",
                "*_URL_BASE",
                "*_TTL",
                "*_TIMEOUT",
                "*_EXPIRY",
                "*AUTHOR*",
            ]),
            min_len: 6,
        }
    }
}

/// `*`-glob match, case-insensitive (the one glob matcher: `wildmatch`, as in the engine's
/// path groups; `?` is not a wildcard here).
pub(crate) fn glob_match(pattern: &str, name: &str) -> bool {
    wildmatch::WildMatchPattern::<'*', '\0'>::new_case_insensitive(pattern).matches(name)
}

impl SecretEnvPolicy {
    /// Whether a variable of this name holds a secret.
    ///
    /// ```
    /// use execkit_protect::SecretEnvPolicy;
    /// let p = SecretEnvPolicy::default();
    /// assert!(p.is_sensitive("GITHUB_TOKEN"));
    /// assert!(p.is_sensitive("AWS_SECRET_ACCESS_KEY"));
    /// assert!(!p.is_sensitive("AWS_REGION"));
    /// assert!(!p.is_sensitive("HOME"));
    /// ```
    pub fn is_sensitive(&self, name: &str) -> bool {
        self.include.iter().any(|g| glob_match(g, name))
            && !self.exclude.iter().any(|g| glob_match(g, name))
    }
}

/// The longest single piece searched for; longer values are searched for in pieces.
const MAX_PIECE: usize = 512;
/// Shortest encoded form worth searching for.
const MIN_ENCODED: usize = 8;

/// A set of known secret values, with the label each is reported under.
#[derive(Debug, Clone, Default)]
pub struct KnownSecrets {
    values: Vec<String>,
    min_len: usize,
}

impl KnownSecrets {
    /// An empty set; values shorter than 4 bytes are ignored.
    pub fn new() -> Self {
        KnownSecrets {
            values: Vec::new(),
            min_len: 4,
        }
    }

    /// Adds one secret value (surrounding whitespace is trimmed). Multi-line values are
    /// added line by line, and very long lines in pieces, so each part is found on its own.
    pub fn add(&mut self, value: &str) {
        for line in value.lines() {
            let line = line.trim();
            if line.len() < self.min_len {
                continue;
            }
            if line.len() <= MAX_PIECE {
                self.values.push(line.to_string());
                continue;
            }
            let mut rest = line;
            while !rest.is_empty() {
                let mut cut = rest.len().min(MAX_PIECE);
                while !rest.is_char_boundary(cut) {
                    cut -= 1;
                }
                if cut >= self.min_len {
                    self.values.push(rest[..cut].to_string());
                }
                rest = &rest[cut..];
            }
        }
    }

    /// Adds every non-empty line of a secrets file (`NAME=value` lines contribute the value).
    pub fn add_file_contents(&mut self, contents: &str) {
        for line in contents.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match line.split_once('=') {
                Some((k, v))
                    if !k.is_empty()
                        && k.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.') =>
                {
                    self.add(v.trim().trim_matches(['"', '\'']))
                }
                _ => self.add(line),
            }
        }
    }

    /// Adds the values of the sensitive variables in `env`.
    pub fn add_env<'a, I>(&mut self, env: I, policy: &SecretEnvPolicy)
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        for (name, value) in env {
            if policy.is_sensitive(name) && value.trim().len() >= policy.min_len {
                self.add(value);
            }
        }
    }

    /// How many distinct values were added (before encoding variants).
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether no value was added.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Every form searched for: each value, its base64 (standard and URL-safe, at every
    /// alignment) and its URL encoding.
    pub fn search_forms(&self) -> Vec<Vec<u8>> {
        let mut forms: Vec<Vec<u8>> = Vec::new();
        let std = base64::engine::general_purpose::STANDARD;
        for v in &self.values {
            let bytes = v.as_bytes();
            forms.push(bytes.to_vec());
            // Padded standard form, as `base64` prints it.
            forms.push(std.encode(bytes).into_bytes());
            for k in 0..3usize {
                let mut padded = vec![0u8; k];
                padded.extend_from_slice(bytes);
                let enc = std.encode(&padded);
                let first = (8 * k).div_ceil(6);
                let last = (8 * (k + bytes.len())) / 6;
                if last > first && last - first >= MIN_ENCODED && last <= enc.len() {
                    let core = &enc[first..last];
                    forms.push(core.as_bytes().to_vec());
                    let url: String = core
                        .chars()
                        .map(|c| match c {
                            '+' => '-',
                            '/' => '_',
                            c => c,
                        })
                        .collect();
                    forms.push(url.into_bytes());
                }
            }
            let enc = url_encode(v);
            if enc != *v {
                forms.push(enc.into_bytes());
            }
        }
        forms.sort();
        forms.dedup();
        forms
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn url_encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*TOKEN*", "github_token"));
        assert!(glob_match("AWS_*", "AWS_SECRET_ACCESS_KEY"));
        assert!(!glob_match("AWS_*", "XAWS_"));
        assert!(glob_match("*_PASS", "DB_PASS"));
        assert!(!glob_match("*_PASS", "DB_PASSWORD_FILE"));
    }

    #[test]
    fn forms_include_base64_alignments_and_url_encoding() {
        let mut k = KnownSecrets::new();
        k.add("p@ss/w0rd+xyz");
        let forms: Vec<String> = k
            .search_forms()
            .into_iter()
            .map(|f| String::from_utf8(f).unwrap())
            .collect();
        assert!(forms.contains(&"p@ss/w0rd+xyz".to_string()));
        assert!(forms.contains(&"cEBzcy93MHJkK3h5eg==".to_string()));
        assert!(forms.contains(&"p%40ss%2Fw0rd%2Bxyz".to_string()));
        // "user:" + secret, base64-encoded, contains one of the aligned cores.
        let blob = base64::engine::general_purpose::STANDARD.encode("user:p@ss/w0rd+xyz");
        assert!(forms
            .iter()
            .any(|f| f.len() >= 8 && blob.contains(f.as_str())));
    }

    #[test]
    fn env_policy_and_min_len() {
        let mut k = KnownSecrets::new();
        let env = [
            ("GITHUB_TOKEN", "ghp_abcdefgh"),
            ("HOME", "/root"),
            ("DB_PASSWORD", "abc"),
            ("AWS_REGION", "us-east-1"),
        ];
        k.add_env(env.iter().copied(), &SecretEnvPolicy::default());
        assert_eq!(k.len(), 1);
    }

    #[test]
    fn secrets_file_lines() {
        let mut k = KnownSecrets::new();
        k.add_file_contents("# comment\nAPI_KEY=\"abcdef123\"\nplain-secret-value\n\n");
        assert_eq!(k.len(), 2);
    }
}

/// Finds every occurrence of a set of byte strings (at least 4 bytes each).
///
/// Why not Aho-Corasick: a session's known values yield hundreds of long, random-looking
/// patterns (each value in seven encodings); their automaton is megabytes and scanning it
/// thrashes the cache (measured: a third of all redaction time). Instead every 8-byte
/// piece of every form of 8 bytes or more is hashed into a filter that fits in L1, and the
/// text is probed only every `stride` bytes (the shortest such form's length minus 7): an
/// occurrence of a form covers at least one probe, whose 8 bytes are one of its pieces.
/// Only on a filter hit is a small table consulted and the candidates compared. Forms of
/// 4 to 7 bytes are probed at every position on their first 4 bytes.
#[derive(Debug, Clone)]
pub(crate) struct KnownMatcher {
    forms: Vec<Vec<u8>>,
    filter8: Vec<u64>,
    /// (8 bytes, form index, their offset in the form), sorted.
    table8: Vec<(u64, u32, u32)>,
    /// Probe distance for the 8-byte pieces.
    stride: usize,
    filter4: Vec<u64>,
    /// (first 4 bytes, form index), sorted.
    table4: Vec<(u32, u32)>,
}

const FILTER_BITS: u32 = 16;
/// The 8-byte pieces are many (a form of n bytes has n - 7): a larger filter keeps its
/// false hits rare.
const FILTER8_BITS: u32 = 18;

#[inline]
fn slot(key: u64) -> usize {
    (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - FILTER_BITS)) as usize
}

#[inline]
fn slot8(key: u64) -> usize {
    (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - FILTER8_BITS)) as usize
}

#[inline]
fn test_bit(filter: &[u64], s: usize) -> bool {
    filter[s >> 6] & (1 << (s & 63)) != 0
}

impl KnownMatcher {
    /// A matcher for these forms; `None` when there are none.
    pub(crate) fn new(forms: Vec<Vec<u8>>) -> Option<KnownMatcher> {
        let forms: Vec<Vec<u8>> = forms.into_iter().filter(|f| f.len() >= 4).collect();
        if forms.is_empty() {
            return None;
        }
        let words = (1usize << FILTER_BITS) / 64;
        let shortest = forms
            .iter()
            .map(Vec::len)
            .filter(|&l| l >= 8)
            .min()
            .unwrap_or(8);
        let mut m = KnownMatcher {
            filter8: vec![0; (1usize << FILTER8_BITS) / 64],
            table8: Default::default(),
            stride: shortest - 7,
            filter4: vec![0; words],
            table4: Default::default(),
            forms: Vec::new(),
        };
        for (i, f) in forms.iter().enumerate() {
            if f.len() >= 8 {
                for (o, piece) in f.windows(8).enumerate() {
                    let key = u64::from_le_bytes(piece.try_into().unwrap_or_default());
                    let s = slot8(key);
                    m.filter8[s >> 6] |= 1 << (s & 63);
                    m.table8.push((key, i as u32, o as u32));
                }
            } else {
                let key = u32::from_le_bytes(f[..4].try_into().unwrap_or_default());
                let s = slot(u64::from(key));
                m.filter4[s >> 6] |= 1 << (s & 63);
                m.table4.push((key, i as u32));
            }
        }
        m.table8.sort_unstable();
        m.table4.sort_unstable();
        m.forms = forms;
        Some(m)
    }

    /// Every occurrence (overlapping) as `(start, end)`, in order, each once.
    pub(crate) fn find_all(&self, hay: &[u8], out: &mut Vec<(usize, usize)>) {
        let n = hay.len();
        let first = out.len();
        if !self.table8.is_empty() {
            let mut i = 0;
            while i + 8 <= n {
                if let Some(bytes) = hay[i..].first_chunk::<8>() {
                    let key = u64::from_le_bytes(*bytes);
                    if test_bit(&self.filter8, slot8(key)) {
                        let from = self.table8.partition_point(|&(k, _, _)| k < key);
                        for &(k, c, o) in &self.table8[from..] {
                            if k != key {
                                break;
                            }
                            if let Some(start) = i.checked_sub(o as usize) {
                                self.confirm(hay, start, c, out);
                            }
                        }
                    }
                }
                i += self.stride;
            }
        }
        let short = !self.table4.is_empty();
        let mut i = 0;
        while short && i + 4 <= n {
            {
                if let Some(bytes) = hay[i..].first_chunk::<4>() {
                    let key = u32::from_le_bytes(*bytes);
                    if test_bit(&self.filter4, slot(u64::from(key))) {
                        let from = self.table4.partition_point(|&(k, _)| k < key);
                        for &(k, c) in &self.table4[from..] {
                            if k != key {
                                break;
                            }
                            self.confirm(hay, i, c, out);
                        }
                    }
                }
            }
            i += 1;
        }
        // A long occurrence covers several probes: report it once.
        out[first..].sort_unstable();
        let mut kept = first;
        for j in first..out.len() {
            if kept == first || out[kept - 1] != out[j] {
                out[kept] = out[j];
                kept += 1;
            }
        }
        out.truncate(kept);
    }

    fn confirm(&self, hay: &[u8], at: usize, form: u32, out: &mut Vec<(usize, usize)>) {
        let f = &self.forms[form as usize];
        if hay[at..].starts_with(f) {
            out.push((at, at + f.len()));
        }
    }
}

#[cfg(test)]
mod matcher_tests {
    use super::KnownMatcher;

    #[test]
    fn finds_every_occurrence_of_short_and_long_forms() {
        let m = KnownMatcher::new(vec![b"abcd".to_vec(), b"secret-value-1".to_vec()]).unwrap();
        let mut out = Vec::new();
        m.find_all(b"xxabcdabcd secret-value-1 secret-value", &mut out);
        assert_eq!(out, vec![(2, 6), (6, 10), (11, 25)]);
        assert!(KnownMatcher::new(vec![b"abc".to_vec()]).is_none());
    }

    /// Against a naive search: forms of many lengths (sharing pieces, overlapping each
    /// other and themselves) in text made of their own bytes.
    #[test]
    fn strided_probes_find_what_a_naive_search_finds() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..200 {
            let alphabet = b"ab-c";
            let forms: Vec<Vec<u8>> = (0..1 + next() % 6)
                .map(|_| {
                    let len = 4 + (next() % 30) as usize;
                    (0..len).map(|_| alphabet[(next() % 4) as usize]).collect()
                })
                .collect();
            let mut hay: Vec<u8> = (0..2000).map(|_| alphabet[(next() % 4) as usize]).collect();
            for f in &forms {
                let at = (next() % 1900) as usize;
                let end = (at + f.len()).min(hay.len());
                hay[at..end].copy_from_slice(&f[..end - at]);
            }
            let mut want = Vec::new();
            for i in 0..hay.len() {
                for f in &forms {
                    if hay[i..].starts_with(f) {
                        want.push((i, i + f.len()));
                    }
                }
            }
            want.sort_unstable();
            want.dedup();
            let m = KnownMatcher::new(forms.clone()).unwrap();
            let mut got = Vec::new();
            m.find_all(&hay, &mut got);
            assert_eq!(got, want, "round {round}: {forms:?}");
        }
    }
}
