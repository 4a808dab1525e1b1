//! Whether the value a key-name rule found (`password = …`, `token: …`, `KEY=…`) can be a
//! secret, or is code: an identifier, a call, an attribute path, a type, a keyword, a
//! number, a placeholder or a template.
//!
//! Key-name rules see names, not values, so on source code they fire on every
//! `password: &[u8]`, `token = self.token` and `pwd=None`. An agent reading code must see
//! it unaltered (a false redaction it writes back is data loss), so these rules pass their
//! value through this gate. Provider rules (`ghp_…`, `AKIA…`, PEM) have no gate: their
//! shape is the evidence.
//!
//! The gate reads the value and the line around it:
//! - **quoted** values are string literals: kept unless too short, too uniform (entropy),
//!   a template, a reference, a path, prose (in a code line) or a word from the lists;
//! - **bare** values are kept only when they cannot be code: no call or index punctuation,
//!   no `::`/`->`, not `a.b` attribute paths, keywords, numbers, or identifiers in
//!   `snake_case`, `CONSTANT_CASE`, `camelCase` or `PascalCase`; a plain lowercase word is
//!   kept only on a config-shaped line (`KEY=value` as the whole line);
//! - the key itself may be one that never holds a secret (`PWD`, `*_PATH`, `*_FILE`, …).
//!
//! The word lists are data (`[values]` in `rules/secrets.toml`); the thresholds are per rule
//! family (`gate = { min_len, min_entropy }`), documented there.

use serde::Deserialize;

/// A rule family's thresholds.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GateSpec {
    /// Shortest value kept.
    pub min_len: usize,
    /// Lowest Shannon entropy (bits per character) of a kept value.
    pub min_entropy: f64,
    /// Whether the name before the value is checked against the non-secret names (not
    /// for URLs, where it is a user name).
    #[serde(default = "yes")]
    pub check_key: bool,
    /// The value's position already says it is a credential (`user:<value>@host`): only
    /// placeholders, templates, length and entropy are checked.
    #[serde(default)]
    pub by_position: bool,
}

fn yes() -> bool {
    true
}

/// The word lists, as written in the rule file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueListsSpec {
    /// Words that start or are an expression (`None`, `self`, `await`, …).
    pub keywords: Vec<String>,
    /// Values that stand for a secret without being one (`changeme`, `password`, …).
    pub placeholder_words: Vec<String>,
    /// Names that never hold a secret (`PWD`, `PATH`, …), compared exactly (`pwd=` in a
    /// connection string is a password).
    pub non_secret_keys: Vec<String>,
    /// Name endings that mean "a reference to a secret, not the secret" (`_FILE`, `_PATH`).
    pub non_secret_key_suffixes: Vec<String>,
    /// camelCase name endings of the same kind (`secretName`, `tokenSecretRef`), compared
    /// exactly, after a lower-case letter or a digit.
    #[serde(default)]
    pub non_secret_key_camel_suffixes: Vec<String>,
    /// Name beginnings of the same kind (`existingSecret`: the name of a Secret object),
    /// compared ASCII case-insensitively.
    #[serde(default)]
    pub non_secret_key_prefixes: Vec<String>,
    /// What a name may follow on its line that makes it no secret's name
    /// (`checksum/secret: <sha256>`: a hash of the Secret, in Helm's pod annotations).
    #[serde(default)]
    pub non_secret_key_namespaces: Vec<String>,
    /// Value beginnings and endings that mark a placeholder (`your-api-key-here`,
    /// `change-me`, `replace-with-…`), compared ASCII case-insensitively.
    #[serde(default)]
    pub placeholder_prefixes: Vec<String>,
    /// See `placeholder_prefixes`.
    #[serde(default)]
    pub placeholder_suffixes: Vec<String>,
    /// Values another tool encrypted for a key the reader does not hold (a SealedSecret's
    /// `encryptedData`, SOPS, Vault transit): shown, as the encrypted file is committed.
    #[serde(default)]
    pub ciphertexts: Vec<Ciphertext>,
    /// What comes before a name that makes it part of an identifier, not a key
    /// (`arn:` in `arn:aws:secretsmanager:…:secret:prod/db`): the token the name is in
    /// starts with one of these.
    #[serde(default)]
    pub non_secret_key_token_prefixes: Vec<String>,
    /// Command-line flags whose argument is an assignment (`-D`, `--set `, `-e `): the
    /// value after them is judged as on a config line.
    #[serde(default)]
    pub assignment_flags: Vec<String>,
    /// Examples: values that must pass and values that must not, checked by a test.
    #[serde(default)]
    pub examples: Vec<GateExample>,
}

/// A ciphertext's shape: how it starts and its shortest length.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ciphertext {
    /// The tool's prefix (`AgB` for kubeseal, `ENC[AES256_GCM,` for SOPS).
    pub prefix: String,
    /// The shortest such value.
    pub min_len: usize,
    /// The tool.
    pub tool: String,
}

/// One line, and whether the gate must keep its value.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateExample {
    /// The line.
    pub line: String,
    /// The value as the rule captures it.
    pub value: String,
    /// Kept (a possible secret) or dropped (code, placeholder, …).
    pub secret: bool,
}

/// A set of words, hashed with foldhash (SipHash would cost about 1% of secret-dense
/// redaction), behind a filter of their shapes: the gate looks up a key name or a value in
/// these for most matches, and most are in no list. The filter (a bit per length, first and
/// last byte, 4096 bits) turns those away in a few instructions, where hashing costs ~300.
#[derive(Debug)]
struct WordSet {
    words: foldhash::HashSet<String>,
    shapes: Box<[u64; SHAPE_WORDS]>,
}

/// 64-bit words of a [`WordSet`]'s shape filter.
const SHAPE_WORDS: usize = 64;

impl Default for WordSet {
    fn default() -> WordSet {
        WordSet::from_iter(std::iter::empty::<String>())
    }
}

impl FromIterator<String> for WordSet {
    fn from_iter<I: IntoIterator<Item = String>>(words: I) -> WordSet {
        let words: foldhash::HashSet<String> = words.into_iter().collect();
        let mut shapes = Box::new([0u64; SHAPE_WORDS]);
        for w in &words {
            let bit = shape(w.as_bytes());
            shapes[bit / 64] |= 1 << (bit % 64);
        }
        WordSet { words, shapes }
    }
}

impl WordSet {
    /// Whether `w` is one of the words, compared exactly.
    fn contains(&self, w: &str) -> bool {
        self.may_hold(w.as_bytes()) && self.words.contains(w)
    }

    /// [`WordSet::contains`] for a word given as bytes (not UTF-8: not a word).
    fn contains_bytes(&self, w: &[u8]) -> bool {
        self.may_hold(w) && std::str::from_utf8(w).is_ok_and(|w| self.words.contains(w))
    }

    /// Whether a word of `w`'s shape is in the set, whatever the case of `w`'s ASCII
    /// letters: `false` says no such word is, `true` only that one may be.
    fn may_hold(&self, w: &[u8]) -> bool {
        let bit = shape(w);
        self.shapes[bit / 64] & (1 << (bit % 64)) != 0
    }
}

/// A word's bit in a [`WordSet`]'s filter: from its length and its first and last bytes,
/// ASCII-lowercased (a value is looked up lower-cased: its shape is known before the copy).
fn shape(w: &[u8]) -> usize {
    let fold = |b: Option<&u8>| b.map(u8::to_ascii_lowercase);
    let (first, last) = (fold(w.first()), fold(w.last()));
    let mix = w.len().wrapping_mul(131)
        ^ usize::from(first.unwrap_or(0)).wrapping_mul(37)
        ^ usize::from(last.unwrap_or(0)).wrapping_mul(7919);
    mix % (SHAPE_WORDS * 64)
}

/// Longest value [`ValueLists::has_word`] lowercases on the stack.
const WORD_BUF: usize = 64;

/// The compiled lists.
#[derive(Debug, Default)]
pub(crate) struct ValueLists {
    keywords: WordSet,
    placeholders: WordSet,
    keys: WordSet,
    /// The suffixes by their last byte, upper-cased (a key is compared only with those
    /// ending as it does, not with all of them); an empty suffix ends
    /// every key.
    suffixes_by_last: Vec<Vec<String>>,
    empty_suffix: bool,
    /// The longest keyword or placeholder word: a longer value is neither, and is not
    /// lowercased and hashed to find that out.
    longest_word: usize,
    camel_suffixes: Vec<String>,
    key_prefixes: Vec<String>,
    key_namespaces: Vec<String>,
    placeholder_prefixes: Vec<String>,
    placeholder_suffixes: Vec<String>,
    ciphertexts: Vec<Ciphertext>,
    key_token_prefixes: Vec<String>,
    assignment_flags: Vec<String>,
    /// The bytes those lists' words end (suffixes) or start (prefixes, both cases) with:
    /// most keys and values are turned away by one look-up, not a loop over the words.
    edges: Box<Edges>,
}

/// See [`ValueLists::edges`].
#[derive(Debug)]
struct Edges {
    camel_last: [bool; 256],
    key_first: [bool; 256],
    namespace_last: [bool; 256],
    placeholder_first: [bool; 256],
    placeholder_last: [bool; 256],
}

impl Default for Edges {
    fn default() -> Edges {
        Edges {
            camel_last: [false; 256],
            key_first: [false; 256],
            namespace_last: [false; 256],
            placeholder_first: [false; 256],
            placeholder_last: [false; 256],
        }
    }
}

