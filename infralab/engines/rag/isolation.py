"""Performance isolation: does one tenant saturating the model server slow another
tenant's cheap request, and does a limit help?

The article's GPU-contention point, measured on what this machine has: the cloud app and
the model server share two CPU cores. A *cheap request* is a retrieval-only ``/ask`` (embed
the question, search; no model call). Three phases, one run each:

1. ``idle``: the model server idle;
2. ``saturated``: another tenant keeps the model server busy (closed-loop chat requests);
3. ``saturated, pinned``: the same load, with the model server pinned to one core and the
   cloud app to the other (``os.sched_setaffinity`` on every thread of each process).

Pinning trades the model server's speed (one core instead of two) for the cloud app's
predictability; the run reports both sides. Timing depends on what else the machine runs:
the load average is recorded with the figures.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import numpy as np

from infralab.engines.rag.rag_errors import RagServiceError
from infralab.engines.serving.pinning import pin, unpin

CHAT_BODY = {
    "messages": [{"role": "user", "content": "Write a short paragraph about tea and rain."}],
    "max_tokens": 32,
}


def _probe(client: Any, key: str, question: str, n: int, gap_s: float) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = client.post(
            "/ask", headers={"X-API-Key": key}, json={"question": question, "generate": False}
        )
        if r.status_code != 200:
            raise RagServiceError(f"/ask answered {r.status_code}: {r.text[:200]}")
        out.append((time.perf_counter() - t0) * 1e3)
        time.sleep(gap_s)
    return out


def _stats(ms: list[float]) -> dict[str, float]:
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "n": len(ms),
    }


def isolation_run(
    probes: int = 40, gap_s: float = 0.1, concurrency: int = 8, variant: str = "q4"
) -> dict[str, Any]:
    """The three phases above; the chat load's throughput is reported per phase too."""
    from fastapi.testclient import TestClient

    from infralab.engines.rag.cloud_app import create_app
    from infralab.engines.serving.launcher import launch
    from infralab.engines.serving.loadgen import closed_loop

    if len(os.sched_getaffinity(0)) < 2:
        return {"skipped": "needs at least two usable CPU cores to pin apart"}
    question = "How long do we keep the raw audio of recorded meetings?"
    result: dict[str, Any] = {"cores": sorted(os.sched_getaffinity(0)), "probes": probes}
    with launch(
        "infralab.engines.serving.chat:create_chat_app", factory_kwargs={"variant": variant}
    ) as llm:
        app = create_app({"k-saas": "saas"}, llm_url=llm.url + "/v1")
        with TestClient(app) as client:
            _probe(client, "k-saas", question, 5, 0.0)  # warm the embedder
            result["idle"] = _stats(_probe(client, "k-saas", question, probes, gap_s))
            for phase, pinned in (("saturated", False), ("saturated, pinned", True)):
                old: dict[int, set[int]] = {}
                if pinned:
                    cores = sorted(os.sched_getaffinity(0))
                    old = pin(llm.pid, {cores[1]}) | pin(os.getpid(), {cores[0]})
                box: dict[str, Any] = {}
                seconds = probes * (gap_s + 0.1) + 5

                def load(box: dict[str, Any] = box, seconds: float = seconds) -> None:
                    box["r"] = closed_loop(
                        llm.url + "/v1/chat/completions",
                        CHAT_BODY,
                        concurrency,
                        total_requests=100_000,
                        max_seconds=seconds,
                        timeout_s=120,
                    )

                th = threading.Thread(target=load, daemon=True)
                th.start()
                time.sleep(3)  # let the batch fill
                try:
                    ms = _probe(client, "k-saas", question, probes, gap_s)
                finally:
                    th.join()
                    unpin(old)
                summary = box["r"].summary if "r" in box else {}
                result[phase] = _stats(ms) | {
                    "chat_requests_per_s": summary.get("throughput_rps"),
                    "chat_p50_ms": summary.get("p50_ms"),
                }
    result["load_average_1m"] = round(os.getloadavg()[0], 2)
    return result
