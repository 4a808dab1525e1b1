//! Redacts one of the benchmark corpora once, streamed in 64 KiB chunks: a fixed amount of
//! work for instruction-count profiling (`valgrind --tool=callgrind`), which is repeatable
//! where wall-clock benchmarks on a shared VM are not. Subtract a run with `setup` for the
//! work that is not redaction (building the corpus, compiling the rules).
//!
//! `redact_corpus build_log|secret_dense|random_base64|long_secret_lines|terminal_output
//! [KIB] [setup]`
//!
//! `redact_corpus 'line:TEXT' N [setup]` redacts the line TEXT repeated N times: divide the
//! difference to the `setup` run by N for the cost of one kind of line.
//!
//! `redact_corpus @FILE 0 [setup]` redacts the file's bytes (lossily decoded). With
//! `PIPELINE=1` any input goes through the whole pipeline instead (terminal escapes
//! stripped, then redacted, the middle redacted too), as a session's output does;
//! `PIPELINE=hold` holds the middle back as the shipped pipeline does.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use execkit_protect::{Budget, CaptureLimits, MiddleMode, Protector, Redactor};

/// The allocator of the shipped binaries, as in the benches.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../benches/support/corpus.rs"]
mod corpus;

fn main() {
    let mut args = std::env::args().skip(1);
    let kind = args.next().unwrap_or_else(|| "secret_dense".into());
    let size: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1024);
    let text = match kind.as_str() {
        "build_log" => corpus::build_log(size << 10),
        "secret_dense" => corpus::secret_dense(size << 10),
        "random_base64" => corpus::random_base64(size << 10),
        "long_secret_lines" => corpus::long_secret_lines(size << 10),
        "terminal_output" => {
            String::from_utf8_lossy(&corpus::terminal_output(size << 10)).into_owned()
        }
        other => match (other.strip_prefix("line:"), other.strip_prefix('@')) {
            (Some(line), _) => format!("{line}\n").repeat(size),
            (_, Some(path)) => {
                String::from_utf8_lossy(&std::fs::read(path).expect("input file")).into_owned()
            }
            _ => panic!("unknown corpus {other}"),
        },
    };
    let redactor = Redactor::new(&corpus::known_values());
    let setup_only = args.next().as_deref() == Some("setup");
    let input = if setup_only { "" } else { text.as_str() };
    if let Some(mode) = std::env::var_os("PIPELINE") {
        // `PIPELINE=hold`: the middle held back as the shipped pipeline does.
        let middle = if mode == "hold" {
            MiddleMode::Hold
        } else {
            MiddleMode::Redact
        };
        let protector = Protector::new(redactor, CaptureLimits::default()).with_middle(middle);
        let mut stream = protector.stream(&Budget::default()).expect("budget");
        for chunk in input.as_bytes().chunks(64 * 1024) {
            stream.push(chunk);
        }
        let out = stream.finish();
        println!(
            "{} bytes in, {} out, {} redactions",
            text.len(),
            out.text.len(),
            out.redactions.values().sum::<u64>()
        );
        return;
    }
    let (out, counts) = corpus::redact_streamed(&redactor, input);
    println!(
        "{} bytes in, {} out, {} redactions",
        text.len(),
        out.len(),
        counts.values().sum::<u64>()
    );
}
