"""Two execkit-mcp HTTP instances behind a real HAProxy with affinity on Mcp-Session-Id.

Run: python tests/python/test_haproxy.py PATH/TO/execkit-mcp
- 50 concurrent clients (the Python `mcp` SDK, handshake-era protocol) through the proxy: each creates a session,
  starts a background process and runs commands whose results are checked exactly; both
  backends get sessions;
- one backend is killed with SIGKILL: its clients' next calls fail with a clear error, the
  other backend's sessions answer exactly as before, and nothing the killed backend's
  sessions started is left running on this host;
- p50/p99 of `session_exec` through the proxy and directly (lean keep-alive client).
"""

import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from lean_http import Lean, pct

BINARY = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "execkit-mcp"
CLIENTS = 50
FAILURES = []


def check(name, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + name + (f"  ({detail})" if detail else ""), flush=True)
    if not ok:
        FAILURES.append(name)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, deadline=20):
    end = time.time() + deadline
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def sleep_arg(n):
    """The argument of client n's background `sleep`: unique to this run and client."""
    return f"{600 + n}.{os.getpid() % 100000:05d}"


def sleepers():
    """Client numbers whose `sleep` runs on this host now, with their pids."""
    suffix = f".{os.getpid() % 100000:05d}"
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if len(argv) >= 2 and argv[0].endswith(b"sleep") and argv[1].decode(errors="replace").endswith(suffix):
            n = int(argv[1].decode().split(".")[0]) - 600
            out.setdefault(n, []).append(int(d))
    return out


async def one_client(url, token, n, results):
    """A client's whole life before the kill: session, process, exact results."""
    hc = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    # The handshake-era protocol: its Mcp-Session-Id is what the proxy's affinity keys on
    # (the 2026-07-28 protocol has no MCP sessions; see docs/http.md).
    stack = Client(streamable_http_client(url, http_client=hc), mode="legacy")
    c = await stack.__aenter__()
    r = await c.call_tool("session_create", {})
    sid = r.structured_content["session_id"]
    r = await c.call_tool("process_start", {"session_id": sid, "command": f"sleep {sleep_arg(n)}"})
    ok = not r.is_error
    why = [] if ok else [r.structured_content]
    for k in range(3):
        r = await c.call_tool("session_exec", {"session_id": sid, "command": f"echo client-{n}-{k}; expr {n} \\* {k + 7}"})
        sc = r.structured_content or {}
        if sc.get("stdout") != f"client-{n}-{k}\n{n * (k + 7)}\n":
            ok = False
            why.append(sc)
    results[n] = {"client": c, "stack": stack, "sid": sid, "ok": ok, "why": why}


