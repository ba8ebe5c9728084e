"""The first cell of every notebook: on Colab it sets the kit up; elsewhere it does nothing.

Colab opens a single notebook file with none of the repository around it, so the set-up must
clone the repository (the student release branch, ``infralab.core.project.STUDENT_BRANCH``; the
solution notebooks clone the instructor's branch), install it with the versions the suite was
tested with (``constraints.txt``), fetch the model files, turn on the widget manager that
ipywidgets needs there, and move into the notebook's folder.

It must survive being stopped anywhere (a student presses stop, the runtime restarts, the
network drops) and then simply be run again:

- the generated cell clones into ``/content/infralab.partial`` and renames it when the clone
  is complete, so ``/content/infralab`` is either a whole clone or absent (a left-over folder
  without the kit is replaced);
- :func:`ensure_clone` repairs an existing clone (``git reset --hard`` restores files a
  stopped checkout left out) and moves it to the notebook's branch when another notebook
  cloned another one (``git fetch`` + ``checkout``), which also means reinstalling;
- the install is done when the marker file says so, and is written only after the install
  was verified by importing the kit and its main dependencies in a fresh interpreter; a
  half-installed package fails that import and is reinstalled (``--force-reinstall``).

How long: ``project.COLAB_INSTALL_TIME``, quoted in the cell. Sources: 99 s on a Colab CPU runtime
(issue #28, before the tested pins); 44 s for the same ``pip install -c constraints.txt -e .``
into a clean Python 3.11 venv on the kit's 2-core build machine (2026-12, a package mirror on
the same machine, so faster than Colab's download). On Colab most dependencies are already
there, and the pins replace some of them (numpy, openai), so count on about two minutes.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from infralab.core.errors import InfralabError
from infralab.core.project import COLAB_INSTALL_TIME, REPOSITORY, STUDENT_BRANCH

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "bootstrap",
]


COLAB_ROOT = Path("/content/infralab")
MARKER = ".infralab-bootstrapped"
INSTALL_TIME = COLAB_INSTALL_TIME
# Imported in a fresh interpreter after the install: a package pip left half-written fails here.
VERIFY_IMPORTS = (
    "infralab.tooling.colab",
    "numpy",
    "pandas",
    "onnxruntime",
    "tokenizers",
    "altair",
)
# Pinned by constraints.txt and often already loaded in Colab's kernel: a new version of one
# of these only takes effect after a restart.
LOADED_PINS = ("numpy", "pandas")


def in_colab() -> bool:
    return "google.colab" in sys.modules


def say(message: str) -> None:
    """One status line, in plain words (no pip or git output reaches the student)."""
    print(f"infralab set-up: {message}", flush=True)


def ort_requirement_for_driver(gpus: list[dict[str, str]]) -> str | None:
    """An onnxruntime-gpu pin that matches an older driver, or None to keep the default.

    The default wheel targets CUDA 13; Colab's driver often supports CUDA 12 only, and there
    the CUDA provider would not load (the doctor says so). A CUDA 12 build makes it work.
    """
    if not gpus:
        return None
    try:
        driver_major = int(gpus[0].get("driver_cuda", "0").split(".")[0])
    except ValueError:
        return None
    if 0 < driver_major < 13:
        return "onnxruntime-gpu>=1.20,<1.24"
    return None


# ---------------------------------------------------------------- the clone
def _git(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=600
    )


class ColabSetupError(RuntimeError, InfralabError):
    """A step of the Colab set-up (git or pip) failed; the message has its last lines."""

    hint = (
        "Run the set-up cell again: it resumes where it stopped. If it fails the same way, "
        "use Runtime > Disconnect and delete runtime, then run it once more."
    )


def _checked(proc: subprocess.CompletedProcess[str], what: str) -> None:
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise ColabSetupError(f"{what} failed: " + " | ".join(tail))


def clone_fresh(root: Path, repo_url: str, branch: str) -> None:
    """Clone into a side folder and rename it: ``root`` never holds half a clone."""
    partial = root.with_name(root.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    say(f"downloading the course ({branch} branch) ...")
    proc = _git("clone", "-q", "--depth", "1", "--branch", branch, repo_url, str(partial))
    _checked(proc, f"git clone {repo_url} (branch {branch})")
    shutil.rmtree(root, ignore_errors=True)
    partial.rename(root)


def ensure_clone(root: Path, repo_url: str, branch: str, *, repair: bool) -> bool:
    """A whole clone of ``branch`` at ``root``; True when its code changed (install again)."""
    head = _git("rev-parse", "--abbrev-ref", "HEAD", cwd=root) if root.is_dir() else None
    if head is None or head.returncode != 0:
        clone_fresh(root, repo_url, branch)
        return True
    if head.stdout.strip() != branch:
        say(f"switching the course to the {branch} branch ...")
        _checked(_git("fetch", "-q", "--depth", "1", "origin", branch, cwd=root), "git fetch")
        _checked(_git("checkout", "-q", "-f", "-B", branch, "FETCH_HEAD", cwd=root), "git checkout")
        return True
    if repair:  # a stopped checkout can leave tracked files out: put them back
        _checked(_git("reset", "-q", "--hard", "HEAD", cwd=root), "git reset")
    return False


# ---------------------------------------------------------------- the install
def constraints_for(root: Path) -> Path | None:
    """``constraints.txt`` when this machine is the platform it was frozen on, else None."""
    path = root / "constraints.txt"
    if not path.is_file():
        return None
    frozen = re.search(r"Frozen \S+ on Python [\d.]+, (\S+) (\S+)\.", path.read_text())
    if frozen and (platform.system(), platform.machine()) != (frozen[1], frozen[2]):
        return None
    return path


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def _python_tag() -> str:
    return f"{sys.version_info[0]}.{sys.version_info[1]}"


def imports_ok(root: Path, modules: tuple[str, ...] = VERIFY_IMPORTS) -> bool:
    """Whether a fresh interpreter imports the kit and its main dependencies (from /)."""
    code = "import importlib, sys\nfor m in sys.argv[1:]: importlib.import_module(m)"
    proc = subprocess.run(
        [sys.executable, "-c", code, *modules], capture_output=True, cwd="/", check=False
    )
    return proc.returncode == 0


def _pip_install(root: Path) -> None:
    """``pip install -c constraints.txt -e root``, falling back to the ranges, then verified."""
    constraints = constraints_for(root)
    args = ["-e", str(root)]
    proc = _pip(*(["-c", str(constraints)] if constraints else []), *args)
    if constraints and proc.returncode != 0:
        say(
            f"the tested versions (constraints.txt) do not install on Python {_python_tag()} "
            "here; using the version ranges in pyproject.toml instead"
        )
        constraints = None
        proc = _pip(*args)
    _checked(proc, "pip install")
    if not imports_ok(root):
        say("repairing a half-finished install (reinstalling) ...")
        pins = ["-c", str(constraints)] if constraints else []
        _checked(_pip("--force-reinstall", *pins, *args), "pip install --force-reinstall")
    from infralab.core.env import gpu_info

    pin = ort_requirement_for_driver(gpu_info())
    if pin:
        say(f"this GPU's driver supports CUDA 12: installing {pin} so the GPU is used ...")
        _checked(_pip(pin), f"pip install {pin}")


def stale_modules(names: tuple[str, ...] = LOADED_PINS) -> list[str]:
    """Packages this kernel loaded before the install replaced them with another version."""
    from importlib import metadata

    stale = []
    for name in names:
        module = sys.modules.get(name)
        loaded = getattr(module, "__version__", None)
        if not loaded:
            continue
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
        if installed != loaded:
            stale.append(f"{name} {loaded} -> {installed}")
    return stale


def _fetch_assets(root: Path) -> None:
    from infralab.core import assets

    assets.fetch_all(quiet=True)


def _enable_widgets() -> None:
    try:
        from google.colab import output  # type: ignore[import-not-found]
    except ImportError:
        return
    output.enable_custom_widget_manager()


def bootstrap(
    notebook: str,
    *,
    colab: bool | None = None,
    repo_url: str = REPOSITORY,
    branch: str = STUDENT_BRANCH,
    root: Path = COLAB_ROOT,
    install: Callable[[Path], None] = _pip_install,
    fetch: Callable[[Path], None] = _fetch_assets,
    enable_widgets: Callable[[], None] = _enable_widgets,
) -> str:
    """Set the kit up for ``notebook`` (a path relative to the repository root).

    Returns what was done: ``"local"`` (not Colab: nothing, and nothing printed), ``"ready"``
    (already set up), ``"installed"``, or ``"restart"`` (a loaded package was replaced: the
    student restarts the session and runs the cell again). The generated cell calls it
    inside an ``if``, so the value is never echoed.
    """
    if not (in_colab() if colab is None else colab):
        return "local"
    root = Path(root)
    marker = root / MARKER
    done = marker.is_file()
    if ensure_clone(root, repo_url, branch, repair=not done):
        marker.unlink(missing_ok=True)
        done = False
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    state = "ready"
    if not done:
        how = "the tested versions" if constraints_for(root) else "its dependencies"
        say(f"installing the kit with {how} ({INSTALL_TIME}) ...")
        install(root)
        stale = stale_modules()
        if stale:
            say(
                f"replaced while loaded ({', '.join(stale)}): Runtime > Restart session, "
                "then run this cell again"
            )
            return "restart"
        say("fetching the model files ...")
        fetch(root)
        marker.write_text("ok\n")
        state = "installed"
    enable_widgets()
    os.chdir(root / Path(notebook).parent)
    say("ready")
    return state
