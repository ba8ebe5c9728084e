"""all-MiniLM-L6-v2 as ONNX: each variant built once, with its manifest; `Embedder` runs it.

The graphs themselves (written from the fetched safetensors without PyTorch, and why they
use the ops they do) are :mod:`infralab.engines.models.encoder_graph`; its names (``export``,
``HIDDEN``, ``LAYERS``...) are importable from here too.

Variants: ``fp32`` (fused), ``fp32-unfused`` (standard ONNX ops only), ``fp16`` (for the GPU;
it also runs on the CPU, without gain, to compare quality; inputs and outputs stay
int64/float32), ``int8`` (CPU: every MatMul dynamically quantized) and ``int8-mixed`` (CPU: the
MLP's output projection kept in float32, slower and a little closer to fp32).
Each is built once into ``cache_dir()/models``, named by the weights' sha256 and the variant,
with a manifest that every load checks (:mod:`infralab.engines.models.manifest`).
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

from infralab.engines.models.encoder_graph import (  # noqa: F401  (re-exported: the encoder's names)
    DIM,
    EPS,
    HEADS,
    HIDDEN,
    INTERMEDIATE,
    IR_VERSION,
    LAYERS,
    OPSET,
    EncoderError,
    _skip_mask_when_unpadded,
    _to_int8,
    export,
)

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "Embedder",
    "build_all",
    "cosine",
]


MAX_LENGTH = 256
EXPORT_VERSION = 5  # bump when the graph (encoder_graph) changes, so caches rebuild

VARIANTS = ("fp32", "fp16", "int8", "fp32-unfused", "int8-mixed")
DEFAULT_PROVIDER = {
    "fp32": "cpu",
    "fp32-unfused": "cpu",
    "int8": "cpu",
    "int8-mixed": "cpu",
    "fp16": "cuda",
}
# ONNX Runtime fusions that make this encoder slower on the CPU (see encoder_graph's docstring).
CPU_SLOW_FUSIONS = ("SkipLayerNormFusion",)
# Padded tokens per model call on the CPU (see Embedder): activations that fit the cache.
CPU_BATCH_TOKENS = 512
# Variants whose attention skips the mask in a call without padding (_skip_mask_when_unpadded);
# for them the Embedder gives texts of one length a call of their own (at least this many
# tokens, so that short texts still share a call).
UNPADDED_FAST = ("int8", "int8-mixed")
EXACT_CALL_MIN_TOKENS = 128


def _check_variant(variant: str) -> str:
    if variant not in VARIANTS:
        raise EncoderError(
            f"Unknown encoder variant {variant!r}: choose one of {', '.join(VARIANTS)} "
            "(fp32 for CPU or GPU, fp16 for the GPU, int8 for the CPU)."
        )
    return variant


# ---------------------------------------------------------------- weights
def _weights() -> tuple[dict[str, np.ndarray], str]:
    from safetensors.numpy import load_file

    from infralab.core.assets import MINILM, asset_paths

    paths = asset_paths("minilm")  # verified against the pinned sha256
    return load_file(str(paths["model.safetensors"])), MINILM.files[0].sha256


def tokenizer_path() -> Path:
    from infralab.core.assets import asset_paths

    return asset_paths("minilm")["tokenizer.json"]


# ---------------------------------------------------------------- build and cache
def model_path(variant: str) -> Path:
    """Where a built variant lives: named by the weights' sha256, the variant and the exporter."""
    from infralab.core.assets import MINILM, cache_dir

    _check_variant(variant)
    sha = MINILM.files[0].sha256[:16]
    return cache_dir() / "models" / f"minilm-l6-{variant}-{sha}-v{EXPORT_VERSION}.onnx"


