#!/usr/bin/env python3
"""How output protection's cost grows with the size of what a command prints.

The agent chooses what its commands print, so it chooses the redactor's input. For each
shape of output an attacker could inflate (long lines of secrets or of bare keywords, runs
of escape sequences, carriage-return progress bars, ghost characters, PEM headers, Kubernetes
data blocks, ...), protects it at n and 2n bytes under callgrind (instructions: exact where
wall-clock time on a shared VM is not) through the whole pipeline (escapes stripped, then
redacted, the middle redacted too) and prints the ratio — about 2 is linear, about 4 the
square — and the instructions per byte at 2n. Not part of CI; run it after changing the
stripper or the redactor. Needs valgrind and the release `redact_corpus` example:

    cargo build --release -p execkit-protect --example redact_corpus
    scripts/redaction_scaling.py [KIB]
"""
import os, re, subprocess, sys, tempfile

KIB = int(sys.argv[1]) if len(sys.argv) > 1 else 512
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/execkit-target"))
BIN = os.path.join(TARGET, "release/examples/redact_corpus")
ESC = "\x1b"


def fill(unit, n, sep=""):
    """`unit(i)` repeated (joined by `sep`) until the text holds n bytes."""
    parts, size, i = [], 0, 0
    while size < n:
        u = unit(i)
        parts.append(u)
        size += len(u.encode()) + len(sep)
        i += 1
    return sep.join(parts)


