"""The student release: nothing an instructor keeps back ships; everything a student runs does.

The searches here are written independently of ``infralab.tooling.release.audit`` (the command's own
guard), so a bug in one does not hide a leak from both.
"""

from __future__ import annotations

import ast
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from infralab.core.project import REPOSITORY, STUDENT_BRANCH
from infralab.tooling import labs, notebooks, release

GIT_ID = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@t",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@t",
}
FORBIDDEN_DIRS = ("labs/solutions", "docs/answers", "infralab/tooling/checks/references", "tests")


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **GIT_ID},
    ).stdout


def _clone(repo_root: Path, dest: Path) -> Path:
    """A copy of this repository (its HEAD) to try things on, with none of this one's refs."""
    subprocess.run(
        ["git", "clone", "-q", "--no-hardlinks", str(repo_root), str(dest)],
        check=True,
        env={**os.environ, **GIT_ID},
    )
    return dest


@pytest.fixture(scope="module")
def built(repo_root, tmp_path_factory) -> release.Release:
    out = tmp_path_factory.mktemp("release") / "student"
    return release.build(out, repo_root, strict=False)  # audited by the tests below


# ---------------------------------------------------------------- independent searches
def _code_cells(path: Path) -> list[str]:
    cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    return [
        "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
        for c in cells
        if c.get("cell_type") == "code"
    ]


def _squash(code: str) -> str:
    """Code lines without indentation, comments or blank lines, joined by newlines."""
    lines = (line.strip() for line in code.splitlines())
    return "\n".join(x for x in lines if x and not x.startswith("#"))


def _solution_blocks(root: Path) -> list[tuple[str, str]]:
    blocks = []
    for path in sorted((root / "labs" / "solutions").glob("*.ipynb")):
        for source in _code_cells(path):
            for found in re.findall(
                r"### BEGIN SOLUTION\n(.*?)\n[ \t]*### END SOLUTION", source, flags=re.S
            ):
                code = _squash(found)
                if len(code) >= 30:
                    blocks.append((path.name, code))
    return blocks


class _Numbered(ast.NodeTransformer):
    """Renames every variable and parameter to its order of first appearance: n0, n1, ..."""

    def __init__(self) -> None:
        self.seen: dict[str, str] = {}

    def _name(self, name: str) -> str:
        return self.seen.setdefault(name, f"n{len(self.seen)}")

    def visit_arg(self, node: ast.arg) -> ast.arg:
        node.arg = self._name(node.arg)
        return node

    def visit_Name(self, node: ast.Name) -> ast.Name:
        node.id = self._name(node.id)
        return node


