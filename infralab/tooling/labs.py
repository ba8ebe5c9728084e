"""Student labs generated from one source: the solution notebook with nbgrader-style markers.

A code cell's lines between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` become a
placeholder that raises ``NotImplementedError``; the student copy tags that cell, every cell
that runs a check, and every cell the solution tags ``needs-exercise``, ``raises-exception``
so the unfinished lab still executes in CI. Solutions never carry ``raises-exception``: a
tagged cell cannot fail, so a broken solution would pass unseen. The student copy lives one
folder up from its solution, so its relative links are rebased to still point at the same file.
"""

from __future__ import annotations

import copy
import posixpath
import re
from pathlib import Path
from typing import Any

from infralab.core.errors import InfralabError
from infralab.tooling import notebooks
from infralab.tooling.notebooks import REPO_ROOT

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
RAISES = "raises-exception"
NEEDS = "needs-exercise"  # solution tag: this cell uses an exercise's result
LINK = re.compile(r"\]\(([^)\s]+)\)")  # a Markdown link target: [text](target)
CHECK_CALL = re.compile(r"\bcheck_\w+\s*\(|\bchecks\.\w+")
PLACEHOLDER = 'raise NotImplementedError("Your turn: write this part, then run the check below.")'
MARKDOWN_PLACEHOLDER = "_Your answer here._"


class InstructorOnlyError(InfralabError):
    """A command that needs the instructor's material (``labs/solutions/``), run without it."""

    hint = (
        "This is the student release: it has no lab solutions. Run the command in the "
        "instructor's repository (its main branch)."
    )


def require_solutions(command: str, root: Path = REPO_ROOT) -> Path:
    """``root/labs/solutions``, or :class:`InstructorOnlyError` naming ``command``."""
    folder = Path(root) / "labs" / "solutions"
    if not folder.is_dir():
        raise InstructorOnlyError(
            f"`{command}` is an instructor command, not available in the student release: it "
            f"needs labs/solutions/, which is not here ({folder})."
        )
    return folder


class LabSourceError(ValueError, InfralabError):
    """A solution notebook whose markers do not pair up."""

    hint = "CONTRIBUTING.md (Notebooks) has the rules for solution cells; fix the cell it names."


def _blank_solution(source: str, where: str, markdown: bool) -> tuple[str, bool]:
    lines = source.splitlines()
    out: list[str] = []
    inside = False
    replaced = False
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if stripped == BEGIN or (markdown and stripped == BEGIN.lstrip("# ").strip()):
            if inside:
                raise LabSourceError(f"{where}, line {number}: {BEGIN} inside another solution")
            inside = True
            replaced = True
            indent = line[: len(line) - len(line.lstrip())]
            if markdown:
                out.append(MARKDOWN_PLACEHOLDER)
            else:
                out.append(f"{indent}# YOUR CODE HERE")
                out.append(f"{indent}{PLACEHOLDER}")
            continue
        if stripped == END or (markdown and stripped == END.lstrip("# ").strip()):
            if not inside:
                raise LabSourceError(f"{where}, line {number}: {END} without {BEGIN}")
            inside = False
            continue
        if not inside:
            out.append(line)
    if inside:
        raise LabSourceError(f"{where}: {BEGIN} is never closed by {END}")
    return "\n".join(out), replaced


def _add_tag(cell: dict[str, Any], tag: str) -> None:
    tags = cell.setdefault("metadata", {}).setdefault("tags", [])
    if tag not in tags:
        tags.append(tag)


def is_relative_link(target: str) -> bool:
    """A link to a file of this repository (not a web address, anchor or mail address)."""
    return not re.match(r"^([a-z][a-z0-9+.-]*:|#|/)", target, flags=re.IGNORECASE)


def relative_links(nb: dict[str, Any]) -> list[str]:
    """Every relative link target in a notebook's Markdown cells (anchors stripped)."""
    found = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "markdown":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        for target in LINK.findall(source):
            if is_relative_link(target):
                found.append(target.split("#", 1)[0])
    return [t for t in found if t]


def rebase_links(text: str, from_dir: str, to_dir: str) -> str:
    """Rewrite relative links written from ``from_dir`` so they work from ``to_dir`` (POSIX)."""

    def fix(match: re.Match) -> str:
        target = match.group(1)
        if not is_relative_link(target):
            return match.group(0)
        path, sep, anchor = target.partition("#")
        if not path:
            return match.group(0)
        absolute = posixpath.normpath(posixpath.join(from_dir, path))
        return f"]({posixpath.relpath(absolute, to_dir)}{sep}{anchor})"

    return LINK.sub(fix, text)


