//! Whom a signal-sending command aims at.
//!
//! `kill 1234` and `kill %1` aim at one process or job the agent can name; `kill -9 -1`
//! (every process), `kill 1` (init), `kill 0` / `kill -- -PGID` (whole process groups),
//! `pkill NAME`, `killall -u USER`, `fuser -k FILE` aim at processes the session did not
//! start. The classes go to Cedar as `context.signal_targets`, so a policy can forbid the
//! broad ones without parsing kill's syntax itself.

use execkit_grammar::Command;
use std::collections::BTreeSet;

/// One kind of signal target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SignalTarget {
    /// One literal pid.
    Pid,
    /// A job of the shell (`%1`).
    Job,
    /// A pid that is not literal (`$PID`, `$(pgrep x)`).
    Dynamic,
    /// `-1`: every process the caller may signal.
    All,
    /// Pid 1.
    Init,
    /// `0`: the caller's own process group.
    OwnGroup,
    /// `-PGID`, `pkill -g`: a whole process group.
    Group,
    /// Processes matched by name or command line (`pkill`, `killall`).
    ByName,
    /// Processes of a user (`-u`).
    ByUser,
    /// Processes on a terminal (`-t`).
    ByTerminal,
    /// Processes of a session (`pkill -s`).
    BySession,
    /// Children of a process (`pkill -P`).
    ByParent,
    /// Processes using a file (`fuser -k`).
    ByFile,
    /// The client of a window (`xkill`).
    ByWindow,
    /// The session's parent (`$PPID`): the server or the remote helper that runs it.
    Parent,
}

impl SignalTarget {
    /// The string policies see.
    pub fn as_str(self) -> &'static str {
        match self {
            SignalTarget::Pid => "pid",
            SignalTarget::Job => "job",
            SignalTarget::Dynamic => "dynamic",
            SignalTarget::All => "all",
            SignalTarget::Init => "init",
            SignalTarget::OwnGroup => "own_group",
            SignalTarget::Group => "group",
            SignalTarget::ByName => "by_name",
            SignalTarget::ByUser => "by_user",
            SignalTarget::ByTerminal => "by_terminal",
            SignalTarget::BySession => "by_session",
            SignalTarget::ByParent => "by_parent",
            SignalTarget::ByFile => "by_file",
            SignalTarget::ByWindow => "by_window",
            SignalTarget::Parent => "parent",
        }
    }
}

/// The targets of `cmd` (empty for a program that sends no signals).
pub fn targets(cmd: &Command) -> BTreeSet<SignalTarget> {
    let words: Vec<Option<&str>> = cmd
        .args
        .iter()
        .map(|w| w.is_literal().then_some(w.value.as_str()))
        .collect();
    let mut out = match cmd.program.entity_id().as_str() {
        "kill" => kill(&words),
        "strace" | "ltrace" | "gdb" | "gcore" | "reptyr" => attached(&words),
        "pkill" | "killall" | "skill" | "snice" => by_options(&words),
        "killall5" => BTreeSet::from([SignalTarget::All]),
        "fuser" if words.iter().flatten().any(|w| is_flag_with(w, 'k')) => {
            BTreeSet::from([SignalTarget::ByFile])
        }
        "xkill" => BTreeSet::from([SignalTarget::ByWindow]),
        _ => return BTreeSet::new(),
    };
    // `kill -9 $PPID`, `strace -p "$PPID"`: the process that runs the session.
    if cmd
        .args
        .iter()
        .any(|w| !w.is_literal() && w.raw.contains("PPID"))
    {
        out.insert(SignalTarget::Parent);
    }
    out
}

/// Debuggers and tracers attached to running processes (`strace -p PID`, `gdb -p PID`,
/// `gcore PID`, `reptyr PID`): the pids given, judged like `kill`'s targets. Starting a
/// program under them (`strace ./app`) aims at nothing running.
fn attached(words: &[Option<&str>]) -> BTreeSet<SignalTarget> {
    let mut out = BTreeSet::new();
    let mut i = 0;
    while i < words.len() {
        let value = match words[i] {
            Some("-p" | "--pid" | "--attach") => {
                i += 1;
                words.get(i).copied()
            }
            Some(w) => match w
                .strip_prefix("--pid=")
                .or_else(|| w.strip_prefix("--attach="))
                .or_else(|| w.strip_prefix("-p").filter(|r| !r.is_empty()))
            {
                Some(v) => Some(Some(v)),
                // `gcore PID`, `reptyr PID`, `gdb PROG PID`: bare numbers are pids.
                None if w.parse::<i64>().is_ok() => Some(Some(w)),
                None => {
                    i += 1;
                    continue;
                }
            },
            None => Some(None),
        };
        match value {
            Some(Some(v)) => {
                out.insert(target(v));
            }
            Some(None) => {
                out.insert(SignalTarget::Dynamic);
            }
            None => {}
        }
        i += 1;
    }
    out
}

