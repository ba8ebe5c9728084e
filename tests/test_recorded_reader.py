"""The kit's recorded benchmark runs (datasets/benchmarks/) have one reader and store each
figure once: ``infralab.core.results.recorded`` opens them, and nothing else in the package does."""

from __future__ import annotations

import ast
import copy
import json
import re
from pathlib import Path

import pytest

from infralab.core import results
from infralab.core.errors import InfralabError
from infralab.core.results import recorded_runs

PACKAGE = Path(results.__file__).parents[1]
# results/recorded_runs.py reads and writes the folder; paths.py names it
ALLOWED = {Path(recorded_runs.__file__), PACKAGE / "paths.py"}
FOLDER_NAMES = {"RECORDED_DIR", "BENCHMARKS_DIR"}
UNTYPED = {"quality", "grading"}  # recorded runs with no record type yet


# --------------------------------------------------------- (a) no other module opens them
def direct_reads(source: str, recorded: list[str]) -> list[str]:
    """Places in ``source`` that reach a recorded file without the one reader: the folder's
    constant, a path built to the folder (``/ "benchmarks"``, ``"datasets/benchmarks/..."``
    given to a path or ``open``), or a recorded file's name (or a glob over it) joined to a
    path, given to one, or kept in a module constant. A label naming a file is not a read."""
    tree = ast.parse(source)
    named = [  # string constants assigned to module-level names (alone or in a list)
        c
        for stmt in tree.body
        if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None
        for c in ast.walk(stmt.value)
        if isinstance(c, ast.Constant)
        and isinstance(c.value, str)
        and isinstance(stmt.value, (ast.Constant, ast.List, ast.Tuple))
    ]
    file_name = re.compile(
        r"^(?:datasets/)?(?:benchmarks/)?(?:"
        + "|".join(map(re.escape, recorded))
        + r")[\w*]*\.json$"
    )
    found = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", "?")
        if isinstance(node, ast.Name) and node.id in FOLDER_NAMES:
            found.append(f"line {line}: {node.id}")
        elif isinstance(node, ast.Attribute) and node.attr in FOLDER_NAMES:
            found.append(f"line {line}: .{node.attr}")
        elif isinstance(node, ast.alias) and node.name in FOLDER_NAMES:
            found.append(f"line {line}: import {node.name}")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            for side in (node.left, node.right):
                if isinstance(side, ast.Constant) and isinstance(side.value, str):
                    text = side.value.strip("/")
                    if (
                        text == "benchmarks"
                        or text.startswith(("benchmarks/", "datasets/benchmarks"))
                        or file_name.match(text)
                    ):
                        found.append(f"line {line}: / {side.value!r}")
        elif isinstance(node, ast.Call) and node.args:
            first = node.args[0]
            callee = (
                node.func.attr
                if isinstance(node.func, ast.Attribute)
                else getattr(node.func, "id", "")
            )
            if (
                callee in {"Path", "open", "glob", "rglob", "read_text", "PurePath"}
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
                and ("benchmarks" in first.value or file_name.match(first.value))
            ):
                found.append(f"line {line}: {callee}({first.value!r})")
    for node in named:  # a module constant naming a recorded file (a reader's list of files)
        if file_name.match(node.value.strip()):
            found.append(f"line {node.lineno}: {node.value!r}")
    return found


def test_the_scan_finds_a_direct_read() -> None:
    """The scan below is a real check: each way of reaching the folder directly is found."""
    names = results.recorded_names()
    bad = {
        "from infralab.core.paths import BENCHMARKS_DIR\n": "import BENCHMARKS_DIR",
        "from infralab.core import results\nx = results.RECORDED_DIR / 'a.json'\n": ".RECORDED_DIR",
        "import json\nfrom infralab.core.paths import DATASETS_DIR\n"
        "json.loads((DATASETS_DIR / 'benchmarks' / 'x.json').read_text())\n": "'benchmarks'",
        "from pathlib import Path\nPath('datasets/benchmarks/serving.json').read_text()\n": "Path(",
        "def f(folder):\n    return sorted(folder.glob('embedding_gpu_*.json'))\n": "glob(",
        "NAME = 'generation_gpu_h200.json'\n": "'generation_gpu_h200.json'",
        "RUNS = ['serving.json']\n": "'serving.json'",
        "def f(folder):\n    return folder / 'rag.json'\n": "/ 'rag.json'",
    }
    for source, what in bad.items():
        found = direct_reads(source, names)
        assert any(what in f for f in found), f"the scan misses {source!r}: {found}"
    fine = (
        '"""Reads datasets/benchmarks/serving.json."""\n'
        'def f(rec):\n    return rec.source or "rag.json"\n'
        'LABEL = Figure(49.0, "tokens/s", "default", "datasets/benchmarks/generation.json")\n'
    )
    assert direct_reads(fine, names) == []  # a label naming a file is not a read


def test_no_module_but_results_opens_a_recorded_file() -> None:
    names = results.recorded_names()
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path in ALLOWED:
            continue
        found = direct_reads(path.read_text(encoding="utf-8"), names)
        if found:
            offenders[str(path.relative_to(PACKAGE.parent))] = found
    assert not offenders, (
        "read recorded runs with infralab.core.results.recorded (write them with "
        f"results.write_recorded), not directly: {offenders}"
    )


