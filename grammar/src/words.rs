//! Word decoding: bash quote removal and escape decoding, and what stays dynamic.
//!
//! tree-sitter gives raw source text. Bash removes quotes and unquoted backslashes before a
//! word is used, so `\rm`, `r''m`, `"rm"` and `$'\x72m'` all run `rm`. Policies must see what
//! bash will see, so every word goes through [`decode`] before anyone compares it.

use crate::error::ParseError;
use crate::ir::{Cwd, Dynamic, PathRef};
use crate::kinds::KindName;
use crate::paths;
use tree_sitter::Node;

/// A piece of a decoded word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    /// Literal text; `quoted` text takes no part in globbing, brace or tilde expansion.
    Lit { text: String, quoted: bool },
    /// Something bash expands at run time; `raw` is its source text.
    Dyn { raw: String, kind: Dynamic },
}

/// A word after decoding, before it is known whether it is a path.
#[derive(Debug, Clone, Default)]
pub(crate) struct Decoded {
    pub raw: String,
    pub segs: Vec<Seg>,
}

/// What a word needs from its surroundings to decode.
pub(crate) struct WordEnv<'a> {
    pub src: &'a str,
    pub home: &'a str,
    pub cwd: &'a Cwd,
    /// Loop variables bound to what their list can produce (`for f in src/*.c`).
    pub bound: &'a [(String, Vec<Seg>)],
}

impl<'a> WordEnv<'a> {
    pub(crate) fn new(
        src: &'a str,
        home: &'a str,
        cwd: &'a Cwd,
        bound: &'a [(String, Vec<Seg>)],
    ) -> WordEnv<'a> {
        WordEnv {
            src,
            home,
            cwd,
            bound,
        }
    }
}

impl Decoded {
    /// A word standing for any path below `dir` (`dir/*`): what `find dir` prints.
    pub fn below(dir: &str) -> Self {
        let dir = if dir.is_empty() { "." } else { dir };
        let head = if dir.ends_with('/') {
            dir.to_string()
        } else {
            format!("{dir}/")
        };
        Decoded {
            raw: format!("{head}*"),
            segs: vec![
                Seg::Lit {
                    text: head,
                    quoted: true,
                },
                Seg::Dyn {
                    raw: "*".into(),
                    kind: Dynamic {
                        glob: true,
                        ..Dynamic::default()
                    },
                },
            ],
        }
    }

    /// A literal word that did not come from the source (e.g. a joined payload).
    pub fn literal(text: &str) -> Self {
        Decoded {
            raw: text.to_string(),
            segs: vec![Seg::Lit {
                text: text.to_string(),
                quoted: true,
            }],
        }
    }

    /// A placeholder for values only known at run time (e.g. xargs' stdin items).
    pub fn opaque(raw: &str) -> Self {
        Self::of_kind(
            raw,
            Dynamic {
                variable: true,
                ..Dynamic::default()
            },
        )
    }

    /// A placeholder for a bounded pattern (e.g. find's `{}`: some path under the start points).
    pub fn pattern(raw: &str) -> Self {
        Self::of_kind(
            raw,
            Dynamic {
                glob: true,
                ..Dynamic::default()
            },
        )
    }

    /// One dynamic segment of this kind.
    fn of_kind(raw: &str, kind: Dynamic) -> Self {
        let mut segs = Vec::new();
        dynamic(&mut segs, raw, kind);
        Decoded {
            raw: raw.to_string(),
            segs,
        }
    }

    /// Value with dynamic parts kept as their source text.
    /// The word without its first `n` bytes, when they are all literal text (the `NAME=`
    /// of `env NAME=value`); `None` when a part of them is not literal.
    pub fn without_literal_prefix(&self, n: usize) -> Option<Decoded> {
        let mut left = n;
        let mut segs = Vec::with_capacity(self.segs.len());
        for seg in &self.segs {
            match seg {
                _ if left == 0 => segs.push(seg.clone()),
                Seg::Lit { text, quoted } if text.len() <= left => {
                    left -= text.len();
                    let _ = quoted;
                }
                Seg::Lit { text, quoted } => {
                    let rest = text.get(left..)?;
                    segs.push(Seg::Lit {
                        text: rest.to_string(),
                        quoted: *quoted,
                    });
                    left = 0;
                }
                Seg::Dyn { .. } => return None,
            }
        }
        if left > 0 {
            return None;
        }
        let prefix = self.value_text();
        let raw = match self.raw.strip_prefix(prefix.get(..n)?) {
            Some(r) => r.to_string(),
            None => segs
                .iter()
                .map(|s| match s {
                    Seg::Lit { text, .. } => text.as_str(),
                    Seg::Dyn { raw, .. } => raw.as_str(),
                })
                .collect(),
        };
        Some(Decoded { raw, segs })
    }

