"""Lab 07's random scenarios and bills: the option names and billing kinds, and the random
scenarios and option bills (hypothesis) a student's constraint filter and cheapest-option
picker are tried on. Used by lab 07's decision checks.
"""

from __future__ import annotations

import math
from typing import Any

OPTION_NAMES = (
    "API gpt-4o-mini",
    "Serverless CPU (SmolLM2-135M, Lambda 2 GB)",
    "H100 on-demand",
    "H100 reserved 1 yr",
    "H100 spot",
    "H100 per-second (Modal)",
)


KINDS = ("api", "serverless_cpu", "dedicated_gpu", "per_second_gpu")


def _scenario(sensitive: bool, small_ok: bool, demand: str) -> Any:
    from dataclasses import replace

    from infralab.economics import decision

    return replace(decision.scenario("legal"), sensitive_data=sensitive, small_model_ok=small_ok,
                   demand=demand)  # fmt: skip


def _bill(option: str, kind: str, usd: float, meets: bool, model: str) -> Any:
    from infralab.economics.costs import model as costs

    return costs.Bill(option=option, kind=kind, monthly_usd=usd, requests_per_month=1e6,
                      tokens_per_month=1e9, meets_latency=meets, model=model)  # fmt: skip


def _models() -> tuple[str, ...]:
    from infralab.economics.costs import model as costs

    return (costs.CPU_MODEL, costs.GPU_MODEL, "gpt-4o-mini")


def _scenarios():
    from hypothesis import strategies as st

    return st.builds(_scenario, st.booleans(), st.booleans(),
                     st.sampled_from(["volatile", "growing", "stable"]))  # fmt: skip


def _bills(usd=None):
    from hypothesis import strategies as st

    usd = (
        usd
        if usd is not None
        else st.one_of(
            st.floats(0, 1e6, allow_nan=False, allow_infinity=False),
            st.sampled_from([250.0, 1000.0, math.inf]),
        )
    )
    return st.builds(_bill, st.sampled_from(OPTION_NAMES), st.sampled_from(KINDS), usd,
                     st.booleans(), st.sampled_from(_models()))  # fmt: skip
