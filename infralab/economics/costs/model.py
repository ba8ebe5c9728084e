"""Monthly bills for one workload under four ways to serve it, and where they break even.

The point the lesson makes: a managed API and serverless bill per request (rent flexibility),
a dedicated GPU bills per hour whether it is busy or not (own efficiency), and a per-second
GPU sits in between (it bills cold starts and idle timeouts). Which is cheapest depends on
traffic, and the idle GPU is the trap. Every figure here is either a published price
(``infralab.economics.costs.pricing``), the student's measurement (``infralab.core.results``), or an
assumption that says so in its name or docstring.

Nothing here divides by zero: no traffic, zero utilization or an impossible latency target
give a :class:`Bill` whose ``note`` says why there is no unit cost.

This module is the cost model's public face (lessons, labs and the dashboard use
``from infralab.economics.costs import model as m``); the code lives in one module per concern:
``workload`` (the workload and the bill), ``options`` (the five ways to serve it),
``breakeven`` (where two options cost the same), ``measured`` (the student's figures),
``llm`` (the LLM chat presets), and ``pricing`` (price data and the unit-cost formulas).
"""

from __future__ import annotations

from infralab.economics.costs.breakeven import (
    BreakEven,
    break_even,
    sweep,
)
from infralab.economics.costs.llm import (
    CPU_MODEL,
    GPU_MODEL,
    OPTION_SETS,
    DecodePoint,
    decode_operating_point,
    llm_options,
    product_note,
)
from infralab.economics.costs.measured import (
    DEFAULTS,
    Measured,
    measured_duration_s,
    measured_throughput,
)
from infralab.economics.costs.options import (
    MAX_INSTANCES,
    CloudRunCPU,
    DedicatedGPU,
    ManagedAPI,
    PerSecondGPU,
    ServerlessCPU,
    compare,
)
from infralab.economics.costs.pricing import (
    HOURS_PER_MONTH,
    CostError,
)
from infralab.economics.costs.workload import (
    BATCH_SERIAL_FRACTION,
    DAYS_PER_MONTH,
    NO_REQUESTS,
    SECONDS_PER_MONTH,
    TRAFFIC_SHAPES,
    Bill,
    Option,
    Workload,
    batched_throughput,
)

__all__ = [
    "BATCH_SERIAL_FRACTION",
    "Bill",
    "BreakEven",
    "CPU_MODEL",
    "CloudRunCPU",
    "CostError",
    "DAYS_PER_MONTH",
    "DEFAULTS",
    "DecodePoint",
    "DedicatedGPU",
    "GPU_MODEL",
    "HOURS_PER_MONTH",
    "MAX_INSTANCES",
    "ManagedAPI",
    "Measured",
    "NO_REQUESTS",
    "OPTION_SETS",
    "Option",
    "PerSecondGPU",
    "SECONDS_PER_MONTH",
    "ServerlessCPU",
    "TRAFFIC_SHAPES",
    "Workload",
    "batched_throughput",
    "break_even",
    "compare",
    "decode_operating_point",
    "llm_options",
    "measured_duration_s",
    "measured_throughput",
    "product_note",
    "sweep",
]
