"""The room's pre-flight: each check's verdict from known inputs, and the real command in CI."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infralab.core import env
from infralab.tooling import preflight

REPO_ROOT = Path(__file__).resolve().parents[1]
CHECK_NAMES = [
    "time to first cell",
    "memory headroom",
    "GPU present and used",
    "price data age",
    "models fetched and built",
]


@pytest.mark.slow
def test_the_command_reports_every_check_and_exits_zero_without_a_failure() -> None:
    env_vars = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "infralab", "preflight"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO_ROOT,
        env=env_vars,
    )
    out = proc.stdout
    rows = {}
    for line in out.splitlines():
        for name in CHECK_NAMES:
            if line.startswith(name + " "):
                rows[name] = line[len(name) :].split()[0]
    assert set(rows) == set(CHECK_NAMES), out
    assert all(status in preflight.STATUSES for status in rows.values()), rows
    failed = [n for n, s in rows.items() if s == "fail"]
    assert proc.returncode == (1 if failed else 0), out + proc.stderr
    assert ("FAIL:" in out) == bool(failed)
    if not env.gpu_info():  # CI and this kit's machines: no GPU, so the check is skipped
        gpu_line = next(line for line in out.splitlines() if line.startswith("GPU present"))
        expected = "warn" if env.detect_platform() == "colab" else "skip"
        assert rows["GPU present and used"] == expected
        assert "no NVIDIA GPU" in gpu_line or "Colab runtime without a GPU" in gpu_line


def test_exit_code_is_non_zero_only_on_a_failure() -> None:
    ok = preflight.Check("a", "ok", "")
    assert (
        preflight.exit_code(
            [ok, preflight.Check("b", "warn", ""), preflight.Check("c", "skip", "")]
        )
        == 0
    )
    assert preflight.exit_code([ok, preflight.Check("d", "fail", "why")]) == 1
    table = preflight.format_table([ok, preflight.Check("d", "fail", "the reason")])
    assert "the reason" in table and table.splitlines()[-1].startswith("FAIL")
    with pytest.raises(ValueError, match="status must be one of"):
        preflight.Check("x", "maybe", "")


def _prices(folder: Path, dates: dict[str, list[str]]) -> Path:
    folder.mkdir()
    for name, rows in dates.items():
        lines = ["provider,usd_per_hour,source,as_of"] + [f"p,1.0,src,{d}" for d in rows]
        (folder / name).write_text("\n".join(lines) + "\n")
    return folder


def test_price_age_warns_on_the_oldest_row_of_any_file(tmp_path: Path) -> None:
    folder = _prices(
        tmp_path / "pricing",
        {"a.csv": ["2026-11-01", "2026-03-01"], "b.csv": ["2026-10-01", "not a date"]},
    )
    today = dt.date(2026, 11, 29)
    assert preflight.price_dates(folder) == {
        "a.csv": dt.date(2026, 3, 1),
        "b.csv": dt.date(2026, 10, 1),
    }
    stale = preflight.check_price_age(folder, today=today, max_age_days=180)
    assert stale.status == "warn"
    assert "a.csv 2026-03-01" in stale.finding and "b.csv" not in stale.finding.split("days:")[1]
    fresh = preflight.check_price_age(folder, today=today, max_age_days=365)
    assert fresh.status == "ok" and "273 days old" in fresh.finding
    empty = tmp_path / "empty"
    empty.mkdir()
    assert preflight.check_price_age(empty, today=today).status == "fail"


def test_memory_verdicts_against_the_heaviest_notebook() -> None:
    peak = ("course/03_x.ipynb", 1200.0, "recorded")
    assert preflight.check_memory(1000, peak).status == "fail"
    assert preflight.check_memory(1500, peak).status == "warn"
    good = preflight.check_memory(4000, peak)
    assert (
        good.status == "ok" and "course/03_x.ipynb" in good.finding and "1,200 MB" in good.finding
    )


def test_peaks_come_from_the_guide_table_and_from_a_report(tmp_path: Path) -> None:
    guide = preflight.peaks_from_guide(REPO_ROOT / "docs" / "instructor.md")
    lessons = sorted(
        p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "course").glob("*.ipynb")
    )
    assert set(lessons) <= set(guide), "the guide's measured table misses a lesson"
    assert all(mb > 0 for mb in guide.values())
    report = tmp_path / "artifacts" / "notebook_report.csv"
    report.parent.mkdir()
    report.write_text(
        "notebook,wall_s,peak_rss_mb,within_60s,within_1_5gb,error\n"
        "course/00_a.ipynb,1.0,100,True,True,\ncourse/01_b.ipynb,2.0,900,True,True,\n"
    )
    assert preflight.kit_peak(tmp_path) == (
        "course/01_b.ipynb",
        900.0,
        "measured on this machine by `make report`",
    )
    assert preflight.kit_peak(tmp_path / "nowhere") is None


def test_guide_table_keeps_the_highest_peak_of_several_runs(tmp_path: Path) -> None:
    guide = tmp_path / "guide.md"
    guide.write_text(
        "| notebook | wall time (s), quiet | peak RSS (MB), quiet | wall (s), busy | peak RSS (MB), busy |\n"
        "| --- | --- | --- | --- | --- |\n"
        "| course/06_rag.ipynb | 13.8 | 1014 | 112.4 | 1787 |\n"
        "| labs/07_x.ipynb | 1.1 | 101 | - | - |\n"
        "| not a notebook | 1 | 2 | 3 | 4 |\n"
    )
    assert preflight.peaks_from_guide(guide) == {
        "course/06_rag.ipynb": 1787.0,
        "labs/07_x.ipynb": 101.0,
    }


def test_gpu_check_skips_without_a_gpu_and_tells_colab_users_what_to_do() -> None:
    skipped = preflight.check_gpu(gpus=[], platform="local")
    assert skipped.status == "skip" and "no NVIDIA GPU" in skipped.finding
    colab = preflight.check_gpu(gpus=[], platform="colab")
    assert colab.status == "warn" and "Change runtime type > GPU" in colab.finding


def test_gpu_present_but_unusable_fails_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("this ONNX Runtime build has no CUDA provider to probe")
    if env.probe_provider("CUDAExecutionProvider")["usable"]:
        pytest.skip("CUDA really works here: the failure path cannot be shown")
    fake = [{"name": "Tesla T4", "memory": "15360 MiB", "driver": "535", "driver_cuda": "12.2"}]
    check = preflight.check_gpu(gpus=fake, platform="colab")
    assert check.status == "fail"
    assert "present but unused" in check.finding and "CUDA" in check.finding


def test_a_crashing_check_is_a_failure_with_its_reason() -> None:
    def boom() -> preflight.Check:
        raise RuntimeError("disk on fire")

    check = preflight._guard("x", boom)
    assert check.status == "fail" and "disk on fire" in check.finding
