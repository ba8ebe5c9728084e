"""Executed copies of the notebooks: written once by the notebook tests, read by the rest.

``make test`` runs every notebook once, under nbval (``make notebooks``). The pytest plugin
:mod:`infralab.tooling.nbval_record` keeps what that run produced: each notebook whose every cell
passed is written to ``artifacts/executed/<path in the repository>`` with its outputs, its
widgets' last state and the results it saved. The site (:mod:`infralab.tooling.site`) renders those
copies and the course-thread test reads them, instead of running the notebooks again.

A copy carries the sha256 of the notebook it was run from and of the kit's own Python sources
(``infralab/**/*.py``): when either changed since, the copy is stale, and a reader that finds
it stale runs the notebook itself (and says so).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infralab.core.paths import REPO_ROOT

EXECUTED_ENV = "INFRALAB_EXECUTED"
META_KEY = "infralab_executed"


def executed_dir(root: Path = REPO_ROOT) -> Path:
    """Where the notebook tests keep executed copies; ``INFRALAB_EXECUTED`` moves it."""
    env = os.environ.get(EXECUTED_ENV)
    return Path(env).expanduser() if env else Path(root) / "artifacts" / "executed"


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def kit_sha256(package: Path | None = None) -> str:
    """One hash over the kit's Python sources (names and contents), so a copy executed with an
    older kit reads as stale."""
    package = Path(package) if package else Path(__file__).resolve().parents[1]  # infralab/
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        digest.update(path.relative_to(package).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


@dataclass
class Lookup:
    """What a reader found for one notebook: the executed copy (if usable) or why not."""

    source: Path
    copy_path: Path
    nb: Any = None
    reason: str = ""  # empty when the copy is fresh

    @property
    def fresh(self) -> bool:
        return self.nb is not None


def lookup(
    source: Path, root: Path = REPO_ROOT, folder: Path | None = None, kit: str | None = None
) -> Lookup:
    """The executed copy of ``source`` if it was run from this very notebook and kit.

    ``kit`` is :func:`kit_sha256` (pass it when looking up many notebooks: it reads every
    source file of the kit).
    """
    import nbformat

    source = Path(source).resolve()
    root = Path(root).resolve()
    folder = Path(folder) if folder else executed_dir(root)
    copy_path = folder / source.relative_to(root)
    found = Lookup(source=source, copy_path=copy_path)
    if not copy_path.is_file():
        found.reason = f"no executed copy at {copy_path}"
        return found
    try:
        nb = nbformat.read(str(copy_path), as_version=4)
    except (OSError, ValueError) as exc:
        found.reason = f"executed copy {copy_path} is unreadable ({exc})"
        return found
    meta = nb.metadata.get(META_KEY, {})
    if meta.get("source_sha256") != file_sha256(source):
        found.reason = "stale: the notebook changed since it was executed"
    elif meta.get("kit_sha256") != (kit or kit_sha256()):
        found.reason = "stale: the kit's code (infralab/) changed since it was executed"
    else:
        found.nb = nb
    return found


def saved_results(nb: Any) -> dict[str, Any]:
    """The result files (name: JSON) the run of this executed notebook wrote."""
    return dict(nb.metadata.get(META_KEY, {}).get("saved_results", {}))


def write_results(nb: Any, folder: Path) -> list[Path]:
    """Write the results an executed notebook saved into ``folder`` (a results folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in saved_results(nb).items():
        target = folder / name
        target.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        written.append(target)
    return written
