"""execkit-mcp driven by a third real client: the MCP Inspector CLI (TypeScript SDK, ajv
schema validation) on Node 22. Each call starts the server afresh, so a session cannot
outlive one call: the round trip is session_create (a real sandboxed session, reported
back), policy_check, and tools/list, each with an empty stderr (no schema warnings).

Usage: test_inspector.py INSPECTOR_CLI EXECKIT_MCP WORKDIR
"""

import json
import subprocess
import sys

cli, server, workdir = sys.argv[1], sys.argv[2], sys.argv[3]
failures = []


def run(*args):
    p = subprocess.run(
        [cli, "--cli", server, *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    label = " ".join(args)
    if p.returncode != 0:
        failures.append(f"{label}: exit {p.returncode}: {p.stderr[-500:]}")
        return None
    if p.stderr.strip():
        failures.append(f"{label}: stderr is not empty: {p.stderr[-500:]}")
    try:
        return json.loads(p.stdout)
    except json.JSONDecodeError as e:
        failures.append(f"{label}: not JSON ({e}): {p.stdout[:300]}")
        return None


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


tools = run("--method", "tools/list")
if tools:
    names = sorted(t["name"] for t in tools["tools"])
    check(
        names
        == [
            "policy_check",
            "process_list",
            "process_read",
            "process_signal",
            "process_start",
            "process_wait",
            "process_write",
            "session_checkpoint",
            "session_checkpoints",
            "session_create",
            "session_destroy",
            "session_diff",
            "session_exec",
            "session_list",
            "session_restart",
            "session_restore",
        ],
        f"tools/list names the five tools ({names})",
    )
    check('"format": "uint' not in json.dumps(tools), "no non-standard formats in schemas")

created = run("--method", "tools/call", "--tool-name", "session_create")
if created:
    sc = created.get("structuredContent", {})
    check(len(sc.get("session_id", "")) == 16, "session_create returns a session id")
    check(sc.get("sandbox", {}).get("level") == "full", "the session is fully sandboxed")
    check(sc.get("sandbox", {}).get("pid_namespace") is True, "in its own PID namespace")

checked = run(
    "--method", "tools/call", "--tool-name", "policy_check",
    "--tool-arg", "command=cat ~/.ssh/id_rsa",
)
if checked:
    sc = checked.get("structuredContent", {})
    check(sc.get("verdict") == "deny", "policy_check denies a credential read")

if failures:
    print("\n".join(failures))
    sys.exit(1)
print("all checks passed")
