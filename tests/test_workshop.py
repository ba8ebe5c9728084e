"""The workshop material stays complete: every lesson has speaker notes for each section, a
questionnaire and a glossary link, and the instructors' answer keys cover every exercise and
question (a lesson that gains an exercise without an answer fails here)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from infralab.tooling import slides

REPO_ROOT = Path(__file__).resolve().parents[1]
ANSWERS = REPO_ROOT / "docs" / "answers"
LESSONS = slides.lessons(REPO_ROOT)
ITEM = re.compile(r"^(\d+)\. ", re.M)


def _cells(path: Path) -> list[dict]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    for cell in cells:
        src = cell.get("source", "")
        cell["text"] = "".join(src) if isinstance(src, list) else src
        cell["tags"] = set(cell.get("metadata", {}).get("tags", []))
    return cells


def _section_text(text: str, heading: str) -> str:
    """The text under ``## heading`` up to the next ``## `` heading."""
    match = re.search(rf"^## {re.escape(heading)}\s*$(.*?)(?=^## |\Z)", text, re.M | re.S)
    return match.group(1) if match else ""


def _numbers(text: str) -> list[int]:
    return [int(n) for n in ITEM.findall(text)]


def _lesson_items(path: Path, heading: str) -> list[int]:
    text = "\n".join(
        c["text"]
        for c in _cells(path)
        if c["cell_type"] == "markdown" and "slide-notes" not in c["tags"]
    )
    return _numbers(_section_text(text, heading))


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name[:2])
def test_every_section_has_speaker_notes(path: Path) -> None:
    """Each ``##`` heading carries its notes: folded into the heading cell's metadata (what
    ``build-labs`` commits, out of the students' sight) or, in the instructor's view, as notes
    cells right after it."""
    cells = _cells(path)
    missing = []
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "markdown" or cell["tags"] & {"slide-notes", "questionnaire"}:
            continue
        headings = [line for line in cell["text"].splitlines() if line.startswith("## ")]
        if not headings:
            continue
        following = cells[i + 1 : i + 1 + len(headings)]
        notes = slides.speaker_notes(cell) + [c for c in following if "slide-notes" in c["tags"]]
        if len(notes) < len(headings):
            missing.extend(headings)
    assert not missing, f"{path.name}: sections without speaker notes: {missing}"
    for cell in cells:
        if "slide-notes" in cell["tags"]:
            assert cell["metadata"]["slideshow"]["slide_type"] == "notes"
        for text in slides.speaker_notes(cell) + (
            [cell["text"]] if "slide-notes" in cell["tags"] else []
        ):
            assert not re.search(r"^#{1,2} ", text, re.M), "notes must not hold headings"


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name[:2])
def test_questionnaire_and_glossary_link(path: Path) -> None:
    cells = _cells(path)
    quiz = [c for c in cells if "questionnaire" in c["tags"]]
    assert len(quiz) == 1, f"{path.name}: one questionnaire cell expected"
    questions = _numbers(quiz[0]["text"])
    assert 8 <= len(questions) <= 12 and questions == list(range(1, len(questions) + 1))
    order = [
        i for i, c in enumerate(cells) if c["text"].startswith(("## Questionnaire", "## Exercises"))
    ]
    assert cells[order[0]]["text"].startswith("## Questionnaire") and len(order) == 2
    links = [c for c in cells if "glossary-link" in c["tags"]]
    assert len(links) == 1 and "../docs/glossary.md" in links[0]["text"]
    title = next(i for i, c in enumerate(cells) if c["text"].startswith(f"# {path.name[:2]} "))
    after = 2 if "lesson-plan" in cells[title + 1]["tags"] else 1
    assert "glossary-link" in cells[title + after]["tags"], (
        "the glossary link follows the title (and its prerequisites-and-time cell)"
    )


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name[:2])
def test_answer_key_covers_every_exercise_and_question(path: Path) -> None:
    key = ANSWERS / f"{path.stem}.md"
    assert key.is_file(), f"no answer key {key.relative_to(REPO_ROOT)}"
    text = key.read_text(encoding="utf-8")
    for heading in ("Exercises", "Questionnaire"):
        asked = _lesson_items(path, heading)
        answered = _numbers(_section_text(text, heading))
        assert asked, f"{path.name}: no numbered items under '## {heading}'"
        assert answered == list(range(1, len(asked) + 1)), (
            f"{key.name} '## {heading}': answers {answered}, the lesson asks {len(asked)}"
        )


def test_answer_keys_are_not_linked_from_student_notebooks() -> None:
    notebooks = [*LESSONS, *sorted((REPO_ROOT / "labs").glob("[0-9][0-9]_*.ipynb"))]
    for path in notebooks:
        assert "docs/answers" not in path.read_text(encoding="utf-8"), path.name


def test_speaker_notes_reach_the_exported_deck(tmp_path: Path) -> None:
    if not LESSONS:
        pytest.skip("no lessons in course/ yet")
    lesson = LESSONS[-1]
    cells = _cells(lesson)
    notes = [c for c in cells if "slide-notes" in c["tags"]]
    folded = [n for c in cells for n in slides.speaker_notes(c)]
    html = slides.export_notebook(lesson, tmp_path).read_text(encoding="utf-8")
    assert html.count('<aside class="notes">') == len(notes) + len(folded) > 0
