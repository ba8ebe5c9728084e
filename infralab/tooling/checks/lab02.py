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
The judgements behind these checks live beside them: ``endpoint_request_judges`` (request
bodies, validation), ``batcher_judges`` (the micro-batcher) and ``summary_bill_judges`` (load
summary, Lambda bill); this module is the list of public checks.
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
    check_close,
    check_type,
    expect,
    number,
    points,
    public_pass,
    refuse_kit_function,
    run_beside,
)
from infralab.tooling.checks.batcher_judges import (
    _judge_batcher,
    _plans,
)
from infralab.tooling.checks.endpoint_request_judges import (
    MAX_CHARS,
    _bodies,
    _exchange,
    _public_validate,
    _route_paths,
    _validate_outcome,
)
from infralab.tooling.checks.summary_bill_judges import (
    LAMBDA_HINT,
    SUMMARY_HINT,
    _lambda_inputs,
    _public_lambda,
    _public_summary,
    _summary_inputs,
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


# ---------------------------------------------------------------- 2. handler


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
