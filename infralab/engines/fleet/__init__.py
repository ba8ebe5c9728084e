"""A shared GPU fleet on a real distributed engine: Ray Core for jobs, Ray Serve for replicas.

``cluster``: start and stop a local Ray cluster with GPUs declared as logical resources,
its expected memory footprint, and a check that no Ray process outlives it. ``packing``:
what should run where (first-fit packing of fractional GPU demands), in plain Python.
``scheduler``: jobs that really run on Ray, queue, and get packed onto logical GPUs; a
day of mixed traffic and the utilization it reaches. ``ray_serve``: the kit's embeddings
app as a Ray Serve deployment with autoscaling replicas.

Ray is an optional extra (``pip install 'infralab[fleet]'``); these modules import it lazily.
"""

import os as _os

from infralab.core.faces import lazy_face

# The course's cluster is one machine. Ray otherwise resolves 127.0.0.1 to the machine's
# network address and connects its processes through it; with this switch (read once, when
# Ray is first imported) it keeps every connection on the loopback interface, as it does on
# a laptop. Set before any module of this package can import Ray.
_os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
# Ray reports usage statistics to its makers unless told not to: no traffic leaves here.
_os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

# The face: what lessons and labs may use (tests/test_public_face.py holds notebooks to it).
# _LAZY maps a name to the submodule that defines it and _FACES lists submodules that are
# public as a whole (each with its own __all__); both load on first use, so importing the
# package stays as cheap as before.
_LAZY = {}
_FACES = (
    "cluster",
    "packing",
    "scheduler",
    "ray_serve",
)
__all__ = sorted([*_LAZY, *_FACES])

__getattr__ = lazy_face(__name__, _LAZY, _FACES)
