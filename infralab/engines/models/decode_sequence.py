"""One sequence in flight on the decoder, and what it yields: the per-sequence state (its
tokens, sampling settings, stop rules and clocks), the sampler (greedy, temperature, top-p)
and the measured results of one completion and of a batch.

:mod:`infralab.engines.models.text_generation` (the ``Generator``) and
:mod:`infralab.engines.models.kv_engine` (the step engine) share these.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from infralab.core.errors import InfralabError


class GenerationError(ValueError, InfralabError):
    """Bad input to text generation (a prompt, a setting); the message names the value."""

    hint = (
        "A prompt is a string, a list of {'role', 'content'} messages or a list of token ids; "
        "max_tokens >= 1, temperature 0..5 (0 = greedy), top_p in (0, 1]. "
        "help(infralab.engines.models.Generator.generate) lists them."
    )


class EngineError(RuntimeError, InfralabError):
    """A step engine asked for what it cannot do (a full batch, a partial device batch)."""

    hint = "Wait for a row to finish (Engine.free says how many are free) or build a larger engine."


STOP_TOKENS = ("<|im_end|>", "<|endoftext|>")
# Below this temperature sampling is greedy: the softmax is already a one-hot to float64
# precision, and dividing by a subnormal (5e-324) would overflow to inf and NaN.
GREEDY_BELOW = 1e-4
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
class SeqState:
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


def sample_token(
    logits: np.ndarray, temperature: float, top_p: float, rng: np.random.Generator
) -> int:
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