def matmul_weights(name: str = "l0_w1") -> dict[str, np.ndarray]:
    """One MatMul's weight as each built model stores it, for lab 03's comparison.

    ``fp32``: the float weight (in, out) of the fp32 model; ``int8``, ``scale`` and
    ``zero_point``: the same weight in the int8 model, quantized by ONNX Runtime's dynamic
    quantization (one scale per output column, symmetric, 7-bit range: see ``_to_int8``).
    ``name`` is an initializer of the exported graph (``l{layer}_w1`` is a feed-forward input
    projection, ``l{layer}_w2`` its output, ``l{layer}_wo`` the attention output). Builds the
    two variants first if they are missing.
    """
    import onnx
    from onnx import numpy_helper

    out: dict[str, np.ndarray] = {}
    for variant, wanted in (("fp32", {name: "fp32"}), ("int8", {
        f"{name}_quantized": "int8", f"{name}_scale": "scale",
        f"{name}_zero_point": "zero_point"})):  # fmt: skip
        graph = onnx.load(str(build(variant, quiet=True))).graph
        for init in graph.initializer:
            if init.name in wanted:
                out[wanted[init.name]] = numpy_helper.to_array(init)
        missing = set(wanted.values()) - set(out)
        if missing:
            raise EncoderError(
                f"the {variant} model has no MatMul weight {name!r} ({sorted(missing)} missing); "
                "try 'l0_w1', 'l0_w2' or 'l0_wo' (layers 0 to 5)"
            )
    return out


def _save_atomic(model: Any, path: Path) -> None:
    import onnx

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        onnx.save_model(model, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# The builder's name in every manifest: a name, not an import path, kept as it was before the
# layer folders (kit 0.1) so that moving the module does not make built models stale.
BUILDER = f"infralab.models.encoder/v{EXPORT_VERSION}"
# What each variant is built with, recorded in its manifest (another value means a rebuild).
_OPTIONS: dict[str, dict[str, Any]] = {
    "fp32": {"fused": True, "half": False, "opset": OPSET, "ir_version": IR_VERSION},
    "fp32-unfused": {"fused": False, "half": False, "opset": OPSET, "ir_version": IR_VERSION},
    "fp16": {"fused": True, "half": True, "opset": OPSET, "ir_version": IR_VERSION},
    "int8": {
        "from": "fp32",
        "dynamic_int8": True,
        "keep_mlp_output_fp32": False,
        "mask_free_attention": True,
    },
    "int8-mixed": {
        "from": "fp32",
        "dynamic_int8": True,
        "keep_mlp_output_fp32": True,
        "mask_free_attention": True,
    },
}


def output_path(variant: str) -> Path:
    """The built file of ``variant`` (what the manifest vouches for); same as model_path."""
    return model_path(variant)


def manifest_path(variant: str) -> Path:
    """The manifest next to a built variant: inputs, builder, options, output hash and size."""
    path = model_path(variant)
    return path.with_name(path.name + ".manifest.json")


def _identity(variant: str) -> dict[str, Any]:
    from infralab.core.assets import MINILM
    from infralab.engines.models import manifest

    return manifest.identity(
        model="encoder",
        variant=variant,
        builder=BUILDER,
        inputs={"model.safetensors": MINILM.files[0].sha256},
        options=_OPTIONS[variant],
    )


def check(variant: str, *, full: bool = False) -> Any:
    """Check a built variant against its manifest (a :class:`manifest.Check`); reads only
    sizes when the stamp vouches for the hash, unless ``full``."""
    from infralab.engines.models import manifest

    _check_variant(variant)
    return manifest.check(
        manifest_path(variant), _identity(variant), model_path(variant), full=full
    )


def build(
    variant: str = "fp32", *, quiet: bool = False, force: bool = False, repair: bool = False
) -> Path:
    """Build ``variant`` once into the cache (atomic write, with a manifest); return its path.

    A model that is present and matches its manifest is reused; one without a manifest or
    from another builder is rebuilt. A damaged one (its bytes differ from its manifest)
    raises :class:`~infralab.engines.models.manifest.ModelIntegrityError` naming the fix, unless
    ``repair`` (``build-models``) or ``force`` rebuild it.
    """
    import onnx
    from tqdm.auto import tqdm

    from infralab.engines.models import manifest

    out = model_path(variant)
    if not force:
        state = check(variant)
        if state.ok:
            return out
        if state.state == "damaged" and not repair:
            raise manifest.refusal(f"encoder {variant}", out, state)
    steps = {"fp32": 2, "fp32-unfused": 2, "fp16": 3, "int8": 3, "int8-mixed": 3}[variant]
    with tqdm(total=steps, desc=f"build encoder {variant}", disable=quiet) as bar:
        weights, _sha = _weights()
        bar.update()
        if variant.startswith("int8"):
            src = build("fp32", quiet=True, repair=repair or force)
            bar.update()
            out.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=out.name + ".", suffix=".part", dir=out.parent)
            os.close(fd)
            try:
                _to_int8(src, Path(tmp), keep_mlp_output_fp32=variant == "int8-mixed")
                model = onnx.load(tmp)
                _skip_mask_when_unpadded(model)
                _save_atomic(model, out)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        else:
            model = export(weights, fused=variant != "fp32-unfused", half=variant == "fp16")
            bar.update()
            _save_atomic(model, out)
        manifest.write(manifest_path(variant), _identity(variant), [out])
        bar.update(steps - bar.n)
    return out


