#!/usr/bin/env bash
# Runs the whole execkit test suite, first installing what the tests need.
# Usable on a fresh Debian machine with the Rust toolchain: `./scripts/test.sh`.
# With CI=true, missing infrastructure is a failure, never a skip.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/execkit-target}"
export PATH="$HOME/.cargo/bin:$PATH"
CEDAR_VERSION=4.14.1

# The official Cedar CLI, used to cross-check that the shipped schema and policies validate.
if ! command -v cedar >/dev/null 2>&1 || ! cedar --version 2>/dev/null | grep -q "$CEDAR_VERSION"; then
  echo "==> installing cedar-policy-cli $CEDAR_VERSION"
  cargo install cedar-policy-cli --version "$CEDAR_VERSION" --locked
fi
export CEDAR_CLI="$(command -v cedar)"

echo "==> cargo test (workspace, all targets)"
cargo test --workspace --all-targets
echo "==> cargo test (doc tests)"
cargo test --workspace --doc
echo "==> policy case files through the CLI"
"$CARGO_TARGET_DIR/debug/execkit" policy test
