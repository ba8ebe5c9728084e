"""Self-checks for lesson 01: short questions whose answers the lesson's own tables give.

Each function takes the student's answer and either confirms it in one line or says what
to look at again. Letters are case-insensitive; a malformed answer gets a hint, not a crash.
The answer key lives in ``infralab.tooling.checks.references.lesson01``; where it is absent (the
student release) each check confirms the answer's form and says so.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from infralab.tooling import checks
from infralab.tooling.checks import (
    CheckFailed,
    CheckPassed,
    check,
    check_close,
    expect,
    number,
    public_pass,
)
from infralab.tooling.checks.questions import UnknownQuestion
from infralab.tooling.checks.quiz import parse_letter

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "ask",
    "check_answer",
    "check_gpu_advantage",
    "check_reliability",
    "check_share_of_peak",
    "this_machine_peak_gflops",
]


QUESTIONS: dict[str, dict[str, Any]] = {
    "cost_driver": {
        "question": "What drives the bill of AI infrastructure most?",
        "choices": {
            "a": "the number of web requests",
            "b": "how busy the GPUs you pay for are (utilization)",
            "c": "the size of the relational database",
        },
        "hint": "Look again at 'Price per unit of compute': a GPU bills by the hour, busy or not.",
    },
    "saas_feature": {
        "question": "A SaaS dashboard adds ticket summaries by calling a model provider's API. "
        "Where does it run?",
        "choices": {
            "a": "traditional cloud",
            "b": "AI infrastructure",
            "c": "a GPU cluster it owns",
        },
        "hint": "When AI is a feature reached through an API, no GPU is yours to run.",
    },
    "bottleneck": {
        "question": "Generating one token at batch 1 is limited mostly by ...",
        "choices": {
            "a": "how fast the weights can be read from memory",
            "b": "the number of CPU cores",
            "c": "network bandwidth to the user",
        },
        "hint": "Each new token reads every weight once: compare memory bandwidth with FLOP/s.",
    },
}

# Classic cloud concerns: named by a student as "what AI adds", they are refused. What AI does
# add, and the words accepted for it, is in the answer key (never printed).
RELIABILITY_BASICS: dict[str, tuple[str, ...]] = {
    "uptime": ("uptime", "availability sla"),
    "backups": ("backup",),
    "failover": ("failover", "fail over", "redundan"),
    "security posture": ("security", "patching"),
}


def _ref() -> Any:
    return checks.reference_module("lesson01")


def _concepts(phrase: str, table: dict[str, tuple[str, ...]]) -> set[str]:
    text = " ".join(phrase.lower().replace("-", " ").split())
    return {
        name for name, words in table.items() if any(w.replace("-", " ") in text for w in words)
    }


def _letter(answer: Any, choices: dict[str, str]) -> str:
    """The chosen letter: the course's one reading of a multiple-choice answer."""
    return parse_letter(answer, choices)


def ask(key: str) -> str:
    """The question and its choices as text (the notebook prints it)."""
    if key not in QUESTIONS:
        raise UnknownQuestion(
            f"No question {key!r}; there are: {', '.join(QUESTIONS)}",
            hint="Copy the key from that list, e.g. lesson01.ask('cost_driver').",
        )
    q = QUESTIONS[key]
    return q["question"] + "\n" + "\n".join(f"  {k}) {v}" for k, v in q["choices"].items())


def check_answer(key: str, answer: Any) -> CheckPassed:
    """One multiple-choice question."""
    if key not in QUESTIONS:
        raise CheckFailed(f"There is no question {key!r}.", f"Use one of: {', '.join(QUESTIONS)}.")
    q = QUESTIONS[key]
    letter = _letter(answer, q["choices"])
    ref = _ref()
    if ref is None:
        return CheckPassed(
            f"Answer {letter}) noted. The answer key is not part of this copy: check it against "
            "the lesson's tables."
        )
    right = ref.ANSWERS[key]
    return check(
        letter == right,
        ok=f"Right: {q['choices'][right]}.",
        problem=f"Not {letter}) {q['choices'][letter]}.",
        hint=q["hint"],
    )


