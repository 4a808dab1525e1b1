"""execkit: policy-checked, sandboxed, stateful shell sessions for AI agents.

Every command goes through the same core as the execkit MCP server: it is parsed into a
bash syntax tree, each fact (program, path, redirect, host, payload of ``bash -c`` and
wrappers) is authorized by Cedar policies, and only then does it run, in a persistent
shell whose cwd, environment and functions carry over between commands. Local sessions run
under Landlock and seccomp. Output is stripped of terminal escapes, redacted and bounded
before Python sees it.

>>> from execkit import Session
>>> with Session.local("/tmp") as s:            # doctest: +SKIP
...     s.exec("cd /tmp && export X=1")
...     print(s.exec("echo $X; pwd").stdout)
1
/tmp

``Session`` blocks the calling thread (with the GIL released); ``AsyncSession`` is the same
API for asyncio. ``execkit.policy.check`` is a dry run for policy authors.
"""

from __future__ import annotations

from ._execkit import (
    CheckpointError,
    Decision,
    Denied,
    ExecKitError,
    ExecResult,
    NeedsApproval,
    Process,
    ProcessError,
    Rejected,
    SessionClosed,
    ShellGone,
    StartError,
    Timeout,
    __version__,
)
from ._budget import Budget
from ._session import AsyncSession, Session
from . import policy

__all__ = [
    "AsyncSession",
    "Budget",
    "CheckpointError",
    "Decision",
    "Denied",
    "ExecKitError",
    "ExecResult",
    "NeedsApproval",
    "Process",
    "ProcessError",
    "Rejected",
    "Session",
    "SessionClosed",
    "ShellGone",
    "StartError",
    "Timeout",
    "__version__",
    "policy",
]
