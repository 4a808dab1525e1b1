"""`session_exec` round trips over stdio, measured with the Python `mcp` SDK's client: the
client agents built on the SDK use, and the one the comparison with other servers uses.

Run: python tests/python/bench_stdio.py [--calls N] LABEL=COMMAND [LABEL=COMMAND ...]

Each COMMAND is an MCP server started over stdio (split on spaces), for example
`execkit=target/release/execkit-mcp` or `upstream=/path/to/their/execkit-mcp`. Every server
gets a local session in its own scratch workspace; the calls alternate between the servers
in rounds of 50 so that both see the same machine load. Prints one table row per server:
p50, p90 and p99 of `session_exec {"command": "echo hi"}`, after 50 warm-up calls.
"""
import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time

from mcp import Client
from mcp.client.stdio import StdioServerParameters

ROUND = 50


def session_id(result):
    """The session id from a `session_create` answer: structured content, or JSON text."""
    if result.structured_content and "session_id" in result.structured_content:
        return result.structured_content["session_id"]
    for c in result.content:
        text = getattr(c, "text", "")
        try:
            return json.loads(text)["session_id"]
        except (ValueError, KeyError, TypeError):
            continue
    raise RuntimeError(f"no session id in {result}")


def output(result):
    """stdout from a `session_exec` answer, structured or as JSON text."""
    if result.structured_content and "stdout" in result.structured_content:
        return result.structured_content["stdout"]
    for c in result.content:
        try:
            return json.loads(getattr(c, "text", ""))["stdout"]
        except (ValueError, KeyError, TypeError):
            continue
    return None


class Server:
    def __init__(self, label, command):
        self.label = label
        parts = command.split()
        self.workspace = tempfile.mkdtemp(prefix=f"bench-{label}-")
        self.params = StdioServerParameters(
            command=parts[0], args=parts[1:], cwd=self.workspace, env={**os.environ, "RUST_LOG": "warn"}
        )
        self.times = []

    async def call(self, client, sid):
        t = time.perf_counter()
        r = await client.call_tool("session_exec", {"session_id": sid, "command": "echo hi"})
        self.times.append(time.perf_counter() - t)
        if r.is_error or (output(r) or "").strip() != "hi":
            raise RuntimeError(f"{self.label}: unexpected answer {r}")


async def run(servers, calls):
    async with contextlib_stack(servers) as clients:
        sids = []
        for s, c in zip(servers, clients):
            sid = session_id(await c.call_tool("session_create", {"transport": "local"}))
            sids.append(sid)
            for _ in range(ROUND):
                await s.call(c, sid)
            s.times.clear()
        done = 0
        while done < calls:
            n = min(ROUND, calls - done)
            for s, c, sid in zip(servers, clients, sids):
                for _ in range(n):
                    await s.call(c, sid)
            done += n


class contextlib_stack:
    """Opens one SDK client per server, all closed together."""

    def __init__(self, servers):
        self.servers = servers
        self.stack = None

    async def __aenter__(self):
        import contextlib

        self.stack = contextlib.AsyncExitStack()
        await self.stack.__aenter__()
        return [await self.stack.enter_async_context(Client(s.params, mode="legacy")) for s in self.servers]

    async def __aexit__(self, *exc):
        return await self.stack.__aexit__(*exc)


def quantile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=500)
    ap.add_argument("servers", nargs="+", metavar="LABEL=COMMAND")
    a = ap.parse_args()
    servers = [Server(*s.split("=", 1)) for s in a.servers]
    asyncio.run(run(servers, a.calls))
    print("| server | calls | p50 | p90 | p99 | mean |")
    print("|---|---|---|---|---|---|")
    for s in servers:
        ms = [t * 1000 for t in s.times]
        print(
            f"| {s.label} | {len(ms)} | {quantile(ms, 0.5):.2f} ms | {quantile(ms, 0.9):.2f} ms"
            f" | {quantile(ms, 0.99):.2f} ms | {statistics.mean(ms):.2f} ms |"
        )


if __name__ == "__main__":
    main()
