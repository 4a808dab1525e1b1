//! Building a [`Command`] from its decoded words: program identity, flags, positionals,
//! which words are paths, and the effect of `cd`.

use crate::ir::{Assignment, Command, Cwd, PathRef, Program, Redirect, RedirectKind, Word};
use crate::knowledge::{self as k, Catalog, Trait, ValueKind};
use crate::paths;
use crate::program;
use crate::proto::{Outcome, Proto};
use crate::words::Decoded;
use std::collections::BTreeSet;
use std::sync::LazyLock;

/// A sed or awk script that starts with a `/REGEX/` address (`/error/p`, `/^$/d`,
/// `/x/ {print}`): never a path, though it starts with `/`. A path has a name after its
/// second slash; such a script has nothing, a one-letter command, or a block.
static ADDRESS_SCRIPT: LazyLock<Option<regex::Regex>> = LazyLock::new(|| {
    regex::Regex::new(r"^/(?:[^/\\]|\\.)+/(?:I|M)?(?:$|!?[pdq=](?:\s*;.*)?$|\s*[{,;!].*$|\s+\S.*$)")
        .ok()
});

/// See [`ADDRESS_SCRIPT`]; false when the expression does not build (the safe direction).
fn is_address_script(v: &str) -> bool {
    ADDRESS_SCRIPT.as_ref().is_some_and(|r| r.is_match(v))
}

/// How `cd`/`pushd`/`popd` leave the cwd; any other command leaves it as it was.
/// `+N` or `-N`: an entry of the directory stack (`pushd +1`), not a directory name.
pub fn is_stack_entry(word: &str) -> bool {
    word.len() > 1
        && (word.starts_with('+') || word.starts_with('-'))
        && word[1..].bytes().all(|b| b.is_ascii_digit())
}

pub(crate) fn cd_outcome(p: &Proto, cwd: &Cwd, home: &str) -> Outcome {
    let same = Outcome {
        ok: cwd.clone(),
        err: cwd.clone(),
    };
    let mut words = p.argv.iter().peekable();
    // `builtin cd` / `command cd` are still cd.
    while let Some(w) = words.peek() {
        match w.literal_text().as_deref() {
            Some("builtin") | Some("command") => {
                words.next();
            }
            _ => break,
        }
    }
    let Some(name) = words.next().map(Decoded::literal_text) else {
        return same;
    };
    let name = match name {
        Some(n) => n,
        None => return same,
    };
    match &*name {
        "cd" | "pushd" => {}
        "popd" => {
            return Outcome {
                ok: Cwd::Unknown,
                err: cwd.clone(),
            }
        }
        _ => return same,
    }
    let rotates = name == "pushd";
    let target = words.find(|w| {
        let v = w.value_text();
        is_stack_entry(&v) || !(v.starts_with('-') && v.len() > 1 && w.literal_text().is_some())
    });
    let ok = match target {
        None => Cwd::Known([home.to_string()].into()),
        Some(w) => match w.literal_value() {
            Some(v) if v == "-" => Cwd::Unknown,
            // `pushd +N` / `pushd -N`: an entry of the directory stack.
            Some(v) if rotates && is_stack_entry(&v) => Cwd::Unknown,
            Some(v) if v.starts_with('/') => Cwd::Known([paths::resolve("/", &v)].into()),
            Some(v) => match cwd {
                Cwd::Known(bases) if !bases.is_empty() => {
                    let mut out: Vec<String> = Vec::new();
                    for b in bases.iter() {
                        let r = paths::resolve(b, &v);
                        if !out.contains(&r) {
                            out.push(r);
                        }
                    }
                    Cwd::Known(out.into())
                }
                _ => Cwd::Unknown,
            },
            None => Cwd::Unknown,
        },
    };
    Outcome {
        ok,
        err: cwd.clone(),
    }
}

/// What a word after the command name is, as far as the program's option table tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WordRole {
    /// An option (`-r`, `--out=x`) or the `--` that ends options.
    Flag,
    /// The value of the option before it (`-k 2`, `-T DIR`).
    Value,
    /// The file an output option writes (`sort -o FILE`): always a path.
    Output,
    /// Program text given to an option (`python -c CODE`): never a path.
    Code,
    /// An operand.
    Positional,
    /// An operand of an expression (`find . -name x -o ( ... )`): never a path.
    ExpressionOperand,
}

