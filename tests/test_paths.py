"""Every location the kit reads lies inside the repository, so a clone has all it needs."""

from __future__ import annotations

import json
from pathlib import Path

from infralab.core import paths

LOCATIONS = {
    name: value
    for name, value in vars(paths).items()
    if name.isupper() and isinstance(value, Path) and name != "REPO_ROOT"
}


def test_every_location_is_inside_the_repository_and_present():
    assert paths.REPO_ROOT == Path(__file__).resolve().parents[1]
    assert {"REFERENCE_DIR", "MINILM_REFERENCE", "SMOLLM2_REFERENCE"} <= set(LOCATIONS)
    for name, path in LOCATIONS.items():
        assert path.resolve().is_relative_to(paths.REPO_ROOT), name
        assert path.exists(), f"{name} = {path} is missing from the repository"


def test_reference_files_are_complete():
    minilm = json.loads(paths.MINILM_REFERENCE.read_text())
    assert len(minilm["items"]) == 8
    assert all(len(item["embedding"]) == 384 for item in minilm["items"])
    smollm2 = json.loads(paths.SMOLLM2_REFERENCE.read_text())
    assert len(smollm2["items"]) == 3 and len(smollm2["tokenizer_cases"]) == 4
