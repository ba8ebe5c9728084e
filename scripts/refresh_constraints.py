"""Write constraints.txt: the exact versions installed in the venv that just passed the suite.

Run it with the venv's own Python after a green ``make test`` (``make constraints`` does):

    .venv/bin/python scripts/refresh_constraints.py > constraints.txt

Why constraints and not a lock: ``pip install -c constraints.txt -e '.[dev]'`` pins every
package that the install pulls in to the version the suite last passed with, so a class taught
on a fixed date installs the same stack, while a package the platform does not need (the GPU
build of ONNX Runtime on macOS, say) is simply never asked for. Two things keep a pin from
breaking an install elsewhere: each pin carries the ``python_version`` range that its release
supports (from its ``Requires-Python``), so an older Python falls back to the ranges in
pyproject.toml; and the Makefile applies the file only on the platform it was frozen on
(Linux x86_64, recorded in the header), where the wheels were seen to install.
"""

from __future__ import annotations

import datetime as dt
import platform
import sys
from importlib import metadata

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

SKIP = {"infralab", "pip", "setuptools", "wheel"}
MINORS = [(3, m) for m in range(10, 16)]  # the Pythons a pin's marker is computed over


def python_marker(requires_python: str | None) -> str:
    """An environment marker that limits a pin to the Pythons its release supports."""
    if not requires_python:
        return ""
    try:
        spec = SpecifierSet(requires_python)
    except InvalidSpecifier:
        return ""
    ok = [v for v in MINORS if spec.contains(f"{v[0]}.{v[1]}.0", prereleases=True)]
    if not ok:
        return ""
    if ok == MINORS:
        return ""
    parts = []
    if ok[0] != MINORS[0]:
        parts.append(f'python_version >= "{ok[0][0]}.{ok[0][1]}"')
    if ok[-1] != MINORS[-1]:
        parts.append(f'python_version < "{ok[-1][0]}.{ok[-1][1] + 1}"')
    return " and ".join(parts)


def pins() -> list[str]:
    seen: dict[str, str] = {}
    for dist in metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"] or "")
        if not name or name in SKIP or name in seen:
            continue
        marker = python_marker(dist.metadata.get("Requires-Python"))
        seen[name] = f"{name}=={dist.version}" + (f" ; {marker}" if marker else "")
    return [seen[k] for k in sorted(seen)]


def main() -> int:
    header = [
        "# Versions the full suite (make test) last passed with. Regenerate with `make constraints`",
        "# after a green `make test`; never edit by hand. Used by `make lab` and `make test` as",
        "# `pip install -c constraints.txt -e '.[dev]'`, on the platform frozen on (below) only.",
        f"# Frozen {dt.date.today().isoformat()} on Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}.",
    ]
    sys.stdout.write("\n".join([*header, *pins()]) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
