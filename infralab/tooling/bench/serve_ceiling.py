"""The ceiling ``bench serve`` holds the API against: the model alone, in-process.

Why apart from the HTTP runs: what batching behind HTTP can reach is bounded by what the
model does alone in full batches (no HTTP, no JSON, no event loop), and on the same cores
by what the load generator leaves of them. These measure that ceiling and the bound;
:mod:`infralab.tooling.bench.serve` runs the API and compares.
"""

from __future__ import annotations

import time
from typing import Any

from infralab.core.errors import InfralabError
from infralab.engines.serving.loadgen import TEXTS


class BoundInputError(ValueError, InfralabError):
    """The same-machine bound was given figures it cannot be computed from."""

    hint = (
        "Pass the measured ceiling (texts/s), the cores used, and the CPU ms per text of the "
        "model and per request of the load generator, as the benchmark measures them."
    )


def client_bound(
    ceiling_texts_per_s: float, model_cpu_ms: float, client_cpu_ms: float, cores: float
) -> float:
    """The most of the model-alone ceiling any server could reach here with no overhead.

    Each text costs the model ``model_cpu_ms`` of CPU (measured at the ceiling) and the load
    generator, on the same cores, ``client_cpu_ms`` per request; the cores' CPU-seconds
    cap the throughput at ``cores / (model + client)``.
    """
    if ceiling_texts_per_s <= 0 or cores <= 0 or model_cpu_ms <= 0 or client_cpu_ms < 0:
        raise BoundInputError(
            "need a positive ceiling, core count and model CPU, and a client CPU >= 0"
        )
    cap = 1e3 * cores / (model_cpu_ms + client_cpu_ms)
    return min(1.0, cap / ceiling_texts_per_s)


def model_alone(
    variant: str = "int8", threads: int | None = None, max_batch_size: int = 32
) -> tuple[Any, list[str]]:
    """The in-process embedder and one full batch that the ceiling measurements share."""
    from infralab.engines.models.encoder import Embedder

    emb = Embedder(variant=variant, provider="cpu", batch_size=max_batch_size, threads=threads)
    return emb, (TEXTS * (max_batch_size // len(TEXTS) + 1))[:max_batch_size]


def ceiling_probe(model: tuple[Any, list[str]]) -> Any:
    """A callable: the model alone's texts/s in full batches (``model`` from model_alone)."""
    from infralab.core.timing import measure

    emb, batch = model
    emb.embed(batch)

    def probe() -> float:
        full = measure(
            lambda: emb.embed(batch), items_per_call=len(batch), warmup=1, repeats=9, max_time_s=2
        )
        return full.items_per_s

    return probe


def model_ceiling(
    variant: str = "int8",
    threads: int | None = None,
    max_batch_size: int = 32,
    model: tuple[Any, list[str]] | None = None,
) -> dict[str, float]:
    """The model alone, in-process: texts/s one at a time vs in batches of ``max_batch_size``.

    This bounds what batching can gain behind HTTP: the API's ratio can approach it only if
    serving overhead is small next to the model.
    """
    from infralab.core.timing import measure

    emb, batch = model or model_alone(variant, threads, max_batch_size)
    counter = iter(range(10**9))
    one = measure(lambda: emb.embed([TEXTS[next(counter) % len(TEXTS)]]), repeats=50, max_time_s=3)
    cpu_before = time.process_time()
    full = measure(
        lambda: emb.embed(batch), items_per_call=len(batch), warmup=2, repeats=5, max_time_s=3
    )
    cpu_s = time.process_time() - cpu_before
    texts = (2 + len(full.seconds)) * len(batch)  # the warm-up calls used the CPU too
    return {
        "texts_per_s_batch_1": one.items_per_s,
        "texts_per_s_batch_full": full.items_per_s,
        "ratio": full.items_per_s / one.items_per_s,
        # CPU (all threads) per text in full batches: what the model alone costs the cores
        "cpu_ms_per_text_batch_full": 1e3 * cpu_s / texts if texts else None,
    }
