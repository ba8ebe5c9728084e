"""The package is five layer folders, and the paths from before them still import.

``infralab/`` holds the five folders (core, engines, economics, presentation, tooling), the
command line and the old-path shim, nothing else; nothing in the repository uses a path from
before the folders; a notebook saved with one (``from infralab.costs import unit``) still
runs, gets the very same module object and a warning naming the new path.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import warnings

import pytest

from infralab import _moved
from infralab.core.paths import REPO_ROOT

FOLDERS = ("core", "economics", "engines", "presentation", "tooling")
OLD_NAMES = "|".join(sorted(_moved.LAYER_OF, key=len, reverse=True))
OLD_PATH = re.compile(rf"(?<![\w./])infralab[./](?:{OLD_NAMES})\b")  # not ~/.cache/infralab/models
# ... and ``from infralab import results`` (also inside a string a test or a tool runs).
OLD_FROM = re.compile(rf"\bfrom infralab import (?:\w+(?: as \w+)?,\s*)*(?:{OLD_NAMES})\b")
# Files that name old paths on purpose: the shim, the pages that explain it, the tests that
# plant them, and recorded runs (a record says how it was measured then).
ALLOWED = (
    "infralab/_moved.py",
    "infralab/__init__.py",
    "CONTRIBUTING.md",
    "tests/test_layers.py",
    "tests/test_public_face.py",
    "tests/test_grade.py",  # a notebook saved before the layers still grades
    "datasets/benchmarks/",
)


def test_the_package_is_the_five_folders() -> None:
    entries = {p.name for p in (REPO_ROOT / "infralab").iterdir() if p.name != "__pycache__"}
    assert entries == {*FOLDERS, "__init__.py", "__main__.py", "_moved.py"}


def _tracked_text_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    keep = (".py", ".ipynb", ".md", ".toml", ".yml", ".yaml", ".cfg", ".txt", ".json")
    return [f for f in out if f.endswith(keep) or f in ("Makefile", ".ci/run")]


# A line that names the old place on purpose: the builders' names in built models' manifests
# (unchanged by the move, so a model built with kit 0.1 stays current).
KEPT_NAMES = re.compile(r'^BUILDER = f"infralab\.models\.(?:encoder|decoder)/v\{EXPORT_VERSION\}"$')


def old_paths_in(text: str) -> list[str]:
    lines = (line for line in text.splitlines() if not KEPT_NAMES.match(line))
    return [
        m.group(0)
        for line in lines
        for pattern in (OLD_PATH, OLD_FROM)
        for m in pattern.finditer(line)
    ]


def test_nothing_in_the_repository_uses_a_path_from_before_the_folders() -> None:
    if not (REPO_ROOT / ".git").exists():
        pytest.skip("git ls-files needs the repository (.git is absent: a release copy)")
    found = {}
    for rel in _tracked_text_files():
        if rel.startswith(ALLOWED) or not (REPO_ROOT / rel).is_file():
            continue
        hits = old_paths_in((REPO_ROOT / rel).read_text(encoding="utf-8", errors="replace"))
        if hits:
            found[rel] = sorted(set(hits))
    assert not found, f"paths from before the layer folders: {found}"


def test_the_scan_sees_an_old_path_and_passes_a_new_one() -> None:
    assert old_paths_in("from infralab.costs import unit") == ["infralab.costs"]
    assert old_paths_in("see infralab/serving/launcher.py") == ["infralab/serving"]
    assert old_paths_in("from infralab.economics.costs import unit") == []
    assert old_paths_in("python -m infralab.tooling.grade_benchmark, myinfralab.costs") == []
    assert old_paths_in("du -sh ~/.cache/infralab/models") == []  # a folder, not the package
    assert old_paths_in('code = "from infralab import doctor; doctor.doctor()"') == [
        "from infralab import doctor"
    ]
    assert old_paths_in("from infralab import core, results") == [
        "from infralab import core, results"
    ]
    assert old_paths_in("from infralab import core, economics") == []


def test_every_old_name_leads_to_a_module_that_exists() -> None:
    """Each top-level name of kit 0.1 maps to a package or module that is really in its
    folder (new modules need no old name: kit 0.1 never had them)."""
    for old, layer in _moved.LAYER_OF.items():
        place = REPO_ROOT / "infralab" / layer
        assert (place / old / "__init__.py").is_file() or (place / f"{old}.py").is_file(), old
    for old, new in _moved.RENAMED.items():
        assert importlib.util.find_spec(new) is not None, (old, new)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("infralab.costs.unit", "infralab.economics.costs.unit"),
        ("infralab.serving.launcher", "infralab.engines.serving.launcher"),
        ("infralab.results", "infralab.core.results"),
        ("infralab.checks.lab04", "infralab.tooling.checks.lab04"),
        ("infralab.training.bill", "infralab.economics.costs.training_bill"),
        ("infralab.rag.agent", "infralab.economics.agent"),
    ],
)
def test_an_old_path_is_the_same_module_with_a_warning(old: str, new: str) -> None:
    code = (
        "import importlib, sys, warnings\n"
        "warnings.simplefilter('always')\n"
        "with warnings.catch_warnings(record=True) as seen:\n"
        f"    old = importlib.import_module({old!r})\n"
        f"new = importlib.import_module({new!r})\n"
        "print(old is new, old.__name__, old.__spec__.name)\n"
        "print(sum(m.startswith('infralab.') and getattr(sys.modules[m], '__file__', None)\n"
        "          == new.__file__ for m in sys.modules) , len({id(sys.modules[m]) for m in\n"
        "          sys.modules if getattr(sys.modules[m], '__file__', None) == new.__file__}))\n"
        "print(any(issubclass(w.category, DeprecationWarning) and "
        f"{new!r} in str(w.message) for w in seen))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/"
    ).stdout.split("\n")
    assert out[0] == f"True {new} {new}"
    assert out[1].split()[1] == "1"  # two names, one module object: no second copy
    assert out[2] == "True"


def test_the_old_spellings_of_an_import_all_work() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from infralab.costs import unit  # type: ignore[import-not-found]
        from infralab.training import bill  # type: ignore[import-not-found]

        from infralab.economics.costs import unit as new_unit

    assert unit is new_unit
    assert bill.__name__ == "infralab.economics.costs.training_bill"
    assert _moved.new_name("infralab.nothere") is None
    assert _moved.new_name("infralab.economics.costs") is None  # a new path is no old one
    with pytest.raises(ModuleNotFoundError):
        __import__("infralab.costs.no_such_module")


def test_a_model_built_before_the_folders_is_still_current(tmp_path) -> None:
    """The builders' names in a manifest are names, not import paths: a model built by kit
    0.1 (its manifest says ``infralab.models.encoder/v5``) is not rebuilt after the move."""
    from infralab.engines.models import decoder, encoder, manifest

    assert encoder.BUILDER == f"infralab.models.encoder/v{encoder.EXPORT_VERSION}"
    assert decoder.BUILDER == f"infralab.models.decoder/v{decoder.EXPORT_VERSION}"
    built = tmp_path / "m.onnx"
    built.write_bytes(b"weights")
    ident = manifest.identity(
        model="encoder", variant="fp32", builder="infralab.models.encoder/v5",
        inputs={"model.safetensors": "0" * 64}, options={"fused": True},
    )  # fmt: skip
    manifest.write(tmp_path / "m.manifest.json", ident, [built])
    now = manifest.identity(
        model="encoder", variant="fp32", builder=f"infralab.models.encoder/v{5}",
        inputs={"model.safetensors": "0" * 64}, options={"fused": True},
    )  # fmt: skip
    assert manifest.check(tmp_path / "m.manifest.json", now, built).ok
    moved = {**now, "builder": "infralab.engines.models.encoder/v5"}
    assert not manifest.check(
        tmp_path / "m.manifest.json", moved, built
    ).ok  # a name change is seen
