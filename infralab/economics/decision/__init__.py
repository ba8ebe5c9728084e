"""The capstone: a startup scenario, the student's own numbers, and a one-page decision memo.

The source article ends with a handful of decision rules and three startup stories. This
module turns each story into a workload the cost model can price, feeds it the student's
measurements from lessons 02-06 (or the kit's recorded/default figures, labelled as such),
applies the rules in the open, and writes a Markdown memo: the recommendation (traditional
cloud, AI infrastructure or hybrid), the numbers behind it, and what would flip it.

Pricing goes through one small adapter, :func:`price_options`, so the decision logic does
not depend on how ``infralab.economics.costs`` builds its options; pass another ``pricer`` to
:func:`decide` to swap it.

One module per concern: ``inputs`` (scenarios and the figures a decision uses, with their
origins), ``bills`` (what a scenario's constraints allow, the costs beside the LLM), ``sensitivity``
(how far each input must move to flip the choice), ``memo`` (the Markdown memo), then
``rules`` on top (pricing adapter, the decision, what flips it): each imports only those
before it, so a ``Decision`` renders its memo and scans itself through ``redecide``.
The interactive explorer is ``infralab.presentation.ui.decision_explorer``.
"""

from __future__ import annotations

from infralab.economics.decision import rules
from infralab.economics.decision.inputs import (
    SCENARIOS,
    SOURCES,
    DecisionError,
    Demand,
    Input,
    Recommendation,
    Scenario,
    gather_inputs,
    scenario,
)
from infralab.economics.decision.memo import (
    render_memo,
)
from infralab.economics.decision.rules import (
    Decision,
    Pricer,
    choose,
    constraints,
    decide,
    label,
    people_usd,
    pick,
    price_options,
    recommendation_sweep,
)
from infralab.economics.decision.sensitivity import (
    HIGH,
    LOW,
    Flip,
    moved,
    sensitivity,
    why_still,
)

__all__ = [
    "Recommendation",
    "Demand",
    "SOURCES",
    "DecisionError",
    "Input",
    "Scenario",
    "SCENARIOS",
    "scenario",
    "gather_inputs",
    "price_options",
    "Pricer",
    "Decision",
    "people_usd",
    "decide",
    "pick",
    "label",
    "recommendation_sweep",
    "render_memo",
    "choose",
    "constraints",
    "Flip",
    "moved",
    "sensitivity",
    "sensitivity_range",
    "why_still",
    "rules",
]

sensitivity_range = (LOW, HIGH)  # the factors each input is moved by
