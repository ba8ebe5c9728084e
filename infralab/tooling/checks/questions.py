"""The shape of a self-check question: a prompt, lettered choices, and why each is right or
wrong. :mod:`infralab.tooling.checks.quiz_bank` writes its questions in it and
:mod:`infralab.tooling.checks.quiz` shows and marks them."""

from __future__ import annotations

from dataclasses import dataclass

from infralab.core.errors import InfralabError


class QuestionError(ValueError, InfralabError):
    """A self-check question written wrong, or asked for by a key that does not exist."""

    hint = "infralab/tooling/checks/quiz_bank.py shows complete questions to copy."


class UnknownQuestion(KeyError, QuestionError):
    """A question key that is not in the bank (a KeyError, as it always was)."""

    def __str__(self) -> str:  # KeyError would quote the whole sentence
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class Choice:
    text: str
    why: str  # why this choice is right, or why it is wrong


@dataclass(frozen=True)
class Question:
    prompt: str
    choices: dict[str, Choice]  # letter -> choice, in order
    answer: str  # the right letter

    def __post_init__(self) -> None:
        if self.answer not in self.choices:
            raise QuestionError(
                f"answer {self.answer!r} is not one of {list(self.choices)}",
                hint="answer is the right choice's letter, one of the keys of choices.",
            )
        if len(self.choices) < 2:
            raise QuestionError(
                "a multiple-choice question needs at least two choices",
                hint="Add a wrong choice that a student could believe, with why it is wrong.",
            )
        for letter, choice in self.choices.items():
            if not choice.text.strip() or not choice.why.strip():
                raise QuestionError(
                    f"choice {letter!r} of {self.prompt[:40]!r} needs text and why",
                    hint="Every choice says why it is right or wrong: that is the feedback shown.",
                )

    def feedback(self, letter: str) -> tuple[bool, str]:
        """(right?, the explanation shown for this choice)."""
        chosen = self.choices[letter]
        if letter == self.answer:
            return True, f"Right: {chosen.why}"
        right = self.choices[self.answer]
        return (
            False,
            f"Not {letter}) {chosen.why} The answer is {self.answer}) {right.text.rstrip('.')}.",
        )


def question(prompt: str, answer: str, *choices: tuple[str, str]) -> Question:
    """A question from (text, why) pairs, lettered a, b, c, ... in order."""
    letters = "abcdefgh"
    return Question(
        prompt=prompt,
        choices={letters[i]: Choice(text, why) for i, (text, why) in enumerate(choices)},
        answer=answer,
    )
