"""Checks for lab 02 (build and load-test an inference endpoint).

The student writes the request validation, the handler, a micro-batcher, the load-test
summary and the Lambda bill at a memory size; each is compared on random inputs with a
reference kept in ``infralab.tooling.checks.references.lab02`` (public checks where the references are
absent). The micro-batcher is driven on a simulated clock (``infralab.engines.serving.simclock``) in
the student's kernel, by random arrival patterns drawn here; the trace it leaves (plain data)
is judged here.
Measured figures are checked against what the server itself counted (``/metrics``), so an
invented number fails, and no check fails correct code because the machine is busy: the
batching check tests what the server did (more than one text per model call) and only
reports the speed-up.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from infralab.tooling import checks
from infralab.tooling.checks import (
    CheckFailed,
    CheckPassed,
    agrees_with_reference,
    call_number,
    check_close,
    check_type,
    expect,
    number,
    points,
    public_pass,
    public_rng,
    refuse_kit_function,
    run_beside,
    run_student_function,
    same_twice,
)

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "check_batching",
    "check_break_even",
    "check_cold_start",
    "check_handler",
    "check_lambda_bill_at_memory",
    "check_load_summary",
    "check_micro_batcher",
    "check_sweep",
    "check_validate_request",
]


MAX_TEXTS = 64
MAX_CHARS = 2000
LAUNCH_PROBES = 2  # launch() sends a cold and a warm request before handing over the server


def _ref() -> Any:
    return checks.reference_module("lab02")


def _kit_functions() -> list[Callable[..., Any]]:
    from infralab.economics.costs import billing
    from infralab.engines.serving import loadgen

    return [
        billing.lambda_function,
        billing.steps,
        billing.scaled_duration,
        billing.hourly,
        loadgen.summarize,
        *(
            [ref.validate_request, ref.load_summary, ref.lambda_bill_at_memory]
            if (ref := _ref())
            else []
        ),
    ]


# ---------------------------------------------------------------- 1. validation
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


@points(2)
def check_validate_request(validate_request: Callable[[Any], list[str]]) -> CheckPassed:
    """Random bodies: the student's validation accepts and refuses exactly what the rules say."""
    refuse_kit_function(validate_request, _kit_functions(), name="validate_request")
    ref = _ref()
    if ref is None:
        return _public_validate(validate_request)

    def outcome(fn: Callable[[Any], Any]) -> Callable[[Any], tuple[str, Any]]:
        return lambda body: _validate_outcome(fn, body)

    def same(got: tuple[str, Any], want: tuple[str, Any]) -> bool:
        if got[0] != want[0]:
            return False
        if got[0] == "error":
            if len(got[1]) < 10:
                raise CheckFailed(
                    f"Your error message is only {got[1]!r}.",
                    "A client reads this message: say which field and which limit.",
                )
            return True
        return got[1] == want[1]

    tried = agrees_with_reference(
        outcome(validate_request),
        outcome(ref.validate_request),
        _bodies(),
        name="validate_request",
        hint="Go through the rules one by one (a dict with 'input'; a text or a non-empty "
        "list of texts; none empty or blank; length and count limits) and test each on "
        "a tiny body in a new cell.",
        edge_cases=[({"input": "hello"},), ({"input": ["a", "b"]},), ({"input": []},)],
        same=same,
    )
    return CheckPassed(f"validate_request agrees with the rules on {tried} bodies, odd ones too.")


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


# ---------------------------------------------------------------- 2. handler
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


