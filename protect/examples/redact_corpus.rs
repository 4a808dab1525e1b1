//! Redacts one of the benchmark corpora once, streamed in 64 KiB chunks: a fixed amount of
//! work for instruction-count profiling (`valgrind --tool=callgrind`), which is repeatable
//! where wall-clock benchmarks on a shared VM are not. Subtract a run with `setup` for the
//! work that is not redaction (building the corpus, compiling the rules).
//!
//! `redact_corpus build_log|secret_dense|random_base64|long_secret_lines [KIB] [setup]`
//!
//! `redact_corpus 'line:TEXT' N [setup]` redacts the line TEXT repeated N times: divide the
//! difference to the `setup` run by N for the cost of one kind of line.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use execkit_protect::Redactor;

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
        other => match other.strip_prefix("line:") {
            Some(line) => format!("{line}\n").repeat(size),
            None => panic!("unknown corpus {other}"),
        },
    };
    let redactor = Redactor::new(&corpus::known_values());
    let setup_only = args.next().as_deref() == Some("setup");
    let input = if setup_only { "" } else { text.as_str() };
    let (out, counts) = corpus::redact_streamed(&redactor, input);
    println!(
        "{} bytes in, {} out, {} redactions",
        text.len(),
        out.len(),
        counts.values().sum::<u64>()
    );
}
