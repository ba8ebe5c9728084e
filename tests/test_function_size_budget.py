"""Functions stay under about 60 lines; the ones that were longer may only shrink.

A function of 150 lines holds several ideas and hides its steps; the kit splits such
functions into named steps. The functions still over the limit when the rule came in are
listed below with their length then: each may only get shorter, and leaves the list once it
is under the limit; a new function over the limit fails (split it instead of listing it).
"""

from __future__ import annotations

import ast
from pathlib import Path

from infralab.core.paths import REPO_ROOT

LIMIT = 60  # lines, from the ``def`` line to the function's last line
# Recorded 2026-12-06 (issue #29); lower a length or delete an entry when you split a function.
RECORDED: dict[str, int] = {}


def long_functions(package: Path) -> dict[str, int]:
    """``path::Qualified.name`` -> length in lines, for every function over LIMIT."""
    found: dict[str, int] = {}
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package.parent).as_posix()

        def visit(node: ast.AST, prefix: str, rel: str = rel) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    name = prefix + child.name
                    length = child.end_lineno - child.lineno + 1
                    if length > LIMIT:
                        found[f"{rel}::{name}"] = length
                    visit(child, name + ".")
                elif isinstance(child, ast.ClassDef):
                    visit(child, prefix + child.name + ".")
                else:
                    visit(child, prefix)

        visit(ast.parse(path.read_text(encoding="utf-8")), "")
    return found


def test_no_new_long_function_and_none_grew() -> None:
    found = long_functions(REPO_ROOT / "infralab")
    new = {k: v for k, v in found.items() if k not in RECORDED}
    assert not new, f"functions over {LIMIT} lines: split them into named steps: {new}"
    grew = {k: (RECORDED[k], v) for k, v in found.items() if v > RECORDED[k]}
    assert not grew, f"listed functions that grew (recorded, now): {grew}"


def test_every_entry_is_still_needed() -> None:
    found = long_functions(REPO_ROOT / "infralab")
    stale = sorted(set(RECORDED) - set(found))
    assert not stale, f"under {LIMIT} lines now (or gone): delete their entries: {stale}"


def test_the_scan_finds_a_long_method_and_a_nested_function(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    body = "\n".join(f"    x{i} = {i}" for i in range(LIMIT))
    (package / "m.py").write_text(
        f"class A:\n    def long(self):\n{body.replace('    ', '        ')}\n\n"
        f"def short():\n    return 1\n\n"
        f"def outer():\n    def inner():\n{body.replace('    ', '        ')}\n    return inner\n"
    )
    found = long_functions(package)
    assert set(found) == {"pkg/m.py::A.long", "pkg/m.py::outer", "pkg/m.py::outer.inner"}
    assert found["pkg/m.py::A.long"] == LIMIT + 1