async def main():
    root = tempfile.mkdtemp(prefix="execkit-haproxy-")
    proxy_port, ports = free_port(), [free_port(), free_port()]
    url = f"http://127.0.0.1:{proxy_port}/mcp"
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid="k1", alg="RS256")
    with open(f"{root}/jwks.json", "w") as f:
        json.dump({"keys": [jwk]}, f)

    def token(sub, aud=url):
        return jwt.encode({"sub": sub, "iss": "https://idp.lb.test", "aud": [aud, "direct"],
                           "exp": int(time.time()) + 3600}, key, algorithm="RS256", headers={"kid": "k1"})

    servers = []
    for i, port in enumerate(ports):
        ws = f"{root}/ws{i}"
        os.makedirs(ws)
        with open(f"{root}/c{i}.toml", "w") as f:
            f.write(f'''[workspaces]
default = "{ws}"
[audit]
path = "{root}/audit{i}.jsonl"
[limits]
max_sessions = 64
[http]
resource = "{url}"
requests_per_minute = 0
[http.auth]
issuer = "https://idp.lb.test"
jwks_file = "{root}/jwks.json"
audience = ["{url}", "direct"]
''')
        err = open(f"{root}/server{i}.stderr", "w")
        servers.append(subprocess.Popen([BINARY, "--config", f"{root}/c{i}.toml", "serve", "--http", f"127.0.0.1:{port}"],
                                        stderr=err, env={**os.environ, "RUST_LOG": "warn"}))
    with open(f"{root}/haproxy.cfg", "w") as f:
        f.write(f'''global
    maxconn 2000
defaults
    mode http
    timeout connect 2s
    timeout client 120s
    timeout server 120s
    option redispatch
frontend mcp
    bind 127.0.0.1:{proxy_port}
    default_backend execkit
backend execkit
    balance roundrobin
    stick-table type string len 64 size 100k expire 2h
    stick on req.hdr(mcp-session-id)
    stick store-response res.hdr(mcp-session-id)
    server a 127.0.0.1:{ports[0]} check inter 300ms fall 1 rise 1
    server b 127.0.0.1:{ports[1]} check inter 300ms fall 1 rise 1
''')
    proxy = subprocess.Popen(["haproxy", "-db", "-f", f"{root}/haproxy.cfg"],
                             stdout=subprocess.DEVNULL, stderr=open(f"{root}/haproxy.stderr", "w"))
    results = {}
    try:
        check("both backends and the proxy listen",
              all(wait_port(p) for p in ports + [proxy_port]))
        time.sleep(0.5)  # the first health checks

        # --- 50 concurrent clients through the proxy.
        t0 = time.time()
        await asyncio.gather(*(one_client(url, token(f"agent-{n}"), n, results) for n in range(CLIENTS)))
        check(f"{CLIENTS} concurrent clients, every result exact",
              len(results) == CLIENTS and all(r["ok"] for r in results.values()),
              f"{sum(r['ok'] for r in results.values())} of {len(results)} in {time.time() - t0:.1f}s; "
              + str([r["why"] for r in results.values() if not r["ok"]][:2])[:600])
        on = []
        for i in range(2):
            with open(f"{root}/audit{i}.jsonl") as f:
                recs = [json.loads(line) for line in f]
            on.append({r["session"] for r in recs if r.get("kind") == "session" and r.get("event") == "opened"})
        where = {n: (0 if r["sid"] in on[0] else 1 if r["sid"] in on[1] else None) for n, r in results.items()}
        counts = [sum(1 for w in where.values() if w == i) for i in range(2)]
        check("sessions are spread over both backends", all(c > 0 for c in counts) and None not in where.values(),
              f"a {counts[0]}, b {counts[1]}")
        check("every background process runs", len(sleepers()) == CLIENTS, str(len(sleepers())))

        # --- Kill backend a.
        servers[0].send_signal(signal.SIGKILL)
        servers[0].wait(timeout=10)
        time.sleep(1.0)
        killed = [n for n, w in where.items() if w == 0]
        alive = [n for n, w in where.items() if w == 1]

        async def after(n):
            r = results[n]
            try:
                res = await asyncio.wait_for(
                    r["client"].call_tool("session_exec", {"session_id": r["sid"], "command": f"echo again-{n}"}), 30)
                sc = res.structured_content or {}
                return ("ok", sc.get("stdout")) if not res.is_error else ("tool-error", sc.get("error"))
            except Exception as e:  # the transport's error: the MCP session is gone
                return ("error", f"{type(e).__name__}: {e}")

        outcomes = await asyncio.gather(*(after(n) for n in results))
        by = dict(zip(results.keys(), outcomes))
        check("the killed backend's clients get an error, not a result",
              all(by[n][0] != "ok" for n in killed), str([by[n] for n in killed][:3]))
        check("the error says the session is gone",
              all(("404" in str(by[n][1]) or "not found" in str(by[n][1]).lower()
                   or "terminated" in str(by[n][1]).lower() or by[n][1] == "unknown_session") for n in killed),
              str([by[n] for n in killed][:2]))
        check("the other backend's sessions answer exactly",
              all(by[n] == ("ok", f"again-{n}\n") for n in alive), str([by[n] for n in alive if by[n][0] != "ok"][:3]))
        time.sleep(1.0)
        running = sleepers()
        left = [n for n in killed if n in running]
        check("nothing the killed backend's sessions started is left running", left == [], str(left))
        still = [n for n in alive if n in running]
        check("the other backend's processes still run", len(still) == len(alive), f"{len(still)} of {len(alive)}")

        for n in alive:
            await results[n]["client"].call_tool("session_destroy", {"session_id": results[n]["sid"]})
        for r in results.values():
            try:
                await asyncio.wait_for(r["stack"].__aexit__(None, None, None), 10)
            except BaseException:
                pass

        # --- Latency: through the proxy (to backend b) and directly.
        via = Lean(proxy_port, token("bench"))
        direct = Lean(ports[1], token("bench-direct"))
        tp = via.timed_execs(300)
        td = direct.timed_execs(300)
        print(f"session_exec through HAProxy: p50 {statistics.median(tp):.2f} ms  p99 {pct(tp, 0.99):.2f} ms")
        print(f"session_exec direct:          p50 {statistics.median(td):.2f} ms  p99 {pct(td, 0.99):.2f} ms")
    finally:
        proxy.terminate()
        for s in servers:
            if s.poll() is None:
                s.terminate()
                try:
                    s.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    s.kill()
        for pids in sleepers().values():
            for p in pids:
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
        if FAILURES:
            for name in ("server0.stderr", "server1.stderr", "haproxy.stderr"):
                try:
                    print(f"--- {name}\n" + open(f"{root}/{name}").read()[-2000:])
                except OSError:
                    pass
        shutil.rmtree(root, ignore_errors=True)


asyncio.run(main())
if FAILURES:
    print(f"{len(FAILURES)} failed: {FAILURES}")
    sys.exit(1)
print("all passed")
