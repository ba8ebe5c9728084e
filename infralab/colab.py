"""The first cell of every notebook: on Colab it sets the kit up once; elsewhere it does nothing.

Colab opens a single notebook file with none of the repository around it, so the set-up must
clone the repository, install it, fetch the model files, turn on the widget manager that
ipywidgets needs there, and move into the notebook's folder. Every step is skipped when it
has already been done, so running the cell again (or another notebook) costs nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from infralab.project import BRANCH, REPOSITORY

COLAB_ROOT = Path("/content/infralab")
MARKER = ".infralab-bootstrapped"


def in_colab() -> bool:
    return "google.colab" in sys.modules


def _pip_install(root: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", str(root)], check=True)


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
    branch: str = BRANCH,
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
