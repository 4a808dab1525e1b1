"""Runs every `sh` and `python` block of README.md, in order, in a scratch directory.

Usage: python tests/readme/run_readme.py BIN_DIR
BIN_DIR holds the built `execkit` and `execkit-mcp`; the Python blocks run with this
interpreter, which must have the `execkit` wheel installed (scripts/test.sh runs this
after installing the wheels).

What is not run as written, and why:
- `cargo install …`: the binaries of this build are put first on PATH instead;
- `pip install dist/…` and `scripts/build-wheels.sh`: the wheel step of scripts/test.sh
  builds and installs exactly these wheels before this runs.
A line ending in `# exit N…` must exit with N; every other command must succeed.
The scratch directory holds a copy of `policies/` and a small `src/`, as a checkout would.
"""

import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
INSTALL = re.compile(r"^\s*(cargo install|pip install|scripts/build-wheels\.sh)\b")
EXPECT = re.compile(r"^(?P<cmd>.*?)\s+#\s*exit (?P<code>\d+)\b.*$")


def blocks(text):
    """(language, body, line) of each fenced block."""
    out, lang, body, start = [], None, [], 0
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            if lang is None:
                lang, body, start = line[3:].strip(), [], n
            else:
                out.append((lang, "\n".join(body), start))
                lang = None
            continue
        if lang is not None:
            body.append(line)
    return out


def shell(body):
    """The block as a script: install lines skipped, `# exit N` lines checked."""
    lines = []
    for line in body.splitlines():
        if INSTALL.match(line):
            lines.append(f": skipped, see run_readme.py: {line.strip()!r}")
            continue
        m = EXPECT.match(line)
        if m:
            code = m.group("code")
            lines.append(
                f"if {m.group('cmd')}; then rc=0; else rc=$?; fi; "
                f'[ "$rc" = {code} ] || {{ echo "expected exit {code}, got $rc: {m.group("cmd")!r}" >&2; exit 1; }}'
            )
            continue
        lines.append(line)
    return "\n".join(lines)


def main():
    bin_dir = os.path.abspath(sys.argv[1])
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    scratch = pathlib.Path(tempfile.mkdtemp(prefix="execkit-readme-"))
    shutil.copytree(ROOT / "policies", scratch / "policies")
    (scratch / "src").mkdir()
    for f in ("main.rs", "lib.rs", "util.rs"):
        (scratch / "src" / f).write_text("// example\n")
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ.get('PATH', '')}")
    env.pop("EXECKIT_CONFIG", None)
    failures = 0
    ran = 0
    try:
        for lang, body, line in blocks(text):
            if lang in ("sh", "bash"):
                cmd = ["bash", "-euo", "pipefail", "-c", shell(body)]
            elif lang == "python":
                cmd = [sys.executable, "-c", body]
            else:
                continue
            ran += 1
            p = subprocess.run(cmd, cwd=scratch, env=env, capture_output=True, text=True, timeout=600)
            ok = p.returncode == 0
            print(("ok   " if ok else "FAIL ") + f"README.md:{line} ({lang})", flush=True)
            if not ok:
                failures += 1
                print(p.stdout[-2000:] + p.stderr[-2000:])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if failures:
        print(f"{failures} of {ran} README blocks failed")
        sys.exit(1)
    print(f"all {ran} README blocks ran")


main()
