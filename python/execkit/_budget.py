"""Output budgets: what to keep of a command's stdout or stderr.

A budget only narrows what the operator's capture limits keep. Totals (bytes, lines) in
``ExecResult.reports`` are exact whatever the budget; ``grep`` sees every line of the
stream, so a match in the middle of a gigabyte is found.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

BudgetDict = Dict[str, Any]


def _with_cap(d: BudgetDict, max_chars: Optional[int]) -> BudgetDict:
    if max_chars is not None:
        d["max_chars"] = max_chars
    return d


class Budget:
    """Constructors for budget dicts (``{"mode": "tail", "lines": 20}``), the same shape
    the MCP server's ``budget`` argument takes."""

    @staticmethod
    def full(max_chars: Optional[int] = None) -> BudgetDict:
        """The head and tail the capture limits keep (the default)."""
        return _with_cap({"mode": "full"}, max_chars)

    @staticmethod
    def head(lines: int, max_chars: Optional[int] = None) -> BudgetDict:
        """The first ``lines`` lines."""
        return _with_cap({"mode": "head", "lines": lines}, max_chars)

    @staticmethod
    def tail(lines: int, max_chars: Optional[int] = None) -> BudgetDict:
        """The last ``lines`` lines."""
        return _with_cap({"mode": "tail", "lines": lines}, max_chars)

    @staticmethod
    def head_tail(head: int, tail: int, max_chars: Optional[int] = None) -> BudgetDict:
        """The first ``head`` and the last ``tail`` lines."""
        return _with_cap({"mode": "head_tail", "head": head, "tail": tail}, max_chars)

    @staticmethod
    def grep(pattern: str, context: int = 0, max_chars: Optional[int] = None) -> BudgetDict:
        """Lines matching the regex ``pattern``, with ``context`` lines around each."""
        return _with_cap({"mode": "grep", "pattern": pattern, "context": context}, max_chars)