def build_all(quiet: bool = False) -> dict[str, Path]:
    """Build every variant (a few seconds in all); ``python -m infralab build-models`` calls it.

    Idempotent: a variant that matches its manifest is kept; a damaged one is rebuilt.
    """
    return {v: build(v, quiet=quiet, repair=True) for v in ("fp32", "int8", "fp16", "fp32-unfused")}


# ---------------------------------------------------------------- Embedder
def _load_tokenizer(max_length: int) -> Any:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_path()))
    tok.no_padding()
    tok.enable_truncation(max_length=max_length)
    return tok


def _as_texts(texts: str | Iterable[str]) -> list[str]:
    if isinstance(texts, str):
        return [texts]
    if isinstance(texts, np.ndarray):
        texts = texts.tolist()
    try:
        items = list(texts)
    except TypeError:
        raise EncoderError(
            f"texts must be a string or a list of strings, not {type(texts).__name__}."
        ) from None
    if not items:
        raise EncoderError("texts is empty: pass at least one string to embed.")
    for i, t in enumerate(items):
        if not isinstance(t, str):
            raise EncoderError(
                f"texts[{i}] is a {type(t).__name__} ({t!r:.40}), not a string: "
                "convert your items with str() or drop them."
            )
    return items


def _check_embedder_args(
    variant: str,
    provider: str,
    batch_size: int,
    workers: int | None,
    max_length: int,
    max_batch_tokens: int | None,
) -> None:
    """Refuse an Embedder's bad arguments with a clear EncoderError (a ValueError), before any model loads."""
    _check_variant(variant)
    if max_batch_tokens is not None and (
        not isinstance(max_batch_tokens, int) or max_batch_tokens < 1
    ):
        raise EncoderError(
            f"max_batch_tokens must be a positive whole number or None (512 on the CPU, no "
            f"limit on a GPU), not {max_batch_tokens!r}."
        )
    if provider not in ("cpu", "cuda", "auto"):
        raise EncoderError(f"provider must be 'cpu', 'cuda' or 'auto', not {provider!r}.")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise EncoderError(f"batch_size must be a positive whole number, not {batch_size!r}.")
    if not isinstance(max_length, int) or not 2 <= max_length <= MAX_LENGTH:
        raise EncoderError(f"max_length must be between 2 and {MAX_LENGTH}, not {max_length!r}.")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise EncoderError(f"workers must be a positive whole number or None, not {workers!r}.")
    if workers is not None and workers > 1 and provider == "cuda":
        raise EncoderError("workers > 1 is for the CPU; a GPU session already runs in parallel.")


