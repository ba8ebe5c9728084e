"""The classroom at scale: a class's measurements pooled (collector + ``share``), and sizing.

* :mod:`infralab.tooling.classroom.validate`: what the collector accepts (the typed records of
  :mod:`infralab.core.results`, plus the checks a public endpoint needs on top of them);
* :mod:`infralab.tooling.classroom.store`: the class database (SQLite by default);
* :mod:`infralab.tooling.classroom.service`: the FastAPI collector (``python -m infralab collector``);
* :mod:`infralab.tooling.classroom.client`: ``python -m infralab share``, the student's opt-in upload;
* :mod:`infralab.tooling.classroom.room`: the room as a table (instructor notebook; its charts are
  :mod:`infralab.presentation.charts.classroom`);
* :mod:`infralab.tooling.classroom.sizing`: nodes and cost of a JupyterHub for N students.
"""

from infralab.core.faces import lazy_face

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

__getattr__ = lazy_face(__name__, _LAZY, _FACES)
