//! Standard output for the command-line interface: a reader that stops reading (`execkit
//! policy check --json -- ls | head -1`) ends the process quietly, as `SIGPIPE` ends a C
//! tool, instead of a panic from `println!`.
//!
//! The process keeps `SIGPIPE` ignored (Rust's default): a session's shell or helper pipe
//! closing must be an error to handle, never a signal that kills the server.

use std::io::Write;

/// Exit status of a process that `SIGPIPE` ended (128 + 13), as shells report it.
pub const CLOSED_PIPE_STATUS: i32 = 141;

/// Writes `args` to standard output; a closed pipe ends the process with
/// [`CLOSED_PIPE_STATUS`], another write error with status 1 and the error.
pub fn write(args: std::fmt::Arguments<'_>, newline: bool) {
    let mut out = std::io::stdout().lock();
    let r = out.write_fmt(args).and_then(|()| {
        if newline {
            out.write_all(b"\n")
        } else {
            Ok(())
        }
    });
    if let Err(e) = r {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(CLOSED_PIPE_STATUS);
        }
        eprintln!("execkit: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

/// `println!` that ends quietly when the reader is gone (see the module doc).
#[macro_export]
macro_rules! outln {
    () => { $crate::out::write(format_args!(""), true) };
    ($($t:tt)*) => { $crate::out::write(format_args!($($t)*), true) };
}

/// `print!` that ends quietly when the reader is gone (see the module doc).
#[macro_export]
macro_rules! out {
    ($($t:tt)*) => { $crate::out::write(format_args!($($t)*), false) };
}
