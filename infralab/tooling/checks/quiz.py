"""Self-check quizzes: multiple-choice questions that explain every choice.

Generalised from lesson 01's self-checks (``lesson01.ask`` and ``check_answer``): the same
question shape (a prompt and lettered choices) and the same forgiving reading of an answer
(``"b"``, ``"B)"``, ``"(b)"`` or the choice's own text). Unlike lesson 01's graded checks, a
self-check quiz is for learning, so its key is public: choosing an answer shows why it is
right, or why it is wrong and what to look at.

One quiz, four front ends:

- JupyterLab, VS Code and Colab draw :func:`show`'s output as radio buttons with feedback on
  each click (ipywidgets);
- a front end that cannot draw widgets (and the course site, whose pages are static) falls
  back to the HTML that travels in the same output: each question with its answer and the
  explanations inside a collapsed ``<details>``;
- anywhere at all, ``quiz.answer("02", 1, "b")`` prints the same feedback as text.

The questions live in :mod:`infralab.tooling.checks.quiz_bank`, keyed by lesson number, written in
the shape of :mod:`infralab.tooling.checks.questions` (which both import, so neither imports the other
back).
"""

from __future__ import annotations

import html
from typing import Any

from infralab.tooling.checks import CheckFailed
from infralab.tooling.checks.questions import Choice as Choice  # re-exported: quiz.Choice
from infralab.tooling.checks.questions import Question
from infralab.tooling.checks.questions import question as question  # re-exported: quiz.question

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "show",
]


MIN_QUESTIONS, MAX_QUESTIONS = 4, 6
FALLBACK_CLASS = "infralab-quiz"  # the course site keeps this HTML instead of the widget


def parse_letter(answer: Any, choices: dict[str, Any]) -> str:
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
            words = str(getattr(choice, "text", choice)).lower()
            if full and full in (words, words.rstrip(".")):
                return letter
    raise CheckFailed(
        f"{answer!r} is not one of the choices.",
        f"Answer with one letter: {', '.join(repr(c) for c in choices)}.",
    )


def questions(lesson: str | int) -> list[Question]:
    """The self-check questions of one lesson ("02" or 2)."""
    from infralab.tooling.checks.quiz_bank import QUIZZES

    key = f"{int(lesson):02d}" if str(lesson).isdigit() else str(lesson)
    if key not in QUIZZES:
        raise CheckFailed(
            f"There is no self-check quiz for lesson {lesson!r}.",
            f"Lessons with a quiz: {', '.join(sorted(QUIZZES))}.",
        )
    return QUIZZES[key]


def answer(lesson: str | int, number: int, choice: Any) -> str:
    """Feedback on one answer, as text: works in every front end, widgets or not.

    ``number`` counts from 1, as the questions are shown.
    """
    qs = questions(lesson)
    if not isinstance(number, int) or not 1 <= number <= len(qs):
        raise CheckFailed(
            f"Question {number!r} does not exist.", f"Lesson {lesson} has questions 1-{len(qs)}."
        )
    q = qs[number - 1]
    _, text = q.feedback(parse_letter(choice, q.choices))
    print(text)
    return text


def as_text(lesson: str | int) -> str:
    qs = questions(lesson)
    lines = []
    for n, q in enumerate(qs, 1):
        lines.append(f"{n}. {q.prompt}")
        lines += [f"   {k}) {c.text}" for k, c in q.choices.items()]
    lines.append(f'Answer with quiz.answer("{int(lesson):02d}", number, "letter").')
    return "\n".join(lines)


def fallback_html(lesson: str | int) -> str:
    """Every question with its answer and explanations folded away: for static pages."""
    parts = [f'<div class="{FALLBACK_CLASS}">']
    for n, q in enumerate(questions(lesson), 1):
        items = "".join(f"<li>{k}) {html.escape(c.text)}</li>" for k, c in q.choices.items())
        whys = "".join(
            f"<li><b>{k})</b> {'right' if k == q.answer else 'wrong'}: {html.escape(c.why)}</li>"
            for k, c in q.choices.items()
        )
        parts.append(
            f"<p><b>{n}.</b> {html.escape(q.prompt)}</p><ul>{items}</ul>"
            f"<details><summary>Answer and explanation</summary><p>The answer is "
            f"<b>{q.answer})</b>.</p><ul>{whys}</ul></details>"
        )
    parts.append("</div>")
    return "".join(parts)


class Quiz:
    """What :func:`show` displays: radio buttons where widgets work, HTML where they do not."""

    def __init__(self, lesson: str | int) -> None:
        self.lesson = lesson
        self.questions = questions(lesson)
        self._widget: Any = None

    def widget(self) -> Any:
        import ipywidgets as w

        if self._widget is not None:
            return self._widget
        rows = []
        for n, q in enumerate(self.questions, 1):
            options = [(f"{k}) {c.text}", k) for k, c in q.choices.items()]
            radio = w.RadioButtons(options=options, value=None, layout=w.Layout(width="auto"))
            out = w.HTML()

            def on_change(change: dict[str, Any], q: Question = q, out: Any = out) -> None:
                if change.get("new") is None:
                    return
                right, text = q.feedback(change["new"])
                color = "#1a7f37" if right else "#b35900"
                out.value = f'<div style="color:{color}">{html.escape(text)}</div>'

            radio.observe(on_change, names="value")
            rows.append(w.VBox([w.HTML(f"<b>{n}.</b> {html.escape(q.prompt)}"), radio, out]))
        self._widget = w.VBox(rows)
        return self._widget

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle: dict[str, Any] = {}
        try:
            view = self.widget()._repr_mimebundle_(include=include, exclude=exclude)
        except ImportError:  # no ipywidgets: the HTML and the text still work
            view = None
        if isinstance(view, dict):
            bundle.update(view)
        bundle["text/html"] = fallback_html(self.lesson)
        bundle["text/plain"] = as_text(self.lesson)
        return bundle


def show(lesson: str | int) -> Quiz:
    """The lesson's quiz, ready to display (the notebook's last expression)."""
    return Quiz(lesson)
