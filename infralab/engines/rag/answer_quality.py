"""Answer quality: does a generated answer hold every key fact, and does it abstain when
it should?

Retrieval metrics say whether the right document was found; they say nothing about the
sentence a user reads. ``datasets/corpus/questions.csv`` gives each answerable question its
``key_facts`` (``;``-separated); an answer is *correct* when every fact is in it, and an
unanswerable question is handled correctly only by an abstention.

Matching is strict on numbers, loose on wording: numbers are compared as values (``3,100``
equals ``3100``, ``one`` equals ``1``, ``01:30`` equals ``1:30``), a number must keep its
unit or currency (``7 days`` is not ``7 hours``, ``$25`` is not ``25%``), and the fact's
other content words must appear, in any order, singular or plural. So a paraphrase is
accepted when it keeps the facts and rejected when it changes a number: ``one week`` is not
``7 days`` (a reader would agree they mean the same, but a scorer that guesses is a scorer
that can be fooled, and the corpus states its facts in the form it expects).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from infralab.engines.rag.answer import NOT_FOUND
from infralab.engines.rag.rag_errors import RagError

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "fact_present",
    "recorded",
    "summarize_quality",
]


NUMBER_WORDS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen "
        "fourteen fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
} | {"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "ninety": 90, "hundred": 100}
UNIT_SYNONYMS = {
    "percent": "%",
    "pct": "%",
    "usd": "$",
    "dollar": "$",
    "eur": "€",
    "euro": "€",
    "gbp": "£",
    "min": "minute",
    "mins": "minute",
    "hr": "hour",
    "hrs": "hour",
    "sec": "second",
    "secs": "second",
    "yr": "year",
    "yrs": "year",
    "wk": "week",
}
CURRENCIES = frozenset("$€£")
# negations and quantifiers change meaning: they are content, not stop words
STOP = frozenset(
    "the a an and or of to in on for is are was were be been it its this that with as by at "
    "from can may will would should our your their they we you which what who when where how "
    "do does did has have had than then there these those also per into".split()
)
TOKEN_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}"  # ISO date: one token
    r"|\d+(?:\.\d+)?"  # a number (thousands separators are removed first)
    r"|[a-z][a-z0-9_.=/-]*[a-z0-9]|[a-z]"  # a word, with inner - . _ = / (ids, versions)
    r"|[%$€£]"
)


def _singular(word: str) -> str:
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def tokens(text: str) -> list[str]:
    """Normalised tokens: lower case, numbers as canonical values, units unified.

    ``"3,100 tickets"`` -> ``["3100", "ticket"]``; ``"a 30-day grace period"`` ->
    ``["a", "30", "day", "grace", "period"]``; ``"25 per cent"`` -> ``["25", "%"]``.
    """
    t = text.lower().replace("\u2013", "-").replace("\u2014", "-").replace("\u00a0", " ")
    t = re.sub(r"(?<=\d),(?=\d{3}\b)", "", t)  # 3,100 -> 3100 (twice for 1,000,000)
    t = re.sub(r"(?<=\d),(?=\d{3}\b)", "", t)
    t = re.sub(r"\bper\s+cent\b", "%", t)
    out: list[str] = []
    for tok in TOKEN_RE.findall(t):
        if re.fullmatch(r"\d+(?:\.\d+)?", tok):
            value = float(tok)
            out.append(str(int(value)) if value.is_integer() else repr(value))
        elif tok in NUMBER_WORDS:
            out.append(str(NUMBER_WORDS[tok]))
        else:
            tok = _singular(tok) if tok.isalpha() else tok
            out.append(UNIT_SYNONYMS.get(tok, tok))
    return out


def _is_number(tok: str) -> bool:
    return bool(re.fullmatch(r"\d+(?:\.\d+)?", tok))


def _near(toks: Sequence[str], i: int, want: str, after: bool, window: int = 2) -> bool:
    span = toks[i + 1 : i + 1 + window] if after else toks[max(0, i - window) : i]
    return want in span


def fact_present(fact: str, answer: str) -> bool:
    """True when ``answer`` states ``fact``: each number with its unit or currency, and every
    other content word (see the module docstring for the rules and why)."""
    f = tokens(fact)
    a = tokens(answer)
    if not f:
        raise RagError(
            f"the key fact {fact!r} has nothing to match.",
            hint="A key fact needs at least one word or number, e.g. '30 days'.",
        )
    positions: dict[str, list[int]] = {}
    for i, tok in enumerate(a):
        positions.setdefault(tok, []).append(i)
    words = set(a)
    for i, tok in enumerate(f):
        if _is_number(tok):
            unit = f[i + 1] if i + 1 < len(f) and not _is_number(f[i + 1]) else None
            cur = f[i - 1] if i > 0 and f[i - 1] in CURRENCIES else None
            ok = False
            for j in positions.get(tok, []):
                unit_ok = unit is None or unit in STOP or _near(a, j, unit, after=True)
                cur_ok = cur is None or _near(a, j, cur, after=False) or _near(a, j, cur, True)
                ok = ok or (unit_ok and cur_ok)
            if not ok:
                return False
        elif tok not in STOP and tok not in words:
            return False
    return True


def is_abstention(answer: Mapping[str, Any] | str) -> bool:
    """An ``/ask`` body (or answer text) that says the documents do not hold the answer."""
    if isinstance(answer, str):
        return NOT_FOUND in answer.lower()
    return bool(answer.get("abstained")) or NOT_FOUND in str(answer.get("answer", "")).lower()


@dataclass(frozen=True)
class Score:
    """One answer's grade. ``correct``: all facts and no abstention, or a right abstention."""

    facts_found: int
    facts_total: int
    abstained: bool
    answerable: bool

    @property
    def correct(self) -> bool:
        if not self.answerable:
            return self.abstained
        return not self.abstained and self.facts_found == self.facts_total

    @property
    def outcome(self) -> str:
        """correct / wrong fact / wrong abstention / answered the unanswerable."""
        if self.correct:
            return "correct"
        if not self.answerable:
            return "answered the unanswerable"
        return "abstained wrongly" if self.abstained else "missing or wrong fact"


