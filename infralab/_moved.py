"""Old import paths, from before the layer folders, kept working with a warning.

Why: a student's saved notebook (or an instructor's script) written against kit 0.1 says
``from infralab.costs import unit``; after the move it must still run, and say where the
module lives now. The old name is bound to the very same module object (no second copy,
so no second state); nothing in the repository uses the old names (tests/test_layers.py).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from types import ModuleType

LAYER_OF = {
    **dict.fromkeys(("assets", "env", "errors", "paths", "project", "results"), "core"),
    **dict.fromkeys(("runtime", "timing"), "core"),
    **dict.fromkeys(("fleet", "models", "rag", "serving", "training"), "engines"),
    **dict.fromkeys(("costs", "decision", "landscape", "traces"), "economics"),
    **dict.fromkeys(("charts", "offline_charts", "ui", "widgets"), "presentation"),
    **dict.fromkeys(
        ("bench", "checks", "classroom", "colab", "doctor", "executed", "grade"), "tooling"
    ),
    **dict.fromkeys(
        ("grade_benchmark", "grading", "labs", "nbval_record", "notebooks", "preflight"),
        "tooling",
    ),
    **dict.fromkeys(("release", "site", "slides"), "tooling"),
}
# Modules that changed package as well as folder (the engines price nothing themselves).
# Both spellings of the old place: ``from infralab.training import bill`` looks for the
# submodule under the package's new name.
RENAMED = {
    "infralab.training.bill": "infralab.economics.costs.training_bill",
    "infralab.engines.training.bill": "infralab.economics.costs.training_bill",
    "infralab.rag.agent": "infralab.economics.agent",
    "infralab.engines.rag.agent": "infralab.economics.agent",
}


def new_name(old: str) -> str | None:
    """Where the module once called ``old`` lives now, or None if ``old`` is not an old name."""
    for before, after in RENAMED.items():
        if old == before or old.startswith(before + "."):
            return after + old[len(before) :]
    parts = old.split(".")
    if len(parts) < 2 or parts[0] != "infralab" or parts[1] not in LAYER_OF:
        return None
    return ".".join(["infralab", LAYER_OF[parts[1]], *parts[1:]])


class _Alias(importlib.abc.Loader):
    """Hands the import system the module that already lives under the new name."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.module: ModuleType | None = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        warnings.warn(
            f"{spec.name} moved to {self.target} (the kit's layer folders, kit 0.2); "
            f"import it from there.",
            DeprecationWarning,
            stacklevel=2,
        )
        self.module = importlib.import_module(self.target)
        self._spec = self.module.__spec__
        return self.module

    def exec_module(self, module: ModuleType) -> None:
        # The import system stamped the old name's spec on the module: give back its own.
        module.__spec__ = self._spec


class _OldNames(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: object, target: object = None):  # noqa: ANN201
        new = new_name(fullname)
        if new is None or importlib.util.find_spec(new) is None:
            return None
        return importlib.util.spec_from_loader(fullname, _Alias(new))


def install() -> None:
    """Put the old-name finder first on ``sys.meta_path``, once: first, because the normal
    finder would otherwise load ``infralab.serving.launcher`` from the old package's
    ``__path__`` as a second copy of the module."""
    if not any(isinstance(f, _OldNames) for f in sys.meta_path):
        sys.meta_path.insert(0, _OldNames())
