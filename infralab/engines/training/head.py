"""A classifier head on frozen sentence embeddings, trained with plain numpy.

Why numpy and not a framework: the head is one matrix multiply, a softmax and its gradient,
so every FLOP the lesson counts is a line the student can read, and nothing heavy has to be
installed (PyTorch is ~1 GB; ONNX Runtime's training build is a separate wheel). The frozen
encoder (MiniLM on ONNX Runtime) runs once per example to make features; only the head learns.

Determinism: the shuffle of epoch ``e`` comes from ``default_rng([seed, e])``, not from one
generator carried along, so a run resumed from a checkpoint after epoch ``e`` draws exactly
the batches the uninterrupted run would have drawn, and reaches the same weights.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from infralab.core.errors import InfralabError
from infralab.engines.training.data import sha256_file

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "HeadConfig",
    "checkpoint_record",
    "encoder_forward_flops",
    "flops_per_example",
    "flops_per_step",
    "load_checkpoint",
    "max_abs_difference",
    "save_checkpoint",
    "train",
]


class TrainingError(ValueError, InfralabError):
    """Bad training input or a checkpoint that does not fit; the message says what to fix."""


@dataclass(frozen=True)
class HeadConfig:
    """Hyperparameters of the head; part of every checkpoint."""

    epochs: int = 30
    batch_size: int = 32
    lr: float = 0.05
    weight_decay: float = 1e-4
    seed: int = 0
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8

    def __post_init__(self) -> None:
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise TrainingError(f"epochs must be a whole number >= 1, not {self.epochs!r}.")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise TrainingError(f"batch_size must be a whole number >= 1, not {self.batch_size!r}.")
        if not self.lr > 0:
            raise TrainingError(f"lr must be positive, not {self.lr!r}.")


@dataclass
class HeadState:
    """Everything a resumed run needs: weights, Adam's moments, the step and epoch reached."""

    W: np.ndarray
    b: np.ndarray
    mW: np.ndarray
    vW: np.ndarray
    mb: np.ndarray
    vb: np.ndarray
    step: int = 0
    epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    examples_seen: int = 0
    train_seconds: float = 0.0

    @classmethod
    def init(cls, dim: int, n_classes: int, seed: int) -> HeadState:
        rng = np.random.default_rng([seed, 10_000])
        W = rng.normal(0.0, 0.01, size=(dim, n_classes))
        z = np.zeros
        return cls(W, z(n_classes), z_like(W), z_like(W), z(n_classes), z(n_classes))


def z_like(a: np.ndarray) -> np.ndarray:
    return np.zeros_like(a)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


def predict_proba(state: HeadState, X: np.ndarray) -> np.ndarray:
    return softmax(X @ state.W + state.b)


def loss_and_accuracy(state: HeadState, X: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    p = predict_proba(state, X)
    loss = float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None)).mean())
    return loss, float((p.argmax(axis=1) == y).mean())


def flops_per_example(dim: int, n_classes: int) -> dict[str, int]:
    """FLOPs of one example through the head, counted from the code below (multiply-add = 2).

    Forward: logits x.W + b (2dk + k) and softmax (about 5k: max, subtract, exp, sum, divide).
    Backward: dlogits = p - onehot (k), dW = x^T dlogits (2dk), db (k). No gradient is taken
    with respect to the input, because the encoder below is frozen: that is why the backward
    pass here costs about 1x the forward, not the 2x of the 6 x N x D rule.
    The Adam update is per parameter per *step*, not per example; see ``flops_per_step``.
    """
    forward = 2 * dim * n_classes + n_classes + 5 * n_classes
    backward = n_classes + 2 * dim * n_classes + n_classes
    return {"forward": forward, "backward": backward, "total": forward + backward}


def flops_per_step(dim: int, n_classes: int) -> int:
    """Adam's update: about 12 FLOPs per parameter per step (moments, bias correction, step)."""
    return 12 * (dim * n_classes + n_classes)


def _check_data(X: np.ndarray, y: np.ndarray, n_classes: int) -> None:
    if X.ndim != 2 or len(X) != len(y) or len(X) == 0:
        raise TrainingError(
            f"X must be (examples, features) and y one label per example; got X {X.shape}, "
            f"y {np.shape(y)}."
        )
    if y.min() < 0 or y.max() >= n_classes:
        raise TrainingError(f"labels must be 0..{n_classes - 1}; got {y.min()}..{y.max()}.")


def _adam_step(state: HeadState, c: HeadConfig, gW: np.ndarray, gb: np.ndarray) -> None:
    """One Adam update of weights and bias in place, with bias-corrected moments."""
    state.step += 1
    for param, g, m, v in (
        (state.W, gW, state.mW, state.vW),
        (state.b, gb, state.mb, state.vb),
    ):
        m *= c.beta1
        m += (1 - c.beta1) * g
        v *= c.beta2
        v += (1 - c.beta2) * g * g
        mhat = m / (1 - c.beta1**state.step)
        vhat = v / (1 - c.beta2**state.step)
        param -= c.lr * mhat / (np.sqrt(vhat) + c.eps)


def _train_epoch(state: HeadState, X: np.ndarray, y: np.ndarray, c: HeadConfig, epoch: int) -> None:
    """One pass over the data in a shuffled order that depends only on seed and epoch (so a resume repeats it)."""
    t0 = time.perf_counter()
    n = len(X)
    order = np.random.default_rng([c.seed, epoch]).permutation(n)
    for start in range(0, n, c.batch_size):
        idx = order[start : start + c.batch_size]
        xb, yb = X[idx], y[idx]
        p = softmax(xb @ state.W + state.b)
        p[np.arange(len(yb)), yb] -= 1.0
        p /= len(yb)
        gW = xb.T @ p + c.weight_decay * state.W
        gb = p.sum(axis=0)
        _adam_step(state, c, gW, gb)
        state.examples_seen += len(idx)
    state.train_seconds += time.perf_counter() - t0
    state.epoch = epoch + 1


