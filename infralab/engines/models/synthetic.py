"""ONNX graphs of a chosen size, for the study of where a GPU overtakes the CPU.

A real model has one size; to see the crossover we need a dial. An MLP of ``layers`` square
MatMul + Relu layers of width ``hidden`` does ``2 * batch * hidden**2 * layers`` FLOPs per call
while moving only ``batch * hidden`` floats in and out: growing ``hidden`` grows compute much
faster than transfer, which is exactly the trade-off a GPU's launch and copy overheads make.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from infralab.engines.models.model_errors import ModelError

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "build",
]


IR_VERSION = 10  # ONNX Runtime 1.31 refuses the IR 14 that onnx >= 1.23 writes by default
OPSET = 17
MAX_HIDDEN = 8192


def _check(hidden: int, layers: int) -> None:
    if not isinstance(hidden, int) or not 1 <= hidden <= MAX_HIDDEN:
        raise ModelError(
            f"hidden must be a whole number from 1 to {MAX_HIDDEN}, not {hidden!r}.",
            hint="hidden is the layer width, e.g. 384 (MiniLM's) or 1024.",
        )
    if not isinstance(layers, int) or not 1 <= layers <= 64:
        raise ModelError(
            f"layers must be a whole number from 1 to 64, not {layers!r}.",
            hint="layers is the number of stacked matmuls, e.g. 4.",
        )


def mlp(hidden: int, layers: int = 4, *, dtype: str = "float32", seed: int = 0) -> Any:
    """An ONNX MLP ``x (batch, hidden) -> y (batch, hidden)``; weights scaled to keep values O(1)."""
    from onnx import TensorProto, helper, numpy_helper

    _check(hidden, layers)
    if dtype not in ("float32", "float16"):
        raise ModelError(
            f"dtype must be 'float32' or 'float16', not {dtype!r}.",
            hint="Pass the dtype as a string: dtype='float16'.",
        )
    np_dtype = np.float32 if dtype == "float32" else np.float16
    onnx_dtype = TensorProto.FLOAT if dtype == "float32" else TensorProto.FLOAT16
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    x = "x"
    for i in range(layers):
        w = (rng.standard_normal((hidden, hidden)) * np.sqrt(2.0 / hidden)).astype(np_dtype)
        inits.append(numpy_helper.from_array(w, f"w{i}"))
        out = "y" if i == layers - 1 else f"h{i}"
        mm = f"mm{i}"
        nodes.append(helper.make_node("MatMul", [x, f"w{i}"], [mm if i < layers - 1 else out]))
        if i < layers - 1:
            nodes.append(helper.make_node("Relu", [mm], [out]))
        x = out
    graph = helper.make_graph(
        nodes,
        f"mlp_h{hidden}_l{layers}",
        [helper.make_tensor_value_info("x", onnx_dtype, ["batch", hidden])],
        [helper.make_tensor_value_info("y", onnx_dtype, ["batch", hidden])],
        initializer=inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="infralab"
    )
    model.ir_version = IR_VERSION
    return model


def mlp_flops(batch: int, hidden: int, layers: int = 4) -> int:
    """FLOPs of one call (a multiply-add counts 2); Relu is negligible."""
    return 2 * batch * hidden * hidden * layers


def mlp_bytes_moved(batch: int, hidden: int, dtype_bytes: int = 4) -> int:
    """Bytes copied host-to-device and back per call (input and output)."""
    return 2 * batch * hidden * dtype_bytes


def build(hidden: int, layers: int = 4, *, dtype: str = "float32") -> Path:
    """Build (once) and return the path of an MLP model in the kit's cache."""
    import onnx

    from infralab.core.assets import cache_dir

    _check(hidden, layers)
    path = cache_dir() / "models" / f"synthetic-mlp-h{hidden}-l{layers}-{dtype}.onnx"
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        onnx.save_model(mlp(hidden, layers, dtype=dtype), tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def reference_output(model: Any, x: np.ndarray) -> np.ndarray:
    """The MLP computed in numpy (float64) from the model's own weights, for tests."""
    from onnx import numpy_helper

    weights = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in model.graph.initializer}
    h = np.asarray(x, dtype=np.float64)
    n = len(weights)
    for i in range(n):
        h = h @ weights[f"w{i}"]
        if i < n - 1:
            h = np.maximum(h, 0.0)
    return h
