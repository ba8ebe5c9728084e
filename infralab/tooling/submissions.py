"""A submitted lab notebook, read and placed: which lab it is and which graded checks it calls.

The grader (``infralab.tooling.grade``) reads each submission with nbformat (any v4 minor, as
JupyterLab, Colab or VS Code saved it), finds its lab from the file name or the checks it
imports, and lists the check calls of that lab's solution, which say what to grade.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infralab.core.errors import InfralabError
from infralab.tooling.checks import graded_checks
from infralab.tooling.labs import require_solutions
from infralab.tooling.notebooks import REPO_ROOT, _source_text

GRADE_COMMAND = "python -m infralab grade"

LAB_NUMBER = re.compile(r"(?:^|/)(\d{2})_[^/]*\.ipynb$")
# Either path of the checks: the layer folders (kit 0.2) or before them (a notebook saved then).
CHECK_IMPORT = re.compile(r"infralab\.(?:tooling\.)?checks(?:\.lab(\d{2})| import lab(\d{2}))")
ANSWER_PROMPT = "_Your answer here._"
# Free text a person scores: (variable in the student's namespace, points) per lab. Markdown
# answers (cells whose template says "_Your answer here._") are found on their own.
FREE_TEXT_VARIABLES: dict[str, dict[str, int]] = {"07": {"my_reasons": 3}}
MARKDOWN_ANSWER_POINTS = 2


class GradeError(ValueError, InfralabError):
    """A submission the grader cannot place (unknown lab, unreadable file)."""

    hint = "`python -m infralab grade --help` shows the arguments; submissions are .ipynb files."


@dataclass
class CheckResult:
    name: str
    points: int
    earned: int
    message: str
    hint: str = ""

    @property
    def passed(self) -> bool:
        return self.earned == self.points


@dataclass
class Submission:
    path: Path
    student: str
    lab: str
    results: list[CheckResult] = field(default_factory=list)
    status: str = "ok"  # ok | time limit | memory limit | kernel died | unreadable | ...
    detail: str = ""
    seconds: float = 0.0
    free_text: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(r.earned for r in self.results)

    @property
    def possible(self) -> int:
        return sum(r.points for r in self.results)


@dataclass(frozen=True)
class CheckCall:
    """A graded check and its argument expressions, as the lab's solution calls it."""

    name: str
    args: tuple[str, ...]
    kwargs: tuple[tuple[str, str], ...] = ()

    def source(self) -> str:
        parts = [*self.args, *(f"{k}={v}" for k, v in self.kwargs)]
        return f"{self.name}({', '.join(parts)})"


# ---------------------------------------------------------------- reading
def read_submission(path: Path) -> Any:
    """The notebook as nbformat reads it (any v4 minor; sources joined into strings)."""
    import nbformat

    try:
        nb = nbformat.read(str(path), as_version=4)
    except Exception as exc:  # JSON errors, an unknown major version, a binary file
        raise GradeError(f"{path.name}: not a readable notebook ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0][:200] if str(exc) else 'empty'})") from None  # fmt: skip
    for cell in nb.get("cells", []):
        src = cell.get("source", "")
        if isinstance(src, list):  # nbformat joins these already; a hand-made file may not
            cell["source"] = "".join(str(s) for s in src)
        elif not isinstance(src, str):
            cell["source"] = ""
    return nb


def lab_of(path: Path, nb: Any) -> str:
    """The lab number ("02") from the file name, else from the checks the notebook imports."""
    found = LAB_NUMBER.search(path.as_posix())
    if (
        found
        and (REPO_ROOT / "infralab" / "tooling" / "checks" / f"lab{found.group(1)}.py").is_file()
    ):
        return found.group(1)
    for cell in nb.get("cells", []):
        match = CHECK_IMPORT.search(_source_text(cell.get("source", "")))
        if match:
            return match.group(1) or match.group(2)
    raise GradeError(f"{path}: cannot tell which lab this is (name it like 02_anything.ipynb)")


def _solution(lab: str, root: Path) -> Path:
    found = sorted(require_solutions(GRADE_COMMAND, root).glob(f"{lab}_*.ipynb"))
    if not found:
        raise GradeError(f"no solution notebook for lab {lab}")
    return found[0]


def check_calls(lab: str, root: Path = REPO_ROOT) -> list[CheckCall]:
    """Each graded check with the argument expressions the lab's solution passes it."""
    module = importlib.import_module(f"infralab.tooling.checks.lab{lab}")
    graded = graded_checks(module)
    calls: dict[str, CheckCall] = {}
    for cell in read_submission(_solution(lab, root)).cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name in graded and name not in calls:
                calls[name] = CheckCall(
                    name,
                    tuple(ast.unparse(a) for a in node.args),
                    tuple((k.arg or "", ast.unparse(k.value)) for k in node.keywords if k.arg),
                )
    missing = set(graded) - set(calls)
    if missing:
        raise GradeError(f"lab {lab}'s solution never calls {sorted(missing)}")
    return sorted(calls.values(), key=lambda c: list(graded).index(c.name))


def markdown_answers(nb: Any, template: Any) -> dict[str, str]:
    """Free-text answers: each template cell that says "_Your answer here._", by its heading,
    with the student's text under the same heading (the heading and prompt removed)."""
    answers: dict[str, str] = {}
    headings = []
    for cell in template.cells:
        if cell.cell_type == "markdown" and ANSWER_PROMPT in cell.source:
            first = cell.source.strip().splitlines()[0]
            headings.append((first, cell.source))
    for first, prompt in headings:
        key = first.lstrip("#").strip()[:60] or "answer"
        for cell in nb.cells:
            if cell.cell_type == "markdown" and cell.source.strip().startswith(first):
                text = cell.source
                for line in prompt.splitlines():  # drop the template's own lines
                    if line.strip():
                        text = text.replace(line, "", 1)
                answers[key] = text.strip()
                break
        else:
            answers[key] = ""
    return answers


def student_ids(paths: list[Path]) -> list[str]:
    """One unique, file-system-safe id per submission: the file stem, else folder-stem, else
    with a short hash of the full path (two students can never share a feedback file)."""

    def safe(text: str) -> str:
        return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "student"

    stems = [safe(p.stem) for p in paths]
    ids = [s if stems.count(s) == 1 else safe(f"{p.parent.name}-{p.stem}") for s, p in zip(stems, paths, strict=True)]  # fmt: skip
    seen: set[str] = set()
    out = []
    for sid, path in zip(ids, paths, strict=True):
        if ids.count(sid) > 1 or sid in seen:
            sid = f"{sid}-{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:8]}"
        seen.add(sid)
        out.append(sid)
    return out