    pub fn value(&self) -> String {
        let mut s = String::new();
        for seg in &self.segs {
            match seg {
                Seg::Lit { text, .. } => s.push_str(text),
                Seg::Dyn { raw, .. } => s.push_str(raw),
            }
        }
        s
    }

    /// [`Self::value`], borrowed when the word is one segment (most words are): the
    /// callers that only compare or inspect it need no copy.
    pub fn value_text(&self) -> std::borrow::Cow<'_, str> {
        match self.segs.as_slice() {
            [Seg::Lit { text, .. }] => std::borrow::Cow::Borrowed(text),
            [Seg::Dyn { raw, .. }] => std::borrow::Cow::Borrowed(raw),
            _ => std::borrow::Cow::Owned(self.value()),
        }
    }

    /// The literal value, or `None` if any part is dynamic (including globs and braces).
    pub fn literal_value(&self) -> Option<String> {
        self.literal_text().map(std::borrow::Cow::into_owned)
    }

    /// [`Self::literal_value`], borrowed where [`Self::value_text`] is.
    pub fn literal_text(&self) -> Option<std::borrow::Cow<'_, str>> {
        if self.dynamic().any() {
            None
        } else {
            Some(self.value_text())
        }
    }

    /// Everything dynamic about the word, including unquoted glob and brace characters.
    pub fn dynamic(&self) -> Dynamic {
        let mut d = Dynamic::default();
        for seg in &self.segs {
            if let Seg::Dyn { kind, .. } = seg {
                d.merge(*kind);
            }
        }
        let (glob_at, brace_at) = pattern_positions(&self.segs);
        d.glob |= glob_at.is_some();
        d.brace |= brace_at.is_some();
        d
    }

    /// Where the word points if it is used as a path, resolved lexically against each cwd
    /// candidate. `~` was already replaced by the home directory during decoding.
    pub fn paths(&self, cwd: &Cwd) -> Vec<PathRef> {
        let dynamic = self.dynamic();
        let value = self.value();
        let mut out: Vec<PathRef> = Vec::new();
        let bases: Vec<Option<&str>> = if value.starts_with('/') && !starts_dynamic(&self.segs) {
            vec![Some("/")]
        } else {
            match cwd {
                Cwd::Known(v) if !v.is_empty() => v.iter().map(|s| Some(s.as_str())).collect(),
                _ => vec![None],
            }
        };
        for base in bases {
            let r = match base {
                None => PathRef::Anywhere,
                Some(_) if dynamic.unbounded() => PathRef::Anywhere,
                Some(base) if !dynamic.any() => PathRef::Exact(paths::resolve(base, &value)),
                Some(base) => {
                    // Glob or brace: the literal text up to the last '/' before the first
                    // pattern character bounds the result, unless the tail can climb with '..'.
                    let first = first_pattern_offset(&self.segs).unwrap_or(value.len());
                    let head = &value[..first];
                    let tail = &value[first..];
                    if tail.contains("..") {
                        PathRef::Anywhere
                    } else {
                        let dir = match head.rfind('/') {
                            Some(i) => &head[..=i],
                            None => "",
                        };
                        PathRef::Under(paths::resolve(base, dir))
                    }
                }
            };
            if !out.contains(&r) {
                out.push(r);
            }
        }
        out
    }
}

fn starts_dynamic(segs: &[Seg]) -> bool {
    matches!(segs.first(), Some(Seg::Dyn { .. }))
}

