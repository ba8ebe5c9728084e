"""A stand-in embedder with no model: unit vectors from a hash of the text.

Why it exists: it measures what serving costs on its own (HTTP, JSON, queueing) with the
model's cost taken out, and it lets API and RAG tests run without model files. Same text, same
vector; its "tokens" are whitespace-separated words plus the two special tokens.

Why here: the embeddings service and the RAG app both use it, so it lives below both (a model
layer module) instead of one service importing it from the other.
"""

from __future__ import annotations

import hashlib

import numpy as np

DIM = 384  # all-MiniLM-L6-v2's width, so the stand-in fits wherever the real model does


class HashEmbedder:
    """Deterministic unit vectors of width :data:`DIM` from a BLAKE2b hash of each text."""

    dim = DIM

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            seed = int.from_bytes(
                hashlib.blake2b(text.encode("utf-8", "surrogatepass")).digest()[:8], "little"
            )
            vec = np.random.default_rng(seed).standard_normal(self.dim).astype(np.float32)
            out[i] = vec / np.linalg.norm(vec)
        return out

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [len(t.split()) + 2 for t in texts]
