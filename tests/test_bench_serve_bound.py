"""The same-machine bound `bench serve` reports beside batching's share of the model ceiling."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infralab.tooling.bench.serve_ceiling import client_bound


def test_a_free_client_leaves_the_whole_ceiling():
    # 2 cores, 1000 texts/s at 2 ms of CPU each: the ceiling uses every core
    assert client_bound(1000.0, model_cpu_ms=2.0, client_cpu_ms=0.0, cores=2) == pytest.approx(1.0)


def test_a_client_as_costly_as_the_model_halves_it():
    assert client_bound(1000.0, 2.0, 2.0, 2) == pytest.approx(0.5)


def test_spare_cores_are_not_counted_against_the_server():
    # the model used one of four cores: a client on the others costs nothing
    assert client_bound(500.0, 2.0, 2.0, 4) == 1.0


@given(
    ceiling=st.floats(1, 1e5),
    model=st.floats(0.01, 50),
    client=st.floats(0, 50),
    cores=st.integers(1, 64),
)
def test_the_bound_is_a_share_and_falls_as_the_client_costs_more(ceiling, model, client, cores):
    b = client_bound(ceiling, model, client, cores)
    assert 0 < b <= 1
    assert client_bound(ceiling, model, client + 1, cores) <= b


@pytest.mark.parametrize("args", [(0, 1, 1, 2), (100, 0, 1, 2), (100, 1, -1, 2), (100, 1, 1, 0)])
def test_impossible_inputs_are_refused(args):
    with pytest.raises(ValueError, match="need a positive"):
        client_bound(*args)
