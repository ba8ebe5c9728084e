"""Lab 07's memo reading: how the capstone memo's sections and "label: value" lines are read,
and how each number in it is compared with the student's own results (with the tolerance
the lab states). Used by ``lab07.check_memo``.
"""

from __future__ import annotations

import math
import re
from typing import Any

from infralab.tooling.checks import (
    expect,
)

FLIP_TOLERANCE = 0.015  # the lab asks for 1 %; the reference bisects to 0.01 %


NOTHING = ("none", "no option allowed", "no option")


MEMO_HINT = (
    "Fill MEMO_TEMPLATE with .format(...) from your own variables (my_choice, "
    "cost_per_customer(...), your flip points times today's traffic), write it to memo_path, "
    "and keep every label of the numbers section as the template has it."
)


def _section(text: str, heading: str) -> str:
    m = re.search(rf"^##\s+{re.escape(heading)}\s*$(.*?)(?=^##\s|\Z)", text, re.M | re.S | re.I)
    return m.group(1).strip() if m else ""


def _parse_numbers(section: str) -> dict[str, str]:
    out = {}
    for line in section.splitlines():
        m = re.match(r"\s*[-*]\s*(.+?):\s*(.*?)\s*$", line)
        if m:
            out[m.group(1).strip().lower()] = m.group(2).strip()
    return out


def _as_number(text: str) -> float | None:
    cleaned = text.replace(",", "").replace("$", "").strip()
    m = re.fullmatch(r"-?\d+(?:\.\d+)?", cleaned)
    return float(m.group(0)) if m else None


def _compare(label: str, how: str, shown: str, want: Any) -> None:
    if want is None:
        expect(shown.lower() in NOTHING, f"The memo says {label}: {shown!r}; your results "
               "say there is none.", "Write `none` where your function returned None.")  # fmt: skip
        return
    if how == "text":
        expect(shown == str(want), f"The memo's {label} ({shown!r}) is not the option your "
               "results choose.", MEMO_HINT)  # fmt: skip
        return
    got = _as_number(shown)
    expect(got is not None, f"The memo's {label} ({shown!r}) is not a number.", MEMO_HINT)
    limit = {"count": 0.0, "rpd0": 0.5, "usd0": 0.5, "usd2": 0.005}.get(how)
    if limit is None:
        close = math.isclose(got, float(want), rel_tol=FLIP_TOLERANCE)
    else:
        close = abs(got - float(want)) <= limit + 1e-9 * abs(float(want))
    expect(close, f"The memo's {label} ({shown}) does not match your results.", MEMO_HINT)
