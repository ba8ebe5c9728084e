"""Text generation on the exported decoder: greedy and sampled, streamed, batched, measured.

Why a step engine instead of one ``generate`` loop: the same code serves one prompt, a batch
of prompts of different lengths and an API server whose requests join a running batch
(continuous batching). Each sequence owns one row of a preallocated KV cache
``[batch, kv_heads, max_len, head_dim]``; ONNX Runtime's GroupQueryAttention reads and
writes that buffer in place (the same memory is bound as ``past`` input and ``present``
output), so no step copies the cache. A prompt is prefilled alone into its row (a zero-copy
view of the batch buffer on CPU), then every decode step runs all active rows together,
each at its own length (``seqlens_k``). A finished row is replaced by the last active one,
so the batch stays dense.

Every call reports what the token economics lesson prices: prompt tokens, time to first
token (TTFT), prefill and decode tokens per second, and the bytes of KV cache in use.

Size: one module because the step engine, the sampler, the chat-template encoding and the
streaming API share the KV-cache layout; splitting them would spread one invariant (one row
per sequence, updated in place) over several files.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from infralab.engines.models import decoder

STOP_TOKENS = ("<|im_end|>", "<|endoftext|>")
# Below this temperature sampling is greedy: the softmax is already a one-hot to float64
# precision, and dividing by a subnormal (5e-324) would overflow to inf and NaN.
GREEDY_BELOW = 1e-4
_SLOT = "\x00infralab-content-{}\x00"
_SLOT_RE = re.compile("\x00infralab-content-(\\d+)\x00")
Prompt = str | list[dict[str, str]] | list[int]


@dataclass
class GenerationResult:
    """One completion and how long it took."""

    text: str
    token_ids: list[int]
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" (stop token or string) or "length" (max_tokens reached)
    ttft_s: float  # request start to the first new token (tokenize + prefill + sample)
    prefill_tok_s: float
    decode_tok_s: float  # tokens after the first, per second of decoding
    total_s: float
    kv_cache_bytes: int  # KV cache holding this sequence's tokens at the end
    kv_bytes_per_token: int
    variant: str = ""
    provider: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BatchResult:
    """A batch of completions; the decode rate counts every sequence's tokens."""

    results: list[GenerationResult]
    batch_size: int
    decode_tok_s: float  # all sequences' decode tokens / wall time of the decode steps
    total_s: float
    decode_steps: int
    kv_cache_bytes: int  # peak bytes of KV cache in use

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["results"] = [r.to_dict() for r in self.results]
        return d


@dataclass
class _Seq:
    """One sequence in flight: its tokens, sampling state, stop rules and clocks."""

    prompt_ids: list[int]
    max_tokens: int
    temperature: float
    top_p: float
    rng: np.random.Generator
    stop: list[str]
    t_start: float
    out_ids: list[int] = field(default_factory=list)
    text: str = ""
    emitted: int = 0  # characters of text already streamed
    finish_reason: str | None = None
    t_prefill_done: float = 0.0
    t_first: float = 0.0
    t_last: float = 0.0
    on_piece: Any = None  # callback(piece: str) for streaming
    length: int = 0  # tokens in the KV cache
    ignore_eos: bool = False  # benchmarks: always produce max_tokens

    @property
    def done(self) -> bool:
        return self.finish_reason is not None


def _sample(logits: np.ndarray, temperature: float, top_p: float, rng: np.random.Generator) -> int:
    """Greedy at (near) temperature 0, else softmax with temperature and nucleus (top-p) cut."""
    if temperature < GREEDY_BELOW:
        return int(np.argmax(logits))
    z = logits.astype(np.float64)
    z = (z - z.max()) / temperature
    p = np.exp(z)
    p /= p.sum()
    if top_p < 1.0:
        order = np.argsort(-p)
        cum = np.cumsum(p[order])
        keep = order[: int(np.searchsorted(cum, top_p) + 1)]
        q = p[keep] / p[keep].sum()
        return int(keep[rng.choice(len(keep), p=q)])
    return int(rng.choice(len(p), p=p))


class _Cache:
    """The KV buffers of one batch: numpy-backed on CPU (rows are zero-copy views)."""

    def __init__(self, gen: Generator, capacity: int, max_len: int) -> None:
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
                raise RuntimeError("device caches bind whole batches only")
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


