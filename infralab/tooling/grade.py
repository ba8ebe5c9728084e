"""Grade lab notebooks a class can trust: each submission sandboxed, the checks outside it.

1. Each submission is read with nbformat (any v4 minor, as JupyterLab, Colab or VS Code
   saved it, outputs and all); an unreadable file is that student's status, and the batch
   goes on.
2. It runs cell by cell in its own kernel inside a sandbox (``infralab.tooling.grading.sandbox``): a
   scratch folder holding only that notebook, the repository as students receive it
   (read-only, without solutions, answer keys or check references), time and memory limits
   over the whole process tree, every descendant killed at the end.
3. Right after the student's cell that calls a graded check, the grader runs that check in
   *its own* process, with the references. The check's arguments come out of the kernel as
   plain data (or as proxies whose calls go back into the kernel with plain data), so nothing
   a notebook does to modules, builtins, the kit or the grader can change a score: at most it
   changes what its own code appears to return, which is then compared with the reference.
4. Points go to ``gradebook.csv`` (and ``gradebook_canvas.csv`` for an LMS), messages and
   hints to ``feedback/<student>.md``; free-text answers go to ``rubric.csv`` for a person to
   score, and ``--rubric`` merges the filled sheet back into the gradebook.

Why not otter-grader or nbgrader: see CONTRIBUTING.md (both run the tests inside the
student's kernel, where a cell can reach them; the kit's checks are plain functions the
students already run).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import hashlib
import importlib
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infralab.core.errors import InfralabError, with_hint
from infralab.tooling.checks import graded_checks
from infralab.tooling.labs import InstructorOnlyError, require_solutions
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


# ---------------------------------------------------------------- running one submission
def _check_row(name: str, points: int, run: Any) -> dict[str, Any]:
    """Run one check in the grader; a row of points, message and hint."""
    from infralab.tooling.checks import CheckFailed
    from infralab.tooling.grading.remote import KernelGone, RemoteError

    row: dict[str, Any] = {"name": name, "points": points, "earned": 0, "hint": ""}
    try:
        row["message"] = str(run())
        row["earned"] = points
    except NotImplementedError:
        row["message"] = "not done yet: a placeholder still raises NotImplementedError"
        row["hint"] = "Replace `raise NotImplementedError` with your code."
    except CheckFailed as exc:
        row["message"], row["hint"] = exc.problem, exc.hint
    except NameError as exc:
        row["message"] = f"not attempted: {exc}"
        row["hint"] = "Write the exercise and run every cell above it in order."
    except KernelGone as exc:
        row["message"] = f"not graded: {exc}"
        row["hint"] = "Run the notebook top to bottom in a fresh kernel (Restart and Run All)."
    except RemoteError as exc:
        row["message"] = f"your code raised {exc}"
        row["hint"] = "Run the notebook top to bottom in a fresh kernel; read the error."
    except Exception as exc:  # a check's own failure on odd data is still the student's zero
        row["message"] = f"{type(exc).__name__}: {str(exc)[:300]}"
        row["hint"] = "Run the notebook top to bottom in a fresh kernel; read the error."
    return row


def _confined(value: Any, scratch: Path) -> Any:
    """A path from the kernel is only read inside the scratch folder (never the grader's files)."""
    if isinstance(value, Path) or (isinstance(value, str) and value.startswith(("/", "~"))):
        path = Path(value).expanduser()
        path = path if path.is_absolute() else scratch / "work" / path
        try:
            path.resolve().relative_to(scratch.resolve())
        except (ValueError, OSError):
            return scratch / "work" / "outside-the-sandbox"
        return path if isinstance(value, Path) else str(path)
    return value


def _arguments(kernel: Any, call: CheckCall, scratch: Path) -> tuple[list[Any], dict[str, Any]]:
    args = [_confined(kernel.evaluate(expr), scratch) for expr in call.args]
    kwargs = {k: _confined(kernel.evaluate(expr), scratch) for k, expr in call.kwargs}
    return args, kwargs


class StudentNamespace:
    """The student's variables, copied out on demand (what hidden checks receive)."""

    def __init__(self, kernel: Any) -> None:
        self._kernel = kernel

    def __getitem__(self, name: str) -> Any:
        # builtin on purpose (both): the mapping protocol; .get() and `in` rely on KeyError
        if not name.isidentifier():
            raise KeyError(name)
        try:
            return self._kernel.evaluate(name)
        except NameError:
            raise KeyError(name) from None  # builtin on purpose: the mapping protocol

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self[name]
        except KeyError:
            return default

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name, self) is not self


