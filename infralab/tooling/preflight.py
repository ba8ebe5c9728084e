"""Pre-flight for a room: will the course run here, before thirty people open it?

The doctor describes one machine for one student; the instructor needs a verdict per risk
that can stop a workshop: how long until the first cell answers, whether memory leaves room
for the heaviest notebook, whether a GPU that is present is really used (Colab), whether the
price data is stale, and whether the models are already fetched and built. Each check says
``ok``, ``warn``, ``fail`` or ``skip`` and why; only a ``fail`` makes the command exit non-zero.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from infralab.core.errors import InfralabError
from infralab.core.paths import PRICING_DIR, REPO_ROOT

STATUSES = ("ok", "warn", "fail", "skip")
MAX_PRICE_AGE_DAYS = 180
HEADROOM_MB = 512  # beyond the heaviest notebook: the browser tab, a second kernel, noise
SLOW_FIRST_CELL_S = 30.0  # a room waits; past this, pre-warm (Binder) or pre-build


class PreflightError(ValueError, InfralabError):
    """A pre-flight check that reports something the table cannot show."""


@dataclass
class Check:
    """One line of the pre-flight table."""

    name: str
    status: str
    finding: str

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise PreflightError(
                f"status must be one of {STATUSES}, not {self.status!r}",
                hint="A check reports 'ok', 'warn', 'fail' or 'skip' (only 'fail' stops the room).",
            )


# ---------------------------------------------------------------- time to first cell
def _time_import() -> tuple[float, str]:
    """Seconds for a fresh interpreter to import the kit and run the doctor's quick probe."""
    code = "from infralab.tooling import doctor; doctor.doctor(probe_providers=False)"
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=REPO_ROOT
    )
    elapsed = time.perf_counter() - started
    error = "" if proc.returncode == 0 else (proc.stderr.strip().splitlines() or ["?"])[-1]
    return elapsed, error


def _time_kernel() -> tuple[float, str]:
    """Seconds to start a Jupyter kernel and run ``import infralab`` in it (what cell 1 waits for)."""
    try:
        import jupyter_client  # noqa: F401

        from infralab.tooling.notebooks import quiet_kernel_manager
    except ImportError as exc:
        return 0.0, f"jupyter_client is not installed ({exc}); install the kit's `lab` extra"
    started = time.perf_counter()
    km = quiet_kernel_manager(kernel_name="python3")  # IPC: no TCP warning on stderr
    kc = None
    try:
        km.start_kernel(cwd=str(REPO_ROOT))
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=120)
    except Exception as exc:  # no kernelspec, a broken ipykernel: the room cannot start
        if kc is not None:
            kc.stop_channels()
        if km.has_kernel:
            km.shutdown_kernel(now=True)
        return 0.0, f"{type(exc).__name__}: {exc}"
    error = ""
    try:
        reply = kc.execute_interactive("import infralab", timeout=120, output_hook=lambda m: None)
        if reply["content"].get("status") != "ok":
            error = f"{reply['content'].get('ename')}: {reply['content'].get('evalue')}"
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    finally:
        elapsed = time.perf_counter() - started
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    return elapsed, error


def check_first_cell(kernel: bool = True) -> Check:
    """Time to first cell: import + quick doctor in a fresh process, and a kernel's first cell."""
    import_s, error = _time_import()
    if error:
        return Check("time to first cell", "fail", f"`import infralab` failed: {error}")
    parts = [f"import + quick doctor {import_s:.1f} s"]
    worst = import_s
    if kernel:
        kernel_s, error = _time_kernel()
        if error:
            return Check("time to first cell", "fail", f"a Jupyter kernel did not start: {error}")
        parts.append(f"kernel start + `import infralab` {kernel_s:.1f} s")
        worst = max(worst, kernel_s)
    else:
        parts.append("kernel start not timed (--no-kernel)")
    finding = ", ".join(parts) + " (measured now)"
    if worst > SLOW_FIRST_CELL_S:
        return Check(
            "time to first cell",
            "warn",
            finding + f"; over {SLOW_FIRST_CELL_S:.0f} s: a busy or cold machine. Pre-warm the "
            "image (Binder) and re-run this before the room arrives.",
        )
    return Check("time to first cell", "ok", finding)