class Generator:
    """SmolLM2-135M-Instruct on ONNX Runtime: ``generate``, ``stream``, ``generate_batch``.

    ``variant``: ``"q4"`` (4-bit weights, fast) or ``"fp32"`` (reference accuracy). On CUDA the
    float16 twins (``q4f16``, ``fp16``) are used, because the CUDA attention kernel takes
    float16 only; ``model_variant`` says which. ``provider``: ``"cpu"``, ``"cuda"`` (raises
    with the reason when the GPU cannot run) or ``"auto"``.
    """

    def __init__(
        self,
        variant: str = "q4",
        provider: str = "cpu",
        *,
        threads: int | None = None,
        max_context: int = 2048,
    ) -> None:
        from infralab.core import runtime

        if variant not in decoder.CPU_VARIANTS:
            raise ValueError(f"variant must be 'q4' or 'fp32', not {variant!r}.")
        if provider not in ("cpu", "cuda", "auto"):
            raise ValueError(f"provider must be 'cpu', 'cuda' or 'auto', not {provider!r}.")
        self.config = decoder.config()
        if not isinstance(max_context, int) or not 16 <= max_context <= self.config.context:
            raise ValueError(f"max_context must be a whole number in 16..{self.config.context}.")
        if provider == "auto":
            provider = "cuda" if runtime.cuda_usable() else "cpu"
        self.variant = variant
        self.model_variant = (
            {"fp32": "fp16", "q4": "q4f16"}[variant] if provider == "cuda" else variant
        )
        # a token is some 800 small operators: the worker thread spins between them (a sleep
        # and wake-up each costs more than the work) and sleeps between tokens and requests
        self.session = runtime.make_session(
            decoder.build(self.model_variant), provider, threads=threads, spinning="run"
        )
        self.device = runtime.session_provider(self.session)
        self.provider = self.device
        self.threads = threads
        self.max_context = max_context
        self.tokenizer = decoder.load_tokenizer()
        self.special_texts = sorted(
            (t.content for t in self.tokenizer.get_added_tokens_decoder().values()), key=len
        )
        self._plain: Any = None  # the same tokenizer with special-token parsing off
        self.kv_dtype = np.float16 if self.model_variant in ("fp16", "q4f16") else np.float32
        self.kv_bytes_per_token = decoder.kv_cache_bytes(
            asdict(self.config), tokens=1, batch=1, bytes_per_value=np.dtype(self.kv_dtype).itemsize
        )
        self.stop_ids = {self.tokenizer.token_to_id(t) for t in STOP_TOKENS} - {None}
        self.lock = threading.Lock()  # one forward pass at a time per session
        self.last_result: GenerationResult | None = None

    # ------------------------------------------------------------------ prompts
    def encode(self, prompt: Prompt) -> list[int]:
        """Token ids of a prompt: a string (one user message, chat template applied), a list
        of chat messages, or a list of token ids used as they are."""
        if isinstance(prompt, str):
            if not prompt:
                raise ValueError("the prompt is empty; give some text")
            return self.encode_chat([{"role": "user", "content": prompt}])
        if (
            isinstance(prompt, list)
            and prompt
            and all(isinstance(t, (int, np.integer)) for t in prompt)
        ):
            ids = [int(t) for t in prompt]
            if min(ids) < 0 or max(ids) >= self.config.vocab:
                raise ValueError(f"token ids must lie in 0..{self.config.vocab - 1}")
            return ids
        if isinstance(prompt, list) and prompt:
            return self.encode_chat(prompt)
        raise ValueError(
            "prompt must be a string, a list of {'role', 'content'} messages or a list of "
            f"token ids, not {type(prompt).__name__}"
        )

    def encode_chat(self, messages: list[dict[str, str]]) -> list[int]:
        """Token ids of chat messages, with message text always tokenized as plain text.

        Why: the chat markers (``<|im_start|>``, ``<|im_end|>`` and the other control tokens)
        are what separate a system turn from a user turn. If text a user typed, or a chunk a
        RAG app retrieved, were parsed for them, anyone could forge a system turn. Only the
        template's own markers become control tokens; in message text they are characters.
        """
        rendered = decoder.apply_chat_template(messages)
        contents = [m["content"] for m in messages]
        if not any(sp in str(c) for c in contents for sp in self.special_texts):
            return self.tokenizer.encode(rendered).ids  # nothing to escape: the usual path
        slotted = [{**m, "content": _SLOT.format(i)} for i, m in enumerate(messages)]
        parts = _SLOT_RE.split(decoder.apply_chat_template(slotted))
        # parts alternate: template text, content index, template text, ...
        if "".join(p if i % 2 == 0 else str(contents[int(p)]) for i, p in enumerate(parts)) != (
            rendered
        ):
            raise ValueError("the chat template changed message text; cannot escape it safely")
        if self._plain is None:
            from tokenizers import Tokenizer

            plain = Tokenizer.from_str(self.tokenizer.to_str())
            plain.encode_special_tokens = True
            self._plain = plain
        ids: list[int] = []
        for i, part in enumerate(parts):
            if i % 2 == 0:
                ids += self.tokenizer.encode(part).ids if part else []
            else:
                text = str(contents[int(part)])
                ids += self._plain.encode(text).ids if text else []
        return ids

    def _new_seq(
        self,
        prompt: Prompt,
        max_tokens: int,
        temperature: float,
        top_p: float,
        seed: int | None,
        stop: str | Sequence[str] | None,
    ) -> _Seq:
        t0 = time.perf_counter()
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise ValueError(f"max_tokens must be a whole number >= 1, not {max_tokens!r}")
        if not 0.0 <= float(temperature) <= 5.0:
            raise ValueError(f"temperature must lie in 0..5 (0 = greedy), not {temperature!r}")
        if not 0.0 < float(top_p) <= 1.0:
            raise ValueError(f"top_p must lie in (0, 1], not {top_p!r}")
        stops = [stop] if isinstance(stop, str) else list(stop or [])
        if not all(isinstance(s, str) and s for s in stops):
            raise ValueError("stop must be a non-empty string or a list of them")
        ids = self.encode(prompt)
        if len(ids) + max_tokens > self.max_context:
            raise ValueError(
                f"prompt ({len(ids)} tokens) + max_tokens ({max_tokens}) exceeds the context "
                f"of {self.max_context} tokens; shorten the prompt or lower max_tokens"
            )
        return _Seq(ids, max_tokens, float(temperature), float(top_p),
                    np.random.default_rng(seed), stops, t0)  # fmt: skip

    # ------------------------------------------------------------------ model calls
    def _run(self, ids: np.ndarray, seqlens: np.ndarray, total: int, kv: list[Any]) -> np.ndarray:
        """One forward pass; the KV OrtValues are bound as both past and present."""
        import onnxruntime as ort

        b = self.session.io_binding()
        b.bind_cpu_input("input_ids", ids)
        b.bind_cpu_input("seqlens_k", seqlens)
        b.bind_cpu_input("total_sequence_length", np.array(total, dtype=np.int32))
        for (past, present), value in zip(self._names, kv, strict=True):
            b.bind_ortvalue_input(past, value)
            b.bind_ortvalue_output(present, value)
        # logits land in host memory (ORT copies them from the GPU); the KV cache stays put
        logits = np.empty((ids.shape[0], self.config.vocab), dtype=np.float32)
        b.bind_ortvalue_output("logits", ort.OrtValue.ortvalue_from_numpy(logits))
        with self.lock:
            self.session.run_with_iobinding(b)
        return logits

    @property
    def _names(self) -> list[tuple[str, str]]:
        return [
            (f"past_key_values.{i}.{k}", f"present.{i}.{k}")
            for i in range(self.config.layers)
            for k in ("key", "value")
        ]

    def _accept(self, seq: _Seq, token: int, now: float) -> None:
        """Record a sampled token: stop tokens, stop strings, max_tokens, streaming."""
        if not seq.out_ids and not seq.t_first:
            seq.t_first = now
        seq.t_last = now
        if token in self.stop_ids and not seq.ignore_eos:
            seq.finish_reason = "stop"
        else:
            seq.out_ids.append(token)
            seq.text = self.tokenizer.decode(seq.out_ids, skip_special_tokens=True)
            for s in seq.stop:
                cut = seq.text.find(s, max(0, seq.emitted - len(s)))
                if cut >= 0:
                    seq.text = seq.text[:cut]
                    seq.finish_reason = "stop"
                    break
            if seq.finish_reason is None and len(seq.out_ids) >= seq.max_tokens:
                seq.finish_reason = "length"
        self._emit(seq)

    def _emit(self, seq: _Seq) -> None:
        """Stream the new text, holding back a partial UTF-8 character or a possible stop."""
        end = len(seq.text)
        if not seq.done:
            if seq.text.endswith("\ufffd"):
                return
            hold = max((len(s) - 1 for s in seq.stop), default=0)
            end = max(seq.emitted, end - hold)
        if end > seq.emitted and seq.on_piece is not None:
            seq.on_piece(seq.text[seq.emitted : end])
        seq.emitted = max(seq.emitted, end)

    def _prefill(self, seq: _Seq, kv_row: list[Any]) -> None:
        ids = np.array([seq.prompt_ids], dtype=np.int64)
        n = len(seq.prompt_ids)
        logits = self._run(ids, np.array([n - 1], np.int32), n, kv_row)
        seq.length = n
        seq.t_prefill_done = time.perf_counter()
        token = _sample(logits[0], seq.temperature, seq.top_p, seq.rng)
        self._accept(seq, token, time.perf_counter())

    def _result(self, seq: _Seq) -> GenerationResult:
        n_out = len(seq.out_ids)
        prefill_s = max(seq.t_prefill_done - seq.t_start, 1e-9)
        decode_s = seq.t_last - seq.t_first
        steps = n_out - 1 + (1 if seq.finish_reason == "stop" and seq.out_ids else 0)
        return GenerationResult(
            text=seq.text,
            token_ids=list(seq.out_ids),
            prompt_tokens=len(seq.prompt_ids),
            completion_tokens=n_out,
            finish_reason=seq.finish_reason or "length",
            ttft_s=seq.t_first - seq.t_start,
            prefill_tok_s=len(seq.prompt_ids) / prefill_s,
            decode_tok_s=steps / decode_s if decode_s > 0 and steps > 0 else float("nan"),
            total_s=seq.t_last - seq.t_start,
            kv_cache_bytes=seq.length * self.kv_bytes_per_token,
            kv_bytes_per_token=self.kv_bytes_per_token,
            variant=self.model_variant,
            provider=self.device,
        )

    # ------------------------------------------------------------------ engine
    def engine(self, capacity: int, max_len: int | None = None) -> Engine:
        """A step engine with ``capacity`` rows (for servers that batch at the decode step)."""
        return Engine(self, capacity, max_len or self.max_context)

    def _run_all(self, seqs: list[_Seq]) -> tuple[float, int, int]:
        need = max(len(s.prompt_ids) + s.max_tokens for s in seqs)
        eng = Engine(self, len(seqs), need)
        for s in seqs:
            eng.admit(s)
        t0 = time.perf_counter()
        decoded = steps = 0
        peak = 0
        while eng.active:
            peak = max(peak, sum(s.length for s in eng.active))
            decoded += eng.step()
            steps += 1
        wall = time.perf_counter() - t0
        return (decoded / wall if wall > 0 and decoded else float("nan")), steps, peak

    # ------------------------------------------------------------------ public
    def generate(
        self,
        prompt: Prompt,
        max_tokens: int = 128,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int | None = None,
        stop: str | Sequence[str] | None = None,
        *,
        ignore_eos: bool = False,
    ) -> GenerationResult:
        """Complete one prompt; greedy by default, seeded sampling when temperature > 0.

        ``ignore_eos`` keeps decoding past the end-of-turn token (for benchmarks that need
        exactly ``max_tokens`` new tokens, like llama.cpp's ``--ignore-eos``)."""
        seq = self._new_seq(prompt, max_tokens, temperature, top_p, seed, stop)
        seq.ignore_eos = ignore_eos
        self._run_all([seq])
        self.last_result = self._result(seq)
        return self.last_result

    def stream(
        self,
        prompt: Prompt,
        max_tokens: int = 128,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int | None = None,
        stop: str | Sequence[str] | None = None,
    ) -> Iterator[str]:
        """Yield text pieces as they are decoded; ``last_result`` holds the measurements."""
        seq = self._new_seq(prompt, max_tokens, temperature, top_p, seed, stop)
        pieces: list[str] = []
        seq.on_piece = pieces.append
        eng = Engine(self, 1, len(seq.prompt_ids) + seq.max_tokens)
        eng.admit(seq)
        yield from pieces
        pieces.clear()
        while eng.active:
            eng.step()
            yield from pieces
            pieces.clear()
        self.last_result = self._result(seq)

    def generate_batch(
        self,
        prompts: Sequence[Prompt],
        max_tokens: int = 128,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int | None = None,
        stop: str | Sequence[str] | None = None,
        *,
        ignore_eos: bool = False,
    ) -> BatchResult:
        """Complete prompts of different lengths together: one decode step serves them all."""
        if isinstance(prompts, str) or not isinstance(prompts, Sequence) or not prompts:
            raise ValueError("prompts must be a non-empty list of prompts")
        t0 = time.perf_counter()
        seqs = [
            self._new_seq(
                p, max_tokens, temperature, top_p, None if seed is None else seed + i, stop
            )
            for i, p in enumerate(prompts)
        ]
        for s in seqs:
            s.ignore_eos = ignore_eos
        rate, steps, peak = self._run_all(seqs)
        results = [self._result(s) for s in seqs]
        return BatchResult(results, len(seqs), rate, time.perf_counter() - t0, steps,
                           peak * self.kv_bytes_per_token)  # fmt: skip


class Engine:
    """Rows of one KV cache; sequences join (``admit``) and leave between decode steps."""

    def __init__(self, gen: Generator, capacity: int, max_len: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.gen = gen
        self.capacity = capacity
        self.max_len = max_len
        self.cache = _Cache(gen, capacity, max_len)
        self.active: list[_Seq] = []  # row i holds active[i]

    @property
    def free(self) -> int:
        return self.capacity - len(self.active)

    def admit(self, seq: _Seq) -> None:
        """Prefill ``seq`` into the next free row (its first token is sampled here)."""
        if not self.free:
            raise RuntimeError("no free row in this batch")
        if len(seq.prompt_ids) + seq.max_tokens > self.max_len:
            raise ValueError(f"prompt + max_tokens exceeds this batch's {self.max_len} tokens")
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
            self.gen._accept(s, _sample(logits[i], s.temperature, s.top_p, s.rng), now)
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
