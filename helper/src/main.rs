//! `execkit-helper`: see the library's documentation (`execkit_helper`).
//!
//! ```text
//! execkit-helper --version      one line: version, protocol, architecture
//! execkit-helper shell NONCE    a session's shell, framed on stdin/stdout
//! execkit-helper guard          PID 1 of an ephemeral container
//! execkit-helper probe          what this kernel and account give a session (JSON)
//! ```

// The helper is system calls end to end (clone, mount, prctl, poll, signalfd); every
// unsafe block carries a SAFETY comment (clippy::undocumented_unsafe_blocks).
#![allow(unsafe_code)]

mod broker;
mod connects;
mod guard;
mod probe;
mod relay;
mod spawn;
mod supervisor;
mod sys;
mod tree;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["--version"] => {
            println!("{}", execkit_helper::version_line());
            0
        }
        ["shell", nonce] if nonce.bytes().all(|b| b.is_ascii_alphanumeric()) => {
            supervisor::run(nonce)
        }
        ["guard"] => guard::run(),
        ["probe"] => probe::run(),
        _ => {
            eprintln!(
                "usage: execkit-helper --version | shell NONCE | guard | probe\n\
                 (started by the execkit server on a remote host or in a container)"
            );
            2
        }
    };
    std::process::exit(code);
}
