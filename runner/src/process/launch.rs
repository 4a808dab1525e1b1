//! How the session's shell starts a background process, and the pipes we talk to it by.
//!
//! The shell gets one line (sent through the normal framing, so it runs at top level with
//! everything the session has):
//!
//! ```text
//! __ek_p=$'…command…'; { builtin trap '__ek_g=1' INT TERM HUP QUIT USR1 USR2;
//!   ( builtin trap - INT TERM HUP QUIT USR1 USR2; builtin printf 'r\n' >&9;
//!     builtin eval "$__ek_p" 9>&- ) <IN >OUT 2>ERR;
//!   builtin printf '%s\n' "$?" >&9; } 9>STATUS </dev/null >/dev/null 2>&1 &
//! builtin printf '%s\n' "$!"; builtin disown $!
//! ```
//!
//! - `&` under the session's `set -m` makes the job a process group of its own; its
//!   leader is the brace group (the *wrapper*), whose pid is printed.
//! - The wrapper traps the signals an agent may send (with an assignment: no command is
//!   looked up, so no function the agent defined runs), so when one ends the command it
//!   survives to report `$?` (128 + N) on the status pipe. Bash puts trapped signals back
//!   to their defaults in a subshell as it forks it, so the command (in the inner
//!   subshell) gets them with no window in which they are lost; it resets them again
//!   explicitly. Only SIGKILL ends the wrapper too: then the status pipe closes empty and
//!   the exit is reported as killed. (An *ignoring* trap would be inherited by the
//!   subshell until its own `trap -` ran: a signal sent right after the start would be
//!   lost.)
//!   A fork *inside* the command (bash starting a program) can still make the program miss
//!   a signal sent in that instant; `missed_signals` looks again and sends it once more.
//! - The subshell says `r` on the status pipe when it is about to run the command, and the
//!   start waits for it; the command itself runs with descriptor 9 closed, so it cannot
//!   write a status of its own.
//! - In PTY mode the command runs as `script -qfec 'stty rows R cols C; eval "$__EK_P"'
//!   /dev/null` (util-linux `script` allocates the terminal; `builtin command` with its
//!   absolute path, so no function or PATH entry of the agent's stands in for it). That is a
//!   new bash: exported variables, exported functions and the cwd carry over, plain shell
//!   variables and functions do not. A PTY merges stderr into stdout and echoes input.
//! - `disown` keeps bash from printing job notices into a later command's stderr.
//! - IN, OUT, ERR and STATUS are FIFOs in the session's private tmp dir, created here and
//!   unlinked as soon as both ends are open, so no later command can find them by name.

use crate::frame;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::net::unix::pipe;

/// How long the shell may take to open the pipes once it has the line.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// The signals the wrapper survives (it traps them) to report the exit status.
const SIGNALS: &str = "INT TERM HUP QUIT USR1 USR2";

/// The command's own subshell: a fatal signal is acted on at the next command boundary
/// (put back to its default and raised again, so the subshell ends by it and no later
/// command of the line runs), never swallowed while the subshell is between commands; the
/// programs it runs get the defaults back when they are exec'd. USR1/USR2 do not end the
/// subshell (a server it runs may use them), so it keeps waiting for its program.
const INNER_TRAPS: &str = "for __ek_s in INT TERM HUP QUIT; do builtin trap \"builtin trap - $__ek_s; builtin kill -$__ek_s \\$BASHPID\" $__ek_s; done; builtin trap 'builtin :' USR1 USR2;";

/// The four FIFOs of one process, before they are open.
pub(crate) struct Fifos {
    stdin: PathBuf,
    stdout: PathBuf,
    stderr: PathBuf,
    status: PathBuf,
}

/// Our ends of a started process's pipes.
pub(crate) struct Pipes {
    pub stdin: pipe::Sender,
    pub stdout: pipe::Receiver,
    pub stderr: pipe::Receiver,
    pub status: pipe::Receiver,
}

impl Fifos {
    /// Creates the FIFOs in `dir` (owned by the shell's user when it runs as another).
    pub fn create(dir: &Path, owner: Option<(u32, u32)>) -> std::io::Result<Fifos> {
        let name = frame::random_hex(8)?;
        let path = |what: &str| dir.join(format!(".ek-p{name}-{what}"));
        let f = Fifos {
            stdin: path("in"),
            stdout: path("out"),
            stderr: path("err"),
            status: path("st"),
        };
        for p in f.all() {
            if let Err(e) = crate::shell::mkfifo(p) {
                f.remove();
                return Err(e);
            }
            if let Some((uid, gid)) = owner {
                std::os::unix::fs::chown(p, Some(uid), Some(gid))?;
            }
        }
        Ok(f)
    }

    fn all(&self) -> [&PathBuf; 4] {
        [&self.stdin, &self.stdout, &self.stderr, &self.status]
    }

    /// The line the shell runs to start `command` on these FIFOs (under a pseudo-terminal
    /// of this size with `pty`).
    pub fn wrapper(&self, command: &str, pty: Option<Pty>) -> String {
        let p = |p: &PathBuf| p.display().to_string();
        wrapper_line(
            command,
            [
                &p(&self.stdin),
                &p(&self.stdout),
                &p(&self.stderr),
                &p(&self.status),
            ],
            pty,
        )
    }

