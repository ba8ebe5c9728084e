"""Lab 04's references: KV-cache bytes per token, cost per million tokens."""

from __future__ import annotations


def kv_bytes_per_token(layers: int, kv_heads: int, head_dim: int, bytes_per_value: int) -> int:
    return 2 * layers * kv_heads * head_dim * bytes_per_value  # a key and a value per head


def cost_per_million(usd_per_hour: float, tokens_per_s: float, utilization: float) -> float | None:
    per_hour = tokens_per_s * 3600 * utilization
    return None if per_hour <= 0 else usd_per_hour / per_hour * 1e6
