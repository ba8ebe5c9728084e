"""The root of the kit's own exceptions.

Why one root: a notebook, the CLI or a test can catch every error the kit raises on purpose
with ``except InfralabError`` and tell it apart from a bug. Each class keeps its historical
base too (``ValueError``, ``RuntimeError``, ...), so existing ``except`` clauses still work.

The user-facing ones carry a ``hint``: what to do next. In Jupyter an error with a hint is
shown as its message and the hint, without a traceback (the traceback is a bug report's
business, not a student's); an error without a hint keeps the normal traceback.
"""

from __future__ import annotations


class InfralabError(Exception):
    """Base of every exception the kit raises on purpose; ``hint`` says what to do next."""

    hint: str = ""

    @property
    def _render_traceback_(self):  # noqa: ANN202 - IPython's hook; absent without a hint
        if not self.hint:
            raise AttributeError("_render_traceback_")
        return self._short_traceback

    def _short_traceback(self) -> list[str]:
        return [
            f"\x1b[31m{type(self).__name__}: {self}\x1b[0m",
            f"\x1b[33mHint: {self.hint}\x1b[0m",
        ]


def with_hint(exc: BaseException) -> str:
    """``exc``'s message followed by its hint (for a CLI's one-line error)."""
    hint = getattr(exc, "hint", "")
    return f"{exc}\nHint: {hint}" if hint and hint not in str(exc) else str(exc)
