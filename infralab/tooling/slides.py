"""Every lesson is also a slide deck: slide metadata rules and the HTML export.

An instructor presents the same notebooks the students run, with jupyterlab-rise (the
``lab`` extra) live in JupyterLab, or as static reveal.js HTML from :func:`export_all`.
The rules are mechanical so no one hand-edits slide types: a top-level or section heading
starts a slide, a ``###`` heading a sub-slide (down arrow), everything else stays on the
slide above it, and the generated badge and set-up cells are skipped.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path
from typing import Any

from infralab.core.errors import InfralabError
from infralab.core.paths import REPO_ROOT

SKIP_TAGS = {"infralab-header", "infralab-setup", "slide-skip"}
# reveal.js from npm (``make slides-deps``), copied next to the decks: nothing from a CDN.
REVEAL_ENV = "INFRALAB_REVEAL_DIR"
REVEAL_DEFAULT = REPO_ROOT / ".slides" / "node_modules" / "reveal.js"
REVEAL_FOLDER = "reveal.js"  # beside the exported decks
# nbconvert's reveal template, with every script it would load from a CDN (jQuery, RequireJS,
# Mermaid, MathJax, the widget manager) left out and reveal.js loaded as plain scripts from
# the local copy. Decks are not executed (no outputs, no widgets), so nothing else is needed.
DECK_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block footer_js -%}
<script src="{{ resources.reveal.url_prefix }}/dist/reveal.js"></script>
<script src="{{ resources.reveal.url_prefix }}/plugin/notes/notes.js"></script>
<script>
Reveal.initialize({
  controls: true, progress: true, history: true,
  transition: "{{ resources.reveal.transition or 'slide' }}",
  slideNumber: "{{ resources.reveal.number }}",
  plugins: [RevealNotes],
  width: {{ resources.reveal.width or 960 }}, height: {{ resources.reveal.height or 700 }},
});
</script>
{%- endblock footer_js -%}
"""
SLIDE_TYPES = ("slide", "subslide", "fragment", "skip", "notes", "-")


