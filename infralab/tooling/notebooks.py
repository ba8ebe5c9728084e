"""Notebook housekeeping: generated header cells, outputs stripped, and the time/memory report.

Every notebook starts with two generated cells (launch badges, and the set-up cell that makes
Colab work), so they are written here from one template rather than by hand in each file.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import Any

from infralab.core.paths import REPO_ROOT
from infralab.core.project import badges_markdown

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "show_source",
]


HEADER_TAG = "infralab-header"
SETUP_TAG = "infralab-setup"

SETUP_TEMPLATE = """\
# Set-up (generated): on Colab this installs the kit ({install_time} the first time) and can
# be run again after any interruption; anywhere else it does nothing.
import subprocess
import sys
from pathlib import Path

REPO, BRANCH = "{repo}", "{branch}"
ROOT = Path("/content/infralab")
if "google.colab" in sys.modules:
    if not (ROOT / "infralab" / "tooling" / "colab.py").is_file():  # no copy yet, or a half one
        print(f"infralab set-up: downloading the course ({{BRANCH}} branch) ...")
        part = ROOT.with_name(ROOT.name + ".partial")  # renamed only once complete
        subprocess.run(["rm", "-rf", str(part), str(ROOT)], check=True)
        cmd = ["git", "clone", "-q", "--depth", "1", "--branch", BRANCH, REPO, str(part)]
        subprocess.run(cmd, check=True)
        part.rename(ROOT)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from infralab.tooling.colab import bootstrap

    bootstrap(
        "{path}",
        branch=BRANCH,
        repo_url=REPO,
        root=ROOT,
    )"""


def show_source(func: Any) -> Any:
    """The kit's own function as highlighted code, with the file and line it lives at: a
    lesson shows the formula it relies on, never a copy of it."""
    import inspect

    from IPython.display import Code

    lines, start = inspect.getsourcelines(func)
    where = Path(inspect.getfile(func)).resolve()
    try:
        where = where.relative_to(REPO_ROOT)
    except ValueError:
        pass
    head = f"# {func.__module__}.{func.__qualname__}  ({where.as_posix()}, line {start})\n"
    return Code(head + "".join(lines), language="python")


def course_notebooks(root: Path = REPO_ROOT) -> list[Path]:
    """Lessons, lab sources and student labs, in course order."""
    return (
        sorted((root / "course").glob("*.ipynb"))
        + sorted((root / "labs" / "solutions").glob("*.ipynb"))
        + sorted((root / "labs").glob("*.ipynb"))
    )


def read(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def dumps(nb: dict[str, Any]) -> str:
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def _source_text(source: Any) -> str:
    text = "".join(source) if isinstance(source, list) else str(source or "")
    return text.replace("\r\n", "\n").rstrip("\n")


def content(nb: dict[str, Any]) -> list[tuple[Any, ...]]:
    """What a notebook says, independent of who saved it and how.

    Per cell: its type, its source (a list of lines or one string, ``\\r\\n``, a trailing
    newline: all the same), its tags, its slide type and its speaker notes. Left out, because every front end
    rewrites them on save without changing the lesson: cell ids, outputs and execution counts
    (the committed-clean check looks at those), the kernel's ``language_info`` and
    ``kernelspec``, widget state, Colab's ``metadata.colab``/``accelerator``/``outputId``,
    JupyterLab's ``collapsed``/``scrolled``/``execution`` timings, key order, indentation,
    ``nbformat_minor``. :func:`sync` with ``check`` compares this, so opening a lesson and
    saving it (JupyterLab, RISE's autosave, Colab, ``nbformat.write``) never puts it out of step.
    """
    cells = []
    for cell in nb.get("cells", []):
        meta = cell.get("metadata", {}) or {}
        show = meta.get("slideshow")
        slide = show.get("slide_type") if isinstance(show, dict) else None
        notes = meta.get("speaker_notes") or []
        cells.append(
            (
                cell.get("cell_type"),
                _source_text(cell.get("source", "")),
                tuple(sorted(meta.get("tags", []) or [])),
                slide,
                tuple([notes] if isinstance(notes, str) else notes),
            )
        )
    return cells


def stored_outputs(nb: dict[str, Any]) -> list[int]:
    """Indices of code cells that carry outputs or an execution count (committed: none)."""
    return [
        index
        for index, cell in enumerate(nb.get("cells", []))
        if cell.get("cell_type") == "code"
        and (cell.get("outputs") or cell.get("execution_count") is not None)
    ]


def _tags(cell: dict[str, Any]) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def header_cells(relpath: str) -> list[dict[str, Any]]:
    from infralab.core.project import COLAB_INSTALL_TIME, REPOSITORY, branch_for

    badge = {
        "cell_type": "markdown",
        "metadata": {"tags": [HEADER_TAG]},
        "source": badges_markdown(relpath),
    }
    setup = {
        "cell_type": "code",
        "execution_count": None,
        "metadata": {"tags": [SETUP_TAG]},
        "outputs": [],
        "source": SETUP_TEMPLATE.format(
            repo=REPOSITORY,
            branch=branch_for(relpath),
            path=relpath,
            install_time=COLAB_INSTALL_TIME,
        ),
    }
    return [badge, setup]


def strip_outputs(nb: dict[str, Any]) -> None:
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        cell.get("metadata", {}).pop("execution", None)


def normalise(nb: dict[str, Any], relpath: str) -> dict[str, Any]:
    """The notebook as it must be committed: header cells, no outputs, slide metadata."""
    nb = copy.deepcopy(nb)
    body = [c for c in nb.get("cells", []) if not {HEADER_TAG, SETUP_TAG} & set(_tags(c))]
    cells = header_cells(relpath) + body
    for cell in cells:
        if isinstance(cell.get("source"), list):
            cell["source"] = "".join(cell["source"])
        cell.pop("id", None)
    nb["cells"] = cells
    nb["nbformat"], nb["nbformat_minor"] = 4, 4
    nb.setdefault("metadata", {})
    nb["metadata"]["kernelspec"] = {
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
        "name": "python3",
    }
    nb["metadata"].setdefault("language_info", {"name": "python"})
    strip_outputs(nb)
    try:
        from infralab.tooling.slides import apply_slide_metadata, fold_notes
    except ImportError:
        pass
    else:
        fold_notes(nb)  # speaker notes into cell metadata: out of the students' sight
        apply_slide_metadata(nb)
    return nb


def same_content(text: str, want: dict[str, Any]) -> bool:
    """Whether a notebook file's text says what ``want`` says (see :func:`content`)."""
    try:
        return content(json.loads(text)) == content(want)
    except (ValueError, AttributeError, TypeError):  # not JSON, or not a notebook
        return False


def sync(path: Path, *, check: bool = False, root: Path = REPO_ROOT) -> bool:
    """Bring one notebook in step; return True if it was (or, with check, would be) changed.

    Writing compares text (the file is rewritten in the kit's one format); ``check``
    compares :func:`content`, so a file a front end saved in its own format is in step.
    """
    relpath = Path(path).resolve().relative_to(root).as_posix()
    text = Path(path).read_text(encoding="utf-8")
    normal = normalise(json.loads(text), relpath)
    if check:
        return not same_content(text, normal)
    want = dumps(normal)
    if want == text:
        return False
    Path(path).write_text(want, encoding="utf-8")
    return True


def set_notes_visible(paths: list[Path], visible: bool) -> list[Path]:
    """Unfold (instructor view) or fold (student view) the notes of notebooks, in place."""
    from infralab.tooling.slides import apply_slide_metadata, fold_notes, unfold_notes

    changed = []
    for path in paths:
        nb = read(path)
        if (unfold_notes if visible else fold_notes)(nb):
            apply_slide_metadata(nb)
            Path(path).write_text(dumps(nb), encoding="utf-8")
            changed.append(Path(path))
    return changed


# ---------------------------------------------------------------- time and memory report
def _peak_rss_sampler(pid: int, stop: threading.Event, peak: list[int]) -> None:
    import psutil

    try:
        proc = psutil.Process(pid)
    except psutil.Error:
        return
    while not stop.is_set():
        try:
            procs = [proc, *proc.children(recursive=True)]
            rss = 0
            for p in procs:
                try:
                    rss += p.memory_info().rss
                except psutil.Error:
                    pass
            peak[0] = max(peak[0], rss)
        except psutil.Error:
            return
        stop.wait(0.1)


POLL_SLICE_S = 0.5


def _poll_in_slices(channel: Any, slice_s: float = POLL_SLICE_S) -> None:
    """Make ``channel.get_msg`` wait in short polls up to the same deadline."""
    from queue import Empty

    whole = channel.get_msg

    async def get_msg(timeout: float | None = None) -> dict[str, Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = slice_s if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                return await whole(timeout=min(slice_s, left))
            except Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    channel.get_msg = get_msg


def use_ipc(km: Any) -> Any:
    """Put a kernel manager (not started yet) on IPC transport; return it.

    Why: over TCP, ipykernel 7 logs ``[IPKernelApp] WARNING | Kernel is running over TCP
    without encryption`` on stderr at every start, which students read as an error in the
    output of ``preflight``, ``report-notebooks`` and ``make site``. Over IPC (Unix sockets
    in a private temporary folder, mode 0700) the kernel has nothing to warn about, and no
    other user of the machine can reach it. Windows has no IPC transport: TCP stays.
    """
    if os.name == "nt":
        return km
    folder = tempfile.mkdtemp(prefix="infralab-kernel-")
    km.transport = "ipc"
    km.connection_file = os.path.join(folder, "kernel.json")
    km.ip = os.path.join(folder, "kernel-ipc")
    weakref.finalize(km, shutil.rmtree, folder, True)
    return km


def quiet_kernel_manager(**kwargs: Any) -> Any:
    """A blocking ``jupyter_client.KernelManager`` on IPC transport (see :func:`use_ipc`)."""
    from jupyter_client.manager import KernelManager

    return use_ipc(KernelManager(**kwargs))


_CLIENT_CLASS: Any = None


def client_class() -> Any:
    """``nbclient.NotebookClient`` that does not sit out its whole cell timeout on a missed wakeup.

    Why: about one run in ten on a 2-core machine, the asyncio ZeroMQ poll behind nbclient
    misses the wake-up for a reply that has arrived (lab 05's dashboard cell, measured with
    pyzmq 27.3, jupyter_client 8.10, ipykernel 6.31 and 7.4). The reply is then read only when
    the poll times out, which with the cell timeout as the poll's timeout means minutes of a
    kernel sitting idle, and a grader's time limit failing a correct submission. Polling in
    half-second slices to the same deadline loses at most half a second. Every notebook the
    kit executes (grading, the site, the time/memory report) uses this client. Its kernels
    run over IPC transport (:func:`use_ipc`), so they print no TCP warning.
    """
    global _CLIENT_CLASS
    if _CLIENT_CLASS is None:
        from jupyter_core.utils import run_sync
        from nbclient import NotebookClient

        class SlicedPollClient(NotebookClient):
            def create_kernel_manager(self):  # type: ignore[no-untyped-def]
                return use_ipc(super().create_kernel_manager())

            async def async_start_new_kernel_client(self):  # type: ignore[no-untyped-def]
                kc = await super().async_start_new_kernel_client()
                _poll_in_slices(kc.shell_channel)
                _poll_in_slices(kc.iopub_channel)
                return kc

            # nbclient binds the blocking twin to its own coroutine (setup_kernel calls it)
            start_new_kernel_client = run_sync(async_start_new_kernel_client)

        _CLIENT_CLASS = SlicedPollClient
    return _CLIENT_CLASS


def measure_notebook(path: Path, timeout_s: int = 600) -> dict[str, Any]:
    """Run a notebook in a fresh kernel; wall time and peak RSS of the kernel and children."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    nb = nbformat.from_dict(nbformat.validator.normalize(nb)[1])
    client = client_class()(
        nb,
        timeout=timeout_s,
        kernel_name="python3",
        resources={"metadata": {"path": str(Path(path).parent)}},
        allow_errors=False,
    )
    peak = [0]
    stop = threading.Event()
    load_1m = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    started = time.perf_counter()
    error = ""
    with client.setup_kernel():
        pid = client.km.provisioner.pid if client.km.provisioner else None
        sampler = threading.Thread(target=_peak_rss_sampler, args=(pid, stop, peak), daemon=True)
        if pid:
            sampler.start()
        try:
            for index, cell in enumerate(nb.cells):
                client.execute_cell(cell, index)
        except Exception as exc:  # the report records failures rather than stopping
            ename = getattr(exc, "ename", type(exc).__name__)
            evalue = getattr(exc, "evalue", str(exc).splitlines()[0] if str(exc) else "")
            error = f"{ename}: {evalue}"
        finally:
            stop.set()
    resolved = Path(path).resolve()
    name = resolved.relative_to(REPO_ROOT) if resolved.is_relative_to(REPO_ROOT) else resolved
    return {
        "notebook": Path(name).as_posix(),
        "wall_s": round(time.perf_counter() - started, 1),
        "peak_rss_mb": round(peak[0] / 2**20),
        "within_60s": None,
        "within_1_5gb": None,
        "load_1m": load_1m,
        "error": error,
    }


# The budget for every notebook on 2 vCPUs, kernel plus every process it starts:
# inside Binder's 2 GB with room to spare (docs/instructor.md, "Measured timings").
BUDGET_WALL_S = 60
BUDGET_RSS_MB = 1536


def metadata_path(out: str | Path) -> Path:
    """Where a report's machine, date and commit go: ``x.csv`` -> ``x.meta.json`` beside it."""
    out = Path(out)
    return out.with_name(out.stem + ".meta.json")


def report_metadata() -> dict[str, Any]:
    """What a recorded report needs to be read later: machine, memory, date, kit commit."""
    import datetime as dt
    import subprocess

    import psutil

    from infralab.core.results import machine

    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        )
    except (OSError, subprocess.CalledProcessError):  # not a clone (a release, a wheel)
        commit, dirty = None, None
    try:
        from infralab.engines.fleet.cluster import cgroup_limit_mb

        limit = cgroup_limit_mb()
    except ImportError:
        limit = None
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "infralab_commit": commit,
        "uncommitted_changes": dirty,
        "machine": {
            **machine(),
            "memory_mb": round(psutil.virtual_memory().total / 2**20),
            "memory_limit_mb": limit,
        },
        "budget": {"wall_s": BUDGET_WALL_S, "peak_rss_mb": BUDGET_RSS_MB},
        "columns": {
            "wall_s": "seconds from the kernel's start to the last cell's end",
            "peak_rss_mb": "highest RSS summed over the kernel and every process it started",
            "load_1m": "the machine's 1-minute load average when the notebook started",
        },
    }


def report(paths: list[str] | None = None, out: str | None = None):
    """Time and memory per notebook against the budget (60 s, 1.5 GB) as a DataFrame.

    With ``out``, the CSV is written there and the machine, date and kit commit beside it
    (:func:`metadata_path`), so a recorded report says where and when it was measured.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    notebooks = [Path(p) for p in paths] if paths else course_notebooks()
    meta = report_metadata()
    rows = []
    for path in tqdm(notebooks, desc="notebooks"):
        row = measure_notebook(path)
        row["within_60s"] = row["wall_s"] <= BUDGET_WALL_S
        row["within_1_5gb"] = row["peak_rss_mb"] <= BUDGET_RSS_MB
        rows.append(row)
    df = pd.DataFrame(rows)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(out, index=False)
        meta["finished"] = report_metadata()["date"]
        meta["notebooks"] = len(rows)
        metadata_path(out).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return df
