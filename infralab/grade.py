"""Grade submitted lab notebooks: a fresh kernel each, a time and memory limit, every check.

Why not otter-grader or nbgrader (see CONTRIBUTING.md): both want the checks rewritten in
their own test format and the notebooks in their own layout, while the kit's checks are
plain functions that students already run. This module reuses them as they are:

1. the submission runs top to bottom in a fresh kernel (``nbclient``), errors allowed, with
   the lab folder as working directory, under a wall-clock and a memory limit (resident
   memory of the kernel and every process it starts, polled with ``psutil``);
2. then, in the same kernel, the grader calls every graded check of the lab the way the
   solution notebook calls it, from a freshly reloaded check module (a student cannot
   redefine a check to pass it), plus the instructor's hidden checks from ``--extra-checks``;
3. each check's points (declared next to it with ``infralab.checks.points``) go to a
   gradebook CSV, and its message and hint to a feedback file per student.
"""

from __future__ import annotations

import argparse
import ast
import copy
import importlib
import json
import re
import secrets
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infralab import notebooks
from infralab.checks import graded_checks
from infralab.errors import InfralabError, with_hint
from infralab.labs import InstructorOnlyError, require_solutions
from infralab.notebooks import REPO_ROOT

GRADE_COMMAND = "python -m infralab grade"

LAB_NUMBER = re.compile(r"(?:^|/)(\d{2})_[^/]*\.ipynb$")
CHECK_IMPORT = re.compile(r"infralab\.checks(?:\.lab(\d{2})| import lab(\d{2}))")


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
    status: str = "ok"  # ok | time limit | memory limit | kernel died
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(r.earned for r in self.results)

    @property
    def possible(self) -> int:
        return sum(r.points for r in self.results)


def lab_of(path: Path, nb: dict[str, Any]) -> str:
    """The lab number ("02") from the file name, else from the checks the notebook imports."""
    found = LAB_NUMBER.search(path.as_posix())
    if found and (REPO_ROOT / "infralab" / "checks" / f"lab{found.group(1)}.py").is_file():
        return found.group(1)
    for cell in nb.get("cells", []):
        match = CHECK_IMPORT.search(_source(cell))
        if match:
            return match.group(1) or match.group(2)
    raise GradeError(f"{path}: cannot tell which lab this is (name it like 02_anything.ipynb)")


