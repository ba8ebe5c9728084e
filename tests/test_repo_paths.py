"""No file in the repository points at a path outside it (a student's clone has none)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUTSIDE = re.compile(
    r"\.\./shared"  # the maintainers' notes next to the repository
    r"|/work/shared"
    r"|DESIGN\.md"
    r"|shared/(?:PRICING_SOURCES|reference|seed|DESIGN)"
    r"|parents?(?:\[\d\])?(?:\.parent)*\s*/\s*[\"']shared[\"']"  # Path(...).parent / "shared"
)


def _tracked_text_files() -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.decode()
    files = [REPO / p for p in out.split("\0") if p]
    return [p for p in files if p.is_file() and p.suffix not in {".png", ".jpg", ".onnx", ".gz"}]


def test_no_file_references_a_path_outside_the_repository() -> None:
    offenders = []
    for path in _tracked_text_files():
        if path == Path(__file__).resolve():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for n, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                offenders.append(f"{path.relative_to(REPO)}:{n}: {line.strip()[:100]}")
    assert offenders == [], "paths outside the repository:\n" + "\n".join(offenders)


def test_the_pattern_catches_what_it_must() -> None:
    for bad in (
        "see ../shared/PRICING_SOURCES.md",
        "DESIGN.md §8",
        'REFERENCE = ROOT.parent / "shared" / "reference"',
        "Path(__file__).parents[1].parent / 'shared'",
    ):
        assert OUTSIDE.search(bad), bad
    for fine in ("a shared collection", "layout='shared'", "shared object file"):
        assert not OUTSIDE.search(fine), fine