def _hidden_checks(extra: list[Path]) -> list[tuple[str, int, Any]]:
    """The instructor's hidden checks (``check_*`` with points), loaded in the grader only."""
    import runpy

    found = []
    for path in extra:
        namespace = runpy.run_path(str(path), run_name="extra_checks")
        for name, fn in namespace.items():
            if name.startswith("check_") and callable(fn) and hasattr(fn, "points"):
                found.append((f"extra:{name}", int(fn.points), fn))
    return found


def _grading_env(scratch: Path) -> dict[str, str]:
    from infralab.core.assets import CACHE_ENV, cache_dir
    from infralab.core.results import RESULTS_ENV

    keep = ("PATH", "LANG", "LC_ALL", "PYTHONPATH", "OMP_NUM_THREADS", "INFRALAB_ASSETS_DIR",
            "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")  # fmt: skip
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update(
        HOME=str(scratch / "home"),
        TMPDIR=str(scratch / "tmp"),
        IPYTHONDIR=str(scratch / "home" / ".ipython"),
        MPLCONFIGDIR=str(scratch / "home" / ".mpl"),
        JUPYTER_PLATFORM_DIRS="1",
        PYDEVD_DISABLE_FILE_VALIDATION="1",
        INFRALAB_GRADING="1",
        **{CACHE_ENV: str(cache_dir()), RESULTS_ENV: str(scratch / "results")},
    )
    return env


def run_submission(
    sub: Submission,
    nb: Any,
    extra: list[Path],
    *,
    timeout_s: float,
    memory_mb: float,
    hide: list[Path],
    use_bwrap: bool,
    root: Path = REPO_ROOT,
) -> list[dict[str, Any]]:
    """Run one notebook in its sandbox, each graded check right after the cell that calls it."""
    from infralab.tooling.grading.sandbox import Limits, sandboxed_kernel

    module = importlib.import_module(f"infralab.tooling.checks.lab{sub.lab}")
    calls = check_calls(sub.lab, root)
    rows: list[dict[str, Any]] = []
    t0 = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="infralab-grade-"))
    try:
        (scratch / "tmp").mkdir()
        (scratch / "results").mkdir()
        with sandboxed_kernel(
            root=root,
            scratch=scratch,
            limits=Limits(timeout_s, memory_mb),
            hide=hide,
            use_bwrap=use_bwrap,
            env=_grading_env(scratch),
        ) as (km, client, watch):
            import nbformat

            from infralab.tooling.grading.remote import KernelSession

            nbformat.write(nb, str(scratch / "work" / sub.path.name))
            kernel = KernelSession(client, km.is_alive, km.interrupt_kernel)
            kernel.deadline = t0 + timeout_s
            grade_now = _check_runner(module, kernel, scratch, rows)
            pending = _run_cells(nb, kernel, list(calls), grade_now)
            for call in pending:  # checks the student never called: graded at the end
                if km.is_alive() and kernel.remaining() > 0:
                    grade_now(call)
            if km.is_alive() and kernel.remaining() > 0:
                _hidden_checks_and_free_text(sub, kernel, extra, rows)
            sub.status = watch.reason or ("kernel died" if not km.is_alive() else "ok")
            if sub.status == "ok" and kernel.remaining() <= 0:
                sub.status = "time limit"
    finally:
        sub.seconds = time.monotonic() - t0
        shutil.rmtree(scratch, ignore_errors=True)
    return rows


