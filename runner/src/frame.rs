//! The framing protocol: how one command's result is cut out of the shell's streams.
//!
//! It needs nothing but the shell's stdin and its separate stdout and stderr byte
//! streams, so the same protocol can run over SSH or `docker exec`.
//!
//! One command is one line on stdin:
//!
//! ```text
//! __ek_c=$'…escaped command…'; __ek_i=0; trap "$__ek_T" INT; { eval "$__ek_c"; } </dev/null
//! \__ek_after $? SEQ
//! ```
//!
//! Bash parses a whole line before it runs any of it, so the command text is never left
//! in the pipe while it runs (only the fixed epilogue line is, which holds no secret). `eval` at top level keeps `declare`, `cd`, `export`,
//! functions and aliases in the session. When the command is over, `__ek_after` prints an
//! *ask* marker on stdout (`\n\x1fEK<token>:ask:<seq>\n`) and blocks reading a line from
//! stdin. Only then does the server mint a fresh 128-bit nonce and send it; the shell
//! ends stdout with `\n\x1fEK<nonce>:end:<status>:<len>:<PATH>:<cwd>\n\x1fEK<nonce>:fin\n`
//! (the shell's `PATH` after the command, prefixed by its length in bytes so that any
//! bytes in it parse unambiguously) and stderr
//! with `\n\x1fEK<nonce>:end\n`.
//!
//! The nonce does not exist while the command runs: it is in no variable, file, argument
//! or pipe the command could read, so no output it prints can end its result early or
//! leak into a later one. The ask marker carries only a per-session token; a command
//! that prints a forged one gains nothing unless the shell itself is at that moment
//! blocked reading its stdin, which the runner checks with the kernel
//! (`/proc/PID/syscall` and `/proc/PID/fd/0`) before it sends the nonce.
//!
//! What a command could still do is *reach the shell's input itself*: read the nonce meant
//! for the session from the shell's saved input, or write lines into it that no policy
//! decided. Three layers keep it out:
//! - the grammar refuses redirections that name descriptors 10 and above (where bash
//!   keeps the saved input), computed ones (`<&$fd`) and named ones (`{fd}>`), whatever
//!   the policies say;
//! - the shipped policy sets deny every path into process descriptors (`/proc/*/fd/*`,
//!   `/dev/fd/N`), literal or computed (`deny-descriptor-paths`);
//! - locally, the shell's stdin is a Unix socket, which cannot be opened again through
//!   `/proc` at all, so not even a program the policies let run can write into it.
//!
//! What the agent's own shell state can do to the epilogue. The epilogue runs in the shell
//! the agent's commands program, and a sourced file (which no decision reads) can set up
//! anything a command could. The cheap ways in are closed: the epilogue's name is quoted
//! on its line (`\__ek_after`: no alias replaces it) and the framing functions are
//! `readonly -f` (none redefines or unsets them). The rest cannot be closed from inside the
//! shell: a function named `builtin`, a `DEBUG`/`RETURN` trap under `set -T`, or a signal
//! trap fired by a background job runs *inside* the epilogue after the nonce is read, and
//! can print an end marker of its own. So nothing a decision depends on is taken from the
//! end marker where the kernel can say it: the session's cwd after a command is the
//! kernel's on every transport (locally `/proc`, the helper's, or the remote `/proc` read
//! by the control shell when the end was confirmed). The exit status and the `PATH` stay
//! the shell's report: the status is the agent's own, and the `PATH` only names the file
//! the *text* decision expects a bare program name to be; the runtime decision at each
//! program's start sees the file that really runs (locally, and remotely with the helper).
//!
//! How each transport meets the rest:
//! - **local**: the check reads this machine's `/proc`; the cwd is the kernel's; output
//!   of background jobs goes to pipes that are replaced after a command leaves jobs
//!   behind (`shell.rs`).
//! - **SSH and Docker**: the same framing over a channel or an attached `docker exec`;
//!   the check runs on a second, persistent control shell on the same connection that
//!   reads the remote `/proc` (`remote.rs`); streams rotate to FIFOs on the remote host
//!   read by channels of their own. The shell's stdin there is a pipe owned by `sshd` or
//!   the container runtime, which a process of the same user can reopen through `/proc`:
//!   only the grammar and the policies above stand in the way, as everywhere the remote
//!   side has no sandbox.
//! - **A POSIX `sh`** (a target without bash, where the operator allowed it): the same
//!   markers and checks ([`Dialect::Posix`]); commands are single-quoted instead of
//!   `$'…'`, and `command` stands in for `builtin`.