def _source(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def check_calls(lab: str, root: Path = REPO_ROOT) -> list[tuple[str, str]]:
    """(check name, call source) for each graded check, as the lab's solution calls it."""
    module = importlib.import_module(f"infralab.checks.lab{lab}")
    graded = graded_checks(module)
    solutions = sorted(require_solutions(GRADE_COMMAND, root).glob(f"{lab}_*.ipynb"))
    if not solutions:
        raise GradeError(f"no solution notebook for lab {lab}")
    calls: list[tuple[str, str]] = []
    for cell in notebooks.read(solutions[0])["cells"]:
        if cell.get("cell_type") != "code":
            continue
        try:
            tree = ast.parse(_source(cell))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name in graded and name not in {c for c, _ in calls}:
                call = copy.deepcopy(node)
                call.func = ast.Attribute(ast.Name("_grade_mod", ast.Load()), name, ast.Load())
                calls.append((name, ast.unparse(call)))
    missing = set(graded) - {c for c, _ in calls}
    if missing:
        raise GradeError(f"lab {lab}'s solution never calls {sorted(missing)}")
    return calls


def grader_cells(
    lab: str, calls: list[tuple[str, str]], extra: list[Path], out: Path
) -> tuple[str, dict[str, str], str]:
    """The grader's code for the student's kernel: a set-up cell (run first, before any of
    the student's code, so it holds the real checks), one cell per check (run right after
    the student's cell that calls it, when the notebook's state is what the check expects),
    and a final cell for the hidden checks. Every result is written to ``out`` at once, so
    checks passed before a time or memory limit still count."""
    names = [name for name, _ in calls]
    setup = "\n".join(
        [
            "import importlib as _grade_il, json as _grade_json",
            "import infralab.checks as _grade_checks",
            f"_grade_mod = _grade_il.reload(_grade_il.import_module('infralab.checks.lab{lab}'))",
            f"_grade_fns = {{n: getattr(_grade_mod, n) for n in {names!r}}}",
            "_grade_failed, _grade_out = _grade_checks.CheckFailed, []",
            "def _grade_run(name, points, call):",
            "    row = {'name': name, 'points': points, 'earned': 0, 'hint': ''}",
            "    try:",
            "        row['message'] = str(call()); row['earned'] = points",
            "    except NotImplementedError:",
            "        row['message'] = 'not done yet: a placeholder still raises NotImplementedError'",
            "        row['hint'] = 'Replace `raise NotImplementedError` with your code.'",
            "    except _grade_failed as exc:",
            "        row['message'], row['hint'] = exc.problem, exc.hint",
            "    except NameError as exc:",
            "        row['message'] = f'not attempted: {exc}'",
            "        row['hint'] = 'Write the exercise and run every cell above in order.'",
            "    except Exception as exc:",
            "        row['message'] = f'{type(exc).__name__}: {exc}'",
            "        row['hint'] = 'Run the notebook top to bottom in a fresh kernel; read the error.'",
            "    _grade_out.append(row)",
            f"    _grade_json.dump(_grade_out, open({str(out)!r}, 'w'))",
        ]
    )
    per_check = {}
    for name, call in calls:
        call = call.replace(f"_grade_mod.{name}", f"_grade_fns[{name!r}]", 1)
        per_check[name] = f"_grade_run({name!r}, _grade_fns[{name!r}].points, lambda: {call})"
    final: list[str] = []
    for path in extra:
        final += [
            f"_grade_ns = {{'__name__': 'extra_checks', '__file__': {str(path)!r}}}",
            f"exec(compile(open({str(path)!r}).read(), {str(path)!r}, 'exec'), _grade_ns)",
            "for _grade_name, _grade_fn in list(_grade_ns.items()):",
            "    if _grade_name.startswith('check_') and hasattr(_grade_fn, 'points'):",
            "        _grade_run('extra:' + _grade_name, _grade_fn.points,"
            " lambda f=_grade_fn: f(get_ipython().user_ns))",
        ]
    final.append(f"_grade_json.dump(_grade_out, open({str(out)!r}, 'w'))")
    return setup, per_check, "\n".join(final)


def _with_grader(nb: dict[str, Any], setup: str, per_check: dict[str, str], final: str) -> None:
    """Insert the grader's cells: set-up first, each check after the cell that calls it."""

    def cell(source: str) -> dict[str, Any]:
        return {"cell_type": "code", "metadata": {}, "source": source, "outputs": [],
                "execution_count": None}  # fmt: skip

    cells: list[dict[str, Any]] = [cell(setup)]
    placed: set[str] = set()
    for c in nb.get("cells", []):
        cells.append(c)
        if c.get("cell_type") != "code":
            continue
        source = _source(c)
        for name, code in per_check.items():
            if name not in placed and re.search(rf"\b{name}\s*\(", source):
                cells.append(cell(code))
                placed.add(name)
    cells += [cell(code) for name, code in per_check.items() if name not in placed]
    cells.append(cell(final))
    nb["cells"] = cells


def _tree_rss_mb(pid: int) -> float:
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


def _kill_tree(pid: int) -> None:
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [*proc.children(recursive=True), proc]
    except psutil.Error:
        return
    for p in procs:
        try:
            p.kill()
        except psutil.Error:
            pass


def run_submission(
    path: Path,
    lab: str,
    extra: list[Path],
    *,
    timeout_s: float,
    memory_mb: float,
    root: Path = REPO_ROOT,
) -> tuple[list[dict[str, Any]] | None, str, float]:
    """Execute one notebook and its checks; (check rows or None, status, seconds)."""
    nb = notebooks.read(path)
    with tempfile.TemporaryDirectory(prefix="infralab-grade-") as tmp:
        out = Path(tmp) / f"results-{secrets.token_hex(8)}.json"
        _with_grader(nb, *grader_cells(lab, check_calls(lab, root), extra, out))
        import nbformat

        node = nbformat.from_dict(nb)
        for cell in node.cells:
            cell.pop("id", None)
        client = notebooks.client_class()(
            node,
            timeout=max(int(timeout_s), 1),
            kernel_name="python3",
            allow_errors=True,
            resources={"metadata": {"path": str(root / "labs")}},
        )
        status = {"value": "ok"}
        done = threading.Event()
        t0 = time.monotonic()

        def watchdog() -> None:
            while not done.wait(0.5):
                km = getattr(client, "km", None)
                provisioner = getattr(km, "provisioner", None) if km else None
                pid = getattr(provisioner, "pid", None)
                if pid is None:
                    continue
                if time.monotonic() - t0 > timeout_s:
                    status["value"] = "time limit"
                elif _tree_rss_mb(pid) > memory_mb:
                    status["value"] = "memory limit"
                else:
                    continue
                _kill_tree(pid)
                return

        thread = threading.Thread(target=watchdog, daemon=True)
        thread.start()
        try:
            client.execute()
        except Exception as exc:  # a dead kernel or a cell over the time limit
            if status["value"] == "ok":
                status["value"] = "time limit" if "Timeout" in type(exc).__name__ else "kernel died"
        finally:
            done.set()
            thread.join(timeout=5)
        seconds = time.monotonic() - t0
        rows = json.loads(out.read_text()) if out.is_file() else None
        return rows, status["value"], seconds


def _extra_files(directory: Path | None, lab: str) -> list[Path]:
    if directory is None:
        return []
    if not directory.is_dir():
        raise GradeError(f"--extra-checks {directory}: not a folder")
    return sorted(directory.glob(f"lab{lab}*.py"))


def _student_names(paths: list[Path]) -> list[str]:
    stems = [p.stem for p in paths]
    return [p.stem if stems.count(p.stem) == 1 else f"{p.parent.name}-{p.stem}" for p in paths]


def grade(
    paths: list[Path],
    out_dir: Path,
    *,
    extra_checks: Path | None = None,
    timeout_s: float = 300,
    memory_mb: float = 3000,
    root: Path = REPO_ROOT,
    progress: bool = True,
) -> list[Submission]:
    """Grade every submission; write ``gradebook.csv`` and ``feedback/<student>.md``."""
    import pandas as pd
    from tqdm.auto import tqdm

    require_solutions(GRADE_COMMAND, root)  # before any folder is made: say so at once
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "feedback").mkdir(exist_ok=True)
    subs: list[Submission] = []
    for path, student in zip(paths, _student_names(paths), strict=True):
        if not path.is_file():
            raise GradeError(f"{path}: no such notebook")
        subs.append(Submission(path, student, lab_of(path, notebooks.read(path))))
    for sub in tqdm(subs, desc="grading", unit="notebook", disable=not progress):
        calls = check_calls(sub.lab, root)
        module = importlib.import_module(f"infralab.checks.lab{sub.lab}")
        rows, sub.status, sub.seconds = run_submission(
            sub.path,
            sub.lab,
            _extra_files(extra_checks, sub.lab),
            timeout_s=timeout_s,
            memory_mb=memory_mb,
            root=root,
        )
        rows = rows or []
        done = {r["name"] for r in rows}
        why = {
            "time limit": f"the notebook ran longer than {timeout_s:g} s",
            "memory limit": f"the notebook used more than {memory_mb:g} MB of memory",
            "ok": "the notebook never got there",
        }.get(sub.status, "the kernel died")
        rows += [  # checks not reached score zero, and the feedback says why
            {"name": name, "points": module.__dict__[name].points, "earned": 0,
             "message": f"not graded: {why}",
             "hint": "Run it top to bottom in a fresh kernel (Kernel > Restart and Run All) "
             "and watch time and memory."}
            for name, _ in calls
            if name not in done
        ]  # fmt: skip
        sub.results = [
            CheckResult(r["name"], int(r["points"]), int(r["earned"]), r["message"], r["hint"])
            for r in rows
        ]
        _write_feedback(sub, out_dir / "feedback" / f"{sub.student}.md")
    table = []
    for sub in subs:
        row: dict[str, Any] = {"student": sub.student, "lab": sub.lab, "file": str(sub.path)}
        for r in sub.results:
            row[r.name] = r.earned
        row.update(total=sub.total, possible=sub.possible, status=sub.status)
        table.append(row)
    pd.DataFrame(table).to_csv(out_dir / "gradebook.csv", index=False)
    return subs


