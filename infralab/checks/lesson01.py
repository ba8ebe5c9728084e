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

# What AI adds to reliability, each with the words a student might reasonably use for it.
# Matching is by these keywords inside the student's phrase, so "data drift" or "hallucinations"
# count; the accepted list is never printed (a hint that lists the answers is no question).
RELIABILITY_EXTRAS: dict[str, tuple[str, ...]] = {
    "model drift": ("drift", "model decay", "stale model", "distribution shift"),
    "retrieval quality": ("retrieval", "search quality", "rag quality", "recall", "relevance"),
    "token latency": ("token latency", "time to first token", "ttft", "tokens per second",
                      "token throughput", "generation latency", "inference latency"),
    "output quality": ("output quality", "answer quality", "hallucinat", "accuracy",
                       "correctness", "response quality", "toxicity", "safety of output"),
    "context window limits": ("context window", "context length", "context limit",
                              "prompt length", "token limit"),
    "inference consistency": ("consisten", "determinis", "reproducib", "non-determinis",
                              "same answer"),
    "GPU capacity": ("gpu capacity", "gpu availability", "gpu shortage", "accelerator capacity",
                     "gpu failure", "gpu memory"),
}  # fmt: skip
RELIABILITY_BASICS: dict[str, tuple[str, ...]] = {
    "uptime": ("uptime", "availability sla"),
    "backups": ("backup",),
    "failover": ("failover", "fail over", "redundan"),
    "security posture": ("security", "patching"),
}


def _concepts(phrase: str, table: dict[str, tuple[str, ...]]) -> set[str]:
    text = " ".join(phrase.lower().replace("-", " ").split())
    return {
        name for name, words in table.items() if any(w.replace("-", " ") in text for w in words)
    }


def _letter(answer: Any, choices: dict[str, str]) -> str:
    """The chosen letter from "b", "B", "b)", "(b)" or the text of the choice itself."""
    if answer is None:
        raise CheckFailed(
            "No answer yet.", 'Set the variable to one letter, e.g. "a", and run again.'
        )
    if isinstance(answer, str):
        full = " ".join(answer.lower().split())
        text = full.strip("().: ")
        if text in choices:
            return text
        for letter, choice in choices.items():
            if full and full in (choice.lower(), choice.lower().rstrip(".")):
                return letter
    raise CheckFailed(
        f"{answer!r} is not one of the choices.",
        f"Answer with one letter: {', '.join(repr(c) for c in choices)}.",
    )


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
    found: set[str] = set()
    for p in phrases:
        found |= _concepts(p, RELIABILITY_EXTRAS)
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

    from infralab import landscape

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
    want = measured_gflops / peak
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
