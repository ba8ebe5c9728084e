"""infralab: the library behind the course kit *AI infrastructure versus traditional cloud*.

Notebooks call this package; everything worth testing lives here. Importing it is cheap
and downloads nothing: models are fetched by ``python -m infralab fetch`` (or on first use).

The package is five layers, one folder each, bottom to top: ``core``, ``engines``,
``economics``, ``presentation``, ``tooling`` (CONTRIBUTING.md, "Layers"). Before the layers
(kit 0.1, until 2026-12) every package sat at the top (``infralab.costs``); a notebook saved
then still imports, through :mod:`infralab._moved`, with a warning naming the new path.
"""

from infralab import _moved

__version__ = "0.2.0"

_moved.install()