def student_version(
    solution: dict[str, Any], where: str = "notebook", link_base: tuple[str, str] | None = None
) -> dict[str, Any]:
    """The student copy of a solution notebook (outputs and headers are handled by sync).

    ``link_base`` is (solution folder, student folder), relative to the repository, for
    rebasing relative links; None leaves links as they are.
    """
    nb = copy.deepcopy(solution)
    exercises = 0
    for index, cell in enumerate(nb.get("cells", [])):
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(source)
        markdown = cell.get("cell_type") == "markdown"
        tags = cell.get("metadata", {}).get("tags", [])
        if RAISES in tags:
            raise LabSourceError(
                f"{where} cell {index}: a solution cell never carries {RAISES!r} (it could not "
                f"fail); tag it {NEEDS!r} if the student copy needs it"
            )
        if NEEDS in tags:
            tags.remove(NEEDS)
            _add_tag(cell, RAISES)
        if markdown and link_base is not None:
            source = rebase_links(source, *link_base)
        if "BEGIN SOLUTION" in source or "END SOLUTION" in source:
            source, replaced = _blank_solution(source, f"{where} cell {index}", markdown)
            if replaced:
                exercises += 1
                if not markdown:
                    _add_tag(cell, RAISES)
        if cell.get("cell_type") == "code" and CHECK_CALL.search(source):
            _add_tag(cell, RAISES)
        cell["source"] = source
    if exercises == 0:
        raise LabSourceError(f"{where} has no {BEGIN} / {END} block: nothing for students to do")
    return nb


def student_path(solution_path: Path) -> Path:
    return solution_path.parent.parent / solution_path.name


def build_all(check: bool = False, root: Path = REPO_ROOT) -> list[Path]:
    """Sync every notebook's header and regenerate every student lab.

    Returns the notebooks that were rewritten or, with ``check``, that are out of step.
    Without ``labs/solutions/`` (the student release) it raises :class:`InstructorOnlyError`
    rather than delete every student lab as an orphan.
    """
    changed: list[Path] = []
    sources = sorted(require_solutions("python -m infralab build-labs", root).glob("*.ipynb"))
    for path in [*sorted((root / "course").glob("*.ipynb")), *sources]:
        if notebooks.sync(path, check=check, root=root):
            changed.append(path)
    wanted = set()
    for source in sources:
        target = student_path(source)
        wanted.add(target.name)
        relpath = target.resolve().relative_to(root).as_posix()
        solution = notebooks.read(source)
        base = (source.parent.resolve().relative_to(root.resolve()).as_posix(),
                target.parent.resolve().relative_to(root.resolve()).as_posix())  # fmt: skip
        student = notebooks.normalise(student_version(solution, source.name, base), relpath)
        text = notebooks.dumps(student)
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if check:  # content, not formatting: a student lab saved by a front end is in step
            stale = current is None or not notebooks.same_content(current, student)
        else:
            stale = current != text
        if stale:
            changed.append(target)
            if not check:
                target.write_text(text, encoding="utf-8")
    for orphan in sorted((root / "labs").glob("*.ipynb")):
        if orphan.name not in wanted:  # a student lab whose source is gone
            changed.append(orphan)
            if not check:
                orphan.unlink()
    for doc in _sync_badge_blocks(root, check=check):
        changed.append(doc)
    return changed


def badge_blocks(root: Path = REPO_ROOT) -> dict[Path, str]:
    """Markdown files with a generated badge block, and the badges each must hold.

    README.md links students to the student branch; the instructor guide links the
    instructor to their own branch (solutions, answer keys).
    """
    from infralab.core.project import BRANCH, badges_markdown

    return {
        Path(root) / "README.md": badges_markdown(),
        Path(root) / "docs" / "instructor.md": badges_markdown(branch=BRANCH),
    }


def _sync_badge_blocks(root: Path, *, check: bool) -> list[Path]:
    start, end = "<!-- badges:start -->", "<!-- badges:end -->"
    changed = []
    for doc, badges in badge_blocks(root).items():
        if not doc.exists():
            continue
        text = doc.read_text(encoding="utf-8")
        if start in text and end in text:
            head, rest = text.split(start, 1)
            _, tail = rest.split(end, 1)
            new = f"{head}{start}\n{badges}\n{end}{tail}"
            if new != text:
                changed.append(doc)
                if not check:
                    doc.write_text(new, encoding="utf-8")
    return changed
