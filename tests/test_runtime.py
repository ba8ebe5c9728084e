"""Sessions run where asked, or say why: never a silent CPU fallback."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from infralab.core import runtime
from infralab.engines.models import synthetic


@pytest.fixture(scope="module")
def tiny_model() -> bytes:
    return synthetic.mlp(16, 2).SerializeToString()


def test_cpu_session_runs_on_cpu(tiny_model: bytes) -> None:
    sess = runtime.make_session(tiny_model, "cpu", threads=1)
    assert sess.get_providers()[0] == "CPUExecutionProvider"
    assert runtime.session_provider(sess) == "cpu"
    y = sess.run(None, {"x": np.ones((3, 16), np.float32)})[0]
    assert y.shape == (3, 16)


def test_spinning_off_by_default_and_threads_default_to_physical_cores() -> None:
    opts = runtime.session_options()
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert opts.intra_op_num_threads == runtime.physical_cores()
    spin = runtime.session_options(spinning=True, threads=1)
    assert spin.get_session_config_entry("session.intra_op.allow_spinning") == "1"
    assert spin.intra_op_num_threads == 1


def _cpu_over_gaps_between_runs(
    spinning: bool | str, gaps: int = 24, gap_s: float = 0.025
) -> float:
    """CPU seconds this process burns over ``gaps`` short sleeps between tiny runs (a decode
    loop's shape); ONNX Runtime's spinning workers keep spinning for a while after a run."""
    import time

    k = 512
    model = synthetic.mlp(k, 1)
    sess = runtime.make_session(model.SerializeToString(), threads=2, spinning=spinning)
    x = np.ones((64, k), np.float32)
    sess.run(None, {"x": x})
    before = time.process_time()
    for _ in range(gaps):  # each run is ~0.3 ms of work; the gaps are 0.6 s in all
        sess.run(None, {"x": x})
        time.sleep(gap_s)
    return time.process_time() - before


def test_spinning_run_spins_inside_a_run_only() -> None:
    run = runtime.session_options(spinning="run")
    assert run.get_session_config_entry("session.intra_op.allow_spinning") == "1"
    assert run.get_session_config_entry("session.force_spinning_stop") == "1"
    # the measure sees spinning: always-on workers burn CPU while the caller sleeps...
    assert _cpu_over_gaps_between_runs(True) > 0.1
    # ...and "run" workers do not
    assert _cpu_over_gaps_between_runs("run") < 0.1


@pytest.mark.parametrize("bad", ["yes", 1, None])
def test_bad_spinning_says_what_is_allowed(bad: object) -> None:
    with pytest.raises(ValueError, match="spinning must be False, True or 'run'"):
        runtime.session_options(spinning=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"provider": "gpu"}, "provider must be"),
        ({"opt_level": "max"}, "opt_level must be"),
        ({"threads": 0}, "threads must be"),
    ],
)
def test_bad_arguments_say_what_is_allowed(tiny_model: bytes, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        runtime.make_session(tiny_model, **kwargs)


def test_missing_model_file_says_how_to_build(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="build-models"):
        runtime.make_session(tmp_path / "nope.onnx")


def test_cuda_that_falls_back_raises_with_reason(tiny_model: bytes, monkeypatch) -> None:
    """ORT lists CUDA and silently runs on CPU: the kit must notice and explain."""
    import onnxruntime as ort

    class FellBack:
        def get_providers(self) -> list[str]:
            return ["CPUExecutionProvider"]

    monkeypatch.setattr(
        ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    monkeypatch.setattr(runtime, "_create", lambda *a, **k: FellBack())
    monkeypatch.setattr(runtime, "explain", lambda name: "libcublasLt.so.13 failed to load")
    with pytest.raises(runtime.ProviderUnavailable, match="libcublasLt"):
        runtime.make_session(tiny_model, "cuda")


def test_auto_warns_and_uses_cpu_when_cuda_does_not_run(tiny_model: bytes, monkeypatch) -> None:
    def no_cuda(*args, **kwargs):
        raise runtime.ProviderUnavailable("no NVIDIA GPU here")

    monkeypatch.setattr(runtime, "_cuda_session", no_cuda)
    with pytest.warns(UserWarning, match="no NVIDIA GPU here"):
        sess = runtime.make_session(tiny_model, "auto")
    assert runtime.session_provider(sess) == "cpu"


@pytest.mark.skipif(runtime.cuda_usable(), reason="CUDA works here")
def test_cuda_request_on_a_cpu_machine_raises(tiny_model: bytes) -> None:
    with pytest.raises(runtime.ProviderUnavailable) as info:
        runtime.make_session(tiny_model, "cuda")
    assert "CUDAExecutionProvider" in str(info.value)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert runtime.session_provider(runtime.make_session(tiny_model, "auto")) == "cpu"


def test_iobinding_matches_plain_run(tiny_model: bytes) -> None:
    sess = runtime.make_session(tiny_model, "cpu", threads=1)
    x = np.random.default_rng(0).standard_normal((4, 16), dtype=np.float32)
    plain = sess.run(None, {"x": x})[0]
    bound = runtime.run_bound(sess, {"x": x})[0]
    np.testing.assert_allclose(bound, plain, rtol=1e-6)
    runner = runtime.bound_runner(sess, {"x": x}, copy_back=False)
    assert runner() is None


@pytest.mark.gpu
@pytest.mark.skipif(not runtime.cuda_usable(), reason="no usable CUDA provider on this machine")
def test_cuda_session_and_iobinding(tiny_model: bytes) -> None:
    sess = runtime.make_session(tiny_model, "cuda")
    assert runtime.session_provider(sess) == "cuda"
    x = np.ones((2, 16), np.float32)
    np.testing.assert_allclose(
        runtime.run_bound(sess, {"x": x})[0], sess.run(None, {"x": x})[0], rtol=1e-5
    )