/// A short-option cluster (`-9k`, `-km`) containing `letter`.
fn is_flag_with(w: &str, letter: char) -> bool {
    w.starts_with('-') && !w.starts_with("--") && w[1..].contains(letter)
}

/// `kill [-s SIG | -n NUM | -SIG] [--] TARGET...`.
fn kill(words: &[Option<&str>]) -> BTreeSet<SignalTarget> {
    let mut out = BTreeSet::new();
    let mut i = 0;
    let mut options_done = false;
    let mut signal_given = false;
    while i < words.len() {
        let Some(w) = words[i] else {
            out.insert(SignalTarget::Dynamic);
            i += 1;
            continue;
        };
        if !options_done {
            match w {
                "--" => {
                    options_done = true;
                    i += 1;
                    continue;
                }
                "-s" | "-n" | "--signal" => {
                    signal_given = true;
                    i += 2;
                    continue;
                }
                "-l" | "-L" | "--list" | "--table" => return out,
                _ if w.starts_with('-') && !signal_given => {
                    // The first dash word is the signal (`-9`, `-KILL`, `-SIGTERM`).
                    signal_given = true;
                    i += 1;
                    continue;
                }
                _ => {}
            }
        }
        out.insert(target(w));
        i += 1;
    }
    out
}

/// One literal target of `kill`.
fn target(w: &str) -> SignalTarget {
    if w.starts_with('%') {
        return SignalTarget::Job;
    }
    match w.parse::<i64>() {
        Ok(-1) => SignalTarget::All,
        Ok(0) => SignalTarget::OwnGroup,
        Ok(1) => SignalTarget::Init,
        Ok(n) if n < 0 => SignalTarget::Group,
        Ok(_) => SignalTarget::Pid,
        // A name (`kill nginx` fails in bash) or garbage: not one known process.
        Err(_) => SignalTarget::ByName,
    }
}

/// pkill/killall/skill: the name pattern, and selection options.
fn by_options(words: &[Option<&str>]) -> BTreeSet<SignalTarget> {
    let mut out = BTreeSet::from([SignalTarget::ByName]);
    for w in words.iter().flatten() {
        let t = match *w {
            "-u" | "-U" | "--euid" | "--uid" | "--user" => SignalTarget::ByUser,
            "-t" | "--terminal" | "--tty" => SignalTarget::ByTerminal,
            "-s" | "--session" => SignalTarget::BySession,
            "-P" | "--parent" => SignalTarget::ByParent,
            "-g" | "--pgroup" | "--process-group" => SignalTarget::Group,
            _ if w.starts_with("--user=")
                || w.starts_with("--euid=")
                || w.starts_with("--uid=") =>
            {
                SignalTarget::ByUser
            }
            _ => continue,
        };
        out.insert(t);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use execkit_grammar::{parse, ParseOptions};

    fn of(script: &str) -> Vec<&'static str> {
        let s = parse(script, &ParseOptions::new(Some("/work"), "/home/agent"))
            .unwrap_or_else(|e| panic!("{e}"));
        targets(&s.commands[0])
            .into_iter()
            .map(SignalTarget::as_str)
            .collect()
    }

    #[test]
    fn kill_targets() {
        assert_eq!(of("kill 1234"), ["pid"]);
        assert_eq!(of("kill -9 1234 %2"), ["pid", "job"]);
        assert_eq!(of("kill -9 -1"), ["all"]);
        assert_eq!(of("kill -s KILL -- -1"), ["all"]);
        assert_eq!(of("kill -TERM 1"), ["init"]);
        assert_eq!(of("kill 0"), ["own_group"]);
        assert_eq!(of("kill -- -4321"), ["group"]);
        assert_eq!(of("kill -9 -4321"), ["group"]);
        assert_eq!(of("kill \"$PID\""), ["dynamic"]);
        assert!(of("kill -l").is_empty());
        assert_eq!(of("pkill -u root"), ["by_name", "by_user"]);
        assert_eq!(of("killall node"), ["by_name"]);
        assert_eq!(of("killall5 -9"), ["all"]);
        assert_eq!(of("fuser -k 8080/tcp"), ["by_file"]);
        assert!(of("fuser -v 8080/tcp").is_empty());
        assert!(of("ls -la").is_empty());
    }
}