def _write_feedback(sub: Submission, path: Path) -> None:
    lines = [
        f"# Lab {sub.lab}: {sub.total} / {sub.possible} points",
        "",
        f"Submission `{sub.path.name}`, graded in a fresh kernel ({sub.seconds:.0f} s, "
        f"status: {sub.status}).",
        "",
    ]
    for r in sub.results:
        mark = "passed" if r.passed else "not yet"
        lines.append(f"- **{r.name}** ({r.earned}/{r.points}, {mark}): {r.message}")
        if r.hint and not r.passed:
            lines.append(f"  - Hint: {r.hint}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infralab grade", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("submissions", nargs="+", type=Path, help="student lab notebooks")
    parser.add_argument("--out", type=Path, default=Path("artifacts/grades"))
    parser.add_argument(
        "--extra-checks",
        type=Path,
        default=None,
        help="folder of hidden checks: labNN*.py files whose check_* functions (declared "
        "with infralab.checks.points) take the student's namespace",
    )
    parser.add_argument("--timeout", type=float, default=300, help="seconds per notebook")
    parser.add_argument("--memory", type=float, default=3000, help="MB per notebook (RSS)")


def run(args: argparse.Namespace) -> int:
    try:
        subs = grade(
            args.submissions,
            args.out,
            extra_checks=args.extra_checks,
            timeout_s=args.timeout,
            memory_mb=args.memory,
        )
    except InstructorOnlyError as exc:
        print(f"error: {with_hint(exc)}")
        return 2
    except GradeError as exc:
        print(f"error: {exc}")
        return 2
    for sub in subs:
        print(f"{sub.student:30s} lab {sub.lab}  {sub.total:3d} / {sub.possible}  {sub.status}")
    print(f"wrote {args.out / 'gradebook.csv'} and {args.out / 'feedback'}/")
    return 0