/// Byte offset (in `value()`) of the first glob/brace character or dynamic segment.
fn first_pattern_offset(segs: &[Seg]) -> Option<usize> {
    let (g, b) = pattern_positions(segs);
    let mut best = match (g, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let mut off = 0;
    for seg in segs {
        match seg {
            Seg::Lit { text, .. } => off += text.len(),
            Seg::Dyn { raw, .. } => {
                best = Some(best.map_or(off, |b| b.min(off)));
                off += raw.len();
            }
        }
    }
    best
}

/// Offsets of the first unquoted glob character and of the first unquoted brace expansion.
fn pattern_positions(segs: &[Seg]) -> (Option<usize>, Option<usize>) {
    // Most words have none of the characters either kind needs unquoted (`*`, `?`, `[`;
    // `(` after `@`, `+` or `!`; `{`): nothing to find, without building the list below.
    let could_be_pattern = segs.iter().any(|seg| match seg {
        Seg::Lit {
            text,
            quoted: false,
        } => text
            .bytes()
            .any(|b| matches!(b, b'*' | b'?' | b'[' | b'(' | b'{')),
        _ => false,
    });
    if !could_be_pattern {
        return (None, None);
    }
    // Flatten to (byte offset, char, quoted); dynamic segments break brace groups.
    let mut chars: Vec<(usize, char, bool)> = Vec::new();
    let mut off = 0;
    for seg in segs {
        match seg {
            Seg::Lit { text, quoted } => {
                for (i, c) in text.char_indices() {
                    chars.push((off + i, c, *quoted));
                }
                off += text.len();
            }
            Seg::Dyn { raw, .. } => {
                chars.push((off, '\0', true));
                off += raw.len();
            }
        }
    }
    let mut glob = None;
    for (i, &(o, c, q)) in chars.iter().enumerate() {
        if q {
            continue;
        }
        let is_glob = match c {
            '*' | '?' => true,
            '[' => chars[i + 1..].iter().any(|&(_, c2, q2)| c2 == ']' && !q2),
            '@' | '+' | '!' => matches!(chars.get(i + 1), Some(&(_, '(', false))),
            _ => false,
        };
        if is_glob {
            glob = Some(o);
            break;
        }
    }
    let mut brace = None;
    'outer: for (i, &(o, c, q)) in chars.iter().enumerate() {
        if q || c != '{' {
            continue;
        }
        let mut depth = 0usize;
        let mut sep = false;
        let mut prev = '\0';
        for &(_, c2, q2) in &chars[i + 1..] {
            if !q2 {
                match c2 {
                    '{' => depth += 1,
                    '}' if depth > 0 => depth -= 1,
                    '}' => {
                        if sep {
                            brace = Some(o);
                            break 'outer;
                        }
                        break;
                    }
                    ',' if depth == 0 => sep = true,
                    '.' if depth == 0 && prev == '.' => sep = true,
                    _ => {}
                }
            }
            prev = if q2 { '\0' } else { c2 };
        }
    }
    (glob, brace)
}

/// Decodes one word-like node (word, string, concatenation, expansion, ...).
///
/// Substitution nodes found inside are pushed to `subs` so the walker can extract the
/// commands they run.
pub(crate) fn decode<'t>(
    node: Node<'t>,
    env: &WordEnv,
    subs: &mut Vec<Node<'t>>,
) -> Result<Decoded, ParseError> {
    let raw = env.src[node.byte_range()].to_string();
    let mut segs = Vec::new();
    decode_into(node, env, subs, &mut segs, false)?;
    expand_tilde(&mut segs, env.home);
    Ok(Decoded {
        raw,
        segs: merge_lits(segs),
    })
}

/// Decodes nodes that touch one another (no byte between them) as the one word they are.
/// tree-sitter-bash splits some redirect targets (`> d$i/f$i.txt`) into several nodes.
/// `None` when they do not touch: then they are separate words.
pub(crate) fn decode_joined<'t>(
    nodes: &[Node<'t>],
    env: &WordEnv,
    subs: &mut Vec<Node<'t>>,
) -> Result<Option<Decoded>, ParseError> {
    let (Some(first), Some(last)) = (nodes.first(), nodes.last()) else {
        return Ok(None);
    };
    if nodes
        .windows(2)
        .any(|w| w[0].end_byte() != w[1].start_byte())
    {
        return Ok(None);
    }
    let mut segs = Vec::new();
    for n in nodes {
        decode_into(*n, env, subs, &mut segs, false)?;
    }
    expand_tilde(&mut segs, env.home);
    Ok(Some(Decoded {
        raw: env.src[first.start_byte()..last.end_byte()].to_string(),
        segs: merge_lits(segs),
    }))
}

