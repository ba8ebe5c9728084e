"""Submissions written by someone trying to cheat, graded in one batch with an honest one.

Each hostile notebook starts from the untouched student copy of lab 05 (no work of its own)
and adds cells that try to forge a grade: patching the checks, builtins or the grader;
always-equal objects; printed pass lines; reading the solutions, the check references or
another student's file; rewriting the kit; writing outside its folder; double-forked
survivors; an early exit. Each must score zero on what it forges, the honest student's grade
must be what it is alone, and nothing may be left running or written outside the scratch
folders. Needs bubblewrap (the grader refuses without it); CI installs it (`make grade-deps`).
"""

from __future__ import annotations

import json
import secrets
import shutil
import time
from pathlib import Path

import psutil
import pytest

from infralab.tooling import grade, notebooks
from infralab.tooling.grade_benchmark import partly_solved
from infralab.tooling.grading.sandbox import bubblewrap_works

LAB = "05_break_even_dashboard.ipynb"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not bubblewrap_works(), reason="bwrap missing: apt-get install bubblewrap"),
]


def _cell(source: str) -> dict:
    return {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
            "source": source}  # fmt: skip


def _student(repo_root: Path) -> dict:
    return notebooks.read(repo_root / "labs" / LAB)


def _with_cells(nb: dict, *sources: str, at: int | None = None) -> dict:
    """Insert cells right after the notebook's first code cell (its imports)."""
    first = next(i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code")
    index = first + 1 if at is None else at
    nb["cells"][index:index] = [_cell(s) for s in sources]
    return nb


def _cheat_in_every_exercise(nb: dict, code: str) -> dict:
    """Each exercise cell keeps its placeholder functions but ends by replacing them with
    ``code`` (top-level ``raise NotImplementedError`` lines dropped so the cell gets there)."""
    for cell in nb["cells"]:
        src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] == "code" and "NotImplementedError" in src:
            kept = [line for line in src.splitlines() if not line.startswith("raise ")]
            cell["source"] = "\n".join(kept) + "\n" + code
    return nb


PATCH_EVERYTHING = r"""
import builtins, sys
import infralab.tooling.checks as C, infralab.tooling.checks.lab05 as L
ok = lambda *a, **k: C.CheckPassed("passed")
for name in dir(L):
    if name.startswith("check_"):
        setattr(L, name, ok)
        try:
            getattr(L, name).__code__ = ok.__code__
        except Exception:
            pass
C.check = ok; C.agrees_with_reference = lambda *a, **k: 80; C.refuse_kit_function = lambda *a, **k: None
C.CheckFailed = type("Never", (Exception,), {})
builtins.isinstance = lambda *a: True
builtins.NotImplementedError = type("Nope", (Exception,), {})
try:
    import infralab.tooling.submission_run as G
    G._check_row = lambda name, points, run: {"name": name, "points": points, "earned": 5000,
                                              "message": "forged", "hint": ""}
except Exception:
    pass
for mod in list(sys.modules):
    if "rpc" in mod:
        del sys.modules[mod]
"""

ALWAYS_EQUAL = r"""
class Anything(float):
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __lt__(self, other): return False
    def __gt__(self, other): return False
    def __le__(self, other): return True
    def __ge__(self, other): return True
    __hash__ = float.__hash__
    def __sub__(self, other): return Anything(0)
    __rsub__ = __sub__
    def __abs__(self): return Anything(0)
def gpu_cost_per_1k(*args): return Anything(1.0)
def break_even_requests_per_day(*args): return Anything(1.0)
def trap_utilization(*args): return Anything(0.5)
break_even_rpd = Anything(1.0)
print("✓ check_cost_per_1k: passed (2/2)")
print("✓ gpu_cost_per_1k agrees with the definition on 84 cases.")
from IPython.display import HTML, display
display(HTML('<span style="color:#157f3b">✓ all 9 points</span>'))
"""