def _record_epoch(
    state: HeadState,
    X: np.ndarray,
    y: np.ndarray,
    X_val: np.ndarray | None,
    y_val: np.ndarray | None,
) -> None:
    """Append the epoch's train (and validation) loss and accuracy to the learning curve."""
    row = {"epoch": float(state.epoch)}
    row["train_loss"], row["train_accuracy"] = loss_and_accuracy(state, X, y)
    if X_val is not None and y_val is not None:
        row["val_loss"], row["val_accuracy"] = loss_and_accuracy(
            state, np.asarray(X_val, dtype=np.float64), np.asarray(y_val)
        )
    state.history.append(row)


def train(
    X: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    config: HeadConfig = HeadConfig(),
    *,
    X_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    state: HeadState | None = None,
    stop_after_epoch: int | None = None,
    checkpoint_dir: Path | str | None = None,
    progress: bool = False,
) -> HeadState:
    """Mini-batch Adam with weight decay on a softmax head; returns the final state.

    ``state`` resumes from a checkpoint; ``stop_after_epoch`` ends early (to simulate an
    interruption); ``checkpoint_dir`` writes a checkpoint after every epoch. The learning
    curve (train and validation loss and accuracy per epoch) is in ``state.history``.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    _check_data(X, y, n_classes)
    c = config
    if state is None:
        state = HeadState.init(X.shape[1], n_classes, c.seed)
    elif state.W.shape != (X.shape[1], n_classes):
        raise TrainingError(
            f"The checkpoint's weights are {state.W.shape}, but the data needs "
            f"{(X.shape[1], n_classes)}: resume with the same features and labels."
        )
    last = c.epochs if stop_after_epoch is None else min(c.epochs, stop_after_epoch)
    epochs = range(state.epoch, last)
    if progress:
        from tqdm.auto import tqdm

        epochs = tqdm(epochs, desc="training the head", unit="epoch")
    for epoch in epochs:
        _train_epoch(state, X, y, c, epoch)
        _record_epoch(state, X, y, X_val, y_val)
        if checkpoint_dir is not None:
            save_checkpoint(state, config, Path(checkpoint_dir) / f"epoch_{state.epoch:03d}.npz")
    return state


def save_checkpoint(state: HeadState, config: HeadConfig, path: Path | str) -> Path:
    """Write weights, optimizer moments, counters, history and config to one .npz file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "step": state.step,
        "epoch": state.epoch,
        "examples_seen": state.examples_seen,
        "train_seconds": state.train_seconds,
        "history": state.history,
        "config": config.__dict__,
    }
    tmp = path.with_suffix(".tmp.npz")
    np.savez(
        tmp,
        W=state.W, b=state.b, mW=state.mW, vW=state.vW, mb=state.mb, vb=state.vb,
        meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
    )  # fmt: skip
    tmp.replace(path)  # a crash mid-write never leaves a half checkpoint under the real name
    return path


def load_checkpoint(path: Path | str) -> tuple[HeadState, HeadConfig]:
    """Read a checkpoint written by :func:`save_checkpoint`."""
    path = Path(path)
    if not path.is_file():
        raise TrainingError(f"No checkpoint at {path}: train with checkpoint_dir= first.")
    try:
        with np.load(path) as z:
            arrays = {k: z[k].copy() for k in ("W", "b", "mW", "vW", "mb", "vb")}
            meta = json.loads(z["meta"].tobytes().decode())
    except (KeyError, ValueError, OSError) as exc:
        raise TrainingError(
            f"{path.name} is not a head checkpoint ({exc}); use a file save_checkpoint wrote."
        ) from None
    state = HeadState(
        **arrays,
        step=meta["step"],
        epoch=meta["epoch"],
        history=meta["history"],
        examples_seen=meta["examples_seen"],
        train_seconds=meta["train_seconds"],
    )
    return state, HeadConfig(**meta["config"])


def checkpoint_record(path: Path | str) -> dict[str, Any]:
    """Name, size and sha256 of a checkpoint, for the model card."""
    path = Path(path)
    return {"file": path.name, "bytes": path.stat().st_size, "sha256": sha256_file(path)}


def max_abs_difference(a: HeadState, b: HeadState) -> float:
    """Largest difference between two states' weights: how far a resumed run drifted."""
    return float(max(np.abs(a.W - b.W).max(), np.abs(a.b - b.b).max()))


def encoder_forward_flops(token_counts: list[int] | np.ndarray) -> int:
    """FLOPs of the frozen MiniLM encoder's forward pass over texts of the given token lengths.

    Per layer and token: Q, K, V and output projections 4 x 2 d^2, the MLP 2 x 2 d f, and
    attention scores plus weighted sum 2 x 2 L d for a sequence of L tokens (d = 384,
    f = 1536, 6 layers). Embedding look-ups, LayerNorm and softmax are left out (small).
    """
    from infralab.engines.models.encoder import HIDDEN, INTERMEDIATE, LAYERS

    d, f = HIDDEN, INTERMEDIATE
    total = 0
    for n in np.asarray(token_counts, dtype=np.int64):
        per_token = 8 * d * d + 4 * d * f + 4 * int(n) * d
        total += LAYERS * int(n) * per_token
    return int(total)