def _source(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def slide_type_for(cell: dict[str, Any]) -> str:
    """The slide type a cell should have under the course's rules."""
    tags = set(cell.get("metadata", {}).get("tags", []))
    if tags & SKIP_TAGS:
        return "skip"
    if "slide-notes" in tags:
        return "notes"
    if cell.get("cell_type") == "markdown":
        first = _source(cell).lstrip().split("\n", 1)[0]
        if first.startswith("# ") or first.startswith("## "):
            return "slide"
        if first.strip() in ("### BEGIN SOLUTION", "### END SOLUTION"):
            return "-"  # a lab's answer markers, not a heading
        if first.startswith("### "):
            return "subslide"
    return "-"


NOTES_TAG = "slide-notes"
NOTES_KEY = "speaker_notes"  # cell metadata: the notes that follow this cell on its slide


def _cells(nb: Any) -> list[Any]:
    return nb.get("cells", [])  # a plain dict or an nbformat.NotebookNode (a dict too)


def speaker_notes(cell: dict[str, Any]) -> list[str]:
    """The speaker notes a cell carries in its metadata (folded by :func:`fold_notes`)."""
    notes = cell.get("metadata", {}).get(NOTES_KEY, [])
    return [notes] if isinstance(notes, str) else list(notes or [])


def is_notes_cell(cell: dict[str, Any]) -> bool:
    return NOTES_TAG in set(cell.get("metadata", {}).get("tags", []))


def fold_notes(nb: Any) -> bool:
    """Move every speaker-notes cell's text into the metadata of the cell it follows.

    Why: a notes cell is a Markdown cell, so every student saw the presenter's notes in
    JupyterLab, Colab and VS Code. In metadata they are invisible to students, yet
    :func:`unfold_notes` puts them back as notes cells for the reveal.js export and for the
    instructor's view (``python -m infralab speaker-notes show``). An author still writes a
    Markdown cell tagged ``slide-notes``; ``build-labs`` folds it. Notes before any other cell
    go to the next one. Returns True if anything moved; idempotent.
    """
    cells = _cells(nb)
    kept: list[Any] = []
    pending: list[str] = []
    for cell in cells:
        if cell.get("cell_type") == "markdown" and is_notes_cell(cell):
            text = _source(cell).strip()
            if kept and not set(kept[-1].get("metadata", {}).get("tags", [])) & SKIP_TAGS:
                meta = kept[-1].setdefault("metadata", {})
                meta[NOTES_KEY] = speaker_notes(kept[-1]) + [text]
            else:
                pending.append(text)
            continue
        if pending and not set(cell.get("metadata", {}).get("tags", [])) & SKIP_TAGS:
            meta = cell.setdefault("metadata", {})
            meta[NOTES_KEY] = pending + speaker_notes(cell)
            pending = []
        kept.append(cell)
    if len(kept) == len(cells):
        return False
    nb["cells"] = kept
    return True


def unfold_notes(nb: Any) -> bool:
    """The inverse of :func:`fold_notes`: each folded note becomes a notes cell again.

    Used on a copy for the slide export, and in place for the instructor's view. Returns True
    if anything changed.
    """
    out: list[Any] = []
    changed = False
    for cell in _cells(nb):
        out.append(cell)
        notes = speaker_notes(cell)
        if not notes:
            continue
        changed = True
        cell["metadata"].pop(NOTES_KEY, None)
        for text in notes:
            note = {
                "cell_type": "markdown",
                "metadata": {"tags": [NOTES_TAG], "slideshow": {"slide_type": "notes"}},
                "source": text,
            }
            if type(cell) is not dict:  # a NotebookNode keeps attribute access for nbconvert
                import nbformat

                note = nbformat.from_dict(note)
            out.append(note)
    nb["cells"] = out
    return changed


def apply_slide_metadata(nb: Any) -> bool:
    """Give every cell ``metadata.slideshow.slide_type``; return True if anything changed.

    Works on a plain dict (as read from JSON) or an ``nbformat.NotebookNode``; idempotent.
    """
    changed = False
    for cell in _cells(nb):
        want = slide_type_for(cell)
        meta = cell.setdefault("metadata", {})
        show = meta.get("slideshow")
        if not isinstance(show, dict):
            show = type(meta)()  # a NotebookNode stays a NotebookNode (attribute access)
            meta["slideshow"] = show
        if show.get("slide_type") != want:
            show["slide_type"] = want
            changed = True
        if NOTES_KEY in meta:  # folded notes always last: one file text however they got there
            meta[NOTES_KEY] = meta.pop(NOTES_KEY)
    return changed


def lessons(root: Path = REPO_ROOT) -> list[Path]:
    """The lesson notebooks, in course order."""
    return sorted((Path(root) / "course").glob("[0-9][0-9]_*.ipynb"))


class RevealMissing(FileNotFoundError, InfralabError):
    """No local reveal.js to copy next to the decks."""

    hint = "Run `make slides-deps` (npm install of reveal.js into .slides/), or set INFRALAB_REVEAL_DIR."


def reveal_dir() -> Path:
    """The local reveal.js package (``dist/`` and ``plugin/``); raises if there is none."""
    path = Path(os.environ.get(REVEAL_ENV) or REVEAL_DEFAULT)
    if not (path / "dist" / "reveal.js").is_file():
        raise RevealMissing(f"No reveal.js at {path}: the slides would need a CDN")
    return path


def copy_reveal(out_dir: Path) -> Path:
    """reveal.js's ``dist/`` and notes plug-in into ``out_dir/reveal.js`` (once)."""
    source, target = reveal_dir(), Path(out_dir) / REVEAL_FOLDER
    if not (target / "dist" / "reveal.js").is_file():
        shutil.copytree(source / "dist", target / "dist", dirs_exist_ok=True)
        shutil.copytree(
            source / "plugin" / "notes", target / "plugin" / "notes", dirs_exist_ok=True
        )
    return target


def export_notebook(path: Path, out_dir: Path) -> Path:
    """One notebook to ``out_dir/<name>.slides.html`` (as ``jupyter nbconvert --to slides``).

    Speaker notes folded into cell metadata come back as reveal.js notes (``S`` opens the
    speaker view). The notebook is not executed: a deck shows the narrative and code, and the instructor
    runs the cells live (outputs are never committed). Slide metadata is applied on the fly,
    so a notebook that was not yet synced still exports with the course's rules. reveal.js is
    copied from the local npm package into ``out_dir/reveal.js``: the deck opens offline.
    """
    import jinja2
    import nbformat
    from nbconvert import SlidesExporter

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No notebook at {path}")
    nb = nbformat.reads(path.read_text(encoding="utf-8"), as_version=4)
    nb = copy.deepcopy(nb)
    unfold_notes(nb)  # notes live in cell metadata, hidden from students; the deck shows them
    apply_slide_metadata(nb)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    copy_reveal(out_dir)
    exporter = SlidesExporter(
        reveal_url_prefix=REVEAL_FOLDER,
        reveal_theme="white",  # its fonts ship with reveal.js ("simple" fetches Google Fonts)
        template_file="infralab_deck.html.j2",
        extra_loaders=[jinja2.DictLoader({"infralab_deck.html.j2": DECK_TEMPLATE})],
    )
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": path.stem}})
    target = out_dir / f"{path.stem}.slides.html"
    target.write_text(body, encoding="utf-8")
    return target


def export_all(out_dir: Path | str = "artifacts/slides", root: Path = REPO_ROOT) -> list[Path]:
    """Every lesson in ``course/`` as HTML slides in ``out_dir``; returns the files written.

    Each deck loads reveal.js from ``out_dir/reveal.js`` (copied from the npm package that
    ``make slides-deps`` installs), so the folder presents offline; jupyterlab-rise (live
    slides in JupyterLab) ships its own reveal.js and needs no network either.
    """
    from tqdm.auto import tqdm

    paths = lessons(root)
    if not paths:
        raise FileNotFoundError(f"No lessons (course/NN_*.ipynb) under {root}")
    out = Path(out_dir)
    if not out.is_absolute():
        out = Path(root) / out
    return [export_notebook(p, out) for p in tqdm(paths, desc="slides", unit="lesson")]


def check_metadata(path: Path) -> list[str]:
    """Cells of a committed notebook whose slide type differs from the rules (empty = in step)."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    problems = []
    for index, cell in enumerate(nb.get("cells", [])):
        have = cell.get("metadata", {}).get("slideshow", {}).get("slide_type")
        want = slide_type_for(cell)
        if have != want:
            problems.append(f"{Path(path).name} cell {index}: slide_type {have!r}, want {want!r}")
    return problems


CLOSING_SECTIONS = ("## Self-check quiz", "## Further research")


def lesson_structure_problems(path: Path) -> list[str]:
    """Where a lesson departs from the course's shape (empty = consistent).

    Every lesson: a title ``# NN · Title`` matching its file name, then ``## Goals``, live
    sections, ``## Summary`` and ``## Exercises``, whose text links to the lesson's lab
    (``labs/NN_...``) when the lesson has one, or else to another notebook. Only the
    end-of-lesson sections (:data:`CLOSING_SECTIONS`: the self-check quiz and the further
    research) may follow the exercises.
    """
    path = Path(path)
    nb = json.loads(path.read_text(encoding="utf-8"))
    number = path.name[:2]
    headings: list[tuple[str, str]] = []  # (heading line, text of the cell)
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "markdown":
            continue
        text = _source(cell)
        for line in text.splitlines():
            if line.startswith("# ") or line.startswith("## "):
                headings.append((line.strip(), text))
    problems: list[str] = []
    name = path.name
    if not headings or not headings[0][0].startswith(f"# {number} · "):
        problems.append(f"{name}: the first heading should be '# {number} · Title'")
    sections = [h for h, _ in headings if h.startswith("## ")]
    for want in ("## Goals", "## Summary", "## Exercises"):
        if want not in sections:
            problems.append(f"{name}: no '{want}' section")
    if "## Goals" in sections and sections.index("## Goals") != 0:
        problems.append(f"{name}: '## Goals' should be the first section")
    body = [h for h in sections if h not in CLOSING_SECTIONS]
    if body and body[-1] != "## Exercises":
        problems.append(
            f"{name}: '## Exercises' should be the last section (before "
            f"{' and '.join(repr(h) for h in CLOSING_SECTIONS)})"
        )
    elif "## Exercises" in sections:
        tail = sections[sections.index("## Exercises") + 1 :]
        if tail != [h for h in CLOSING_SECTIONS if h in tail]:
            problems.append(
                f"{name}: after '## Exercises' only {', '.join(CLOSING_SECTIONS)} may follow, "
                "in that order"
            )
    exercises = "\n".join(t for h, t in headings if h == "## Exercises")
    root = path.parent.parent
    # the lab's source, or (in the student release, which has no solutions) the student lab
    has_lab = any((root / "labs" / "solutions").glob(f"{number}_*.ipynb")) or any(
        (root / "labs").glob(f"{number}_*.ipynb")
    )
    if "## Exercises" in sections:
        if has_lab and f"labs/{number}_" not in exercises:
            problems.append(f"{name}: the exercises should link to the lab labs/{number}_*.ipynb")
        if not has_lab and ".ipynb" not in exercises:
            problems.append(f"{name}: the exercises should link to the next notebook")
    return problems


def coverage_map_problems(map_path: Path | None = None, root: Path = REPO_ROOT) -> list[str]:
    """References ``NN § Heading`` in docs/coverage_map.md whose section no lesson has.

    Only lessons present in ``course/`` are checked; a heading ending in '…' matches by prefix,
    and a parenthetical after the heading is a comment.
    """
    import re

    root = Path(root)
    text = Path(map_path or root / "docs" / "coverage_map.md").read_text(encoding="utf-8")
    sections: dict[str, list[str]] = {}
    for path in lessons(root):
        nb = json.loads(path.read_text(encoding="utf-8"))
        sections[path.name[:2]] = [
            line[3:].strip()
            for cell in nb.get("cells", [])
            if cell.get("cell_type") == "markdown"
            for line in _source(cell).splitlines()
            if line.startswith("## ")
        ]
    problems = []
    for match in re.finditer(r"\b(\d\d) § ([^;|]+)", text):
        number = match.group(1)
        if number not in sections:
            continue
        for part in re.split(r",? § | and § ", match.group(2)):
            ref = re.sub(r"\s*\(.*$", "", part).strip()
            heads = sections[number]
            ok = ref in heads or (ref.endswith("…") and any(h.startswith(ref[:-1]) for h in heads))
            if not ok:
                problems.append(f"coverage map: lesson {number} has no section '## {ref}'")
    return sorted(set(problems))
