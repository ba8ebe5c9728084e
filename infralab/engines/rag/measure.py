"""What lesson 06 measures live: search time per tenant layout and the GPU generation estimate.

:func:`measure_layouts` times the two tenant layouts of the vector store at growing sizes;
:func:`gpu_estimate` turns the token counts of ``/ask`` answers into generation time on the
kit's *recorded* GPU run (:func:`gpu_generate_ms`). ``python -m infralab bench rag`` uses
them too; this module only measures and estimates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from infralab.engines.rag.rag_errors import RagError

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "GPU_GENERATION_RECORD",
    "gpu_estimate",
    "gpu_generate_ms",
    "mean_usage",
    "measure_layouts",
]


GPU_GENERATION_RECORD = "generation_gpu_h200"  # a recorded run, read by results.recorded


def gpu_generate_ms(
    prompt_tokens: float, new_tokens: float, record: Mapping[str, Any] | None = None
) -> tuple[float, str]:
    """Generation time on a GPU estimated from the kit's *recorded* GPU run of the same
    model (datasets/benchmarks/generation_gpu_h200.json): time to first token at this
    prompt length (interpolated) plus ``new_tokens`` at the batch-1 decode rate.
    Returns (ms, where it came from); raises FileNotFoundError without a record."""
    from infralab.core import results

    if prompt_tokens < 0 or new_tokens < 0:
        raise RagError(
            "token counts must be >= 0.",
            hint="Pass prompt_tokens and new_tokens as counts (0 or more), e.g. 500 and 120.",
        )
    if record is None:
        record = results.recorded(GPU_GENERATION_RECORD)
    rows = sorted(record["ttft_vs_prompt"]["rows"], key=lambda r: r["prompt_tokens"])
    ttft_s = float(
        np.interp(prompt_tokens, [r["prompt_tokens"] for r in rows], [r["ttft_s"] for r in rows])
    )
    decode = float(record["decode_tokens_per_s"])
    gpu = record.get("machine", {}).get("gpu", "GPU").split(",")[0]
    when = str(record.get("date", record.get("measured_at", "undated")))[:10]
    return (ttft_s + new_tokens / decode) * 1e3, f"estimated from the recorded {gpu} run ({when})"


def measure_layouts(
    sizes: Sequence[int] = (600, 1800, 4800),
    *,
    tenants: Sequence[str] = ("saas", "lawfirm", "web3"),
    queries: int = 10,
    dim: int = 384,
    seed: int = 0,
) -> pd.DataFrame:
    """Search time per query for the two tenant layouts at growing store sizes.

    Synthetic unit vectors: this measures the store's work, not retrieval quality. In
    qdrant-client's local mode the ``shared`` layout checks the tenant filter in Python for
    every point, so its time grows with the whole store; ``per_tenant`` searches one tenant's
    collection without a filter. (A Qdrant server would use the tenant payload index.)
    """
    import time

    from infralab.core.timing import percentiles
    from infralab.engines.rag.chunking import Chunk
    from infralab.engines.rag.vector_store import TenantVectorStore

    rng = np.random.default_rng(seed)
    rows = []
    for n in tqdm(list(sizes), desc="layouts", leave=False):
        vecs = rng.standard_normal((n, dim)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        chunks = [
            Chunk(f"x-{i}#0", f"x-{i}", tenants[i % len(tenants)], "", "", 0) for i in range(n)
        ]
        qs = rng.standard_normal((queries, dim)).astype(np.float32)
        for layout in ("shared", "per_tenant"):
            store = TenantVectorStore(layout=layout)  # type: ignore[arg-type]
            store.add(chunks, vecs)
            samples = []
            for i, q in enumerate(qs):
                t0 = time.perf_counter()
                store.search(tenants[i % len(tenants)], q, k=5)
                samples.append(time.perf_counter() - t0)
            store.close()
            pct = percentiles(samples, (50, 95))
            rows.append(
                {
                    "layout": layout,
                    "points": n,
                    "p50_ms": pct["p50"] * 1e3,
                    "p95_ms": pct["p95"] * 1e3,
                }
            )
    return pd.DataFrame(rows)


def mean_usage(answers: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Mean prompt and completion tokens over ``/ask`` answers that called the model."""
    used = [a["usage"] for a in answers if a.get("usage")]
    if not used:
        return {}
    return {k: float(np.mean([u[k] for u in used if k in u])) for k in used[0]}


def gpu_estimate(answers: Sequence[Mapping[str, Any]]) -> tuple[dict[str, float], str]:
    """``({"generate": ms}, note)`` for these answers' mean token counts on the recorded
    GPU run, or ``({}, reason)`` when there is no usage or no record."""
    usage = mean_usage(answers)
    if "prompt_tokens" not in usage or "completion_tokens" not in usage:
        return {}, "no token counts in the answers"
    try:
        ms, note = gpu_generate_ms(usage["prompt_tokens"], usage["completion_tokens"])
    except FileNotFoundError as exc:
        return {}, str(exc)
    return {"generate": ms}, note