impl Edges {
    fn of(spec: &ValueListsSpec) -> Edges {
        let mut e = Edges::default();
        let mark = |set: &mut [bool; 256], b: Option<&u8>, both_cases: bool| {
            if let Some(&b) = b {
                set[usize::from(b)] = true;
                if both_cases {
                    set[usize::from(b.to_ascii_lowercase())] = true;
                    set[usize::from(b.to_ascii_uppercase())] = true;
                }
            }
        };
        for w in &spec.non_secret_key_camel_suffixes {
            mark(&mut e.camel_last, w.as_bytes().last(), false);
        }
        for w in &spec.non_secret_key_prefixes {
            mark(&mut e.key_first, w.as_bytes().first(), true);
        }
        for w in &spec.non_secret_key_namespaces {
            mark(&mut e.namespace_last, w.as_bytes().last(), false);
        }
        for w in &spec.placeholder_prefixes {
            mark(&mut e.placeholder_first, w.as_bytes().first(), true);
        }
        for w in &spec.placeholder_suffixes {
            mark(&mut e.placeholder_last, w.as_bytes().last(), true);
        }
        e
    }
}

impl ValueLists {
    /// Whether `v`, ASCII-lowercased, is one of `set`'s words.
    fn has_word(&self, set: &WordSet, v: &[u8]) -> bool {
        if v.len() > self.longest_word || (v.is_ascii() && !set.may_hold(v)) {
            // Longer than any word, or (ASCII, so lower-casing keeps its length) of no
            // word's shape: other bytes are replaced when decoded, and looked up below.
            return false;
        }
        let mut buf = [0u8; WORD_BUF];
        if let Some(lower) = buf.get_mut(..v.len()) {
            lower.copy_from_slice(v);
            lower.make_ascii_lowercase();
            if let Ok(w) = std::str::from_utf8(lower) {
                return set.contains(w);
            }
        }
        set.contains(&String::from_utf8_lossy(v).to_ascii_lowercase())
    }

    /// Whether the key name ends in a suffix of names that never hold a secret.
    fn non_secret_suffix(&self, key_name: &[u8]) -> bool {
        let k = key_name;
        if self.empty_suffix {
            return true;
        }
        let Some(last) = k.last() else { return false };
        self.suffixes_by_last
            .get(usize::from(last.to_ascii_uppercase()))
            .is_some_and(|group| {
                group.iter().any(|s| {
                    k.len() >= s.len() && k[k.len() - s.len()..].eq_ignore_ascii_case(s.as_bytes())
                })
            })
    }
}

impl ValueLists {
    pub(crate) fn new(spec: &ValueListsSpec) -> ValueLists {
        let lower = |v: &[String]| v.iter().map(|w| w.to_ascii_lowercase()).collect();
        let longest_word = spec
            .keywords
            .iter()
            .chain(&spec.placeholder_words)
            .map(String::len)
            .max()
            .unwrap_or(0);
        let mut suffixes_by_last = vec![Vec::new(); 256];
        for suffix in &spec.non_secret_key_suffixes {
            let upper = suffix.to_ascii_uppercase();
            if let Some(&last) = upper.as_bytes().last() {
                suffixes_by_last[usize::from(last)].push(upper);
            }
        }
        ValueLists {
            longest_word,
            keywords: lower(&spec.keywords),
            placeholders: lower(&spec.placeholder_words),
            keys: spec.non_secret_keys.iter().cloned().collect(),
            suffixes_by_last,
            empty_suffix: spec.non_secret_key_suffixes.iter().any(String::is_empty),
            camel_suffixes: spec.non_secret_key_camel_suffixes.clone(),
            key_prefixes: spec.non_secret_key_prefixes.clone(),
            key_namespaces: spec.non_secret_key_namespaces.clone(),
            placeholder_prefixes: spec.placeholder_prefixes.clone(),
            placeholder_suffixes: spec.placeholder_suffixes.clone(),
            ciphertexts: spec.ciphertexts.clone(),
            key_token_prefixes: spec.non_secret_key_token_prefixes.clone(),
            assignment_flags: spec.assignment_flags.clone(),
            edges: Box::new(Edges::of(spec)),
        }
    }

    /// Whether the name `key_name` (the key's last part), which starts at `key_start` of
    /// `hay`, names something other than a secret by its shape: a camelCase ending, a
    /// beginning, or what it follows on its line (see [`ValueListsSpec`]).
    fn names_no_secret(&self, hay: &[u8], key_start: usize, key_name: &[u8]) -> bool {
        let e = &self.edges;
        let (Some(&first), Some(&last)) = (key_name.first(), key_name.last()) else {
            return false;
        };
        let before = key_start.checked_sub(1).map(|i| hay[i]);
        if before == Some(b':') && !self.key_token_prefixes.is_empty() {
            let token_start = hay[..key_start]
                .iter()
                .rposition(|&b| matches!(b, b' ' | b'\t' | b'"' | b'\'' | b'=' | b','))
                .map_or(0, |i| i + 1);
            let token = &hay[token_start..key_start];
            if self
                .key_token_prefixes
                .iter()
                .any(|p| token.starts_with(p.as_bytes()))
            {
                return true;
            }
        }
        if !e.camel_last[usize::from(last)]
            && !e.key_first[usize::from(first)]
            && before.is_none_or(|b| !e.namespace_last[usize::from(b)])
        {
            return false;
        }
        let camel = self.camel_suffixes.iter().any(|s| {
            key_name.len() > s.len()
                && key_name.ends_with(s.as_bytes())
                && matches!(key_name[key_name.len() - s.len() - 1], b'a'..=b'z' | b'0'..=b'9')
        });
        let prefixed = self.key_prefixes.iter().any(|p| {
            key_name.len() > p.len() && key_name[..p.len()].eq_ignore_ascii_case(p.as_bytes())
        });
        let spaced = self
            .key_namespaces
            .iter()
            .any(|n| hay[..key_start].ends_with(n.as_bytes()));
        camel || prefixed || spaced
    }

    /// Whether the key at `key_start` is set by a command-line flag that takes an
    /// assignment (`-Dspring.datasource.password=…`, `--set auth.password=…`, `-e
    /// DB_PASSWORD=…`): its value is configuration, as on a config line.
    fn after_assignment_flag(&self, hay: &[u8], key_start: usize) -> bool {
        // Every flag starts with `-`: a key neither starting with one nor after a blank
        // follows none.
        if hay.get(key_start) != Some(&b'-')
            && key_start
                .checked_sub(1)
                .is_none_or(|i| !matches!(hay[i], b' ' | b'='))
        {
            return false;
        }
        self.assignment_flags.iter().any(|f| {
            let f = f.as_bytes();
            hay[..key_start].ends_with(f) || hay[key_start..].starts_with(f)
        })
    }

    /// Whether `v` is another tool's ciphertext (see [`ValueListsSpec::ciphertexts`]).
    fn ciphertext(&self, v: &[u8]) -> bool {
        self.ciphertexts
            .iter()
            .any(|c| v.len() >= c.min_len && v.starts_with(c.prefix.as_bytes()))
    }

    /// Whether `v` has a placeholder's beginning or ending (see [`ValueListsSpec`]).
    fn placeholder_shape(&self, v: &[u8]) -> bool {
        let e = &self.edges;
        let (Some(&first), Some(&last)) = (v.first(), v.last()) else {
            return false;
        };
        if !e.placeholder_first[usize::from(first)] && !e.placeholder_last[usize::from(last)] {
            return false;
        }
        let starts =
            |p: &String| v.len() > p.len() && v[..p.len()].eq_ignore_ascii_case(p.as_bytes());
        let ends = |p: &String| {
            v.len() > p.len() && v[v.len() - p.len()..].eq_ignore_ascii_case(p.as_bytes())
        };
        self.placeholder_prefixes.iter().any(starts) || self.placeholder_suffixes.iter().any(ends)
    }
}

/// Whether a value names a place rather than holding a secret: a path (`/run/user/1000/…`,
/// `~/…`), a URL with no credentials in it (`https://oauth2.googleapis.com/token`), an AWS
/// resource name, or a date and time (`2026-10-11T08:21:07Z`). A URL with a user part
/// (`https://key@sentry.io/1`) may carry a secret and is not one of these.
fn names_a_place(v: &[u8]) -> bool {
    let url_without_credentials = || {
        let Some(i) = memchr::memchr(b':', v).filter(|&i| v[i..].starts_with(b"://")) else {
            return false;
        };
        let scheme_ok = i > 0
            && v[..i]
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'.' | b'-'));
        let rest = &v[i + 3..];
        let authority = &rest[..rest
            .iter()
            .position(|&b| b == b'/' || b == b'?' || b == b'#')
            .unwrap_or(rest.len())];
        scheme_ok && !authority.is_empty() && !authority.contains(&b'@')
    };
    let date_time = || {
        v.len() >= 10
            && v[..4].iter().all(u8::is_ascii_digit)
            && v[4] == b'-'
            && v[5..7].iter().all(u8::is_ascii_digit)
            && v[7] == b'-'
            && v[8..10].iter().all(u8::is_ascii_digit)
    };
    // `prod/app/db-credentials` (a secret's name in a store), `db-password:/etc/…/db-password`
    // (systemd's `LoadCredential=`: a name and the file it is read from).
    let resource_path = || {
        memchr::memchr(b'/', v).is_some()
            && v.split(|&b| b == b'/').all(|seg| {
                seg.first()
                    .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                    && seg.iter().all(|&b| {
                        b.is_ascii_lowercase()
                            || b.is_ascii_digit()
                            || matches!(b, b'-' | b'_' | b'.')
                    })
            })
    };
    let name_and_file = || {
        memchr::memchr(b':', v)
            .filter(|&i| v.get(i + 1) == Some(&b'/'))
            .is_some_and(|i| {
                !v[i + 1..].starts_with(b"//")
                    && !v[..i].is_empty()
                    && v[..i]
                        .iter()
                        .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
                    && path_like(&v[i + 1..])
            })
    };
    let place = match v.first() {
        Some(b'/' | b'.' | b'~') => path_like(v) && plausible_path(v),
        Some(b'0'..=b'9') => date_time(),
        Some(b'a') => v.starts_with(b"arn:aws") || url_without_credentials(),
        Some(_) => url_without_credentials(),
        None => false,
    };
    place || resource_path() || name_and_file()
}

