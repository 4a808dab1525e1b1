"""The execkit-mcp wheel: its console scripts are the Rust binaries, and the Python `mcp`
client drives the installed server over stdio."""

import asyncio
import os
import shutil
import subprocess
import sys

import pytest

from conftest import need


def installed(name):
    # The console script of the wheel installed next to this interpreter.
    path = os.path.join(os.path.dirname(sys.executable), name)
    need(f"the execkit-mcp wheel's `{name}` in {os.path.dirname(sys.executable)}", os.path.exists(path))
    return path


def test_doctor_runs_from_the_wheel():
    r = subprocess.run([installed("execkit-mcp"), "doctor"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "landlock" in r.stdout and "ready" in r.stdout


def test_cli_from_the_wheel():
    r = subprocess.run(
        [installed("execkit"), "policy", "check", "--json", "--", "cat", "/etc/shadow"],
        capture_output=True, text=True, timeout=60,
    )
    assert r.returncode == 2, r.stderr
    assert '"verdict": "deny"' in r.stdout


def test_python_mcp_client_drives_the_installed_server(tmp_path):
    try:
        from mcp import Client
        from mcp.client.stdio import StdioServerParameters
    except ImportError:
        need("the Python mcp package", False)
    binary = installed("execkit-mcp")
    ws = tmp_path / "ws"
    (ws / "sub").mkdir(parents=True)
    config = tmp_path / "execkit.toml"
    config.write_text(f'[workspaces]\ndefault = "{ws.resolve()}"\n')
    params = StdioServerParameters(command=binary, args=["--config", str(config)], env={"RUST_LOG": "warn"})

    async def main():
        async with Client(params, mode="legacy") as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            assert {"session_create", "session_exec", "policy_check"} <= tools
            r = await client.call_tool("session_create", {"transport": "local"})
            sid = r.structured_content["session_id"]
            await client.call_tool("session_exec", {"session_id": sid, "command": "cd sub && export W=wheel"})
            r = await client.call_tool("session_exec", {"session_id": sid, "command": "echo $W; pwd"})
            assert r.structured_content["stdout"] == f"wheel\n{ws.resolve()}/sub\n", r
            r = await client.call_tool("session_exec", {"session_id": sid, "command": "cat /etc/shadow"})
            assert r.is_error
            await client.call_tool("session_destroy", {"session_id": sid})

    asyncio.run(main())


def test_the_wheels_need_no_rust():
    # The suite runs with EXECKIT_NO_RUST=1 where scripts/test.sh installed the wheels with
    # no Rust toolchain on PATH: nothing here may have needed one.
    if os.environ.get("EXECKIT_NO_RUST") != "1":
        pytest.skip("only where the wheels were installed without Rust (scripts/test.sh)")
    for tool in ("cargo", "rustc"):
        assert shutil.which(tool) is None, f"{tool} is reachable: {shutil.which(tool)}"
    import execkit
    assert "site-packages" in execkit.__file__, execkit.__file__
    r = subprocess.run([installed("execkit-mcp"), "--version"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "execkit-mcp" in r.stdout, r.stdout + r.stderr
