"""The doctor: honest provider status, the failing CUDA library named, remedies."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from infralab.core import env
from infralab.tooling import doctor


def test_platform_detection():
    assert env.detect_platform({"BINDER_LAUNCH_HOST": "https://mybinder.org/"}) == "binder"
    assert env.detect_platform({"COLAB_RELEASE_TAG": "release-colab"}) == "colab"
    assert env.detect_platform({}) in ("local", "colab")


def test_cpu_provider_really_works():
    probe = env.probe_provider("CPUExecutionProvider")
    assert probe["usable"] is True
    assert probe["session_providers"][0] == "CPUExecutionProvider"


def test_listed_is_not_usable_without_a_gpu():
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("this ONNX Runtime build does not list CUDA")
    if env.gpu_info():
        pytest.skip("a GPU is present; the no-GPU behaviour cannot be observed here")
    assert "CUDAExecutionProvider" not in env.usable_providers()
    row = next(r for r in env.provider_report() if r["provider"] == "CUDAExecutionProvider")
    assert row["usable"] is False
    # ORT's own log names the library; the doctor must pass that on.
    assert row["failing_library"] and row["failing_library"].startswith("lib")
    assert row["failing_library"] in row["reason"]
    assert "no NVIDIA GPU" in row["reason"]


def test_doctor_cli_names_the_failing_cuda_library():
    out = subprocess.run(
        [sys.executable, "-m", "infralab", "doctor"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "CPUExecutionProvider" in out.stdout and "works" in out.stdout
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers() and not env.gpu_info():
        line = next(
            ln for ln in out.stdout.splitlines() if "CUDAExecutionProvider" in ln and "NOT" in ln
        )
        assert ".so" in line and "failed to load" in line
    # the probe's native noise stays out of the student's terminal
    assert "EP Error" not in out.stdout + out.stderr


def test_doctor_dict_and_table_agree():
    report = doctor.doctor()
    json.dumps(report)  # plain data, usable from code
    table = doctor.doctor_table(report)
    assert table.loc["provider in use", "finding"] == report["provider_in_use"]
    assert "asset minilm" in table.index


def test_warns_loudly_when_two_ort_packages_are_installed(monkeypatch):
    monkeypatch.setattr(
        env, "ort_distributions", lambda: {"onnxruntime": "1.31.1", "onnxruntime-gpu": "1.31.1"}
    )
    report = doctor.doctor(probe_providers=False)
    assert any("More than one ONNX Runtime package" in w for w in report["warnings"])


@pytest.mark.parametrize(
    ("gpus", "expected"),
    [
        ([], "no NVIDIA GPU"),
        (
            [{"name": "T4", "driver_cuda": "12.4"}],
            "needs CUDA 13, but the driver supports CUDA 12.4",
        ),
        ([{"name": "H100", "driver_cuda": "13.0"}], "onnxruntime-gpu[cuda,cudnn]==1.31.1"),
    ],
)
def test_cuda_remedies(gpus, expected):
    assert expected in env.cuda_remedy("1.31.1", gpus, "libcublasLt.so.13")


def test_explain_provider_for_unknown_build():
    text = env.explain_provider("DmlExecutionProvider")
    assert "DmlExecutionProvider" in text


def test_failing_library_parser():
    log = "Failed to load libcublasLt.so.13: libcublasLt.so.13: cannot open shared object file"
    assert env._failing_library(log) == "libcublasLt.so.13"


def test_doctor_names_damaged_and_stale_built_models_with_the_fix(monkeypatch):
    from infralab.engines.models import manifest

    rows = [
        {"model": "encoder", "variant": "int8", "state": "damaged", "reason": "bytes differ",
         "path": "/x/int8.onnx"},
        {"model": "decoder", "variant": "q4", "state": "stale", "reason": "no manifest",
         "path": "/x/q4/model.onnx"},
        {"model": "encoder", "variant": "fp32", "state": "ok", "reason": "ok",
         "path": "/x/fp32.onnx"},
    ]  # fmt: skip
    monkeypatch.setattr(manifest, "check_built", lambda *a, **k: [dict(r) for r in rows])
    report = doctor.doctor(probe_providers=False)
    table = dict(doctor.doctor_rows(report))
    assert table["built models"].startswith("1 verified") and "1 DAMAGED" in table["built models"]
    assert "bytes differ" in table["  encoder int8"]
    damaged = [w for w in report["warnings"] if "encoder int8" in w]
    assert damaged and "python -m infralab fetch --verify" in damaged[0]
    assert any("decoder q4" in w and "build-models" in w for w in report["warnings"])


def test_doctor_reports_a_broken_model_check_without_failing(monkeypatch):
    from infralab.engines.models import manifest

    def broken(*a, **k):
        raise RuntimeError("cannot read the cache")

    monkeypatch.setattr(manifest, "check_built", broken)
    report = doctor.doctor(probe_providers=False)
    assert report["built_models"] == []
    assert any("cannot read the cache" in w for w in report["warnings"])
