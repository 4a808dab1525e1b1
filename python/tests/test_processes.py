"""Background processes from Python: authorized like exec, output kept and read by
cursor, stdin, signals."""

import pytest

from execkit import Denied, ProcessError


def test_process_lifecycle(session):
    p = session.spawn("for i in 1 2 3; do echo line $i; done; cat", name="worker")
    assert p.id.startswith("p-")
    w = p.wait(timeout=10, until="line 3")
    assert w["reason"] == "matched" and w["matched"] == "line 3"
    first = p.read(cursor="0:0")
    assert first["stdout"] == "line 1\nline 2\nline 3\n"
    assert p.write("echoed back\n") == len("echoed back\n")
    w = p.wait(timeout=10, until="echoed", cursor=first["next_cursor"])
    assert "echoed back" in w["output"]["stdout"]
    info = p.info()
    assert info["name"] == "worker" and info["state"]["state"] == "running"
    assert any(x["id"] == p.id for x in session.processes())
    st = p.terminate()
    assert st["state"] == "exited"
    assert p.done
    assert session.process(p.id).id == p.id


def test_process_signals_and_exit_codes(session):
    p = session.spawn("trap 'echo got USR1' USR1; echo armed; while true; do sleep 0.05; done")
    p.wait(timeout=10, until="armed")
    p.signal("USR1")
    assert p.wait(timeout=10, until="got USR1")["reason"] == "matched"
    with pytest.raises(ValueError, match="unknown signal"):
        p.signal("SEGV")
    p.signal("KILL")
    w = p.wait(timeout=10)
    assert w["reason"] == "exited" and w["output"]["state"]["signal"] == "KILL"
    with pytest.raises(ProcessError):
        p.write("too late\n")


def test_spawn_is_authorized_like_exec(session, workspace):
    with pytest.raises(Denied):
        session.spawn("touch spawned; cat /etc/shadow")
    assert not (workspace / "spawned").exists()
    with pytest.raises(ProcessError):
        session.process("p-00000000")


def test_secrets_in_process_output_are_redacted(workspace):
    import execkit

    token = "ghp_OO8lK1oKFTHq7BQRKw7ah1WXPs5c42LMSdpR"
    (workspace / "t").write_text(token + "\n")
    with execkit.Session.local(workspace) as s:
        p = s.spawn("cat t")
        w = p.wait(timeout=10)
        assert token not in w["output"]["stdout"]
        assert w["output"]["redactions"].get("github-pat") == 1
