"""Lesson 01's answer key: the letters, the accepted AI reliability concerns, the ratios."""

from __future__ import annotations

from typing import Any

ANSWERS: dict[str, str] = {"cost_driver": "b", "saas_feature": "a", "bottleneck": "a"}

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


def gpu_advantage(table: Any) -> float:
    cpu = table[table["kind"] == "CPU"]["usd_per_tflop_hour"].min()
    gpu = table[table["kind"] == "GPU"]["usd_per_tflop_hour"].min()
    return cpu / gpu


def share_of_peak(measured_gflops: float, peak_gflops: float) -> float:
    return measured_gflops / peak_gflops
