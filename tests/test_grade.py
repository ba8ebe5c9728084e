"""`python -m infralab grade` on three submissions of lab 05: the expected gradebook.

The submissions are the solution, the untouched student copy, and a half-done copy (the
first two exercises filled in from the solution). Each runs in a fresh kernel, so this is
the slowest test of the grading module; the rest of it is tested without kernels.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from infralab.tooling import grade, notebooks
from infralab.tooling.grade_benchmark import partly_solved

LAB = "05_break_even_dashboard.ipynb"


def test_check_calls_follow_the_solution():
    calls = {c.name: c for c in grade.check_calls("05")}
    assert list(calls) == [
        "check_cost_per_1k",
        "check_break_even_function",
        "check_break_even",
        "check_trap_function",
        "check_dashboard",
    ]
    assert calls["check_cost_per_1k"].args == ("gpu_cost_per_1k",)
    assert calls["check_break_even"].source().startswith("check_break_even(break_even_rpd")


def test_lab_is_read_from_the_name_or_the_imports(tmp_path):
    assert grade.lab_of(Path("x/05_mine.ipynb"), {"cells": []}) == "05"
    nb = {"cells": [{"cell_type": "code", "source": "from infralab.tooling.checks import lab04"}]}
    assert grade.lab_of(Path("alice.ipynb"), nb) == "04"
    saved_before_the_layers = {
        "cells": [{"cell_type": "code", "source": "from infralab.checks import lab06"}]
    }
    assert grade.lab_of(Path("bob.ipynb"), saved_before_the_layers) == "06"
    with pytest.raises(grade.GradeError, match="which lab"):
        grade.lab_of(Path("alice.ipynb"), {"cells": []})


def test_cli_reports_a_missing_file(tmp_path, capsys):
    from infralab.__main__ import main

    code = main(["grade", str(tmp_path / "nope.ipynb"), "--out", str(tmp_path / "o")])
    assert code == 2 and "no such notebook" in capsys.readouterr().err


@pytest.mark.slow
def test_grade_three_submissions(repo_root, tmp_path):
    subs = tmp_path / "subs"
    for who in ("solution", "untouched", "half"):
        (subs / who).mkdir(parents=True)
    (subs / "solution" / LAB).write_text((repo_root / "labs" / "solutions" / LAB).read_text())
    (subs / "untouched" / LAB).write_text((repo_root / "labs" / LAB).read_text())
    (subs / "half" / LAB).write_text(json.dumps(partly_solved(2)))
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    (hidden / "lab05_extra.py").write_text(
        "from infralab.tooling.checks import points, check\n\n"
        "@points(3)\n"
        "def check_cheap_gpu(ns):\n"
        "    fn = ns['gpu_cost_per_1k']\n"
        "    return check(abs(fn(1.0, 1.0, 1.0) - 1000 / 3600) < 1e-9, ok='ok', problem='no')\n"
    )
    out = tmp_path / "out"
    from infralab.__main__ import main

    code = main(
        ["grade", *(str(subs / w / LAB) for w in ("solution", "untouched", "half")),
         "--out", str(out), "--extra-checks", str(hidden), "--timeout", "240"]
    )  # fmt: skip
    assert code == 0
    book = pd.read_csv(out / "gradebook.csv").set_index("student")
    checks = ["check_cost_per_1k", "check_break_even_function", "check_break_even",
              "check_trap_function", "check_dashboard", "extra:check_cheap_gpu"]  # fmt: skip
    expected = pd.DataFrame(
        {
            "solution-05_break_even_dashboard": [2, 2, 1, 2, 2, 3],
            "untouched-05_break_even_dashboard": [0, 0, 0, 0, 0, 0],
            "half-05_break_even_dashboard": [2, 2, 0, 0, 0, 3],
        },
        index=checks,
    ).T
    pd.testing.assert_frame_equal(book[checks], expected, check_names=False)
    assert list(book["possible"]) == [12, 12, 12]
    assert list(book["total"]) == [12, 0, 7]
    assert set(book["status"]) == {"ok"}
    feedback = (out / "feedback" / "untouched-05_break_even_dashboard.md").read_text()
    assert "0 / 12 points" in feedback and feedback.count("Hint:") == 6
    assert "placeholder" in feedback
    solution_feedback = (out / "feedback" / "solution-05_break_even_dashboard.md").read_text()
    assert "12 / 12 points" in solution_feedback and "Hint:" not in solution_feedback


@pytest.mark.slow
def test_a_notebook_over_the_time_limit_scores_zero(repo_root, tmp_path):
    nb = notebooks.read(repo_root / "labs" / "solutions" / LAB)
    nb["cells"].insert(3, {"cell_type": "code", "metadata": {}, "outputs": [],
                           "execution_count": None, "source": "import time\ntime.sleep(600)"})  # fmt: skip
    path = tmp_path / LAB
    path.write_text(json.dumps(nb))
    subs = grade.grade([path], tmp_path / "out", timeout_s=8, progress=False)
    assert subs[0].status == "time limit"
    assert subs[0].total == 0 and subs[0].possible == 9
    assert "longer than 8 s" in (tmp_path / "out" / "feedback" / f"{path.stem}.md").read_text()


def test_a_notebook_over_the_memory_limit_scores_zero(repo_root, tmp_path):
    nb = notebooks.read(repo_root / "labs" / "solutions" / LAB)
    nb["cells"].insert(3, {"cell_type": "code", "metadata": {}, "outputs": [],
                           "execution_count": None,
                           "source": "import time\nblock = bytearray(400 * 2**20)\ntime.sleep(60)"})  # fmt: skip
    path = tmp_path / LAB
    path.write_text(json.dumps(nb))
    subs = grade.grade([path], tmp_path / "out", memory_mb=300, timeout_s=120, progress=False)
    assert subs[0].status == "memory limit" and subs[0].total == 0


@pytest.mark.slow
def test_every_untouched_student_copy_fails_every_check_with_a_hint(repo_root, tmp_path):
    copies = sorted((repo_root / "labs").glob("[0-9][0-9]_*.ipynb"))
    assert len(copies) == len(list((repo_root / "labs" / "solutions").glob("[0-9][0-9]_*.ipynb")))
    subs = grade.grade(copies, tmp_path / "out", timeout_s=300, progress=False)
    for sub in subs:
        assert sub.status == "ok", (sub.path.name, sub.status)
        assert sub.possible >= 6 and sub.total == 0, sub.path.name
        assert {r.name for r in sub.results} == {c.name for c in grade.check_calls(sub.lab)}
        assert all(r.hint for r in sub.results), sub.path.name