# ---------------------------------------------------------------- memory headroom
def peaks_from_report(path: Path) -> dict[str, float]:
    """Peak RSS (MB) per notebook from a ``report-notebooks`` CSV."""
    peaks: dict[str, float] = {}
    with Path(path).open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            try:
                peaks[row["notebook"]] = float(row["peak_rss_mb"])
            except (KeyError, ValueError):
                continue
    return peaks


def peaks_from_guide(path: Path) -> dict[str, float]:
    """Peak RSS (MB) per notebook from the measured table in docs/instructor.md.

    The table may hold several runs side by side (quiet and busy machine): every column whose
    header says *peak* counts, and the highest figure is kept.
    """
    peaks: dict[str, float] = {}
    columns: list[int] = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2:
            continue
        if cells[0] == "notebook":
            columns = [i for i, c in enumerate(cells) if "peak" in c.lower()]
            continue
        if columns and re.fullmatch(r"(course|labs)/[\w/.-]+\.ipynb", cells[0]):
            values = []
            for i in columns:
                try:
                    values.append(float(cells[i]))
                except (IndexError, ValueError):
                    continue
            if values:
                peaks[cells[0]] = max(values)
    return peaks


# Notebooks whose heavy part sizes itself to the machine: lesson 08 asks the doctor whether
# Ray (and Ray Serve) fit and skips what does not, so its full-Ray peak must not fail a room
# that can run everything else. The doctor's "lesson 08 (Ray)" row covers it.
SELF_SIZING = ("08_training_and_fleet",)


def kit_peak(root: Path = REPO_ROOT) -> tuple[str, float, str] | None:
    """The heaviest notebook that every room must fit: (name, peak MB, source), or None."""
    report = root / "artifacts" / "notebook_report.csv"
    guide = root / "docs" / "instructor.md"
    for path, label in (
        (report, "measured on this machine by `make report`"),
        (guide, "recorded in docs/instructor.md"),
    ):
        if path.is_file():
            peaks = peaks_from_report(path) if path.suffix == ".csv" else peaks_from_guide(path)
            peaks = {n: mb for n, mb in peaks.items() if not any(k in n for k in SELF_SIZING)}
            if peaks:
                name = max(peaks, key=peaks.__getitem__)
                return name, peaks[name], label
    return None


