#!/usr/bin/env bash
# Instruction counts for the performance figures, under callgrind: exact and
# repeatable where wall-clock time on a shared VM is not (criterion's medians there swing
# by up to 2x between runs of the same binary). Not part of CI; run it before and after a
# change to the decision path or the redactor, and put both numbers in docs/benchmarks.md.
#
#   scripts/instructions.sh            # redaction corpora and the three decisions
#   scripts/instructions.sh redact     # only the redaction corpora
#   scripts/instructions.sh decide     # only the decisions
#
# Redaction: instructions per byte at steady state, the difference between a 12 MiB and a
# 4 MiB run (each less its own setup: corpus generation and rule compilation), so the
# lazy DFAs' first state building is left out as criterion's repeated runs leave it out;
# the 4 MiB average (setup subtracted) is printed too.
# Decisions: instructions per fresh decision (memo off), 200 decisions less the setup.
# Counts move by ~1k per decision between runs (per-process hash seeds).
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-all}"
command -v valgrind >/dev/null 2>&1 || { echo "needs valgrind (apt install valgrind)" >&2; exit 2; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/execkit-target}"
bin="$CARGO_TARGET_DIR/release/examples"

# Instructions executed by the command given.
refs() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 |
    grep -o 'refs: *[0-9,]*' | tr -d ', ' | cut -d: -f2
}

if [ "$what" = all ] || [ "$what" = redact ]; then
  cargo build -q --release -p execkit-protect --example redact_corpus
  for corpus in build_log secret_dense random_base64; do
    small=$(( $(refs "$bin/redact_corpus" "$corpus" 4096) - $(refs "$bin/redact_corpus" "$corpus" 4096 setup) ))
    large=$(( $(refs "$bin/redact_corpus" "$corpus" 12288) - $(refs "$bin/redact_corpus" "$corpus" 12288 setup) ))
    awk -v c="$corpus" -v s="$small" -v l="$large" 'BEGIN {
      printf "redact %-14s %7.2f instructions/byte at steady state, %7.2f at 4 MiB\n",
        c, (l - s) / (8 * 1048576), s / (4 * 1048576) }'
  done
fi

if [ "$what" = all ] || [ "$what" = decide ]; then
  cargo build -q --release -p execkit-engine --example decide_loop
  # The criterion bench's 20-command script (engine/benches/decision.rs), one per line.
  script20="$(sed -n '/^fn script20/,/join/p' engine/benches/decision.rs |
    sed -n 's/^ *"\(.*\)",$/\1/p' | sed 's/\\"/"/g')"
  [ "$(printf '%s\n' "$script20" | wc -l)" = 20 ] || { echo "could not read the 20-command script" >&2; exit 1; }
  for pair in "a|ls -la src" "b|cd /app && npm ci 2>&1 | tee build.log" "c|$script20"; do
    label="${pair%%|*}"
    cmd="${pair#*|}"
    base=$(refs "$bin/decide_loop" 0 "$cmd")
    runs=$(refs "$bin/decide_loop" 200 "$cmd")
    echo "decide ($label) $(( (runs - base) / 200 )) instructions per fresh decision"
  done
fi
