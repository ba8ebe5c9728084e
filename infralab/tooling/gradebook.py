"""What the grader writes: the gradebook CSVs, the rubric sheet for free text, and feedback.

Points go to ``gradebook.csv`` (and ``gradebook_canvas.csv`` for an LMS), messages and hints
to ``feedback/<student>.md``; free-text answers go to ``rubric.csv`` for a person to score,
and a filled sheet (``--rubric``) merges back into the gradebook.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from infralab.tooling.submissions import (
    FREE_TEXT_VARIABLES,
    MARKDOWN_ANSWER_POINTS,
    GradeError,
    Submission,
)


def write_outputs(subs: list[Submission], out_dir: Path, rubric: Path | None) -> None:
    """Feedback per student, then the gradebook and rubric sheet (with any filled rubric)."""
    for sub in subs:
        _write_feedback(sub, out_dir / "feedback" / f"{sub.student}.md")
    scores = read_rubric(rubric) if rubric is not None else {}
    write_gradebook(subs, out_dir, scores)
    write_rubric_sheet(subs, out_dir / "rubric.csv", scores)


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
