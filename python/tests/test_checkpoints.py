"""Checkpoints from Python: snapshot, diff, restore; restore is authorized."""

import execkit


def test_checkpoint_diff_restore(session, workspace):
    (workspace / "keep.txt").write_text("one\n")
    c = session.checkpoint("start")
    assert c["label"] == "start"
    session.exec("echo two >> keep.txt; echo new > added.txt; mkdir d")
    d = session.diff(c["id"])
    assert (d["counts"]["added"], d["counts"]["changed"]) == (1, 1)
    assert "+two" in d["diff"]
    session.restore(c["id"])
    assert (workspace / "keep.txt").read_text() == "one\n"
    assert not (workspace / "added.txt").exists()
    assert [x["id"] for x in session.checkpoints()] == [c["id"]]


def test_diff_is_redacted(workspace):
    token = "ghp_OO8lK1oKFTHq7BQRKw7ah1WXPs5c42LMSdpR"
    with execkit.Session.local(workspace) as s:
        c = s.checkpoint()
        (workspace / "leak.env").write_text(f"GITHUB_TOKEN={token}\n")
        d = s.diff(c["id"])
        assert "leak.env" in str(d) and token not in d["diff"]


def test_unknown_checkpoint_is_an_error(session):
    import pytest

    with pytest.raises(execkit.CheckpointError):
        session.diff("c-doesnotexist")


def test_checkpoints_can_be_off(workspace):
    import pytest

    with execkit.Session.local(workspace, checkpoints=False) as s:
        with pytest.raises(execkit.CheckpointError):
            s.checkpoint()
