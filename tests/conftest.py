"""Shared test fixtures, and the rule that CI fails when a test skips without a reason allowed.

The reference outputs of the original implementations live in the repository
(``datasets/reference``), so the parity tests run in every clone and never skip for want of them.

Skip policy: a skip must name a missing optional thing. On this course's CI machine only the
accelerator is missing, so under ``CI=true`` (or ``INFRALAB_STRICT_SKIPS=1``) any skip whose
reason matches none of :data:`ALLOWED_SKIPS` fails the session, with the list of offenders.
``INFRALAB_NO_SKIP_EXCEPT`` adds reasons (regular expressions, ``;``-separated) for a machine
that lacks something else, e.g. ``INFRALAB_NO_SKIP_EXCEPT='chromium'`` where no browser can be
installed. Tests marked ``gpu`` may always skip.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from infralab.core.paths import REFERENCE_DIR, REPO_ROOT

if TYPE_CHECKING:
    from jupyterlab_harness import JupyterLab

# Reasons a test may skip on the CI machine (2 CPU cores, no accelerator), as regexes matched
# case-insensitively against the skip reason.
ALLOWED_SKIPS: tuple[str, ...] = (
    r"CUDA",  # no CUDA provider here, or (on a GPU machine) CPU-only behaviour not observable
    r"\bGPU\b",
    # test_rag_security: the cross-tenant probe does not apply to the per-tenant layout.
    r"one collection per tenant: there is no other tenant to reach",
)
STRICT_ENV = ("CI", "INFRALAB_STRICT_SKIPS")
EXTRA_ENV = "INFRALAB_NO_SKIP_EXCEPT"

_skipped: list[tuple[str, str]] = []


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """The reference outputs shipped in the repository (a missing file is a failure)."""
    return REFERENCE_DIR


@pytest.fixture(scope="session")
def jupyterlab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterLab]:
    """One JupyterLab for every browser test of the session (of the worker, under xdist;
    tests/jupyterlab_harness.py), over an empty temporary folder: each test copies what it opens
    into a folder of its own under ``server.root``. Stopped, with every kernel it started, at
    the end of the session."""
    pytest.importorskip("jupyterlab")
    pytest.importorskip("playwright", reason="playwright missing: pip install playwright")
    from jupyterlab_harness import JupyterLab

    tmp = tmp_path_factory.mktemp("jupyterlab")
    (tmp / "work").mkdir()
    server = JupyterLab(tmp, tmp / "work")
    try:
        server.start()
        yield server
    finally:
        server.stop()


# Under pytest-xdist (`make unit` and `make test-quick` run `-n auto --dist loadfile`), each
# test file runs in one worker, so a module's shared set-up is built once, as without xdist,
# and test_offline_browser.py runs its notebooks in course order in one JupyterLab. (Not
# `--dist loadgroup`: pytest-xdist 3.8 marks a group by rewriting ``item._nodeid``, which
# pytest 9 no longer reads, so groups are silently ignored.) A worker that runs JupyterLab
# tests starts its own server (`jupyterlab_server` is per session, i.e. per worker).


# Files that spend minutes waiting at no CPU (the hostile grading test waits out a 240 s time
# limit) are ranked first, so that their wait can overlap the other worker's work. On
# 2026-12-06 xdist's loadfile hand-out still ran it after the Run All in the same worker (about
# 4 min lost); giving it a worker of its own needs a scheduler of our own.
WAITING_FILES = ("tests/test_grade_hostile.py",)


def _rank(item: pytest.Item) -> int:
    """0: a file that mostly waits, or the Run All notebooks (the longest file); 1: another file
    of JupyterLab tests; 2: a file with a ``slow`` test; 3: the rest."""
    names = getattr(item, "fixturenames", ())
    if "run_all_copy" in names or item.nodeid.startswith(WAITING_FILES):
        return 0
    if "jupyterlab_server" in names:
        return 1
    return 2 if item.get_closest_marker("slow") else 3


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under xdist, hand out the longest files first, so no worker is left with a long file at
    the end. Whole files move; the order of tests within a file, their fixtures and their
    assertions are untouched. Without xdist the order is the collection order."""
    if not hasattr(config, "workerinput"):  # not an xdist worker
        return
    files: dict[str, int] = {}
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        files[path] = min(files.get(path, 3), _rank(item))
    items.sort(key=lambda item: files[item.nodeid.split("::", 1)[0]])  # stable


def strict_skips() -> bool:
    """Whether a disallowed skip fails the session: on CI, or when asked explicitly."""
    return any(os.environ.get(k, "").strip().lower() in {"1", "true", "yes"} for k in STRICT_ENV)


def allowed_patterns() -> list[str]:
    extra = [p.strip() for p in os.environ.get(EXTRA_ENV, "").split(";") if p.strip()]
    return [*ALLOWED_SKIPS, *extra]


def skip_allowed(reason: str, keywords: object = ()) -> bool:
    """True when a skip with this reason (or on a ``gpu``-marked test) is acceptable here."""
    if "gpu" in keywords:
        return True
    return any(re.search(p, reason, flags=re.IGNORECASE) for p in allowed_patterns())


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = _skip_reason(report)
        if not skip_allowed(reason, report.keywords):
            _skipped.append((report.nodeid, reason))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _skipped and strict_skips() and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if not _skipped:
        return
    verdict = "these fail the run (CI)" if strict_skips() else "these would fail under CI=true"
    terminalreporter.section("skips that are not allowed on this machine", sep="=", red=True)
    terminalreporter.write_line(
        f"{len(_skipped)} test(s) skipped for a reason other than a missing accelerator; "
        f"{verdict}. Fix the cause, or allow the reason with {EXTRA_ENV}='regex;regex'."
    )
    for nodeid, reason in _skipped:
        terminalreporter.write_line(f"  {nodeid}: {reason}")
