"""AsyncSession: the event loop keeps running while commands run, and many sessions run
at once."""

import asyncio

import pytest

import execkit
from execkit import AsyncSession, Budget, Denied, Timeout

SESSIONS = 20


def run(coro):
    return asyncio.run(coro)


def test_twenty_sessions_in_parallel_without_blocking_the_loop(workspace):
    """Each command waits for a file that a coroutine on the same loop creates only after
    all twenty commands have started: that finishes only if the twenty run at once and
    the loop is never blocked by them."""

    async def one(i):
        async with AsyncSession.local(workspace) as s:
            await s.exec(f"export N={i}")
            r = await s.exec(
                f"touch started-{i}; until [ -e go ]; do sleep 0.02; done; echo $N",
                timeout=120,
            )
            return r.stdout

    async def starter():
        while len(list(workspace.glob("started-*"))) < SESSIONS:
            await asyncio.sleep(0.02)
        (workspace / "go").touch()

    async def main():
        results = await asyncio.wait_for(
            asyncio.gather(*(one(i) for i in range(SESSIONS)), starter()), timeout=180
        )
        return results[:SESSIONS]

    out = run(main())
    assert out == [f"{i}\n" for i in range(SESSIONS)]


def test_async_api(workspace):
    async def main():
        s = await AsyncSession.local(workspace)
        try:
            assert s.transport == "local" and not s.closed
            await s.exec("mkdir -p a && cd a")
            r = await s.exec("pwd; seq 1 50", budget=Budget.tail(1))
            assert r.cwd == f"{workspace}/a" and r.stdout.endswith("50\n")
            d = await s.decide("rm -rf /")
            assert d.verdict == "deny"
            with pytest.raises(Denied):
                await s.exec("cat /etc/shadow")
            with pytest.raises(Timeout):
                await s.exec("sleep 30", timeout=0.5)
            assert (await s.exec("echo alive")).stdout == "alive\n"
            p = await s.spawn("echo ready; read x; echo got $x", name="reader")
            w = await p.wait_async(timeout=10, until="ready")
            assert w["reason"] == "matched"
            await p.write_async("hello\n", close=True)
            w = await p.wait_async(timeout=10)
            assert w["reason"] == "exited" and "got hello" in w["output"]["stdout"]
            c = await s.checkpoint("before")
            (workspace / "a" / "f").write_text("x")
            assert (await s.diff(c["id"]))["counts"]["added"] == 1
            await s.restore(c["id"])
            assert not (workspace / "a" / "f").exists()
        finally:
            await s.close()
        assert s.closed

    run(main())


def test_cancel_from_the_loop(workspace):
    async def main():
        async with AsyncSession.local(workspace) as s:
            task = asyncio.ensure_future(s.exec("touch begun; sleep 60"))
            while not (workspace / "begun").exists():
                await asyncio.sleep(0.02)
            s.cancel()
            r = await asyncio.wait_for(task, 30)
            assert r.cancelled
            assert (await s.exec("echo next")).stdout == "next\n"

    run(main())


def test_open_failure_is_an_exception(workspace):
    async def main():
        with pytest.raises(execkit.StartError):
            await AsyncSession.local(workspace / "missing")

    run(main())


def test_cancelling_an_awaited_exec_cancels_the_command(workspace):
    """asyncio.wait_for's timeout cancels the awaitable: the command is interrupted, and
    the session is ready for the next one (nothing is left mid-command)."""

    async def main():
        async with AsyncSession.local(workspace) as s:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(s.exec("touch begun; sleep 60; touch finished"), 0.5)
            r = await s.exec("echo next")
            assert r.stdout == "next\n"
            assert (workspace / "begun").exists() and not (workspace / "finished").exists()

    run(main())


EXIT_SCRIPT = """
import asyncio, sys, execkit
async def one(ws):
    async with execkit.AsyncSession.local(ws) as s:
        for _ in range(10):
            await s.exec("echo x")
async def main(ws):
    await asyncio.gather(*(one(ws) for _ in range(20)))
asyncio.run(main(sys.argv[1]))
"""


def test_the_interpreter_exits_cleanly_after_async_sessions(workspace):
    """Runtime threads never touch Python once the interpreter finalizes (without the
    atexit hook that closes them out, this aborts in about 4 of 15 runs)."""
    import subprocess
    import sys

    for _ in range(5):
        r = subprocess.run([sys.executable, "-c", EXIT_SCRIPT, str(workspace)],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
