"""Lesson 10's answer key."""

from __future__ import annotations

ANSWERS: dict[str, str] = {
    "latency_of_chain": "c",
    "parallel": "b",
    "tail": "b",
    "cache": "b",
    "context": "a",
}
