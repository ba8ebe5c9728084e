"""The llama.cpp peer of ``bench generate``: skipped with a reason when absent, never faked."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from infralab.engines.models import decoding
from infralab.tooling.bench import generate
from infralab.tooling.bench.llama_cpp import LlamaCppPeer, LlamaCppUnavailable, default_python

needs_no_llama_cpp = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is not None,
    reason="llama-cpp-python is installed in this environment; these tests check its absence",
)


@needs_no_llama_cpp
def test_without_llama_cpp_the_comparison_says_why_and_how():
    assert default_python() is None
    out = generate.llama_cpp_decode_tok_s(None, 2, 8, ort_gen=None)
    assert set(out) == {"skipped"}
    assert "--llama-cpp-python" in out["skipped"] and "pip install" in out["skipped"]


@needs_no_llama_cpp
def test_a_python_without_llama_cpp_is_refused_with_the_fix(tmp_path):
    with pytest.raises(LlamaCppUnavailable, match="pip install llama-cpp-python"):
        LlamaCppPeer(sys.executable, tmp_path / "model.gguf", 2)


def test_a_missing_interpreter_is_a_clear_error(tmp_path):
    with pytest.raises(LlamaCppUnavailable, match="cannot start"):
        LlamaCppPeer(tmp_path / "no-such-python", tmp_path / "model.gguf", 2)


@pytest.mark.parametrize("bad", [0, -2, 1.5, "2"])
def test_threads_must_be_a_whole_number(bad, tmp_path):
    with pytest.raises(ValueError, match="threads"):
        LlamaCppPeer(sys.executable, tmp_path / "model.gguf", bad)


def test_read_bandwidth_uses_the_threads_it_is_given():
    for threads in (1, 2):
        gbs = decoding.read_bandwidth_gbs(mb=8, repeats=3, threads=threads)
        assert 0.1 < gbs < 10_000


def test_cli_takes_a_llama_cpp_python():
    args = generate.build_parser().parse_args(["--llama-cpp-python", "/opt/py/bin/python"])
    assert args.llama_cpp_python == "/opt/py/bin/python"
