"""Check helpers, the timing harness and saved results."""

from __future__ import annotations

import json
import math

import pytest

from infralab.core import results
from infralab.core.results import recorded_runs
from infralab.core.timing import measure, percentiles
from infralab.tooling.checks import (
    CheckFailed,
    check,
    check_close,
    check_type,
    run_student_function,
)


def test_check_passes_with_short_confirmation():
    ok = check(True, ok="all good", problem="nope")
    assert "all good" in repr(ok) and "✓" in ok._repr_html_()


def test_failed_check_carries_a_hint_and_renders_without_traceback():
    with pytest.raises(CheckFailed) as info:
        check(False, ok="", problem="p99 is missing", hint="use percentiles()")
    rendered = "\n".join(info.value._render_traceback_())
    assert "p99 is missing" in rendered and "use percentiles()" in rendered
    assert "Traceback" not in rendered


def test_check_close_explains_how_far_off():
    with pytest.raises(CheckFailed, match="50% off"):
        check_close(1.5, 1.0, rel=0.1, name="ratio")
    with pytest.raises(CheckFailed, match="should be a number"):
        check_close("fast", 1.0)
    with pytest.raises(CheckFailed, match="NaN"):
        check_close(float("nan"), 1.0)
    assert "ratio" in check_close(1.04, 1.0, name="ratio")


def test_check_type_and_placeholders():
    with pytest.raises(CheckFailed, match="should be a dict"):
        check_type([1], dict, name="result")

    def placeholder():
        raise NotImplementedError

    with pytest.raises(CheckFailed, match="still the placeholder"):
        run_student_function(placeholder)
    with pytest.raises(CheckFailed, match="ZeroDivisionError"):
        run_student_function(lambda: 1 / 0)


def test_percentiles():
    p = percentiles(list(range(1, 101)))
    assert p["p50"] == pytest.approx(50.5) and p["p99"] == pytest.approx(99.01)
    assert all(math.isnan(v) for v in percentiles([]).values())


def test_measure_excludes_warmup_and_counts_items():
    calls = []
    timing = measure(lambda: calls.append(1), warmup=3, repeats=5, items_per_call=4)
    assert len(calls) == 8 and len(timing.seconds) == 5
    assert timing.items_per_s > 0 and timing.summary()["items_per_call"] == 4
    with pytest.raises(ValueError):
        measure(lambda: None, repeats=0)


def test_results_prefer_measured_over_recorded(tmp_path, monkeypatch):
    monkeypatch.setenv(results.RESULTS_ENV, str(tmp_path / "mine"))
    recorded = tmp_path / "recorded"
    recorded.mkdir()
    run = {"name": "serving", "machine": {"cpus": 2}, "command": "bench", "data": {"rps": 1.0}}
    (recorded / "serving.json").write_text(json.dumps(run))
    monkeypatch.setattr(recorded_runs, "RECORDED_DIR", recorded)
    record, source = results.load_result("serving")
    assert source == "recorded" and record["data"]["rps"] == 1.0
    results.save_result("serving", {"rps": 2.0})
    record, source = results.load_result("serving")
    assert source == "measured" and record["data"]["rps"] == 2.0 and record["machine"]["cpus"]
    with pytest.raises(FileNotFoundError, match="run the lesson"):
        results.load_result("nothing")
    with pytest.raises(ValueError):
        results.save_result("../escape", {})
