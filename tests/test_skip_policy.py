"""The test setup itself: under CI a skip for anything but a missing accelerator fails the run."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = (Path(__file__).parent / "conftest.py").read_text()
TESTS = """
import pytest

def test_passes():
    assert True

def test_skips_for_a_broken_thing():
    pytest.skip("embedder failed: boom")

def test_skips_for_no_gpu():
    pytest.skip("no usable CUDA provider on this machine")
"""


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    for name in ("CI", "INFRALAB_STRICT_SKIPS", "INFRALAB_NO_SKIP_EXCEPT"):
        monkeypatch.delenv(name, raising=False)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_sample=TESTS)
    return pytester


def test_a_disallowed_skip_fails_the_run_under_ci(suite, monkeypatch):
    monkeypatch.setenv("CI", "true")
    result = suite.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, skipped=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*skips that are not allowed*", "*embedder failed: boom*"])
    assert "no usable CUDA provider" not in result.stdout.str().split("not allowed")[1]


def test_outside_ci_the_same_skip_is_only_reported(suite):
    result = suite.runpytest_inprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*would fail under CI=true*"])


def test_a_reason_can_be_allowed_for_one_machine(suite, monkeypatch):
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("INFRALAB_NO_SKIP_EXCEPT", "embedder failed")
    result = suite.runpytest_inprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK


@pytest.mark.slow
def test_a_disallowed_skip_fails_the_run_under_xdist_too(suite, monkeypatch):
    """`make unit` runs the tests in xdist workers: the skips they report reach the controller,
    which applies the same policy."""
    pytest.importorskip("xdist", reason="pytest-xdist missing: pip install -e '.[dev]'")
    monkeypatch.setenv("CI", "true")
    result = suite.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "--dist", "loadfile")
    result.assert_outcomes(passed=1, skipped=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*skips that are not allowed*", "*embedder failed: boom*"])