    /// Opens our ends; each open blocks until the wrapper opens the other end, so this
    /// runs while the shell starts the job. Past [`OPEN_TIMEOUT`] (the job never opened
    /// them) the blocked opens are woken and it fails. The names are removed either way.
    pub fn open(self) -> tokio::task::JoinHandle<std::io::Result<Pipes>> {
        tokio::spawn(async move {
            let open_read =
                |p: PathBuf| tokio::task::spawn_blocking(move || std::fs::File::open(p));
            let stdin_path = self.stdin.clone();
            let stdin = tokio::task::spawn_blocking(move || {
                std::fs::OpenOptions::new().write(true).open(stdin_path)
            });
            let (out, err, status) = (
                open_read(self.stdout.clone()),
                open_read(self.stderr.clone()),
                open_read(self.status.clone()),
            );
            let all = async { (stdin.await, out.await, err.await, status.await) };
            let opened = tokio::time::timeout(OPEN_TIMEOUT, all).await;
            let result = match opened {
                Ok((Ok(Ok(i)), Ok(Ok(o)), Ok(Ok(e)), Ok(Ok(s)))) => Ok(Pipes {
                    stdin: pipe::Sender::from_file(i)?,
                    stdout: pipe::Receiver::from_file(o)?,
                    stderr: pipe::Receiver::from_file(e)?,
                    status: pipe::Receiver::from_file(s)?,
                }),
                Ok(_) => Err(std::io::Error::other(
                    "a pipe of the process could not be opened",
                )),
                Err(_) => {
                    self.wake();
                    Err(std::io::Error::other(
                        "the shell did not start the process within 10 s",
                    ))
                }
            };
            self.remove();
            result
        })
    }

    /// Opens the far ends without blocking so that our blocked opens return.
    fn wake(&self) {
        for p in [&self.stdout, &self.stderr, &self.status] {
            let _ = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(p);
        }
        let _ = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&self.stdin);
    }

    fn remove(&self) {
        for p in self.all() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The line the session's shell runs to start `command` with its stdin, stdout, stderr
/// and status on the FIFOs at `[stdin, stdout, stderr, status]`.
pub(crate) fn wrapper_line(command: &str, fifos: [&str; 4], pty: Option<Pty>) -> String {
    let [i, o, e, s] = fifos.map(frame::ansi_c_quote);
    let run = match pty {
        None => "builtin eval \"$__ek_p\" 9>&-".to_string(),
        Some(p) => format!(
            "__EK_P=\"$__ek_p\" TERM=xterm SHELL={PTY_SHELL} builtin command {} 9>&-",
            pty_starts(p)[0]
                .1
                .iter()
                .map(|w| frame::single_quote(w))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    };
    format!(
        "__ek_p={cmd}; {{ builtin trap '__ek_g=1' {SIGNALS}; ( {INNER_TRAPS} builtin printf 'r\\n' >&9; {run} ) <{i} >{o} 2>{e}; builtin printf '%s\\n' \"$?\" >&9; }} 9>{s} </dev/null >/dev/null 2>&1 & builtin printf '%s\\n' \"$!\"; builtin disown $! 2>/dev/null; builtin unset __ek_p",
        cmd = frame::ansi_c_quote(command),
    )
}

/// The shell `script` runs the command in (its `SHELL`).
const PTY_SHELL: &str = "/bin/bash";

/// The programs PTY mode starts before the command, each as (program, arguments as it
/// receives them): util-linux `script` by its absolute path, then the bash it runs the
/// command in. Runtime decisions let exactly these starts pass as execkit's own (see
/// `RuntimeDecider::expect_own`); the command's own programs are decided as usual.
pub(crate) fn pty_starts(Pty { rows, cols }: Pty) -> [(String, Vec<String>); 2] {
    let payload = format!(
        "builtin command stty rows {rows} cols {cols} 2>/dev/null; builtin eval \"$__EK_P\""
    );
    [
        (
            "/usr/bin/script".into(),
            vec![
                "/usr/bin/script".into(),
                "-qfec".into(),
                payload.clone(),
                "/dev/null".into(),
            ],
        ),
        (PTY_SHELL.into(), vec!["bash".into(), "-c".into(), payload]),
    ]
}

/// A pseudo-terminal's size, for PTY mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pty {
    pub rows: u16,
    pub cols: u16,
}

/// The wrapper's report on the status pipe: `$?` of the command, or nothing when the
/// wrapper was killed.
pub(crate) fn parse_status(text: &[u8]) -> Option<i32> {
    let text = std::str::from_utf8(text).ok()?;
    let text = text.strip_prefix(READY).unwrap_or(text);
    text.trim().parse().ok()
}

/// What the command's subshell writes on the status pipe once its signal dispositions are
/// its own, just before the command runs: a start returns only after it, so a signal
/// sent right after the start reaches the command.
pub(crate) const READY: &str = "r\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wrapper_quotes_the_command_and_every_path() {
        let dir = std::env::temp_dir().join(format!("ek-launch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = Fifos::create(&dir, None).unwrap();
        let w = f.wrapper("echo 'a b'; printf \"$HOME\"\n", None);
        assert!(
            w.starts_with("__ek_p=$'echo \\x27a b\\x27; printf \"$HOME\"\\x0a';"),
            "{w}"
        );
        assert!(w.contains("9>$'"));
        assert!(!w.contains('\n'));
        f.remove();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn status_reports_parse_or_say_killed() {
        assert_eq!(parse_status(b"0\n"), Some(0));
        assert_eq!(parse_status(b"r\n0\n"), Some(0));
        assert_eq!(parse_status(b"r\n"), None);
        assert_eq!(parse_status(b"143\n"), Some(143));
        assert_eq!(parse_status(b""), None);
        assert_eq!(parse_status(b"x"), None);
    }
}