use memchr::memmem;

/// The shell the framing talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// bash (every local session; remote ones wherever bash exists).
    Bash,
    /// A POSIX `sh` (dash, busybox ash), where the operator allowed it for a target that
    /// has no bash: no `$'…'` quoting, no `builtin` (`command` instead), no job control
    /// without a terminal, and no bash syntax in commands.
    Posix,
}

impl Dialect {
    /// The program line that starts the persistent shell.
    pub fn program(self) -> &'static str {
        match self {
            Dialect::Bash => "bash --noprofile --norc",
            Dialect::Posix => "sh",
        }
    }
}

/// Shell code sent once, before any command, to set the session up.
///
/// With `exports` (a file in the session's private directory), bash writes its exported
/// variables there (`export -p`, a builtin: no fork) once ready and when it exits — an
/// `exit`, `set -e`, a fork refused at the process limit all run the `EXIT` trap — so that
/// a restarted shell can get them back. Nothing is written per command.
pub fn init_script(token: &str, dialect: Dialect, exports: Option<&str>) -> String {
    if dialect == Dialect::Posix {
        return posix_init_script(token);
    }
    let save = exports
        .map(|p| format!("builtin export -p >| {} 2>/dev/null", single_quote(p)))
        .unwrap_or_else(|| ":".into());
    // `set -m` puts every job (foreground too) in its own process group, so a timeout can
    // signal the command's group without touching the shell.
    format!(
        concat!(
            "set +o history 2>/dev/null; unset HISTFILE; set -m; shopt -s expand_aliases; trap '' INT\n",
            "__ek_T={interrupted}\n",
            "__ek_after() {{\n",
            "  local __ek_s=$1 __ek_n LC_ALL=C\n",
            "  trap '' INT\n",
            "  [[ $__ek_i == 1 ]] && __ek_s=130\n",
            "  builtin printf '\\n\\037EK%s:ask:%s\\n' '{token}' \"$2\"\n",
            "  IFS= builtin read -r __ek_n || builtin exit 97\n",
            "  builtin printf '\\n\\037EK%s:end:%s:%s:%s:' \"$__ek_n\" \"$__ek_s\" \"${{#PATH}}\" \"$PATH\"\n",
            "  builtin pwd -P 2>/dev/null || builtin printf '\\n'\n",
            "  builtin printf '\\037EK%s:fin\\n' \"$__ek_n\"\n",
            "  builtin printf '\\n\\037EK%s:end\\n' \"$__ek_n\" >&2\n",
            "}}\n",
            "__ek_save() {{ {save}; }}\n",
            "__ek_save; trap __ek_save EXIT; readonly -f __ek_after __ek_save\n",
            "builtin printf '\\037EK%s:ready:%s\\n' '{token}' \"$$\"\n",
        ),
        token = token,
        save = save,
        interrupted = INTERRUPTED,
    )
}

