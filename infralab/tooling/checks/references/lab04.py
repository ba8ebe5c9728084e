"""Lab 04's references: the KV-cache size of a model config, cost per million tokens."""

from __future__ import annotations


def _count(value: object, least: int) -> int:
    if type(value) is not int or value < least:
        raise ValueError(f"expected a whole number >= {least}, got {value!r}")
    return value


def kv_cache_bytes(config: dict, tokens: int, batch: int, bytes_per_value: int) -> int:
    """2 (key and value) x layers x kv_heads x (hidden / heads) x bytes x tokens x batch."""
    if not isinstance(config, dict):
        raise ValueError("config must be a dict")
    try:
        layers, heads, kv_heads, hidden = (
            _count(config[k], 1) for k in ("layers", "heads", "kv_heads", "hidden")
        )
    except KeyError as exc:
        raise ValueError(f"config lacks {exc}") from None
    if hidden % heads or heads % kv_heads:
        raise ValueError("hidden must be a multiple of heads, heads a multiple of kv_heads")
    tokens, batch, size = _count(tokens, 0), _count(batch, 1), _count(bytes_per_value, 1)
    return 2 * layers * kv_heads * (hidden // heads) * size * tokens * batch


def cost_per_million(usd_per_hour: float, tokens_per_s: float, utilization: float) -> float | None:
    per_hour = tokens_per_s * 3600 * utilization
    return None if per_hour <= 0 else usd_per_hour / per_hour * 1e6