/// A value that looks generated rather than written, as a config line holds one
/// (`O3ygiN?XCJyQuEz3v3.MJ)c*`): ten bytes or more of at least three classes (lower,
/// upper, digits, other), no escape sequence, and no code's shape: it does not start with
/// an operator (`:`, `.`, `=`, `|`, `&`, `*`, `?`) and no name of three or more bytes is
/// followed by an opening bracket or a macro's `!` (`tokens[i]`, `getenv(`,
/// `Token![->]`, `PasswordHash<'_>`).
fn made(t: &[u8]) -> bool {
    let mut run = 0usize;
    let mut called = false;
    for (i, &b) in t.iter().enumerate() {
        if matches!(b, b'(' | b'[' | b'{' | b'<') && run >= 3
            || b == b'!' && run >= 3 && matches!(t.get(i + 1), Some(b'(' | b'['))
        {
            called = true;
            break;
        }
        run = if is_ident_byte(b) { run + 1 } else { 0 };
    }
    t.len() >= 10
        && classes(t) >= 3
        && (!called || changes_class_often(t))
        && !matches!(t.first(), Some(b':' | b'|' | b'&' | b'*' | b'?'))
        // A quote inside is a string literal's: code (`(rf"Software\{sys.winver}"`).
        && !t.iter().any(|&b| b == b'"' || b == b'\'')
        && !t
            .windows(2)
            .any(|w| w == b"::" || (w[0] == b'\\' && matches!(w[1], b'n' | b'r' | b't' | b'"')))
}

/// Whether most neighbouring bytes of `t` are of different classes (lower, upper, digit,
/// other), as in a generated value (`<%Zr[out.)_N-xIX9[={8u>*pi1`); code keeps to words
/// (`Token![->]`, `tokens[i]`, `Vec<String>`: a change every third byte or less).
fn changes_class_often(t: &[u8]) -> bool {
    let class = |b: u8| match b {
        b'a'..=b'z' => 0u8,
        b'A'..=b'Z' => 1,
        b'0'..=b'9' => 2,
        _ => 3,
    };
    let changes = t.windows(2).filter(|w| class(w[0]) != class(w[1])).count();
    changes * 2 >= t.len()
}

/// A password people choose, `Pepper.quartz55`: a capitalised word, a dot, a lower-case
/// word ending in two or more digits. An attribute path in code (`config.password`,
/// `self.token`) has neither the capital nor the digits.
fn word_dot_word_digits(t: &[u8]) -> bool {
    let Some(dot) = memchr::memchr(b'.', t) else {
        return false;
    };
    let (a, b) = (&t[..dot], &t[dot + 1..]);
    let digits = b.iter().rev().take_while(|c| c.is_ascii_digit()).count();
    a.len() >= 2
        && a[0].is_ascii_uppercase()
        && a[1..].iter().all(u8::is_ascii_lowercase)
        && digits >= 2
        && b.len() > digits + 1
        && b[..b.len() - digits].iter().all(u8::is_ascii_lowercase)
}

/// Shannon entropy in bits per character.
fn entropy(v: &[u8]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    // Counts of a value up to 255 bytes fit a byte: a quarter of the table to clear.
    if v.len() <= usize::from(u8::MAX) {
        let mut counts = [0u8; 256];
        for &b in v {
            counts[usize::from(b)] += 1;
        }
        return entropy_of(v, |b| {
            u32::from(std::mem::take(&mut counts[usize::from(b)]))
        });
    }
    let mut counts = [0u32; 256];
    for &b in v {
        counts[usize::from(b)] += 1;
    }
    entropy_of(v, |b| std::mem::take(&mut counts[usize::from(b)]))
}

/// Whether `v`'s Shannon entropy is below `min`, as `entropy(v) < min` answers. The most
/// frequent byte's share bounds the entropy from below (min-entropy, `log2(n / most)`, is
/// at most Shannon's): where that bound clears `min` (by a margin far above rounding), the
/// answer is no without summing the logarithms. Most values a gate reads are made secrets,
/// far above their rule's `min`: the sum would be about a sixth of the gate on
/// secret-dense text.
#[inline(always)]
fn entropy_below(v: &[u8], min: f64) -> bool {
    /// Far above the sum's rounding error (~1e-15 per bit), far below any threshold's
    /// precision.
    const MARGIN: f64 = 1e-9;
    if v.is_empty() || v.len() > usize::from(u8::MAX) {
        return entropy(v) < min;
    }
    let mut counts = [0u8; 256];
    let mut most = 0;
    for &b in v {
        let c = &mut counts[usize::from(b)];
        *c += 1;
        most = most.max(*c);
    }
    let log2 = log2_table();
    if log2[v.len()] - log2[usize::from(most)] >= min + MARGIN {
        return false;
    }
    entropy_of(v, |b| {
        u32::from(std::mem::take(&mut counts[usize::from(b)]))
    }) < min
}

/// `log2(c)` for counts up to 255 (`log2(0)` is not used).
fn log2_table() -> &'static [f64; 256] {
    static TABLE: std::sync::OnceLock<[f64; 256]> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = [0.0; 256];
        for (c, x) in t.iter_mut().enumerate().skip(1) {
            *x = (c as f64).log2();
        }
        t
    })
}

/// The entropy of `v` from its byte counts: `take(b)` gives `b`'s count the first time,
/// then 0.
fn entropy_of(v: &[u8], mut take: impl FnMut(u8) -> u32) -> f64 {
    // H = log2(n) - (Σ c·log2 c) / n over the distinct bytes, visited through `v` (each
    // taken once, its count then cleared) instead of all 256 slots, with c·log2 c from a
    // table for the small counts values have.
    let table = c_log2_c();
    let mut sum = 0.0;
    for &b in v {
        let c = take(b);
        if c > 0 {
            sum += table
                .get(c as usize)
                .copied()
                .unwrap_or_else(|| f64::from(c) * f64::from(c).log2());
        }
    }
    let n = v.len() as f64;
    n.log2() - sum / n
}

/// `c·log2(c)` for the counts a value's bytes usually have.
fn c_log2_c() -> &'static [f64; 256] {
    static TABLE: std::sync::OnceLock<[f64; 256]> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = [0.0; 256];
        for (c, x) in t.iter_mut().enumerate().skip(1) {
            *x = c as f64 * (c as f64).log2();
        }
        t
    })
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// What a byte is to [`identifier_shaped`].
#[derive(Clone, Copy)]
enum IdentClass {
    Other,
    Digit,
    Upper,
    Lower,
    Underscore,
}

impl IdentClass {
    const COUNT: usize = 5;
}

/// [`IdentClass`] by byte.
const IDENT_CLASS: [IdentClass; 256] = {
    let mut t = [IdentClass::Other; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = match b as u8 {
            b'0'..=b'9' => IdentClass::Digit,
            b'A'..=b'Z' => IdentClass::Upper,
            b'a'..=b'z' => IdentClass::Lower,
            b'_' => IdentClass::Underscore,
            _ => IdentClass::Other,
        };
        b += 1;
    }
    t
};

/// `snake_case` (with an underscore), `CONSTANT_CASE`, `camelCase`, `PascalCase`: names, not
/// secrets. A string of random letters is none of these (it has digits, or case changes
/// that do not start words, or it is long and mixed).
fn identifier_shaped(v: &[u8]) -> bool {
    if v.first().is_none_or(u8::is_ascii_digit) {
        return false;
    }
    // One pass, a table lookup and a count per byte: the gate asks this of most values.
    let mut counts = [0usize; IdentClass::COUNT];
    for &b in v {
        counts[IDENT_CLASS[usize::from(b)] as usize] += 1;
    }
    if counts[IdentClass::Other as usize] > 0 {
        return false;
    }
    let digits = counts[IdentClass::Digit as usize];
    let upper = counts[IdentClass::Upper as usize];
    let lower = counts[IdentClass::Lower as usize];
    let underscore = counts[IdentClass::Underscore as usize] > 0;
    if digits >= 2 {
        return false;
    }
    if upper == 0 && underscore {
        return true; // snake_case
    }
    if lower == 0 {
        return upper > 0; // CONSTANT_CASE or a short all-caps word
    }
    // camelCase / PascalCase (acronyms allowed: `OAuthToken`): lowercase runs of two or
    // more letters after capitals, and every run of three or more lowercase letters has a
    // vowel. Random strings fail one or the other (`YClIgROg`, `bxdLdpJTHP`).
    if digits > 0 || underscore || upper == 0 {
        return false;
    }
    // Runs of letters of one case, judged as each ends: (uppercase, length, has vowel).
    // A one-letter lowercase run is a two-letter word (`In`, `Id`) after one capital.
    let run_ok = |index: usize, (up, len, vowel): (bool, usize, bool), previous_len: usize| {
        let short_word_ok = index == 0 || len >= 2 || previous_len == 1;
        up || (short_word_ok && (len < 3 || vowel))
    };
    let (mut index, mut previous_len) = (0, 0);
    let mut run: Option<(bool, usize, bool)> = None;
    for &b in v {
        let up = b.is_ascii_uppercase();
        let vowel = matches!(
            b.to_ascii_lowercase(),
            b'a' | b'e' | b'i' | b'o' | b'u' | b'y'
        );
        match &mut run {
            Some(r) if r.0 == up => {
                r.1 += 1;
                r.2 |= vowel;
            }
            _ => {
                if let Some(done) = run {
                    if !run_ok(index, done, previous_len) {
                        return false;
                    }
                    previous_len = done.1;
                    index += 1;
                }
                run = Some((up, 1, vowel));
            }
        }
    }
    run.is_none_or(|last| run_ok(index, last, previous_len))
}

