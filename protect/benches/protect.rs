//! Redaction throughput with the full rule set and 100 known values, on (a) a realistic
//! build log with a few secrets, (b) secret-dense text, (c) random base64, (d) 48 KB lines
//! of many assignments (1 MiB); plus the ANSI stripper alone. Single thread. Targets:
//! ≥ 400 MB/s on (a), ≥ 100 MiB/s on (b).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a failed test

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use execkit_protect::{AnsiStripper, Redactor};
use std::hint::black_box;

/// The allocator the shipped binaries use (`execkit-mcp`, `execkit`), so the numbers are
/// the server's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
#[path = "support/corpus.rs"]
mod corpus;

const SIZE: usize = 4 << 20;

fn redaction(c: &mut Criterion) {
    let redactor = Redactor::new(&corpus::known_values());
    let inputs = [
        ("a_build_log", corpus::build_log(SIZE)),
        ("b_secret_dense", corpus::secret_dense(SIZE)),
        ("c_random_base64", corpus::random_base64(SIZE)),
        ("d_long_secret_lines", corpus::long_secret_lines(SIZE / 4)),
    ];
    let mut g = c.benchmark_group("redact");
    g.sample_size(20);
    for (name, text) in &inputs {
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(name), text, |b, text| {
            b.iter(|| {
                let (out, counts) = corpus::redact_streamed(&redactor, text);
                black_box(counts);
                black_box(out.len())
            })
        });
    }
    g.finish();
}

fn stripping(c: &mut Criterion) {
    let input = corpus::terminal_output(SIZE);
    let mut g = c.benchmark_group("strip");
    g.sample_size(20);
    g.throughput(Throughput::Bytes(input.len() as u64));
    g.bench_function("terminal_output", |b| {
        b.iter(|| {
            let mut s = AnsiStripper::new();
            let mut out = String::with_capacity(input.len());
            for chunk in input.chunks(64 * 1024) {
                s.push(chunk, &mut out);
            }
            s.finish(&mut out);
            black_box(out.len())
        })
    });
    g.finish();
}

criterion_group!(benches, redaction, stripping);
criterion_main!(benches);
