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
import contextlib
import importlib
import sys
from pathlib import Path

from infralab.core.errors import with_hint
from infralab.tooling.gradebook import (
    read_rubric,
    write_gradebook,
    write_outputs,
    write_rubric_sheet,
)
from infralab.tooling.labs import InstructorOnlyError, require_solutions
from infralab.tooling.notebooks import REPO_ROOT
from infralab.tooling.submission_run import run_submission
from infralab.tooling.submissions import (
    CHECK_IMPORT,
    FREE_TEXT_VARIABLES,
    GRADE_COMMAND,
    LAB_NUMBER,
    CheckCall,
    CheckResult,
    GradeError,
    Submission,
    _solution,
    check_calls,
    lab_of,
    markdown_answers,
    read_submission,
    student_ids,
)

# Reading a submission (submissions), running it (submission_run) and writing the gradebook
# (gradebook) live in their own modules; callers (the CLI, the benchmark, the tests) still reach
# these as grade.X.
_REEXPORTED = (
    read_rubric,
    write_gradebook,
    write_rubric_sheet,
    CHECK_IMPORT,
    FREE_TEXT_VARIABLES,
    CheckCall,
)


# ---------------------------------------------------------------- the batch
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
    write_outputs(subs, out_dir, rubric)
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
