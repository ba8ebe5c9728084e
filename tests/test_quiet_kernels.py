"""Kernels the kit starts itself print nothing a student reads as an error (issue #28).

ipykernel 7 warns ``Kernel is running over TCP without encryption`` on the kernel's stderr,
which the kernel inherits from the command that started it (``preflight``,
``report-notebooks``, ``make site``). The kit's client and the pre-flight's kernel run over
IPC instead. Each case runs in a child process whose stderr is captured whole.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from infralab.core.paths import REPO_ROOT

pytestmark = pytest.mark.skipif(os.name == "nt", reason="IPC transport: not on Windows")

WARNING = "without encryption"
NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "execution_count": None,
            "metadata": {},
            "outputs": [],
            "source": "print(6 * 7)",
        }
    ],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}


def _stderr_of(code: str, tmp_path) -> tuple[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout, proc.stderr


@pytest.mark.slow
def test_a_notebook_run_through_the_kits_client_prints_no_tcp_warning(tmp_path):
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(NOTEBOOK))
    code = (
        "from infralab.tooling import notebooks\n"
        f"row = notebooks.measure_notebook({str(path)!r}, timeout_s=120)\n"
        "assert row['error'] == '', row\n"
        "print('ran')\n"
    )
    out, err = _stderr_of(code, tmp_path)
    assert out.strip() == "ran"
    assert WARNING not in err, err
    assert not list(tmp_path.glob("kernel*")), "IPC sockets belong in a private temp folder"


@pytest.mark.slow
def test_the_site_and_preflight_kernels_print_no_tcp_warning(tmp_path):
    path = tmp_path / "nb.ipynb"
    code = (
        "from pathlib import Path\n"
        "from infralab.tooling import preflight, site\n"
        f"Path({str(path)!r}).write_text({json.dumps(json.dumps(NOTEBOOK))})\n"
        f"wall, error = site.execute(Path({str(path)!r}), Path({str(tmp_path / 'out.ipynb')!r}))\n"
        "assert error == '', error\n"
        "seconds, error = preflight._time_kernel()\n"
        "assert error == '', error\n"
        "print('ran')\n"
    )
    out, err = _stderr_of(code, tmp_path)
    assert out.strip() == "ran"
    assert WARNING not in err, err


def test_the_warning_is_what_a_tcp_kernel_prints(tmp_path):
    """The control: the same kernel over TCP does warn, so the tests above can see it."""
    code = (
        "from jupyter_client.manager import start_new_kernel\n"
        "km, kc = start_new_kernel(kernel_name='python3', startup_timeout=120)\n"
        "kc.stop_channels(); km.shutdown_kernel(now=True)\n"
        "print('ran')\n"
    )
    _, err = _stderr_of(code, tmp_path)
    assert WARNING in err


@pytest.mark.slow
def test_ray_serve_info_lines_stay_out_of_cell_output():
    """Lesson 08: importing Serve through the kit leaves warnings visible and INFO silent.

    In a fresh interpreter, as in the lesson's kernel: within the test session another test
    may already have imported Serve with its handler bound to a captured stream."""
    pytest.importorskip("ray.serve", reason="Ray Serve (the fleet extra) is not installed")
    import subprocess
    import sys

    code = (
        "import logging\n"
        "from infralab.engines.fleet import ray_serve\n"
        "ray_serve._serve()\n"
        "logging.getLogger('ray.serve').info(\"Started Serve in namespace 'serve'.\")\n"
        "logging.getLogger('ray.serve').warning('a real warning')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Started Serve" not in done.stderr
    assert "a real warning" in done.stderr