fn merge_lits(segs: Vec<Seg>) -> Vec<Seg> {
    let mut out: Vec<Seg> = Vec::with_capacity(segs.len());
    for s in segs {
        match (out.last_mut(), s) {
            (
                Some(Seg::Lit { text, quoted }),
                Seg::Lit {
                    text: t2,
                    quoted: q2,
                },
            ) if *quoted == q2 => {
                text.push_str(&t2);
            }
            (_, s) => out.push(s),
        }
    }
    out
}

/// `~` and `~/...` at the start of an unquoted word resolve to the target's home.
fn expand_tilde(segs: &mut Vec<Seg>, home: &str) {
    let Some(Seg::Lit {
        text,
        quoted: false,
    }) = segs.first()
    else {
        return;
    };
    if !text.starts_with('~') {
        return;
    }
    let end = text.find('/').unwrap_or(text.len());
    let (user, rest) = (text[1..end].to_string(), text[end..].to_string());
    if user.is_empty() {
        // The home directory is literal text (quoted: its characters are not patterns).
        segs[0] = Seg::Lit {
            text: home.to_string(),
            quoted: true,
        };
        if !rest.is_empty() {
            segs.insert(
                1,
                Seg::Lit {
                    text: rest,
                    quoted: false,
                },
            );
        }
    } else {
        let kind = Dynamic {
            tilde: true,
            ..Dynamic::default()
        };
        segs[0] = Seg::Dyn {
            raw: format!("~{user}"),
            kind,
        };
        if !rest.is_empty() {
            segs.insert(
                1,
                Seg::Lit {
                    text: rest,
                    quoted: false,
                },
            );
        }
    }
}

/// Appends a dynamic segment: `text` as written, of this kind.
fn dynamic(segs: &mut Vec<Seg>, text: &str, kind: Dynamic) {
    segs.push(Seg::Dyn {
        raw: text.to_string(),
        kind,
    });
}

fn lit(segs: &mut Vec<Seg>, text: String, quoted: bool) {
    if !text.is_empty() {
        segs.push(Seg::Lit { text, quoted });
    }
}

pub(crate) fn collect_subs<'t>(node: Node<'t>, subs: &mut Vec<Node<'t>>) {
    let mut stack = vec![node];
    while let Some(n) = stack.pop() {
        match n.kind_name() {
            "command_substitution" | "process_substitution" => subs.push(n),
            _ => {
                let mut c = n.walk();
                // Reverse so that source order is kept when popping.
                let kids: Vec<_> = n.children(&mut c).collect();
                stack.extend(kids.into_iter().rev());
            }
        }
    }
}

