"""The course's teaching furniture is complete (structure, not wording).

Every lesson and lab states its prerequisites and time right after its title; every lesson
ends with a self-check quiz (4-6 questions, each choice explained) and a further-research
list of dated primary sources; the glossary defines the terms lessons use; lesson 00's map
links every lesson and lab that exists; speaker notes are out of the students' sight yet
reach the slides; the course site never shows solution markers.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import nbformat
import pytest

from infralab.tooling import notebooks, site, slides
from infralab.tooling.checks import CheckFailed, quiz

REPO_ROOT = Path(__file__).resolve().parents[1]
LESSONS = slides.lessons(REPO_ROOT)
LAB_SOURCES = sorted((REPO_ROOT / "labs" / "solutions").glob("[0-9][0-9]_*.ipynb"))
STUDENT_LABS = sorted((REPO_ROOT / "labs").glob("[0-9][0-9]_*.ipynb"))
LINK = re.compile(r"\]\(([^)\s]+)\)|<(https?://[^>\s]+)>")
YEAR = re.compile(r"\b(19[5-9]\d|20\d\d)\b")


def _cells(path: Path) -> list[dict]:
    cells = notebooks.read(path)["cells"]
    for cell in cells:
        src = cell.get("source", "")
        cell["text"] = "".join(src) if isinstance(src, list) else src
        cell["tags"] = set(cell.get("metadata", {}).get("tags", []))
    return cells


def _title(cells: list[dict]) -> int:
    return next(i for i, c in enumerate(cells) if c["cell_type"] == "markdown"
                and c["text"].startswith("# "))  # fmt: skip


def _section(cells: list[dict], heading: str) -> list[dict]:
    """The cells from the one starting with ``heading`` up to the next ``##`` heading."""
    starts = [i for i, c in enumerate(cells) if c["text"].startswith(heading)]
    assert len(starts) == 1, f"expected one '{heading}' cell, found {len(starts)}"
    out = [cells[starts[0]]]
    for cell in cells[starts[0] + 1 :]:
        if cell["cell_type"] == "markdown" and cell["text"].startswith("## "):
            break
        out.append(cell)
    return out


# ---------------------------------------------------------------- prerequisites and time
@pytest.mark.parametrize(
    "path",
    [*LESSONS, *LAB_SOURCES, *STUDENT_LABS],
    ids=lambda p: p.relative_to(REPO_ROOT).as_posix(),
)
def test_prerequisites_and_minutes_follow_the_title(path: Path) -> None:
    cells = _cells(path)
    plan = cells[_title(cells) + 1]
    assert "lesson-plan" in plan["tags"], f"{path.name}: no prerequisites cell after the title"
    text = plan["text"]
    assert "Prerequisites" in text and "know" in text, text
    assert re.search(r"about \d+(-\d+)? minutes", text), f"{path.name}: no minutes"
    assert "estimate" in text, f"{path.name}: the time must say it is an estimate"


def test_there_are_lessons_and_labs_to_check() -> None:
    assert len(LESSONS) >= 10 and len(LAB_SOURCES) >= 7


# ---------------------------------------------------------------- quizzes
@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name[:2])
def test_lesson_ends_with_a_self_check_quiz(path: Path) -> None:
    number = path.name[:2]
    cells = _section(_cells(path), "## Self-check quiz")
    calls = [c for c in cells if c["cell_type"] == "code" and f'quiz.show("{number}")' in c["text"]]
    assert len(calls) == 1, f"{path.name}: the quiz section should call quiz.show({number!r})"
    questions = quiz.questions(number)
    assert quiz.MIN_QUESTIONS <= len(questions) <= quiz.MAX_QUESTIONS
    for q in questions:
        assert len(q.choices) >= 3 and q.answer in q.choices
        assert all(c.text.strip() and len(c.why.split()) >= 4 for c in q.choices.values()), (
            f"lesson {number}: every choice needs an explanation: {q.prompt}"
        )
    assert len({q.prompt for q in questions}) == len(questions)