class Embedder:
    """Sentence embeddings (384 floats, L2-normalised) from all-MiniLM-L6-v2 on ONNX Runtime.

    Batches are formed from texts sorted by length, so little compute is spent on padding;
    results come back in the caller's order. On the CPU a model call also holds at most
    ``max_batch_tokens`` padded tokens (default 512: 32 sentences of ~15 tokens, or 4
    passages of ~128): a call's activations then stay near the core's caches. Measured on 2
    busy cores with AVX-512 at 120-150-token passages, interleaved rounds: 4 passages a call
    gave int8 1.45-1.8x the throughput of 32 a call, fp32 1.0-1.6x (the MLP's 1,536-wide
    activations of 32 x 128 tokens take 25 MB and stream through memory four times a layer).
    int8 vectors depend slightly on which texts share a call (one activation scale per call).

    On the CPU the default is one single-threaded model call per physical core (``workers``,
    sharing one session and so one copy of the weights), whole batches side by side, rather
    than one call whose threads split every operator: a sentence-length operator is too
    small to split well, and on 2 cores the side-by-side layout measured 1.05-1.6x the
    throughput of one 2-thread call (more for fewer texts). ``threads=N`` alone gives the
    classic one call on N threads, which is the faster way to embed one long text.
    """

    def __init__(
        self,
        variant: str = "fp32",
        provider: str = "cpu",
        *,
        batch_size: int = 32,
        threads: int | None = None,
        workers: int | None = None,
        max_length: int = MAX_LENGTH,
        spinning: bool = False,
        opt_level: str = "all",
        max_batch_tokens: int | None = None,
    ) -> None:
        from infralab.core import runtime

        _check_embedder_args(variant, provider, batch_size, workers, max_length, max_batch_tokens)
        if variant == "fp16" and provider == "cpu":
            warnings.warn(
                "fp16 on the CPU runs, but CPUs without native half-precision math convert "
                "back and forth, so it is no faster than fp32; it is here to compare quality. "
                "Use it on the GPU (provider='cuda'), and int8 for CPU speed.",
                stacklevel=2,
            )
        if workers is None:
            workers = 1 if threads is not None or provider == "cuda" else runtime.physical_cores()
        if threads is None and provider != "cuda":
            threads = max(1, runtime.physical_cores() // workers)
        self.variant = variant
        self.batch_size = batch_size
        self.max_length = max_length
        self.path = build(variant)
        self.session = runtime.make_session(
            self.path, provider, threads=threads, spinning=spinning, opt_level=opt_level,
            disabled_on_cpu=CPU_SLOW_FUSIONS,
        )  # fmt: skip
        self.provider = runtime.session_provider(self.session)
        # ONNX Runtime sessions run concurrent calls safely: the workers share one session
        # (one copy of the weights), each call on its own thread.
        self.workers = 1 if self.provider == "cuda" else workers
        if max_batch_tokens is None:  # a GPU wants big calls; a CPU core wants cache-sized ones
            max_batch_tokens = 1 << 30 if self.provider == "cuda" else CPU_BATCH_TOKENS
        self.max_batch_tokens = max_batch_tokens
        self._executor: ThreadPoolExecutor | None = None
        self.threads = self.session.get_session_options().intra_op_num_threads
        self.tokenizer = _load_tokenizer(max_length)

    def __repr__(self) -> str:
        return (
            f"Embedder(variant={self.variant!r}, provider={self.provider!r}, "
            f"batch_size={self.batch_size}, threads={self.threads}, workers={self.workers}, "
            f"max_batch_tokens={self.max_batch_tokens})"
        )

    def tokenize(self, texts: str | Iterable[str]) -> list[list[int]]:
        """Token ids per text, with [CLS]/[SEP], truncated at ``max_length``."""
        return [e.ids for e in self.tokenizer.encode_batch(_as_texts(texts))]

    def count_tokens(self, texts: str | Iterable[str]) -> list[int]:
        """Tokens the model sees per text (with [CLS] and [SEP], after truncation)."""
        return [len(ids) for ids in self.tokenize(texts)]

    @staticmethod
    def pad(batch: Sequence[Sequence[int]]) -> dict[str, np.ndarray]:
        """Pad to the longest in the batch (right padding, id 0); the model's two inputs."""
        width = max(len(ids) for ids in batch)
        input_ids = np.zeros((len(batch), width), dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, ids in enumerate(batch):
            input_ids[row, : len(ids)] = ids
            mask[row, : len(ids)] = 1
        return {"input_ids": input_ids, "attention_mask": mask}

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """One model call on already padded inputs; (batch, 384) float32. Thread-safe."""
        return self.session.run(["sentence_embedding"], feeds)[0]

    def plan(self, n_texts: int) -> list[int]:
        """Batch sizes for ``n_texts``: ``batch_size`` each, or smaller to keep workers even.

        Batches go out longest first and each worker takes the next when it is done, so with
        at least three batches per worker they finish close together. Below that, batches
        shrink (not under 4 texts): on a CPU a batch of 8 short texts runs almost as
        efficiently as one of 32, while a worker left idle halves the throughput.
        """
        per_batch = self.batch_size
        if self.workers > 1:
            per_batch = -(-n_texts // (3 * self.workers))
            per_batch = max(per_batch, min(4, -(-n_texts // self.workers)))
            per_batch = min(per_batch, self.batch_size)
        return [min(per_batch, n_texts - start) for start in range(0, n_texts, per_batch)]

    def batches(self, lengths: Sequence[int]) -> list[np.ndarray]:
        """The model calls for texts of these token lengths: index arrays, longest texts first.

        :meth:`plan` sizes them by count; a batch whose padded size (its longest text times
        its count) passes ``max_batch_tokens`` is split further, never below one text. For
        the int8 variants a piece also ends where the texts' length changes, when the texts
        of its first length fill at least ``EXACT_CALL_MIN_TOKENS``: such a call has no
        padding, so its attention skips the mask (see ``_skip_mask_when_unpadded``).
        """
        order = np.argsort([-int(n) for n in lengths], kind="stable")
        exact = self.variant in UNPADDED_FAST and self.provider == "cpu"
        out: list[np.ndarray] = []
        for chunk in np.split(order, np.cumsum(self.plan(len(order)))[:-1]):
            start = 0
            while start < len(chunk):  # the first text of each piece is its longest
                longest = int(lengths[chunk[start]])
                per = max(1, self.max_batch_tokens // max(1, longest))
                piece = chunk[start : start + per]
                if exact:
                    same = int(np.sum([int(lengths[i]) == longest for i in piece]))
                    if same < len(piece) and same * longest >= EXACT_CALL_MIN_TOKENS:
                        piece = piece[:same]
                out.append(piece)
                start += len(piece)
        return out

    def embed(self, texts: str | Iterable[str], *, progress: bool | None = None) -> np.ndarray:
        """Embeddings in the caller's order: float32, shape (n, 384), each of unit length.

        ``progress`` shows a bar over batches; by default only for 2,000 texts or more.
        """
        from tqdm.auto import tqdm

        ids = self.tokenize(texts)
        out = np.empty((len(ids), DIM), dtype=np.float32)
        show = len(ids) >= 2000 if progress is None else progress
        chunks = self.batches([len(x) for x in ids])

        def one(chunk: np.ndarray) -> None:
            out[chunk] = self.run(self.pad([ids[i] for i in chunk]))

        bar = tqdm(total=len(chunks), desc="embed", unit="batch", disable=not show, leave=False)
        with bar:
            if self.workers == 1 or len(chunks) == 1:
                for chunk in chunks:
                    one(chunk)
                    bar.update()
            else:
                for done in as_completed([self._pool().submit(one, c) for c in chunks]):
                    done.result()
                    bar.update()
        return out

    def _pool(self) -> ThreadPoolExecutor:
        """The workers' threads, started on first use and kept: a server embeds every batch."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="infralab-embed")
        return self._executor


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two (n, d) arrays."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    den = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    return (a * b).sum(-1) / np.maximum(den, 1e-30)
