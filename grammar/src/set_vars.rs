//! Shell variables that builtins set without `NAME=value`: `read NAME`, `printf -v NAME`,
//! `mapfile NAME`, `getopts OPTS NAME`, a bare `export NAME` (which exports whatever the
//! name holds) and the target of a nameref (`declare -n r=PAGER` makes `r=…` set `PAGER`).
//! Each becomes an assignment of an unknown value on the command, so `read -r PAGER <f;
//! export PAGER; git log` is judged like `PAGER=$(cat f) git log`.
//!
//! A name that is not literal (`read "$n"`) is reported as [`DYNAMIC_NAME`]: it could be
//! any variable.

use crate::words::Decoded;

/// The name reported for a variable whose name is not literal.
pub const DYNAMIC_NAME: &str = "(dynamic)";

/// For `read`: its options that take a value (`-a NAME` names the array it sets).
const READ_VALUE_OPTIONS: &str = "adinNptu";
/// For `mapfile`/`readarray`: its options that take a value.
const MAPFILE_VALUE_OPTIONS: &str = "dnOsuCc";
/// Builtins that export or declare names given without a value.
const DECLARERS: [&str; 5] = ["export", "declare", "typeset", "local", "readonly"];

/// The variables `program` sets from its arguments `args` (`argv[1..]`), beyond its
/// `NAME=value` assignments (`env`): each name once, in order.
pub(crate) fn set_by(program: &str, args: &[Decoded], env: &[(String, Decoded)]) -> Vec<String> {
    let mut out = match program {
        "read" => read(args),
        "printf" => printf(args),
        "mapfile" | "readarray" => mapfile(args),
        "getopts" => args.get(1).map(name_of).into_iter().collect(),
        p if DECLARERS.contains(&p) => declared(args, env),
        _ => Vec::new(),
    };
    let mut seen = std::collections::BTreeSet::new();
    out.retain(|n| seen.insert(n.clone()));
    out
}

fn name_of(d: &Decoded) -> String {
    d.literal_value()
        .unwrap_or_else(|| DYNAMIC_NAME.to_string())
}

/// Options in short clusters, those in `valued` taking the rest of the cluster or the next
/// word; stops at `--` or the first operand. Calls `on_value(option, value)` and returns
/// the index of the first operand.
fn scan_options(args: &[Decoded], valued: &str, mut on_value: impl FnMut(char, &Decoded)) -> usize {
    let mut i = 0;
    while let Some(w) = args.get(i) {
        let v = w.value();
        if v == "--" {
            return i + 1;
        }
        if !v.starts_with('-') || v == "-" {
            return i;
        }
        i += 1;
        for (at, c) in v.char_indices().skip(1) {
            if valued.contains(c) {
                let rest = &v[at + c.len_utf8()..];
                if rest.is_empty() {
                    if let Some(next) = args.get(i) {
                        on_value(c, next);
                        i += 1;
                    }
                } else {
                    on_value(c, &Decoded::literal(rest));
                }
                break;
            }
        }
    }
    i
}

fn read(args: &[Decoded]) -> Vec<String> {
    let mut names = Vec::new();
    let first = scan_options(args, READ_VALUE_OPTIONS, |c, v| {
        if c == 'a' {
            names.push(name_of(v));
        }
    });
    names.extend(args[first.min(args.len())..].iter().map(name_of));
    if names.is_empty() {
        names.push("REPLY".into());
    }
    names
}

fn printf(args: &[Decoded]) -> Vec<String> {
    let mut names = Vec::new();
    scan_options(args, "v", |_, v| names.push(name_of(v)));
    names
}

fn mapfile(args: &[Decoded]) -> Vec<String> {
    let first = scan_options(args, MAPFILE_VALUE_OPTIONS, |_, _| {});
    match args.get(first.min(args.len())..).and_then(|r| r.last()) {
        Some(n) => vec![name_of(n)],
        None => vec!["MAPFILE".into()],
    }
}

/// `export NAME`, `declare -x NAME`: the names given without a value; with `-n`, the
/// variables the namerefs point at.
fn declared(args: &[Decoded], env: &[(String, Decoded)]) -> Vec<String> {
    let mut nameref = false;
    let mut names = Vec::new();
    for w in args {
        let v = w.value();
        if v.starts_with('-') || v.starts_with('+') {
            nameref |= v.starts_with('-') && v.contains('n') && !v.starts_with("--");
            continue;
        }
        if !v.contains('=') {
            names.push(name_of(w));
        }
    }
    if nameref {
        names.extend(env.iter().map(|(_, target)| name_of(target)));
    }
    names
}

#[cfg(test)]
mod tests {
    use super::set_by;
    use crate::words::Decoded;

    fn words(s: &str) -> Vec<Decoded> {
        s.split(' ')
            .filter(|w| !w.is_empty())
            .map(Decoded::literal)
            .collect()
    }

    #[test]
    fn builtins_that_set_variables() {
        let set = |p: &str, a: &str| set_by(p, &words(a), &[]);
        assert_eq!(set("read", "-r PAGER"), ["PAGER"]);
        assert_eq!(set("read", "-p prompt -t 5 a b"), ["a", "b"]);
        assert_eq!(set("read", "-ra parts"), ["parts"]);
        assert_eq!(set("read", "-r"), ["REPLY"]);
        assert_eq!(set("printf", "-v GIT_PAGER %s x"), ["GIT_PAGER"]);
        assert_eq!(set("printf", "-vX %s"), ["X"]);
        assert_eq!(set("printf", "%s x"), Vec::<String>::new());
        assert_eq!(set("mapfile", "-t -d , lines"), ["lines"]);
        assert_eq!(set("readarray", "-t"), ["MAPFILE"]);
        assert_eq!(set("getopts", "ab: opt"), ["opt"]);
        assert_eq!(set("export", "PAGER"), ["PAGER"]);
        assert_eq!(set("declare", "-x A=1 B"), ["B"]);
        assert_eq!(set("ls", "-la"), Vec::<String>::new());
        let env = vec![("r".to_string(), Decoded::literal("PAGER"))];
        assert_eq!(set_by("declare", &words("-n"), &env), ["PAGER"]);
    }
}
