"""Slide metadata rules and the HTML export of every lesson (the instructor's one command)."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from infralab.tooling import slides


def _nb() -> dict:
    cells = [
        {"cell_type": "markdown", "metadata": {"tags": ["infralab-header"]}, "source": "[badge]"},
        {
            "cell_type": "code",
            "metadata": {"tags": ["infralab-setup"]},
            "source": "x = 1",
            "outputs": [],
            "execution_count": None,
        },
        {"cell_type": "markdown", "metadata": {}, "source": "# 99 · Title\nintro"},
        {"cell_type": "markdown", "metadata": {}, "source": "## Goals\n- a"},
        {"cell_type": "markdown", "metadata": {}, "source": "Some prose"},
        {
            "cell_type": "code",
            "metadata": {},
            "source": "1 + 1",
            "outputs": [],
            "execution_count": None,
        },
        {"cell_type": "markdown", "metadata": {}, "source": ["### Detail\n", "more"]},
    ]
    return {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 4}


def test_rules_give_every_cell_a_slide_type() -> None:
    nb = _nb()
    assert slides.apply_slide_metadata(nb) is True
    types = [c["metadata"]["slideshow"]["slide_type"] for c in nb["cells"]]
    assert types == ["skip", "skip", "slide", "slide", "-", "-", "subslide"]
    assert all(t in slides.SLIDE_TYPES for t in types)
    assert slides.apply_slide_metadata(nb) is False  # idempotent


def test_rules_work_on_a_notebook_node() -> None:
    node = nbformat.from_dict(_nb())
    assert slides.apply_slide_metadata(node) is True
    assert node.cells[2].metadata.slideshow.slide_type == "slide"


def test_export_one_notebook(tmp_path: Path) -> None:
    src = tmp_path / "course" / "99_demo.ipynb"
    src.parent.mkdir()
    src.write_text(json.dumps(_nb()))
    out = slides.export_all(tmp_path / "out", root=tmp_path)
    assert [p.name for p in out] == ["99_demo.slides.html"]
    html = out[0].read_text()
    assert "reveal" in html and "<section" in html
    assert "99 · Title" in html


@pytest.mark.slow
def test_every_lesson_exports_to_reveal_html(tmp_path: Path) -> None:
    lessons = slides.lessons()
    if not lessons:
        pytest.skip("no lessons in course/ yet")
    out = slides.export_all(tmp_path)
    assert len(out) == len(lessons)
    for path in out:
        html = path.read_text(encoding="utf-8")
        assert 'class="reveal"' in html, path.name
        assert "<section" in html, path.name


def test_missing_lessons_give_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="No lessons"):
        slides.export_all(tmp_path / "out", root=tmp_path)


def test_every_lesson_has_the_course_shape() -> None:
    lessons = slides.lessons()
    if not lessons:
        pytest.skip("no lessons in course/ yet")
    problems = [p for path in lessons for p in slides.lesson_structure_problems(path)]
    assert not problems, "\n".join(problems)


def test_structure_check_names_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "course").mkdir()
    (tmp_path / "labs" / "solutions").mkdir(parents=True)
    (tmp_path / "labs" / "solutions" / "42_lab.ipynb").write_text("{}")
    nb = _nb()
    nb["cells"][2]["source"] = "# 42 · Answer\nintro"
    nb["cells"].append({"cell_type": "markdown", "metadata": {}, "source": "## Summary\n- x"})
    nb["cells"].append(
        {"cell_type": "markdown", "metadata": {}, "source": "## Exercises\n1. [next](43_x.ipynb)"}
    )
    path = tmp_path / "course" / "42_answer.ipynb"
    path.write_text(json.dumps(nb))
    assert slides.lesson_structure_problems(path) == [
        "42_answer.ipynb: the exercises should link to the lab labs/42_*.ipynb"
    ]
    nb["cells"][2]["source"] = "# Answer"
    path.write_text(json.dumps(nb))
    assert "first heading" in slides.lesson_structure_problems(path)[0]


def test_coverage_map_points_at_real_sections() -> None:
    if not slides.lessons():
        pytest.skip("no lessons in course/ yet")
    problems = slides.coverage_map_problems()
    assert not problems, "\n".join(problems)


def test_coverage_map_check_catches_a_stale_heading(tmp_path: Path) -> None:
    (tmp_path / "course").mkdir()
    (tmp_path / "course" / "99_demo.ipynb").write_text(json.dumps(_nb()))
    doc = tmp_path / "map.md"
    doc.write_text("| a | 99 § Goals; 99 § Gone (note) | x |\n| b | 98 § Not here yet | y |\n")
    assert slides.coverage_map_problems(doc, root=tmp_path) == [
        "coverage map: lesson 99 has no section '## Gone'"
    ]


@pytest.mark.slow
def test_decks_need_no_cdn(tmp_path: Path) -> None:
    """The exported HTML loads reveal.js from the copy beside it, nothing from the web."""
    import re

    out = slides.export_all(tmp_path, root=slides.REPO_ROOT)
    assert (tmp_path / "reveal.js" / "dist" / "reveal.js").is_file()
    for path in out:
        html = path.read_text(encoding="utf-8")
        remote = re.findall(r'<(?:script|link)[^>]+(?:src|href)="(https?://[^"]+)"', html)
        theme = re.search(r'href="(reveal.js/dist/theme/[^"]+)"', html)
        assert theme and "googleapis" not in (tmp_path / theme.group(1)).read_text()
        assert not remote, f"{path.name} loads {remote}"
        assert 'src="reveal.js/dist/reveal.js"' in html
        # No math renderer either: MathJax came from a CDN and is left out of the template.
        assert "mathjax" not in html.lower(), f"{path.name} still asks for MathJax"
        assert not re.findall(r'src="https?://', html), f"{path.name} fetches something"


# TeX the decks would show as raw text: $$...$$, \(...\), \[...\], \begin{...}, or a $...$
# span holding a backslash, ^ or _ (prices such as "$/hour" are plain dollars, not math).
_TEX = r"\$\$.+?\$\$|\\\(|\\\[|\\begin\{|(?<![\w\\])\$[^$\s][^$\n]*?[\\^_][^$\n]*?\$"


def test_no_lesson_needs_a_math_renderer() -> None:
    """Slides and the site draw no TeX (no MathJax offline): lessons write formulas in words/code."""
    import re

    found = []
    for path in slides.lessons():
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "markdown":
                found += [(path.name, m) for m in re.findall(_TEX, cell.source, re.S)]
    assert not found, f"TeX math with no renderer to draw it offline: {found}"
    assert re.findall(_TEX, "a $x^2$ b") and re.findall(_TEX, "$$E = mc^2$$")
    assert not re.findall(_TEX, "price in $/hour, $/TFLOP and $/GB")


@pytest.mark.browser
@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="/usr/bin/chromium missing")
def test_a_deck_presents_offline(tmp_path: Path) -> None:
    """Open one deck from disk in headless Chromium with every web request aborted."""
    from playwright.sync_api import sync_playwright

    [deck] = [slides.export_notebook(slides.lessons()[1], tmp_path)]
    blocked: list[str] = []

    def route(r):  # type: ignore[no-untyped-def]
        if r.request.url.startswith("file:"):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.route("**/*", route)
            page.goto(deck.as_uri())
            page.wait_for_function("window.Reveal && Reveal.isReady()", timeout=30_000)
            assert page.evaluate("Reveal.getTotalSlides()") > 3
        finally:
            browser.close()
    assert [u for u in blocked if "badge" not in u] == []
