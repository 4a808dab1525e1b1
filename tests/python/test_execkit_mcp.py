"""execkit-mcp driven by the Python `mcp` SDK from PyPI: a second, independent client.

Run: python tests/python/test_execkit_mcp.py PATH/TO/execkit-mcp
Each check prints one line; any failure exits non-zero. The same checks run once on a
legacy (initialize) connection and once on whatever `mode="auto"` negotiates.
"""

import asyncio
import os
import shutil
import sys
import tempfile
import time

import anyio
import mcp_types as types
from mcp import Client
from mcp.client.stdio import StdioServerParameters

BINARY = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "execkit-mcp"
FAILURES = []


def check(name, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + name + (f"  ({detail})" if detail else ""), flush=True)
    if not ok:
        FAILURES.append(name)


class Human:
    """Answers approval requests; records what it was shown."""

    def __init__(self, approve):
        self.approve = approve
        self.shown = []

    async def __call__(self, context, params):
        self.shown.append(params.message)
        if self.approve:
            return types.ElicitResult(action="accept", content={"approve": True})
        return types.ElicitResult(action="decline")


def server(root, workspace):
    config = os.path.join(root, "execkit.toml")
    with open(config, "w") as f:
        f.write(f'[workspaces]\ndefault = "{workspace}"\n[limits]\nprogress_interval_ms = 250\n')
    return StdioServerParameters(command=BINARY, args=["--config", config], env={"RUST_LOG": "warn"})


def structured(result):
    return result.structured_content or {}


async def create(client):
    r = await client.call_tool("session_create", {"transport": "local"})
    assert not r.is_error, r
    return structured(r)["session_id"]


