"""``python -m infralab.tooling.grade_benchmark``: a class's worth of lab-05 submissions through the grader.

Why: an instructor needs to know how long a batch takes on the machine they grade on. The
batch is realistic: a third complete (the solution), a third half done, a third untouched;
each is graded in its own sandboxed kernel with every check. ``--record`` writes
``datasets/benchmarks/grading.json`` with the machine, versions and date.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import tempfile
import time
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path

from infralab.core.paths import LABS_DIR

LAB = "05_break_even_dashboard.ipynb"


def partly_solved(exercises: int, lab: str = LAB) -> dict:
    """The student copy of ``lab`` with its first ``exercises`` exercise cells taken from the
    solution (the batch's half-done students; the grading tests use it too)."""
    from infralab.tooling import labs, notebooks
    from infralab.tooling.grade import GradeError

    solution = notebooks.read(LABS_DIR / "solutions" / lab)
    student = notebooks.read(LABS_DIR / lab)
    done = 0
    for sol, stu in zip(solution["cells"], student["cells"], strict=True):
        src = "".join(sol["source"]) if isinstance(sol["source"], list) else sol["source"]
        if sol["cell_type"] == "code" and labs.BEGIN in src and done < exercises:
            stu["source"] = src
            done += 1
    if done < exercises:
        raise GradeError(
            f"{lab} has only {done} exercise cells",
            hint=f"Ask for fewer exercises, or check the solution's {labs.BEGIN} markers.",
        )
    return student


def make_class(folder: Path, size: int) -> list[Path]:
    """``size`` submissions, one folder per student, complete / half / untouched in turn."""
    from infralab.tooling import notebooks

    kinds = [
        notebooks.read(LABS_DIR / "solutions" / LAB),
        partly_solved(2),
        notebooks.read(LABS_DIR / LAB),
    ]
    paths = []
    for i in range(size):
        path = folder / f"student{i:03d}" / LAB
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(kinds[i % 3]), encoding="utf-8")
        paths.append(path)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infralab.tooling.grade_benchmark", description=__doc__
    )
    parser.add_argument("--submissions", type=int, default=30, help="class size")
    parser.add_argument("--jobs", type=int, default=2, help="notebooks graded at once")
    parser.add_argument(
        "--record", action="store_true", help="write datasets/benchmarks/grading.json"
    )
    args = parser.parse_args(argv)
    if args.submissions < 1:
        parser.error("--submissions must be 1 or more")
    from infralab.core.results import machine
    from infralab.tooling import grade

    with tempfile.TemporaryDirectory(prefix="infralab-bench-grade-") as tmp:
        paths = make_class(Path(tmp) / "class", args.submissions)
        t0 = time.perf_counter()
        subs = grade.grade(paths, Path(tmp) / "out", jobs=args.jobs)
        wall = time.perf_counter() - t0
    seconds = sorted(s.seconds for s in subs)
    data = {
        "submissions": len(subs),
        "jobs": args.jobs,
        "wall_s": round(wall, 1),
        "per_submission_s": {
            "median": round(statistics.median(seconds), 1),
            "max": round(seconds[-1], 1),
        },
        "scores": {
            k: sum(1 for s in subs if s.total == k) for k in sorted({s.total for s in subs})
        },
        "statuses": sorted({s.status for s in subs}),
    }
    record = {
        "name": "grading",
        "measured_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": {p: version(p) for p in ("jupyter_client", "ipykernel", "hypothesis")}
        | {"python": platform.python_version()},
        "command": f"python -m infralab.tooling.grade_benchmark --submissions {args.submissions} "
        f"--jobs {args.jobs}" + (" --record" if args.record else ""),
        "data": data,
    }
    print(json.dumps(data, indent=2))
    if args.record:
        from infralab.core.results import write_recorded

        print(f"wrote {write_recorded('grading', None, record)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
