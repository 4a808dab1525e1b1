//! The shell's exported variables, kept so that a restarted shell gets them back.
//!
//! The shell writes bash's `export -p` into the session's private directory ([`FILE`])
//! when it starts and when it exits (its `EXIT` trap: `exit`, `set -e`, a fork refused at
//! a limit; `restart` asks a live shell to exit first). A restart reads the last one,
//! compares it with the fresh shell's and restores what differs with one command (`cd …
//! && export NAME=$'…'`), which the policies decide like any other: a file the agent could
//! have written says nothing a command of its own could not.

/// The file in the session's private directory.
pub(crate) const FILE: &str = ".ek-exports";

/// Variables that belong to the shell or the session, never restored.
const OWN: &[&str] = &["PWD", "OLDPWD", "SHLVL", "_", "TMPDIR", "HOME"];

/// Parses bash's `export -p`: `declare -x NAME="value"` lines, where a value may span
/// lines and escapes `"`, `\`, `$` and `` ` `` with a backslash, or `declare -x
/// NAME=$'value'` where it holds control characters (ANSI-C escapes). Names without a
/// value and lines that are not declarations are skipped.
///
/// For example `declare -x A="1"` gives `("A", "1")` and `declare -x N=$'a\nb'` gives
/// `("N", "a⏎b")` (tested below, also against bash itself).
pub(crate) fn parse(text: &str) -> Vec<(String, String)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let line_end = memchr::memchr(b'\n', &bytes[at..]).map_or(bytes.len(), |n| at + n);
        let line = &text[at..line_end];
        let next_line = (line_end + 1).min(bytes.len());
        let Some((flags, tail)) = line
            .strip_prefix("declare -")
            .and_then(|d| d.split_once(' '))
        else {
            at = next_line;
            continue;
        };
        let name_len = tail.find('=').unwrap_or(tail.len());
        let name = &tail[..name_len];
        // Where the value starts, in `text`.
        let value_at = line_end - tail.len() + name_len + 1;
        let (value, end) = match tail.get(name_len..name_len + 2) {
            Some("=\"") => double_quoted(&bytes[value_at + 1..]),
            Some("=$") if tail.get(name_len + 2..name_len + 3) == Some("'") => {
                ansi_c_quoted(&bytes[value_at + 2..])
            }
            _ => {
                at = next_line;
                continue;
            }
        };
        let Some(end) = end else { break };
        let value_start = if tail.get(name_len..name_len + 2) == Some("=\"") {
            value_at + 1
        } else {
            value_at + 2
        };
        if flags.contains('x') && valid_name(name) {
            out.push((
                name.to_string(),
                String::from_utf8_lossy(&value).into_owned(),
            ));
        }
        let after = value_start + end + 1;
        at = memchr::memchr(b'\n', &bytes[after..]).map_or(bytes.len(), |n| after + n + 1);
    }
    out
}

/// The body of a `"…"` value up to its closing quote: the value and the quote's offset.
fn double_quoted(b: &[u8]) -> (Vec<u8>, Option<usize>) {
    let mut v = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if i + 1 < b.len() && matches!(b[i + 1], b'"' | b'\\' | b'$' | b'`') => {
                v.push(b[i + 1]);
                i += 2;
            }
            b'"' => return (v, Some(i)),
            c => {
                v.push(c);
                i += 1;
            }
        }
    }
    (v, None)
}

/// The body of a `$'…'` value up to its closing quote, with bash's ANSI-C escapes read.
fn ansi_c_quoted(b: &[u8]) -> (Vec<u8>, Option<usize>) {
    let mut v = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\'' => return (v, Some(i)),
            b'\\' if i + 1 < b.len() => {
                i += 1;
                let c = b[i];
                i += 1;
                match c {
                    b'a' => v.push(7),
                    b'b' => v.push(8),
                    b'e' | b'E' => v.push(0x1b),
                    b'f' => v.push(0x0c),
                    b'n' => v.push(b'\n'),
                    b'r' => v.push(b'\r'),
                    b't' => v.push(b'\t'),
                    b'v' => v.push(0x0b),
                    b'0'..=b'7' => {
                        let mut n = u32::from(c - b'0');
                        for _ in 0..2 {
                            match b.get(i) {
                                Some(d @ b'0'..=b'7') => {
                                    n = n * 8 + u32::from(d - b'0');
                                    i += 1;
                                }
                                _ => break,
                            }
                        }
                        v.push((n & 0xff) as u8);
                    }
                    b'x' => {
                        let mut n = 0u32;
                        let mut digits = 0;
                        while digits < 2 {
                            match b.get(i).and_then(|d| (*d as char).to_digit(16)) {
                                Some(d) => {
                                    n = n * 16 + d;
                                    i += 1;
                                    digits += 1;
                                }
                                None => break,
                            }
                        }
                        v.push(n as u8);
                    }
                    b'c' => {
                        if let Some(&x) = b.get(i) {
                            v.push(x & 0x1f);
                            i += 1;
                        }
                    }
                    other => v.push(other),
                }
            }
            c => {
                v.push(c);
                i += 1;
            }
        }
    }
    (v, None)
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
        let text = "declare -x A=\"1\"\ndeclare -x B=\"x\\\"y \\$z \\`c\\` \\\\\"\ndeclare -x C\ndeclare -rx R=\"ro\"\ndeclare -x M=\"two\nlines\"\ndeclare -x Z=\"\"\ndeclare -x N=$'a\\nb\\t\\'q\\' \\001 \\x41'\n";
        let v = parse(text);
        let want: Vec<(String, String)> = [
            ("A", "1"),
            ("B", "x\"y $z `c` \\"),
            ("R", "ro"),
            ("M", "two\nlines"),
            ("Z", ""),
            ("N", "a\nb\t'q' \u{1} A"),
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
            .arg("export Q='it'\"'\"'s \"q\" $x `y` \\ end' NL=$'a\\nb\\x01\\x1b[0m' E=; export -p")
            .env_clear()
            .output()
            .unwrap();
        let v = parse(&String::from_utf8_lossy(&out.stdout));
        let get = |n: &str| v.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("Q"), Some("it's \"q\" $x `y` \\ end"));
        assert_eq!(get("NL"), Some("a\nb\u{1}\u{1b}[0m"));
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
