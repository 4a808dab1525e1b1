"""execkit-mcp on Streamable HTTP with bearer tokens, driven by the Python `mcp` SDK.

Run: python tests/python/test_http.py PATH/TO/execkit-mcp [PATH/TO/mcp-inspector]
(with the MCP Inspector's node on PATH, the Inspector CLI is a second HTTP client).
Tokens are minted here with a throwaway RSA key (PyJWT, which the `mcp` SDK depends on);
the server reads the key set from a JWKS file. Checks, one line each (any failure exits
non-zero):
- no token / expired / wrong audience / wrong issuer / bad signature / unknown key → 401
  with `WWW-Authenticate: Bearer resource_metadata=…` (and `error="invalid_token"` when a
  token was sent), and no tool is reached (the audit log has no record of the attempt);
- the protected-resource metadata (RFC 9728) names the resource and the issuer;
- identity B cannot exec in, read the processes of, read the history of, list or destroy
  identity A's session, nor join A's MCP session; A's session is untouched afterwards;
- the shipped `default` set lets Group::"oncall" open SSH sessions to the hosts of
  TargetGroup::"ssh-production" and nobody else (one policy, two groups);
- a rotated key set is picked up without a restart;
- per-identity session cap; each audit record names the token's subject.
"""

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

BINARY = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "execkit-mcp"
INSPECTOR = sys.argv[2] if len(sys.argv) > 2 else None
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ISSUER = "https://idp.execkit.test"
FAILURES = []


def check(name, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + name + (f"  ({detail})" if detail else ""), flush=True)
    if not ok:
        FAILURES.append(name)


def new_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwks(keys):
    out = []
    for kid, k in keys:
        j = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(k.public_key()))
        j.update(kid=kid, alg="RS256", use="sig")
        out.append(j)
    return {"keys": out}


class Idp:
    """Mints tokens for the test's audience."""

    def __init__(self, audience):
        self.audience = audience
        self.kid, self.key = "k1", new_key()

    def token(self, sub, groups=(), key=None, kid=None, **claims):
        now = int(time.time())
        c = {"sub": sub, "groups": list(groups), "iss": ISSUER, "aud": self.audience,
             "iat": now, "exp": now + 600}
        c.update(claims)
        return jwt.encode(c, key or self.key, algorithm="RS256", headers={"kid": kid or self.kid})


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def post(url, token=None, body=None):
    """A raw MCP POST; returns (status, headers, text)."""
    data = json.dumps(body or {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode()
    req = urllib.request.Request(url, data=data, method="POST")
    req.add_header("content-type", "application/json")
    req.add_header("accept", "application/json, text/event-stream")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                         "clientInfo": {"name": "raw", "version": "1"}}}


def client(url, token):
    hc = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    return Client(streamable_http_client(url, http_client=hc))


def sc(r):
    return r.structured_content or {}


