"""The step engine: rows of one preallocated KV cache, sequences joining and leaving between
decode steps (continuous batching).

Each sequence owns one row of a cache ``[batch, kv_heads, max_len, head_dim]``; ONNX
Runtime's GroupQueryAttention reads and writes that buffer in place (the same memory is bound
as ``past`` input and ``present`` output), so no step copies the cache. A prompt is
prefilled alone into its row (a zero-copy view of the batch buffer on CPU), then every decode
step runs all active rows together, each at its own length (``seqlens_k``). A finished row is
replaced by the last active one, so the batch stays dense.

The engine drives a model through three calls (:class:`StepModel`): prefill a sequence into a
row, run one forward pass, accept a sampled token. :class:`infralab.engines.models.Generator` is one.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import numpy as np

from infralab.engines.models.decode_sequence import (
    EngineError,
    GenerationError,
    SeqState,
    sample_token,
)


class StepModel(Protocol):
    """What the engine needs of a model (the ``Generator`` provides it)."""

    config: Any
    device: str
    kv_dtype: Any

    def _prefill(self, seq: SeqState, kv_row: list[Any]) -> None: ...

    def _run(
        self, ids: np.ndarray, seqlens: np.ndarray, total: int, kv: list[Any]
    ) -> np.ndarray: ...

    def _accept(self, seq: SeqState, token: int, now: float) -> None: ...


class _Cache:
    """The KV buffers of one batch: numpy-backed on CPU (rows are zero-copy views)."""

    def __init__(self, gen: StepModel, capacity: int, max_len: int) -> None:
        import onnxruntime as ort

        self.gen, self.capacity, self.max_len = gen, capacity, max_len
        cfg = gen.config
        shape = (capacity, cfg.kv_heads, max_len, cfg.head_dim)
        self.names = [
            (f"past_key_values.{i}.{k}", f"present.{i}.{k}")
            for i in range(cfg.layers)
            for k in ("key", "value")
        ]
        self.on_cpu = gen.device == "cpu"
        if self.on_cpu:  # np.zeros maps zero pages lazily: memory grows with tokens used
            self.arrays = [np.zeros(shape, dtype=gen.kv_dtype) for _ in self.names]
        else:
            self.values = [
                ort.OrtValue.ortvalue_from_numpy(np.zeros(shape, gen.kv_dtype), "cuda", 0)
                for _ in self.names
            ]
        self._views: dict[tuple[int, int], list[Any]] = {}

    def rows(self, start: int, stop: int) -> list[Any]:
        """OrtValues over rows [start, stop) of every buffer (views on CPU: no copy)."""
        import onnxruntime as ort

        key = (start, stop)
        if key not in self._views:
            if self.on_cpu:
                self._views[key] = [
                    ort.OrtValue.ortvalue_from_numpy(a[start:stop]) for a in self.arrays
                ]
            elif (start, stop) == (0, self.capacity):
                self._views[key] = self.values
            else:
                raise EngineError("device caches bind whole batches only")
        return self._views[key]

    def move_row(self, src: int, dst: int, length: int) -> None:
        """Copy the first ``length`` positions of row ``src`` into row ``dst`` (CPU)."""
        for a in self.arrays:
            a[dst, :, :length] = a[src, :, :length]

    def put_row(self, dst: int, row_values: list[Any], length: int) -> None:
        """Place a prefilled single-row device cache into row ``dst`` (via the host)."""
        import onnxruntime as ort

        for i, (full, row) in enumerate(zip(self.values, row_values, strict=True)):
            host = full.numpy()
            host[dst, :, :length] = row.numpy()[0, :, :length]
            self.values[i] = ort.OrtValue.ortvalue_from_numpy(host, "cuda", 0)
        self._views.clear()


class Engine:
    """Rows of one KV cache; sequences join (``admit``) and leave between decode steps."""

    def __init__(self, gen: StepModel, capacity: int, max_len: int) -> None:
        if capacity < 1:
            raise GenerationError("capacity must be at least 1")
        self.gen = gen
        self.capacity = capacity
        self.max_len = max_len
        self.cache = _Cache(gen, capacity, max_len)
        self.active: list[SeqState] = []  # row i holds active[i]

    @property
    def free(self) -> int:
        return self.capacity - len(self.active)

    def admit(self, seq: SeqState) -> None:
        """Prefill ``seq`` into the next free row (its first token is sampled here)."""
        if not self.free:
            raise EngineError("no free row in this batch")
        if len(seq.prompt_ids) + seq.max_tokens > self.max_len:
            raise GenerationError(f"prompt + max_tokens exceeds this batch's {self.max_len} tokens")
        row = len(self.active)
        if self.cache.on_cpu or self.capacity == 1:
            self.gen._prefill(seq, self.cache.rows(row, row + 1))
        else:
            single = _Cache(self.gen, 1, self.max_len)
            self.gen._prefill(seq, single.rows(0, 1))
            self.cache.put_row(row, single.values, seq.length)
        if not seq.done:
            self.active.append(seq)

    def step(self) -> int:
        """One decode step for every active row; returns the tokens it produced."""
        n = len(self.active)
        if n == 0:
            return 0
        cpu = self.cache.on_cpu
        rows = n if cpu else self.capacity
        ids = np.zeros((rows, 1), dtype=np.int64)
        seqlens = np.zeros(rows, dtype=np.int32)
        for i, s in enumerate(self.active):
            ids[i, 0] = s.out_ids[-1]
            seqlens[i] = s.length  # past length = index where the new token's K/V goes
        total = int(seqlens[:n].max()) + 1
        logits = self.gen._run(ids, seqlens, total, self.cache.rows(0, rows))
        now = time.perf_counter()
        for i, s in enumerate(self.active):
            s.length += 1
            self.gen._accept(s, sample_token(logits[i], s.temperature, s.top_p, s.rng), now)
        self._compact()
        return n

    def _compact(self) -> None:
        """Drop finished rows, moving the last active row into each gap (one row copy)."""
        while self.active and self.active[-1].done:
            self.active.pop()
        i = 0
        while i < len(self.active):
            if self.active[i].done:
                last = len(self.active) - 1
                moved = self.active[last]
                if self.cache.on_cpu:
                    self.cache.move_row(last, i, moved.length)
                else:
                    self._swap_device(last, i)
                self.active[i] = moved
                self.active.pop()
                while self.active and self.active[-1].done:
                    self.active.pop()
            i += 1

    def _swap_device(self, src: int, dst: int) -> None:
        import onnxruntime as ort

        for k, v in enumerate(self.cache.values):
            host = v.numpy()
            host[dst] = host[src]
            self.cache.values[k] = ort.OrtValue.ortvalue_from_numpy(host, "cuda", 0)
        self.cache._views.clear()
