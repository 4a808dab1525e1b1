//! Text piped or redirected into an interpreter.
//!
//! `echo 'cat /etc/shadow' | sh` runs what the pipe carries. When the text is written
//! literally in the script (`echo`, `printf` with literal words), it is the payload and is
//! parsed like `sh -c`'s string; when it is computed (`base64 -d x | sh`, `cat f | python3`,
//! `sh < file`), nothing about it can be known and the interpreter's code is a dynamic
//! command, which the shipped policies deny.

use crate::ir::Command;
use crate::ir::RedirectKind;
use crate::proto::{Proto, Stdin};
use crate::words::Decoded;

/// What a pipeline element whose commands are `cmds` writes into the pipe.
pub(crate) fn piped(cmds: &[Command]) -> Stdin {
    let label = || {
        let names: Vec<String> = cmds.iter().map(|c| c.program.entity_id()).collect();
        format!("output of `{}`", names.join(" "))
    };
    let [c] = cmds else {
        return Stdin::Computed(label());
    };
    if c.program.entity_id() == "find" {
        if let Some(roots) = find_roots(c) {
            return Stdin::Paths(label(), roots);
        }
    }
    if !c.args.iter().all(|w| w.is_literal()) || !c.redirects.is_empty() {
        return Stdin::Computed(label());
    }
    let args: Vec<&str> = c.args.iter().map(|w| w.value.as_str()).collect();
    let text = match c.program.entity_id().as_str() {
        "echo" => echo(&args),
        "printf" => printf(&args),
        _ => None,
    };
    text.map_or_else(|| Stdin::Computed(label()), Stdin::Literal)
}

/// The start points of a `find ... -print0` that prints only paths (no `-printf`, `-ls`,
/// `-exec`...), each as `ROOT/*`: what it prints lies below them. Without `-print0` a
/// name with a blank, quote or newline (`src/x /etc/shadow`, which the agent can create)
/// splits into words outside the roots at the reader, so plain `find | xargs` stays
/// unknown.
fn find_roots(c: &Command) -> Option<Vec<Decoded>> {
    const PRINTS_OTHER_TEXT: [&str; 10] = [
        "-printf", "-fprintf", "-ls", "-fls", "-exec", "-execdir", "-ok", "-okdir", "-fprint",
        "-fprint0",
    ];
    let mut roots = Vec::new();
    let mut leading = true;
    for w in &c.args {
        if !w.is_literal() && !w.dynamic.glob {
            return None;
        }
        let v = w.value.as_str();
        if PRINTS_OTHER_TEXT.contains(&v) {
            return None;
        }
        if leading && matches!(v, "-H" | "-L" | "-P") {
            continue;
        }
        if leading && (v.starts_with('-') || matches!(v, "(" | "!" | ")" | ",")) {
            leading = false;
        }
        if leading {
            roots.push(v.to_string());
        }
    }
    if !c.args.iter().any(|w| w.value == "-print0") {
        return None;
    }
    if roots.is_empty() {
        roots.push(".".into());
    }
    if roots.iter().any(|r| r.split('/').any(|p| p == "..")) {
        return None;
    }
    Some(roots.iter().map(|r| Decoded::below(r)).collect())
}

/// bash's builtin `echo` (without `xpg_echo`): `-n`, `-e`, `-E` flags; `-e` with a
/// backslash in the text is computed (escapes) rather than guessed.
fn echo(args: &[&str]) -> Option<String> {
    let mut newline = true;
    let mut escapes = false;
    let mut i = 0;
    while let Some(a) = args.get(i) {
        let is_flag = a.len() > 1
            && a.starts_with('-')
            && a[1..].chars().all(|c| matches!(c, 'n' | 'e' | 'E'));
        if !is_flag {
            break;
        }
        newline &= !a.contains('n');
        escapes = a.rfind('e') > a.rfind('E');
        i += 1;
    }
    let text = args[i..].join(" ");
    if escapes && text.contains('\\') {
        return None;
    }
    Some(if newline { text + "\n" } else { text })
}

/// `printf FORMAT [ARGS]` when the format has no conversions (`printf 'ls\n'`) or is a
/// plain `%s` / `%s\n`; anything else is computed.
fn printf(args: &[&str]) -> Option<String> {
    let (format, rest) = args.split_first()?;
    let unescape = |s: &str| -> Option<String> {
        let t = s.replace("\\n", "\n").replace("\\t", "\t");
        (!t.contains('\\')).then_some(t)
    };
    match *format {
        "%s" | "%s\\n" => {
            let end = if format.ends_with("\\n") { "\n" } else { "" };
            Some(rest.iter().map(|a| format!("{a}{end}")).collect())
        }
        f if !f.contains('%') => unescape(f),
        _ => None,
    }
}

/// What a command reads on stdin: the last redirect of descriptor 0 wins over the pipe.
/// `None` when stdin is the session's own (nothing an agent wrote into it).
pub(crate) fn of(p: &Proto) -> Option<Stdin> {
    let redirect = p.redirects.iter().rev().find(|r| {
        r.fd.unwrap_or(0) == 0
            && matches!(
                r.kind,
                RedirectKind::Read
                    | RedirectKind::Heredoc
                    | RedirectKind::Herestring
                    | RedirectKind::ReadWrite
            )
    });
    match redirect {
        Some(r) => match (r.kind, r.target.literal_value()) {
            (RedirectKind::Heredoc | RedirectKind::Herestring, Some(t)) => {
                // A here-string gets a newline appended by bash.
                let t = if r.kind == RedirectKind::Herestring {
                    t + "\n"
                } else {
                    t
                };
                Some(Stdin::Literal(t))
            }
            (RedirectKind::Read, Some(path)) if path == "/dev/null" => None,
            (RedirectKind::Heredoc | RedirectKind::Herestring, None) => {
                Some(Stdin::Computed(format!("here-document `{}`", r.target.raw)))
            }
            (_, _) => Some(Stdin::Computed(format!("file `{}`", r.target.raw))),
        },
        None => p.stdin.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::{echo, printf};

    #[test]
    fn literal_producers() {
        assert_eq!(echo(&["ls", "-la"]).as_deref(), Some("ls -la\n"));
        assert_eq!(echo(&["-n", "id"]).as_deref(), Some("id"));
        assert_eq!(echo(&["-e", "a\\nb"]), None);
        assert_eq!(echo(&["-E", "a\\nb"]).as_deref(), Some("a\\nb\n"));
        assert_eq!(printf(&["ls\\n"]).as_deref(), Some("ls\n"));
        assert_eq!(printf(&["%s\\n", "a", "b"]).as_deref(), Some("a\nb\n"));
        assert_eq!(printf(&["%x", "1"]), None);
        assert_eq!(printf(&["\\x63at"]), None);
    }
}