fn word(d: &Decoded, paths: Vec<PathRef>) -> Word {
    Word {
        raw: d.raw.clone(),
        value: d.value(),
        dynamic: d.dynamic(),
        paths,
    }
}

/// Finishes a command: identity, flags, positionals, path words, redirects, structure.
pub(crate) fn finish(p: Proto, kn: &Catalog) -> Command {
    let cwd = p.cwd.clone();
    let (argv0, program) = match p.argv.first() {
        None => (
            Word {
                raw: String::new(),
                value: String::new(),
                dynamic: Default::default(),
                paths: vec![],
            },
            Program::Assignment,
        ),
        Some(d) => match d.literal_text() {
            Some(v) => (word(d, vec![]), program::identify(&v, &cwd, kn)),
            None => (word(d, vec![]), Program::Dynamic),
        },
    };
    let dynamic_command = program.is_dynamic();
    let base = program.base_name().to_string();
    let no_paths = kn.has(&base, Trait::NoPathArgs);
    let single_dash_long = kn.has(&base, Trait::SingleDashLong);
    let start_points = kn.has(&base, Trait::StartPoints);

    let mut flags = BTreeSet::new();
    let mut positionals = Vec::new();
    let mut positional_idx = Vec::new();
    let mut args = Vec::new();
    let mut after_ddash = false;
    let mut consumed_by: Option<ValueKind> = None;
    let rest = if p.argv.is_empty() {
        &p.argv[..]
    } else {
        &p.argv[1..]
    };
    let mut roles: Vec<WordRole> = Vec::with_capacity(rest.len());
    // For `start_points` programs: set once the expression after the start points began.
    let mut in_expression = false;
    for d in rest {
        let v = d.value();
        if let Some(kind) = consumed_by.take() {
            roles.push(match kind {
                ValueKind::Code => WordRole::Code,
                ValueKind::Value => WordRole::Value,
                ValueKind::Output => WordRole::Output,
            });
            continue;
        }
        if !after_ddash && v == "--" {
            after_ddash = true;
            roles.push(WordRole::Flag);
            continue;
        }
        if !after_ddash && v.starts_with('-') && v.len() > 1 {
            if start_points && !kn.is_leading_flag(&base, &v) {
                in_expression = true;
            }
            if let Some(long) = v.strip_prefix("--") {
                let name = format!("--{}", long.split('=').next().unwrap_or(""));
                if !v.contains('=') {
                    consumed_by = kn.value_option(&base, &name);
                }
                flags.insert(name);
            } else {
                flags.insert(v.clone());
                if !single_dash_long {
                    let letters: Vec<char> = v[1..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric())
                        .collect();
                    // Letters up to one that takes a value: the rest is that value
                    // (`-Tutf8` is `-T utf8`, not `-u -t -f -8`).
                    for c in &letters {
                        let flag = format!("-{c}");
                        let takes_value = kn.value_option(&base, &flag).is_some();
                        flags.insert(flag);
                        if takes_value {
                            break;
                        }
                    }
                    // `-n5` carries its value; `-n` alone takes the next word.
                    if v.len() == 2 {
                        consumed_by = kn.value_option(&base, &v);
                    } else if let Some(last) = letters.last() {
                        if letters.len() + 1 == v.len() {
                            consumed_by = kn.value_option(&base, &format!("-{last}"));
                        }
                    }
                } else {
                    consumed_by = kn.value_option(&base, &v);
                }
            }
            roles.push(WordRole::Flag);
            continue;
        }
        if start_points && matches!(v.as_str(), "(" | "!" | ")" | ",") {
            in_expression = true;
        }
        positionals.push(v);
        positional_idx.push(roles.len());
        roles.push(if in_expression {
            WordRole::ExpressionOperand
        } else {
            WordRole::Positional
        });
    }
    let subcommand_program = kn.has(&base, Trait::Subcommand);
    let subcommand = positionals.first().cloned();
    let pattern_first =
        kn.has(&base, Trait::PatternFirst) && !flags.iter().any(|f| kn.is_pattern_flag(f));
    let first_not_path =
        subcommand_program || pattern_first || kn.has(&base, Trait::FirstIsNotPath);

    for (i, d) in rest.iter().enumerate() {
        let fixed = p
            .fixed_paths
            .iter()
            .find(|(j, _)| *j == i + 1)
            .map(|(_, v)| v.clone());
        let v = d.value();
        let file_url = file_url_path(&v);
        let paths = if let Some(f) = fixed {
            f
        } else if no_paths {
            vec![]
        } else {
            match roles[i] {
                // `curl file:///etc/shadow` reads the file: the URL's path is a path.
                WordRole::Value | WordRole::Positional if file_url.is_some() => {
                    value_paths(d, file_url.as_deref().unwrap_or("/"), &cwd, true)
                }
                WordRole::Flag => match v.split_once('=') {
                    Some((flag, val))
                        if v.starts_with("--")
                            && !k::is_url(val)
                            && (k::looks_like_path(val)
                                || kn.value_option(&base, flag) == Some(ValueKind::Output)) =>
                    {
                        value_paths(d, val, &cwd, false)
                    }
                    // `tar -xf a.tar -C/etc`: a value attached to a short option.
                    _ => match attached_short_value(kn, &base, &v, single_dash_long) {
                        Some((val, kind))
                            if !k::is_url(val)
                                && (kind == ValueKind::Output || k::looks_like_path(val)) =>
                        {
                            value_paths(d, val, &cwd, false)
                        }
                        _ => vec![],
                    },
                },
                WordRole::Code | WordRole::ExpressionOperand => vec![],
                WordRole::Output => d.paths(&cwd),
                WordRole::Value
                    if !k::looks_like_path(&v)
                        || k::is_url(&v)
                        || k::is_remote_spec(kn, &base, &v) =>
                {
                    vec![]
                }
                // `-v /host/dir:/container/dir`: the host side is the path.
                WordRole::Value
                    if v.contains(':') && k::looks_like_path(v.split(':').next().unwrap_or("")) =>
                {
                    let host = v.split(':').next().unwrap_or("");
                    value_paths(d, host, &cwd, true)
                }
                WordRole::Positional if (k::is_url(&v) || k::is_remote_spec(kn, &base, &v)) => {
                    vec![]
                }
                WordRole::Positional
                    if first_not_path
                        && positional_idx.first() == Some(&i)
                        && (!k::looks_like_path(&v)
                            || (pattern_first && is_address_script(&v))) =>
                {
                    vec![]
                }
                WordRole::Positional if v.contains('=') && !v.starts_with(['/', '.', '~']) => {
                    match v.split_once('=') {
                        Some((_, val)) if k::looks_like_path(val) => {
                            value_paths(d, val, &cwd, false)
                        }
                        _ => vec![],
                    }
                }
                _ => d.paths(&cwd),
            }
        };
        args.push(word(d, paths));
    }

    let mut structure = p.structure;
    structure.dynamic_command |= dynamic_command;
    let mut redirects = Vec::new();
    for r in &p.redirects {
        let is_path = matches!(
            r.kind,
            RedirectKind::Write
                | RedirectKind::Append
                | RedirectKind::Read
                | RedirectKind::ReadWrite
        );
        let paths = if is_path {
            r.target.paths(&cwd)
        } else {
            vec![]
        };
        structure.dynamic_args |= is_path && r.target.dynamic().any();
        structure.unbounded_args |= is_path && r.target.dynamic().unbounded();
        structure.args_have_substitution |= r.target.dynamic().substitution;
        redirects.push(Redirect {
            op: r.op.clone(),
            fd: r.fd,
            kind: r.kind,
            target: word(&r.target, paths),
        });
    }
    for a in &args {
        structure.dynamic_args |= a.dynamic.any();
        structure.unbounded_args |= a.dynamic.unbounded();
        structure.args_have_substitution |= a.dynamic.substitution;
    }
    let mut env = Vec::new();
    for (name, value) in &p.env {
        structure.args_have_substitution |= value.dynamic().substitution;
        env.push(Assignment {
            name: name.clone(),
            value: word(value, vec![]),
        });
    }
    // Variables the builtin sets from its arguments (`read PAGER`): values unknown.
    let builtin = match &program {
        Program::Literal(n) => n.as_str(),
        _ => "",
    };
    for name in crate::set_vars::set_by(builtin, rest, &p.env) {
        if !env.iter().any(|a| a.name == name) {
            let value = word(&Decoded::opaque(&format!("${name}")), vec![]);
            env.push(Assignment { name, value });
        }
    }
    structure
        .input_sources
        .extend(p.sub_programs.iter().cloned());
    Command {
        span: p.span,
        text: p.text,
        argv0,
        program,
        args,
        flags,
        positionals,
        subcommand,
        env,
        env_cleared: p.env_cleared,
        redirects,
        cwd,
        structure,
    }
}

