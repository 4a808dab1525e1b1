"""A lean MCP-over-HTTP client for measurements: one keep-alive HTTP/1.1 connection
(`http.client`, TCP_NODELAY), JSON-RPC posts with a bearer token and the MCP session id,
the SSE answer read whole. It measures what the server and the HTTP layer cost, without an
SDK's own overhead."""

import http.client
import json
import socket
import time


def pct(xs, p):
    """The p-quantile of xs (0..1)."""
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


class Lean:
    def __init__(self, port, token):
        self.c = http.client.HTTPConnection("127.0.0.1", port)
        self.c.connect()
        self.c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.h = {"content-type": "application/json", "accept": "application/json, text/event-stream",
                  "authorization": f"Bearer {token}"}
        self.n = 0

    def rpc(self, method, params, notify=False):
        body = {"jsonrpc": "2.0", "method": method, "params": params}
        if not notify:
            self.n += 1
            body["id"] = self.n
        self.c.request("POST", "/mcp", json.dumps(body), self.h)
        r = self.c.getresponse()
        if r.getheader("mcp-session-id"):
            self.h["mcp-session-id"] = r.getheader("mcp-session-id")
        for line in r.read().decode().splitlines():
            if line.startswith("data: {"):
                return json.loads(line[6:])
        return None

    def initialize(self):
        self.rpc("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                "clientInfo": {"name": "lean", "version": "1"}})
        self.rpc("notifications/initialized", {}, notify=True)

    def timed_execs(self, n, warmup=20):
        """Round trips (ms) of `session_exec echo hi` in a new session, after a warm-up."""
        self.initialize()
        created = self.rpc("tools/call", {"name": "session_create", "arguments": {}})
        sid = created["result"]["structuredContent"]["session_id"]
        ts = []
        for i in range(n + warmup):
            t = time.perf_counter()
            r = self.rpc("tools/call", {"name": "session_exec", "arguments": {"session_id": sid, "command": "echo hi"}})
            dt = (time.perf_counter() - t) * 1000
            assert r["result"]["structuredContent"]["stdout"] == "hi\n", r
            if i >= warmup:
                ts.append(dt)
        self.rpc("tools/call", {"name": "session_destroy", "arguments": {"session_id": sid}})
        return ts