/// Which of the bytes the gate's checks look for a value holds, found in one pass (a
/// table lookup per byte) instead of one byte search per check: most values hold none of
/// them, and a byte search has a fixed cost larger than a short value's pass (the
/// searches would be a fifth of the gate on secret-dense text). Flags of a text
/// hold for any part of it: a check given the flags of `v` may be asked about a part of
/// `v` (absent from `v` is absent from the part).
#[derive(Debug, Clone, Copy)]
struct Holds(u8);

impl Holds {
    /// `$ { } % #`: template markers hold one (or `env`/`ENV`).
    const MARK: u8 = 1;
    /// `e`, `E`.
    const E: u8 = 1 << 1;
    const DOT: u8 = 1 << 2;
    const COLON: u8 = 1 << 3;
    /// [`BRACKETS`].
    const BRACKET: u8 = 1 << 4;
    /// `<`, `$`: how a template written as `<name>` or `$NAME` starts.
    const OPENER: u8 = 1 << 5;
    /// `\`: escaped text holds one.
    const BACKSLASH: u8 = 1 << 6;
    /// ` `: prose and code text hold one.
    const SPACE: u8 = 1 << 7;

    const TABLE: [u8; 256] = {
        let mut t = [0u8; 256];
        let mut i = 0;
        while i < BRACKETS.len() {
            t[BRACKETS[i] as usize] |= Holds::BRACKET;
            i += 1;
        }
        t[b'$' as usize] |= Holds::MARK | Holds::OPENER;
        t[b'{' as usize] |= Holds::MARK;
        t[b'}' as usize] |= Holds::MARK;
        t[b'%' as usize] |= Holds::MARK;
        t[b'#' as usize] |= Holds::MARK;
        t[b'<' as usize] |= Holds::OPENER;
        t[b'e' as usize] |= Holds::E;
        t[b'E' as usize] |= Holds::E;
        t[b'.' as usize] |= Holds::DOT;
        t[b':' as usize] |= Holds::COLON;
        t[b'\\' as usize] |= Holds::BACKSLASH;
        t[b' ' as usize] |= Holds::SPACE;
        t
    };

    fn of(v: &[u8]) -> Holds {
        Holds(v.iter().fold(0, |m, &b| m | Holds::TABLE[usize::from(b)]))
    }

    fn any(self, flags: u8) -> bool {
        self.0 & flags != 0
    }
}

/// `a.b`, `self.password`, `os.environ`: an attribute path (`holds`: see [`Holds`]).
fn attribute_path(v: &[u8], holds: Holds) -> bool {
    // Without a dot there is one part: most values are decided here, without a list.
    if !holds.any(Holds::DOT) || memchr::memchr(b'.', v).is_none() {
        return false;
    }
    let parts: Vec<&[u8]> = v.split(|&b| b == b'.').collect();
    parts.len() >= 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && !p[0].is_ascii_digit() && p.iter().all(|&b| is_ident_byte(b)))
        && !parts
            .iter()
            .any(|p| p.iter().filter(|b| b.is_ascii_digit()).count() >= 3)
}

fn number(v: &[u8]) -> bool {
    let v = v.strip_prefix(b"-").unwrap_or(v);
    let hex = v
        .strip_prefix(b"0x")
        .or_else(|| v.strip_prefix(b"0X"))
        .is_some_and(|h| !h.is_empty() && h.iter().all(|b| b.is_ascii_hexdigit() || *b == b'_'));
    hex || (!v.is_empty()
        && v.iter()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'e' | b'E')))
}

/// Whether a template marker in `v` opens what it would in a template: `${` and `$(`
/// and `#{` a name (`${DB_PASSWORD}`, `$(cat f)`), `%(` a name and `)` (`%(pw)s`), `{{` a
/// closing `}}`. A generated password holds such pairs of bytes by chance
/// (`MstFmBnT[3$0eHP?LPV2>MAa~%(ZWFHf`), not their syntax.
fn has_well_formed_marker(v: &[u8]) -> bool {
    let name_at = |i: usize| {
        v.get(i)
            .is_some_and(|&b| b.is_ascii_alphabetic() || b == b'_')
    };
    template_markers().find_iter(v).any(|m| {
        let (s, e) = (m.start(), m.end());
        match &v[s..e] {
            b"${" | b"$(" | b"#{" => name_at(e),
            b"%(" => name_at(e) && v[e..].contains(&b')'),
            b"{{" => memchr::memmem::find(&v[e..], b"}}").is_some(),
            b"}}" => memchr::memmem::rfind(&v[..s], b"{{").is_some(),
            _ => true,
        }
    })
}

/// The markers of template and reference syntax.
const TEMPLATE_MARKERS: [&str; 13] = [
    "${",
    "$(",
    "{{",
    "}}",
    "%(",
    "#{",
    "{0}",
    "{}",
    "%s",
    "process.env",
    "environ",
    "getenv",
    "ENV[",
];

/// Whether `v` may hold a template marker: each holds one of these bytes or `env`/`ENV`
/// (a test checks every marker), so most values skip the marker search.
fn may_hold_marker(v: &[u8], holds: Holds) -> bool {
    // `env`/`ENV` is looked for only where an `e`/`E` is.
    if holds.any(Holds::MARK) {
        return true;
    }
    if !holds.any(Holds::E) {
        return false;
    }
    // A value is a few bytes: a plain pass, where a `memchr2` per `e` costs its set-up.
    v.windows(3).any(|w| w == b"env" || w == b"ENV")
}

/// Template or reference syntax: the value names where the secret comes from.
fn template(v: &[u8], holds: Holds) -> bool {
    // Every way below needs a marker, an `e`/`E` (`env`), a `$`, a `{` or a `<`.
    if !holds.any(Holds::MARK | Holds::E | Holds::OPENER) {
        return false;
    }
    (may_hold_marker(v, holds) && has_well_formed_marker(v))
        || (v.first() == Some(&b'$') && v.len() > 1 && is_ident_byte(v[1]))
        || (v.first() == Some(&b'{') && v.last() == Some(&b'}'))
        || (v.first() == Some(&b'<') && v.last() == Some(&b'>'))
}

/// The markers of template and reference syntax, searched in one pass.
// A fixed list of short literals: building the searcher cannot fail.
#[allow(clippy::expect_used)]
fn template_markers() -> &'static aho_corasick::AhoCorasick {
    static MARKERS: std::sync::OnceLock<aho_corasick::AhoCorasick> = std::sync::OnceLock::new();
    MARKERS.get_or_init(|| {
        aho_corasick::AhoCorasick::new(TEMPLATE_MARKERS).expect("fixed template markers")
    })
}

/// Brackets of code (`->` and `=>` hold a `>`).
const BRACKETS: &[u8] = b"()[]{}<>";

/// Code punctuation a bare secret does not contain (`holds`: see [`Holds`]).
fn code_punctuation(v: &[u8], holds: Holds) -> bool {
    // A bracket, or `::`, each looked for only when the value holds one of its bytes.
    let bracket = |b: &u8| Holds::TABLE[usize::from(*b)] & Holds::BRACKET != 0;
    if (holds.any(Holds::BRACKET) && v.iter().any(bracket))
        || (holds.any(Holds::COLON) && v.windows(2).any(|w| w == b"::"))
    {
        return true;
    }
    matches!(
        v.first(),
        Some(b'&' | b'*' | b'!' | b'.' | b'|' | b'?' | b':' | b'=')
    ) || matches!(v.last(), Some(b'.' | b'\\'))
        || v.ends_with(b"++")
        || v.ends_with(b"--")
}

/// Lowercase words joined by `-` or `_` (`same-origin`, `it-is-very-secret`): an enum
/// value or an example in code, not a made secret.
fn words(v: &[u8]) -> bool {
    !v.is_empty()
        && v.iter()
            .all(|b| b.is_ascii_lowercase() || matches!(b, b'-' | b'_'))
        && v.first().is_some_and(u8::is_ascii_lowercase)
}

/// Code inside a string: brackets, `::`, `=`, `<>`.
fn code_punctuation_inside(v: &[u8]) -> bool {
    v.iter().any(|b| {
        matches!(
            b,
            b'(' | b')' | b'[' | b']' | b'{' | b'}' | b'<' | b'>' | b'='
        )
    }) || v.windows(2).any(|w| w == b"::")
}

/// A quoted value that is a version, an OID, an address or a time: digits and separators.
fn dotted_number(v: &[u8], holds: Holds) -> bool {
    holds.any(Holds::DOT | Holds::COLON)
        && v.iter().any(|b| matches!(b, b'.' | b':'))
        && v.iter()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b':' | b'-' | b'/' | b'_'))
}