def _check_runner(
    module: Any, kernel: Any, scratch: Path, rows: list[dict[str, Any]]
) -> Callable[[CheckCall], None]:
    """A function that grades one check call in the grader, on values copied out of the kernel."""
    from infralab.tooling.checks import grading_mode

    def grade_now(call: CheckCall) -> None:
        fn = getattr(module, call.name)

        def run() -> Any:
            if not kernel.install():
                from infralab.tooling.grading.remote import KernelGone

                raise KernelGone("KernelDied", "the kernel stopped before this check")
            args, kwargs = _arguments(kernel, call, scratch)
            with grading_mode():
                return fn(*args, **kwargs)

        rows.append(_check_row(call.name, int(fn.points), run))

    return grade_now


def _run_cells(
    nb: Any, kernel: Any, pending: list[CheckCall], grade_now: Callable[[CheckCall], None]
) -> list[CheckCall]:
    """Run the code cells in order, grading each check after the cell that calls it; the
    checks never called are left in ``pending``, which is returned."""
    for cell in nb.cells:
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        status, _ = kernel.execute(cell.source, timeout=kernel.remaining())
        if status in ("timeout", "dead"):
            break
        for call in list(pending):
            if re.search(rf"\b{call.name}\s*\(", cell.source):
                grade_now(call)
                pending.remove(call)
    return pending


def _hidden_checks_and_free_text(
    sub: Submission, kernel: Any, extra: list[Path], rows: list[dict[str, Any]]
) -> None:
    """The instructor's hidden checks on the student's namespace, then the free-text answers."""
    namespace = StudentNamespace(kernel)
    for name, points, fn in _hidden_checks(extra):
        rows.append(_check_row(name, points, lambda f=fn: f(namespace)))
    if kernel.install():
        sub.free_text.update(_free_text_values(kernel, sub.lab))


def _free_text_values(kernel: Any, lab: str) -> dict[str, str]:
    out = {}
    for name in FREE_TEXT_VARIABLES.get(lab, {}):
        out[name] = ""  # every student gets every rubric row, answered or not
        with contextlib.suppress(Exception):
            value = kernel.evaluate(name)
            if isinstance(value, str):
                out[name] = value
    return out


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


# ---------------------------------------------------------------- the batch
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


def grade(
    paths: list[Path],
    out_dir: Path,
    *,
    extra_checks: Path | None = None,
    timeout_s: float = 300,
    memory_mb: float = 3000,
    root: Path = REPO_ROOT,
    progress: bool = True,
    sandbox: str = "require",
    rubric: Path | None = None,
    jobs: int = 1,
) -> list[Submission]:
    """Grade every submission; write the gradebook, feedback, rubric sheet and LMS export.

    ``sandbox``: "require" (refuse without bubblewrap), "auto" (use it when it works) or
    "off" (scratch folder and process-tree limits only; the notebook can read the repo).
    """
    from infralab.tooling.grading.sandbox import SandboxError, bubblewrap_works

    require_solutions(GRADE_COMMAND, root)  # before any folder is made: say so at once
    use_bwrap = sandbox != "off" and bubblewrap_works()
    if sandbox == "require" and not use_bwrap:
        raise SandboxError(
            "bubblewrap (bwrap) is not usable here, so a submission could read the solutions "
            "and other students' files"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "feedback").mkdir(exist_ok=True)
    extra_dir = Path(extra_checks) if extra_checks is not None else None
    if extra_dir is not None and not extra_dir.is_dir():
        raise GradeError(f"--extra-checks {extra_dir}: not a folder")
    hide = sorted({p.resolve().parent for p in paths} | {out_dir.resolve()}
                  | ({extra_dir.resolve()} if extra_dir else set()))  # fmt: skip
    missing = [str(p) for p in paths if not Path(p).is_file()]
    if missing:  # an instructor's typo: say so before spending minutes on the rest
        raise GradeError(f"no such notebook: {', '.join(missing[:5])}")
    subs: list[Submission] = []
    for path, student in zip(paths, student_ids(paths), strict=True):
        subs.append(Submission(Path(path), student, lab=""))
    if jobs < 1:
        raise GradeError(f"--jobs {jobs}: give 1 or more")
    settings = (extra_dir, timeout_s, memory_mb, hide, use_bwrap, root)
    _grade_all(subs, settings, jobs=jobs, progress=progress)
    _write_outputs(subs, out_dir, rubric)
    return subs


