"""How far each input of a decision must move to change it.

Every input a decision uses, measured or assumed, is multiplied by factors from x0.25 to x4
(a scan outward from x1), and where the chosen option changes, a bisection finds the factor
to within about 1 %. The answer for each input: the value at which the choice flips below and
above today's, and to what; or that it holds across the whole range. A flip between two scan
points that flips back before the next one is not seen: the scan says so in its name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from infralab.core.errors import InfralabError
from infralab.economics.decision.bills import _extra_costs, constraints
from infralab.economics.decision.inputs import ENGINEER_USD_PER_HOUR, Input, Scenario

LOW, HIGH = 0.25, 4.0
# x1, x1.41, x2, x2.83, x4 (and the reciprocals): the scan, before the bisection
SCAN_STEPS = (2**0.5, 2.0, 2**1.5, 4.0)
BISECTIONS = 8  # the last scan interval (x1.41) halved 8 times in log: within 0.14 %

# Scenario assumptions scanned beside the inputs: attribute, name, unit.
ASSUMPTIONS = (
    ("requests_per_day", "requests per day", "requests/day"),
    ("tokens_in", "prompt tokens per request", "tokens"),
    ("tokens_out", "answer tokens per request", "tokens"),
    ("latency_target_s", "latency target", "s"),
    ("ops_hours_per_month", "ops hours per month (self-hosted GPU)", "h/month"),
    ("engineer_usd_per_hour", "engineer cost per hour", "USD/h"),
)
MEASURED = ("measured", "recorded")
NONE_ALLOWED = "no option meets every constraint"  # the recommendation when nothing is allowed  # origins that are a measurement (yours or the kit's)


@dataclass(frozen=True)
class Flip:
    """Where one input changes the choice: ``low``/``high`` are the factors (None: it holds to
    x0.25 / x4), ``low_to``/``high_to`` the option chosen beyond them."""

    key: str
    name: str
    unit: str
    origin: str
    value: float
    low: float | None
    high: float | None
    low_to: str = ""
    high_to: str = ""
    low_recommendation: str = ""
    high_recommendation: str = ""

    @property
    def flips(self) -> bool:
        return self.low is not None or self.high is not None

    @property
    def is_measured(self) -> bool:
        return self.origin in MEASURED

    def sentence(self) -> str:
        """One sentence naming the flip values (or saying the input cannot flip it)."""
        if not self.flips:
            return (f"{self.name} ({self.origin}, {_num(self.value)} {self.unit}) cannot change "
                    f"the choice between x{LOW:g} and x{HIGH:g}.")  # fmt: skip
        parts = []
        for f, to, rec, side in ((self.low, self.low_to, self.low_recommendation, "below"),
                                 (self.high, self.high_to, self.high_recommendation, "above")):  # fmt: skip
            if f is not None:
                then = (f"no option meets every constraint (the cheapest left is {to})"
                        if rec == NONE_ALLOWED else f"the choice becomes {to} ({rec})")  # fmt: skip
                parts.append(f"{side} {_num(self.value * f)} {self.unit} (x{f:.2f}) {then}")
        return (
            f"{self.name} ({self.origin}, now {_num(self.value)} {self.unit}): "
            + "; ".join(parts)
            + "."
        )

    def row(self) -> dict[str, object]:
        """Plain data for a table or :func:`infralab.presentation.charts.costs.tornado_chart`."""
        return {
            "input": self.name,
            "origin": self.origin,
            "unit": self.unit,
            "value": self.value,
            "low_factor": self.low,
            "high_factor": self.high,
            "low_value": None if self.low is None else self.value * self.low,
            "high_value": None if self.high is None else self.value * self.high,
            "low_to": self.low_to,
            "high_to": self.high_to,
        }


def _num(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def levers(sc: Scenario, inputs: dict[str, Input]) -> list[tuple[str, str, str, str, float]]:
    """(key, name, unit, origin, value) of every input that can be scanned: each input with a
    positive value, then the scenario's assumptions."""
    out = [(k, i.name, i.unit, i.origin, float(i.value)) for k, i in inputs.items()
           if i.value is not None and math.isfinite(i.value) and i.value > 0]  # fmt: skip
    w = sc.workload
    for attr, name, unit in ASSUMPTIONS:
        if attr == "engineer_usd_per_hour":
            rate = sc.engineer_usd_per_hour
            origin = "assumed" if rate is not None else ENGINEER_USD_PER_HOUR.origin
            value = ENGINEER_USD_PER_HOUR.value if rate is None else rate
        else:
            origin = "assumed"
            value = getattr(w, attr) if hasattr(w, attr) else getattr(sc, attr)
        if value and value > 0:
            out.append((attr, name, unit, origin, float(value)))
    return out