SHAPES = {
    # One long line (no newline until the end): windows, keyword runs, the gate's line shape.
    "long line of password=…": lambda n: fill(lambda i: f"password=Xy{i:07d}q ", n) + "\n",
    "long line of bare keywords": lambda n: fill(lambda i: "password token secret ", n) + "\n",
    "long line of ghp_ tokens": lambda n: fill(lambda i: f"ghp_{i:036d} ", n) + "\n",
    "long line of JSON secrets": lambda n: fill(lambda i: f'"api_key": "k{i:031d}", ', n) + "\n",
    "long line of Authorization:": lambda n: fill(lambda i: "Authorization: ", n) + "\n",
    "long value after password=": lambda n: "password=" + "a" * n + "\n",
    "long line of = and :": lambda n: "token" + "=:" * (n // 2) + "\n",
    "blanks before data:": lambda n: "x" + " " * n + "ydata:\n",
    "listed data: headers": lambda n: fill(lambda i: f"{i:>6}\t  data:", n, "\n") + "\n",
    # Many short lines.
    "lines of secrets": lambda n: fill(lambda i: f"DB_PASSWORD=Xy{i:07d}q", n, "\n") + "\n",
    "lines of bare keywords": lambda n: fill(lambda i: "password token", n, "\n") + "\n",
    # Words scanned only for a pattern's check (`host`, `server`: they trigger no rule).
    "long line of host server addr": lambda n: fill(lambda i: "hostserveraddr", n) + "\n",
    "password= lines full of host": lambda n: fill(
        lambda i: f"password=Xy{i:07d}q " + "host " * 12, n, "\n") + "\n",
    # Listings (`cat -n`, `grep -rn -A`) and records read for their prefix.
    "listed .env lines": lambda n: fill(lambda i: f"{i:>6}\tDB_PASSWORD=Xy{i:07d}q", n, "\n") + "\n",
    "dashed keys at line starts": lambda n: fill(
        lambda i: "a-" * 250 + f"password=Xy{i:07d}q", n, "\n") + "\n",
    "long JSON record": lambda n: "{" + fill(lambda i: f'"password":"sunshine{i % 10}",', n) + "}\n",
    # Terminal escapes and overwrites.
    "escape flood": lambda n: fill(lambda i: f"{ESC}[31mx{ESC}[0m", n) + "\n",
    "long CSI parameters": lambda n: fill(lambda i: f"{ESC}[" + "1;" * 30 + "m", n) + "\n",
    "unterminated OSC": lambda n: fill(lambda i: f"{ESC}]0;" + "t" * 100, n) + "\n",
    "progress bar with \\r": lambda n: fill(lambda i: f"\r{i % 100:3d}% [{'#' * (i % 50)}]", n) + "\n",
    "backspaces": lambda n: fill(lambda i: "ab\b\bcd", n) + "\n",
    "ghost lines": lambda n: fill(lambda i: f"{ESC}[Apassword=Xy{i:07d}q", n, "\n") + "\n",
    "ghosts on one line": lambda n: fill(lambda i: f"{ESC}[AKIA{i:016d} ", n) + "\n",
    # Secrets that span lines.
    "PEM headers without end": lambda n: fill(
        lambda i: "-----BEGIN RSA PRIVATE KEY-----", n, "\n") + "\n",
    "PEM headers on one line": lambda n: fill(lambda i: "x-----BEGIN RSA PRIVATE KEY----- ", n) + "\n",
    "coloured PEM headers, one line": lambda n: fill(
        lambda i: f"{ESC}[1mx-----BEGIN RSA PRIVATE KEY----- ", n) + "\n",
    "PEM body lines": lambda n: "-----BEGIN RSA PRIVATE KEY-----\n"
    + fill(lambda i: "MIIEowIBAAKCAQEA" * 4, n, "\n") + "\n",
    "k8s data blocks": lambda n: fill(
        lambda i: f"kind: Secret\ndata:\n  k{i}: c2VjcmV0dmFsdWUxMjM0NQ==", n, "\n") + "\n",
    "name/value pairs over lines": lambda n: fill(
        lambda i: f"- name: DB_PASSWORD\n  value: Xy{i:07d}q", n, "\n") + "\n",
    "pair header, blanks after": lambda n: "- name: DB_PASSWORD\n" + "\n" * n + "  value: x1\n",
    "data: header, blanks after": lambda n: "data:\n" + "\n" * n + "  k: c2VjcmV0dmFsdWUxMjM0NQ==\n",
    "PEM header, blanks after": lambda n: "-----BEGIN RSA PRIVATE KEY-----\n" + "\n" * n + "MIIE\n",
    "plain blank lines": lambda n: "\n" * n,
    "long line of name: keys": lambda n: fill(lambda i: "- name: key: ", n) + "DB_PASSWORD\n",
    "pair siblings without value": lambda n: "- name: DB_PASSWORD\n"
    + fill(lambda i: f"  k{i}: v", n, "\n") + "\n",
    # Patterns matched from their keywords' occurrences (keyword_search/led): many occurrences on
    # one line that start no match, or start one only after a long run.
    "long line of xoxb- prefixes": lambda n: fill(lambda i: "xoxb-1234567890-", n) + "\n",
    "long line of Bearer": lambda n: fill(lambda i: "Bearer ", n) + "\n",
    "long line of AKIA runs": lambda n: fill(lambda i: "AKIA" + "Z" * 15 + " ", n) + "\n",
    "Authorization: then a long run": lambda n: "Authorization: " + "a," * (n // 2) + "\n",
    # Key-name patterns matched from their keywords' occurrences (keyword_search/keyed): heads
    # whose tails fail (a quote never closed, a value too short), words and spaces that
    # make one long run of key bytes, keywords in a long name.
    "long line of unclosed quotes": lambda n: fill(lambda i: 'password="xx ', n) + "\n",
    "long line of short values": lambda n: fill(lambda i: "api_key=ab ", n) + "\n",
    "long line of pass=pass=": lambda n: fill(lambda i: "pass=", n) + "\n",
    "long run of words and keys": lambda n: fill(lambda i: "userPassword token pwd ", n) + "=x\n",
    "long name of keywords": lambda n: fill(lambda i: "password_", n) + "=Xy1234567q\n",
    "known-value letters": lambda n: fill(lambda i: "AHOVCJQXELSZGNUBIPWDKRYFMT ", n) + "\n",
    # URLs: `://` occurrences whose credentials never close, schemes run together.
    "long line of URLs without @": lambda n: fill(lambda i: "postgres://u:p ", n) + "\n",
    "long line of ://": lambda n: fill(lambda i: "a://", n) + "\n",
    "one URL, a long user part": lambda n: "https://" + "u" * n + ":p\n",
    # Block scalars: a secret's text over many lines, headers one after another.
    "secret block scalar lines": lambda n: "password: |\n"
    + fill(lambda i: f"  Xy{i:07d}qZ8", n, "\n") + "\n",
    "block scalar headers": lambda n: fill(lambda i: "password: |", n, "\n") + "\n",
    "stringData scalar lines": lambda n: "stringData:\n  a: |\n"
    + fill(lambda i: f"    line {i}", n, "\n") + "\n",
}


def instructions(text):
    with tempfile.NamedTemporaryFile("wb", suffix=".txt", delete=False) as f:
        f.write(text.encode())
        path = f.name
    try:
        out = subprocess.run(
            ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", BIN, "@" + path, "0"],
            capture_output=True, text=True, check=True, env={**os.environ, "PIPELINE": "1"},
        )
        refs = int(re.search(r"refs:\s*([\d,]+)", out.stderr).group(1).replace(",", ""))
        return refs, out.stdout.strip()
    finally:
        os.unlink(path)


base, _ = instructions("")
n = KIB * 1024
print(f"{'shape':30} {'instr@n':>13} {'instr@2n':>13} {'ratio':>6} {'per byte':>9}  redactions")
only = os.environ.get("ONLY")
for name, make in SHAPES.items():
    if only and not any(s in name for s in only.split(",")):
        continue
    small, large = make(n), make(2 * n)
    a, _ = instructions(small)
    b, out = instructions(large)
    ratio = (b - base) / max(a - base, 1)
    per_byte = (b - base) / len(large.encode())
    found = out.rsplit(",", 1)[-1].strip()
    print(f"{name:30} {a - base:>13,} {b - base:>13,} {ratio:>6.2f} {per_byte:>9.1f}  {found}")
