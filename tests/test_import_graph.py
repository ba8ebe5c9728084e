"""The drawing of infralab's imports in CONTRIBUTING.md: in step with the code, every arrow
pointing down the layers, and no circle, between top-level modules or inside a package."""

from __future__ import annotations

import importlib.util

import pytest

from infralab.core.paths import REPO_ROOT

pytest.importorskip("grimp", reason="the import graph is grimp's (it comes with import-linter)")


def _script():
    spec = importlib.util.spec_from_file_location(
        "import_graph", REPO_ROOT / "scripts" / "import_graph.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def script():
    return _script()


@pytest.fixture(scope="module")
def graph(script):
    return script._graph()


def test_the_drawing_in_contributing_is_the_code_s(script, graph):
    assert script.in_contributing() == script.mermaid(script.edges(graph), script.layers()), (
        "CONTRIBUTING.md's import drawing is out of step: run python scripts/import_graph.py --write"
    )


def test_every_import_points_down_a_layer(script, graph):
    assert script.against_layers(script.edges(graph), script.layers()) == []


def test_no_circle_between_modules(script, graph):
    assert script.all_circles(graph) == {}


def test_the_checks_see_a_circle_and_an_upward_arrow(script):
    pairs = {("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")}
    assert script.circles(pairs) == [["a", "b", "c"]]
    rows = [["a"], ["b", "c"], ["d"]]
    assert script.against_layers({("a", "b"), ("d", "a"), ("b", "c")}, rows) == [
        "b (layer 2) imports c (layer 2)",
        "d (layer 3) imports a (layer 1)",
    ]
    assert script.against_layers({("a", "x")}, rows) == ["x is in no layer"]
    drawn = script.mermaid({("a", "d")}, rows)
    assert drawn.startswith("```mermaid\nflowchart TB\n") and "  m_a --> m_d\n" in drawn