/// A string literal with escape sequences (`\n`, `\"`): text, not a credential.
fn escaped_text(v: &[u8], holds: Holds) -> bool {
    holds.any(Holds::BACKSLASH)
        && v.windows(2)
            .any(|w| w[0] == b'\\' && matches!(w[1], b'n' | b't' | b'r' | b'"' | b'\''))
}

/// At least `n` of: lowercase, uppercase, digits, other.
fn classes(v: &[u8]) -> usize {
    let lower = v.iter().any(u8::is_ascii_lowercase);
    let upper = v.iter().any(u8::is_ascii_uppercase);
    let digit = v.iter().any(u8::is_ascii_digit);
    let other = v.iter().any(|b| !b.is_ascii_alphanumeric());
    usize::from(lower) + usize::from(upper) + usize::from(digit) + usize::from(other)
}

/// Prose: several space-separated words of letters.
fn prose(v: &[u8], holds: Holds) -> bool {
    if !holds.any(Holds::SPACE) {
        return false; // one word at most
    }
    let words = v.split(|&b| b == b' ').filter(|w| !w.is_empty()).count();
    words >= 2
        && v.iter().all(|b| {
            b.is_ascii_alphabetic()
                || matches!(b, b' ' | b':' | b',' | b'.' | b'?' | b'!' | b'\'' | b'-')
        })
}

/// A path as paths are written, not base64 that starts with `/` (`/DTC+AHnW…=`): no `+`,
/// no `=` padding, and no long part mixing capitals, small letters and digits.
fn plausible_path(v: &[u8]) -> bool {
    !v.contains(&b'+')
        && !v.ends_with(b"=")
        && v.split(|&b| b == b'/')
            .all(|part| part.len() <= 24 || classes(part) < 3)
}

fn path_like(v: &[u8]) -> bool {
    v.starts_with(b"/") || v.starts_with(b"./") || v.starts_with(b"../") || v.starts_with(b"~/")
}

/// Where the key the value was assigned to lies: the name just before the operator.
fn key_before(hay: &[u8], value_start: usize, whole_start: usize) -> (usize, usize) {
    let mut end = value_start;
    // Back over the quote, spaces, the operator, spaces and a closing quote of the key.
    // Also back over a table's cell border (`|`, `│`) and a JSON string's escapes (`\"`).
    while end > whole_start {
        match hay[end - 1] {
            b'"' | b'\'' | b' ' | b'\t' | b'=' | b':' | b'>' | b'|' | b'\\' => end -= 1,
            0x82 if end >= whole_start + 3 && hay[end - 3..end] == *"│".as_bytes() => end -= 3,
            _ => break,
        }
    }
    let mut start = end;
    while start > whole_start
        && (is_ident_byte(hay[start - 1]) || matches!(hay[start - 1], b'.' | b'-'))
    {
        start -= 1;
    }
    (start, end)
}

/// True when the assignment is the whole line: `KEY=value`, `key: value`, `"key": "v",`
/// (config, env, YAML, JSON, INI), as opposed to an assignment inside code.
///
/// What precedes the key on its line, less leading whitespace, must be nothing, `"`, `'`,
/// `- ` or `export `; what follows the value, less leading quotes and surrounding
/// whitespace and trailing commas, nothing or a `#` comment. Both are read from the key and
/// the value outwards, only as far as the answer needs: reading the whole line (a copy of
/// it each way) would make a long line of many assignments cost its length once per value
/// judged — 450k instructions a gate call on a 48 KB line. `config_shaped_by_copy` in the
/// tests reads it that way, as the oracle.
fn config_shaped(hay: &[u8], key_start: usize, value_end: usize) -> bool {
    let before = &hay[..key_start];
    let lead_ok = [&b""[..], b"\"", b"'", b"- ", b"export "]
        .iter()
        .any(|form| {
            before
                .strip_suffix(*form)
                .is_some_and(blank_from_line_start)
        })
        || listed_lead(before)
        || listed_lead_in_key(hay, key_start);
    lead_ok && rest_is_blank_or_comment(&hay[value_end.min(hay.len())..])
}

/// How far back from a key the start of its JSON record's line is looked for.
const RECORD_MAX: usize = 4096;

/// Whether the key is a quoted member name in a JSON record that has a line of its own (a
/// JSON Lines log, `jq -c`, an API's answer: the line's first non-blank byte, within
/// [`RECORD_MAX`] bytes, is `{` or `[`). Its string values are data, as on a config line:
/// `{"user":"bob","password":"sunshine"}` showed `sunshine`. A dict literal in code starts
/// its line with a name (`data = {…}`), not a brace.
fn json_record_member(hay: &[u8], key_start: usize, key_end: usize) -> bool {
    if key_start == 0 || hay[key_start - 1] != b'"' || hay.get(key_end) != Some(&b'"') {
        return false;
    }
    let from = key_start.saturating_sub(RECORD_MAX);
    let window = &hay[from..key_start - 1];
    let start = match memchr::memrchr(b'\n', window) {
        Some(i) => i + 1,
        None if from == 0 => 0,
        None => return false,
    };
    window[start..]
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\r'))
        .is_some_and(|b| matches!(b, b'{' | b'['))
}

/// The bytes a key is read over ([`key_before`]).
fn is_key_byte(b: u8) -> bool {
    is_ident_byte(b) || matches!(b, b'.' | b'-')
}

/// A grep context line's `path-12-` is read by the key scan as the start of the key
/// (`prod.env-12-password`): the lead is also tried as ending after a `-` in the key (its
/// first [`LISTING_MAX`] bytes), the only key byte a listing's prefix can end with. Such a
/// `-` ends `…12-` or is a diff marker after `…-`, so only one after a digit or a `-` (or
/// the key's first byte) is tried: a key of many dashes (`a-a-a-…`) costs no regex runs.
fn listed_lead_in_key(hay: &[u8], key_start: usize) -> bool {
    let key = &hay[key_start..];
    key.iter()
        .take(LISTING_MAX)
        .take_while(|&&b| is_key_byte(b))
        .enumerate()
        .filter(|&(i, &b)| {
            b == b'-' && (i == 0 || key[i - 1].is_ascii_digit() || key[i - 1] == b'-')
        })
        .any(|(i, _)| listed_lead(&hay[..key_start + i + 1]))
}

/// The longest lead before a key read for a listing's prefix: a path and a line number.
const LISTING_MAX: usize = 512;

/// A listing's prefix (see [`LISTED_LEAD`]), as a regex without anchors.
macro_rules! listing {
    () => {
        r#"(?:(?:(?-u:[^\x00-\x20:\x7f])+:(?:[0-9]+:)?|(?-u:[^\x00-\x20:\x7f])+-[0-9]+-|[0-9]+[:-]|[ \t]*[0-9]+[ \t])[+<>-]?|[+<>-])"#
    };
}

