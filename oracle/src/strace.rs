//! Parsing `strace -f -y --pidns-translation` output into syscalls.
//!
//! Only what the oracle needs: the pid, the syscall name, its arguments split at the top
//! level (strings decoded from strace's C escapes) and its return value. Lines split by
//! `<unfinished ...>` / `<... NAME resumed>` are joined per pid first, so a parse never
//! sees half a call. Malformed lines are kept as errors rather than dropped, so a trace
//! the parser does not understand shows up instead of hiding an effect.

use std::collections::HashMap;

/// One completed system call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Syscall {
    /// The tracee's pid, in strace's namespace.
    pub pid: u32,
    /// `openat`, `execve`, ...
    pub name: String,
    /// The arguments as written, split at top-level commas.
    pub args: Vec<String>,
    /// The return value as written (`0`, `3</work/x>`, `-1 ENOENT (No such file...)`,
    /// `2 /* 13764 in strace's PID NS */`).
    pub ret: String,
}

impl Syscall {
    /// True if the call returned a non-negative value.
    pub fn succeeded(&self) -> bool {
        !self.ret.starts_with('-') && !self.ret.starts_with('?')
    }

    /// The pid a `clone`/`fork` returned, in strace's namespace (`2 /* 13764 in strace's
    /// PID NS */` gives 13764).
    pub fn child_pid(&self) -> Option<u32> {
        if let Some(at) = self.ret.find("/* ") {
            let rest = &self.ret[at + 3..];
            return rest.split_whitespace().next()?.parse().ok();
        }
        self.ret.split_whitespace().next()?.parse().ok()
    }
}

/// A line of the trace the parser could not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// The line.
    pub line: String,
}

/// Every completed call in `text`, in order, and the lines that could not be read.
pub fn parse(text: &str) -> (Vec<Syscall>, Vec<Unreadable>) {
    let mut pending: HashMap<u32, String> = HashMap::new();
    let mut calls = Vec::new();
    let mut bad = Vec::new();
    for line in text.lines() {
        let Some((pid, rest)) = line.split_once(' ') else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            bad.push(Unreadable { line: line.into() });
            continue;
        };
        let rest = rest.trim_start();
        // Signals, exits and kills are not calls.
        if rest.starts_with("---") || rest.starts_with("+++") {
            continue;
        }
        let full = if let Some(head) = rest.strip_suffix(" <unfinished ...>") {
            pending.insert(pid, head.to_string());
            continue;
        } else if let Some(tail) = rest.strip_prefix("<... ") {
            let Some((_, after)) = tail.split_once(" resumed>") else {
                bad.push(Unreadable { line: line.into() });
                continue;
            };
            match pending.remove(&pid) {
                Some(head) => format!("{head}{after}"),
                None => {
                    bad.push(Unreadable { line: line.into() });
                    continue;
                }
            }
        } else {
            rest.to_string()
        };
        match call(pid, &full) {
            Some(c) => calls.push(c),
            None => bad.push(Unreadable { line: line.into() }),
        }
    }
    (calls, bad)
}

/// `name(args) = ret`.
fn call(pid: u32, text: &str) -> Option<Syscall> {
    let open = text.find('(')?;
    let name = text[..open].to_string();
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return None;
    }
    let (args, after) = split_args(&text[open + 1..])?;
    let ret = after.trim_start().strip_prefix('=')?.trim().to_string();
    Some(Syscall {
        pid,
        name,
        args,
        ret,
    })
}

/// Splits `a, "b,c", {x, y}) = 0` at top-level commas up to the closing parenthesis;
/// returns the arguments and what follows the parenthesis.
fn split_args(s: &str) -> Option<(Vec<String>, &str)> {
    let mut args = Vec::new();
    let mut depth = 0usize;
    let mut in_str = false;
    let mut escaped = false;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        if in_str {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '(' | '[' | '{' | '<' => depth += 1,
            ']' | '}' | '>' => depth = depth.saturating_sub(1),
            ')' if depth == 0 => {
                let last = s[start..i].trim();
                if !last.is_empty() {
                    args.push(last.to_string());
                }
                return Some((args, &s[i + 1..]));
            }
            ')' => depth -= 1,
            ',' if depth == 0 => {
                args.push(s[start..i].trim().to_string());
                start = i + 1;
            }
            _ => {}
        }
    }
    None
}

