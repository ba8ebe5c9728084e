"""Notebooks import only from the kit's public faces, and every face names real things.

The kit is five layer folders (``infralab.core``, ``engines``, ``economics``, ``presentation``,
``tooling``). A face is a package (``infralab.economics.costs``) or a module
(``infralab.core.results``) one level inside a layer, with an ``__all__``: what lessons and labs
may use. A package's ``__all__`` may name a submodule (``infralab.presentation.charts.costs``,
``infralab.tooling.checks.lab04``), which is then a face of its own with its own ``__all__``.
A notebook may write ``from infralab.<layer> import <face>`` and use ``<face>.<name>``, or
``from infralab.<layer>.<face> import <name>``, where ``<name>`` is in that face's
``__all__``; ``from infralab.<layer>.a.b import ...`` reaches past the face, and a path from
before the layers (``infralab.costs``) is refused here, though it still imports.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest

from infralab.core.paths import REPO_ROOT

LAYERS = ("core", "engines", "economics", "presentation", "tooling")

NOTEBOOKS = sorted(
    [
        *REPO_ROOT.glob("course/*.ipynb"),
        *REPO_ROOT.glob("labs/solutions/*.ipynb"),
        *REPO_ROOT.glob("labs/*.ipynb"),  # the student copies build-labs generates
        *REPO_ROOT.glob("docs/*.ipynb"),
    ]
)


def notebook_code(path: Path) -> str:
    """A notebook's code cells as one Python source (IPython magics and shell lines left out)."""
    nb = nbformat.read(path, as_version=4)
    cells = [c.source for c in nb.cells if c.cell_type == "code"]
    lines = [
        line
        for cell in cells
        for line in cell.splitlines()
        if not line.lstrip().startswith(("%", "!"))
    ]
    return "\n".join(lines)


def _face(name: str) -> types.ModuleType | None:
    """The module ``name`` if it is a face (it has an ``__all__``), else None."""
    try:
        module = importlib.import_module(name)
    except ImportError:
        return None
    return module if isinstance(getattr(module, "__all__", None), (list, tuple)) else None


def _member(face: types.ModuleType, name: str) -> object:
    return getattr(face, name, None) if name in face.__all__ else None


def face_violations(source: str) -> list[str]:
    """Every import of, or attribute use on, the kit in ``source`` that goes past a face."""
    tree = ast.parse(source)
    bound: dict[str, types.ModuleType] = {}  # a local name -> the face it stands for
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            problems += [
                f"line {node.lineno}: `import {a.name}`: write `from infralab import <face>`"
                for a in node.names
                if a.name.split(".")[0] == "infralab"
            ]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "infralab":
            problems += _import_from(node, bound)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            face = _resolve(node.value, bound)
            if face is not None and _member(face, node.attr) is None:
                problems.append(
                    f"line {node.lineno}: {face.__name__}.{node.attr}: not in its __all__"
                )
    return problems


def _import_from(node: ast.ImportFrom, bound: dict[str, types.ModuleType]) -> list[str]:
    """What is wrong with one ``from infralab... import ...``; binds the faces it names."""
    where = f"line {node.lineno}: from {node.module} import"
    if node.module == "infralab":  # from infralab import <layer>, ...
        layers = {
            a.asname or a.name: _face(f"infralab.{a.name}") for a in node.names if a.name in LAYERS
        }
        bound.update({k: v for k, v in layers.items() if v is not None})
        return [
            f"{where} {a.name}: not a layer; write from infralab.<layer> import {a.name}"
            for a in node.names
            if a.name not in LAYERS
        ]
    if node.module.split(".")[1] not in LAYERS:
        return [f"{where} ...: {node.module} is a path from before the layer folders"]
    if node.module.count(".") > 2:
        return [f"{where} ...: {node.module} is not a face; import from its package"]
    parent = _face(node.module)
    if parent is None:
        return [f"{where} ...: {node.module} has no __all__ (not a face)"]
    problems = []
    for alias in node.names:
        value = _member(parent, alias.name)
        if value is None:
            problems.append(f"{where} {alias.name}: not in {node.module}.__all__")
        elif isinstance(value, types.ModuleType) and _face(value.__name__) is None:
            problems.append(f"{where} {alias.name}: a submodule without __all__")
        elif isinstance(value, types.ModuleType):
            bound[alias.asname or alias.name] = value
    return problems


