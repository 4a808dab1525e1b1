#!/usr/bin/env bash
# Builds the two wheels users install without Rust: `execkit` (the Python SDK, pyo3, abi3:
# one wheel for CPython >= 3.9) and `execkit-mcp` (the server and CLI binaries), for
# x86_64 Linux. maturin checks the glibc symbols the binaries use and tags the wheels
# manylinux_2_XX accordingly (manylinux_2_34 on Debian 12). Output: dist/ (or $1).
#   PROFILE=dev scripts/build-wheels.sh   # a faster unoptimised build (what CI tests)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-dist}"
profile="${PROFILE:-release}"
maturin="${MATURIN:-maturin}"
"$maturin" build --quiet --profile "$profile" -m python/Cargo.toml -o "$out"
"$maturin" build --quiet --profile "$profile" -m mcp/Cargo.toml -o "$out"
ls "$out"/*.whl
for w in "$out"/*.whl; do
  case "$w" in
    *manylinux*) ;;
    *) echo "not a manylinux wheel: $w" >&2; exit 1 ;;
  esac
done