/// The init script for a POSIX `sh`: the same markers; `command` keeps functions the
/// commands define from standing in for `printf`, `read` and `pwd` (aliases cannot: the
/// function body was parsed before any command ran).
fn posix_init_script(token: &str) -> String {
    format!(
        concat!(
            "set -m 2>/dev/null; trap '' INT\n",
            "__ek_T={interrupted}\n",
            "__ek_after() {{\n",
            "  __ek_s=$1\n",
            "  trap '' INT\n",
            "  [ \"$__ek_i\" = 1 ] && __ek_s=130\n",
            "  command printf '\\n\\037EK%s:ask:%s\\n' '{token}' \"$2\"\n",
            "  IFS= command read -r __ek_n || exit 97\n",
            "  command printf '\\n\\037EK%s:end:%s:%s:%s:' \"$__ek_n\" \"$__ek_s\" \"${{#PATH}}\" \"$PATH\"\n",
            "  command pwd -P 2>/dev/null || command printf '\\n'\n",
            "  command printf '\\037EK%s:fin\\n' \"$__ek_n\"\n",
            "  command printf '\\n\\037EK%s:end\\n' \"$__ek_n\" >&2\n",
            "}}\n",
            "command printf '\\037EK%s:ready:%s\\n' '{token}' \"$$\"\n",
        ),
        token = token,
        interrupted = INTERRUPTED,
    )
}

/// The `INT` trap while a command runs, set once in a variable (`__ek_T`) so that each
/// command's line carries only its name: bash reads its input a byte at a time, so every
/// byte of a command's frame is a system call. It marks the command interrupted and leaves
/// whatever loop or function the command is in, back to the epilogue.
const INTERRUPTED: &str = "'__ek_i=1; break 100000 2>/dev/null; return 130 2>/dev/null'";

/// The marker the shell prints once the init script has run, up to the shell's pid (in
/// its own PID namespace) and a newline.
pub fn ready_marker(token: &str) -> Vec<u8> {
    format!("\x1fEK{token}:ready:").into_bytes()
}

/// The ask marker for command `seq`.
pub fn ask_marker(token: &str, seq: u64) -> Vec<u8> {
    format!("\n\x1fEK{token}:ask:{seq}\n").into_bytes()
}

/// Start of the stdout end marker for a nonce.
pub fn stdout_end_prefix(nonce: &str) -> Vec<u8> {
    format!("\n\x1fEK{nonce}:end:").into_bytes()
}

/// Terminator of the stdout end marker.
pub fn stdout_fin(nonce: &str) -> Vec<u8> {
    format!("\x1fEK{nonce}:fin\n").into_bytes()
}

/// The stderr end marker.
pub fn stderr_end(nonce: &str) -> Vec<u8> {
    format!("\n\x1fEK{nonce}:end\n").into_bytes()
}

/// Quotes text as a bash ANSI-C string (`$'…'`) that holds no newline or control byte,
/// so the whole frame stays on one line whatever the command contains.
///
/// `echo 'a'⏎` becomes `$'echo \x27a\x27\x0a'` (tested below).
pub fn ansi_c_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    out.push_str("$'");
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || b" ./,_-=+:@%^&|;<>(){}[]*?~#!\"`$".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out.push('\'');
    out
}

/// The stdin lines that run `command` as command number `seq`. `prefix` is shell code
/// the session runs first (a stream rotation), or empty.
///
/// The epilogue is a line of its own: when a foreground job dies of SIGINT, bash abandons
/// the rest of the current line, and the epilogue must run even then.
pub fn command_line(command: &str, seq: u64, prefix: &str, dialect: Dialect) -> String {
    let quoted = match dialect {
        Dialect::Bash => ansi_c_quote(command),
        // No `$'…'` in POSIX sh: single quotes, which may span lines; the shell still
        // reads the whole command before it runs any of it.
        Dialect::Posix => single_quote(command),
    };
    format!(
        "{prefix}__ek_c={quoted}; __ek_i=0; trap \"$__ek_T\" INT; {{ eval \"$__ek_c\"; }} </dev/null\n\\__ek_after $? {seq}\n"
    )
}

/// Quotes text for a POSIX shell: `'…'`, with each `'` as `'\''`.
pub fn single_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// A fresh random hex string of `bytes` random bytes.
pub fn random_hex(bytes: usize) -> std::io::Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(hex::encode(buf))
}