/// Paths for a part of a word: the value of `--opt=VALUE` / `key=VALUE` (a suffix), or
/// the host side of `-v HOST:CONTAINER` (a prefix, `prefix == true`).
/// The value attached to a short option in a cluster (`-C/etc`, `-xzf/tmp/a.tar`): the
/// rest of the word after the first letter that takes a value, with that option's kind.
/// Program text (`-c'…'`) is never a path.
fn attached_short_value<'v>(
    kn: &Catalog,
    base: &str,
    v: &'v str,
    single_dash_long: bool,
) -> Option<(&'v str, ValueKind)> {
    if single_dash_long || !v.starts_with('-') || v.starts_with("--") {
        return None;
    }
    for (i, c) in v.char_indices().skip(1) {
        if !c.is_ascii_alphanumeric() {
            return None;
        }
        let rest = &v[i + c.len_utf8()..];
        match kn.value_option(base, &format!("-{c}")) {
            Some(ValueKind::Code) => return None,
            Some(kind) if !rest.is_empty() => return Some((rest, kind)),
            _ => {}
        }
    }
    None
}

/// The path a `file:` URL names (`file:///etc/x`, `file://localhost/etc/x`, `file:/etc/x`),
/// percent-escapes decoded as URL readers decode them; `None` for any other word.
fn file_url_path(v: &str) -> Option<String> {
    let scheme = v.get(..5)?;
    if !scheme.eq_ignore_ascii_case("file:") {
        return None;
    }
    let rest = &v[5..];
    let path = match rest.strip_prefix("//") {
        Some(after) => {
            let slash = after.find('/').unwrap_or(after.len());
            &after[slash..]
        }
        None => rest,
    };
    let path = path.split(['?', '#']).next().unwrap_or("");
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).and_then(|b| hex(*b)),
            bytes.get(i + 2).and_then(|b| hex(*b)),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    let path = String::from_utf8_lossy(&out).into_owned();
    Some(if path.starts_with('/') {
        path
    } else {
        format!("/{path}")
    })
}

fn value_paths(d: &Decoded, val: &str, cwd: &Cwd, prefix: bool) -> Vec<PathRef> {
    if prefix {
        let lit = d.literal_text();
        return match lit {
            Some(_) => Decoded::literal(val).paths(cwd),
            None => vec![PathRef::Anywhere],
        };
    }
    let prefix_len = d.value().len() - val.len();
    let mut sub = d.clone();
    // Drop the `key=` prefix from the literal segments.
    let mut remaining = prefix_len;
    let mut segs = Vec::new();
    for s in sub.segs.drain(..) {
        match s {
            crate::words::Seg::Lit { text, quoted } if remaining > 0 => {
                if text.len() <= remaining {
                    remaining -= text.len();
                } else {
                    let rest = text[remaining..].to_string();
                    remaining = 0;
                    segs.push(crate::words::Seg::Lit { text: rest, quoted });
                }
            }
            other if remaining > 0 => {
                // A dynamic part inside the key: the value is unknowable.
                let _ = other;
                return vec![PathRef::Anywhere];
            }
            other => segs.push(other),
        }
    }
    sub.segs = segs;
    let home_tilde = val.starts_with('~');
    if home_tilde {
        return vec![PathRef::Anywhere];
    }
    sub.paths(cwd)
}
