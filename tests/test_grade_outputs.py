"""What the grader writes besides points: unique ids, unreadable files, the rubric sheet, the
Canvas export. None of these start a kernel."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from infralab.tooling import grade
from infralab.tooling.grading.sandbox import bubblewrap_works


def test_student_ids_are_unique_and_safe():
    paths = [Path("a/alice/05_lab.ipynb"), Path("b/alice/05_lab.ipynb"),
             Path("c/bob/05_lab.ipynb"), Path("x/05 lab (1).ipynb"), Path("y/../evil.ipynb")]  # fmt: skip
    ids = grade.student_ids(paths)
    assert len(set(ids)) == len(ids)
    assert ids[2] == "bob-05_lab"
    assert all("/" not in i and " " not in i and not i.startswith(".") for i in ids)


@pytest.mark.skipif(not bubblewrap_works(), reason="bwrap missing: apt-get install bubblewrap")
def test_unreadable_files_are_a_status_and_the_batch_goes_on(tmp_path):
    bad = tmp_path / "alice" / "05_lab.ipynb"
    bad.parent.mkdir()
    bad.write_text('{"cells": [', encoding="utf-8")
    binary = tmp_path / "bob" / "05_lab.ipynb"
    binary.parent.mkdir()
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    old = tmp_path / "carol" / "05_lab.ipynb"
    old.parent.mkdir()
    old.write_text(json.dumps({"nbformat": 3, "worksheets": "nope"}), encoding="utf-8")
    subs = grade.grade([bad, binary, old], tmp_path / "out", progress=False)
    for sub in subs:
        assert sub.status == "unreadable", sub.detail
        assert sub.total == 0 and sub.possible == 9
        assert all("not graded" in r.message and r.hint for r in sub.results)
        text = (tmp_path / "out" / "feedback" / f"{sub.student}.md").read_text()
        assert "not a readable notebook" in text
        assert "memory" not in text and "time" not in text.lower().replace("timeout", "")
    book = pd.read_csv(tmp_path / "out" / "gradebook.csv")
    assert list(book["status"]) == ["unreadable"] * 3


def _sub(student: str, earned: int, text: str) -> grade.Submission:
    sub = grade.Submission(Path(f"{student}/07_capstone.ipynb"), student, "07")
    sub.results = [grade.CheckResult("check_memo", 3, earned, "ok")]
    sub.free_text = {"my_reasons": text, "Reflection": "I measured TTFT."}
    return sub


def test_rubric_sheet_round_trip_and_canvas_export(tmp_path):
    subs = [_sub("alice", 3, "=HYPERLINK(x) because 42"), _sub("bob", 0, "")]
    grade.write_rubric_sheet(subs, tmp_path / "rubric.csv", {})
    sheet = pd.read_csv(tmp_path / "rubric.csv", dtype=str, keep_default_na=False)
    assert len(sheet) == 4 and set(sheet["score"]) == {""}
    assert set(sheet["possible"]) == {"3", "2"}
    grade.write_gradebook(subs, tmp_path, {})
    book = pd.read_csv(tmp_path / "gradebook.csv")
    assert list(book["total"]) == [3, 0] and list(book["possible"]) == [3, 3]
    assert list(book["rubric_pending"]) == [2, 2]

    sheet.loc[(sheet.student == "alice") & (sheet["item"] == "my_reasons"), "score"] = "2.5"
    sheet.loc[(sheet.student == "bob") & (sheet["item"] == "Reflection"), "score"] = "1"
    sheet.to_csv(tmp_path / "filled.csv", index=False)
    scores = grade.read_rubric(tmp_path / "filled.csv")
    grade.write_gradebook(subs, tmp_path, scores)
    book = pd.read_csv(tmp_path / "gradebook.csv").set_index("student")
    assert book.loc["alice", "total"] == 5.5 and book.loc["alice", "possible"] == 6
    assert book.loc["bob", "total"] == 1 and book.loc["bob", "possible"] == 5
    assert list(book["rubric_pending"]) == [1, 1]
    canvas = pd.read_csv(tmp_path / "gradebook_canvas.csv")
    assert list(canvas.columns[:5]) == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    assert list(canvas.columns[5:]) == ["Lab 07 (8)"] and list(canvas["Lab 07 (8)"]) == [5.5, 1]

    sheet.loc[0, "score"] = "9"  # more than the item is worth
    sheet.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(grade.GradeError, match="outside 0..3"):
        grade.read_rubric(tmp_path / "bad.csv")
    sheet.loc[0, "score"] = "lots"
    sheet.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(grade.GradeError, match="not a number"):
        grade.read_rubric(tmp_path / "bad.csv")
