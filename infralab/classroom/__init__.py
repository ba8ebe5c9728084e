"""The classroom at scale: a class's measurements pooled (collector + ``share``), and sizing.

* :mod:`infralab.classroom.validate`: what the collector accepts (the typed records of
  :mod:`infralab.results`, plus the checks a public endpoint needs on top of them);
* :mod:`infralab.classroom.store`: the class database (SQLite by default);
* :mod:`infralab.classroom.service`: the FastAPI collector (``python -m infralab collector``);
* :mod:`infralab.classroom.client`: ``python -m infralab share``, the student's opt-in upload;
* :mod:`infralab.classroom.room`: the room as a table (instructor notebook; its charts are
  :mod:`infralab.charts.classroom`);
* :mod:`infralab.classroom.sizing`: nodes and cost of a JupyterHub for N students.
"""

import importlib as _importlib

# The face: what lessons and labs may use (tests/test_public_face.py holds notebooks to it).
# _LAZY maps a name to the submodule that defines it and _FACES lists submodules that are
# public as a whole (each with its own __all__); both load on first use, so importing the
# package stays as cheap as before.
_LAZY = {}
_FACES = (
    "client",
    "local",
    "room",
)
__all__ = sorted([*_LAZY, *_FACES])


def __getattr__(name: str) -> object:
    if name in _LAZY or name in _FACES:
        module = _importlib.import_module(f"{__name__}.{_LAZY.get(name, name)}")
        return getattr(module, name) if name in _LAZY else module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
