"""Checks for lab 02 (build and load-test an inference endpoint).

The student writes the request validation, the handler, the load-test summary and the
Lambda bill at a memory size; each is compared with a reference kept here on random inputs.
Measured figures are checked against what the server itself counted (``/metrics``), so an
invented number fails, and no check fails correct code because the machine is busy: the
batching check tests what the server did (more than one text per model call) and only
reports the speed-up.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from infralab.checks import (
    CheckFailed,
    CheckPassed,
    agrees_with_reference,
    check_close,
    check_type,
    points,
    refuse_kit_function,
    run_beside,
)
from infralab.costs.pricing import HOURS_PER_MONTH
from infralab.costs.serverless import LAMBDA_PRICE_PER_GB_S, LAMBDA_PRICE_PER_MILLION_REQUESTS

MAX_TEXTS = 64
MAX_CHARS = 2000
# AWS Lambda: memory sets the CPU. "At 1,769 MB, a function has the equivalent of one vCPU
# (one vCPU-second of credits per second)"; the share scales linearly with memory.
# Source: https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html (read 2026-11).
LAMBDA_MB_PER_VCPU = 1769
# Prices from the kit's price data (datasets/pricing/serverless_cpu.csv), read once by
# infralab.costs.pricing; the formula below stays a reference kept here.
LAMBDA_USD_PER_GB_S = LAMBDA_PRICE_PER_GB_S
LAMBDA_USD_PER_MILLION_REQUESTS = LAMBDA_PRICE_PER_MILLION_REQUESTS
LAUNCH_PROBES = 2  # launch() sends a cold and a warm request before handing over the server


# ---------------------------------------------------------------- references (kept here)
def _reference_validate(body: Any) -> list[str]:
    if not isinstance(body, dict) or "input" not in body:
        raise ValueError("bad body")
    texts = body["input"]
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, list) or not texts or len(texts) > MAX_TEXTS:
        raise ValueError("bad input")
    for text in texts:
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_CHARS:
            raise ValueError("bad text")
    return texts


def _reference_summary(latencies_s: list[float], wall_s: float) -> dict[str, float] | None:
    if not latencies_s:
        return None
    ms = np.asarray(latencies_s, dtype=float) * 1e3
    out = {f"p{q}_ms": float(np.percentile(ms, q)) for q in (50, 95, 99)}
    out["throughput_rps"] = len(latencies_s) / wall_s
    return out


def _reference_lambda(requests: int, cpu_seconds: float, memory_mb: float) -> dict[str, float]:
    share = memory_mb / LAMBDA_MB_PER_VCPU
    duration_s = cpu_seconds / min(share, 1.0)  # one thread cannot use more than one vCPU
    billed_ms = max(1, math.ceil(round(duration_s * 1000, 6)))
    gb_s = requests * billed_ms / 1000 * memory_mb / 1024
    usd = gb_s * LAMBDA_USD_PER_GB_S + requests / 1e6 * LAMBDA_USD_PER_MILLION_REQUESTS
    return {"vcpu_share": share, "billed_ms": billed_ms, "usd": usd}


def _kit_functions() -> list[Callable[..., Any]]:
    from infralab.costs import serverless
    from infralab.serving import loadgen

    return [
        serverless.lambda_bill,
        serverless.billed_duration,
        serverless.break_even_requests,
        loadgen.summarize,
        _reference_validate,
        _reference_summary,
        _reference_lambda,
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
        outcome(_reference_validate),
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
    want = record["total_s"] / record["warm_response_s"]
    check_close(slowdown, want, rel=1e-6, name="slowdown", hint="Total cold start / warm request.")
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


@points(2)
def check_load_summary(load_summary: Callable[..., Any]) -> CheckPassed:
    """p50/p95/p99 in ms and throughput per second, on random latency lists."""
    refuse_kit_function(
        load_summary, _kit_functions(), name="load_summary", sample_args=([0.01, 0.02], 1.0)
    )
    tried = agrees_with_reference(
        load_summary,
        _reference_summary,
        _summary_inputs(),
        name="load_summary",
        hint="Latencies arrive in seconds; percentiles go out in milliseconds (numpy's "
        "default, linear interpolation); throughput counts requests per second of wall time; "
        "no requests means no summary.",
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
    """What batching did, from the server's own counters; the speed-up is reported, not judged.

    The ratio depends on what else the machine is doing (the load generator shares the same
    cores), so a low one is explained rather than failed: correct code never fails here.
    """
    from infralab.serving.loadgen import LoadResult

    check_type(result, LoadResult, name="result")
    counted = _server_requests(metrics)
    ok = int(result.summary["ok"])
    sent = int(result.summary["requests"])
    if not ok <= counted <= sent + LAUNCH_PROBES:
        raise CheckFailed(
            f"Your load test reports {ok} answered requests, but this server counted {counted}.",
            "Measure with closed_loop against this server, and read server.metrics() after it.",
        )
    wall = float(result.summary["wall_s"])
    try:
        rps = float(batched_rps)
    except (TypeError, ValueError):
        raise CheckFailed("batched_rps should be a number.", "Take it from the result.") from None
    if wall <= 0 or not math.isclose(rps, ok / wall, rel_tol=1e-6):
        raise CheckFailed(
            f"batched_rps = {rps:.4g} is not the throughput of your load test.",
            "Throughput is answered requests divided by the wall time of that run.",
        )
    if metrics.get("mode") != "batching":
        raise CheckFailed(
            "This server ran one model call per request: batching was off.",
            "Start it with factory_kwargs={'batching': True, ...}.",
        )
    texts, calls = int(metrics.get("texts", 0)), int(metrics.get("model_calls", 0))
    if calls == 0 or texts / calls <= 1.0:
        raise CheckFailed(
            "The server never put more than one text into a model call.",
            "Batches form only when requests overlap: load it with many concurrent clients.",
        )
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


@points(2)
def check_lambda_bill_at_memory(fn: Callable[..., Any]) -> CheckPassed:
    """``fn(requests, cpu_seconds, memory_mb)`` -> vCPU share, billed ms and USD for a month."""
    refuse_kit_function(
        fn, _kit_functions(), name="lambda_bill_at_memory", sample_args=(1000, 0.05, 512)
    )
    tried = agrees_with_reference(
        fn,
        _reference_lambda,
        _lambda_inputs(),
        name="lambda_bill_at_memory",
        hint="Memory buys CPU in proportion (the share of one vCPU at 1,769 MB); a single "
        "thread cannot go faster than one vCPU; each request's duration is billed in whole "
        "milliseconds, rounded up; GB is MB / 1024; add the per-request fee.",
        edge_cases=[(1_000_000, 0.05, 1769), (3, 0.0101, 128), (0, 1.0, 3008), (10, 0.2, 10_240)],
    )
    return CheckPassed(f"lambda_bill_at_memory follows AWS's rules on {tried} cases.")


# ---------------------------------------------------------------- 8. break-even
@points(1)
def check_break_even(
    requests_per_month: Any, hourly_usd: float, cpu_seconds: float, memory_mb: float
) -> CheckPassed:
    """The monthly request count where Lambda costs as much as an always-on instance."""
    per_request = _reference_lambda(1_000_000, cpu_seconds, memory_mb)["usd"] / 1e6
    expected = hourly_usd * HOURS_PER_MONTH / per_request
    return check_close(
        requests_per_month,
        expected,
        rel=0.01,
        name="requests_per_month",
        hint="Divide the always-on monthly bill (hourly x 730) by what one request costs on "
        "Lambda at that memory size (use your own function).",
    )
