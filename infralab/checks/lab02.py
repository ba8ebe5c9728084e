"""Checks for lab 02 (build and load-test an inference endpoint): validation, cold start,
percentiles, batching, the bill, and the serverless-or-always-on decision."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from infralab.checks import (
    CheckFailed,
    CheckPassed,
    check,
    check_close,
    check_type,
    run_student_function,
)


def _raises_value_error(fn: Callable[[Any], Any], body: Any) -> str | None:
    """The message of the ValueError ``fn(body)`` raises, or None if it raised nothing."""
    try:
        fn(body)
    except NotImplementedError:
        raise CheckFailed(
            "validate_request is still the placeholder.", "Replace `raise NotImplementedError`."
        ) from None
    except ValueError as exc:
        return str(exc) or "(empty message)"
    except Exception as exc:
        raise CheckFailed(
            f"validate_request({body!r:.60}) raised {type(exc).__name__}: {exc}",
            "Bad input should raise ValueError with a message; anything else becomes a 500.",
        ) from None
    return None


def check_validate_request(validate_request: Callable[[Any], list[str]]) -> CheckPassed:
    """Good bodies give a list of texts; each bad body raises ValueError with a useful message."""
    good = {
        '{"input": "hello"}': ({"input": "hello"}, ["hello"]),
        '{"input": ["a", "b"]}': ({"input": ["a", "b"]}, ["a", "b"]),
    }
    for label, (body, expected) in good.items():
        got = run_student_function(validate_request, body, name="validate_request")
        if got != expected:
            raise CheckFailed(
                f"validate_request({label}) returned {got!r}, expected {expected!r}.",
                "A single string becomes a one-item list; a list of strings is returned as is.",
            )
    bad = {
        "a body that is not a dict": ["input", "x"],
        "a body without 'input'": {"text": "hello"},
        "an empty list": {"input": []},
        "a list with a number": {"input": ["ok", 3]},
        "an empty string": {"input": ""},
        "a text over 2,000 characters": {"input": "x" * 2001},
        "more than 64 texts": {"input": ["t"] * 65},
    }
    for what, body in bad.items():
        message = _raises_value_error(validate_request, body)
        if message is None:
            raise CheckFailed(
                f"validate_request accepted {what}.",
                "Raise ValueError with a message that says what was wrong, e.g. "
                "raise ValueError(\"'input' is an empty list\").",
            )
        if len(message) < 10:
            raise CheckFailed(
                f"For {what} your message is only {message!r}.",
                "A client reads this message: say which field and which limit.",
            )
    return check(
        True,
        ok="validate_request accepts good input and explains every bad one.",
        problem="",
    )


def check_cold_start(cold_start: Any) -> CheckPassed:
    """The launcher's breakdown: a cold start that is slower than a warm request."""
    check_type(cold_start, dict, name="cold_start")
    for key in ("ready_s", "first_response_s", "warm_response_s", "total_s"):
        if not isinstance(cold_start.get(key), (int, float)):
            raise CheckFailed(
                f"cold_start has no number under {key!r}.",
                "Use the server's own record: server.cold_start after launch(...).",
            )
    return check(
        cold_start["total_s"] > cold_start["warm_response_s"],
        ok=f"A cold start took {cold_start['total_s']:.2f} s; a warm request "
        f"{1e3 * cold_start['warm_response_s']:.1f} ms "
        f"({cold_start['total_s'] / max(cold_start['warm_response_s'], 1e-6):.0f}x).",
        problem="Your cold start is not slower than a warm request: was the server really started fresh?",
        hint="Start it with launch(...) inside the cell, not a server that was already running.",
    )


def check_percentiles(percentiles_ms: Callable[[Any], dict]) -> CheckPassed:
    """The student's p50/p95/p99 (ms, from seconds) agree with numpy's on known data."""
    rng = np.random.default_rng(2)
    latencies_s = list(rng.lognormal(mean=-3.5, sigma=0.6, size=1000))
    got = run_student_function(percentiles_ms, latencies_s, name="percentiles_ms")
    check_type(got, dict, name="percentiles_ms(...)")
    for q in (50, 95, 99):
        key = f"p{q}"
        if key not in got:
            raise CheckFailed(
                f"The result has no key {key!r}.", 'Return {"p50": ..., "p95": ..., "p99": ...}.'
            )
        expected = float(np.percentile(np.asarray(latencies_s) * 1e3, q))
        value = got[key]
        if isinstance(value, (int, float)) and abs(value - expected / 1e3) < 1e-9:
            raise CheckFailed(
                f"{key} is in seconds.", "Multiply by 1000: the result is in milliseconds."
            )
        check_close(
            value, expected, rel=0.02, name=key, hint="np.percentile(latencies_ms, q) does it."
        )
    if not got["p50"] <= got["p95"] <= got["p99"]:
        raise CheckFailed("p50 <= p95 <= p99 does not hold.", "Did you sort or mix up the keys?")
    return CheckPassed("Your percentiles match numpy's on 1,000 latencies.")


