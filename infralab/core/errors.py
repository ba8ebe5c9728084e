"""The root of the kit's own exceptions.

Why one root: a notebook, the CLI or a test can catch every error the kit raises on purpose
with ``except InfralabError`` and tell it apart from a bug. Each class keeps its historical
base too (``ValueError``, ``RuntimeError``, ...), so existing ``except`` clauses still work.

The user-facing ones carry a ``hint``: what to do next. In Jupyter an error with a hint is
shown as its message and the hint, without a traceback (the traceback is a bug report's
business, not a student's); an error without a hint keeps the normal traceback.

A class may set a ``hint`` for all its errors; one raise sets its own with the keyword,
the same way for every class: ``raise TraceError("rate must be > 0", hint="try 5 req/s")``.
"""

from __future__ import annotations

from typing import Any


class InfralabError(Exception):
    """Base of every exception the kit raises on purpose; ``hint`` says what to do next."""

    hint: str = ""

    def __init__(self, *args: object, hint: str | None = None) -> None:
        super().__init__(*args)
        if hint is not None:
            self.hint = hint

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # ``class CostError(ValueError, InfralabError)`` finds ValueError's __init__ first,
        # which refuses ``hint=``. Give such a class an __init__ that takes the hint and then
        # runs that builtin's own __init__ (OSError's, for one, reads errno from the args).
        # A class that writes its own __init__ (e.g. CheckFailed) keeps it, and so do its
        # subclasses.
        owner = next(k for k in cls.__mro__ if "__init__" in k.__dict__)
        if owner.__module__ != "builtins":
            return
        builtin_init = owner.__init__

        def __init__(self: BaseException, *args: object, hint: str | None = None) -> None:
            builtin_init(self, *args)
            if hint is not None:
                self.hint = hint  # type: ignore[attr-defined]

        __init__.__qualname__ = f"{cls.__qualname__}.__init__"
        cls.__init__ = __init__  # type: ignore[method-assign]

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