def available_memory_mb() -> tuple[float, str]:
    """Memory a new kernel can still get: the container's limit minus its use, or the host's."""
    import psutil

    available = psutil.virtual_memory().available
    where = "machine"
    for limit_file, used_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
        ),
    ):
        try:
            limit = Path(limit_file).read_text().strip()
            used = int(Path(used_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) - used < available:
            available, where = int(limit) - used, "container limit"
        break
    return available / 2**20, where


def check_memory(
    available_mb: float | None = None,
    peak: tuple[str, float, str] | None = None,
    root: Path = REPO_ROOT,
) -> Check:
    """Free memory against the kit's heaviest notebook plus a margin."""
    where = "given"
    if available_mb is None:
        available_mb, where = available_memory_mb()
    peak = peak or kit_peak(root)
    if peak is None:
        return Check(
            "memory headroom",
            "warn",
            f"{available_mb:,.0f} MB free ({where}); no per-notebook peak known "
            "(run `make report` to measure one)",
        )
    name, peak_mb, source = peak
    finding = (
        f"{available_mb:,.0f} MB free ({where}) vs heaviest notebook {name} at "
        f"{peak_mb:,.0f} MB ({source})"
    )
    if available_mb < peak_mb:
        return Check(
            "memory headroom",
            "fail",
            finding + ": the heaviest notebook would not fit. Close other kernels or use a "
            "bigger machine.",
        )
    if available_mb < peak_mb + HEADROOM_MB:
        return Check(
            "memory headroom",
            "warn",
            finding + f": under {HEADROOM_MB} MB to spare; run one notebook at a time.",
        )
    return Check("memory headroom", "ok", finding)


# ---------------------------------------------------------------- GPU present and used
def check_gpu(gpus: list[dict[str, str]] | None = None, platform: str | None = None) -> Check:
    """A GPU that is present must really run a session; no GPU is a skip (or a warn on Colab)."""
    from infralab.core import env

    gpus = env.gpu_info() if gpus is None else gpus
    platform = env.detect_platform() if platform is None else platform
    if not gpus:
        if platform == "colab":
            return Check(
                "GPU present and used",
                "warn",
                "Colab runtime without a GPU: Runtime > Change runtime type > GPU, then run "
                "this again. Lessons 03 and 04 show recorded GPU runs meanwhile.",
            )
        return Check(
            "GPU present and used",
            "skip",
            f"no NVIDIA GPU on this {platform} machine (no nvidia-smi, or it sees none); the "
            "GPU lessons show the kit's recorded GPU runs",
        )
    try:
        import onnxruntime as ort
    except ImportError as exc:
        return Check("GPU present and used", "fail", f"ONNX Runtime cannot be imported: {exc}")
    name = f"{gpus[0].get('name', 'GPU')} ({gpus[0].get('memory', '?')})"
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return Check(
            "GPU present and used",
            "fail",
            f"{name} is present but this ONNX Runtime build has no CUDA provider: "
            + env.explain_provider("cuda"),
        )
    env.preload_cuda_libraries()
    probe = env.probe_provider("CUDAExecutionProvider")
    used = probe.get("session_providers") or []
    if probe["usable"]:
        return Check(
            "GPU present and used",
            "ok",
            f"{name}: a test session ran on {used[0]} (session providers {used}, measured now)",
        )
    lib = probe.get("failing_library")
    reason = f"{lib} failed to load" if lib else (probe["error"] or f"session fell back to {used}")
    remedy = env.cuda_remedy(ort.__version__, gpus, lib)
    return Check(
        "GPU present and used", "fail", f"{name} is present but unused: {reason}. {remedy}"
    )


# ---------------------------------------------------------------- price data age
def price_dates(folder: Path) -> dict[str, dt.date]:
    """The oldest ``as_of`` date in each price file."""
    oldest: dict[str, dt.date] = {}
    for path in sorted(Path(folder).glob("*.csv")):
        with path.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                try:
                    date = dt.date.fromisoformat((row.get("as_of") or "").strip()[:10])
                except ValueError:
                    continue
                if path.name not in oldest or date < oldest[path.name]:
                    oldest[path.name] = date
    return oldest


def check_price_age(
    folder: Path | None = None,
    today: dt.date | None = None,
    max_age_days: int = MAX_PRICE_AGE_DAYS,
) -> Check:
    """Prices go stale: warn when a price file holds a row older than ``max_age_days``."""
    folder = Path(folder or PRICING_DIR)
    today = today or dt.date.today()
    dates = price_dates(folder)
    if not dates:
        return Check("price data age", "fail", f"no dated price rows (as_of) under {folder}")
    ages = {name: (today - date).days for name, date in dates.items()}
    stale = {name: age for name, age in ages.items() if age > max_age_days}
    oldest = max(ages, key=ages.__getitem__)
    finding = f"oldest row {dates[oldest]} in {oldest} ({ages[oldest]} days old)"
    if stale:
        listed = ", ".join(f"{n} {dates[n]}" for n in sorted(stale))
        return Check(
            "price data age",
            "warn",
            f"{finding}; older than {max_age_days} days: {listed}. Check the sources in "
            "datasets/pricing/README.md before quoting these prices.",
        )
    return Check("price data age", "ok", finding + f"; all within {max_age_days} days")


# ---------------------------------------------------------------- models fetched and built
def check_models() -> Check:
    """Fetched and verified model files, and the ONNX models built from them."""
    from infralab.core import assets
    from infralab.engines.models import decoder, encoder

    missing = [key for key in assets.ASSETS if not assets.status(key)["verified"]]
    if missing:
        return Check(
            "models fetched and built",
            "warn",
            f"not fetched yet: {', '.join(missing)}. Run `python -m infralab fetch` and "
            "`python -m infralab build-models` before the room arrives (lessons would "
            "download them live).",
        )
    want = {f"encoder {v}": encoder.model_path(v) for v in ("fp32", "int8", "fp16", "fp32-unfused")}
    want |= {f"decoder {v}": decoder.model_dir(v) / "model.onnx" for v in decoder.CPU_VARIANTS}
    unbuilt = [name for name, path in want.items() if not path.is_file()]
    if unbuilt:
        return Check(
            "models fetched and built",
            "warn",
            f"fetched, but not built: {', '.join(unbuilt)}. Run `python -m infralab "
            "build-models` (lessons would build them live, slowly).",
        )
    return Check(
        "models fetched and built",
        "ok",
        f"{', '.join(assets.ASSETS)} verified; {len(want)} ONNX models built in "
        f"{assets.cache_dir() / 'models'}",
    )


# ---------------------------------------------------------------- the table
def _guard(name: str, func: Callable[[], Check]) -> Check:
    """A check that crashes is a failure with its reason, never a traceback for the room."""
    try:
        return func()
    except Exception as exc:
        return Check(name, "fail", f"the check itself failed: {type(exc).__name__}: {exc}")


def run_checks(kernel: bool = True, max_price_age_days: int = MAX_PRICE_AGE_DAYS) -> list[Check]:
    """Every pre-flight check, in the order a room meets them."""
    from tqdm.auto import tqdm

    steps: list[tuple[str, Callable[[], Check]]] = [
        ("time to first cell", lambda: check_first_cell(kernel=kernel)),
        ("memory headroom", check_memory),
        ("GPU present and used", check_gpu),
        ("price data age", lambda: check_price_age(max_age_days=max_price_age_days)),
        ("models fetched and built", check_models),
    ]
    disable = not sys.stderr.isatty() and "INFRALAB_PROGRESS" not in os.environ
    return [
        _guard(name, func)
        for name, func in tqdm(steps, desc="preflight", unit="check", disable=disable)
    ]


def format_table(checks: list[Check], width: int = 100) -> str:
    """The checks as a plain-text table (terminal, CI log)."""
    import textwrap

    name_w = max(len("check"), *(len(c.name) for c in checks))
    head = f"{'check':<{name_w}}  {'status':<6}  finding"
    lines = [head, "-" * min(width, len(head) + 40)]
    indent = " " * (name_w + 10)
    for c in checks:
        wrapped = textwrap.wrap(c.finding, width=max(40, width - len(indent))) or [""]
        lines.append(f"{c.name:<{name_w}}  {c.status:<6}  {wrapped[0]}")
        lines.extend(indent + more for more in wrapped[1:])
    counts = {s: sum(c.status == s for c in checks) for s in STATUSES}
    verdict = "FAIL" if counts["fail"] else "ready"
    lines.append("")
    lines.append(verdict + ": " + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
    return "\n".join(lines)


def exit_code(checks: list[Check]) -> int:
    """Non-zero only when a check failed: warnings and skips never stop CI."""
    return 1 if any(c.status == "fail" for c in checks) else 0


def main(kernel: bool = True, max_price_age_days: int = MAX_PRICE_AGE_DAYS) -> int:
    checks = run_checks(kernel=kernel, max_price_age_days=max_price_age_days)
    print("infralab preflight")
    print(format_table(checks))
    return exit_code(checks)
