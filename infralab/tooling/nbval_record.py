"""pytest plugin: nbval's run of each notebook, kept as an executed notebook.

``make notebooks`` loads it (``-p infralab.tooling.nbval_record --executed-dir artifacts/executed``).
nbval runs every code cell of a notebook as one test in one kernel; this plugin listens to the
same kernel messages nbval reads and hands them to nbclient's own message handling (the code
that ``jupyter nbconvert --execute`` and the site's build use), so the executed copy holds what
a front end would show: outputs after ``clear_output``, updated displays, what Output widgets
captured and every widget's last state. It sends nothing to the kernel but one set-up cell (the
same one the site runs: Altair charts as Vega-Lite JSON, drawn offline by the page).

A notebook is written only when every one of its cells passed (a failed, skipped or timed-out
cell leaves no copy, and removes an older one). See :mod:`infralab.tooling.executed` for the format.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import pytest

from infralab.tooling import executed

_KEY = pytest.StashKey["Recorder"]()
_KIT = pytest.StashKey[str]()
_NOTES = pytest.StashKey[list]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("infralab", "infralab executed notebooks")
    group.addoption(
        "--executed-dir",
        default=None,
        help="write each notebook nbval ran without a failure, executed, under this folder "
        "(at its path relative to the rootdir)",
    )


class _NoSend:
    """nbclient's Output-widget emulation syncs outputs back to the kernel; here the kernel is
    nbval's, and nbval's run stays as it is: nothing is sent."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.shell_channel = self

    def send(self, msg: Any) -> None:
        pass