@pytest.mark.parametrize("number", [p.name[:2] for p in LESSONS])
def test_every_choice_gets_its_own_explanation(number: str) -> None:
    for n, q in enumerate(quiz.questions(number), 1):
        for letter, choice in q.choices.items():
            text = quiz.answer(number, n, letter.upper() + ")")
            if letter == q.answer:
                assert text.startswith("Right") and choice.why in text
            else:
                assert text.startswith(f"Not {letter})") and choice.why in text
                assert q.choices[q.answer].text.rstrip(".") in text


def test_a_bad_answer_gets_a_hint_not_a_traceback() -> None:
    with pytest.raises(CheckFailed, match="not one of the choices"):
        quiz.answer("02", 1, "z")
    with pytest.raises(CheckFailed, match="does not exist"):
        quiz.answer("02", 99, "a")
    with pytest.raises(CheckFailed, match="No answer yet"):
        quiz.answer("02", 1, None)
    with pytest.raises(CheckFailed, match="no self-check quiz"):
        quiz.questions("77")
    with pytest.raises(ValueError, match="not one of"):
        quiz.question("q?", "d", ("a", "why a"), ("b", "why b"))


def test_the_quiz_carries_a_fallback_for_front_ends_without_widgets() -> None:
    bundle = quiz.show("04")._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    html = bundle["text/html"]
    qs = quiz.questions("04")
    assert html.count("<details>") == len(qs) and quiz.FALLBACK_CLASS in html
    for q in qs:
        assert f"The answer is <b>{q.answer})</b>" in html
    assert 'quiz.answer("04"' in bundle["text/plain"]


def test_the_widget_explains_the_chosen_answer() -> None:
    shown = quiz.show("05")
    first = shown.widget().children[0]
    _, radio, feedback = first.children
    q = quiz.questions("05")[0]
    wrong = next(k for k in q.choices if k != q.answer)
    radio.value = wrong
    assert q.choices[wrong].why.split(";")[0][:20] in feedback.value and "Not" in feedback.value
    radio.value = q.answer
    assert "Right" in feedback.value


# ---------------------------------------------------------------- further research
@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name[:2])
def test_lesson_ends_with_dated_primary_sources(path: Path) -> None:
    cells = _cells(path)
    markdown = [c for c in cells if c["cell_type"] == "markdown" and "slide-notes" not in c["tags"]]
    assert markdown[-1]["text"].startswith("## Further research"), (
        f"{path.name}: the last section should be '## Further research'"
    )
    items = [line for line in markdown[-1]["text"].splitlines() if line.startswith("- ")]
    linked = [line for line in items if LINK.search(line)]
    assert 3 <= len(linked) <= 6, f"{path.name}: {len(linked)} linked sources"
    for line in linked:
        assert YEAR.search(line), f"{path.name}: a source without a year or date: {line}"


def test_lesson_shape_allows_only_the_closing_sections_after_the_exercises(tmp_path: Path) -> None:
    (tmp_path / "course").mkdir()
    nb = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 4}
    for text in ("# 42 · Answer", "## Goals", "## Summary", "## Exercises\n[next](43_x.ipynb)",
                 "## Self-check quiz", "## Further research"):  # fmt: skip
        nb["cells"].append({"cell_type": "markdown", "metadata": {}, "source": text})
    path = tmp_path / "course" / "42_answer.ipynb"
    path.write_text(json.dumps(nb))
    assert slides.lesson_structure_problems(path) == []
    nb["cells"].append({"cell_type": "markdown", "metadata": {}, "source": "## Extra"})
    path.write_text(json.dumps(nb))
    assert "should be the last section" in slides.lesson_structure_problems(path)[0]
    nb["cells"] = nb["cells"][:4] + [nb["cells"][5], nb["cells"][4]]  # research before quiz
    path.write_text(json.dumps(nb))
    assert "in that order" in slides.lesson_structure_problems(path)[0]


