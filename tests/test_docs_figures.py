"""Figures the instructor docs quote agree with the code and the recorded files (issue #28).

Each test reads the figure from the source the tool itself uses (the pre-flight's own
functions, the site's list of notebooks, the recorded benchmark) and looks for it, in the
form the docs write it, next to the words that introduce it.
"""

from __future__ import annotations

import json
import re

from infralab import preflight, site


def _guide(repo_root) -> str:
    return (repo_root / "docs" / "instructor.md").read_text(encoding="utf-8")


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def test_preflight_memory_budget_in_the_guide_is_what_the_code_compares(repo_root):
    """No report CSV: the check reads the guide's table and leaves self-sizing lessons out."""
    peaks = preflight.peaks_from_guide(repo_root / "docs" / "instructor.md")
    peaks = {n: mb for n, mb in peaks.items() if not any(k in n for k in preflight.SELF_SIZING)}
    name = max(peaks, key=peaks.__getitem__)
    lesson = re.match(r"course/(\d\d)_", name)
    assert lesson, f"the heaviest notebook is not a lesson: {name}"
    guide = _flat(_guide(repo_root))
    said = f"compares with lesson {lesson[1]} at {peaks[name]:,.0f} MB"
    assert said in guide, f"the guide should say the memory check {said}"
    assert "compares with its 2.0 GB" not in guide
    # and the code agrees with itself: kit_peak on a copy without a report gives the same
    check = preflight.check_memory(available_mb=1e6, peak=(name, peaks[name], "guide"))
    assert f"{peaks[name]:,.0f} MB" in check.finding


def test_site_page_count_in_the_guide_is_what_the_build_makes(repo_root):
    pages = site.site_notebooks(repo_root)
    lessons = [p for p in pages if p.parent.name == "course"]
    labs = [p for p in pages if p.parent.name == "solutions"]
    assert len(lessons) + len(labs) == len(pages)
    said = f"`make site` builds {len(pages)} pages: the {len(lessons)} lessons and the {len(labs)} solution labs"
    assert said in _flat(_guide(repo_root))


def test_answer_key_07_quotes_the_recorded_embedding_throughput(repo_root):
    recorded = json.loads((repo_root / "datasets" / "benchmarks" / "embedding.json").read_text())
    rate = recorded["data"]["sentences_per_s"]
    key = _flat((repo_root / "docs" / "answers" / "07_decision_framework.md").read_text())
    quoted = re.findall(r"embedding ([\d,]+) sentences/s from `embedding.json`", key)
    assert quoted, "answer key 07 no longer names its embedding input"
    assert quoted == [f"{rate:,.0f}"], (
        f"answer key 07 quotes {quoted}, embedding.json has {rate:,.0f}"
    )


def test_the_guide_says_what_to_do_about_the_oldest_price_list(repo_root):
    """The price list the pre-flight flags as oldest is named, with its date, in the guide."""
    import csv

    oldest: dict[str, str] = {}
    for path in sorted((repo_root / "datasets" / "pricing").glob("*.csv")):
        with path.open(newline="", encoding="utf-8") as fh:
            dates = [row["as_of"] for row in csv.DictReader(fh) if row.get("as_of")]
        if dates:
            oldest[path.name] = min(dates)
    name = min(oldest, key=oldest.__getitem__)
    guide = _flat(_guide(repo_root))
    assert f"`{name}` is flagged as dated {oldest[name]}" in guide
    assert "What to do:" in guide
