"""Text generation on the exported decoder: greedy and sampled, streamed, batched, measured.

Why a step engine instead of one ``generate`` loop: the same code serves one prompt, a batch
of prompts of different lengths and an API server whose requests join a running batch
(continuous batching). The engine and its KV cache rows are :mod:`infralab.engines.models.kv_engine`;
one sequence's state, the sampler and the result types are
:mod:`infralab.engines.models.decode_sequence`; this module holds the ``Generator``: the model
session, prompt encoding (the chat template, escaped) and the public calls.

Every call reports what the token economics lesson prices: prompt tokens, time to first
token (TTFT), prefill and decode tokens per second, and the bytes of KV cache in use.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np

from infralab.engines.models import decoder
from infralab.engines.models.decode_sequence import (
    STOP_TOKENS,
    BatchResult,
    GenerationError,
    GenerationResult,
    Prompt,
    SeqState,
    sample_token,
)
from infralab.engines.models.kv_engine import Engine

_SLOT = "\x00infralab-content-{}\x00"
_SLOT_RE = re.compile("\x00infralab-content-(\\d+)\x00")


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
            raise GenerationError(f"variant must be 'q4' or 'fp32', not {variant!r}.")
        if provider not in ("cpu", "cuda", "auto"):
            raise GenerationError(f"provider must be 'cpu', 'cuda' or 'auto', not {provider!r}.")
        self.config = decoder.config()
        if not isinstance(max_context, int) or not 16 <= max_context <= self.config.context:
            raise GenerationError(
                f"max_context must be a whole number in 16..{self.config.context}."
            )
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
                raise GenerationError("the prompt is empty; give some text")
            return self.encode_chat([{"role": "user", "content": prompt}])
        if (
            isinstance(prompt, list)
            and prompt
            and all(isinstance(t, (int, np.integer)) for t in prompt)
        ):
            ids = [int(t) for t in prompt]
            if min(ids) < 0 or max(ids) >= self.config.vocab:
                raise GenerationError(f"token ids must lie in 0..{self.config.vocab - 1}")
            return ids
        if isinstance(prompt, list) and prompt:
            return self.encode_chat(prompt)
        raise GenerationError(
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
            raise GenerationError("the chat template changed message text; cannot escape it safely")
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
    ) -> SeqState:
        t0 = time.perf_counter()
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise GenerationError(f"max_tokens must be a whole number >= 1, not {max_tokens!r}")
        if not 0.0 <= float(temperature) <= 5.0:
            raise GenerationError(f"temperature must lie in 0..5 (0 = greedy), not {temperature!r}")
        if not 0.0 < float(top_p) <= 1.0:
            raise GenerationError(f"top_p must lie in (0, 1], not {top_p!r}")
        stops = [stop] if isinstance(stop, str) else list(stop or [])
        if not all(isinstance(s, str) and s for s in stops):
            raise GenerationError("stop must be a non-empty string or a list of them")
        ids = self.encode(prompt)
        if len(ids) + max_tokens > self.max_context:
            raise GenerationError(
                f"prompt ({len(ids)} tokens) + max_tokens ({max_tokens}) exceeds the context "
                f"of {self.max_context} tokens; shorten the prompt or lower max_tokens"
            )
        return SeqState(ids, max_tokens, float(temperature), float(top_p),
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

    def _accept(self, seq: SeqState, token: int, now: float) -> None:
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

    def _emit(self, seq: SeqState) -> None:
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

    def _prefill(self, seq: SeqState, kv_row: list[Any]) -> None:
        ids = np.array([seq.prompt_ids], dtype=np.int64)
        n = len(seq.prompt_ids)
        logits = self._run(ids, np.array([n - 1], np.int32), n, kv_row)
        seq.length = n
        seq.t_prefill_done = time.perf_counter()
        token = sample_token(logits[0], seq.temperature, seq.top_p, seq.rng)
        self._accept(seq, token, time.perf_counter())

    def _result(self, seq: SeqState) -> GenerationResult:
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

    def _run_all(self, seqs: list[SeqState]) -> tuple[float, int, int]:
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
            raise GenerationError("prompts must be a non-empty list of prompts")
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
