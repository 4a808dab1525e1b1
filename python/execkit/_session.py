"""``Session`` (blocking) and ``AsyncSession`` (asyncio) over one native session type.

Opening options are the operator's: policies, sandbox profile, timeouts, secrets, audit
log, identity. What the agent sends is the command string, and only the policies decide
whether it runs. Per-call options (``budget``, ``timeout``) can only narrow: a timeout
above the session's ``max_timeout`` is cut to it.
"""

from __future__ import annotations

import atexit
import inspect
import os
import weakref
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from ._budget import BudgetDict
from ._execkit import Decision, ExecResult, NativeSession, Process, Timeout

PathLike = Union[str, "os.PathLike[str]"]

# Sessions still open when the interpreter exits are closed, so no shell outlives Python.
_open: "weakref.WeakSet[NativeSession]" = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for s in list(_open):
        try:
            s.close()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


def _path(p: Optional[PathLike]) -> Optional[str]:
    return os.fspath(p) if p is not None else None


def _common(
    workspace: Optional[PathLike],
    policies: Optional[PathLike],
    profile: Optional[str],
    timeout: Optional[float],
    max_timeout: Optional[float],
    env: Optional[Mapping[str, str]],
    secrets: Optional[Sequence[str]],
    audit: Optional[PathLike],
    identity: Optional[str],
    groups: Optional[Sequence[str]],
    home: Optional[PathLike],
    writable: Optional[Sequence[PathLike]],
    checkpoints: bool,
) -> Dict[str, Any]:
    opts: Dict[str, Any] = {
        "workspace": _path(workspace),
        "policies": _path(policies),
        "profile": profile,
        "timeout": timeout,
        "max_timeout": max_timeout,
        "env": dict(env) if env is not None else None,
        "secrets": list(secrets) if secrets is not None else None,
        "audit": _path(audit),
        "identity": identity,
        "groups": list(groups) if groups is not None else None,
        "home": _path(home),
        "writable": [os.fspath(w) for w in writable] if writable is not None else None,
        "checkpoints": checkpoints,
    }
    return {k: v for k, v in opts.items() if v is not None}


