//! Redacts one line repeated N times (streamed as the runner feeds it): the cost of one kind
//! of line, for instruction counts under `valgrind --tool=callgrind`. Run it with N and
//! with 0 and divide the difference by N for the instructions per line.
//!
//! `line_cost 'Authorization: Bearer abc…' 1000`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use execkit_protect::Redactor;

/// The allocator of the shipped binaries, as in the benches.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../benches/support/corpus.rs"]
mod corpus;

fn main() {
    let mut args = std::env::args().skip(1);
    let line = args.next().expect("usage: line_cost LINE N");
    let n: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .expect("usage: line_cost LINE N");
    let text = format!("{line}\n").repeat(n);
    let redactor = Redactor::new(&corpus::known_values());
    let (out, counts) = corpus::redact_streamed(&redactor, &text);
    println!("{} bytes in, {} out, {counts:?}", text.len(), out.len());
}