# ---------------------------------------------------------------- glossary and course map
GLOSSARY_TERMS = (
    "IOBinding", "Mangum", "GGUF", "Grouped-query attention", "Prompt injection", "Checkpoint",
    "Reserved capacity", "Ray", "Egress", "Error budget", "KV cache", "TTFT", "p99",
    "Quantization", "RRF", "Spot", "Cold start", "Operator fusion", "Prompt leakage",
    "Abstention", "SLO", "Prometheus", "Fractional GPU", "On-demand", "Context window",
    "Break-even utilization", "Young's rule", "Model routing", "safetensors", "Qdrant",
)  # fmt: skip


def test_glossary_defines_the_terms_lessons_use() -> None:
    text = (REPO_ROOT / "docs" / "glossary.md").read_text(encoding="utf-8")
    entries = re.findall(r"^\*\*(.+?)\.\*\*\s+(\S.*)", text, flags=re.M)
    terms = [t.lower() for t, _ in entries]
    missing = [n for n in GLOSSARY_TERMS if not any(n.lower() in t for t in terms)]
    assert not missing, f"glossary lacks {missing}"
    assert len(terms) == len(set(terms)), "a glossary term is defined twice"


def test_course_map_links_every_lesson_and_lab() -> None:
    cells = _cells(REPO_ROOT / "course" / "00_start_here.ipynb")
    [course_map] = [c["text"] for c in cells if c["text"].startswith("## The course map")]
    links = set(LINK.findall(course_map))
    targets = {a or b for a, b in links}
    want = {p.name for p in LESSONS} | {f"../labs/{p.name}" for p in LAB_SOURCES}
    assert want - targets == set(), f"the course map does not link {sorted(want - targets)}"
    for target in targets:
        assert (REPO_ROOT / "course" / target).exists(), f"the map links a missing {target}"


# ---------------------------------------------------------------- speaker notes
@pytest.mark.parametrize(
    "path",
    [*LESSONS, *LAB_SOURCES, *STUDENT_LABS],
    ids=lambda p: p.relative_to(REPO_ROOT).as_posix(),
)
def test_no_speaker_notes_in_the_students_view(path: Path) -> None:
    for cell in _cells(path):
        assert "slide-notes" not in cell["tags"], f"{path.name}: a visible speaker-notes cell"
        if cell["cell_type"] == "markdown":
            assert not re.match(r"\s*\**(Speaker|Instructor) notes", cell["text"]), path.name


def _notes_nb() -> dict:
    def md(text: str, tags: list[str] | None = None) -> dict:
        return {"cell_type": "markdown", "metadata": {"tags": tags or []}, "source": text}

    nb = nbformat.v4.new_notebook()
    nb = json.loads(nbformat.writes(nb))
    nb["cells"] = [
        md("**Speaker notes.** Before anything.", ["slide-notes"]),  # attaches to the next
        md("# 42 · Demo"),
        md("## Part one"),
        md("**Speaker notes.** Two minutes.", ["slide-notes"]),
        md("**Speaker notes.** Then ask a question.", ["slide-notes"]),
        md("Body text."),
    ]
    return nb


def test_build_labs_folds_notes_out_of_sight_and_the_deck_gets_them_back(tmp_path: Path) -> None:
    nb = _notes_nb()
    normal = notebooks.normalise(nb, "course/42_demo.ipynb")
    body = [c for c in normal["cells"] if not {"infralab-header", "infralab-setup"}
            & set(c["metadata"].get("tags", []))]  # fmt: skip
    assert [c["source"] for c in body] == ["# 42 · Demo", "## Part one", "Body text."]
    assert slides.speaker_notes(body[0]) == ["**Speaker notes.** Before anything."]
    assert slides.speaker_notes(body[1]) == [
        "**Speaker notes.** Two minutes.",
        "**Speaker notes.** Then ask a question.",
    ]
    assert notebooks.normalise(normal, "course/42_demo.ipynb") == normal  # idempotent
    # an edited note is a change build-labs --check sees
    edited = copy.deepcopy(normal)
    edited["cells"][3]["metadata"]["speaker_notes"][0] = "**Speaker notes.** Changed."
    assert notebooks.content(edited) != notebooks.content(normal)
    # the instructor view puts them back as notes cells, and folding again restores the file
    shown = copy.deepcopy(normal)
    assert slides.unfold_notes(shown)
    notes = [c["source"] for c in shown["cells"] if slides.is_notes_cell(c)]
    assert len(notes) == 3 and all(c["metadata"].get("speaker_notes") is None
                                   for c in shown["cells"])  # fmt: skip
    assert notebooks.normalise(shown, "course/42_demo.ipynb") == normal