fn decode_into<'t>(
    node: Node<'t>,
    env: &WordEnv,
    subs: &mut Vec<Node<'t>>,
    segs: &mut Vec<Seg>,
    in_dquote: bool,
) -> Result<(), ParseError> {
    let text = &env.src[node.byte_range()];
    match node.kind_name() {
        "word" | "number" if node.named_child_count() == 0 => {
            if in_dquote {
                lit(segs, unescape_dquote(text), true);
            } else {
                unescape_unquoted(text, segs);
            }
        }
        "string_content" => lit(segs, unescape_dquote(text), true),
        "raw_string" => {
            let inner = text
                .strip_prefix('\'')
                .and_then(|t| t.strip_suffix('\''))
                .unwrap_or(text);
            segs.push(Seg::Lit {
                text: inner.to_string(),
                quoted: true,
            });
        }
        "ansi_c_string" => {
            let inner = text
                .strip_prefix("$'")
                .and_then(|t| t.strip_suffix('\''))
                .unwrap_or(text);
            segs.push(Seg::Lit {
                text: ansi_c_decode(inner),
                quoted: true,
            });
        }
        "string" | "translated_string" => {
            // Children: '"' anon tokens, string_content, expansions, substitutions.
            let mut c = node.walk();
            let mut any = false;
            for child in node.children(&mut c) {
                if !child.is_named() {
                    continue;
                }
                any = true;
                decode_into(child, env, subs, segs, true)?;
            }
            if !any {
                segs.push(Seg::Lit {
                    text: String::new(),
                    quoted: true,
                });
            }
        }
        "concatenation" | "command_name" => {
            let mut c = node.walk();
            for child in node.children(&mut c) {
                if child.kind_name() == "comment" {
                    continue;
                }
                if !child.is_named() {
                    // Anonymous tokens inside a concatenation are literal text (e.g. `=`).
                    let t = &env.src[child.byte_range()];
                    if in_dquote {
                        lit(segs, unescape_dquote(t), true);
                    } else {
                        unescape_unquoted(t, segs);
                    }
                    continue;
                }
                decode_into(child, env, subs, segs, in_dquote)?;
            }
        }
        "simple_expansion" | "expansion" => {
            let name = expansion_name(node, env.src);
            match name.as_deref() {
                Some("HOME") => segs.push(Seg::Lit {
                    text: env.home.to_string(),
                    quoted: true,
                }),
                Some(n) if env.bound.iter().any(|(b, _)| b == n) => {
                    // The innermost binding of a loop variable.
                    if let Some((_, bound)) = env.bound.iter().rev().find(|(b, _)| b == n) {
                        segs.extend(bound.iter().cloned());
                    }
                }
                None if suffix_removal(text, env).is_some() => {
                    segs.extend(suffix_removal(text, env).unwrap_or_default());
                }
                Some("PWD") if matches!(env.cwd, Cwd::Known(v) if v.len() == 1) => {
                    let cwd = env.cwd.primary().unwrap_or("/").to_string();
                    segs.push(Seg::Lit {
                        text: cwd,
                        quoted: true,
                    });
                }
                _ => {
                    collect_subs(node, subs);
                    let mut kind = Dynamic {
                        variable: true,
                        ..Dynamic::default()
                    };
                    kind.substitution =
                        has_descendant(node, &["command_substitution", "process_substitution"]);
                    if is_prompt_expansion(node.kind_name(), text) {
                        // `${x@P}` expands the value as a prompt: its `$(...)` run.
                        subs.push(node);
                        kind.substitution = true;
                    }
                    dynamic(segs, text, kind);
                }
            }
        }
        "command_substitution" | "process_substitution" => {
            subs.push(node);
            let kind = Dynamic {
                substitution: true,
                ..Dynamic::default()
            };
            dynamic(segs, text, kind);
        }
        "arithmetic_expansion" => {
            collect_subs(node, subs);
            let kind = Dynamic {
                arithmetic: true,
                substitution: has_descendant(node, &["command_substitution"]),
                ..Dynamic::default()
            };
            dynamic(segs, text, kind);
        }
        "brace_expression" => {
            let kind = Dynamic {
                brace: true,
                ..Dynamic::default()
            };
            dynamic(segs, text, kind);
        }
        "extglob_pattern" => {
            let kind = Dynamic {
                glob: true,
                ..Dynamic::default()
            };
            dynamic(segs, text, kind);
        }
        // A number with expansions inside (e.g. 0x$(...)), or an array literal.
        "number" | "array" => {
            collect_subs(node, subs);
            let kind = Dynamic {
                variable: true,
                ..Dynamic::default()
            };
            dynamic(segs, text, kind);
        }
        "variable_name" | "special_variable_name" => lit(segs, text.to_string(), false),
        other => {
            return Err(ParseError::unsupported(
                other,
                node.start_byte(),
                node.end_byte(),
                env.src,
            ));
        }
    }
    Ok(())
}

fn has_descendant(node: Node, kinds: &[&str]) -> bool {
    let mut stack = vec![node];
    while let Some(n) = stack.pop() {
        if kinds.contains(&n.kind_name()) {
            return true;
        }
        let mut c = n.walk();
        stack.extend(n.children(&mut c));
    }
    false
}

/// `$NAME` or a plain `${NAME}` (no operators, no subscripts); anything else is `None`.
fn expansion_name(node: Node, src: &str) -> Option<String> {
    let text = &src[node.byte_range()];
    let inner = if let Some(t) = text.strip_prefix("${") {
        t.strip_suffix('}')?
    } else {
        text.strip_prefix('$')?
    };
    if !inner.is_empty() && inner.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Some(inner.to_string())
    } else {
        None
    }
}