def check_reliability(extras: Iterable[str]) -> CheckPassed:
    """Name at least three things AI reliability adds beyond the classic cloud basics."""
    if isinstance(extras, str) or not isinstance(extras, Iterable):
        raise CheckFailed(
            "Give a list of short phrases, one per concern.",
            'For example ["...", "...", "..."], each a few words.',
        )
    phrases = [str(e).strip() for e in extras if str(e).strip()]
    basics = [p for p in phrases if _concepts(p, RELIABILITY_BASICS)]
    if basics:
        raise CheckFailed(
            f"{', '.join(repr(b) for b in basics)}: a classic cloud concern, not an AI addition.",
            "The question asks what AI adds on top of keeping servers up and data safe.",
        )
    ref = _ref()
    if ref is None:
        distinct = {" ".join(p.lower().split()) for p in phrases}
        expect(
            len(distinct) >= 3,
            f"You named {len(distinct)} distinct concern(s); the question asks for three.",
            "Think of what can go wrong with a model's answers, with what it is given to read, "
            "with how fast tokens arrive, and with how a model ages after deployment.",
        )
        return public_pass(f"{len(distinct)} concerns, none of them a classic cloud one. The "
                           "answer key is not part of this copy")  # fmt: skip
    found: set[str] = set()
    for p in phrases:
        found |= _concepts(p, ref.RELIABILITY_EXTRAS)
    return check(
        len(found) >= 3,
        ok=f"Right: {', '.join(sorted(found))}.",
        problem=f"{len(found)} of your phrases name a distinct AI reliability concern; "
        "the question asks for three.",
        hint="Think of what can go wrong with a model's answers, with what it is given to read, "
        "with how fast tokens arrive, and with how a model ages after deployment; the "
        "comparison table's reliability row names them.",
    )


def this_machine_peak_gflops() -> float:
    """Float32 peak of the cores this process may use: the sourced 2-core AVX2 figure
    (``datasets/compute_peaks.csv``) per core, times the usable cores here.

    A CPU with wider vector units (AVX-512, AMX) can beat it; the lesson says so.
    """
    import os

    from infralab.economics import landscape

    peaks = landscape.load_peaks()
    cpu = peaks[(peaks["kind"] == "cpu") & (peaks["precision"] == "fp32")].iloc[0]
    per_core_gflops = float(cpu["peak_tflops"]) * 1000 / 2  # the sourced figure is for 2 cores
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    return per_core_gflops * cores


def check_gpu_advantage(ratio: Any, table: Any) -> CheckPassed:
    """How many times less a peak TFLOP/s-hour costs on the cheapest GPU than on the cheapest CPU."""
    import pandas as pd

    if not isinstance(table, pd.DataFrame) or "usd_per_tflop_hour" not in table:
        raise CheckFailed(
            "Pass the unit-price table as the second argument.",
            "check_gpu_advantage(ratio, prices) with prices = unit_price_table().",
        )
    ref = _ref()
    if ref is None:
        value = number(ratio, name="CPU / GPU price per TFLOP-hour")
        expect(value > 0, f"A ratio of prices cannot be {value:g}.", "Divide two prices.")
        return public_pass(f"the ratio {value:.3g} is a positive number")
    return check_close(
        ratio,
        ref.gpu_advantage(table),
        rel=0.02,
        name="CPU / GPU price per TFLOP-hour",
        hint="Take the minimum usd_per_tflop_hour of each kind (ignore NaN), then divide CPU by GPU.",
    )


def check_share_of_peak(
    share: Any, measured_gflops: float, peak_gflops: float | None = None
) -> CheckPassed:
    """Your measured matmul speed as a share of a peak: ``peak_gflops`` if you give one, else
    this machine's (:func:`this_machine_peak_gflops`, scaled to its cores)."""
    try:
        value = float(share)
    except (TypeError, ValueError):
        raise CheckFailed(
            f"share should be a number, not {type(share).__name__}.",
            "Divide two numbers of GFLOP/s.",
        ) from None
    peak = float(peak_gflops) if peak_gflops is not None else this_machine_peak_gflops()
    ref = _ref()
    if ref is None:
        expect(value <= 50, "That looks like a percentage.",
               "Give a share: 0.5 means half of the peak.")  # fmt: skip
        expect(value > 0, f"A share of the peak cannot be {value:g}.",
               "Divide your measured GFLOP/s by the peak of the cores you have.")  # fmt: skip
        return public_pass(f"share of peak {value:.3g} is a positive share")
    want = ref.share_of_peak(measured_gflops, peak)
    if want > 0 and 50 < value / want < 200:
        raise CheckFailed(
            "That looks like a percentage.", "Give a share: 0.5 means half of the peak."
        )
    if want > 0 and 0.7 < value * want < 1.4 and abs(value - want) / want > 0.02:
        raise CheckFailed("That looks upside down.", "Measured divided by peak, not the reverse.")
    return check_close(
        value,
        want,
        rel=0.02,
        name="share of peak",
        hint="Divide your measured GFLOP/s by the peak of the cores you have; "
        "lesson01.this_machine_peak_gflops() gives it (a figure scaled to your core count).",
    )