def check_sweep(sweep: Any) -> CheckPassed:
    """A concurrency sweep with at least three levels, latencies that grow with load."""
    import pandas as pd

    check_type(sweep, pd.DataFrame, name="sweep")
    needed = {"concurrency", "throughput_rps", "p50_ms", "p99_ms", "errors"}
    missing = needed - set(sweep.columns)
    if missing:
        raise CheckFailed(
            f"sweep lacks the columns {sorted(missing)}.",
            "Use loadgen.concurrency_sweep(...), which returns them.",
        )
    if sweep["concurrency"].nunique() < 3:
        raise CheckFailed(
            "sweep has fewer than three concurrency levels.", "Try levels=(1, 4, 16)."
        )
    if int(sweep["errors"].sum()) > 0:
        raise CheckFailed(
            f"{int(sweep['errors'].sum())} requests failed during the sweep.",
            "Look at the server's log (server.log_tail()) and lower the load.",
        )
    ordered = sweep.sort_values("concurrency")
    low, high = ordered.iloc[0], ordered.iloc[-1]
    return check(
        high["p50_ms"] >= low["p50_ms"] * 0.8,
        ok=f"From {low['concurrency']:.0f} to {high['concurrency']:.0f} clients: throughput "
        f"{low['throughput_rps']:.0f} -> {high['throughput_rps']:.0f} req/s, p99 "
        f"{low['p99_ms']:.0f} -> {high['p99_ms']:.0f} ms.",
        problem="Latency fell as concurrency rose, which a busy server cannot do: did each level run?",
        hint="Give every level the same number of requests and a time cap of a few seconds.",
    )


def check_batching_gain(naive_rps: Any, batched_rps: Any) -> CheckPassed:
    """Batching was measured next to naive on the same machine; report the ratio honestly."""
    for name, value in (("naive_rps", naive_rps), ("batched_rps", batched_rps)):
        if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise CheckFailed(
                f"{name} should be a positive number of requests per second, got {value!r}."
            )
    ratio = batched_rps / naive_rps
    return check(
        ratio > 0.9,
        ok=f"Batching gives {ratio:.2f}x the naive throughput on this machine.",
        problem=f"Batching gave only {ratio:.2f}x: slower than one call per request.",
        hint="Compare at the same concurrency (>= 16 clients); at 1 client there is nothing to batch.",
    )


def check_lambda_bill(monthly_lambda_bill: Callable[..., float]) -> CheckPassed:
    """The student's Lambda bill (1 ms rounding, per-request fee, no free tier) for two cases."""
    from infralab.costs.serverless import lambda_bill

    for args in ((3_000_000, 0.0123, 0.5), (250_000, 0.2, 1.0)):
        got = run_student_function(monthly_lambda_bill, *args, name="monthly_lambda_bill")
        expected = lambda_bill(*args)["total_usd"]
        unrounded = args[0] * args[1] * args[2] * 0.00001667 + args[0] / 1e6 * 0.20
        if (
            isinstance(got, (int, float))
            and abs(got - unrounded) < 1e-9
            and abs(got - expected) > 1e-9
        ):
            raise CheckFailed(
                "Your bill does not round durations up to whole milliseconds.",
                "Lambda bills each request's duration rounded up to 1 ms: math.ceil(duration * 1000) / 1000.",
            )
        check_close(
            got,
            expected,
            rel=0.005,
            name=f"monthly_lambda_bill{args}",
            hint="GB-seconds = requests x billed seconds x GB; add 0.20 USD per million requests.",
        )
    return CheckPassed("Your Lambda bill matches the published pricing rule.")


def check_break_even(
    requests_per_month: Any, hourly_usd: float, mean_duration_s: float, memory_gb: float
) -> CheckPassed:
    """The monthly request count where Lambda costs as much as an always-on instance."""
    from infralab.costs.serverless import break_even_requests

    expected = break_even_requests(hourly_usd, mean_duration_s, memory_gb)
    return check_close(
        requests_per_month,
        expected,
        rel=0.01,
        name="requests_per_month",
        hint="Divide the always-on monthly bill (hourly x 730) by the Lambda cost of one request.",
    )


def check_handler(app: Any) -> CheckPassed:
    """The student's FastAPI app: 200 with one vector per text, 4xx with a message for bad input."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    check_type(app, FastAPI, name="app")
    routes = {getattr(r, "path", None) for r in app.routes}
    if "/embed" not in routes:
        raise CheckFailed(
            "app has no route /embed.", 'Decorate your handler with @app.post("/embed").'
        )
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.post("/embed", json={"input": ["one", "two"]})
        if r.status_code != 200:
            raise CheckFailed(
                f"A good request got HTTP {r.status_code}: {r.text[:200]}",
                "Return {'embeddings': vectors.tolist()} for valid input.",
            )
        vectors = r.json().get("embeddings") if isinstance(r.json(), dict) else None
        if not isinstance(vectors, list) or len(vectors) != 2:
            raise CheckFailed(
                "A request with two texts should give 'embeddings' with two vectors.",
                "Call embedder.embed(texts) and return .tolist() under the key 'embeddings'.",
            )
        for body in ({"input": []}, {"text": "x"}, ["x"]):
            r = client.post("/embed", json=body)
            if r.status_code >= 500:
                raise CheckFailed(
                    f"The body {body!r} crashed the handler (HTTP {r.status_code}).",
                    "Catch the ValueError from validate_request and raise HTTPException(400, str(exc)).",
                )
            if not 400 <= r.status_code < 500:
                raise CheckFailed(f"The body {body!r} got HTTP {r.status_code}, not a 4xx.")
            text = r.text
            if len(text) < 20:
                raise CheckFailed(
                    f"The 4xx for {body!r} says only {text!r}.",
                    "Put your message in the HTTPException.",
                )
    return CheckPassed(
        "Your handler answers good input with vectors and bad input with a 4xx and a message."
    )