# ------------------------------------------- (b) every file loads into its typed record
def test_every_recorded_file_loads_through_the_one_reader() -> None:
    files = sorted(p.stem for p in recorded_runs.RECORDED_DIR.iterdir() if p.suffix == ".json")
    assert files == results.recorded_names() and len(files) >= 9
    for name in files:
        run = results.recorded(name)
        assert run.file == f"datasets/benchmarks/{name}.json"
        if name in UNTYPED:
            assert run.record is None and run["data"] and run["machine"], name
            continue
        kind = name.split("_")[0]
        assert isinstance(run.record, results.KINDS[kind]), name
        record = results.load_recorded(kind, name)
        assert record.origin == "recorded" and record.source == run.file
        # stored once: no record field is repeated at the top of the detail
        assert not set(run.detail) & set(record.to_dict()), name


def test_every_recorded_run_the_kit_names_exists() -> None:
    """A reader that lists a recorded file that is not there is a bug (it once named an
    H100 run that was never recorded)."""
    from infralab.engines.rag import measure as rag_measure
    from infralab.presentation.charts import tokens

    named = [*tokens.GPU_RECORDS, *results.RECORDED_GPU.values(), rag_measure.GPU_GENERATION_RECORD]
    missing = [n for n in named if not results.recorded_path(n).is_file()]
    assert not missing, f"named but not recorded: {missing}"
    assert tokens.gpu_record() is not None


def test_quality_sections_through_the_one_reader() -> None:
    from infralab.engines.rag import answer_quality

    for section in ("quality", "drift", "isolation"):
        part, label = answer_quality.recorded(section)
        assert part["measured_at"][:16].replace("T", " ") in label
    with pytest.raises(results.ResultError, match="no 'nope' section"):
        answer_quality.recorded("nope")


# ---------------------------------- (c) a figure stored twice, or a missing field, is refused
@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(recorded_runs, "RECORDED_DIR", tmp_path)
    monkeypatch.setenv(results.RESULTS_ENV, str(tmp_path / "mine"))
    return tmp_path


SHIPPED = json.loads((recorded_runs.RECORDED_DIR / "serving.json").read_text())


def _write(folder: Path, name: str, content: dict) -> None:
    (folder / f"{name}.json").write_text(json.dumps(content))


def _refused(name: str, match: str) -> None:
    with pytest.raises(results.ResultError, match=match) as info:
        results.recorded(name)
    assert isinstance(info.value, InfralabError) and info.value.hint
    assert f"{name}.json" in str(info.value)  # the message names the file


def test_the_shipped_file_is_fine_in_a_tmp_folder(folder: Path) -> None:
    _write(folder, "serving", SHIPPED)
    assert results.load_recorded("serving").throughput_rps == SHIPPED["record"]["throughput_rps"]


def test_a_number_stored_twice_with_different_values_is_refused(folder: Path) -> None:
    bad = copy.deepcopy(SHIPPED)
    bad["detail"]["data"] = {"throughput_rps": 999.0}
    _write(folder, "serving", bad)
    _refused(
        "serving", r"stores throughput_rps twice, with different values: .* 999\.0 in detail\.data"
    )
    with pytest.raises(results.ResultError):  # no silent fallback past a bad recorded file
        results.load("serving")


def test_a_number_stored_twice_even_alike_is_refused(folder: Path) -> None:
    bad = copy.deepcopy(SHIPPED)
    bad["detail"]["measured_at"] = bad["record"]["date"]
    _write(folder, "serving", bad)
    _refused("serving", r"stores measured_at twice: .*keep it once, in record")


def test_a_headline_that_differs_from_its_table_row_is_refused(folder: Path) -> None:
    bad = copy.deepcopy(SHIPPED)
    bad["detail"]["benchmark"]["batching"]["loaded"]["throughput_rps"] = 1.5
    _write(folder, "serving", bad)
    _refused(
        "serving", r"throughput_rps twice, with different values: .* 1\.5 in detail\.benchmark"
    )


def test_the_old_layout_with_a_copy_beside_the_record_is_refused(folder: Path) -> None:
    bad = copy.deepcopy(SHIPPED)
    bad["data"] = {"throughput_rps": SHIPPED["record"]["throughput_rps"]}
    _write(folder, "serving", bad)
    _refused("serving", "holds data beside its record and detail")


@pytest.mark.parametrize(
    ("field", "match"),
    [
        ("mean_duration_s", "mean_duration_s is 0.0; it must be a positive, finite number"),
        ("schema", "no 'schema' field"),
        ("kind", "its kind None is not one of"),
    ],
)
def test_a_record_missing_a_field_is_refused(folder: Path, field: str, match: str) -> None:
    bad = copy.deepcopy(SHIPPED)
    del bad["record"][field]
    _write(folder, "serving", bad)
    _refused("serving", match)


def test_an_untyped_run_missing_its_header_is_refused(folder: Path) -> None:
    _write(folder, "quality", {"name": "quality", "command": "x", "data": {}})
    _refused("quality", "has no machine")


def test_broken_json_is_refused_with_the_file_named(folder: Path) -> None:
    (folder / "serving.json").write_text("{not json")
    _refused("serving", "is not valid JSON")


def test_the_writer_refuses_a_figure_stored_twice(folder: Path) -> None:
    _write(folder, "serving", SHIPPED)
    rec = results.load_recorded("serving")
    with pytest.raises(results.ResultError, match="stores p50_ms twice"):
        results.write_recorded("serving_copy", rec, {"data": {"p50_ms": rec.p50_ms}})
    assert not (folder / "serving_copy.json").exists()  # nothing half-written
    path = results.write_recorded("serving_copy", rec, copy.deepcopy(SHIPPED["detail"]))
    assert results.recorded("serving_copy").record == results.recorded("serving").record
    assert path == folder / "serving_copy.json"


def test_a_bad_name_is_refused() -> None:
    with pytest.raises(results.ResultError, match="lower-case letters"):
        results.recorded("../serving")
