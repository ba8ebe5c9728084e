"""Lab 02's request judgements: the request limits, the random and odd request bodies a
student's ``validate_request`` and handler are tried on, and the public (reference-free)
judgement of ``validate_request``. Used by ``lab02.check_validate_request`` and
``lab02.check_handler``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from infralab.tooling.checks import (
    CheckFailed,
    CheckPassed,
    expect,
    public_pass,
    public_rng,
    same_twice,
)

MAX_TEXTS = 64


MAX_CHARS = 2000


def _validate_outcome(fn: Callable[[Any], Any], body: Any) -> tuple[str, Any]:
    """('ok', texts) or ('error', message); anything but ValueError is a failure."""
    try:
        return "ok", fn(body)
    except NotImplementedError:
        raise CheckFailed(
            "validate_request is still the placeholder.", "Replace `raise NotImplementedError`."
        ) from None
    except ValueError as exc:
        return "error", str(exc)
    except Exception as exc:
        raise CheckFailed(
            f"validate_request({body!r:.60}) raised {type(exc).__name__}: {exc}",
            "Bad input should raise ValueError with a message; anything else becomes a 500.",
        ) from None


def _bodies():
    from hypothesis import strategies as st

    text = st.one_of(
        st.text(max_size=20),
        st.just(" "),
        st.just("x" * MAX_CHARS),
        st.just("y" * (MAX_CHARS + 1)),
    )
    item = st.one_of(text, st.integers(), st.none())
    value = st.one_of(
        text,
        st.lists(text, min_size=0, max_size=3),
        st.lists(item, min_size=1, max_size=3),
        st.lists(st.just("t"), min_size=MAX_TEXTS - 1, max_size=MAX_TEXTS + 2),
        st.integers(),
        st.none(),
    )
    body = st.one_of(
        st.fixed_dictionaries({"input": value}),
        st.fixed_dictionaries({"text": value}),
        st.lists(text, max_size=2),
        text,
    )
    return st.tuples(body)


VALIDATE_HINT = (
    "Go through the lab's rules one by one (a dict with 'input'; a text or a non-empty list of "
    "texts; none empty or blank; length and count limits) and test each on a tiny body in a "
    "new cell."
)


def _public_validate(fn: Callable[[Any], Any]) -> CheckPassed:
    """Good bodies give back their own texts as a list; bodies that break a rule of the lab
    raise ValueError with a message a client can act on; the same body, the same outcome."""
    rng = public_rng(2)
    words = ["embed", "this", "cold", "start", "p99", "batch", "gpu", "café", "日本"]
    text = lambda: " ".join(rng.choices(words, k=rng.randint(1, 5)))  # noqa: E731
    good: list[Any] = [{"input": text()} for _ in range(5)]
    good += [{"input": [text() for _ in range(rng.randint(1, 6))]} for _ in range(10)]
    good += [{"input": ["z" * MAX_CHARS]}, {"input": ["t"] * MAX_TEXTS}]
    for body in good:
        kind, got = _validate_outcome(fn, body)
        sent = body["input"] if isinstance(body["input"], list) else [body["input"]]
        expect(
            kind == "ok",
            f"validate_request refused a good body {str(body)[:60]}: {str(got)[:80]}",
            VALIDATE_HINT,
        )
        expect(
            isinstance(got, list) and all(isinstance(t, str) for t in got),
            f"validate_request({str(body)[:60]}) returned {type(got).__name__}, not a list of "
            "texts.",
            "Return the texts as a list of strings, one per text in the request.",
        )
        expect(
            len(got) == len(sent) and all(t in sent for t in got),
            f"validate_request({str(body)[:60]}) returned {str(got)[:60]}: not the texts sent.",
            "Return the request's own texts (a single text becomes a list of one).",
        )
        same_twice(lambda b: _validate_outcome(fn, b), (body,), (kind, got),
                   name="validate_request")  # fmt: skip
    bad: list[Any] = [
        None, "just a text", ["a list"], 42, {"text": text()}, {"inputs": [text()]},
        {"input": []}, {"input": None}, {"input": 7}, {"input": [""]}, {"input": ["   "]},
        {"input": [text(), None]}, {"input": [text(), 3]}, {"input": "z" * (MAX_CHARS + 1)},
        {"input": [text(), "z" * (MAX_CHARS + 1)]}, {"input": ["t"] * (MAX_TEXTS + 1)},
    ]  # fmt: skip
    for body in bad:
        kind, got = _validate_outcome(fn, body)
        expect(
            kind == "error",
            f"validate_request accepted {str(body)[:60]}, which breaks a rule of the lab.",
            VALIDATE_HINT,
        )
        expect(
            len(got) >= 10,
            f"Your error message is only {got!r}.",
            "A client reads this message: say which field and which limit.",
        )
    return public_pass(
        f"validate_request accepts {len(good)} good bodies and refuses {len(bad)} bad ones"
    )


def _route_paths(app: Any) -> list[str]:
    return [str(getattr(r, "path", "")) for r in app.routes]


def _exchange(app: Any, bodies: list[Any]) -> list[tuple[int, str, Any]]:
    """POST each body to ``/embed`` in-process: (status, text, JSON or None) per request.

    Runs where the app lives (in the grader's case, the student's kernel); the check judges
    the plain answers."""
    from fastapi.testclient import TestClient

    out = []
    with TestClient(app, raise_server_exceptions=False) as client:
        for body in bodies:
            r = client.post("/embed", json=body)
            try:
                parsed = r.json()
            except ValueError:
                parsed = None
            out.append((r.status_code, r.text[:2000], parsed))
    return out