@points(2)
def check_handler(app: Any) -> CheckPassed:
    """The student's FastAPI app: 200 with one vector per text, 4xx with a message for bad input."""
    from fastapi import FastAPI

    check_type(app, FastAPI, name="app")
    if "/embed" not in run_beside(app, _route_paths, app):
        raise CheckFailed(
            "app has no route /embed.", "Decorate your handler with @app.post('/embed')."
        )
    goods = [["one", "two"], ["just one"], ["a"] * 5]
    bads = [{"input": []}, {"text": "x"}, ["x"], {"input": "z" * (MAX_CHARS + 1)}]
    answers = run_beside(app, _exchange, app, [{"input": t} for t in goods] + bads)
    if not isinstance(answers, list) or len(answers) != len(goods) + len(bads):
        raise CheckFailed("The app did not answer every request.", "Run the cell that builds it.")
    for texts, answer in zip(goods, answers[: len(goods)], strict=True):
        status, text, body = answer
        if status != 200:
            raise CheckFailed(
                f"A good request got HTTP {status}: {str(text)[:200]}",
                "Validate, embed, and return the vectors as a JSON list.",
            )
        vectors = body.get("embeddings") if isinstance(body, dict) else None
        if not isinstance(vectors, list) or len(vectors) != len(texts):
            raise CheckFailed(
                f"A request with {len(texts)} texts should give {len(texts)} vectors "
                "under 'embeddings'.",
                "One vector per text, in the request's order.",
            )
    for body, answer in zip(bads, answers[len(goods) :], strict=True):
        status, text, _ = answer
        if not isinstance(status, int) or status >= 500:
            raise CheckFailed(
                f"The body {str(body)[:60]} crashed the handler (HTTP {status}).",
                "A ValueError that escapes the handler becomes a 500: turn it into a 4xx.",
            )
        if not 400 <= status < 500:
            raise CheckFailed(f"The body {str(body)[:60]} got HTTP {status}, not 4xx.")
        if len(str(text)) < 20:
            raise CheckFailed(
                f"The 4xx for {str(body)[:60]} says only {text!r}.",
                "Put your validation message in the HTTPException.",
            )
    return CheckPassed(
        "Your handler answers good input with vectors and bad input with a 4xx and a message."
    )


# ---------------------------------------------------------------- 3. micro-batcher
BATCHER_HINT = (
    "Queue each submitted item with a future; a worker task (started on the first submit) takes "
    "the oldest item, then keeps taking items until max_batch_size are in hand or max_wait_s has "
    "passed since the oldest arrived (use the loop's clock: asyncio.wait_for or loop.time()), "
    "calls fn once on the whole list, and gives each future its own answer. If the call fails, "
    "try each item alone so that only the bad one gets the error."
)
WAIT_TOLERANCE_S = 1e-6  # simulated time: a correct batcher is exact to float rounding


def _plans():
    from hypothesis import strategies as st

    def build(size: int, wait: float, gaps: list[int], bad: list[int]) -> dict[str, Any]:
        unit = wait / 7.5  # arrivals on a grid of wait / 7.5: never exactly at a deadline
        arrivals, now = [], 0.0
        for gap in gaps:
            now += gap * unit
            arrivals.append(now)
        return {"max_batch_size": size, "max_wait_s": wait, "arrivals": arrivals,
                "bad": sorted({b % len(gaps) for b in bad})}  # fmt: skip

    gaps = st.lists(st.one_of(st.just(0), st.integers(0, 3), st.integers(0, 20)), min_size=1,
                    max_size=30)  # fmt: skip
    return st.builds(build, st.integers(1, 8), st.sampled_from([0.002, 0.005, 0.02]), gaps,
                     st.lists(st.integers(0, 10_000), max_size=3))  # fmt: skip


def _first_dispatch(calls: list) -> tuple[dict[int, float], list[tuple[float, list[int]]]]:
    """When each item first went to the model, and the calls that carried new items."""
    first: dict[int, float] = {}
    groups = []
    for when, items in calls:
        new = [i for i in items if isinstance(i, int) and i not in first]
        for i in new:
            first[i] = float(when)
        if new:
            groups.append((float(when), new))
    return first, groups


def _judge_batcher(plan: dict[str, Any], trace: Any, ref: Any) -> None:
    """Fail with the first rule the batcher broke on this arrival plan, naming the plan."""
    size, wait = plan["max_batch_size"], plan["max_wait_s"]
    arrivals, bad = plan["arrivals"], set(plan["bad"])
    where = _plan_text(size, wait, arrivals, bad)
    _judge_trace_shape(trace, where)
    calls, answers = trace["calls"], trace["answers"]
    _judge_answers(calls, answers, len(arrivals), size, bad, where)
    first, groups = _first_dispatch(calls)
    _judge_waits(arrivals, first, groups, size, wait, where)
    _judge_grouping(ref, arrivals, groups, size, wait, where)