class Recorder:
    """The executed copy of one notebook while nbval runs it."""

    def __init__(self, file: Any, root: Path, out_dir: Path, kit: str) -> None:
        import nbformat

        from infralab.tooling.notebooks import client_class

        self.path = Path(file.path).resolve()
        self.root = root
        self.target = out_dir / self.path.relative_to(root)
        self.source_sha256 = executed.file_sha256(self.path)
        self.kit = kit
        nb = nbformat.read(str(self.path), as_version=4)
        self.nb = nbformat.from_dict(nbformat.validator.normalize(nb)[1])
        self.code_cells = [i for i, c in enumerate(self.nb.cells) if c.cell_type == "code"]
        for i in self.code_cells:
            self.nb.cells[i].outputs = []
            self.nb.cells[i].execution_count = None
        self.client = client_class()(
            self.nb, kernel_name="python3", store_widget_state=True, record_timing=False
        )
        self.closed: set[str] = set()
        self.passed: set[int] = set()
        self.failed = False
        self.broken = ""  # why the copy could not be recorded (the notebook's test is unaffected)
        self.msg_id: str | None = None
        self.setup_id: str | None = None
        self.setup_status = ""
        self.cell_index: int | None = None
        self.started = time.perf_counter()
        self.results_before: dict[str, tuple[int, bytes]] = {}
        self._hook(file.kernel)

    def _hook(self, kernel: Any) -> None:
        """Tee the kernel's messages: nbval calls these two methods of its kernel object."""
        self.client.kc = _NoSend(kernel.kc.session)
        execute, get_message = kernel.execute_cell_input, kernel.get_message

        def execute_cell_input(source: str, allow_stdin: Any = None) -> str:
            self.msg_id = execute(source, allow_stdin=allow_stdin)
            return self.msg_id

        def get_message_tee(stream: str, timeout: float | None = None) -> dict[str, Any]:
            msg = get_message(stream, timeout=timeout)
            if stream == "iopub":
                self.feed(msg)
            elif msg.get("parent_header", {}).get("msg_id") == self.setup_id:
                self.setup_status = msg.get("content", {}).get("status", "")
            return msg

        kernel.execute_cell_input = execute_cell_input
        kernel.get_message = get_message_tee

    def setup_cell(self, kernel: Any, timeout: float) -> None:
        """The site's Altair set-up, before the first cell (only the output format changes)."""
        from infralab.tooling.site import ALTAIR_SETUP

        self.cell_index = None
        self.setup_id = msg_id = kernel.execute_cell_input(ALTAIR_SETUP, allow_stdin=False)
        kernel.await_reply(msg_id, timeout=timeout)
        kernel.await_idle(msg_id, timeout)
        if self.setup_status != "ok":
            self.broken = f"the site's Altair set-up ended with {self.setup_status or 'no reply'}"

    def start_cell(self, cell_num: int) -> None:
        self.cell_index = self.code_cells[cell_num]
        self.msg_id = None
        self.client.clear_before_next_output = False  # nbclient resets it for every cell

    def feed(self, msg: dict[str, Any]) -> None:
        """One iopub message nbval read, handled as nbclient handles it for the current cell.

        A message this cannot handle spoils the copy (none is written, and the run says why),
        never the notebook's test: nbval alone decides whether a cell passed.
        """
        from nbclient.exceptions import CellExecutionComplete

        if self.cell_index is None or self.msg_id is None or self.broken:
            return
        if msg.get("parent_header", {}).get("msg_id") != self.msg_id:
            return
        if msg["msg_type"] == "comm_close":
            self.closed.add(msg.get("content", {}).get("comm_id", ""))
        try:
            self.client.process_message(msg, self.nb.cells[self.cell_index], self.cell_index)
        except CellExecutionComplete:
            pass
        except Exception as exc:  # noqa: BLE001 (recorded, reported at the notebook's end)
            self.broken = f"recording cell {self.cell_index} failed: {type(exc).__name__}: {exc}"

    def snapshot_results(self) -> dict[str, tuple[int, bytes]]:
        """The results folder's JSON files (the kit's records): modification time and bytes."""
        from infralab.core import results

        folder = results.results_dir()
        if not folder.is_dir():
            return {}
        return {
            p.name: (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(folder.glob("*.json"))
            if p.is_file()
        }

    def complete(self) -> bool:
        return (
            not self.failed and not self.broken and self.passed == set(range(len(self.code_cells)))
        )

    def finish(self) -> Path | None:
        """Write the executed notebook if every cell passed; otherwise remove an older copy."""
        import nbformat

        if not self.complete():
            self.target.unlink(missing_ok=True)
            return None
        after = self.snapshot_results()
        saved = {
            name: json.loads(data)
            for name, (mtime, data) in after.items()
            if self.results_before.get(name) != (mtime, data)
        }
        # nbval runs cells with store_history=False (no counter): number them in run order
        for count, index in enumerate(self.code_cells, 1):
            cell = self.nb.cells[index]
            cell.execution_count = count
            for output in cell.outputs:
                if output.get("output_type") == "execute_result":
                    output["execution_count"] = count
        self.client.set_widgets_metadata()
        wall = round(time.perf_counter() - self.started, 1)
        self.nb.metadata["infralab_site"] = {
            "wall_s": wall,
            "error": "",
            "closed_widgets": sorted(self.closed - {""}),
        }
        self.nb.metadata[executed.META_KEY] = {
            "source": self.path.relative_to(self.root).as_posix(),
            "source_sha256": self.source_sha256,
            "kit_sha256": self.kit,
            "executed_by": "nbval (make notebooks)",
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "wall_s": wall,
            "saved_results": saved,
        }
        self.target.parent.mkdir(parents=True, exist_ok=True)
        part = self.target.with_name(self.target.name + ".partial")
        nbformat.write(self.nb, str(part))
        part.replace(self.target)
        return self.target


def _is_nbval_cell(item: pytest.Item) -> bool:
    return type(item).__name__ == "IPyNbCell" and hasattr(item, "cell_num")


def _out_dir(config: pytest.Config) -> Path | None:
    value = config.getoption("executed_dir", None)
    if not value:
        return None
    path = Path(value)
    return path if path.is_absolute() else Path(config.rootpath) / path


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item):  # type: ignore[no-untyped-def]
    yield
    out = _out_dir(item.config)
    file = item.parent
    if out is None or not _is_nbval_cell(item) or getattr(file, "kernel", None) is None:
        return
    if file.stash.get(_KEY, None) is None:  # the notebook's first cell: its kernel has started
        kit = item.config.stash.get(_KIT, None)
        if kit is None:
            kit = item.config.stash[_KIT] = executed.kit_sha256()
        recorder = Recorder(file, Path(item.config.rootpath).resolve(), out, kit)
        file.stash[_KEY] = recorder
        recorder.results_before = recorder.snapshot_results()
        recorder.setup_cell(file.kernel, item.config.option.nbval_cell_timeout)
    file.stash[_KEY].start_cell(item.cell_num)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]):  # type: ignore[no-untyped-def]
    outcome = yield
    if not _is_nbval_cell(item):
        return
    recorder = item.parent.stash.get(_KEY, None)
    if recorder is None:
        return
    report = outcome.get_result()
    if report.failed or report.skipped:
        recorder.failed = True
    elif report.when == "call" and report.passed:
        recorder.passed.add(item.cell_num)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None):  # type: ignore[no-untyped-def]
    if not _is_nbval_cell(item) or _out_dir(item.config) is None:
        yield
        return
    recorder = item.parent.stash.get(_KEY, None)
    last = nextitem is None or nextitem.parent is not item.parent
    yield
    if last and recorder is None:  # the kernel never started: no run, so no copy either
        path = Path(item.parent.path).resolve()
        out = _out_dir(item.config)
        (out / path.relative_to(Path(item.config.rootpath).resolve())).unlink(missing_ok=True)
    elif last:
        written = recorder.finish()
        rel = recorder.path.relative_to(recorder.root).as_posix()
        why = recorder.broken or "not every cell passed"
        note = f"written to {written}" if written else f"{why}: no executed copy"
        item.config.stash.setdefault(_NOTES, []).append(f"{rel}: {note}")


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    notes = config.stash.get(_NOTES, [])
    if notes:
        terminalreporter.section("executed notebooks (infralab.tooling.nbval_record)")
        for line in notes:
            terminalreporter.write_line(line)
