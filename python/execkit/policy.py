"""Dry runs for policy authors: the decision a command would get, without a session.

>>> from execkit import policy
>>> d = policy.check("rm -rf /", workspace="/srv/app")     # doctest: +SKIP
>>> d.verdict, d.policies
('deny', ['deny-system-writes'])
"""

from __future__ import annotations

import os
from typing import Optional, Sequence, Union

from ._execkit import Decision, policy_check

PathLike = Union[str, "os.PathLike[str]"]


def check(
    command: str,
    *,
    cwd: Optional[str] = None,
    workspace: Optional[str] = None,
    home: Optional[str] = None,
    policies: Optional[PathLike] = None,
    transport: Optional[str] = None,
    host: Optional[str] = None,
    identity: Optional[str] = None,
    groups: Optional[Sequence[str]] = None,
) -> Decision:
    """The decision for ``command``, as ``execkit policy check`` prints it.

    ``policies`` is a policy directory (``*.cedar``, ``entities.json``, optional schema),
    read on every call; default: the embedded ``default`` set. ``workspace`` defaults to
    the current directory, never to ``cwd``; relative directories are the current
    directory's and an empty one is a ``ValueError``; ``transport`` is ``local``, ``ssh`` or
    ``docker`` (with ``host`` for SSH); ``identity`` and ``groups`` name the agent.
    A command that cannot be parsed, or that names something the policies cannot judge,
    is denied with the reason in ``parse_error`` / ``entity_error``.
    """
    opts = {
        "cwd": cwd,
        "workspace": workspace,
        "home": home,
        "policies": os.fspath(policies) if policies is not None else None,
        "transport": transport,
        "host": host,
        "identity": identity,
        "groups": list(groups) if groups is not None else None,
    }
    return policy_check(command, {k: v for k, v in opts.items() if v is not None})


__all__ = ["check", "Decision"]
