"""`session_exec` of `echo hi` over Streamable HTTP on loopback, p50/p99 round trip.

Run: python tests/python/bench_http.py PATH/TO/execkit-mcp [CALLS]   (default 500)
Two clients: a lean one (one keep-alive HTTP/1.1 connection, `http.client`, JSON-RPC posts
with the bearer token and the MCP session id, reading the SSE answer: what the server and
the HTTP layer cost) and the Python `mcp` SDK's streamable HTTP client (what an agent built
on it sees). No audit log, the `default` policies, a fresh RSA key and token.
"""

import asyncio
import json
import os
import shutil
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

BINARY = os.path.abspath(sys.argv[1])
CALLS = int(sys.argv[2]) if len(sys.argv) > 2 else 500


def main():
    root = tempfile.mkdtemp(prefix="execkit-httpbench-")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    url = f"http://127.0.0.1:{port}/mcp"
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    j = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    j.update(kid="k1", alg="RS256")
    with open(os.path.join(root, "jwks.json"), "w") as f:
        json.dump({"keys": [j]}, f)
    token = jwt.encode({"sub": "bench", "iss": "https://idp.bench", "aud": url,
                        "exp": int(time.time()) + 3600}, key, algorithm="RS256", headers={"kid": "k1"})
    ws = os.path.join(root, "ws")
    os.makedirs(ws)
    with open(os.path.join(root, "c.toml"), "w") as f:
        f.write(f'[workspaces]\ndefault = "{ws}"\n[http]\nresource = "{url}"\nrequests_per_minute = 0\n'
                f'[http.auth]\nissuer = "https://idp.bench"\njwks_file = "{root}/jwks.json"\n')
    proc = subprocess.Popen([BINARY, "--config", f"{root}/c.toml", "serve", "--http", f"127.0.0.1:{port}"],
                            stderr=subprocess.DEVNULL, env={**os.environ, "RUST_LOG": "warn"})
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        times = Lean(port, token).timed_execs(CALLS)
        print(f"lean HTTP client:   session_exec p50 {statistics.median(times):.2f} ms  p99 {pct(times, 0.99):.2f} ms  ({CALLS} calls)")

        async def sdk():
            hc = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
            async with Client(streamable_http_client(url, http_client=hc)) as c:
                r = await c.call_tool("session_create", {})
                sid = r.structured_content["session_id"]
                ts = []
                for i in range(CALLS + 20):
                    t = time.perf_counter()
                    r = await c.call_tool("session_exec", {"session_id": sid, "command": "echo hi"})
                    dt = time.perf_counter() - t
                    assert r.structured_content["stdout"] == "hi\n"
                    if i >= 20:
                        ts.append(dt * 1000)
                return ts

        times = asyncio.run(sdk())
        print(f"Python mcp SDK:     session_exec p50 {statistics.median(times):.2f} ms  p99 {pct(times, 0.99):.2f} ms  ({CALLS} calls)")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)


main()
