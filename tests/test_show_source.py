"""Lessons teach in the open: the functions lessons 05 and 07 show with
``infralab.tooling.notebooks.show_source`` are the kit's real ones, and short enough to read."""

from __future__ import annotations

import importlib
import inspect
import json
import re

import pytest

from infralab.core.paths import REPO_ROOT
from infralab.tooling.notebooks import show_source

MODULES = {"billing": "infralab.economics.costs.billing", "breakeven": "infralab.economics.costs.breakeven",
           "decision": "infralab.economics.decision"}  # fmt: skip
MAX_LINES = 60  # what fits on a slide and a screen


def _shown(lesson: str) -> list[str]:
    cells = json.loads((REPO_ROOT / "course" / lesson).read_text(encoding="utf-8"))["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    return re.findall(r"show_source\(([\w.]+)\)", code)


def _resolve(dotted: str):  # type: ignore[no-untyped-def]
    head, *rest = dotted.split(".")
    obj = importlib.import_module(MODULES[head])
    for part in rest:
        obj = getattr(obj, part)
    return obj


@pytest.mark.parametrize(("lesson", "wanted"), [
    ("05_cost_sliders.ipynb", {"billing.managed_api", "billing.hourly", "billing.lambda_function",
                               "billing.unit_cost", "breakeven.crossings"}),
    ("07_decision_framework.ipynb", {"decision.rules.with_plan_costs", "decision.constraints",
                                     "decision.pick", "decision.label"}),
])  # fmt: skip
def test_lessons_show_the_real_functions_short_enough_to_read(lesson: str, wanted: set[str]):
    shown = _shown(lesson)
    assert set(shown) >= wanted
    for name in shown:
        func = _resolve(name)
        lines, _ = inspect.getsourcelines(func)
        assert len(lines) <= MAX_LINES, f"{name} is {len(lines)} lines: split it"
        code = show_source(func)
        assert code.data.splitlines()[0].startswith(f"# {func.__module__}.{func.__qualname__}")
        assert code.data.endswith("".join(lines))  # the source itself, not a copy
        assert "<span" in code._repr_html_()  # highlighted
