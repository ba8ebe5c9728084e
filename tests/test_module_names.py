"""No two modules in ``infralab/`` share a file name (CONTRIBUTING.md, "Layout rules").

A traceback, a ``git grep`` or an editor tab shows a module by its file name; two
``generate.py`` in different packages made every one of those ambiguous. The one pairing
allowed on purpose is a lab's check and its hidden reference (``checks/lab04.py`` beside
``checks/references/lab04.py``), matched by lab number; ``__init__.py`` is every package's.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from infralab.core.paths import REPO_ROOT

PACKAGE = REPO_ROOT / "infralab"


def clashes(package: Path) -> dict[str, list[str]]:
    """File names used by more than one module under ``package``, less the allowed pairing."""
    checks = package / "tooling" / "checks"
    by_name: dict[str, list[Path]] = defaultdict(list)
    for path in sorted(package.rglob("*.py")):
        if path.name != "__init__.py":
            by_name[path.name].append(path)
    found = {}
    for name, paths in by_name.items():
        pairing = sorted(p.parent for p in paths) == [checks, checks / "references"]
        if len(paths) > 1 and not pairing:
            found[name] = [p.relative_to(package).as_posix() for p in paths]
    return found


def test_every_module_name_is_unique() -> None:
    found = clashes(PACKAGE)
    assert not found, f"rename one module of each group (say what it holds): {found}"


def _tree(root: Path, files: list[str]) -> Path:
    for rel in files:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("")
    return root


def plural_pairs(package: Path) -> list[tuple[str, str]]:
    """Modules one trailing ``s`` apart (``workload.py`` beside ``workloads.py``)."""
    names = {p.relative_to(package).with_suffix("").as_posix() for p in package.rglob("*.py")}
    return sorted((n, n + "s") for n in names if n + "s" in names)


def test_no_module_is_another_one_plus_an_s() -> None:
    assert plural_pairs(PACKAGE) == [], "one letter apart reads as the same module"


def test_a_plural_pair_is_found(tmp_path: Path) -> None:
    files = ["costs/workload.py", "costs/workloads.py", "costs/options.py", "rag/option.py"]
    assert plural_pairs(_tree(tmp_path, files)) == [("costs/workload", "costs/workloads")]


def test_every_reference_has_its_check() -> None:
    # The exception covers a real pairing: each hidden reference sits beside its check.
    references = PACKAGE / "tooling" / "checks" / "references"
    names = {p.name for p in references.glob("*.py")} - {"__init__.py"}
    assert names and names <= {p.name for p in (PACKAGE / "tooling" / "checks").glob("*.py")}


def test_a_shared_name_is_found(tmp_path: Path) -> None:
    files = ["a/__init__.py", "a/generate.py", "b/__init__.py", "b/generate.py", "c/unique.py"]
    assert clashes(_tree(tmp_path, files)) == {"generate.py": ["a/generate.py", "b/generate.py"]}


def test_the_check_pairing_is_allowed_and_nothing_wider(tmp_path: Path) -> None:
    pair = ["tooling/checks/lab04.py", "tooling/checks/references/lab04.py"]
    assert clashes(_tree(tmp_path / "ok", pair)) == {}
    third = [*pair, "tooling/bench/lab04.py"]
    assert list(clashes(_tree(tmp_path / "bad", third))) == ["lab04.py"]
    # the same name twice outside checks/ and references/ is no pairing
    other = ["tooling/checks/x/lab05.py", "tooling/checks/references/lab05.py"]
    assert list(clashes(_tree(tmp_path / "other", other))) == ["lab05.py"]