async def suite(mode):
    root = tempfile.mkdtemp(prefix="execkit-py-")
    ws = os.path.join(root, "ws")
    os.makedirs(os.path.join(ws, "sub"))
    ws = os.path.realpath(ws)
    params = server(root, ws)
    try:
        human = Human(approve=True)
        async with Client(params, mode=mode, elicitation_callback=human) as client:
            print(f"-- mode={mode}: protocol {client.protocol_version}")
            tools = {t.name: t for t in (await client.list_tools()).tools}
            expected = {
                "session_create",
                "session_exec",
                "session_destroy",
                "session_list",
                "session_restart",
                "policy_check",
                "process_start",
                "process_read",
                "process_write",
                "process_signal",
                "process_wait",
                "process_list",
                "session_checkpoint",
                "session_restore",
                "session_checkpoints",
                "session_diff",
            }
            check(f"[{mode}] tools/list names", set(tools) == expected, sorted(tools))
            check(
                f"[{mode}] every tool has an object outputSchema",
                all((t.output_schema or {}).get("type") == "object" for t in tools.values()),
            )
            ex = tools["session_exec"]
            check(
                f"[{mode}] session_exec input schema requires session_id and command",
                {"session_id", "command"} <= set(ex.input_schema.get("required", [])),
            )
            check(
                f"[{mode}] annotations: session_list read-only, session_exec destructive",
                tools["session_list"].annotations.read_only_hint is True
                and tools["session_exec"].annotations.destructive_hint is True,
            )

            sid = await create(client)
            await client.call_tool("session_exec", {"session_id": sid, "command": "cd sub"})
            r = await client.call_tool("session_exec", {"session_id": sid, "command": "pwd"})
            check(f"[{mode}] stateful: cd then pwd", structured(r).get("stdout") == f"{ws}/sub\n", structured(r))

            r = await client.call_tool("session_exec", {"session_id": sid, "command": "rm -rf /"})
            ids = [
                p["id"]
                for f in structured(r).get("facts", [])
                if f["verdict"] == "deny"
                for p in f.get("policies", [])
            ]
            check(
                f"[{mode}] denial is a tool error naming its policy",
                r.is_error and "deny-recursive-delete-outside-workspace" in ids,
                ids,
            )

            updates = []

            async def on_progress(progress, total, message):
                updates.append((progress, message))

            r = await client.call_tool(
                "session_exec",
                {"session_id": sid, "command": "sleep 3; echo done"},
                progress_callback=on_progress,
            )
            check(
                f"[{mode}] progress notifications during a 3 s command",
                structured(r).get("stdout") == "done\n" and len(updates) >= 3,
                f"{len(updates)} updates",
            )

            cancelled_at = None
            async with anyio.create_task_group() as tg:

                async def long_call():
                    await client.call_tool("session_exec", {"session_id": sid, "command": "sleep 30.0713"})

                tg.start_soon(long_call)
                await anyio.sleep(0.5)
                cancelled_at = time.monotonic()
                tg.cancel_scope.cancel()
            r = await client.call_tool(
                "session_exec", {"session_id": sid, "command": "echo alive; pgrep -f 'sleep 30.0713' || echo no-sleep"}
            )
            took = time.monotonic() - cancelled_at
            check(
                f"[{mode}] cancelling sleep 30 frees the session within 1 s",
                structured(r).get("stdout") == "alive\nno-sleep\n" and took < 1.0,
                f"{took * 1000:.0f} ms, {structured(r).get('stdout')!r}",
            )

            r = await client.call_tool("session_exec", {"session_id": sid, "command": "git push origin main"})
            ran = "not a git repository" in structured(r).get("stderr", "")
            check(
                f"[{mode}] Ask approved runs",
                not r.is_error and ran and len(human.shown) == 1 and "ask-publish" in human.shown[0],
                structured(r).get("approved_by"),
            )

            # A background REPL: start, wait for output, write, read incrementally, signal.
            r = await client.call_tool(
                "process_start", {"session_id": sid, "command": "python3 -u -i -q", "name": "repl"}
            )
            check(f"[{mode}] process_start", not r.is_error, structured(r))
            pid = structured(r).get("process_id")
            answers = []
            for expr in ["2**10", "'py'*2", "sum(range(5))"]:
                await client.call_tool("process_write", {"process_id": pid, "data": expr + "\n"})
                r = await client.call_tool(
                    "process_wait", {"process_id": pid, "timeout_ms": 10000, "until": "(?m)^\\S+$"}
                )
                answers.append(structured(r)["output"]["stdout"])
            check(f"[{mode}] REPL over process_write/process_wait", answers == ["1024\n", "'pypy'\n", "10\n"], answers)
            r = await client.call_tool("process_read", {"process_id": pid})
            check(f"[{mode}] process_read has nothing twice", structured(r)["stdout"] == "", structured(r))
            r = await client.call_tool("process_signal", {"process_id": pid, "signal": "KILL"})
            check(f"[{mode}] process_signal KILL", structured(r).get("state") == "exited", structured(r))
            r = await client.call_tool("process_list", {"session_id": sid})
            rows = structured(r)["processes"]
            check(f"[{mode}] process_list", [p["name"] for p in rows] == ["repl"], rows)
            r = await client.call_tool("process_start", {"session_id": sid, "command": "git push origin main"})
            check(
                f"[{mode}] Ask approved starts a process",
                not r.is_error and len(human.shown) == 2,
                structured(r),
            )

        human = Human(approve=False)
        async with Client(params, mode=mode, elicitation_callback=human) as client:
            sid = await create(client)
            r = await client.call_tool("session_exec", {"session_id": sid, "command": "git push origin main"})
            check(
                f"[{mode}] Ask declined is denied",
                r.is_error and structured(r).get("verdict") == "ask" and len(human.shown) == 1,
                structured(r).get("reason"),
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


def remote_dirs():
    """The test sshd and dockerd that scripts/test.sh starts (required under CI=true)."""
    sshd, dockerd = os.environ.get("EXECKIT_TEST_SSHD_DIR"), os.environ.get("EXECKIT_TEST_DOCKER_DIR")
    if not (sshd and dockerd):
        if os.environ.get("CI") == "true":
            check("remote suite: test sshd and dockerd are running", False, "EXECKIT_TEST_*_DIR unset")
        return None
    return sshd, dockerd


def read(path):
    with open(path) as f:
        return f.read().strip()


def remote_server(root, sshd, dockerd, permit_all):
    """A server with the operator's [ssh] and [docker] sections for the test servers."""
    key = os.path.join(root, "id")
    shutil.copy(os.path.join(sshd, "user_key"), key)
    os.chmod(key, 0o600)
    port = read(os.path.join(sshd, "port"))
    kh = os.path.join(root, "known_hosts")
    with open(kh, "w") as f:
        f.write(f"[127.0.0.1]:{port} {read(os.path.join(sshd, 'host_ed25519_key.pub'))}\n")
    lines = [
        f'[ssh]\nknown_hosts = "{kh}"\nidentity_files = ["{key}"]\nuser = "{read(os.path.join(sshd, "user"))}"',
        f'[docker]\nendpoint = "unix://{os.path.join(dockerd, "docker.sock")}"',
    ]
    if permit_all:
        pol = os.path.join(root, "permit-all")
        os.makedirs(pol, exist_ok=True)
        with open(os.path.join(pol, "all.cedar"), "w") as f:
            f.write('@id("permit-all") permit(principal, action, resource);')
        lines.append(f'[policy]\ndir = "{pol}"')
    config = os.path.join(root, "remote.toml")
    with open(config, "w") as f:
        f.write("\n".join(lines) + "\n")
    return StdioServerParameters(command=BINARY, args=["--config", config], env={"RUST_LOG": "warn"}), int(port)


async def remote_suite():
    dirs = remote_dirs()
    if dirs is None:
        print("-- remote suite skipped: no test sshd/dockerd (run scripts/test.sh)")
        return
    sshd, dockerd = dirs
    root = tempfile.mkdtemp(prefix="execkit-py-remote-")
    try:
        params, port = remote_server(root, sshd, dockerd, permit_all=True)
        targets = {
            "ssh": {"transport": "ssh", "host": "127.0.0.1", "port": port},
            "docker": {"transport": "docker", "image": "execkit-test:latest"},
        }
        async with Client(params, mode="auto") as client:
            for name, args in targets.items():
                r = await client.call_tool("session_create", args)
                check(f"[{name}] session_create", not r.is_error, structured(r) or r)
                if r.is_error:
                    continue
                sid = structured(r)["session_id"]
                await client.call_tool("session_exec", {"session_id": sid, "command": "cd /tmp && export Y=7"})
                r = await client.call_tool("session_exec", {"session_id": sid, "command": "echo $Y; pwd"})
                check(f"[{name}] stateful over the transport", structured(r).get("stdout") == "7\n/tmp\n", structured(r))
                forged = (
                    "printf '\\n\\037EKdeadbeef:end:0:/\\n\\037EKdeadbeef:fin\\n'; sleep 0.2; echo survived; false"
                )
                r = await client.call_tool("session_exec", {"session_id": sid, "command": forged})
                out = structured(r)
                check(
                    f"[{name}] forged markers do not end the result",
                    out.get("stdout", "").endswith("survived\n") and out.get("exit_code") == 1,
                    out,
                )
                r = await client.call_tool(
                    "session_exec", {"session_id": sid, "command": "echo start; sleep 30", "timeout_ms": 500}
                )
                out = structured(r)
                check(
                    f"[{name}] a timeout interrupts and says so",
                    out.get("timed_out") is True and out.get("stdout") == "start\n",
                    out,
                )
                async with anyio.create_task_group() as tg:

                    async def long_call():
                        await client.call_tool("session_exec", {"session_id": sid, "command": "sleep 30.0817"})

                    tg.start_soon(long_call)
                    await anyio.sleep(0.5)
                    cancelled_at = time.monotonic()
                    tg.cancel_scope.cancel()
                r = await client.call_tool("session_exec", {"session_id": sid, "command": "echo $Y alive"})
                took = time.monotonic() - cancelled_at
                check(
                    f"[{name}] a cancelled call frees the session",
                    structured(r).get("stdout") == "7 alive\n" and took < 2.0,
                    f"{took * 1000:.0f} ms, {structured(r)}",
                )
                r = await client.call_tool("session_list", {})
                listed = str(structured(r))
                check(f"[{name}] session_list shows the transport", sid in listed and name in listed, listed)
                r = await client.call_tool("session_destroy", {"session_id": sid})
                check(f"[{name}] session_destroy", not r.is_error, structured(r))
        # The default policies: SSH and Docker only to operator-approved targets.
        params, port = remote_server(root, sshd, dockerd, permit_all=False)
        async with Client(params, mode="auto") as client:
            for name, args in targets.items():
                r = await client.call_tool("session_create", args)
                check(
                    f"[{name}] an unapproved target is refused by policy",
                    r.is_error and "session_open" in str(structured(r) or r.content),
                    structured(r) or r.content,
                )
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def watch_suite():
    """Watching on a handshake-era (legacy) connection: logging/setLevel, then one
    notifications/message line per decided and finished command; the session resources
    with resources/subscribe updates. (On 2026-07-28 connections logging is opted into per
    request through `_meta`, which execkit does not implement yet.)"""
    root = tempfile.mkdtemp(prefix="execkit-py-watch-")
    ws = os.path.realpath(os.path.join(root, "ws"))
    os.makedirs(ws)
    params = server(root, ws)
    logs, updated = [], []

    async def on_log(p):
        logs.append({"level": p.level, "data": p.data})

    async def on_message(m):
        root_msg = getattr(m, "root", m)
        uri = getattr(getattr(root_msg, "params", None), "uri", None)
        if uri:
            updated.append(str(uri))

    try:
        async with Client(params, mode="legacy", logging_callback=on_log, message_handler=on_message) as client:
            sid = await create(client)
            await client.set_logging_level("info")
            history = f"execkit://sessions/{sid}/history"
            await client.subscribe_resource(history)
            await client.call_tool("session_exec", {"session_id": sid, "command": "echo watched"})
            await client.call_tool("session_exec", {"session_id": sid, "command": "cat ~/.ssh/id_rsa"})
            for _ in range(100):
                if any(l["level"] == "warning" for l in logs) and history in updated:
                    break
                await anyio.sleep(0.05)
            finished = [l for l in logs if l["data"].get("event") == "finished" and l["data"].get("command") == "echo watched"]
            check("[watch] a finished command is logged at info", len(finished) == 1 and finished[0]["level"] == "info", logs)
            denied = [l for l in logs if l["data"].get("command") == "cat ~/.ssh/id_rsa"]
            check(
                "[watch] a denial is logged as a warning with its policy",
                len(denied) == 1 and denied[0]["level"] == "warning" and "deny-credential-files" in denied[0]["data"]["policies"],
                denied,
            )
            check("[watch] the subscribed history is updated", history in updated, updated)
            r = await client.read_resource("execkit://sessions")
            text = r.contents[0].text
            check("[watch] execkit://sessions lists the session", sid in text, text[:200])
            r = await client.read_resource(history)
            text = r.contents[0].text
            check("[watch] the history holds the commands", "echo watched" in text and "cat ~/.ssh/id_rsa" in text, text[:200])
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def main():
    for mode in ("legacy", "auto"):
        await suite(mode)
    await watch_suite()
    await remote_suite()
    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed: {FAILURES}")
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    asyncio.run(main())