def _grade_all(subs: list[Submission], settings: tuple, *, jobs: int, progress: bool) -> None:
    """Grade each submission in place: in this process, or one spawned grader per job."""
    from tqdm.auto import tqdm

    bar = tqdm(total=len(subs), desc="grading", unit="notebook", disable=not progress)
    if jobs == 1:
        for sub in subs:
            _grade_one(sub, *settings)
            bar.update()
    else:  # one grader process per job, each with its own kernels (hypothesis is per process)
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) as pool:
            futures = [pool.submit(_graded, sub, settings) for sub in subs]
            for i, future in enumerate(futures):
                subs[i] = future.result()
                bar.update()
    bar.close()


def _write_outputs(subs: list[Submission], out_dir: Path, rubric: Path | None) -> None:
    """Feedback per student, then the gradebook and rubric sheet (with any filled rubric)."""
    for sub in subs:
        _write_feedback(sub, out_dir / "feedback" / f"{sub.student}.md")
    scores = read_rubric(rubric) if rubric is not None else {}
    write_gradebook(subs, out_dir, scores)
    write_rubric_sheet(subs, out_dir / "rubric.csv", scores)


def _graded(sub: Submission, settings: tuple) -> Submission:
    _grade_one(sub, *settings)
    return sub


def _grade_one(
    sub: Submission,
    extra_dir: Path | None,
    timeout_s: float,
    memory_mb: float,
    hide: list[Path],
    use_bwrap: bool,
    root: Path,
) -> None:
    if not sub.path.is_file():
        sub.status, sub.detail = "missing", f"{sub.path}: no such file"
        return
    try:
        nb = read_submission(sub.path)
        sub.lab = lab_of(sub.path, nb)
    except GradeError as exc:
        sub.status, sub.detail = "unreadable", str(exc)
        found = LAB_NUMBER.search(sub.path.as_posix())
        sub.lab = found.group(1) if found else "?"
        sub.results = _zero_rows(sub.lab, root, f"not graded: {exc}",
                                 "Send the .ipynb file as Jupyter saved it.")  # fmt: skip
        return
    extra = sorted(extra_dir.glob(f"lab{sub.lab}*.py")) if extra_dir else []
    rows = run_submission(sub, nb, extra, timeout_s=timeout_s, memory_mb=memory_mb,
                          hide=hide, use_bwrap=use_bwrap, root=root)  # fmt: skip
    done = {r["name"] for r in rows}
    why, hint = {
        "time limit": (f"the notebook ran longer than {timeout_s:g} s",
                       "Run it top to bottom in a fresh kernel and look for the slow cell."),
        "memory limit": (f"the notebook used more than {memory_mb:g} MB of memory",
                         "Run it top to bottom in a fresh kernel and watch its memory."),
        "kernel died": ("the kernel stopped before this check (an exit or a crash)",
                        "Run it top to bottom in a fresh kernel (Restart and Run All)."),
    }.get(sub.status, ("the notebook never called this check",
                       "Keep the lab's check cells and run every cell in order."))  # fmt: skip
    module = importlib.import_module(f"infralab.tooling.checks.lab{sub.lab}")
    rows += [
        {"name": c.name, "points": int(getattr(module, c.name).points), "earned": 0,
         "message": f"not graded: {why}", "hint": hint}
        for c in check_calls(sub.lab, root) if c.name not in done
    ]  # fmt: skip
    sub.results = [
        CheckResult(r["name"], int(r["points"]), int(r["earned"]), r["message"], r["hint"])
        for r in rows
    ]
    with contextlib.suppress(GradeError, OSError):
        template = read_submission(root / "labs" / _solution(sub.lab, root).name)
        sub.free_text.update(markdown_answers(nb, template))


