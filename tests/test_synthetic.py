"""Synthetic MLPs: the size dial of the crossover study computes what it claims."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from infralab.core import runtime
from infralab.engines.models import synthetic


def test_mlp_matches_numpy() -> None:
    model = synthetic.mlp(32, 3, seed=1)
    onnx.checker.check_model(model)
    assert model.ir_version == 10
    x = np.random.default_rng(0).standard_normal((5, 32), dtype=np.float32)
    sess = runtime.make_session(model.SerializeToString(), "cpu", threads=1)
    y = sess.run(None, {"x": x})[0]
    np.testing.assert_allclose(y, synthetic.reference_output(model, x), rtol=1e-4, atol=1e-4)


def test_flops_and_bytes() -> None:
    assert synthetic.mlp_flops(32, 256, 4) == 2 * 32 * 256 * 256 * 4
    assert synthetic.mlp_bytes_moved(32, 256) == 2 * 32 * 256 * 4


def test_fp16_variant_has_half_weights() -> None:
    model = synthetic.mlp(8, 2, dtype="float16")
    assert all(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer)


def test_build_caches(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("INFRALAB_CACHE", str(tmp_path))
    path = synthetic.build(16, 2)
    assert path.is_file() and path.parent == tmp_path / "models"
    mtime = path.stat().st_mtime_ns
    assert synthetic.build(16, 2) == path and path.stat().st_mtime_ns == mtime
    assert not list(path.parent.glob("*.part"))


@pytest.mark.parametrize(
    "kwargs", [{"hidden": 0}, {"hidden": "64"}, {"hidden": 64, "layers": 0}, {"hidden": 99999}]
)
def test_bad_sizes_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="must be"):
        synthetic.mlp(**kwargs)


def test_bad_dtype() -> None:
    with pytest.raises(ValueError, match="dtype"):
        synthetic.mlp(8, dtype="int8")