/// An array subscript holding a command substitution (`a[$(id)]`, ``a[`id`]``,
/// `a[${x:-$(id)}]`): text that runs a command whenever bash evaluates it as a subscript or
/// an arithmetic expression.
pub(crate) fn has_latent_subscript(text: &str) -> bool {
    static RE: std::sync::LazyLock<Option<regex::Regex>> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"\[[^\]]*(\$\(|`|\$\{[^}]*\$\()").ok());
    // Without the pattern (it is a constant), every `[` with a `$(` counts.
    match &*RE {
        Some(re) => re.is_match(text),
        None => text.contains('[') && (text.contains("$(") || text.contains('`')),
    }
}

/// `${NAME%SUFFIX}` / `${NAME%%SUFFIX}` of a loop variable, with a literal suffix that
/// holds no `/` and no pattern character: the value loses at most the end of its last
/// component, so it stays in the same directory (`${f%.c}.o` for `f` in `src/*.c` is still
/// below `src/`). A value ending in a pattern keeps it (the pattern covers the shorter
/// name); a literal one loses the suffix if it ends with it. `None` for anything else.
fn suffix_removal(text: &str, env: &WordEnv) -> Option<Vec<Seg>> {
    let inner = text.strip_prefix("${")?.strip_suffix('}')?;
    let at = inner.find('%')?;
    let (name, op) = inner.split_at(at);
    let suffix = op.strip_prefix("%%").or_else(|| op.strip_prefix('%'))?;
    let plain_name =
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let plain_suffix = !suffix.is_empty()
        && suffix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-+,".contains(c));
    if !plain_name || !plain_suffix {
        return None;
    }
    let (_, bound) = env.bound.iter().rev().find(|(b, _)| b == name)?;
    let mut segs = bound.clone();
    match segs.last_mut()? {
        Seg::Dyn { .. } => {}
        Seg::Lit { text, .. } => {
            if let Some(kept) = text.strip_suffix(suffix) {
                *text = kept.to_string();
            }
        }
    }
    Some(segs)
}

/// What a loop variable stands for, given the words of its list: the word itself when
/// there is one, else the longest directory prefix they share followed by a glob (each
/// value lies below it). `None` when a word is not literal or a glob (`$x`, `$(ls)`), or
/// when they share no prefix to bound them by.
pub(crate) fn loop_binding(words: &[Decoded]) -> Option<Vec<Seg>> {
    for w in words {
        let d = w.dynamic();
        if d.variable || d.substitution || d.arithmetic || d.tilde {
            return None;
        }
    }
    // A `..` could climb out of any prefix.
    if words
        .iter()
        .any(|w| w.value().split('/').any(|c| c == ".."))
    {
        return None;
    }
    match words {
        [] => None,
        [one] => Some(one.segs.clone()),
        _ => {
            let values: Vec<String> = words.iter().map(Decoded::value).collect();
            let absolute = values.iter().all(|v| v.starts_with('/'));
            let relative = values.iter().all(|v| !v.starts_with('/'));
            if !absolute && !relative {
                return None;
            }
            // The common prefix up to a '/', taken from literal heads only.
            let heads: Vec<String> = words
                .iter()
                .map(|w| {
                    let v = w.value();
                    let first = first_pattern_offset(&w.segs).unwrap_or(v.len());
                    v[..first].to_string()
                })
                .collect();
            let mut prefix = heads[0].clone();
            for h in &heads[1..] {
                let common = prefix
                    .char_indices()
                    .zip(h.chars())
                    .take_while(|((_, a), b)| a == b)
                    .last()
                    .map_or(0, |((i, a), _)| i + a.len_utf8());
                prefix.truncate(common);
            }
            let dir = match prefix.rfind('/') {
                Some(i) => prefix[..=i].to_string(),
                None => String::new(),
            };
            let mut segs = Vec::new();
            if !dir.is_empty() {
                segs.push(Seg::Lit {
                    text: dir,
                    quoted: true,
                });
            }
            segs.push(Seg::Dyn {
                raw: "*".into(),
                kind: Dynamic {
                    glob: true,
                    ..Dynamic::default()
                },
            });
            Some(segs)
        }
    }
}

