"""One source for labs, clean notebooks, generated headers, and the Colab set-up."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

from infralab.core import project
from infralab.core.project import REPOSITORY, STUDENT_BRANCH, badges_markdown
from infralab.tooling import colab, labs, notebooks


def _cell(kind: str, source: str, tags: list[str] | None = None) -> dict:
    cell = {"cell_type": kind, "metadata": {"tags": tags or []}, "source": source}
    if kind == "code":
        cell.update(outputs=[], execution_count=None)
    return cell


def _nb(*cells: dict) -> dict:
    return {"cells": list(cells), "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


SOLUTION = _nb(
    _cell("markdown", "# Lab"),
    _cell(
        "code",
        "def p99(xs):\n    ### BEGIN SOLUTION\n    return sorted(xs)[-1]\n    ### END SOLUTION",
    ),
    _cell("code", "check_p99(p99)"),
    _cell("code", "print('independent')"),
)


def test_student_version_blanks_solutions_and_tags_cells():
    student = labs.student_version(SOLUTION)
    code = student["cells"][1]
    assert "sorted" not in code["source"] and "NotImplementedError" in code["source"]
    assert code["source"].startswith("def p99(xs):\n    # YOUR CODE HERE")
    assert labs.RAISES in code["metadata"]["tags"]
    assert labs.RAISES in student["cells"][2]["metadata"]["tags"]  # the check cell
    assert labs.RAISES not in student["cells"][3]["metadata"]["tags"]
    assert "sorted" in SOLUTION["cells"][1]["source"]  # the source is untouched


def test_student_code_still_parses():
    student = labs.student_version(SOLUTION)
    compile(student["cells"][1]["source"], "cell", "exec")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("### BEGIN SOLUTION\nx = 1", "never closed"),
        ("x = 1\n### END SOLUTION", "without"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", "inside another"),
    ],
)
def test_broken_markers_are_reported(source, message):
    with pytest.raises(labs.LabSourceError, match=message):
        labs.student_version(_nb(_cell("code", source)))


def test_a_lab_without_exercises_is_an_error():
    with pytest.raises(labs.LabSourceError, match="nothing for students"):
        labs.student_version(_nb(_cell("code", "x = 1")))


def test_build_all_in_a_scratch_repo(tmp_path):
    (tmp_path / "course").mkdir()
    (tmp_path / "labs" / "solutions").mkdir(parents=True)
    (tmp_path / "course" / "00_x.ipynb").write_text(json.dumps(_nb(_cell("markdown", "# x"))))
    (tmp_path / "labs" / "solutions" / "02_y.ipynb").write_text(json.dumps(SOLUTION))
    (tmp_path / "labs" / "99_orphan.ipynb").write_text("{}")
    changed = labs.build_all(root=tmp_path)
    assert {p.name for p in changed} == {"00_x.ipynb", "02_y.ipynb", "99_orphan.ipynb"}
    assert not (tmp_path / "labs" / "99_orphan.ipynb").exists()
    assert labs.build_all(check=True, root=tmp_path) == []
    student = json.loads((tmp_path / "labs" / "02_y.ipynb").read_text())
    setup = student["cells"][1]
    assert notebooks.SETUP_TAG in setup["metadata"]["tags"]
    assert 'bootstrap(\n        "labs/02_y.ipynb",\n        branch=BRANCH,' in setup["source"]
    assert "repo_url=REPO," in setup["source"] and "root=ROOT," in setup["source"]
    assert REPOSITORY in setup["source"] and '"--branch", BRANCH' in setup["source"]
    # student labs clone the student release; the solution, the instructor's branch
    assert f'BRANCH = "{REPOSITORY}", "{STUDENT_BRANCH}"' in setup["source"]
    source = json.loads((tmp_path / "labs" / "solutions" / "02_y.ipynb").read_text())
    assert f'"{REPOSITORY}", "{project.BRANCH}"' in source["cells"][1]["source"]
    assert f"/blob/{project.BRANCH}/labs/solutions/" in source["cells"][0]["source"]
    assert f"/blob/{STUDENT_BRANCH}/labs/02_y.ipynb" in student["cells"][0]["source"]
    # editing the solution puts the student copy out of step
    sol = json.loads((tmp_path / "labs" / "solutions" / "02_y.ipynb").read_text())
    sol["cells"].append(_cell("markdown", "new"))
    (tmp_path / "labs" / "solutions" / "02_y.ipynb").write_text(json.dumps(sol))
    assert {p.name for p in labs.build_all(check=True, root=tmp_path)} == {"02_y.ipynb"}


def test_committed_notebooks_are_in_step(repo_root):
    out_of_step = labs.build_all(check=True, root=repo_root)
    assert out_of_step == [], f"run `python -m infralab build-labs`: {out_of_step}"


def test_no_notebook_has_stored_outputs(repo_root):
    found = notebooks.course_notebooks(repo_root)
    assert found, "no notebooks found"
    dirty = {str(p): notebooks.stored_outputs(notebooks.read(p)) for p in found}
    dirty = {p: cells for p, cells in dirty.items() if cells}
    assert not dirty, f"outputs stored (run `python -m infralab build-labs`): {dirty}"


def test_every_lesson_and_lab_exists(repo_root):
    assert (repo_root / "course" / "00_start_here.ipynb").is_file()
    for sol in (repo_root / "labs" / "solutions").glob("*.ipynb"):
        assert (repo_root / "labs" / sol.name).is_file()


def test_readme_badges_come_from_the_one_url(repo_root):
    assert badges_markdown() in (repo_root / "README.md").read_text()
    assert f"/v2/gh/{project.GITHUB_SLUG}/{STUDENT_BRANCH}" in badges_markdown()
    # the instructor guide opens the instructor's own branch
    guide = (repo_root / "docs" / "instructor.md").read_text()
    assert badges_markdown(branch=project.BRANCH) in guide


def test_build_labs_without_solutions_is_an_instructor_command(tmp_path, capsys):
    """In the student release build-labs stops and says why (it would delete every lab)."""
    from infralab.__main__ import main

    (tmp_path / "course").mkdir()
    (tmp_path / "labs").mkdir()
    (tmp_path / "labs" / "02_y.ipynb").write_text("{}")
    with pytest.raises(labs.InstructorOnlyError, match="instructor command"):
        labs.build_all(root=tmp_path)
    assert (tmp_path / "labs" / "02_y.ipynb").exists()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(labs, "REPO_ROOT", tmp_path)
        mp.setattr(labs.build_all, "__defaults__", (False, tmp_path))
        assert main(["build-labs", "--check"]) == 2
    assert "not available in the student release" in capsys.readouterr().err


# ---------------------------------------------------------------- Colab bootstrap
@pytest.fixture()
def local_repo(tmp_path):
    repo = tmp_path / "origin"
    (repo / "course").mkdir(parents=True)
    (repo / "course" / "01.ipynb").write_text("{}")
    git = ["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    # the published student release: what Colab must clone (not the instructor's main)
    subprocess.run([*git, "checkout", "-q", "-b", STUDENT_BRANCH], check=True)
    (repo / "STUDENT").write_text("release\n")
    subprocess.run([*git, "add", "STUDENT"], check=True)
    subprocess.run([*git, "commit", "-qm", "student release"], check=True)
    subprocess.run([*git, "checkout", "-q", "main"], check=True)
    return repo


def test_bootstrap_does_nothing_outside_colab(tmp_path):
    assert colab.bootstrap("course/01.ipynb", colab=False, root=tmp_path / "x") == "local"
    assert not (tmp_path / "x").exists()


def test_bootstrap_on_fake_colab_is_idempotent(local_repo, tmp_path, monkeypatch):
    calls: list[str] = []
    widget_calls: list[int] = []
    fake_output = types.SimpleNamespace(enable_custom_widget_manager=lambda: widget_calls.append(1))
    fake_colab = types.ModuleType("google.colab")
    fake_colab.output = fake_output
    monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
    monkeypatch.setitem(sys.modules, "google.colab", fake_colab)
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "content" / "infralab"
    kwargs = dict(
        repo_url=str(local_repo),
        root=root,
        install=lambda r: calls.append(f"install {r.name}"),
        fetch=lambda r: calls.append("fetch"),
    )
    monkeypatch.setattr(sys, "path", list(sys.path))
    assert colab.in_colab()
    assert colab.bootstrap("course/01.ipynb", **kwargs) == "installed"
    assert (root / "course" / "01.ipynb").is_file()
    assert (root / "STUDENT").is_file()  # the student branch, not the default one
    assert Path.cwd() == root / "course"
    assert calls == ["install infralab", "fetch"] and widget_calls == [1]
    assert colab.bootstrap("course/01.ipynb", **kwargs) == "ready"
    assert calls == ["install infralab", "fetch"]  # nothing repeated
    assert widget_calls == [1, 1]  # the widget manager is per notebook session


def test_setup_cell_runs_locally_as_a_no_op(repo_root, tmp_path):
    source = notebooks.header_cells("course/00_start_here.ipynb")[1]["source"]
    out = subprocess.run(
        [sys.executable, "-c", source], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == ""


@pytest.mark.parametrize(
    ("gpus", "pin"),
    [
        ([], None),
        ([{"name": "Tesla T4", "driver_cuda": "12.4"}], "onnxruntime-gpu>=1.20,<1.24"),
        ([{"name": "H100", "driver_cuda": "13.0"}], None),
        ([{"name": "odd", "driver_cuda": "?"}], None),
    ],
)
def test_colab_pins_a_cuda12_runtime_for_an_older_driver(gpus, pin):
    assert colab.ort_requirement_for_driver(gpus) == pin


def test_solutions_never_carry_raises_exception_and_needs_exercise_moves_to_the_copy():
    tagged = _nb(
        _cell("code", "x = 1\n### BEGIN SOLUTION\nx = 2\n### END SOLUTION"),
        _cell("code", "print(x)", tags=[labs.RAISES]),
    )
    with pytest.raises(labs.LabSourceError, match="never carries"):
        labs.student_version(tagged)
    tagged["cells"][1]["metadata"]["tags"] = [labs.NEEDS]
    student = labs.student_version(tagged)
    assert student["cells"][1]["metadata"]["tags"] == [labs.RAISES]


def test_committed_solutions_have_no_raises_exception(repo_root):
    for path in sorted((repo_root / "labs" / "solutions").glob("*.ipynb")):
        for cell in notebooks.read(path)["cells"]:
            assert labs.RAISES not in cell.get("metadata", {}).get("tags", []), path


def test_glossary_defines_the_terms_lessons_link_to(repo_root):
    text = (repo_root / "docs" / "glossary.md").read_text(encoding="utf-8")
    terms = re.findall(r"^\*\*(.+?)\.\*\*", text, flags=re.M)
    for needed in ("ASGI", "VNNI", "AMX", "Closed-loop load", "Open-loop load", "Roofline",
                   "RRF", "nDCG", "recall@k", "MRR", "TTFT", "KV cache", "int8 quantization",
                   "Micro-batching", "p99", "Cold start", "vCPU share", "GB-second", "MFU"):  # fmt: skip
        assert any(needed.lower() in term.lower() for term in terms), needed


# ---------------------------------------------------------------- saving never breaks anything
SAVED_NOTEBOOKS = ("course/01_two_infrastructures.ipynb", "labs/solutions/05_break_even_dashboard.ipynb",
                   "labs/05_break_even_dashboard.ipynb")  # fmt: skip


def _scratch_repo(repo_root: Path, tmp_path: Path) -> Path:
    """The committed lessons and labs in a scratch folder (build_all(root=...) works there)."""
    import shutil

    for folder in ("course", "labs/solutions"):
        (tmp_path / folder).mkdir(parents=True)
    for path in notebooks.course_notebooks(repo_root):
        shutil.copy(path, tmp_path / path.relative_to(repo_root))
    return tmp_path


def _clean(root: Path) -> tuple[list[Path], dict[str, list[int]]]:
    dirty = {
        str(p): notebooks.stored_outputs(notebooks.read(p))
        for p in notebooks.course_notebooks(root)
    }
    return labs.build_all(check=True, root=root), {p: c for p, c in dirty.items() if c}


def test_nbformat_write_keeps_every_notebook_in_step(repo_root, tmp_path):
    """nbformat.write: sorted keys, sources as lists of lines, cell ids, nbformat_minor 5."""
    import nbformat

    root = _scratch_repo(repo_root, tmp_path)
    for path in notebooks.course_notebooks(root):
        nb = nbformat.read(str(path), as_version=4)
        nb.nbformat_minor = 5
        nb = nbformat.validator.normalize(nb)[1]  # adds cell ids, as a 4.5 writer does
        nbformat.write(nbformat.from_dict(nb), str(path))
    assert '"id": ' in (root / SAVED_NOTEBOOKS[0]).read_text()
    assert _clean(root) == ([], {})


def test_a_jupyterlab_and_colab_save_keeps_labs_in_step(repo_root, tmp_path):
    """What JupyterLab and Colab write on save: kernel metadata, language_info, widget state,
    Colab's metadata and cell ``outputId``, ids, lists of lines without a final newline."""
    root = _scratch_repo(repo_root, tmp_path)
    for rel in SAVED_NOTEBOOKS:
        path = root / rel
        nb = json.loads(path.read_text())
        nb["nbformat_minor"] = 5
        nb["metadata"].update(
            colab={"provenance": [], "gpuType": "T4", "name": path.name},
            accelerator="GPU",
            kernelspec={"name": "python3", "display_name": "Python 3"},
            language_info={
                "name": "python",
                "version": "3.12.3",
                "mimetype": "text/x-python",
                "codemirror_mode": {"name": "ipython", "version": 3},
            },  # fmt: skip
            widgets={
                "application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2}
            },
        )
        for index, cell in enumerate(nb["cells"]):
            cell["id"] = f"cell-{index}"
            cell["metadata"].update(id=f"c{index}", outputId=f"out-{index}", collapsed=False)
            lines = cell["source"].splitlines(keepends=True)
            cell["source"] = lines if index % 2 else "".join(lines) + "\n"
        path.write_text(json.dumps(nb, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    assert _clean(root) == ([], {})


def test_content_changes_are_still_caught(repo_root, tmp_path):
    root = _scratch_repo(repo_root, tmp_path)
    student = root / "labs" / "05_break_even_dashboard.ipynb"
    nb = json.loads(student.read_text())
    code = next(
        c
        for c in nb["cells"]
        if c["cell_type"] == "code" and "raises-exception" in c["metadata"].get("tags", [])
    )
    code["metadata"]["tags"].remove("raises-exception")  # a tag is content: CI relies on it
    student.write_text(json.dumps(nb))
    lesson = root / "course" / "07_decision_framework.ipynb"
    nb = json.loads(lesson.read_text())
    nb["cells"][1]["source"] += "\nprint('edited')"  # the generated set-up cell
    lesson.write_text(json.dumps(nb))
    sol = root / "labs" / "solutions" / "02_load_test_endpoint.ipynb"
    nb = json.loads(sol.read_text())
    code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    code.update(
        execution_count=3, outputs=[{"output_type": "stream", "name": "stdout", "text": "x"}]
    )
    sol.write_text(json.dumps(nb))
    changed, dirty = _clean(root)
    assert {p.name for p in changed} == {student.name, lesson.name}
    assert list(dirty) == [str(sol)]