def audit_records(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


async def main():
    root = tempfile.mkdtemp(prefix="execkit-http-")
    ws = os.path.join(root, "ws")
    os.makedirs(ws)
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    idp = Idp(url)
    jwks_path = os.path.join(root, "jwks.json")
    with open(jwks_path, "w") as f:
        json.dump(jwks([(idp.kid, idp.key)]), f)
    # The shipped entities, with the operator's production hosts listed.
    with open(os.path.join(REPO, "policies/default/entities.json")) as f:
        entities = json.load(f)
    for e in entities:
        if e["uid"] == {"type": "TargetGroup", "id": "ssh-production"}:
            e["attrs"]["patterns"] = ["ssh:*@prod-*.example.invalid:*"]
    ent_path = os.path.join(root, "entities.json")
    with open(ent_path, "w") as f:
        json.dump(entities, f)
    audit = os.path.join(root, "audit.jsonl")
    config = os.path.join(root, "execkit.toml")
    with open(config, "w") as f:
        f.write(f'''[workspaces]
default = "{ws}"
allowed = ["{root}"]
[policy]
entities = "{ent_path}"
[audit]
path = "{audit}"
[http]
resource = "{url}"
sessions_per_identity = 2
[http.auth]
issuer = "{ISSUER}"
jwks_file = "{jwks_path}"
''')
    stderr = open(os.path.join(root, "server.stderr"), "w")
    proc = subprocess.Popen([BINARY, "--config", config, "serve", "--http", f"127.0.0.1:{port}"],
                            stderr=stderr, env={**os.environ, "RUST_LOG": "warn"})
    try:
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        await run_checks(url, idp, audit, jwks_path)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        stderr.close()
        if FAILURES:
            print(open(os.path.join(root, "server.stderr")).read()[-4000:])
        shutil.rmtree(root, ignore_errors=True)


async def run_checks(url, idp, audit, jwks_path):
    # --- The token matrix: nothing reaches a tool.
    before = len(audit_records(audit))
    other = new_key()
    cases = {
        "no token": None,
        "expired": idp.token("alice", exp=int(time.time()) - 3600, iat=int(time.time()) - 7200),
        "wrong audience": idp.token("alice", aud="https://elsewhere.test/mcp"),
        "wrong issuer": idp.token("alice", iss="https://evil.test"),
        "bad signature": idp.token("alice", key=other),
        "unknown key": idp.token("alice", key=other, kid="k9"),
        "not a JWT": "abc.def.ghi",
    }
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "session_create", "arguments": {}}}
    for name, tok in cases.items():
        status, headers, _ = post(url, tok, call)
        challenge = headers.get("www-authenticate", "")
        want_error = tok is not None
        check(f"401 for {name}",
              status == 401
              and challenge.startswith('Bearer resource_metadata="http://127.0.0.1:')
              and ('error="invalid_token"' in challenge) == want_error,
              f"{status} {challenge}")
    check("no tool was reached by a refused request", len(audit_records(audit)) == before,
          f"{before} -> {len(audit_records(audit))}")
    meta_url = url.rsplit("/mcp", 1)[0] + "/.well-known/oauth-protected-resource"
    with urllib.request.urlopen(meta_url, timeout=5) as r:
        meta = json.loads(r.read())
    check("protected-resource metadata", meta.get("resource") == url
          and meta.get("authorization_servers") == [ISSUER], str(meta))

    alice_tok = idp.token("alice", groups=["oncall"])
    bob_tok = idp.token("bob", groups=["developers"])

    # --- Ownership.
    async with client(url, alice_tok) as alice, client(url, bob_tok) as bob:
        r = await alice.call_tool("session_create", {})
        check("alice creates a session", not r.is_error, str(sc(r)))
        sid = sc(r)["session_id"]
        check("the session's identity is the token's subject",
              sc(r)["identity"]["agent"] == "alice", str(sc(r).get("identity")))
        r = await alice.call_tool("session_exec", {"session_id": sid, "command": "echo alice-was-here > mine.txt; echo ok"})
        check("alice runs a command", not r.is_error and sc(r).get("exit_code") == 0, str(sc(r)))
        r = await alice.call_tool("process_start", {"session_id": sid, "command": "sleep 30"})
        check("alice starts a process", not r.is_error, str(sc(r)))
        pid = sc(r).get("process_id") or sc(r).get("id")

        r = await bob.call_tool("session_exec", {"session_id": sid, "command": "cat mine.txt"})
        check("bob cannot exec in alice's session",
              r.is_error and sc(r).get("error") == "unknown_session", str(sc(r)))
        r = await bob.call_tool("process_read", {"process_id": pid})
        check("bob cannot read alice's process",
              r.is_error and sc(r).get("error") == "unknown_process", str(sc(r)))
        r = await bob.call_tool("process_signal", {"process_id": pid, "signal": "KILL"})
        check("bob cannot signal alice's process", r.is_error, str(sc(r)))
        r = await bob.call_tool("session_list", {})
        check("bob does not see alice's session", sc(r).get("sessions") == [], str(sc(r)))
        try:
            await bob.read_resource(f"execkit://sessions/{sid}/history")
            check("bob cannot watch alice's session history", False, "read succeeded")
        except Exception as e:  # the server answers resource-not-found
            check("bob cannot watch alice's session history", "history" in str(e) or "not" in str(e).lower(), str(e))
        r = await bob.call_tool("session_destroy", {"session_id": sid})
        check("bob cannot destroy alice's session",
              r.is_error and sc(r).get("error") == "unknown_session", str(sc(r)))
        r = await alice.call_tool("session_exec", {"session_id": sid, "command": "cat mine.txt"})
        check("alice's session is untouched",
              not r.is_error and "alice-was-here" in sc(r).get("stdout", ""), str(sc(r)))
        r = await alice.call_tool("process_read", {"process_id": pid})
        check("alice still reads her process", not r.is_error, str(sc(r)))

        # --- One policy, two groups: SSH to production for on-call only.
        target = {"transport": "ssh", "host": "prod-db.example.invalid", "user": "deploy"}
        r = await bob.call_tool("session_create", target)
        check("the developers group may not open SSH to production",
              r.is_error and sc(r).get("verdict") == "deny", str(sc(r))[:300])
        r = await alice.call_tool("session_create", target)
        check("the oncall group passes the policy (then finds no [ssh] configured)",
              r.is_error and sc(r).get("error") == "not_available", str(sc(r))[:300])

        # --- Per-identity cap (2): alice has one; one more, then refused.
        r = await alice.call_tool("session_create", {})
        check("a second session for alice", not r.is_error, str(sc(r)))
        r = await alice.call_tool("session_create", {})
        check("a third is over alice's cap",
              r.is_error and sc(r).get("error") == "limit" and "per identity" in sc(r).get("message", ""),
              str(sc(r)))
        r = await bob.call_tool("session_create", {})
        check("bob's cap is his own", not r.is_error, str(sc(r)))

    # A leaked MCP session id does not let another identity in.
    status, headers, _ = post(url, alice_tok, INITIALIZE)
    mcp_sid = headers.get("mcp-session-id")
    req = urllib.request.Request(url, data=json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}).encode(),
                                 method="POST")
    for k, v in {"content-type": "application/json", "accept": "application/json, text/event-stream",
                 "authorization": f"Bearer {bob_tok}", "mcp-session-id": mcp_sid or ""}.items():
        req.add_header(k, v)
    try:
        urllib.request.urlopen(req, timeout=5)
        code = 200
    except urllib.error.HTTPError as e:
        code = e.code
    check("bob cannot use alice's MCP session id", mcp_sid is not None and code == 404, f"{mcp_sid} {code}")

    # --- Key rotation without a restart.
    new_kid, new_k = "k2", new_key()
    with open(jwks_path + ".tmp", "w") as f:
        json.dump(jwks([(new_kid, new_k)]), f)
    os.replace(jwks_path + ".tmp", jwks_path)
    rotated = idp.token("carol", key=new_k, kid=new_kid)
    status, _, _ = post(url, rotated, INITIALIZE)
    check("a token signed by a rotated-in key is accepted", status == 200, str(status))
    status, _, _ = post(url, idp.token("carol"), INITIALIZE)
    check("a token of the rotated-out key is refused", status == 401, str(status))

    # --- The MCP Inspector CLI (TypeScript SDK) over HTTP, with and without a token.
    if INSPECTOR:
        base = [INSPECTOR, "--cli", url, "--transport", "http"]
        dave = idp.token("dave", key=new_k, kid=new_kid)
        p = subprocess.run(base + ["--header", f"Authorization: Bearer {dave}", "--method", "tools/call",
                                   "--tool-name", "session_create"],
                           capture_output=True, text=True, timeout=120)
        try:
            out = json.loads(p.stdout)
            created = out.get("structuredContent", {})
        except json.JSONDecodeError:
            created = {}
        check("the Inspector CLI creates a session with a bearer token",
              p.returncode == 0 and created.get("identity", {}).get("agent") == "dave",
              (p.stdout + p.stderr)[-300:])
        p = subprocess.run(base + ["--method", "tools/list"], capture_output=True, text=True, timeout=120)
        check("the Inspector CLI without a token is refused",
              p.returncode != 0 and "no bearer token" in (p.stdout + p.stderr), (p.stdout + p.stderr)[-300:])

    # --- The audit names each subject.
    agents = {r.get("agent") for r in audit_records(audit) if r.get("kind") in ("decision", "session")}
    check("audit records carry the token subjects", {"alice", "bob"} <= agents, str(agents))


asyncio.run(main())
if FAILURES:
    print(f"{len(FAILURES)} failed: {FAILURES}")
    sys.exit(1)
print("all passed")