def _function_bodies(py_source: str) -> list[tuple[str, str]]:
    """(name, AST dump of the body: no docstring, variables numbered) of every function."""
    found = []
    for node in ast.walk(ast.parse(py_source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                body = body[1:]
            if len(ast.unparse(ast.Module(body=body, type_ignores=[]))) < 30:
                continue  # `return None` proves nothing
            renamer = _Numbered()
            renamer.visit(copy.deepcopy(node.args))
            module = renamer.visit(ast.Module(body=copy.deepcopy(body), type_ignores=[]))
            found.append((node.name, ast.dump(module)))
    return found


def _reference_bodies(root: Path) -> list[tuple[str, str]]:
    refs = []
    for path in sorted((root / "infralab" / "tooling" / "checks" / "references").rglob("*.py")):
        refs += [(f"{path.name}:{n}", d) for n, d in _function_bodies(path.read_text())]
    return refs


def _python_in(out: Path) -> list[tuple[str, str]]:
    """(file, Python source) for every .py file and every notebook code cell in ``out``."""
    found = []
    for path in sorted(out.rglob("*")):
        if ".git" in path.parts or not path.is_file():
            continue
        rel = path.relative_to(out).as_posix()
        if path.suffix == ".py":
            found.append((rel, path.read_text(encoding="utf-8")))
        elif path.suffix == ".ipynb":
            found += [(rel, src) for src in _code_cells(path)]
    return found


def reference_leaks(out: Path, root: Path) -> list[str]:
    """Files in ``out`` with a function whose body is that of a reference function of ``root``."""
    refs = dict((dump, where) for where, dump in _reference_bodies(root))
    leaks = []
    for rel, source in _python_in(out):
        try:
            bodies = _function_bodies(source)
        except SyntaxError:  # a notebook cell with IPython magics
            continue
        leaks += [f"{rel}: {name} = {refs[d]}" for name, d in bodies if d in refs]
    return leaks


# ---------------------------------------------------------------- the real release
def test_no_instructor_folder_ships(built):
    for folder in FORBIDDEN_DIRS:
        assert not (built.out / folder).exists(), folder
    assert not (built.out / "docs" / "instructor.md").exists()
    shipped = {p.relative_to(built.out).as_posix() for p in built.out.rglob("*") if p.is_file()}
    assert not {p for p in shipped if p.startswith(tuple(f"{d}/" for d in FORBIDDEN_DIRS))}
    assert built.left_out and all(release.instructor_only(p) for p in built.left_out)


def test_only_tracked_files_ship(built, repo_root):
    tracked = set(_git(repo_root, "ls-files").split("\n"))
    shipped = {p.relative_to(built.out).as_posix() for p in built.out.rglob("*") if p.is_file()}
    assert shipped <= tracked, sorted(shipped - tracked)


def test_no_notebook_has_a_solution_marker_or_a_solution_block(built, repo_root):
    blocks = _solution_blocks(repo_root)
    assert len(blocks) >= 7, "expected at least one solution block per lab"
    for path in built.out.rglob("*.ipynb"):
        text = path.read_text(encoding="utf-8")
        assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text, path
        code = _squash("\n".join(_code_cells(path)))
        for lab, block in blocks:
            assert block not in code, f"{path}: the solution of {lab}:\n{block}"


@pytest.mark.slow
def test_no_file_holds_a_reference_function(built, repo_root):
    # Whatever functions infralab/tooling/checks/references/ has in this checkout (none before the
    # references move lands): the planted-leak test below shows the search finds them.
    assert reference_leaks(built.out, repo_root) == []
    for where, dump in _reference_bodies(repo_root):
        for path in built.out.rglob("*"):
            if path.is_file() and path.suffix not in (".py", ".ipynb"):
                assert dump not in path.read_text(errors="replace"), (path, where)


@pytest.mark.slow
def test_the_release_passes_its_own_audit(built, repo_root):
    assert (repo_root / "infralab" / "tooling" / "checks" / "references").is_dir()
    assert release.audit(built.out, repo_root) == []


def test_every_lesson_and_student_lab_ships(built, repo_root):
    lessons = {p.name for p in (repo_root / "course").glob("*.ipynb")}
    assert lessons and lessons == {p.name for p in (built.out / "course").glob("*.ipynb")}
    labs_wanted = {p.name for p in (repo_root / "labs" / "solutions").glob("*.ipynb")}
    assert labs_wanted == {p.name for p in (built.out / "labs").glob("*.ipynb")}
    for name in labs_wanted:  # the student copy, byte for byte
        assert (built.out / "labs" / name).read_bytes() == (repo_root / "labs" / name).read_bytes()
        assert any(labs.PLACEHOLDER in src for src in _code_cells(built.out / "labs" / name))


def test_what_make_lab_binder_and_colab_need_ships(built):
    for name in ("README.md", "pyproject.toml", "Makefile", "environment.yml", "postBuild",
                 "start", "constraints.txt", ".jupyter/labconfig/page_config.json",
                 "datasets/pricing/llm_api.csv", "infralab/__init__.py", "infralab/tooling/colab.py"):  # fmt: skip
        assert (built.out / name).is_file(), name
    for name in ("postBuild", "start"):
        assert os.access(built.out / name, os.X_OK), f"{name} lost its executable bit"


def test_every_notebook_launches_the_student_branch(built):
    for path in [*(built.out / "course").glob("*.ipynb"), *(built.out / "labs").glob("*.ipynb")]:
        nb = notebooks.read(path)
        badge, setup = nb["cells"][0]["source"], nb["cells"][1]["source"]
        assert f'REPO, BRANCH = "{REPOSITORY}", "{STUDENT_BRANCH}"' in setup, path
        assert '"git", "clone", "-q", "--depth", "1", "--branch", BRANCH, REPO' in setup, path
        assert f"/blob/{STUDENT_BRANCH}/" in badge and f"/{STUDENT_BRANCH}?labpath=" in badge
    readme = (built.out / "README.md").read_text()
    assert f"/blob/{STUDENT_BRANCH}/course/00_start_here.ipynb" in readme


def test_the_readme_says_what_it_is(built):
    readme = (built.out / "README.md").read_text()
    assert release.NOTE_START in readme and "Student release" in readme
    assert built.commit[:12] in readme and built.date in readme
    assert readme.startswith("# infralab")  # the title stays first


def test_the_kit_imports_and_stops_instructor_commands_without_them(built, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(built.out)}
    code = (
        "import importlib.util, infralab, infralab.tooling.checks.lab05, infralab.tooling.colab; "
        "print(infralab.__file__); "
        "print(importlib.util.find_spec('infralab.tooling.checks.references'))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert done.returncode == 0, done.stderr
    where, spec = done.stdout.split()
    assert Path(where).is_relative_to(built.out) and spec == "None"
    for args in (["build-labs", "--check"], ["grade", "x.ipynb"]):
        done = subprocess.run(
            [sys.executable, "-m", "infralab", *args],
            capture_output=True,
            text=True,
            cwd=built.out,
            env=env,
        )
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert "instructor command" in done.stdout + done.stderr, args
    assert len(list((built.out / "labs").glob("*.ipynb"))) >= 7  # build-labs deleted nothing


def test_an_existing_folder_is_refused(tmp_path, repo_root):
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "x").write_text("x")
    with pytest.raises(release.ReleaseError, match="not an empty folder"):
        release.build(tmp_path / "old", repo_root)


# ---------------------------------------------------------------- a planted leak is found
LEAKY_REFERENCE = '''
def reference_served_per_hour(rps, utilization):
    """The reference (instructor-only)."""
    served = rps * 3600 * utilization
    return None if served <= 0 else served / 1000
'''
LEAK = """
def helper(requests_per_s, busy):
    served = requests_per_s * 3600 * busy  # renamed and re-commented: still the same body
    return None if served <= 0 else served / 1000
"""


@pytest.mark.slow
def test_a_planted_reference_copy_is_found(repo_root, tmp_path):
    clone = _clone(repo_root, tmp_path / "repo")
    refs = clone / "infralab" / "tooling" / "checks" / "references"
    refs.mkdir(parents=True, exist_ok=True)
    (refs / "__init__.py").touch()
    (refs / "lab99.py").write_text(LEAKY_REFERENCE)
    (clone / "infralab" / "economics" / "costs" / "leaky.py").write_text(LEAK)
    leaky_nb = notebooks.read(clone / "course" / "00_start_here.ipynb")
    leaky_nb["cells"].append(
        {
            "cell_type": "code",
            "metadata": {},
            "outputs": [],
            "execution_count": None,
            "source": textwrap.indent(LEAK.strip(), ""),
        }  # fmt: skip
    )
    (clone / "docs" / "leak.ipynb").write_text(notebooks.dumps(leaky_nb))
    _git(clone, "add", "-A")
    _git(clone, "commit", "-qm", "plant a leak")

    out = tmp_path / "student"
    release.build(out, clone, strict=False)
    assert not (out / "infralab" / "tooling" / "checks" / "references").exists()
    assert (out / "infralab" / "economics" / "costs" / "leaky.py").exists()
    leaks = reference_leaks(out, clone)
    assert any(x.startswith("infralab/economics/costs/leaky.py: helper") for x in leaks), leaks
    assert any(x.startswith("docs/leak.ipynb: helper") for x in leaks), leaks
    problems = release.audit(out, clone)
    assert any("leaky.py" in p and "lab99.py" in p for p in problems), problems
    assert any("docs/leak.ipynb" in p for p in problems), problems
    with pytest.raises(release.ReleaseError, match="leaky.py"):
        release.build(tmp_path / "strict", clone)


@pytest.mark.slow
def test_a_solution_copied_into_a_lesson_is_found(repo_root, tmp_path):
    clone = _clone(repo_root, tmp_path / "repo")
    lab, block = _solution_blocks(clone)[0]
    lesson = clone / "course" / "00_start_here.ipynb"
    nb = notebooks.read(lesson)
    nb["cells"].append(
        {
            "cell_type": "code",
            "metadata": {},
            "outputs": [],
            "execution_count": None,
            "source": "if True:\n" + textwrap.indent(block, "        "),
        }  # fmt: skip
    )
    lesson.write_text(notebooks.dumps(nb))
    out = tmp_path / "student"
    release.build(out, clone, check_labs=False, strict=False)  # the working tree is copied
    code = _squash("\n".join(_code_cells(out / "course" / "00_start_here.ipynb")))
    assert block in code
    assert any(p.startswith("course/00_start_here.ipynb") for p in release.audit(out, clone))
    assert built_dirty(out)


def built_dirty(out: Path) -> bool:
    return "with uncommitted changes" in (out / "README.md").read_text()


# ---------------------------------------------------------------- --branch
def test_branch_mode_commits_one_orphan_commit_in_a_copy(repo_root, tmp_path):
    # (worktrees share refs with other branches being worked on: watch only the release's)
    own_refs = _git(repo_root, "for-each-ref", "refs/heads/student", "refs/heads/release")
    clone = _clone(repo_root, tmp_path / "repo")
    _git(clone, "config", "user.name", "t")
    _git(clone, "config", "user.email", "t@t")
    head, status = _git(clone, "rev-parse", "HEAD"), _git(clone, "status", "--porcelain")
    rel = release.build(tmp_path / "student", clone, strict=False)

    commit = release.commit_branch(rel, "student", clone)
    assert _git(clone, "rev-parse", "student").strip() == commit
    assert _git(clone, "rev-list", "--count", "student").strip() == "1"  # orphan: no parent
    files = set(_git(clone, "ls-tree", "-r", "--name-only", "student").split())
    assert files == {p.relative_to(rel.out).as_posix() for p in rel.out.rglob("*") if p.is_file()}
    assert not {f for f in files if f.startswith(("labs/solutions/", "docs/answers/", "tests/"))}
    assert "100755 blob" in _git(clone, "ls-tree", "student", "postBuild")
    assert rel.commit[:12] in _git(clone, "log", "-1", "--format=%B", "student")
    # the copy's own branch, index and working tree are untouched
    assert _git(clone, "rev-parse", "HEAD") == head
    assert _git(clone, "status", "--porcelain") == status
    assert _git(clone, "symbolic-ref", "HEAD").strip() != "refs/heads/student"

    with pytest.raises(release.ReleaseError, match="--replace"):
        release.commit_branch(rel, "student", clone)
    again = release.commit_branch(rel, "student", clone, replace=True)
    assert _git(clone, "rev-list", "--count", "student").strip() == "1"
    assert _git(clone, "rev-parse", f"{again}^{{tree}}") == _git(
        clone, "rev-parse", f"{commit}^{{tree}}"
    )
    current = _git(clone, "symbolic-ref", "--short", "HEAD").strip()
    with pytest.raises(release.ReleaseError, match="checked out"):
        release.commit_branch(rel, current, clone, replace=True)
    with pytest.raises(release.ReleaseError):
        release.commit_branch(rel, "bad..name", clone)
    # this repository's refs never moved
    assert _git(repo_root, "for-each-ref", "refs/heads/student", "refs/heads/release") == own_refs


def test_release_help_is_complete():
    from infralab.__main__ import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    text = sub.choices["release"].format_help()
    for word in ("--out", "--branch", "--replace", "--no-labs-check", "git push origin"):
        assert word in text, word
    for path in release.INSTRUCTOR_ONLY:
        assert path in text, path
    assert shutil.which("git")