def _plan_text(size: int, wait: float, arrivals: list[float], bad: set[int]) -> str:
    """The arrival plan in words, for every failure message about it."""
    n = len(arrivals)
    return (f"max_batch_size={size}, max_wait_s={wait:g}, {n} requests arriving at "
            f"{', '.join(f'{1e3 * t:.3g}' for t in arrivals[:8])}{' ...' if n > 8 else ''} ms"
            + (f", the model failing on request {sorted(bad)}" if bad else ""))  # fmt: skip


def _judge_trace_shape(trace: Any, where: str) -> None:
    """The batcher could be driven and raised nothing (a placeholder is named as such)."""
    expect(isinstance(trace, dict) and {"calls", "answers", "problem"} <= set(trace),
           "The batcher could not be driven.", BATCHER_HINT)  # fmt: skip
    if trace["problem"]:
        if "NotImplementedError" in str(trace["problem"]):
            raise CheckFailed("MicroBatcher is still the placeholder.",
                              "Replace `raise NotImplementedError` with code.")  # fmt: skip
        raise CheckFailed(f"With {where}: {str(trace['problem'])[:300]}", BATCHER_HINT)


def _judge_answers(
    calls: list, answers: list, n: int, size: int, bad: set[int], where: str
) -> None:
    """Calls within max_batch_size; each request answered once, with its own answer or error."""
    for _when, items in calls:
        expect(1 <= len(items) <= size,
               f"With {where}: a model call carried {len(items)} items.",
               "A call takes at least one item and at most max_batch_size.")  # fmt: skip
    got = {}
    for item, kind, value, _when in answers:
        expect(item not in got, f"With {where}: request {item} was answered twice.",
               BATCHER_HINT)  # fmt: skip
        got[item] = (kind, value)
    for i in range(n):
        expect(i in got, f"With {where}: request {i} never got an answer.", BATCHER_HINT)
        kind, value = got[i]
        if i in bad:
            expect(kind == "error",
                   f"With {where}: request {i}, which the model cannot process, got {value!r} "
                   "instead of an error.",
                   "A request whose item fails should see the model's exception.")  # fmt: skip
        else:
            expect(kind == "ok",
                   f"With {where}: request {i} got {value[:80]!r}"
                   + (" although only another request's item was bad." if bad else "."),
                   BATCHER_HINT)  # fmt: skip
            expect(value == f"answer to request {i}",
                   f"With {where}: request {i} got {value[:80]!r}, not its own answer.",
                   "Answers come back in the order of the items you gave fn: give the k-th "
                   "answer to the k-th item's future.")  # fmt: skip


def _judge_waits(
    arrivals: list[float],
    first: dict[int, float],
    groups: list[tuple[float, list[int]]],
    size: int,
    wait: float,
    where: str,
) -> None:
    """No request waits past max_wait; a call that is not full waited max_wait and took all."""
    for i, arrived in enumerate(arrivals):
        waited = first[i] - arrived
        expect(waited <= wait + WAIT_TOLERANCE_S,
               f"With {where}: request {i} waited {1e3 * waited:.4g} ms before its model call, "
               f"more than max_wait ({1e3 * wait:g} ms).",
               "The clock starts when the oldest item of a batch arrives, and it is the "
               "event loop's clock (loop.time()), not time.time(). " + BATCHER_HINT)  # fmt: skip
    for when, new in groups:
        if len(new) >= size:
            continue
        oldest = min(arrivals[i] for i in new)
        expect(when >= oldest + wait - WAIT_TOLERANCE_S,
               f"With {where}: a call of {len(new)} item(s) went after "
               f"{1e3 * (when - oldest):.3g} ms, neither full nor at max_wait.",
               "A batch that is not full waits until its oldest item has waited max_wait: "
               "that wait is what lets other requests join. " + BATCHER_HINT)  # fmt: skip
        left = [i for i, t in enumerate(arrivals)
                if t < when - WAIT_TOLERANCE_S and first[i] > when + WAIT_TOLERANCE_S]  # fmt: skip
        expect(not left,
               f"With {where}: a call at {1e3 * when:.4g} ms had room but left request "
               f"{left[:1]} waiting.",
               "When a call goes, take every waiting item, up to max_batch_size.")  # fmt: skip


