"""Baselines the fine-tuned head must beat, on the same split and features."""

from __future__ import annotations

import numpy as np

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "majority_class",
    "nearest_centroid",
]


def majority_class(y_train: np.ndarray, y_eval: np.ndarray) -> float:
    """Accuracy of always answering the most common training label."""
    most = np.bincount(y_train).argmax()
    return float((y_eval == most).mean())


def nearest_centroid(
    X_train: np.ndarray, y_train: np.ndarray, X_eval: np.ndarray, y_eval: np.ndarray
) -> float:
    """Accuracy of picking the label whose mean training embedding is closest (cosine).

    No training loop at all: a strong baseline for sentence embeddings, and the one that
    says whether learning a head was worth it.
    """
    labels = np.unique(y_train)
    centroids = np.stack([X_train[y_train == k].mean(axis=0) for k in labels])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    pred = labels[(X_eval @ centroids.T).argmax(axis=1)]
    return float((pred == y_eval).mean())