def _zero_rows(lab: str, root: Path, message: str, hint: str) -> list[CheckResult]:
    try:
        module = importlib.import_module(f"infralab.tooling.checks.lab{lab}")
        calls = check_calls(lab, root)
    except (ImportError, GradeError):
        return []
    return [CheckResult(c.name, int(getattr(module, c.name).points), 0, message, hint)
            for c in calls]  # fmt: skip


# ---------------------------------------------------------------- outputs
def _rubric_items(sub: Submission) -> list[tuple[str, int]]:
    variables = FREE_TEXT_VARIABLES.get(sub.lab, {})
    return [(k, variables.get(k, MARKDOWN_ANSWER_POINTS)) for k in sub.free_text]


def write_rubric_sheet(subs: list[Submission], path: Path, scores: dict) -> None:
    """One row per student and free-text answer: the text, the points possible, and empty
    ``score`` / ``comment`` columns for the instructor (kept when a sheet was merged)."""
    import pandas as pd

    rows = []
    for sub in subs:
        for item, possible in _rubric_items(sub):
            score, comment = scores.get((sub.student, sub.lab, item), ("", ""))
            rows.append({"student": sub.student, "lab": sub.lab, "item": item,
                         "possible": possible, "score": score, "comment": comment,
                         "answer": sub.free_text[item]})  # fmt: skip
    columns = ["student", "lab", "item", "possible", "score", "comment", "answer"]
    pd.DataFrame(rows, columns=columns).to_csv(path, index=False)


def read_rubric(path: Path) -> dict[tuple[str, str, str], tuple[Any, str]]:
    """The instructor's filled rubric sheet: (student, lab, item) -> (score, comment)."""
    import pandas as pd

    try:
        sheet = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise GradeError(f"--rubric {path}: cannot read it ({exc})") from None
    needed = {"student", "lab", "item", "possible", "score"}
    if not needed <= set(sheet.columns):
        raise GradeError(f"--rubric {path}: needs the columns {sorted(needed)}")
    out: dict[tuple[str, str, str], tuple[Any, str]] = {}
    for row in sheet.to_dict(orient="records"):
        score = row["score"].strip()
        if score:
            try:
                value = float(score)
                possible = float(row["possible"])
            except ValueError:
                raise GradeError(f"--rubric: {row['student']} {row['item']}: "
                                 f"score {score!r} is not a number") from None  # fmt: skip
            if not 0 <= value <= possible:
                raise GradeError(f"--rubric: {row['student']} {row['item']}: score {score} "
                                 f"is outside 0..{possible:g}")  # fmt: skip
            score = value
        key = (row["student"], row["lab"].zfill(2), row["item"])
        out[key] = (score, row.get("comment", ""))
    return out