def test_speaker_notes_command_round_trips_a_lesson(tmp_path: Path) -> None:
    path = tmp_path / "lesson.ipynb"
    path.write_text(notebooks.dumps(notebooks.normalise(_notes_nb(), "course/42_demo.ipynb")))
    before = path.read_text()
    assert notebooks.set_notes_visible([path], visible=True) == [path]
    shown = notebooks.read(path)
    assert [c["metadata"]["slideshow"]["slide_type"] for c in shown["cells"]
            if slides.is_notes_cell(c)] == ["notes"] * 3  # fmt: skip
    assert notebooks.set_notes_visible([path], visible=False) == [path]
    assert path.read_text() == before
    assert notebooks.set_notes_visible([path], visible=False) == []


# ---------------------------------------------------------------- the course site
def test_site_strips_solution_markers_and_keeps_the_solution() -> None:
    source = (
        "def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\n"
        "print(f(1))  # not a marker: ### BEGIN SOLUTION in a comment stays\n"
    )
    out = site.strip_solution_markers(source)
    assert out == (
        "def f(x):\n    return 2 * x\n"
        "print(f(1))  # not a marker: ### BEGIN SOLUTION in a comment stays\n"
    )
    assert site.strip_solution_markers("### BEGIN SOLUTION\nanswer\n### END SOLUTION") == "answer\n"


def test_site_pages_drop_markers_and_notes_and_show_the_quiz_fallback() -> None:
    nb = nbformat.v4.new_notebook()
    code = nbformat.v4.new_code_cell("### BEGIN SOLUTION\nx = 1\n### END SOLUTION")
    answer = nbformat.v4.new_markdown_cell("### BEGIN SOLUTION\nBecause.\n### END SOLUTION")
    notes = nbformat.v4.new_markdown_cell("**Speaker notes.** Shh.")
    notes.metadata["tags"] = ["slide-notes"]
    folded = nbformat.v4.new_markdown_cell("## Part")
    folded.metadata["speaker_notes"] = ["**Speaker notes.** Also shh."]
    shown = quiz.show("03")._repr_mimebundle_()
    out = nbformat.v4.new_output("display_data", data=shown)
    quiz_cell = nbformat.v4.new_code_cell('quiz.show("03")', outputs=[out])
    nb.cells = [code, answer, notes, folded, quiz_cell]
    site.staticize(nb)
    assert [c.source for c in nb.cells[:2]] == ["x = 1\n", "Because.\n"]
    assert all("shh" not in json.dumps(c).lower() for c in nb.cells)
    data = nb.cells[-1].outputs[0]["data"]
    assert list(data) == ["text/html"] and data["text/html"].count("<details>") == len(
        quiz.questions("03")
    )


def test_no_notebook_leaves_a_scratch_folder_behind() -> None:
    """``tempfile.mkdtemp`` outlives the kernel: every run of lesson 08 left one in /tmp.
    Notebooks use a ``TemporaryDirectory`` and clean it up when they are done with it (a kernel
    stopped by nbval or JupyterLab does not run finalizers)."""
    found = [*REPO_ROOT.glob("course/*.ipynb"), *REPO_ROOT.glob("labs/**/*.ipynb"),
             *REPO_ROOT.glob("docs/*.ipynb")]  # fmt: skip
    assert found
    leaky = []
    for p in found:
        text = p.read_text()
        kept = text.count("TemporaryDirectory(") - text.count("with tempfile.TemporaryDirectory(")
        if "mkdtemp(" in text or kept > text.count(".cleanup()"):
            leaky.append(str(p.relative_to(REPO_ROOT)))
    assert leaky == []
