"""The Colab set-up cell, run for real in a clean venv, stopped half-way, and run again.

What is real: the generated cell's own text (only its repository URL and ``/content``
folder are replaced), ``git clone`` of this worktree's committed ``HEAD`` (published as the
student branch of a local origin, over ``file://`` so ``--depth 1`` is honoured),
``infralab.tooling.colab.bootstrap`` with its real ``pip install -c constraints.txt -e <clone>`` into a
fresh ``python -m venv``, the import check, the model fetch (a no-op when the cache holds the
files) and the marker.

What is simulated: Colab itself (a fake ``google.colab`` module whose widget manager does
nothing, imported before the cell as Colab's kernel does) and its preinstalled packages: the
venv sees this kit's development site-packages through a ``.pth`` line, so pip finds every
dependency already satisfied at the tested versions and installs only the kit itself (on
Colab it also downloads the pinned versions it lacks: the figure the cell quotes). The
interruption is a SIGKILL of the cell's whole process group while pip is running, which is
what a stopped cell or a runtime restart does; each run is a fresh interpreter, as after a
kernel restart. The test needs the package index pip is configured with only for the build
back end (setuptools) of the editable install.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import psutil
import pytest

from infralab.core import project
from infralab.tooling import colab, notebooks

pytestmark = pytest.mark.slow

NOTEBOOK = "course/01_two_infrastructures.ipynb"
FAKE_COLAB = """\
class output:
    @staticmethod
    def enable_custom_widget_manager():
        pass
"""


# A clean interpreter: nothing of this checkout on its path (the suite may run with PYTHONPATH).
CLEAN_ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}


def _git(*args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=t@t", "-c", "user.name=t", *args],
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="module")
def colab_box(tmp_path_factory, repo_root):
    """A local origin with a student branch, a clean venv, a fake google.colab, the cell."""
    box = tmp_path_factory.mktemp("colab")
    origin = box / "origin"
    _git("clone", "-q", "--no-hardlinks", str(repo_root), str(origin))
    _git("-C", str(origin), "branch", "-f", project.STUDENT_BRANCH, "HEAD")

    venv = box / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=CLEAN_ENV)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
        env=CLEAN_ENV,
    ).stdout.strip()
    # Colab's preinstalled packages: this environment's, already at the tested versions.
    (Path(site) / "colab_preinstalled.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    fake = box / "fake"
    (fake / "google" / "colab").mkdir(parents=True)
    (fake / "google" / "colab" / "__init__.py").write_text(FAKE_COLAB)

    content = box / "content"
    content.mkdir()
    root = content / "infralab"
    source = notebooks.header_cells(NOTEBOOK)[1]["source"]
    url = f'"{project.REPOSITORY}"'
    folder = 'Path("/content/infralab")'
    assert url in source and folder in source and "root=ROOT" in source
    source = source.replace(url, repr(origin.as_uri())).replace(folder, f"Path({str(root)!r})")
    cell = box / "cell.py"
    cell.write_text(source)
    runner = box / "run_cell.py"
    runner.write_text(
        "import sys\n"
        f"sys.path.append({str(fake)!r})\n"
        "import google.colab  # Colab's kernel has it loaded before the first cell\n"
        f"exec(compile(open({str(cell)!r}).read(), 'setup-cell', 'exec'), {{'__name__': '__main__'}})\n"
    )
    return {"python": python, "runner": runner, "root": root, "content": content, "site": site}


def _run(box: dict, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(box["python"]), str(box["runner"])],
        cwd=box["content"],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=CLEAN_ENV,
    )


def _run_and_kill_during_pip(box: dict, timeout: float = 120) -> str:
    """Start the cell; SIGKILL its process group half a second into ``pip install``."""
    proc = subprocess.Popen(
        [str(box["python"]), str(box["runner"])],
        cwd=box["content"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env=CLEAN_ENV,
    )
    deadline = time.monotonic() + timeout
    killed = False
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                children = psutil.Process(proc.pid).children(recursive=True)
                pip = any("pip" in " ".join(c.cmdline()) for c in children)
            except psutil.Error:
                pip = False
            if pip:
                time.sleep(0.5)
                os.killpg(proc.pid, signal.SIGKILL)
                killed = True
                break
            time.sleep(0.05)
    finally:
        if proc.poll() is None and not killed:
            os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
    assert killed, f"pip never started:\n{out}"
    return out


def _imports_from_venv(box: dict) -> subprocess.CompletedProcess[str]:
    code = "import infralab.tooling.colab, sys; print(infralab.tooling.colab.__file__)"
    return subprocess.run(
        [str(box["python"]), "-c", code],
        cwd="/",
        capture_output=True,
        text=True,
        timeout=120,
        env=CLEAN_ENV,
    )


def test_setup_cell_recovers_from_a_stop_during_install(colab_box):
    root = colab_box["root"]
    # What the old cell left behind: a folder where the clone was (a stopped `git clone`),
    # and a side folder from a stopped clone of the new cell.
    (root / "course").mkdir(parents=True)
    (root / "course" / "half").write_text("")
    (root.with_name("infralab.partial")).mkdir()

    started = time.perf_counter()
    out = _run_and_kill_during_pip(colab_box)
    assert "downloading the course (student branch)" in out
    assert "installing the kit with the tested versions" in out
    assert (
        root / "infralab" / "tooling" / "colab.py"
    ).is_file()  # the clone was complete and moved
    assert not (root / colab.MARKER).exists()  # the install never finished

    again = _run(colab_box)
    assert again.returncode == 0, again.stdout + again.stderr
    lines = again.stdout.splitlines()
    assert lines and all(line.startswith("infralab set-up: ") for line in lines), again.stdout
    assert lines[-1] == "infralab set-up: ready"
    assert "local" not in again.stdout
    assert (root / colab.MARKER).is_file()
    assert not root.with_name("infralab.partial").exists()
    imported = _imports_from_venv(colab_box)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == str(root / "infralab" / "tooling" / "colab.py")

    # a third run (a kernel restart after the set-up) does nothing but say so
    third = _run(colab_box)
    assert third.returncode == 0 and third.stdout == "infralab set-up: ready\n", third.stdout
    print(f"stop + recover + re-run: {time.perf_counter() - started:.1f} s")


def test_setup_cell_reinstalls_a_half_installed_kit(colab_box):
    """The kit's install hook gone and no marker (pip stopped mid-way): the cell reinstalls."""
    root = colab_box["root"]
    assert (root / colab.MARKER).is_file(), "runs after the recovery test"
    (root / colab.MARKER).unlink()
    hooks = list(Path(colab_box["site"]).glob("__editable__*infralab*"))
    assert hooks
    for hook in hooks:
        hook.unlink()
    (root / NOTEBOOK).unlink()  # a stopped checkout left a file out
    assert _imports_from_venv(colab_box).returncode != 0
    run = _run(colab_box)
    assert run.returncode == 0, run.stdout + run.stderr
    assert (root / NOTEBOOK).is_file()
    assert _imports_from_venv(colab_box).returncode == 0


def test_imports_ok_sees_a_missing_module():
    assert colab.imports_ok(Path("/"), ("json",))
    assert not colab.imports_ok(Path("/"), ("infralab_no_such_module",))
