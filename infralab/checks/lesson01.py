"""Self-checks for lesson 01: short questions whose answers the lesson's own tables give.

Each function takes the student's answer and either confirms it in one line or says what
to look at again. Letters are case-insensitive; a malformed answer gets a hint, not a crash.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from infralab.checks import CheckFailed, CheckPassed, check, check_close

QUESTIONS: dict[str, dict[str, Any]] = {
    "cost_driver": {
        "question": "What drives the bill of AI infrastructure most?",
        "choices": {
            "a": "the number of web requests",
            "b": "how busy the GPUs you pay for are (utilization)",
            "c": "the size of the relational database",
        },
        "answer": "b",
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
        "answer": "a",
        "hint": "When AI is a feature reached through an API, no GPU is yours to run.",
    },
    "bottleneck": {
        "question": "Generating one token at batch 1 is limited mostly by ...",
        "choices": {
            "a": "how fast the weights can be read from memory",
            "b": "the number of CPU cores",
            "c": "network bandwidth to the user",
        },
        "answer": "a",
        "hint": "Each new token reads every weight once: compare memory bandwidth with FLOP/s.",
    },
}

RELIABILITY_EXTRAS = {
    "model drift",
    "retrieval quality",
    "token latency",
    "output quality",
    "context window limits",
    "inference consistency",
}
RELIABILITY_BASICS = {"uptime", "backups", "failover", "security posture"}


def _letter(answer: Any, choices: Iterable[str]) -> str:
    choices = list(choices)
    if answer is None:
        raise CheckFailed(
            "No answer yet.", 'Set the variable to one letter, e.g. "a", and run again.'
        )
    if not isinstance(answer, str) or answer.strip().lower() not in choices:
        raise CheckFailed(
            f"{answer!r} is not one of the choices.",
            f"Answer with one letter: {', '.join(repr(c) for c in choices)}.",
        )
    return answer.strip().lower()


def ask(key: str) -> str:
    """The question and its choices as text (the notebook prints it)."""
    if key not in QUESTIONS:
        raise KeyError(f"No question {key!r}; there are: {', '.join(QUESTIONS)}")
    q = QUESTIONS[key]
    return q["question"] + "\n" + "\n".join(f"  {k}) {v}" for k, v in q["choices"].items())


def check_answer(key: str, answer: Any) -> CheckPassed:
    """One multiple-choice question."""
    if key not in QUESTIONS:
        raise CheckFailed(f"There is no question {key!r}.", f"Use one of: {', '.join(QUESTIONS)}.")
    q = QUESTIONS[key]
    letter = _letter(answer, q["choices"])
    return check(
        letter == q["answer"],
        ok=f"Right: {q['choices'][q['answer']]}.",
        problem=f"Not {letter}) {q['choices'][letter]}.",
        hint=q["hint"],
    )


def check_reliability(extras: Iterable[str]) -> CheckPassed:
    """Name at least three things AI reliability adds beyond the classic cloud basics."""
    if isinstance(extras, str) or not isinstance(extras, Iterable):
        raise CheckFailed("Give a list of strings, e.g. ['model drift', ...].")
    given = {str(e).strip().lower() for e in extras}
    basics = given & RELIABILITY_BASICS
    if basics:
        raise CheckFailed(
            f"{', '.join(sorted(basics))} is a classic cloud concern, not an AI addition.",
            "The question asks what AI adds on top of uptime, failover and backups.",
        )
    good = given & RELIABILITY_EXTRAS
    return check(
        len(good) >= 3,
        ok=f"Right: {', '.join(sorted(good))}.",
        problem=f"Only {len(good)} of your answers are on the list the lesson gives.",
        hint="Choose from: " + ", ".join(sorted(RELIABILITY_EXTRAS)) + ".",
    )


def check_gpu_advantage(ratio: Any, table: Any) -> CheckPassed:
    """How many times less a peak TFLOP/s-hour costs on the cheapest GPU than on the cheapest CPU."""
    import pandas as pd

    if not isinstance(table, pd.DataFrame) or "usd_per_tflop_hour" not in table:
        raise CheckFailed(
            "Pass the unit-price table as the second argument.",
            "check_gpu_advantage(ratio, prices) with prices = unit_price_table().",
        )
    cpu = table[table["kind"] == "CPU"]["usd_per_tflop_hour"].min()
    gpu = table[table["kind"] == "GPU"]["usd_per_tflop_hour"].min()
    return check_close(
        ratio,
        cpu / gpu,
        rel=0.02,
        name="CPU / GPU price per TFLOP-hour",
        hint="Take the minimum usd_per_tflop_hour of each kind (ignore NaN), then divide CPU by GPU.",
    )


def check_share_of_peak(
    share: Any, measured_gflops: float, peak_gflops: float = 192.0
) -> CheckPassed:
    """Your measured matmul speed as a share (0-1) of the 2-core AVX2 peak."""
    try:
        value = float(share)
    except (TypeError, ValueError):
        raise CheckFailed(f"share should be a number, not {share!r}.") from None
    if value > 1.5:
        raise CheckFailed(
            f"{value:g} looks like a percentage or a ratio upside down.",
            "Give a share between 0 and 1: measured GFLOP/s divided by peak GFLOP/s.",
        )
    return check_close(value, measured_gflops / peak_gflops, rel=0.02, name="share of peak")