/// The first string literal in `arg`, decoded (`"a\"b\303\251"` → `a"bé`); `None` when
/// there is none or strace truncated it (`"..."...`).
pub fn string(arg: &str) -> Option<String> {
    let start = arg.find('"')?;
    let mut bytes = Vec::new();
    let mut chars = arg[start + 1..].chars().peekable();
    loop {
        let c = chars.next()?;
        match c {
            '"' => {
                // `"abc"...` means strace cut the string: not the real value.
                if chars.peek() == Some(&'.') {
                    return None;
                }
                return Some(String::from_utf8_lossy(&bytes).into_owned());
            }
            '\\' => {
                let e = chars.next()?;
                match e {
                    'n' => bytes.push(b'\n'),
                    't' => bytes.push(b'\t'),
                    'r' => bytes.push(b'\r'),
                    'v' => bytes.push(0x0b),
                    'f' => bytes.push(0x0c),
                    'x' => {
                        let h: String = [chars.next()?, chars.next()?].iter().collect();
                        bytes.push(u8::from_str_radix(&h, 16).ok()?);
                    }
                    '0'..='7' => {
                        let mut v = e.to_digit(8)?;
                        for _ in 0..2 {
                            match chars.peek().and_then(|d| d.to_digit(8)) {
                                Some(d) => {
                                    v = v * 8 + d;
                                    chars.next();
                                }
                                None => break,
                            }
                        }
                        bytes.push(u8::try_from(v).ok()?);
                    }
                    other => {
                        let mut b = [0u8; 4];
                        bytes.extend_from_slice(other.encode_utf8(&mut b).as_bytes());
                    }
                }
            }
            other => {
                let mut b = [0u8; 4];
                bytes.extend_from_slice(other.encode_utf8(&mut b).as_bytes());
            }
        }
    }
}

/// The path of a descriptor decorated by `-y` (`3</work/sub>`), or `None` for `AT_FDCWD`.
pub fn fd_path(arg: &str) -> Option<String> {
    let open = arg.find('<')?;
    let close = arg.rfind('>')?;
    (close > open).then(|| arg[open + 1..close].to_string())
}

/// Every string of an array argument (`["git", "log"]`).
pub fn strings(arg: &str) -> Vec<String> {
    let inner = arg.trim().trim_start_matches('[').trim_end_matches(']');
    split_args(&format!("{inner})"))
        .map(|(a, _)| a.iter().filter_map(|s| string(s)).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_unfinished_calls_and_decodes() {
        let t = "13716 execve(\"/bin/sh\", [\"sh\", \"-c\", \"touch /etc/y\"], 0x7 /* 38 vars */ <unfinished ...>\n\
                 13712 <... clone3 resumed>)             = 6\n\
                 13716 <... execve resumed>)             = 0\n\
                 13717 openat(AT_FDCWD, \"/etc/y\", O_WRONLY|O_CREAT, 0666) = -1 EROFS (Read-only file system)\n\
                 13764 clone(child_stack=NULL, flags=SIGCHLD, child_tidptr=0x7f) = 3 /* 13765 in strace's PID NS */\n\
                 13712 --- SIGCHLD {si_signo=SIGCHLD} ---\n\
                 13712 +++ exited with 0 +++\n";
        let (calls, bad) = parse(t);
        // The clone3 resumed without its start is unreadable, not silently dropped.
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert_eq!(calls.len(), 3);
        assert_eq!(calls[0].name, "execve");
        assert_eq!(string(&calls[0].args[0]).as_deref(), Some("/bin/sh"));
        assert_eq!(strings(&calls[0].args[1]), ["sh", "-c", "touch /etc/y"]);
        assert!(calls[0].succeeded());
        assert!(!calls[1].succeeded());
        assert_eq!(calls[2].child_pid(), Some(13765));
    }

    #[test]
    fn strings_with_escapes_and_truncation() {
        assert_eq!(
            string(r#""a\"b,c\303\251\n""#).as_deref(),
            Some("a\"b,cé\n")
        );
        assert_eq!(string(r#""abc"..."#), None);
        assert_eq!(fd_path("3</work/sub>").as_deref(), Some("/work/sub"));
        assert_eq!(fd_path("AT_FDCWD"), None);
        assert_eq!(strings(r#"["a,b", "c\"]"]"#), ["a,b", "c\"]"]);
    }
}