def _resolve(expr: ast.expr, bound: dict[str, types.ModuleType]) -> types.ModuleType | None:
    """The face an expression like ``charts`` or ``decision.rules`` stands for, if any."""
    if isinstance(expr, ast.Name):
        return bound.get(expr.id)
    if isinstance(expr, ast.Attribute):
        outer = _resolve(expr.value, bound)
        inner = _member(outer, expr.attr) if outer is not None else None
        return inner if isinstance(inner, types.ModuleType) else None
    return None


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_notebook_imports_only_from_faces(path: Path) -> None:
    problems = face_violations(notebook_code(path))
    assert not problems, f"{path.relative_to(REPO_ROOT)} reaches past a face:\n" + "\n".join(
        problems
    )


def _modules_with_all() -> list[str]:
    names = []
    for file in sorted((REPO_ROOT / "infralab").rglob("*.py")):
        tree = ast.parse(file.read_text(encoding="utf-8"))
        if any(
            isinstance(n, ast.Assign)
            and any(getattr(t, "id", None) == "__all__" for t in n.targets)
            for n in tree.body
        ):
            parts = file.relative_to(REPO_ROOT).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_every_name_in_every_all_exists() -> None:
    modules = _modules_with_all()
    assert (
        "infralab.engines.serving" in modules and "infralab.core.results" in modules
    )  # the scan finds faces
    missing = [
        f"{m}.{name}"
        for m in modules
        for name in importlib.import_module(m).__all__
        if not hasattr(importlib.import_module(m), name)
    ]
    assert not missing, f"named in __all__ but not there: {missing}"


def test_a_package_face_loads_its_submodules_only_when_used() -> None:
    """Importing a face costs what importing the package cost before: nothing is loaded
    until a name is used (the faces re-export lazily)."""
    code = (
        "import sys\n"
        "import infralab.engines.serving, infralab.engines.models, infralab.engines.rag, infralab.economics.costs, infralab.tooling.bench\n"
        "print(sorted(m for m in sys.modules if m.count('.') > 2 and m.startswith('infralab.')))\n"
        "from infralab.engines.serving import launch\n"
        "print('infralab.engines.serving.launcher' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT
    ).stdout.splitlines()
    assert out == ["[]", "True"]


@pytest.mark.parametrize(
    "source",
    [
        "from infralab.engines.serving.launcher import launch",  # past the face
        "import infralab.engines.serving",  # a plain import of the kit
        "from infralab.engines.serving import not_a_name",  # not in the face
        "from infralab.engines.serving import launcher",  # a submodule the face does not name
        "from infralab.engines import serving\nserving.launcher.free_port()",  # as attribute
        "from infralab.core import paths",  # a module with no face
        "from infralab.presentation.charts import costs as c\nc.not_a_chart()",  # sub-face
        "from infralab.economics import decision\ndecision.rules.not_there",  # nested sub-face
        "from infralab.costs import unit",  # a path from before the layers (it still imports)
        "from infralab import costs",  # the same, one level up
        "from infralab import core\ncore.paths.REPO_ROOT",  # a layer face names no paths
        "from infralab.core.paths import REPO_ROOT",  # past the face (paths has no __all__)
    ],
)
def test_a_planted_bad_import_fails(source: str) -> None:
    assert face_violations(source)


def test_a_planted_bad_import_in_a_notebook_fails(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# a lesson"),
        nbformat.v4.new_code_cell(
            "%matplotlib inline\nfrom infralab.engines.serving import launch"
        ),
        nbformat.v4.new_code_cell("from infralab.engines.rag.hybrid import RagIndex"),
    ]
    path = tmp_path / "99_fake.ipynb"
    nbformat.write(nb, path)
    problems = face_violations(notebook_code(path))
    assert len(problems) == 1 and "infralab.engines.rag.hybrid" in problems[0]


def test_good_imports_pass() -> None:
    source = (
        "from infralab.economics import decision\n"
        "from infralab.core import runtime\n"
        "from infralab.presentation.charts import costs as cost_charts\n"
        "from infralab.engines.serving import launch\n"
        "runtime.cuda_usable()\n"
        "decision.rules.with_plan_costs\n"
        "cost_charts.tornado_chart\n"
    )
    assert face_violations(source) == []