/// Finds a byte string across chunk boundaries and hands back the bytes before it.
///
/// Bytes that could still be the start of the needle are held back until the next push.
#[derive(Debug)]
pub struct Splitter {
    needle: Vec<u8>,
    held: Vec<u8>,
}

/// What a push found.
#[derive(Debug, PartialEq, Eq)]
pub enum Split {
    /// No needle yet: these bytes are data.
    Data(Vec<u8>),
    /// The needle: `before` is data, `after` is what followed it in this push.
    Found {
        /// Data before the needle.
        before: Vec<u8>,
        /// Bytes after the needle.
        after: Vec<u8>,
    },
}

impl Splitter {
    /// A splitter looking for `needle` (non-empty).
    pub fn new(needle: Vec<u8>) -> Splitter {
        Splitter {
            needle,
            held: Vec::new(),
        }
    }

    /// Bytes held back because they could begin the needle.
    pub fn take_held(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.held)
    }

    /// Feeds bytes.
    pub fn push(&mut self, bytes: &[u8]) -> Split {
        self.held.extend_from_slice(bytes);
        if let Some(at) = memmem::find(&self.held, &self.needle) {
            let after = self.held.split_off(at + self.needle.len());
            self.held.truncate(at);
            let before = std::mem::take(&mut self.held);
            return Split::Found { before, after };
        }
        // Keep the longest suffix that is a prefix of the needle.
        let keep = longest_prefix_suffix(&self.held, &self.needle);
        let rest = self.held.split_off(self.held.len() - keep);
        Split::Data(std::mem::replace(&mut self.held, rest))
    }
}

/// Feeds `chunks` to a [`Splitter`] for `needle` and returns the data before the first
/// needle, or `None` if there is none (for the framing fuzz target, which compiles this
/// file on its own, and the tests).
#[allow(dead_code)]
pub fn first_marker<'a>(
    needle: &[u8],
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> Option<Vec<u8>> {
    let mut s = Splitter::new(needle.to_vec());
    let mut data = Vec::new();
    for c in chunks {
        match s.push(c) {
            Split::Data(d) => data.extend(d),
            Split::Found { before, .. } => {
                data.extend(before);
                return Some(data);
            }
        }
    }
    None
}

fn longest_prefix_suffix(hay: &[u8], needle: &[u8]) -> usize {
    let max = needle.len().saturating_sub(1).min(hay.len());
    (1..=max)
        .rev()
        .find(|&k| hay[hay.len() - k..] == needle[..k])
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_keeps_one_line() {
        let q = ansi_c_quote("a\nb\tc'd\\e\x1b");
        assert!(!q.contains('\n') && !q.contains('\t') && !q.contains('\x1b'));
        assert_eq!(q, "$'a\\x0ab\\x09c\\x27d\\x5ce\\x1b'");
    }

    #[test]
    fn single_quote_survives_quotes() {
        assert_eq!(single_quote("it's"), "'it'\\''s'");
    }

    #[test]
    fn first_marker_agrees_with_a_plain_search_for_every_chunk_size() {
        let input = b"abc\n\x1fEKn:end:tail \n\x1fEKn:end: again";
        let needle = b"\n\x1fEKn:end:";
        for step in 1..input.len() {
            assert_eq!(
                first_marker(needle, input.chunks(step)).as_deref(),
                Some(&b"abc"[..]),
                "step {step}"
            );
        }
        assert_eq!(first_marker(needle, [&b"no marker"[..]]), None);
    }

    #[test]
    fn splitter_finds_needle_across_chunks() {
        let mut s = Splitter::new(b"\nEND\n".to_vec());
        let mut data = Vec::new();
        for chunk in [&b"hello\nE"[..], b"NDX\n", b"more\n", b"EN", b"D\nafter"] {
            match s.push(chunk) {
                Split::Data(d) => data.extend(d),
                Split::Found { before, after } => {
                    data.extend(before);
                    assert_eq!(after, b"after");
                    assert_eq!(data, b"hello\nENDX\nmore");
                    return;
                }
            }
        }
        panic!("needle not found");
    }
}