def _drop_none(d: Dict[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def _exec_options(
    budget: Optional[BudgetDict],
    stderr_budget: Optional[BudgetDict],
    timeout: Optional[float],
    approved_by: Optional[str],
) -> Dict[str, Any]:
    return _drop_none(
        {
            "budget": budget,
            "stderr_budget": stderr_budget,
            "timeout": timeout,
            "approved_by": approved_by,
        }
    )


def _checked(r: ExecResult, command: str, raise_on_timeout: bool) -> ExecResult:
    if r.timed_out and raise_on_timeout:
        err = Timeout(f"timed out after {r.duration_ms} ms and was interrupted: {command!r}")
        err.result = r  # type: ignore[attr-defined]
        raise err
    return r


_OPEN_DOC = """
    Operator options (they widen or narrow what the agent may do):

    - ``workspace``: where the shell starts; under the ``workspace`` profile the only
      place it may write (default: the current directory; remote: a path on the target).
    - ``policies``: a policy directory; default: the embedded ``default`` set.
    - ``profile``: ``read-only``, ``workspace`` (default), ``workspace-net`` or ``off``.
    - ``timeout`` / ``max_timeout``: default and longest per-command timeout, seconds.
    - ``env``: variables added to the shell's clean environment.
    - ``secrets``: values redacted wherever they appear in output.
    - ``audit``: a hash-chained JSON Lines audit log to append to.
    - ``identity`` / ``groups``: the agent as the policies see it.
    - ``home``, ``writable`` (extra writable paths), ``checkpoints`` (on by default).
"""


def _local_options(
    workspace: Optional[PathLike] = None,
    *,
    policies: Optional[PathLike] = None,
    profile: Optional[str] = None,
    timeout: Optional[float] = None,
    max_timeout: Optional[float] = None,
    env: Optional[Mapping[str, str]] = None,
    secrets: Optional[Sequence[str]] = None,
    audit: Optional[PathLike] = None,
    identity: Optional[str] = None,
    groups: Optional[Sequence[str]] = None,
    home: Optional[PathLike] = None,
    writable: Optional[Sequence[PathLike]] = None,
    checkpoints: bool = True,
) -> Dict[str, Any]:
    return _common(workspace, policies, profile, timeout, max_timeout, env, secrets,
                   audit, identity, groups, home, writable, checkpoints)


def _ssh_options(
    host: str,
    *,
    user: str,
    known_hosts: PathLike,
    port: int = 22,
    key: Union[PathLike, Sequence[PathLike], None] = None,
    password: Optional[str] = None,
    passphrase: Optional[str] = None,
    agent_socket: Optional[PathLike] = None,
    trust_on_first_use: bool = False,
    connect_timeout: Optional[float] = None,
    workspace: Optional[PathLike] = None,
    policies: Optional[PathLike] = None,
    timeout: Optional[float] = None,
    max_timeout: Optional[float] = None,
    env: Optional[Mapping[str, str]] = None,
    secrets: Optional[Sequence[str]] = None,
    audit: Optional[PathLike] = None,
    identity: Optional[str] = None,
    groups: Optional[Sequence[str]] = None,
    checkpoints: bool = True,
) -> Dict[str, Any]:
    """Opens a session on an SSH host, checked against ``known_hosts`` (unknown hosts are
    refused unless ``trust_on_first_use``), authenticated with ``key`` (a path or a list),
    ``agent_socket``, or ``password``. No kernel sandbox stands behind an SSH session: the
    policies are the guard. ``workspace`` is a path on the host."""
    opts = _common(workspace, policies, None, timeout, max_timeout, env, secrets,
                   audit, identity, groups, None, None, checkpoints)
    if isinstance(key, (str, os.PathLike)):
        keys: Optional[List[str]] = [os.fspath(key)]
    elif key is not None:
        keys = [os.fspath(k) for k in key]
    else:
        keys = None
    opts.update(_drop_none({
        "host": host,
        "user": user,
        "port": port,
        "known_hosts": _path(known_hosts),
        "key": keys,
        "password": password,
        "passphrase": passphrase,
        "agent_socket": _path(agent_socket),
        "trust_on_first_use": trust_on_first_use,
        "connect_timeout": connect_timeout,
    }))
    return opts


def _docker_options(
    *,
    container: Optional[str] = None,
    image: Optional[str] = None,
    endpoint: Optional[str] = None,
    network: Optional[bool] = None,
    user: Optional[str] = None,
    mount: Optional[PathLike] = None,
    workspace: Optional[PathLike] = None,
    policies: Optional[PathLike] = None,
    timeout: Optional[float] = None,
    max_timeout: Optional[float] = None,
    env: Optional[Mapping[str, str]] = None,
    secrets: Optional[Sequence[str]] = None,
    audit: Optional[PathLike] = None,
    identity: Optional[str] = None,
    groups: Optional[Sequence[str]] = None,
    checkpoints: bool = True,
) -> Dict[str, Any]:
    """Opens a session in a running ``container``, or in a fresh hardened container from a
    local ``image`` (no network unless ``network``, capped processes and memory; ``mount``
    is a host directory mounted at ``/work``). ``endpoint``: the daemon's socket
    (default ``unix:///var/run/docker.sock``). No kernel sandbox of execkit's stands
    behind it: the container and the policies are the guard."""
    opts = _common(workspace, policies, None, timeout, max_timeout, env, secrets,
                   audit, identity, groups, None, None, checkpoints)
    opts.update(_drop_none({
        "container": container,
        "image": image,
        "endpoint": endpoint,
        "network": network,
        "user": user,
        "mount": _path(mount),
    }))
    return opts





class _SessionBase:
    """What both flavours share: the native session and the calls that never wait."""

    def __init__(self, native: NativeSession) -> None:
        self._s = native
        _open.add(native)

    def cancel(self) -> None:
        """Cancels the running command (from another thread, or the event loop)."""
        self._s.cancel()

    def redact(self, text: str) -> str:
        """``text`` redacted as this session redacts output."""
        return self._s.redact(text)

    def progress(self) -> Optional[Dict[str, Any]]:
        """Where the running command has got, from any thread (None when none runs):
        ``stdout_bytes``, ``stderr_bytes``, and ``stdout_tail`` / ``stderr_tail``, the end
        of its output so far protected as the result will be (complete lines only). Each
        call asks for a fresh preview and returns the latest one."""
        return self._s.progress()

    def processes(self) -> List[Dict[str, Any]]:
        """Every background process still known."""
        return self._s.processes()

    @property
    def id(self) -> str:
        """The session id."""
        return self._s.id

    @property
    def transport(self) -> str:
        """``local``, ``ssh`` or ``docker``."""
        return self._s.transport

    @property
    def closed(self) -> bool:
        """True once closed."""
        return not self._s.open_now

    def __repr__(self) -> str:
        return repr(self._s)


class Session(_SessionBase):
    """A persistent, policy-checked shell session. Blocking: each call waits with the GIL
    released, so other Python threads run meanwhile; Ctrl-C cancels a running command and
    leaves the session usable.

    Open one with ``Session.local``, ``Session.ssh`` or ``Session.docker``; use it as a
    context manager, or call ``close()``.
    """

    # -- opening --------------------------------------------------------------------

    @classmethod
    def local(cls, workspace: Optional[PathLike] = None, **options: Any) -> "Session":
        return cls(NativeSession.open("local", _local_options(workspace, **options)))

    @classmethod
    def ssh(cls, host: str, **options: Any) -> "Session":
        return cls(NativeSession.open("ssh", _ssh_options(host, **options)))

    @classmethod
    def docker(cls, **options: Any) -> "Session":
        return cls(NativeSession.open("docker", _docker_options(**options)))

    # -- running --------------------------------------------------------------------

    def exec(
        self,
        command: str,
        *,
        budget: Optional[BudgetDict] = None,
        stderr_budget: Optional[BudgetDict] = None,
        timeout: Optional[float] = None,
        approved_by: Optional[str] = None,
        raise_on_timeout: bool = True,
    ) -> ExecResult:
        """Runs ``command`` in the session and returns its ``ExecResult``.

        Raises ``Denied`` (it never ran), ``NeedsApproval`` (a policy asks a human: run it
        again with ``approved_by=OPERATOR`` once one agreed), ``Timeout`` (interrupted;
        ``.result`` holds the partial output; the session stays usable; pass
        ``raise_on_timeout=False`` to get the result instead), ``ShellGone``,
        ``Rejected``. ``budget`` / ``stderr_budget`` shape the output (``Budget.tail(20)``).
        """
        r = self._s.exec(command, _exec_options(budget, stderr_budget, timeout, approved_by))
        return _checked(r, command, raise_on_timeout)

    def decide(self, command: str) -> Decision:
        """The decision ``command`` would get now (in the current cwd), without running it."""
        return self._s.decide(command)

    def cwd(self) -> str:
        """The shell's working directory."""
        return self._s.cwd()

    def info(self) -> Dict[str, Any]:
        """Id, workspace, private tmp dir, shell pid, sandbox enforcement, user."""
        return self._s.info()

    # -- background processes -------------------------------------------------------

    def spawn(
        self,
        command: str,
        *,
        name: Optional[str] = None,
        pty: bool = False,
        rows: Optional[int] = None,
        cols: Optional[int] = None,
        approved_by: Optional[str] = None,
    ) -> Process:
        """Starts ``command`` in the background (authorized like ``exec``); read its output
        with ``Process.read`` / ``Process.wait``."""
        return self._s.spawn(command, _drop_none(
            {"name": name, "pty": pty, "rows": rows, "cols": cols, "approved_by": approved_by}))

    def process(self, id: str) -> Process:
        """The background process with this id."""
        return self._s.process(id)

    # -- checkpoints ----------------------------------------------------------------

    def checkpoint(self, label: Optional[str] = None) -> Dict[str, Any]:
        """Snapshots the workspace files; returns the checkpoint (``id``, counts, size)."""
        return self._s.checkpoint(label)

    def checkpoints(self) -> List[Dict[str, Any]]:
        """The checkpoints kept, oldest first."""
        return self._s.checkpoints()

    def restore(self, id: str) -> Dict[str, Any]:
        """Puts the workspace files back as they were at checkpoint ``id``."""
        return self._s.restore(id)

    def diff(self, id: str) -> Dict[str, Any]:
        """What changed since checkpoint ``id``: paths, counts, a redacted unified diff."""
        return self._s.diff(id)

    # -- life -----------------------------------------------------------------------

    def restart(self) -> Dict[str, Any]:
        """Starts a new shell in place of the old one (after it ended, or to start over).

        The old working directory and exported variables are restored by a command the
        policies decide; shell variables and functions are not. Returns what happened:
        ``{"cwd": ..., "restored": [...], "refused": [...]}``.
        """
        return self._s.restart()

    def close(self) -> None:
        """Kills the shell and everything it started. Closing twice is fine."""
        self._s.close()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

class _Opening:
    """What ``AsyncSession.local/ssh/docker`` return: await it for the session, or use it
    as ``async with`` (the session is closed at the end of the block)."""

    def __init__(self, kind: str, opts: Dict[str, Any]) -> None:
        self._kind = kind
        self._opts = opts
        self._session: Optional[AsyncSession] = None

    async def _open(self) -> "AsyncSession":
        native = await NativeSession.open_async(self._kind, self._opts)
        return AsyncSession(native)

    def __await__(self):  # type: ignore[no-untyped-def]
        return self._open().__await__()

    async def __aenter__(self) -> "AsyncSession":
        self._session = await self._open()
        return self._session

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()


class AsyncSession(_SessionBase):
    """``Session`` for asyncio: every call that waits is a coroutine and never blocks the
    event loop, so many sessions run at once::

        async with AsyncSession.local("/srv/app") as s:
            r = await s.exec("make test", timeout=600)
    """

    @staticmethod
    def local(workspace: Optional[PathLike] = None, **options: Any) -> _Opening:
        return _Opening("local", _local_options(workspace, **options))

    @staticmethod
    def ssh(host: str, **kwargs: Any) -> _Opening:
        """An SSH session; the same options as ``Session.ssh``."""
        return _Opening("ssh", _ssh_options(host, **kwargs))

    @staticmethod
    def docker(**kwargs: Any) -> _Opening:
        """A Docker session; the same options as ``Session.docker``."""
        return _Opening("docker", _docker_options(**kwargs))

    async def exec(
        self,
        command: str,
        *,
        budget: Optional[BudgetDict] = None,
        stderr_budget: Optional[BudgetDict] = None,
        timeout: Optional[float] = None,
        approved_by: Optional[str] = None,
        raise_on_timeout: bool = True,
    ) -> ExecResult:
        """``Session.exec`` as a coroutine."""
        r = await self._s.exec_async(
            command, _exec_options(budget, stderr_budget, timeout, approved_by))
        return _checked(r, command, raise_on_timeout)

    async def decide(self, command: str) -> Decision:
        """``Session.decide`` as a coroutine."""
        return await self._s.decide_async(command)

    async def spawn(
        self,
        command: str,
        *,
        name: Optional[str] = None,
        pty: bool = False,
        rows: Optional[int] = None,
        cols: Optional[int] = None,
        approved_by: Optional[str] = None,
    ) -> Process:
        """``Session.spawn`` as a coroutine (use ``Process.wait_async``)."""
        return await self._s.spawn_async(command, _drop_none(
            {"name": name, "pty": pty, "rows": rows, "cols": cols, "approved_by": approved_by}))

    async def checkpoint(self, label: Optional[str] = None) -> Dict[str, Any]:
        """``Session.checkpoint`` as a coroutine."""
        return await self._s.checkpoint_async(label)

    async def checkpoints(self) -> List[Dict[str, Any]]:
        """``Session.checkpoints`` as a coroutine."""
        return await self._s.checkpoints_async()

    async def restore(self, id: str) -> Dict[str, Any]:
        """``Session.restore`` as a coroutine."""
        return await self._s.restore_async(id)

    async def diff(self, id: str) -> Dict[str, Any]:
        """``Session.diff`` as a coroutine."""
        return await self._s.diff_async(id)

    async def restart(self) -> Dict[str, Any]:
        """``Session.restart`` as a coroutine."""
        return await self._s.restart_async()

    async def close(self) -> None:
        """``Session.close`` as a coroutine."""
        await self._s.close_async()

    async def __aenter__(self) -> "AsyncSession":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

_local_options.__doc__ = (
    "Starts a local session: bash under Landlock and seccomp in ``workspace``.\n" + _OPEN_DOC)

# local/ssh/docker take their options from one checked signature each; show it in help().
for _cls in (Session, AsyncSession):
    for _name, _builder in (("local", _local_options), ("ssh", _ssh_options),
                            ("docker", _docker_options)):
        _f = getattr(_cls, _name)
        _f = getattr(_f, "__func__", _f)
        _f.__doc__ = (_builder.__doc__ or "") + ("" if _cls is Session else
                                                  "\n\n    Await the result, or use it with ``async with``.")
        _sig = inspect.signature(_builder)
        _params = list(_sig.parameters.values())
        if _cls is Session:  # a classmethod: help() drops the first parameter, `cls`
            _params.insert(0, inspect.Parameter("cls", inspect.Parameter.POSITIONAL_ONLY))
        _f.__signature__ = _sig.replace(  # type: ignore[attr-defined]
            parameters=_params,
            return_annotation="Session" if _cls is Session else "_Opening")
