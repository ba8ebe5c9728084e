"""Lesson 10's quiz: multiple-choice questions on multi-step requests, checked with a hint.

The mechanism of lesson 01 (``ask`` prints a question, ``check_answer`` confirms or hints);
a right answer also says *why* it is right. The letters live in
``infralab.checks.references.lesson10``; where that is absent (the student release) a check
confirms the answer's form and says so.
"""

from __future__ import annotations

from typing import Any

from infralab import checks
from infralab.checks import CheckFailed, CheckPassed, check

QUESTIONS: dict[str, dict[str, Any]] = {
    "latency_of_chain": {
        "question": "A request runs retrieval (20 ms), then model call A (300 ms), then model "
        "call B that reads A's answer (300 ms). About how long does it take?",
        "choices": {"a": "300 ms", "b": "320 ms", "c": "620 ms"},
        "hint": "B cannot start before A ends: dependent steps add up.",
        "why": "Dependent steps run one after another, so their times add: 20 + 300 + 300.",
    },
    "parallel": {
        "question": "Three independent model calls of 300 ms each run at the same time on a "
        "server that batches them. The request waits about ...",
        "choices": {"a": "900 ms", "b": "a little over 300 ms", "c": "100 ms"},
        "hint": "Started together, the request waits for the slowest, not for all in turn.",
        "why": "Independent steps overlap: the wait is the slowest one plus what sharing the "
        "hardware costs, not the sum.",
    },
    "tail": {
        "question": "Each step of a 5-step chain is slow 1 % of the time. How often is the "
        "request slowed by at least one slow step?",
        "choices": {"a": "about 1 %", "b": "about 5 %", "c": "never more than the slowest step"},
        "hint": "Each step is a new chance to hit its slow 1 %: 1 - 0.99 ** 5.",
        "why": "Every step is another chance to be slow: 1 - 0.99**5 is about 4.9 %, so the "
        "tail of a chain is much heavier than the tail of one call.",
    },
    "cache": {
        "question": "What must a cache key for a model call include so that a hit is a right "
        "answer?",
        "choices": {
            "a": "the user's name only",
            "b": "the model, the full prompt and the generation parameters",
            "c": "the time of day",
        },
        "hint": "A hit must only be served for the very same call.",
        "why": "The answer depends on the model, every token of the prompt and parameters such "
        "as temperature and max_tokens; leave one out and a hit can serve another call's answer.",
    },
    "context": {
        "question": "An agent keeps adding tool results to its prompt. What grows in proportion "
        "to the prompt's tokens?",
        "choices": {
            "a": "the KV cache held for the request",
            "b": "the model's weights",
            "c": "nothing: prompts are free after the first call",
        },
        "hint": "Lesson 04: every token in the context keeps a key and a value per layer.",
        "why": "Every token in the context keeps a key and a value in every layer for every KV "
        "head, so the cache grows linearly with the prompt, while the weights stay the same.",
    },
}


def _letter(answer: Any, choices: dict[str, str]) -> str:
    if answer is None:
        raise CheckFailed(
            "No answer yet.", 'Set the variable to one letter, e.g. "a", and run again.'
        )
    text = " ".join(str(answer).lower().split()).strip("().: ")
    if isinstance(answer, str) and text in choices:
        return text
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
    """One multiple-choice question; a right answer explains itself."""
    if key not in QUESTIONS:
        raise CheckFailed(f"There is no question {key!r}.", f"Use one of: {', '.join(QUESTIONS)}.")
    q = QUESTIONS[key]
    letter = _letter(answer, q["choices"])
    ref = checks.reference_module("lesson10")
    if ref is None:
        return CheckPassed(
            f"Answer {letter}) noted. The answer key is not part of this copy: check it against "
            "the lesson's measurements."
        )
    right = ref.ANSWERS[key]
    return check(
        letter == right,
        ok=f"Right: {q['choices'][right]}. {q['why']}",
        problem=f"Not {letter}) {q['choices'][letter]}.",
        hint=q["hint"],
    )