def _judge_grouping(
    ref: Any,
    arrivals: list[float],
    groups: list[tuple[float, list[int]]],
    size: int,
    wait: float,
    where: str,
) -> None:
    """With the hidden reference present: the first calls are grouped as the rule groups them."""
    if ref is not None:
        want = ref.batch_plan(arrivals, size, wait)
        mine = [(when, len(new)) for when, new in groups]
        same = len(mine) == len(want) and all(
            abs(a[0] - b[0]) <= WAIT_TOLERANCE_S and a[1] == b[1]
            for a, b in zip(mine, want, strict=True)
        )
        expect(same, f"With {where}: your batcher made {len(mine)} first calls of sizes "
                     f"{[m[1] for m in mine][:12]}, which is not how the rule groups them.",
               BATCHER_HINT)  # fmt: skip


@points(3)
def check_micro_batcher(batcher_class: Any) -> CheckPassed:
    """The student's ``MicroBatcher(fn, max_batch_size, max_wait_s)`` with ``await submit(item)``,
    driven on simulated time by random arrival patterns: no call above max_batch_size, no
    request waiting past max_wait, every request its own answer, one bad item failing only
    its own request, and calls grouped as the rule says."""
    from hypothesis import HealthCheck, given, settings

    from infralab.engines.serving.simclock import drive_batcher

    if not callable(batcher_class):
        raise CheckFailed(f"MicroBatcher should be a class, not {type(batcher_class).__name__}.",
                          "Pass the class itself: check_micro_batcher(MicroBatcher).")  # fmt: skip
    ref = _ref()
    edges = [
        {"max_batch_size": 3, "max_wait_s": 0.01, "arrivals": [0.0] * 7, "bad": []},
        {"max_batch_size": 4, "max_wait_s": 0.005, "arrivals": [0.0, 0.001, 0.002], "bad": []},
        {"max_batch_size": 1, "max_wait_s": 0.005, "arrivals": [0.0, 0.0, 0.001], "bad": []},
        {"max_batch_size": 8, "max_wait_s": 0.004, "arrivals": [0.0, 0.0008, 0.0096, 0.05],
         "bad": []},
        {"max_batch_size": 4, "max_wait_s": 0.01, "arrivals": [0.0] * 4 + [0.002] * 3,
         "bad": [2]},
    ]  # fmt: skip
    for plan in edges:
        _judge_batcher(plan, run_beside(batcher_class, drive_batcher, batcher_class, plan), ref)
    tried = [len(edges)]

    @settings(max_examples=60, deadline=None, derandomize=not checks._GRADING.get(),
              database=None, print_blob=False, suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(_plans())
    def random_arrivals(plan: dict[str, Any]) -> None:
        tried[0] += 1
        _judge_batcher(plan, run_beside(batcher_class, drive_batcher, batcher_class, plan), ref)

    try:
        random_arrivals()
    except CheckFailed as exc:
        raise CheckFailed(exc.problem, exc.hint) from None
    text = (f"MicroBatcher kept every rule on {tried[0]} arrival patterns (simulated clock): "
            "calls within max_batch_size, no wait past max_wait, each request its own answer, a "
            "bad item failing only its own request")  # fmt: skip
    return CheckPassed(text + ".") if ref is not None else public_pass(text)


# ---------------------------------------------------------------- 3. cold start
@points(1)
def check_cold_start(cold_start: Any, slowdown: Any, server: Any) -> CheckPassed:
    """The cold-start record is the server's own, and the slowdown is computed from it."""
    check_type(cold_start, dict, name="cold_start")
    record = getattr(server, "cold_start", None)
    if not isinstance(record, dict):
        raise CheckFailed(
            "server has no cold-start record.", "Pass the server that launch(...) returned."
        )
    for key in ("ready_s", "first_response_s", "warm_response_s", "total_s"):
        if cold_start.get(key) != record.get(key):
            raise CheckFailed(
                f"cold_start[{key!r}] is not what the server recorded.",
                "Keep the launcher's own record rather than numbers typed in.",
            )
    ref = _ref()
    if ref is None:
        value = number(slowdown, name="slowdown")
        expect(
            value > 1,
            f"slowdown = {value:.4g}: a cold start is slower than a warm request.",
            "How many times longer did the whole cold start take than a warm request?",
        )
        return public_pass(
            f"A cold start took {record['total_s']:.2f} s, measured just now; slowdown is a "
            "number above 1"
        )
    want = ref.cold_start_slowdown(record)
    check_close(slowdown, want, rel=1e-6, name="slowdown",
                hint="How many times longer the whole cold start took than a warm request.")  # fmt: skip
    return CheckPassed(
        f"A cold start took {record['total_s']:.2f} s, {want:.0f}x a warm request "
        f"({1e3 * record['warm_response_s']:.1f} ms), measured just now."
    )


# ---------------------------------------------------------------- 4. load summary
def _summary_inputs():
    from hypothesis import strategies as st

    latency = st.floats(min_value=1e-4, max_value=5.0, allow_nan=False)
    return st.tuples(
        st.lists(latency, min_size=1, max_size=300),
        st.floats(min_value=0.05, max_value=120.0, allow_nan=False),
    )


SUMMARY_HINT = (
    "Latencies arrive in seconds; percentiles go out in milliseconds (numpy's default, linear "
    "interpolation); throughput counts requests per second of wall time; no requests means no "
    "summary."
)
SUMMARY_KEYS = ("p50_ms", "p95_ms", "p99_ms", "throughput_rps")


def _summary_of(fn: Callable[..., Any], latencies: list[float], wall: float) -> dict[str, float]:
    got = run_student_function(fn, latencies, wall, name="load_summary")
    expect(
        isinstance(got, dict) and all(k in got for k in SUMMARY_KEYS),
        f"load_summary returned {str(got)[:60]}, not a dict with {', '.join(SUMMARY_KEYS)}.",
        "Return a dict with the four keys the lab names.",
    )
    out = {}
    for key in SUMMARY_KEYS:
        out[key] = call_number(lambda k=key: got[k], name=f"load_summary(...)[{key!r}]")
    return out


def _public_summary(fn: Callable[..., Any]) -> CheckPassed:
    """No requests, no summary; percentiles ordered, in ms, inside the data's range, scaling
    with the latencies; throughput counts requests per second of wall time."""
    got = run_student_function(fn, [], 1.0, name="load_summary")
    expect(got is None, f"load_summary([], 1.0) returned {str(got)[:60]}.", SUMMARY_HINT)
    rng = public_rng(4)
    for _ in range(25):
        lat = [rng.lognormvariate(-4, 1) for _ in range(rng.randint(1, 200))]
        wall = rng.uniform(0.5, 60)
        out = _summary_of(fn, lat, wall)
        lo, hi = 1e3 * min(lat), 1e3 * max(lat)
        p50, p95, p99 = out["p50_ms"], out["p95_ms"], out["p99_ms"]
        expect(
            p50 <= p95 * (1 + 1e-9) and p95 <= p99 * (1 + 1e-9),
            f"Your percentiles are out of order: p50 {p50:.4g}, p95 {p95:.4g}, p99 {p99:.4g}.",
            SUMMARY_HINT,
        )
        expect(
            lo * (1 - 1e-9) <= p50 and p99 <= hi * (1 + 1e-9),
            f"With latencies from {lo:.3g} to {hi:.3g} ms your p50/p99 are {p50:.4g}/{p99:.4g}: "
            "outside the data.",
            SUMMARY_HINT,
        )
        double = _summary_of(fn, [2 * x for x in lat], wall)
        expect(
            all(math.isclose(double[k], 2 * out[k], rel_tol=1e-6) for k in SUMMARY_KEYS[:3]),
            "Doubling every latency should double every percentile.",
            SUMMARY_HINT,
        )
        for variant, factor in (((lat, wall / 2), 2.0), ((lat + lat, wall), 2.0)):
            tp = _summary_of(fn, *variant)["throughput_rps"]
            expect(
                math.isclose(tp, factor * out["throughput_rps"], rel_tol=1e-6),
                "Throughput should double with twice the requests in the same time, and with "
                "the same requests in half the time.",
                SUMMARY_HINT,
            )
        same_twice(fn, (lat, wall), run_student_function(fn, lat, wall), name="load_summary")
    return public_pass("load_summary keeps percentiles ordered, in ms and in range; throughput "
                       "follows requests and wall time")  # fmt: skip


@points(2)
def check_load_summary(load_summary: Callable[..., Any]) -> CheckPassed:
    """p50/p95/p99 in ms and throughput per second, on random latency lists."""
    refuse_kit_function(
        load_summary, _kit_functions(), name="load_summary", sample_args=([0.01, 0.02], 1.0)
    )
    ref = _ref()
    if ref is None:
        return _public_summary(load_summary)
    tried = agrees_with_reference(
        load_summary,
        ref.load_summary,
        _summary_inputs(),
        name="load_summary",
        hint=SUMMARY_HINT,
        edge_cases=[([0.010], 1.0), ([0.5, 0.001, 0.2], 2.0), ([], 1.0)],
    )
    return CheckPassed(f"load_summary agrees with the definition on {tried} load tests.")


# ---------------------------------------------------------------- 5. sweep vs server counts
def _server_requests(metrics: Any, name: str = "metrics") -> int:
    if not isinstance(metrics, dict) or not isinstance(metrics.get("requests"), int):
        raise CheckFailed(
            f"{name} is not the server's /metrics record.",
            "Keep server.metrics() inside the `with launch(...)` block, after the load.",
        )
    return metrics["requests"]


@points(1)
def check_sweep(sweep: Any, metrics: Any) -> CheckPassed:
    """A sweep of at least three levels whose requests the server itself counted."""
    import pandas as pd

    check_type(sweep, pd.DataFrame, name="sweep")
    needed = {"concurrency", "requests", "ok", "throughput_rps", "p50_ms", "p99_ms", "errors"}
    missing = needed - set(sweep.columns)
    if missing:
        raise CheckFailed(
            f"sweep lacks the columns {sorted(missing)}.",
            "Use loadgen.concurrency_sweep(...), which returns them.",
        )
    if sweep["concurrency"].nunique() < 3:
        raise CheckFailed("sweep has fewer than three concurrency levels.", "Try three levels.")
    counted = _server_requests(metrics)
    claimed = int(sweep["requests"].sum())
    warmups = int(sum(min(int(c), 8) for c in sweep["concurrency"]))
    if not claimed <= counted <= claimed + warmups + LAUNCH_PROBES:
        raise CheckFailed(
            f"The sweep reports {claimed} requests but the server counted {counted}.",
            "Run the sweep against this server and read its metrics right after.",
        )
    if int(sweep["errors"].sum()) > 0:
        raise CheckFailed(
            f"{int(sweep['errors'].sum())} requests failed during the sweep.",
            "Look at the server's log (server.log_tail()) and lower the load.",
        )
    ordered = sweep.sort_values("concurrency")
    low, high = ordered.iloc[0], ordered.iloc[-1]
    return CheckPassed(
        f"The server counted your {claimed} requests. From {low['concurrency']:.0f} to "
        f"{high['concurrency']:.0f} clients: throughput {low['throughput_rps']:.0f} -> "
        f"{high['throughput_rps']:.0f} req/s, p99 {low['p99_ms']:.0f} -> {high['p99_ms']:.0f} ms."
    )


# ---------------------------------------------------------------- 6. batching
@points(2)
def check_batching(result: Any, batched_rps: Any, metrics: Any, naive_rps: Any) -> CheckPassed:
    """What batching did, from the counters of the server that ran (the lab's endpoint counts
    requests, its model function counts texts per call); the speed-up over the batch-1 run is
    reported, not judged.

    The ratio depends on what else the machine is doing (the load generator shares the same
    cores), so a low one is explained rather than failed: correct code never fails here.
    """
    from infralab.engines.serving.loadgen import LoadResult

    check_type(result, LoadResult, name="result")
    counted = _server_requests(metrics)
    ok = int(result.summary["ok"])
    sent = int(result.summary["requests"])
    if not ok <= counted <= sent + LAUNCH_PROBES:
        raise CheckFailed(
            f"Your load test reports {ok} answered requests, but this server counted {counted}.",
            "Measure with closed_loop against this server, and keep the counters of that very run.",
        )
    rps = _judged_throughput(result, batched_rps, ok)
    texts, calls = _batched_counters(metrics)
    return _batching_passed(texts, calls, rps, naive_rps)


def _judged_throughput(result: Any, batched_rps: Any, ok: int) -> float:
    """batched_rps as a number, and the throughput of that very load test (the reference's
    formula where it is present, else any positive finite rate)."""
    wall = float(result.summary["wall_s"])
    try:
        rps = float(batched_rps)
    except (TypeError, ValueError):
        raise CheckFailed("batched_rps should be a number.", "Take it from the result.") from None
    ref = _ref()
    if ref is None:
        good = wall > 0 and math.isfinite(rps) and rps > 0
    else:
        good = wall > 0 and math.isclose(rps, ref.throughput_rps(ok, wall), rel_tol=1e-6)
    if not good:
        raise CheckFailed(
            f"batched_rps = {rps:.4g} is not the throughput of your load test.",
            "Take the throughput of that very run from its result.",
        )
    return rps


def _batched_counters(metrics: dict[str, Any]) -> tuple[int, int]:
    """The server's (texts, model calls), once it is shown to have batched more than one text."""
    if metrics.get("mode") != "batching":
        raise CheckFailed(
            "This server ran one model call per request: batching was off.",
            "Serve the batched run through your MicroBatcher with max_batch_size above 1.",
        )
    texts, calls = int(metrics.get("texts", 0)), int(metrics.get("model_calls", 0))
    if calls == 0 or texts / calls <= 1.0:
        raise CheckFailed(
            "The server never put more than one text into a model call.",
            "Batches form only when requests overlap: load it with many concurrent clients.",
        )
    return texts, calls


def _batching_passed(texts: int, calls: int, rps: float, naive_rps: Any) -> CheckPassed:
    """Texts per model call, and the speed-up over batch 1 explained (never judged)."""
    mean = texts / calls
    naive = float(naive_rps) if isinstance(naive_rps, (int, float)) and naive_rps > 0 else None
    if naive is None:
        return CheckPassed(f"The server ran {mean:.1f} texts per model call on average.")
    ratio = rps / naive
    note = (
        ""
        if ratio >= 1.0
        else " A ratio below 1 on this run is not a fault of your code: the two runs happened "
        "at different moments on a machine whose cores the load generator (and possibly other "
        "work) shares; batching saves model calls, which pays off when the model, not the "
        "HTTP handling, is the bottleneck."
    )
    return CheckPassed(
        f"The server ran {mean:.1f} texts per model call ({calls} calls for {texts} texts). "
        f"Throughput with batching {rps:.0f} req/s vs {naive:.0f} without: {ratio:.2f}x on this "
        f"run.{note}"
    )


# ---------------------------------------------------------------- 7. Lambda at a memory size
def _lambda_inputs():
    from hypothesis import strategies as st

    # durations of whole microseconds plus a half: never exactly on a millisecond boundary,
    # where float rounding (not the student's rule) would decide the billed millisecond
    return st.tuples(
        st.integers(min_value=0, max_value=50_000_000),
        st.integers(min_value=100, max_value=5_000_000).map(lambda us: (us + 0.5) / 1e6),
        st.integers(min_value=128, max_value=10_240),
    )


LAMBDA_HINT = (
    "Memory buys CPU in proportion (the share of one vCPU at 1,769 MB); a single thread cannot "
    "go faster than one vCPU; each request's duration is billed in whole milliseconds, rounded "
    "up; GB is MB / 1024; add the per-request fee."
)
LAMBDA_KEYS = ("vcpu_share", "billed_ms", "usd")


def _bill_of(fn: Callable[..., Any], *args: Any) -> dict[str, float]:
    got = run_student_function(fn, *args, name="lambda_bill_at_memory")
    expect(
        isinstance(got, dict) and all(k in got for k in LAMBDA_KEYS),
        f"lambda_bill_at_memory{args} returned {str(got)[:60]}, not a dict with "
        f"{', '.join(LAMBDA_KEYS)}.",
        "Return a dict with the three keys the lab names.",
    )
    return {
        k: call_number(lambda k=k: got[k], name=f"lambda_bill_at_memory(...)[{k!r}]")
        for k in LAMBDA_KEYS
    }


def _public_lambda(fn: Callable[..., Any]) -> CheckPassed:
    """Whole billed milliseconds; the vCPU share in proportion to memory; the bill in
    proportion to requests, zero without any; more CPU time never cheaper, more memory
    never slower."""
    rng = public_rng(7)
    for _ in range(30):
        requests = rng.randint(1, 5_000_000)
        cpu = (rng.randint(100, 2_000_000) + 0.5) / 1e6
        mb = rng.randint(128, 5000)
        out = _bill_of(fn, requests, cpu, mb)
        billed = out["billed_ms"]
        expect(
            billed >= 1 and billed == int(billed),
            f"billed_ms = {billed:g} for {cpu:g} s of CPU at {mb} MB: not a whole millisecond.",
            LAMBDA_HINT,
        )
        expect(out["usd"] > 0, f"usd = {out['usd']:g} for {requests} requests.", LAMBDA_HINT)
        twice = _bill_of(fn, 2 * requests, cpu, mb)
        expect(
            math.isclose(twice["usd"], 2 * out["usd"], rel_tol=1e-6),
            "Twice the requests should cost twice as much.",
            LAMBDA_HINT,
        )
        more = _bill_of(fn, requests, cpu, 2 * mb)
        expect(
            math.isclose(more["vcpu_share"], 2 * out["vcpu_share"], rel_tol=1e-6),
            "Twice the memory should buy twice the vCPU share.",
            LAMBDA_HINT,
        )
        expect(
            more["billed_ms"] <= billed,
            "More memory (more CPU) made a request take longer.",
            LAMBDA_HINT,
        )
        longer = _bill_of(fn, requests, 2 * cpu, mb)
        expect(longer["usd"] >= out["usd"], "More CPU time per request made the bill smaller.",
               LAMBDA_HINT)  # fmt: skip
        same_twice(fn, (requests, cpu, mb), run_student_function(fn, requests, cpu, mb),
                   name="lambda_bill_at_memory")  # fmt: skip
    none = _bill_of(fn, 0, 0.05, 1024)
    expect(none["usd"] == 0, f"With no requests the bill is {none['usd']:g} USD.", LAMBDA_HINT)
    return public_pass("lambda_bill_at_memory bills whole milliseconds, scales with requests "
                       "and memory, and costs nothing without requests")  # fmt: skip


@points(2)
def check_lambda_bill_at_memory(fn: Callable[..., Any]) -> CheckPassed:
    """``fn(requests, cpu_seconds, memory_mb)`` -> vCPU share, billed ms and USD for a month."""
    refuse_kit_function(
        fn, _kit_functions(), name="lambda_bill_at_memory", sample_args=(1000, 0.05, 512)
    )
    ref = _ref()
    if ref is None:
        return _public_lambda(fn)
    tried = agrees_with_reference(
        fn,
        ref.lambda_bill_at_memory,
        _lambda_inputs(),
        name="lambda_bill_at_memory",
        hint=LAMBDA_HINT,
        edge_cases=[(1_000_000, 0.05, 1769), (3, 0.0101, 128), (0, 1.0, 3008), (10, 0.2, 10_240)],
    )
    return CheckPassed(f"lambda_bill_at_memory follows AWS's rules on {tried} cases.")


# ---------------------------------------------------------------- 8. break-even
@points(1)
def check_break_even(
    requests_per_month: Any, hourly_usd: float, cpu_seconds: float, memory_mb: float
) -> CheckPassed:
    """The monthly request count where Lambda costs as much as an always-on instance."""
    hint = (
        "Find the volume at which the always-on monthly bill (hourly x 730) equals the Lambda "
        "bill at that memory size (use your own function)."
    )
    ref = _ref()
    if ref is None:
        value = number(requests_per_month, name="requests_per_month")
        expect(value > 0, f"requests_per_month = {value:g} is not a positive volume.", hint)
        return public_pass(f"requests_per_month = {value:.4g} is a positive volume")
    return check_close(
        requests_per_month,
        ref.break_even_requests(hourly_usd, cpu_seconds, memory_mb),
        rel=0.01,
        name="requests_per_month",
        hint=hint,
    )
