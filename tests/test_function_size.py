"""No function in the package is longer than 60 lines.

A function of 150 lines holds several ideas and hides its steps; the kit splits such a
function into named steps. Issue #29 found 35 functions over 60 lines (the longest 200) and
split every one; this test keeps it so. It counts from the ``def`` line to the function's
last line, docstring included, methods and nested functions alike.
"""

from __future__ import annotations

import ast
from pathlib import Path

from infralab.core.paths import REPO_ROOT

LIMIT = 60  # lines, from the ``def`` line to the function's last line


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


def test_no_function_is_longer_than_the_limit() -> None:
    found = long_functions(REPO_ROOT / "infralab")
    assert not found, f"functions over {LIMIT} lines: split them into named steps: {found}"


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
