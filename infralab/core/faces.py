"""Package faces that load on first use: one ``__getattr__`` for every package of the kit.

Why: a package names what lessons may use (its ``__all__``) without importing it all up
front; ``import infralab.engines.serving`` must stay as cheap as an empty package, and a
name is loaded from its submodule the first time a notebook touches it (PEP 562).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping

__all__ = ["lazy_face"]


def lazy_face(
    package: str, names: Mapping[str, str], submodules: Iterable[str] = ()
) -> Callable[[str], object]:
    """A module ``__getattr__`` for ``package``: ``names`` maps a public name to the
    submodule that defines it, ``submodules`` are public as a whole; both import on first
    use. Anything else is an ``AttributeError``, as for any module."""
    names, submodules = dict(names), frozenset(submodules)

    def __getattr__(name: str) -> object:
        if name in names:
            return getattr(importlib.import_module(f"{package}.{names[name]}"), name)
        if name in submodules:
            return importlib.import_module(f"{package}.{name}")
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
