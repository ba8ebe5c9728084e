"""Each notebook runs once per ``make test``: nbval's run keeps the executed notebooks
(infralab/tooling/nbval_record.py) and the site renders them, running only a missing or stale one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from infralab.tooling import executed, site

REPO = Path(__file__).resolve().parents[1]
v4 = nbformat.v4


def _executed_copy(source: Path, folder: Path, root: Path, text: str, **meta: str) -> Path:
    """An executed copy as the plugin writes it, whose one output reads ``text``."""
    nb = nbformat.read(str(source), as_version=4)
    code = next(c for c in nb.cells if c.cell_type == "code")
    code.outputs = [v4.new_output("stream", name="stdout", text=text + "\n")]
    code.execution_count = 1
    nb.metadata[executed.META_KEY] = {
        "source_sha256": executed.file_sha256(source),
        "kit_sha256": executed.kit_sha256(),
        "executed_by": "nbval (make notebooks)",
        **meta,
    }
    nb.metadata["infralab_site"] = {"wall_s": 1.0, "error": "", "closed_widgets": []}
    target = folder / source.relative_to(root)
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(target))
    return target


def _lesson(root: Path, code: str) -> Path:
    path = root / "course" / "01_a.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(
        v4.new_notebook(cells=[v4.new_markdown_cell("# A lesson"), v4.new_code_cell(code)]),
        str(path),
    )
    return path


def test_lookup_tells_fresh_missing_and_stale_copies(tmp_path: Path) -> None:
    source = _lesson(tmp_path, "print(1)")
    folder = tmp_path / "executed"
    missing = executed.lookup(source, tmp_path, folder)
    assert not missing.fresh and "no executed copy" in missing.reason

    copy = _executed_copy(source, folder, tmp_path, "1")
    fresh = executed.lookup(source, tmp_path, folder)
    assert fresh.fresh and fresh.copy_path == copy and fresh.reason == ""

    older_kit = executed.lookup(source, tmp_path, folder, kit="0" * 64)
    assert not older_kit.fresh and "kit" in older_kit.reason

    source.write_text(source.read_text().replace("print(1)", "print(2)"))
    changed = executed.lookup(source, tmp_path, folder)
    assert not changed.fresh and "notebook changed" in changed.reason


def test_kit_hash_follows_the_kit_sources(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "a.py").write_text("x = 1\n")
    before = executed.kit_sha256(package)
    assert executed.kit_sha256(package) == before
    (package / "a.py").write_text("x = 2\n")
    assert executed.kit_sha256(package) != before


@pytest.mark.notebook
def test_site_renders_a_fresh_copy_and_runs_a_stale_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _lesson(tmp_path, 'print("ran " + "by the site")')
    folder = tmp_path / "executed"
    _executed_copy(source, folder, tmp_path, "kept from the notebook tests")
    out = tmp_path / "site"

    (page,) = site.build([source], out, root=tmp_path, executed_from=folder)
    html = (out / page.html_name).read_text(encoding="utf-8")
    assert "kept from the notebook tests" in html and "ran by the site" not in html
    assert page.extra["executed_by"] == "nbval (make notebooks)"
    assert "<td>nbval (make notebooks)</td>" in (out / "index.html").read_text(encoding="utf-8")
    assert "rendered from" in capsys.readouterr().out

    # the lesson changes after the notebook tests ran: the copy is stale, the site runs it
    source.write_text(source.read_text().replace("by the site", "by the site again"))
    (page,) = site.build([source], out, root=tmp_path, executed_from=folder)
    html = (out / page.html_name).read_text(encoding="utf-8")
    assert "ran by the site again" in html and "kept from the notebook tests" not in html
    assert page.extra["executed_by"] == "make site" and not page.error
    assert "<td>make site</td>" in (out / "index.html").read_text(encoding="utf-8")
    assert "executing (stale: the notebook changed" in capsys.readouterr().out


@pytest.mark.notebook
def test_nbval_run_keeps_only_notebooks_whose_every_cell_passed(tmp_path: Path) -> None:
    ok = v4.new_notebook(
        cells=[
            v4.new_markdown_cell("# Passes"),
            v4.new_code_cell("print('hello')"),
            v4.new_code_cell(
                "from IPython.display import clear_output\nprint('gone')\nclear_output()\n"
                "print('kept')"
            ),
            v4.new_code_cell(
                "import ipywidgets as w\nout = w.Output()\nwith out:\n    print('in the widget')\n"
                "display(out)"
            ),
            v4.new_code_cell(
                "from infralab.core import results\n"
                "results.save(results.ServingResult(throughput_rps=321.5, mean_duration_s=0.00731,"
                " cpu_vcpus=2))"
            ),
            v4.new_code_cell("1 / 0", metadata={"tags": ["raises-exception"]}),
        ]
    )
    bad = v4.new_notebook(
        cells=[v4.new_code_cell("print('a')"), v4.new_code_cell("raise ValueError('boom')")]
    )
    nbformat.write(ok, str(tmp_path / "ok.ipynb"))
    nbformat.write(bad, str(tmp_path / "bad.ipynb"))
    out = tmp_path / "executed"
    out.mkdir()
    (out / "bad.ipynb").write_text("{}")  # an older copy: a failing run must not leave it
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "INFRALAB_RESULTS": str(tmp_path / "results"),
    }
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "infralab.tooling.nbval_record",
         "--executed-dir", str(out), "--rootdir", str(tmp_path), "--nbval-lax",
         "--nbval-current-env", "--nbval-cell-timeout=120", "ok.ipynb", "bad.ipynb"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    assert "1 failed, 6 passed" in run.stdout, run.stdout[-3000:]
    assert "bad.ipynb: not every cell passed: no executed copy" in run.stdout
    assert not (out / "bad.ipynb").exists()

    nb = nbformat.read(str(out / "ok.ipynb"), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == [1, 2, 3, 4, 5]
    assert code[0].outputs[0]["text"] == "hello\n"
    assert [o.get("text") for o in code[1].outputs] == ["kept\n"]  # as a front end shows it
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    captured = [m["state"]["outputs"] for m in state.values() if m["model_name"] == "OutputModel"]
    assert captured == [[{"name": "stdout", "output_type": "stream", "text": "in the widget\n"}]]
    assert code[4].outputs[0]["ename"] == "ZeroDivisionError"
    meta = nb.metadata[executed.META_KEY]
    assert meta["source_sha256"] == executed.file_sha256(tmp_path / "ok.ipynb")
    assert meta["kit_sha256"] == executed.kit_sha256()
    saved = json.loads((tmp_path / "results" / "serving.json").read_text())
    assert meta["saved_results"] == {"serving.json": saved}
    assert saved["throughput_rps"] == 321.5
    assert executed.lookup(tmp_path / "ok.ipynb", tmp_path, out).fresh
