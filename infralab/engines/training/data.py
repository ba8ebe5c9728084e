"""The fine-tuning set, built from the kit's corpus: provenance, hashes and a model card.

Why hashes: a trained model is only as reproducible as the exact bytes it saw. Every
artifact (the source file, each split, the embeddings, a checkpoint) is named by its
sha256, and the model card records those names, so "what was this model trained on?" has an
answer that a changed file cannot silently falsify.
"""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from infralab.core.errors import InfralabError
from infralab.core.paths import DATASETS_DIR, REPO_ROOT

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "ModelCard",
    "routing_set",
    "sha256_array",
]


QUESTIONS_CSV = DATASETS_DIR / "corpus" / "questions.csv"
LABEL_COLUMN = "tenant"


class DataError(ValueError, InfralabError):
    """The training data is missing or malformed; the message says what to fix."""


def sha256_bytes(data: bytes) -> str:
    """The content hash the kit names artifacts by."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path | str) -> str:
    """sha256 of a file's bytes, read in blocks (a checkpoint can be large)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_array(array: np.ndarray) -> str:
    """sha256 of an array's dtype, shape and bytes: equal arrays hash equal."""
    a = np.ascontiguousarray(array)
    head = f"{a.dtype.str}{a.shape}".encode()
    return sha256_bytes(head + a.tobytes())


def sha256_frame(df: pd.DataFrame) -> str:
    """sha256 of a table as CSV text (column order and row order count)."""
    return sha256_bytes(df.to_csv(index=False).encode("utf-8"))


@dataclass(frozen=True)
class RoutingSet:
    """Questions labelled with the tenant whose documents answer them, split in two."""

    train: pd.DataFrame
    val: pd.DataFrame
    labels: tuple[str, ...]
    source: str
    source_sha256: str
    seed: int
    val_fraction: float

    def y(self, part: str) -> np.ndarray:
        """Integer labels of ``train`` or ``val`` (index into ``labels``)."""
        df = {"train": self.train, "val": self.val}[part]
        return df["label"].map({n: i for i, n in enumerate(self.labels)}).to_numpy(np.int64)

    def artifacts(self) -> dict[str, str]:
        """Content hash per artifact of the set."""
        return {
            "source": self.source_sha256,
            "train_split": sha256_frame(self.train),
            "val_split": sha256_frame(self.val),
        }


def load_questions(path: Path | str = QUESTIONS_CSV) -> pd.DataFrame:
    """The corpus's question file, checked for the columns the routing task needs."""
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"The question file {path} is missing: it ships with the kit in datasets/corpus/. "
            "Run from a full clone of the repository."
        )
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = {"qid", "question", LABEL_COLUMN} - set(df.columns)
    if missing:
        raise DataError(
            f"{path.name} lacks the column(s) {', '.join(sorted(missing))}.",
        )
    return df


def routing_set(
    path: Path | str = QUESTIONS_CSV, *, val_fraction: float = 0.3, seed: int = 0
) -> RoutingSet:
    """Split questions into train and validation, stratified by tenant, with a fixed seed.

    Stratified so each tenant is in both splits in its share; seeded so the split, and so
    every figure after it, is the same on every machine.
    """
    if not 0.05 <= val_fraction <= 0.5:
        raise DataError(f"val_fraction must be between 0.05 and 0.5, not {val_fraction!r}.")
    path = Path(path)
    df = load_questions(path)
    rows = pd.DataFrame(
        {
            "qid": df["qid"],
            "text": df["question"].str.strip(),
            "label": df[LABEL_COLUMN].str.strip(),
        }
    )
    rows = rows[(rows["text"] != "") & (rows["label"] != "")].reset_index(drop=True)
    labels = tuple(sorted(rows["label"].unique()))
    if len(labels) < 2:
        raise DataError("The routing task needs at least two labels.")
    rng = np.random.default_rng(seed)
    val_idx: list[int] = []
    for name in labels:
        idx = np.flatnonzero(rows["label"].to_numpy() == name)
        n_val = max(1, round(len(idx) * val_fraction))
        val_idx.extend(rng.permutation(idx)[:n_val].tolist())
    is_val = np.zeros(len(rows), dtype=bool)
    is_val[val_idx] = True
    return RoutingSet(
        train=rows[~is_val].reset_index(drop=True),
        val=rows[is_val].reset_index(drop=True),
        labels=labels,
        source=str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path),
        source_sha256=sha256_file(path),
        seed=seed,
        val_fraction=val_fraction,
    )


@dataclass
class ModelCard:
    """What a fine-tuned model was trained on, how, and how well it did: a plain record.

    Not a legal document; the minimum a reviewer needs to reproduce or reject the model.
    """

    model: str
    task: str
    base_model: str
    labels: list[str]
    data: dict[str, Any]
    training: dict[str, Any]
    metrics: dict[str, Any]
    artifacts: dict[str, str]
    limitations: list[str] = field(default_factory=list)
    created_utc: str = field(
        default_factory=lambda: datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    )
    environment: dict[str, str] = field(
        default_factory=lambda: {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "machine": platform.machine(),
        }
    )

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    def save(self, path: Path | str) -> Path:
        path = Path(path)
        path.write_text(self.to_json() + "\n", encoding="utf-8")
        return path
