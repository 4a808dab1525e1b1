#!/usr/bin/env python3
"""How a decision's cost grows with the size of what an agent sends.

For each shape of script an attacker could inflate (many commands, words, flags, paths,
redirects, substitutions, cwd branches, URLs, ...), decides it at n and 2n under callgrind
(instructions: exact where wall-clock time on a shared VM is not) and prints the ratio: about
2 is linear, about 4 the square. Not part of CI; run it after changing the parser or the
engine. Needs valgrind and the release `decide_loop` example:

    cargo build --release -p execkit-engine --example decide_loop
    scripts/decision_scaling.py [N]
"""
import os, re, subprocess, sys, tempfile

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/execkit-target"))
BIN = os.path.join(TARGET, "release/examples/decide_loop")

SHAPES = {
    "commands a;a;…": lambda n: ";".join(["a"] * n),
    "path words cat f0 f1 …": lambda n: "cat " + " ".join(f"f{i}" for i in range(n)),
    "flags and paths": lambda n: "cat " + " ".join(f"--x{i}" for i in range(n // 2))
    + " " + " ".join(f"f{i}" for i in range(n // 2)),
    "pipeline a|a|…": lambda n: "|".join(["a"] * n),
    "and chain a && a && …": lambda n: " && ".join(["a"] * n),
    "redirects": lambda n: "a " + " ".join(f"> f{i}" for i in range(n)),
    "substitutions": lambda n: "echo " + " ".join("$(a)" for _ in range(n)),
    "env prefixes": lambda n: " ".join(f"V{i}=1" for i in range(n)) + " a",
    "cwd branches": lambda n: "\n".join(f"if a; then cd d{i}; fi" for i in range(n // 4))
    + "\ncat f",
    "urls": lambda n: "curl " + " ".join(f"https://h{i}.example/x" for i in range(n)),
    "functions": lambda n: "f() { a; }\n" + ";".join(["f"] * n),
    "here-doc lines": lambda n: "cat <<EOF\n" + "\n".join(f"line {i} $x" for i in range(n)) + "\nEOF",
    "case arms": lambda n: "case x in " + " ".join(f"p{i}) a{i};;" for i in range(n)) + " esac",
    "nested subshells": lambda n: "(" * min(n, 150) + "a" + ")" * min(n, 150),
    "hidden commands awk": lambda n: "awk " + " ".join(f"'system(x{i})'" for i in range(n)),
    "env and hidden commands": lambda n: " ".join(f"V{i}=1" for i in range(n // 2))
    + " awk " + " ".join(f"'system(x{i})'" for i in range(n // 2)),
    "find -exec chain": lambda n: "find . " + " ".join(f"-exec a{i} {{}} \\;" for i in range(n)),
}


def instructions(script: str) -> int:
    with tempfile.NamedTemporaryFile("w", suffix=".sh", delete=False) as f:
        f.write(script)
        path = f.name
    try:
        out = subprocess.run(
            ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", BIN, "1", "@" + path],
            capture_output=True, text=True, check=True,
        )
        verdict = out.stdout.strip()
        refs = int(re.search(r"refs:\s*([\d,]+)", out.stderr).group(1).replace(",", ""))
        return refs, verdict
    finally:
        os.unlink(path)


base, _ = instructions("")
print(f"{'shape':28} {'bytes@n':>8} {'instr@n':>13} {'instr@2n':>13} {'ratio':>6}  decided")
for name, make in SHAPES.items():
    a, va = instructions(make(N))
    b, vb = instructions(make(2 * N))
    ratio = (b - base) / max(a - base, 1)
    print(f"{name:28} {len(make(N)):>8} {a - base:>13,} {b - base:>13,} {ratio:>6.2f}  {va} / {vb}")