def score_answer(
    answer: Mapping[str, Any] | str, key_facts: Iterable[str], answerable: bool
) -> Score:
    """Grade one answer (an ``/ask`` body or plain text) against its question's facts."""
    facts = [f for f in key_facts if f.strip()]
    if answerable and not facts:
        raise RagError(
            "an answerable question needs at least one key fact to score.",
            hint="Give key_facts (the words a correct answer must contain) or answerable=False.",
        )
    text = answer if isinstance(answer, str) else str(answer.get("answer", ""))
    abstained = is_abstention(answer)
    found = 0 if abstained else sum(fact_present(f, text) for f in facts)
    return Score(found, len(facts), abstained, answerable)


def score_table(
    answers: Sequence[Mapping[str, Any] | str], questions: Sequence[Any], **labels: Any
) -> pd.DataFrame:
    """One row per answer: qid, tenant, outcome, correct; ``labels`` become extra columns
    (path, configuration, ...). ``questions`` are :class:`~infralab.engines.rag.corpus.Question`."""
    if len(answers) != len(questions):
        raise RagError(
            f"{len(answers)} answers for {len(questions)} questions.",
            hint="Pass one answer per question, in the same order (ask every question once).",
        )
    rows = []
    for ans, q in zip(answers, questions, strict=True):
        s = score_answer(ans, q.key_facts, q.answerable)
        rows.append(
            {
                "qid": q.qid,
                "tenant": q.tenant,
                "answerable": q.answerable,
                "facts_found": s.facts_found,
                "facts_total": s.facts_total,
                "abstained": s.abstained,
                "correct": s.correct,
                "outcome": s.outcome,
                **labels,
            }
        )
    return pd.DataFrame(rows)


def summarize_quality(scores: pd.DataFrame, by: Sequence[str] = ()) -> pd.DataFrame:
    """Share correct overall, on answerable questions (all facts) and on unanswerable ones
    (abstained), per group of ``by`` columns."""
    if scores.empty:
        raise RagError(
            "no scored answers to summarise.",
            hint="Score some answers first with score_table and pass the table it returns.",
        )

    def agg(g: pd.DataFrame) -> pd.Series:
        ans, una = g[g.answerable], g[~g.answerable]
        return pd.Series(
            {
                "questions": len(g),
                "correct": g.correct.mean(),
                "answerable_correct": ans.correct.mean() if len(ans) else float("nan"),
                "unanswerable_abstained": una.abstained.mean() if len(una) else float("nan"),
                "facts_recall": ans.facts_found.sum() / max(ans.facts_total.sum(), 1),
            }
        )

    if not by:
        return agg(scores).to_frame().T
    return scores.groupby(list(by), sort=False)[list(scores.columns)].apply(agg)


def recorded(section: str) -> tuple[dict[str, Any], str]:
    """One section of the kit's recorded quality run (``quality``, ``drift``, ``isolation``)
    and a label saying when it was measured, for the lesson's tables; read by
    :func:`infralab.core.results.recorded_section`, the one reader of recorded runs."""
    from infralab.core.results import recorded_section

    return recorded_section("quality", section)