def _reader(other: Path) -> str:
    return rf"""
import glob, inspect, os, pathlib
import infralab
root = pathlib.Path(infralab.__file__).resolve().parent.parent
stolen = []
for pattern in [str(root / "labs" / "solutions" / "*.ipynb"), str(root / "docs" / "answers" / "*"),
                {str(other)!r}, str(root / ".git" / "HEAD"), "/tmp/**/*.ipynb"]:
    for path in glob.glob(pattern, recursive=True):
        try:
            stolen.append(open(path).read())
        except Exception:
            pass
try:
    from infralab.tooling.checks.references import lab05 as R
    gpu_cost_per_1k = R._reference_cost_per_1k
except Exception:
    pass
import infralab.tooling.checks.lab05 as L
for name in dir(L):  # a reference left in the public check module would be copied here
    if name.startswith("_reference_cost"):
        exec(inspect.getsource(getattr(L, name)).replace(name, "gpu_cost_per_1k"))
for text in stolen:
    try:
        for cell in __import__("json").loads(text)["cells"]:
            src = "".join(cell["source"])
            if cell["cell_type"] == "code" and "BEGIN SOLUTION" in src and "def " in src:
                exec(src)
    except Exception:
        pass
for target in [L.__file__, infralab.__file__, "/root/infralab-pwned", "/usr/infralab-pwned"]:
    try:
        with open(target, "a") as f:
            f.write("\nraise SystemExit('pwned')\n")
    except Exception:
        pass
open("/tmp/infralab-pwned-{{marker}}", "w").write("x")
"""


def _forker(marker: str) -> str:
    return rf"""
import os, subprocess, time
subprocess.Popen(["setsid", "sh", "-c", "sleep 300 # {marker}"])
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execvp("sh", ["sh", "-c", "sleep 300 # {marker}"])
    os._exit(0)
time.sleep(0.5)
"""


def _survivors(marker: str) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        if marker in " ".join(p.info["cmdline"] or []):
            found.append(p)
    return found


def test_hostile_submissions_forge_nothing(
    repo_root: Path, tmp_path: Path, monkeypatch, request
) -> None:
    import tempfile

    # Short, in /tmp: the kernels' IPC sockets live under it and a socket path must fit in
    # 107 bytes (pytest-xdist's tmp_path, .../popen-gw0/test_hostile.../, does not).
    scratch_root = Path(tempfile.mkdtemp(prefix="hostile-", dir="/tmp"))
    request.addfinalizer(lambda: shutil.rmtree(scratch_root, ignore_errors=True))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch_root))
    marker = f"infralab-survivor-{secrets.token_hex(4)}"
    pwned = Path(f"/tmp/infralab-pwned-{marker}")
    folders = {name: tmp_path / name for name in
               ("honest", "patcher", "reader", "forker", "after")}  # fmt: skip
    for folder in folders.values():
        folder.mkdir()
    honest = folders["honest"] / LAB
    honest.write_text(json.dumps(notebooks.read(repo_root / "labs" / "solutions" / LAB)))
    (folders["patcher"] / LAB).write_text(
        json.dumps(
            _cheat_in_every_exercise(
                _with_cells(_student(repo_root), PATCH_EVERYTHING), ALWAYS_EQUAL
            )
        )  # fmt: skip
    )
    (folders["reader"] / LAB).write_text(
        json.dumps(_with_cells(_student(repo_root), _reader(honest).replace("{marker}", marker)))
    )
    early_exit = partly_solved(2)
    early_exit["cells"].append(_cell("import os\nos._exit(0)"))
    (folders["forker"] / LAB).write_text(json.dumps(_with_cells(early_exit, _forker(marker))))
    (folders["after"] / LAB).write_text(json.dumps(_student(repo_root)))
    kit_before = {
        p: p.read_bytes() for p in (repo_root / "infralab" / "tooling" / "checks").glob("*.py")
    }

    order = ["patcher", "reader", "honest", "forker", "after"]
    subs = grade.grade([folders[n] / LAB for n in order], tmp_path / "out", timeout_s=240,
                       progress=False)  # fmt: skip
    by = dict(zip(order, subs, strict=True))
    for name in ("patcher", "reader", "after"):
        assert by[name].total == 0, (name, [(r.name, r.message) for r in by[name].results])
        assert by[name].possible == 9
    assert by["honest"].total == 9 and by["honest"].status == "ok"
    forker = {r.name: r.earned for r in by["forker"].results}
    assert forker["check_cost_per_1k"] == 2 and forker["check_break_even_function"] == 2
    assert by["forker"].total == 4 and by["forker"].status == "kernel died"
    book = (tmp_path / "out" / "gradebook.csv").read_text()
    assert "5000" not in book
    # nothing left running, nothing written outside the scratch folders, the kit unchanged
    deadline = time.monotonic() + 10
    while _survivors(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _survivors(marker)
    assert not pwned.exists()
    assert not Path("/root/infralab-pwned").exists() and not Path("/usr/infralab-pwned").exists()
    assert kit_before == {p: p.read_bytes() for p in kit_before}
    assert not list(scratch_root.glob("infralab-grade-*"))
