#!/usr/bin/env python3
"""Checks the documentation and the tree's prose, before anything is built.

1. Every relative link in the Markdown pages (README.md, CHANGELOG.md, docs/, policies/,
   python/, mcp/) names a file that exists, and every `#anchor` a heading of its page.
2. No work-period narration in README.md, docs/ or the sources and data files: "the
   seventh session", "issue 18". History belongs in commit messages and CHANGELOG.md.

Exit 1 with one line per problem.
"""

import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SKIP_DIRS = {"target", ".git", "node_modules", "fuzz/corpus", "fuzz/artifacts"}

PAGES = [ROOT / "README.md", ROOT / "CHANGELOG.md"] + sorted(
    p for d in ("docs", "policies", "python", "mcp") for p in (ROOT / d).rglob("*.md")
)

# Ordinals from the fourth on: "a second session for alice" is a shell session, "the
# seventh session" a work period.
NARRATION = re.compile(
    r"\b(fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth|thirteenth|"
    r"fourteenth|fifteenth|sixteenth|seventeenth|eighteenth|nineteenth|twentieth|"
    r"\d+(th)) session\b|\bwork (session|period)\b|\bsession of issue\b|\bissues? #?\d+\b",
    re.IGNORECASE,
)
PROSE_SUFFIXES = {".rs", ".md", ".toml", ".cedar", ".py", ".sh", ".json"}
# Where history belongs, and the checker itself (it names the patterns).
NARRATION_EXEMPT = {ROOT / "CHANGELOG.md", pathlib.Path(__file__).resolve()}


def anchor(heading):
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes."""
    h = heading.strip().lower()
    h = re.sub(r"[^\w\- ]", "", h)
    return h.replace(" ", "-")


def anchors(page):
    text = page.read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    return {anchor(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", text, flags=re.M)}


def check_links(problems):
    link = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        text = re.sub(r"```.*?```", "", text, flags=re.S)
        for m in link.finditer(text):
            target = m.group(1)
            if re.match(r"^[a-z]+:", target):  # http:, https:, mailto:
                continue
            path, _, frag = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            rel = page.relative_to(ROOT)
            if not dest.exists():
                problems.append(f"{rel}: link to a missing file: {target}")
                continue
            if frag and dest.suffix == ".md" and frag not in anchors(dest):
                problems.append(f"{rel}: link to a missing heading: {target}")


def skipped(path):
    rel = path.relative_to(ROOT).as_posix()
    return any(rel == d or rel.startswith(d + "/") for d in SKIP_DIRS)


def check_narration(problems):
    for path in sorted(ROOT.rglob("*")):
        if not path.is_file() or path.suffix not in PROSE_SUFFIXES or skipped(path):
            continue
        if path in NARRATION_EXEMPT:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for n, line in enumerate(text.splitlines(), 1):
            m = NARRATION.search(line)
            if m:
                problems.append(
                    f"{path.relative_to(ROOT)}:{n}: work-period narration `{m.group(0)}` "
                    "(say what the code does and why; history goes in commits and CHANGELOG.md)"
                )


def main():
    problems = []
    check_links(problems)
    check_narration(problems)
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} documentation problems", file=sys.stderr)
        return 1
    print(f"docs: {len(PAGES)} pages, links and prose ok")
    return 0


sys.exit(main())
