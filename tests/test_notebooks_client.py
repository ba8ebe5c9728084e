"""The notebook client polls in slices: a missed ZeroMQ wake-up costs half a second, not a cell
timeout (see ``infralab.tooling.notebooks.client_class``)."""

from __future__ import annotations

import asyncio
import time
from queue import Empty

import pytest

from infralab.tooling import notebooks


class _Channel:
    """A channel whose reply is only seen by a poll that starts after ``ready_at``."""

    def __init__(self, ready_after_s: float | None) -> None:
        self.ready_at = None if ready_after_s is None else time.monotonic() + ready_after_s
        self.timeouts: list[float | None] = []

    async def get_msg(self, timeout: float | None = None) -> dict:
        self.timeouts.append(timeout)
        if self.ready_at is not None and time.monotonic() >= self.ready_at:
            return {"msg_type": "execute_reply"}
        await asyncio.sleep(timeout if timeout is not None else 3600)
        raise Empty


def test_a_reply_missed_by_one_poll_is_read_by_the_next_slice():
    channel = _Channel(ready_after_s=0.15)
    notebooks._poll_in_slices(channel, slice_s=0.1)
    started = time.monotonic()
    msg = asyncio.run(channel.get_msg(timeout=60))
    assert msg["msg_type"] == "execute_reply"
    assert time.monotonic() - started < 5  # not the 60 s a single poll would have waited
    assert len(channel.timeouts) >= 2 and max(channel.timeouts) <= 0.1


def test_the_deadline_still_holds():
    channel = _Channel(ready_after_s=None)
    notebooks._poll_in_slices(channel, slice_s=0.05)
    started = time.monotonic()
    with pytest.raises(Empty):
        asyncio.run(channel.get_msg(timeout=0.3))
    assert 0.3 <= time.monotonic() - started < 3


def test_no_timeout_means_wait_until_a_reply():
    channel = _Channel(ready_after_s=0.2)
    notebooks._poll_in_slices(channel, slice_s=0.05)
    assert asyncio.run(channel.get_msg())["msg_type"] == "execute_reply"
    assert None not in channel.timeouts


def test_grading_the_site_and_the_report_use_the_sliced_client():
    import inspect

    from infralab.tooling import grade, site
    from infralab.tooling.grading import remote

    for module in (site, notebooks):
        source = inspect.getsource(module)
        assert "client_class()" in source and "NotebookClient(" not in source, module.__name__
    # The grader drives its sandboxed kernel with a blocking client whose reads time out every
    # half second (so a missed wake-up costs at most that), never with NotebookClient.
    assert "NotebookClient(" not in inspect.getsource(grade)
    assert "get_iopub_msg(timeout=min(left, 0.5))" in inspect.getsource(remote)


def test_both_ways_of_starting_a_kernel_get_sliced_channels(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 6 * 7\nx")])
    client = notebooks.client_class()(nb, timeout=60, kernel_name="python3")
    with client.setup_kernel():  # the blocking path
        assert client.kc.shell_channel.get_msg.__qualname__.startswith("_poll_in_slices")
        client.execute_cell(nb.cells[0], 0)
    assert nb.cells[0].outputs[0]["data"]["text/plain"] == "42"
    nb2 = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    seen = []

    class Spy(notebooks.client_class()):
        async def async_start_new_kernel_client(self):  # type: ignore[no-untyped-def]
            kc = await super().async_start_new_kernel_client()
            seen.append(kc.iopub_channel.get_msg.__qualname__)
            return kc

    Spy(nb2, timeout=60, kernel_name="python3").execute()  # the async path
    assert seen and seen[0].startswith("_poll_in_slices")
    assert nb2.cells[0].outputs[0]["data"]["text/plain"] == "2"
