"""Fixtures for the execkit Python suite (run by scripts/test.sh against installed wheels).

Infrastructure a test needs (the test sshd and dockerd started by scripts/test.sh, the
server wheel's `execkit-mcp`) is found through the environment; with CI=true, missing
infrastructure fails the test instead of skipping it.
"""

import os
import pathlib

import pytest

import execkit

REPO = pathlib.Path(__file__).resolve().parents[2]


def need(what: str, present: bool) -> None:
    """Skips (locally) or fails (CI=true) when `what` is not available."""
    if present:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {what} is missing: scripts/test.sh provides it")
    pytest.skip(f"{what} is missing")


@pytest.fixture
def workspace(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws.resolve()


@pytest.fixture
def session(workspace):
    with execkit.Session.local(workspace) as s:
        yield s
