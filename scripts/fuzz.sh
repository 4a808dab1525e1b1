#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time (FUZZ_SECONDS, default 60) on a copy of
# its committed corpus (fuzz/corpus/<target>), and prints executions and coverage. A crash
# fails the run; libFuzzer leaves the input under fuzz/artifacts/<target>/ to turn into a
# regression test. Needs the nightly toolchain and cargo-fuzz (installed when missing).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${FUZZ_SECONDS:-60}"
export PATH="$HOME/.cargo/bin:$PATH"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/execkit-fuzz}"
targets=(decide redact_chunks keyword_searches redact_reference ansi_strip audit_verify frame_split helper_wire exec_oracle)
cargo +nightly fuzz build 2>&1 | tail -1
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for t in "${targets[@]}"; do
  cp -r "corpus/$t" "$work/$t"
  log="$work/$t.log"
  # The exec oracle is slow (a sandboxed run per allowed script) and its coverage follows
  # what the traced programs do, so even a fixed seed does not repeat a search, and a new
  # search tends to find a new real gap. The gate replays the committed corpus (the
  # regression inputs searches found) exactly; ORACLE_RUNS=800 searches further, by hand.
  if [ "$t" = exec_oracle ]; then
    limits=(-seed=1 -runs="${ORACLE_RUNS:-0}")
  else
    limits=(-max_total_time="$secs")
  fi
  if ! cargo +nightly fuzz run "$t" "$work/$t" -- "${limits[@]}" -timeout=30 -print_final_stats=1 >"$log" 2>&1; then
    echo "fuzz target $t FAILED:" >&2
    tail -40 "$log" >&2
    exit 1
  fi
  runs="$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')"
  cov="$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || echo '?')"
  echo "fuzz $t: $runs executions, coverage $cov edges, corpus $(ls "$work/$t" | wc -l) inputs"
done