def write_gradebook(subs: list[Submission], out_dir: Path, scores: dict) -> None:
    """``gradebook.csv`` (a column per check, rubric scores merged) and an LMS-ready copy."""
    import pandas as pd

    table = []
    for sub in subs:
        row: dict[str, Any] = {"student": sub.student, "lab": sub.lab, "file": str(sub.path)}
        for r in sub.results:
            row[r.name] = r.earned
        # total and possible count what has been graded: every check, and each free-text
        # answer a person has scored; answers still waiting for a person are counted apart.
        rubric_total, rubric_possible, pending = 0.0, 0, 0
        for item, possible in _rubric_items(sub):
            score, _ = scores.get((sub.student, sub.lab, item), ("", ""))
            if isinstance(score, float):
                row[f"rubric:{item}"] = score
                rubric_total += score
                rubric_possible += possible
            else:
                pending += 1
        total = sub.total + rubric_total
        row.update(
            total=int(total) if float(total).is_integer() else total,
            possible=sub.possible + rubric_possible,
            rubric_pending=pending,
            status=sub.status,
            detail=sub.detail,
        )
        table.append(row)
    book = pd.DataFrame(table)
    book.to_csv(out_dir / "gradebook.csv", index=False)
    # Canvas' gradebook import: Student, ID, SIS User ID, SIS Login ID, Section, then one
    # column per assignment whose header names it and its points possible (every check and
    # every free-text answer, scored or not: one column per lab).
    canvas = []
    for sub, row in zip(subs, table, strict=True):
        worth = sub.possible + sum(p for _, p in _rubric_items(sub))
        canvas.append({"Student": sub.student, "ID": "", "SIS User ID": sub.student,
                       "SIS Login ID": sub.student, "Section": "",
                       f"Lab {sub.lab} ({worth:g})": row["total"]})  # fmt: skip
    pd.DataFrame(canvas).to_csv(out_dir / "gradebook_canvas.csv", index=False)


def _write_feedback(sub: Submission, path: Path) -> None:
    lines = [f"# Lab {sub.lab}: {sub.total} / {sub.possible} points", ""]
    how = f"status: {sub.status}" + (f", {sub.detail}" if sub.detail else "")
    lines += [f"Submission `{sub.path.name}`, graded in a sandboxed kernel "
              f"({sub.seconds:.0f} s, {how}).", ""]  # fmt: skip
    for r in sub.results:
        mark = "passed" if r.passed else "not yet"
        lines.append(f"- **{r.name}** ({r.earned}/{r.points}, {mark}): {r.message}")
        if r.hint and not r.passed:
            lines.append(f"  - Hint: {r.hint}")
    if sub.free_text:
        lines += ["", "Free-text answers are scored by your instructor from a rubric."]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


# ---------------------------------------------------------------- command line
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infralab grade",
        description=__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("submissions", nargs="+", type=Path, help="student lab notebooks")
    parser.add_argument("--out", type=Path, default=Path("artifacts/grades"),
                        help="folder for gradebook.csv, gradebook_canvas.csv, rubric.csv, feedback/")  # fmt: skip
    parser.add_argument(
        "--extra-checks",
        type=Path,
        default=None,
        help="folder of hidden checks: labNN*.py files whose check_* functions (declared "
        "with infralab.tooling.checks.points) take the student's namespace; run in the grader",
    )
    parser.add_argument("--timeout", type=float, default=300, help="seconds per notebook")
    parser.add_argument("--memory", type=float, default=3000,
                        help="MB per notebook (resident memory of every process it starts)")  # fmt: skip
    parser.add_argument("--jobs", type=int, default=1,
                        help="notebooks graded at once (each in its own sandbox); up to the cores")  # fmt: skip
    parser.add_argument("--rubric", type=Path, default=None,
                        help="a filled rubric.csv from an earlier run, merged into the gradebook")  # fmt: skip
    parser.add_argument("--unsafe-no-sandbox", action="store_true",
                        help="grade without bubblewrap: a notebook can then read the solutions "
                        "and write outside its folder (for trusted code only)")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from infralab.tooling.grading.sandbox import SandboxError

    try:
        subs = grade(
            args.submissions,
            args.out,
            extra_checks=args.extra_checks,
            timeout_s=args.timeout,
            memory_mb=args.memory,
            sandbox="off" if args.unsafe_no_sandbox else "require",
            rubric=args.rubric,
            jobs=args.jobs,
        )
    except (GradeError, SandboxError, InstructorOnlyError) as exc:
        print(f"error: {with_hint(exc)}", file=sys.stderr)
        return 2
    for sub in subs:
        print(f"{sub.student:30s} lab {sub.lab}  {sub.total:3d} / {sub.possible}  {sub.status}")
    print(f"wrote {args.out / 'gradebook.csv'}, gradebook_canvas.csv, rubric.csv and "
          f"{args.out / 'feedback'}/")  # fmt: skip
    return 0
