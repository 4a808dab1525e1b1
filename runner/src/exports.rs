//! The shell's exported variables, kept so that a restarted shell gets them back.
//!
//! After every command the framing writes bash's `export -p` into the session's private
//! directory ([`FILE`]); a restart reads the last one, compares it with the fresh shell's
//! and restores what differs with one command (`cd … && export NAME=$'…'`), which the
//! policies decide like any other: a file the agent could have written says nothing a
//! command of its own could not.

/// The file in the session's private directory.
pub(crate) const FILE: &str = ".ek-exports";

/// Variables that belong to the shell or the session, never restored.
const OWN: &[&str] = &["PWD", "OLDPWD", "SHLVL", "_", "TMPDIR", "HOME"];

/// Parses bash's `export -p` (`declare -x NAME="value"` lines; values may span lines
/// and escape `"`, `\`, `$` and `` ` `` with a backslash). Names without a value and
/// lines that are not declarations are skipped.
///
/// For example `declare -x A="1"` gives `("A", "1")` and `declare -x B="x\"y"` gives
/// `("B", "x\"y")` (tested below).
pub(crate) fn parse(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let line_end = rest.find('\n').unwrap_or(rest.len());
        let line = &rest[..line_end];
        let Some(decl) = line.strip_prefix("declare -") else {
            rest = rest.get(line_end + 1..).unwrap_or("");
            continue;
        };
        let Some((flags, tail)) = decl.split_once(' ') else {
            rest = rest.get(line_end + 1..).unwrap_or("");
            continue;
        };
        let Some((name, _)) = tail.split_once("=\"") else {
            rest = rest.get(line_end + 1..).unwrap_or("");
            continue;
        };
        // `value` runs from here to the closing quote, maybe past this line.
        let start = (tail.as_ptr() as usize - rest.as_ptr() as usize) + name.len() + 2;
        let body = &rest[start..];
        let mut v = String::new();
        let mut chars = body.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, e @ ('"' | '\\' | '$' | '`'))) => v.push(e),
                    Some((_, e)) => {
                        v.push('\\');
                        v.push(e);
                    }
                    None => break,
                },
                '"' => {
                    end = Some(i);
                    break;
                }
                c => v.push(c),
            }
        }
        let Some(end) = end else { break };
        if flags.contains('x') && valid_name(name) {
            out.push((name.to_string(), v));
        }
        let after = &body[end + 1..];
        rest = after.find('\n').map_or("", |n| &after[n + 1..]);
    }
    out
}

fn valid_name(n: &str) -> bool {
    let mut b = n.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// What to set in a fresh shell (`now`) so it has `before`'s exports (the session's own
/// variables left alone).
pub(crate) fn changed<'a>(
    before: &'a [(String, String)],
    now: &[(String, String)],
) -> Vec<&'a (String, String)> {
    before
        .iter()
        .filter(|(k, _)| !OWN.contains(&k.as_str()) && !k.starts_with("__ek_"))
        .filter(|(k, v)| !now.iter().any(|(n, w)| n == k && w == v))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_bash_prints() {
        let text = "declare -x A=\"1\"\ndeclare -x B=\"x\\\"y \\$z \\`c\\` \\\\\"\ndeclare -x C\ndeclare -rx R=\"ro\"\ndeclare -x M=\"two\nlines\"\ndeclare -x Z=\"\"\n";
        let v = parse(text);
        let want: Vec<(String, String)> = [
            ("A", "1"),
            ("B", "x\"y $z `c` \\"),
            ("R", "ro"),
            ("M", "two\nlines"),
            ("Z", ""),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(v, want);
    }

    #[test]
    fn agrees_with_bash_itself() {
        let out = std::process::Command::new("bash")
            .args(["--noprofile", "--norc", "-c"])
            .arg("export Q='it'\"'\"'s \"q\" $x `y` \\ end' NL=$'a\\nb' E=; export -p")
            .env_clear()
            .output()
            .unwrap();
        let v = parse(&String::from_utf8_lossy(&out.stdout));
        let get = |n: &str| v.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("Q"), Some("it's \"q\" $x `y` \\ end"));
        assert_eq!(get("NL"), Some("a\nb"));
        assert_eq!(get("E"), Some(""));
    }

    #[test]
    fn only_differences_are_restored() {
        let before = parse("declare -x A=\"1\"\ndeclare -x B=\"2\"\ndeclare -x PWD=\"/x\"\n");
        let now = parse("declare -x A=\"1\"\ndeclare -x B=\"3\"\n");
        let c = changed(&before, &now);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].0, "B");
    }
}
