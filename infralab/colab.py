"""The first cell of every notebook: on Colab it sets the kit up once; elsewhere it does nothing.

Colab opens a single notebook file with none of the repository around it, so the set-up must
clone the repository (the student release branch, ``infralab.project.STUDENT_BRANCH``; the
solution notebooks clone the instructor's branch), install it, fetch the model files, turn on the widget manager that
ipywidgets needs there, and move into the notebook's folder. Every step is skipped when it
has already been done, so running the cell again (or another notebook) costs nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from infralab.project import REPOSITORY, STUDENT_BRANCH

COLAB_ROOT = Path("/content/infralab")
MARKER = ".infralab-bootstrapped"


def in_colab() -> bool:
    return "google.colab" in sys.modules


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


def _pip_install(root: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", str(root)], check=True)
    from infralab.env import gpu_info

    pin = ort_requirement_for_driver(gpu_info())
    if pin:
        print(f"This GPU's driver supports CUDA 12: installing {pin} so the GPU is used ...")
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", pin], check=True)


def _fetch_assets(root: Path) -> None:
    from infralab import assets

    assets.fetch_all()


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

    Returns what was done: ``"local"`` (nothing to do), ``"ready"`` (already set up) or
    ``"installed"``.
    """
    if not (in_colab() if colab is None else colab):
        return "local"
    root = Path(root)
    marker = root / MARKER
    state = "ready"
    if not marker.exists():
        if not (root / ".git").exists():
            print(f"Cloning {repo_url} into {root} ...")
            subprocess.run(
                ["git", "clone", "--depth", "1", "--branch", branch, repo_url, str(root)],
                check=True,
            )
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
        print("Installing the kit and its dependencies (about a minute) ...")
        install(root)
        fetch(root)
        marker.write_text("ok\n")
        state = "installed"
    enable_widgets()
    os.chdir(root / Path(notebook).parent)
    return state