/// What a tool puts before a file's line when it lists it, then one of the config lead
/// forms: `cat -n`/`nl`/`less -N` (`    12\t`), `grep` (`path:`, `path:12:`, `12:`, a
/// context line's `path-12-` or `12-`), `diff` and `git diff` (`+`, `-`, `< `, `> `), so
/// that a file listed is judged as the file itself (else `cat -n .env` would show
/// `password: sunshine`). A path is bytes other than ASCII controls, blanks and `:`. The
/// `dotenv-secret` rule's pattern carries the same prefix.
const LISTED_LEAD: &str = concat!("^", listing!(), r#"\s*(?:"|'|- |export )?$"#);

/// The length of the listing's prefix `line` starts with (`     2\t` of `     2\tKEY =
/// """-----BEGIN`, `app.py:2:` of `app.py:2:KEY = …`), if it starts with one.
pub(crate) fn listing_len(line: &[u8]) -> Option<usize> {
    static RE: std::sync::OnceLock<Option<regex::bytes::Regex>> = std::sync::OnceLock::new();
    RE.get_or_init(|| regex::bytes::Regex::new(concat!("^", listing!())).ok())
        .as_ref()
        .and_then(|re| re.find(line))
        .map(|m| m.end())
}

/// Whether the line before a key is a listing's prefix and a config lead form (read only
/// when the key is within [`LISTING_MAX`] bytes of its line's start).
fn listed_lead(before: &[u8]) -> bool {
    static RE: std::sync::OnceLock<Option<regex::bytes::Regex>> = std::sync::OnceLock::new();
    let window = &before[before.len().saturating_sub(LISTING_MAX)..];
    let start = match memchr::memrchr(b'\n', window) {
        Some(i) => i + 1,
        None if window.len() == before.len() => 0,
        None => return false,
    };
    let lead = &window[start..];
    if lead.is_empty() {
        return false;
    }
    RE.get_or_init(|| regex::bytes::Regex::new(LISTED_LEAD).ok())
        .as_ref()
        .is_some_and(|re| re.is_match(lead))
}

/// The Unicode whitespace characters' bytes (`char::is_whitespace`, less `\n`, which ends
/// a line): ASCII `\t`, VT, FF, `\r`, space, and the lead and continuation bytes of U+0085,
/// U+00A0, U+1680, U+2000–U+200A, U+2028, U+2029, U+202F, U+205F and U+3000.
fn may_be_whitespace(b: u8) -> bool {
    matches!(b, b'\t' | 0x0b | 0x0c | b'\r' | b' ' | 0x80..=0xbf | 0xc2 | 0xe1..=0xe3)
}

/// Whether `text` back to its last newline (or its start) is whitespace only, as valid
/// UTF-8 (an invalid byte would be read as U+FFFD, which is not whitespace): back over the
/// bytes whitespace can hold, then those read forwards as whitespace characters.
fn blank_from_line_start(text: &[u8]) -> bool {
    let from = text
        .iter()
        .rposition(|&b| !may_be_whitespace(b))
        .map_or(0, |i| i + 1);
    (from == 0 || text[from - 1] == b'\n') && whitespace_len(&text[from..]) == text.len() - from
}

/// Whitespace characters from the start of `text`: their length in bytes (an invalid or
/// cut sequence ends them, as U+FFFD would).
fn whitespace_len(text: &[u8]) -> usize {
    let mut i = 0;
    while let Some(&b) = text.get(i) {
        let len = match b {
            b'\t' | 0x0b | 0x0c | b'\r' | b' ' => 1,
            0xc2 => 2,
            0xe1..=0xe3 => 3,
            _ => return i,
        };
        match text
            .get(i..i + len)
            .and_then(|c| std::str::from_utf8(c).ok())
            .and_then(|c| c.chars().next())
        {
            Some(c) if c.is_whitespace() => i += len,
            _ => return i,
        }
    }
    i
}

/// Whether what follows a value on its line, less leading quotes and surrounding
/// whitespace, is nothing, commas only, or starts a `#` comment.
fn rest_is_blank_or_comment(after: &[u8]) -> bool {
    let quotes = after
        .iter()
        .position(|&b| b != b'"' && b != b'\'')
        .unwrap_or(after.len());
    let at = quotes + whitespace_len(&after[quotes..]);
    match after.get(at) {
        None | Some(b'\n' | b'#') => true,
        Some(b',') => {
            let commas = after[at..]
                .iter()
                .position(|&b| b != b',')
                .map_or(after.len(), |i| at + i);
            let end = commas + whitespace_len(&after[commas..]);
            matches!(after.get(end), None | Some(b'\n'))
        }
        Some(_) => false,
    }
}

/// True if the value follows an HTTP authentication scheme word (`Bearer `, `Basic `, …).
#[inline(always)]
fn after_scheme(hay: &[u8], value_start: usize) -> bool {
    let before = &hay[..value_start];
    let Some(before) = before.strip_suffix(b" ") else {
        return false;
    };
    let word_start = before
        .iter()
        .rposition(|b| !b.is_ascii_alphanumeric() && *b != b'-')
        .map_or(0, |i| i + 1);
    // The word's bytes are ASCII letters, digits and `-`: compared without a copy.
    let word = &before[word_start..];
    [
        "bearer",
        "basic",
        "token",
        "bot",
        "digest",
        "negotiate",
        "ntlm",
        "apikey",
        "key",
        "ssws",
        "aws4-hmac-sha256",
    ]
    .iter()
    .any(|scheme| scheme.as_bytes().eq_ignore_ascii_case(word))
}

/// The last part of a dotted or dashed key (`db.password` → `password`).
fn last_part(key: &[u8]) -> &[u8] {
    // A key is a few bytes: a plain loop, where `memrchr2` costs its set-up each call.
    match key.iter().rposition(|&b| b == b'.' || b == b'-') {
        Some(i) => &key[i + 1..],
        None => key,
    }
}

/// Whether a rule with thresholds `g` keeps the value `hay[value]` of the match
/// `hay[whole]`.
pub(crate) fn admits(
    lists: &ValueLists,
    g: &GateSpec,
    hay: &[u8],
    whole: (usize, usize),
    value: (usize, usize),
) -> bool {
    let v = &hay[value.0..value.1];
    let quote_before = value.0 > 0 && matches!(hay[value.0 - 1], b'"' | b'\'');
    let quoted = quote_before && hay.get(value.1) == Some(&hay[value.0 - 1]);
    let (key_start, key_end) = key_before(hay, value.0, whole.0);
    // The key's bytes are ASCII (`key_before` takes nothing else): read in place.
    let key = &hay[key_start..key_end];
    let key_name = last_part(key);
    if g.check_key
        && (lists.keys.contains_bytes(key_name)
            || lists.non_secret_suffix(key_name)
            || lists.names_no_secret(hay, key_start, key_name))
    {
        return false;
    }
    let holds = Holds::of(v);
    // A value that ends its line as `cat -A` shows it (`changeme$`) is judged without the mark.
    let judged = if value.1 == hay.len() {
        crate::rules::strip_line_end_mark(v).0
    } else {
        v
    };
    if v.len() < g.min_len
        || lists.has_word(&lists.placeholders, judged)
        || lists.placeholder_shape(judged)
        || lists.ciphertext(v)
        || names_a_place(judged)
        || lists.has_word(&lists.keywords, v)
        || template(v, holds)
        || entropy_below(v, g.min_entropy)
    {
        return false;
    }
    if after_scheme(hay, value.0) {
        // `Bearer <token>`: a credential by position; only an auth-param name is not.
        let bare = v.strip_suffix(b"=").unwrap_or(v);
        return !identifier_shaped(bare);
    }
    if g.by_position {
        return true;
    }
    // `self.x = …`, `this.x = …`: an assignment in code, whatever the line looks like.
    let in_object = [&b"self."[..], b"this.", b"@"]
        .iter()
        .any(|p| key.starts_with(p));
    if quoted {
        // Read only for values that prose, code text or words would turn away.
        let config = || {
            !in_object
                && (config_shaped(hay, key_start, value.1 + 1)
                    || json_record_member(hay, key_start, key_end))
        };
        let code_text = || holds.any(Holds::SPACE) && code_punctuation_inside(v);
        let norm = |x: &[u8]| -> String {
            x.iter()
                .filter(|b| b.is_ascii_alphanumeric())
                .map(|b| b.to_ascii_lowercase() as char)
                .collect()
        };
        // `accesskey: 'accessKey'`: a name mapped to a name.
        let names_itself = identifier_shaped(v) && {
            let (a, b) = (norm(v), norm(key_name));
            !b.is_empty() && (a.contains(&b) || b.contains(&a))
        };
        return !(path_like(v)
            || dotted_number(v, holds)
            || escaped_text(v, holds)
            || names_itself
            || ((prose(v, holds) || code_text() || words(v)) && !config()));
    }
    // A bare value is one token: `KEY = 4  # comment`, `A = B, C = D`.
    let token_len = v
        .iter()
        .position(|b| b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let token = &v[..token_len];
    let t = {
        let mut t = token;
        while let Some(rest) = t.strip_suffix(b",").or_else(|| t.strip_suffix(b";")) {
            t = rest;
        }
        t
    };
    // `NAME=value cmd`: an environment assignment on a command line counts as config.
    let env_prefix = key_end + 1 == value.0
        && hay[key_end] == b'='
        && key_name
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_');
    // A table's cell (`│ DB_PASSWORD │ …`) holds data, as a config line does.
    let in_cell = key_start >= 2
        && hay[key_start - 1] == b' '
        && (hay[key_start - 2] == b'|' || hay[..key_start].ends_with("│ ".as_bytes()));
    let config = !in_object
        && (env_prefix
            || in_cell
            || lists.after_assignment_flag(hay, key_start)
            || config_shaped(hay, key_start, value.0 + token_len));
    // On a config line, `DB_PASSWORD=Pepper.quartz55` (an environment assignment) or a
    // chosen password's shape holds data, not an attribute path.
    let chosen = config && (env_prefix || word_dot_word_digits(t));
    // A long run of capitals alone (an Erlang cookie) is no constant's name there either.
    let caps_run = config && t.len() >= 16 && t.iter().all(u8::is_ascii_uppercase);
    if t.len() < g.min_len
        || (code_punctuation(t, holds) && !(config && made(t)))
        || (attribute_path(t, holds) && !chosen)
        || (identifier_shaped(t) && !caps_run)
    {
        return false;
    }
    if lists.has_word(&lists.keywords, t) {
        return false;
    }
    if number(t) {
        // A short number is a count, a flag or an id; a long one may be a PIN or a key. A
        // hex literal of up to 64 bits (`WBEM_E_NO_KEY = 0x8004101f,`) is a constant; a
        // key written in hex is longer.
        let hex_word = t.len() <= 18 && (t.starts_with(b"0x") || t.starts_with(b"0X"));
        return config && t.len() >= 6 && !hex_word;
    }
    if t.iter().all(u8::is_ascii_lowercase) {
        // A plain word: a variable in code, maybe a (weak) password in a config line.
        return config;
    }
    // Elsewhere (a log line, a command line) a bare value must look made, not named.
    config || (t.len() >= 8 && t.iter().any(u8::is_ascii_digit) && classes(t) >= 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `config_shaped` read the plain way, copying the line's text on both sides: the
    /// oracle for the version that reads only as far as it needs.
    fn config_shaped_by_copy(hay: &[u8], key_start: usize, value_end: usize) -> bool {
        let before = &hay[..key_start];
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let lead = String::from_utf8_lossy(&before[line_start..]);
        let lead = lead.trim_start();
        let lead_ok = lead.is_empty()
            || lead == "\""
            || lead == "'"
            || lead == "- "
            || lead.starts_with("export ") && lead.len() == "export ".len()
            || listed_by_copy(&before[line_start..])
            || (key_start..=hay.len())
                .take_while(|&j| {
                    j - key_start <= LISTING_MAX
                        && (j == key_start || {
                            let b = hay[j - 1];
                            b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-'
                        })
                })
                .any(|j| listed_by_copy(&hay[line_start..j]));
        let after = &hay[value_end.min(hay.len())..];
        let line_end = after
            .iter()
            .position(|&b| b == b'\n')
            .unwrap_or(after.len());
        let rest = String::from_utf8_lossy(&after[..line_end]);
        let rest = rest.trim_start_matches(['"', '\'']).trim();
        let rest = rest.trim_end_matches(',').trim();
        lead_ok && (rest.is_empty() || rest.starts_with('#'))
    }

    #[test]
    fn the_listing_regex_compiles_and_reads_each_tools_prefix() {
        let re = regex::bytes::Regex::new(LISTED_LEAD).unwrap();
        for lead in [
            "    12\t",
            "     3\t  ",
            "     12 ",
            "12:",
            "config/app.env:",
            "deploy/prod.env:12:",
            "deploy/prod-1.env-13-",
            "13-",
            "+",
            "-",
            "> ",
            "< export ",
            "+  - ",
            "src/a.py:4:\"",
        ] {
            assert!(re.is_match(lead.as_bytes()), "{lead:?}");
        }
        for lead in ["x = ", "a b:", "12", "foo(", "    let ", "d = {", "1.5 "] {
            assert!(!re.is_match(lead.as_bytes()), "{lead:?}");
        }
    }

    /// A listing's prefix and a lead form, as a regex over the lead's lossy text (a path
    /// is any character but ASCII controls, blanks and `:`; U+FFFD included).
    fn listed_by_copy(lead: &[u8]) -> bool {
        let lead = String::from_utf8_lossy(lead);
        let re = regex::Regex::new(
            r#"^(?:(?:[^\x00-\x20:\x7f]+:(?:[0-9]+:)?|[^\x00-\x20:\x7f]+-[0-9]+-|[0-9]+[:-]|[ \t]*[0-9]+[ \t])[+<>-]?|[+<>-])\s*(?:"|'|- |export )?$"#,
        )
        .unwrap();
        re.is_match(&lead)
    }

    /// Pieces that decide the line-shape reading: every kind of whitespace (one-, two- and
    /// three-byte, and cut or invalid sequences that only look like it), quotes, commas,
    /// comments, the lead forms, listing prefixes, newlines and ordinary text.
    const SHAPE_PIECES: [&[u8]; 31] = [
        b"12",
        b":",
        b"+",
        b"> ",
        b"a/b.env",
        b"-3-",
        b"\x7f",
        b" ",
        b"\t",
        b"\r",
        b"\x0b",
        b"\n",
        b"\"",
        b"'",
        b",",
        b"#",
        b"- ",
        b"-",
        b"export ",
        b"export",
        "\u{3000}".as_bytes(),
        "\u{a0}".as_bytes(),
        "\u{85}".as_bytes(),
        "\u{2028}".as_bytes(),
        "\u{1680}".as_bytes(),
        b"\xe3\x80",
        b"\xc2",
        b"\x80",
        "\u{e0}".as_bytes(),
        b"key=v",
        b"x",
    ];

    proptest::proptest! {
        /// Reading outwards from the key and the value answers as copying the line did,
        /// at every key start and value end (cut characters included).
        #[test]
        fn config_shape_is_read_as_the_copying_version_read_it(
            pieces in proptest::collection::vec(0..SHAPE_PIECES.len(), 0..14),
            key_start in 0usize..80,
            value_end in 0usize..90,
        ) {
            let hay: Vec<u8> = pieces.iter().flat_map(|&i| SHAPE_PIECES[i].iter().copied()).collect();
            let key_start = key_start.min(hay.len());
            proptest::prop_assert_eq!(
                config_shaped(&hay, key_start, value_end),
                config_shaped_by_copy(&hay, key_start, value_end),
                "{:?} key at {} value to {}", String::from_utf8_lossy(&hay), key_start, value_end
            );
        }
    }

    /// The checks given a value's own flags.
    fn attr(v: &[u8]) -> bool {
        attribute_path(v, Holds::of(v))
    }
    fn tpl(v: &[u8]) -> bool {
        template(v, Holds::of(v))
    }

    /// The word lookup lowercases on the stack; it answers as lowercasing a lossy copy
    /// did, for short, long (past the stack buffer) and non-UTF-8 values.
    #[test]
    fn words_are_found_as_a_lowercased_copy_finds_them() {
        let long = "x".repeat(WORD_BUF + 6);
        let spec = ValueListsSpec {
            keywords: vec!["None".into(), long.clone(), "caf\u{e9}".into()],
            placeholder_words: vec!["changeme".into(), "\u{fffd}x".into()],
            ..ValueListsSpec::default()
        };
        let lists = ValueLists::new(&spec);
        let copied = |set: &WordSet, v: &[u8]| {
            v.len() <= lists.longest_word
                && set
                    .words
                    .contains(&String::from_utf8_lossy(v).to_ascii_lowercase())
        };
        let upper_long = long.to_ascii_uppercase();
        let values: [&[u8]; 9] = [
            b"none",
            b"NONE",
            b"nonE!",
            upper_long.as_bytes(),
            long.as_bytes(),
            "caf\u{e9}".as_bytes(),
            b"\xffx",
            b"CHANGEME",
            b"",
        ];
        for v in values {
            for set in [&lists.keywords, &lists.placeholders] {
                assert_eq!(lists.has_word(set, v), copied(set, v), "{v:?}");
            }
        }
        assert!(lists.has_word(&lists.keywords, upper_long.as_bytes()));
        assert!(lists.has_word(&lists.placeholders, b"\xffx"));
    }

    #[test]
    fn the_shape_filter_lets_every_shipped_word_through_in_any_case() {
        let spec = crate::RuleSet::builtin().value_lists().clone();
        let lists = ValueLists::new(&spec);
        let mut shapes_set = 0;
        for (set, words) in [
            (&lists.keywords, &spec.keywords),
            (&lists.placeholders, &spec.placeholder_words),
        ] {
            for w in words {
                for v in [w.clone(), w.to_ascii_uppercase(), w.to_ascii_lowercase()] {
                    assert!(lists.has_word(set, v.as_bytes()), "{v:?} turned away");
                }
            }
            shapes_set += set.shapes.iter().map(|b| b.count_ones()).sum::<u32>();
        }
        for k in &spec.non_secret_keys {
            assert!(lists.keys.contains(k), "{k:?} turned away");
            // Key names are compared exactly: another spelling is not in the list.
            let other = k.to_ascii_lowercase();
            assert_eq!(
                lists.keys.contains(&other),
                lists.keys.words.contains(&other)
            );
        }
        // The filter says "maybe" for few shapes, or it would not save the lookups.
        assert!(
            shapes_set > 0 && shapes_set < 2 * 4096 / 4,
            "{shapes_set} shapes set"
        );
        assert!(!lists.has_word(&lists.keywords, b"Ab3dEf9hIj2kLm"));
    }

    #[test]
    fn a_value_after_a_scheme_word_is_known_in_any_case() {
        for (line, at, want) in [
            ("Authorization: BEARER abc", 22, true),
            ("auth: Aws4-Hmac-Sha256 abc", 23, true),
            ("x-bearer abc", 9, false),
            ("bearer\u{e9} abc", 9, false),
            ("Bearer  abc", 8, false),
            ("Bearer", 6, false),
        ] {
            assert_eq!(after_scheme(line.as_bytes(), at), want, "{line}");
        }
        assert!(!attr(b"nodots") && attr(b"self.password"));
    }

    #[test]
    fn shapes() {
        for v in [
            "password",
            "current_token",
            "TOKEN_MAP",
            "MainToken",
            "authToken",
            "c_long",
        ] {
            assert!(
                identifier_shaped(v.as_bytes()) || v.bytes().all(|b| b.is_ascii_lowercase()),
                "{v}"
            );
        }
        assert!(identifier_shaped(b"InMemoryCredentialStore"));
        assert!(identifier_shaped(b"OAuthTokenResponse"));
        for v in [
            "Summer2024",
            "hunter22",
            "YClIgROg",
            "CJ6FgeVpQYx2ifNRWAEEyRiN3BFl7DsJ",
            "bxdLdpJTHP",
        ] {
            assert!(!identifier_shaped(v.as_bytes()), "{v}");
        }
        assert!(attr(b"self.password"));
        assert!(!attr(b"db.example.com1234"));
        assert!(number(b"0x104") && number(b"1024") && !number(b"12ab"));
        assert!(tpl(b"${DB_PASSWORD}") && tpl(b"{password}") && tpl(b"$TOKEN"));
        // Each way a template is recognised, with no other marker byte in the value.
        for t in [
            &b"<xyz>"[..],
            b"$abc",
            b"{abc}",
            b"%s",
            b"#{a}",
            b"process.env.X",
            b"ENV[x]",
        ] {
            assert!(tpl(t), "{:?}", String::from_utf8_lossy(t));
        }
        assert!(!tpl(b"<abc") && !tpl(b"abc>") && !tpl(b"$") && !tpl(b"plain"));
        assert!(entropy(b"aaaaaaaa") < 0.1 && entropy(b"hunter22") > 2.0);
    }

    /// The camelCase judgement the plain way (all runs collected, then checked), for
    /// the streaming one to be compared with.
    fn camel_reference(v: &[u8]) -> bool {
        let mut runs: Vec<(bool, usize, bool)> = Vec::new();
        for &b in v {
            let up = b.is_ascii_uppercase();
            let vowel = matches!(
                b.to_ascii_lowercase(),
                b'a' | b'e' | b'i' | b'o' | b'u' | b'y'
            );
            match runs.last_mut() {
                Some(r) if r.0 == up => {
                    r.1 += 1;
                    r.2 |= vowel;
                }
                _ => runs.push((up, 1, vowel)),
            }
        }
        runs.iter().enumerate().all(|(i, &(up, len, vowel))| {
            let short_word_ok = i == 0 || len >= 2 || runs[i - 1].1 == 1;
            up || (short_word_ok && (len < 3 || vowel))
        })
    }

    #[test]
    fn every_template_marker_passes_the_quick_check() {
        for m in TEMPLATE_MARKERS {
            assert!(
                may_hold_marker(m.as_bytes(), Holds::of(m.as_bytes())),
                "{m}"
            );
            // Each as a template writes it: a name after an opener, `}}` after `{{`.
            let sample = if m == "}}" {
                "x{{ab}}y".to_string()
            } else {
                format!("x{m}ab)}}}}y")
            };
            assert!(tpl(sample.as_bytes()), "{m}");
        }
    }

    /// The identifier test the plain way (a pass per count), for the one-pass one.
    fn identifier_reference(v: &[u8]) -> bool {
        if v.is_empty() || !v.iter().all(|&b| is_ident_byte(b)) || v[0].is_ascii_digit() {
            return false;
        }
        let digits = v.iter().filter(|b| b.is_ascii_digit()).count();
        let upper = v.iter().filter(|b| b.is_ascii_uppercase()).count();
        let lower = v.iter().filter(|b| b.is_ascii_lowercase()).count();
        let underscore = v.contains(&b'_');
        if digits >= 2 {
            return false;
        }
        if upper == 0 && underscore {
            return true;
        }
        if lower == 0 {
            return upper > 0;
        }
        if digits > 0 || underscore || upper == 0 {
            return false;
        }
        camel_reference(v)
    }

    proptest::proptest! {
        #[test]
        fn entropy_below_answers_as_the_entropy_does(
            v in proptest::collection::vec(proptest::prop_oneof![proptest::strategy::Just(b'a'), proptest::strategy::Just(b'b'), proptest::strategy::Just(b'c'), proptest::strategy::Just(b'd'), proptest::prelude::any::<u8>()], 0..300),
            min in proptest::prop_oneof![proptest::strategy::Just(0.0), proptest::strategy::Just(1.0), proptest::strategy::Just(2.0), proptest::strategy::Just(2.5), proptest::strategy::Just(3.0), proptest::strategy::Just(3.5), 0.0f64..8.0],
        ) {
            proptest::prop_assert_eq!(entropy_below(&v, min), entropy(&v) < min);
        }

        #[test]
        fn entropy_below_at_exact_thresholds(k in 1usize..16, reps in 1usize..15) {
            // `k` distinct bytes, each `reps` times: entropy exactly log2(k), the bound's
            // own value; a threshold at it, just above and just below.
            let v: Vec<u8> = (0..k as u8).flat_map(|b| std::iter::repeat_n(b'a' + b, reps)).collect();
            let h = (k as f64).log2();
            for min in [h, h + 1e-12, h - 1e-12, h + 0.5, h - 0.5] {
                proptest::prop_assert_eq!(entropy_below(&v, min), entropy(&v) < min);
            }
        }

        #[test]
        fn the_last_part_of_a_key_is_what_splitting_gives(key in "[a-zA-Z_.\\-]{0,12}") {
            let split = key.rsplit(['.', '-']).next().unwrap_or(&key);
            proptest::prop_assert_eq!(last_part(key.as_bytes()), split.as_bytes());
        }

        #[test]
        fn identifier_one_pass_equals_the_first(v in "[A-Za-z0-9_.$ -]{0,12}") {
            proptest::prop_assert_eq!(identifier_shaped(v.as_bytes()), identifier_reference(v.as_bytes()));
        }

        /// The one-pass punctuation check equals the three scans it replaced.
        #[test]
        fn code_punctuation_in_one_pass_equals_the_scans(v in "[a:<>=()&*.!|?+\\\\-]{0,12}") {
            let b = v.as_bytes();
            let scans = b.iter()
                .any(|c| matches!(c, b'(' | b')' | b'[' | b']' | b'{' | b'}' | b'<' | b'>'))
                || b.windows(2).any(|w| w == b"::" || w == b"->" || w == b"=>")
                || matches!(b.first(), Some(b'&' | b'*' | b'!' | b'.' | b'|' | b'?' | b':' | b'='))
                || matches!(b.last(), Some(b'.' | b'\\'))
                || b.ends_with(b"++")
                || b.ends_with(b"--");
            proptest::prop_assert_eq!(code_punctuation(b, Holds::of(b)), scans);
        }

        /// The flags of a text answer for any part of it as the part's own do, and the
        /// template check with them answers as searching for every marker does.
        #[test]
        fn checks_given_a_whole_values_flags_answer_for_its_parts(
            v in "[a-zA-Z0-9.:<>(){}$%#_eEnNvV&*!|?=\\+ \\\\-]{0,16}",
            cut in (0usize..17, 0usize..17),
        ) {
            let b = v.as_bytes();
            let (from, to) = (cut.0.min(b.len()), cut.1.min(b.len()));
            let part = &b[from.min(to)..to.max(from)];
            let (whole, own) = (Holds::of(b), Holds::of(part));
            proptest::prop_assert_eq!(code_punctuation(part, whole), code_punctuation(part, own));
            proptest::prop_assert_eq!(attribute_path(part, whole), attribute_path(part, own));
            proptest::prop_assert_eq!(template(part, whole), template(part, own));
            proptest::prop_assert_eq!(dotted_number(part, whole), dotted_number(part, own));
            proptest::prop_assert_eq!(escaped_text(part, whole), escaped_text(part, own));
            proptest::prop_assert_eq!(prose(part, whole), prose(part, own));
            proptest::prop_assert_eq!(
                escaped_text(part, own),
                part.windows(2).any(|w| w[0] == b'\\' && matches!(w[1], b'n' | b't' | b'r' | b'"' | b'\''))
            );
            let searched = has_well_formed_marker(part)
                || (part.first() == Some(&b'$') && part.len() > 1 && is_ident_byte(part[1]))
                || (part.first() == Some(&b'{') && part.last() == Some(&b'}'))
                || (part.first() == Some(&b'<') && part.last() == Some(&b'>'));
            proptest::prop_assert_eq!(template(part, own), searched);
        }

        /// Suffixes looked up by last byte: as comparing every suffix.
        #[test]
        fn suffixes_by_last_byte_equal_all_compared(key in "[A-Za-z_]{0,12}", extra in "[A-Za-z_]{0,4}") {
            let mut suffixes = vec!["_PATH".to_string(), "_file".into(), "_ID_FILE".into(), "_x".into()];
            suffixes.push(extra);
            let spec = ValueListsSpec { non_secret_key_suffixes: suffixes.clone(), ..ValueListsSpec::default() };
            let lists = ValueLists::new(&spec);
            let k = key.as_bytes();
            let all = suffixes.iter().any(|s| {
                k.len() >= s.len() && k[k.len() - s.len()..].eq_ignore_ascii_case(s.as_bytes())
            });
            proptest::prop_assert_eq!(lists.non_secret_suffix(key.as_bytes()), all);
        }

        /// The byte-search marker check equals the plain scan it replaced.
        #[test]
        fn marker_check_equals_the_plain_scan(v in "[eEnNvVx${}%#]{0,40}") {
            let b = v.as_bytes();
            let plain = b.iter().any(|c| matches!(c, b'$' | b'{' | b'}' | b'%' | b'#'))
                || b.windows(3).any(|w| w == b"env" || w == b"ENV");
            proptest::prop_assert_eq!(may_hold_marker(b, Holds::of(b)), plain);
        }

        #[test]
        fn camel_case_streaming_equals_collecting_runs(v in "[A-Za-z]{1,14}") {
            let mixed = v.bytes().any(|b| b.is_ascii_uppercase())
                && v.bytes().any(|b| b.is_ascii_lowercase());
            if mixed {
                proptest::prop_assert_eq!(identifier_shaped(v.as_bytes()), camel_reference(v.as_bytes()));
            }
        }
    }

    /// The table-driven entropy equals Shannon's formula written out, on short and long
    /// values (counts past the table too) and exactly at the power-of-two thresholds.
    #[test]
    fn entropy_is_shannons() {
        let direct = |v: &[u8]| -> f64 {
            let mut counts = [0u32; 256];
            for &b in v {
                counts[b as usize] += 1;
            }
            let n = v.len() as f64;
            counts
                .iter()
                .filter(|&&c| c > 0)
                .map(|&c| {
                    let p = f64::from(c) / n;
                    -p * p.log2()
                })
                .sum()
        };
        let long: Vec<u8> = (0..5000u32).map(|i| (i * i % 7) as u8 + b'a').collect();
        // Counts at the byte-sized table's limit and just past it.
        let (same_255, same_256) = (vec![b'z'; 255], vec![b'z'; 256]);
        let mut mixed_256 = vec![b'q'; 255];
        mixed_256.push(b'r');
        for v in [
            &same_255[..],
            &same_256,
            &mixed_256,
            &b"x"[..],
            b"hunter22",
            b"CJ6FgeVpQYx2ifNRWAEEyRiN3BFl7DsJ",
            b"abcdefgh",
            b"aabbccddeeffgghh",
            &long,
        ] {
            assert!((entropy(v) - direct(v)).abs() < 1e-9, "{v:?}");
        }
        assert_eq!(entropy(b"abcdefgh"), 3.0);
        assert_eq!(entropy(b"aabbccddeeffgghh"), 3.0);
    }
}