def moved(
    sc: Scenario, inputs: dict[str, Input], key: str, factor: float
) -> tuple[Scenario, dict[str, Input]]:
    """The scenario and inputs with one input multiplied by ``factor``."""
    if key in inputs:
        i = inputs[key]
        return sc, {**inputs, key: replace(i, value=float(i.value) * factor)}  # type: ignore[arg-type]
    w = sc.workload
    if hasattr(w, key):
        return replace(sc, workload=replace(w, **{key: getattr(w, key) * factor})), inputs
    if key == "engineer_usd_per_hour":
        rate = (
            ENGINEER_USD_PER_HOUR.value
            if sc.engineer_usd_per_hour is None
            else sc.engineer_usd_per_hour
        )
        return replace(sc, engineer_usd_per_hour=rate * factor), inputs
    return replace(sc, **{key: getattr(sc, key) * factor}), inputs


def choice(decision) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """(chosen option, recommendation) of a decision: what the scan compares."""
    return decision.inference_on, (decision.recommendation if decision.allowed else NONE_ALLOWED)


def sensitivity(decision) -> list[Flip]:  # type: ignore[no-untyped-def]
    """For each input of ``decision`` (a :class:`~infralab.economics.decision.rules.Decision`, which
    re-decides a moved input with its ``redecide``): the factors in x0.25..x4 where its chosen
    option changes, most sensitive first."""
    sc, inputs, base = decision.given or decision.scenario, decision.inputs, decision.inference_on

    def at(key: str, f: float) -> tuple[str, str]:
        s, i = moved(sc, inputs, key, f)
        return choice(decision.redecide(s, i))

    flips = []
    for key, name, unit, origin, value in levers(sc, inputs):
        found: dict[str, tuple[float | None, str, str]] = {}
        for side, sign in (("low", -1), ("high", 1)):
            inside = 1.0
            found[side] = (None, "", "")
            for step in SCAN_STEPS:
                f = step**sign
                option, rec = at(key, f)
                if option != base:
                    lo, hi = inside, f  # the choice holds at lo, has changed at hi
                    for _ in range(BISECTIONS):
                        mid = math.sqrt(lo * hi)
                        m_option, m_rec = at(key, mid)
                        if m_option == base:
                            lo = mid
                        else:
                            hi, option, rec = mid, m_option, m_rec
                    found[side] = (hi, option, rec)
                    break
                inside = f
        flips.append(Flip(key, name, unit, origin, value, found["low"][0], found["high"][0],
                          found["low"][1], found["high"][1], found["low"][2], found["high"][2]))  # fmt: skip
    return sorted(flips, key=_reach)


def why_still(decision, flip: Flip) -> str:  # type: ignore[no-untyped-def]
    """Why an input that cannot flip the choice cannot: which options it prices at x0.25 and
    x4, and whether the constraints allow any of them. Re-decides twice; plain words."""
    sc, inputs = decision.given or decision.scenario, decision.inputs
    base = {b.option: (b.monthly_usd, b.meets_latency) for b in decision.bills}
    moved_opts: set[str] = set()
    extra_moves = False
    for f in (LOW, HIGH):
        s, i = moved(sc, inputs, flip.key, f)
        d = decision.redecide(s, i)
        moved_opts |= {b.option for b in d.bills if base.get(b.option) != (b.monthly_usd,
                                                                           b.meets_latency)}  # fmt: skip
        try:
            extra_moves |= _extra_costs(s, i) != _extra_costs(sc, inputs)
        except InfralabError:  # e.g. more vCPUs than any Lambda size buys: a side cost moved
            extra_moves = True
    if not moved_opts:
        if extra_moves:
            return ("it prices only the costs beside the LLM (embedding pipeline, app tier), the "
                    "same whichever option serves the model")  # fmt: skip
        return "no option's bill or latency verdict depends on it within the range"
    bills = {b.option: b for b in decision.bills}
    settled = decision.scenario  # quality settled from today's measurement
    out = [o for o in sorted(moved_opts) if o in bills and constraints(settled, bills[o])]
    if len(out) == len(moved_opts):
        why = "; ".join(f"{o}: {' and '.join(constraints(settled, bills[o]))}" for o in out)
        return f"it prices only options the constraints exclude ({why})"
    kept = ", ".join(o for o in sorted(moved_opts) if o not in out)
    return f"it moves {kept}, but not past {decision.inference_on} within the range"


def _reach(f: Flip) -> float:
    """How little the input must move to flip the choice (log distance; inf: never in range)."""
    d = [abs(math.log(x)) for x in (f.low, f.high) if x is not None]
    return min(d) if d else math.inf