/// Unquoted text: a backslash quotes the next character; backslash-newline disappears.
fn unescape_unquoted(text: &str, segs: &mut Vec<Seg>) {
    let mut cur = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('\n') | None => {}
                Some(n) => {
                    lit(segs, std::mem::take(&mut cur), false);
                    segs.push(Seg::Lit {
                        text: n.to_string(),
                        quoted: true,
                    });
                }
            }
        } else {
            cur.push(c);
        }
    }
    lit(segs, cur, false);
}

/// Inside double quotes only `\$`, `` \` ``, `\"`, `\\` and backslash-newline are escapes.
pub(crate) fn unescape_dquote(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.peek() {
                Some('$') | Some('`') | Some('"') | Some('\\') => {
                    out.push(chars.next().unwrap_or('\\'));
                }
                Some('\n') => {
                    chars.next();
                }
                _ => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Decodes the body of `$'...'` the way bash does.
pub(crate) fn ansi_c_decode(s: &str) -> String {
    let mut out: Vec<u8> = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    let hex = |c: u8| (c as char).to_digit(16);
    while i < b.len() {
        if b[i] != b'\\' || i + 1 >= b.len() {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let e = b[i + 1];
        i += 2;
        match e {
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'e' | b'E' => out.push(27),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'\\' => out.push(b'\\'),
            b'\'' => out.push(b'\''),
            b'"' => out.push(b'"'),
            b'?' => out.push(b'?'),
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                let mut n = 1;
                while n < 3 && i < b.len() && (b'0'..=b'7').contains(&b[i]) {
                    v = v * 8 + u32::from(b[i] - b'0');
                    i += 1;
                    n += 1;
                }
                out.push((v & 0xff) as u8);
            }
            b'x' => {
                let mut v = 0u32;
                let mut n = 0;
                while n < 2 && i < b.len() && hex(b[i]).is_some() {
                    v = v * 16 + hex(b[i]).unwrap_or(0);
                    i += 1;
                    n += 1;
                }
                if n == 0 {
                    out.extend_from_slice(b"\\x");
                } else {
                    out.push(v as u8);
                }
            }
            b'u' | b'U' => {
                let max = if e == b'u' { 4 } else { 8 };
                let mut v = 0u32;
                let mut n = 0;
                while n < max && i < b.len() && hex(b[i]).is_some() {
                    v = v.wrapping_mul(16) + hex(b[i]).unwrap_or(0);
                    i += 1;
                    n += 1;
                }
                if n == 0 {
                    out.push(b'\\');
                    out.push(e);
                } else if let Some(ch) = char::from_u32(v) {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
            }
            b'c' if i < b.len() => {
                out.push(b[i] & 0x1f);
                i += 1;
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `${NAME@P}`: the value expanded as a prompt string, which runs the command
/// substitutions it holds.
pub(crate) fn is_prompt_expansion(kind: &str, text: &str) -> bool {
    kind == "expansion" && text.ends_with("@P}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ansi_c_escapes_decode_like_bash() {
        assert_eq!(ansi_c_decode(r"\x72m"), "rm");
        assert_eq!(ansi_c_decode(r"\162m"), "rm");
        assert_eq!(ansi_c_decode(r"\u0072m"), "rm");
        assert_eq!(ansi_c_decode(r"a\tb\\"), "a\tb\\");
        assert_eq!(ansi_c_decode(r"it\'s"), "it's");
    }

    #[test]
    fn double_quote_escapes_are_the_bash_subset() {
        assert_eq!(unescape_dquote(r#"a\"b\$c\\d\e"#), r#"a"b$c\d\e"#);
    }

    #[test]
    fn brace_and_glob_detection_respects_quotes() {
        let w = |segs: Vec<Seg>| Decoded {
            raw: String::new(),
            segs,
        };
        let u = |t: &str| Seg::Lit {
            text: t.into(),
            quoted: false,
        };
        let q = |t: &str| Seg::Lit {
            text: t.into(),
            quoted: true,
        };
        assert!(w(vec![u("a{b,c}")]).dynamic().brace);
        assert!(w(vec![u("{1..3}")]).dynamic().brace);
        assert!(!w(vec![u("{}")]).dynamic().brace);
        assert!(!w(vec![q("a{b,c}")]).dynamic().brace);
        assert!(w(vec![u("*.o")]).dynamic().glob);
        assert!(!w(vec![q("*.o")]).dynamic().glob);
        assert!(!w(vec![u("a[b")]).dynamic().glob);
    }
}
