"""Labs 02-04: the mechanism each lab makes students build, its check, and proof that the rest
of the lab uses the student's own mechanism.

- Lab 02: an asyncio micro-batcher, driven on a simulated clock; the lab's endpoint serves
  through it.
- Lab 03: int8 quantization of one matmul; the lab's measurement on the model's weight uses it.
- Lab 04: the KV-cache memory model; the lab's comparison with the runtime's memory uses it.

Each test takes the student's code from the notebooks themselves (solution and student copy),
so a change to a lab cannot leave its checks behind.
"""

from __future__ import annotations

import ast
import asyncio
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from infralab.engines.serving import simclock
from infralab.tooling import checks, notebooks
from infralab.tooling.checks import PUBLIC_NOTE, CheckFailed, lab02, lab03, lab04
from infralab.tooling.checks.references import lab02 as R02
from infralab.tooling.checks.references import lab03 as R03

ROOT = Path(__file__).resolve().parents[1]


def _cells(lab: str, student: bool = False) -> list[str]:
    folder = ROOT / "labs" if student else ROOT / "labs" / "solutions"
    path = next(folder.glob(f"{lab}_*.ipynb"))
    return [
        c["source"] if isinstance(c["source"], str) else "".join(c["source"])
        for c in notebooks.read(path)["cells"]
        if c["cell_type"] == "code"
    ]


def _imports(source: str) -> str:
    tree = ast.parse(source)
    keep = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    return ast.unparse(ast.Module(keep, []))


def _cell(lab: str, starts: str, student: bool = False) -> str:
    return next(s for s in _cells(lab, student) if s.lstrip().startswith(starts))


def _namespace(lab: str, *starts: str, student: bool = False) -> dict[str, Any]:
    """The lab's imports, then the cells that start with ``starts``, run in order."""
    ns: dict[str, Any] = {}
    for source in _cells(lab, student):
        try:
            exec(_imports(source), ns)  # noqa: S102
        except SyntaxError:
            continue
    for start in starts:
        exec(_cell(lab, start, student), ns)  # noqa: S102
    return ns


def _batcher_class(student: bool = False) -> type:
    return _namespace("02", "class MicroBatcher", student=student)["MicroBatcher"]


# ---------------------------------------------------------------- the simulated clock
def test_the_simulated_clock_jumps_to_timers_and_runs_executor_work_at_once():
    loop = simclock.VirtualTimeLoop()
    try:

        async def main() -> tuple[float, float, int]:
            t0 = loop.time()
            await asyncio.sleep(3600)  # an hour, simulated
            t1 = loop.time()
            out = await asyncio.to_thread(lambda: 41 + 1)
            try:
                await asyncio.wait_for(asyncio.Event().wait(), timeout=0.25)
            except asyncio.TimeoutError:
                pass
            return t1 - t0, loop.time() - t1, out

        started = time.perf_counter()
        slept, waited, out = loop.run_until_complete(main())
    finally:
        loop.close()
    assert slept == 3600 and math.isclose(waited, 0.25) and out == 42
    assert time.perf_counter() - started < 5  # no real hour went by


def test_drive_batcher_traces_calls_and_answers():
    cls = _batcher_class()
    plan = {"max_batch_size": 3, "max_wait_s": 0.01, "arrivals": [0.0, 0.0, 0.0, 0.0, 0.002],
            "bad": [1]}  # fmt: skip
    trace = simclock.drive_batcher(cls, plan)
    assert trace["problem"] is None
    answers = {item: (kind, value) for item, kind, value, _ in trace["answers"]}
    assert answers[1][0] == "error" and "item 1" in answers[1][1]
    assert all(answers[i] == ("ok", f"answer to request {i}") for i in (0, 2, 3, 4))
    first_call = trace["calls"][0]
    assert first_call[0] == 0.0 and sorted(first_call[1]) == [0, 1, 2]  # full at once
    # the two late items go together when the older of them has waited 10 ms
    later = [c for c in trace["calls"] if 3 in c[1] and 4 in c[1]]
    assert later and math.isclose(later[0][0], 0.01)


def test_drive_batcher_reports_a_batcher_that_never_answers():
    class Silent:
        def __init__(self, fn, max_batch_size, max_wait_s):
            pass

        async def submit(self, item):
            await asyncio.Event().wait()

    trace = simclock.drive_batcher(Silent, {"max_batch_size": 2, "max_wait_s": 0.01,
                                            "arrivals": [0.0, 0.5], "bad": []})  # fmt: skip
    assert "had no answer" in trace["problem"]


def test_batch_plan_reference():
    assert R02.batch_plan([0.0] * 5, 2, 0.01) == [(0.0, 2), (0.0, 2), (0.01, 1)]
    assert R02.batch_plan([0.0, 0.004, 0.02], 8, 0.01) == [(0.01, 2), (0.03, 1)]
    assert R02.batch_plan([], 4, 0.01) == []


# ---------------------------------------------------------------- lab 02: the batcher check
class _Eager:
    """Every item alone, at once: no batching."""

    def __init__(self, fn, max_batch_size, max_wait_s):
        self.fn = fn

    async def submit(self, item):
        return (await asyncio.to_thread(self.fn, [item]))[0]


def _variant(kind: str) -> type:
    base = _batcher_class()

    class Variant(base):  # type: ignore[misc, valid-type]
        def __init__(self, fn, max_batch_size, max_wait_s):
            if kind == "twice_the_wait":
                max_wait_s *= 2
            if kind == "no_limit":
                max_batch_size = 10**6
            super().__init__(fn, max_batch_size, max_wait_s)

        async def _run_batch(self, batch):
            if kind == "swapped":
                answers = await asyncio.to_thread(self.fn, [i for i, _ in batch])
                for (_, future), answer in zip(batch, reversed(answers), strict=True):
                    future.set_result(answer)
            elif kind == "one_error_sinks_all":
                try:
                    answers = await asyncio.to_thread(self.fn, [i for i, _ in batch])
                except Exception as exc:
                    for _, future in batch:
                        future.set_exception(exc)
                    return
                for (_, future), answer in zip(batch, answers, strict=True):
                    future.set_result(answer)
            else:
                await super()._run_batch(batch)

    return Variant


class _WallClock:
    """Right on a real clock, wrong on the loop's: times its wait with time.monotonic()."""

    def __init__(self, fn, max_batch_size, max_wait_s):
        self.fn, self.size, self.wait = fn, max_batch_size, max_wait_s
        self.queue = None

    async def submit(self, item):
        if self.queue is None:
            self.queue = asyncio.Queue()
            self.worker = asyncio.create_task(self._work())
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((item, future))
        return await future

    async def _work(self):
        while True:
            batch = [await self.queue.get()]
            deadline = time.monotonic() + self.wait
            while len(batch) < self.size and time.monotonic() < deadline:
                try:
                    batch.append(await asyncio.wait_for(self.queue.get(), self.wait))
                except asyncio.TimeoutError:
                    break
            answers = self.fn([i for i, _ in batch])
            for (_, future), answer in zip(batch, answers, strict=True):
                future.set_result(answer)


def test_the_solution_batcher_passes():
    assert "✓" in repr(lab02.check_micro_batcher(_batcher_class()))


def test_the_untouched_student_batcher_fails_with_a_hint():
    with pytest.raises(CheckFailed) as err:
        lab02.check_micro_batcher(_batcher_class(student=True))
    assert "placeholder" in err.value.problem and err.value.hint


@pytest.mark.parametrize(
    ("batcher", "says"),
    [
        (_Eager, "neither full nor at max_wait"),
        (_WallClock, "waited"),
        ("twice_the_wait", "more than max_wait"),
        ("no_limit", "carried"),
        ("swapped", "not its own answer"),
        ("one_error_sinks_all", "only another request's item was bad"),
    ],
    ids=["no-batching", "wall-clock", "twice-the-wait", "no-size-limit", "swapped", "no-isolation"],
)
def test_broken_batchers_fail_with_what_went_wrong(batcher, says):
    cls = _variant(batcher) if isinstance(batcher, str) else batcher
    with pytest.raises(CheckFailed) as err:
        lab02.check_micro_batcher(cls)
    assert says in err.value.problem and err.value.hint


def test_the_kits_batcher_is_not_the_lab_s():
    from infralab.engines.serving.batching import MicroBatcher

    with pytest.raises(CheckFailed):
        lab02.check_micro_batcher(MicroBatcher)
    with pytest.raises(CheckFailed):
        lab02.check_micro_batcher(0.5)


def test_the_public_batcher_check(monkeypatch):
    monkeypatch.setattr(checks, "reference_module", lambda name: None)
    assert lab02.check_micro_batcher(_batcher_class()).endswith(PUBLIC_NOTE)
    with pytest.raises(CheckFailed):
        lab02.check_micro_batcher(_Eager)


# ---------------------------------------------------------------- lab 02: the lab uses it
@pytest.mark.slow  # about 9 s on the shared 2-core machine
def test_the_lab_serves_through_the_students_batcher():
    """The served endpoint submits every text to the student's batcher; a batcher that hands
    out the wrong answers changes what the endpoint returns; the measured run is built from
    the student's class with both settings."""
    from fastapi.testclient import TestClient

    ns = _namespace(
        "02", "import asyncio", "def validate_request", "def load_summary", "class MicroBatcher"
    )  # the first cell holds the imports and PAYLOADS
    ns["pd"] = pd
    base = ns["MicroBatcher"]
    submitted: list[Any] = []
    built: list[tuple[int, float]] = []

    class Counting(base):  # type: ignore[misc, valid-type]
        def __init__(self, fn, max_batch_size, max_wait_s):
            built.append((max_batch_size, max_wait_s))
            super().__init__(fn, max_batch_size, max_wait_s)

        async def submit(self, item):
            submitted.append(item)
            return await super().submit(item)

    ns["MicroBatcher"] = Counting
    exec(_cell("02", 'model = Embedder("int8")'), ns)  # noqa: S102
    exec(_cell("02", "runs = {}"), ns)  # noqa: S102 - two short load tests, served for real
    assert sorted(built) == [(1, 0.0), (32, 0.005)]
    texts = sum(r["metrics"]["texts"] for r in ns["runs"].values())
    assert len(submitted) == texts > 0
    batched = ns["runs"]["micro-batched"]["metrics"]
    assert batched["model_calls"] < batched["texts"]  # the batcher really batched

    class Swapped(base):  # type: ignore[misc, valid-type]
        async def _run_batch(self, batch):
            answers = await asyncio.to_thread(self.fn, [i for i, _ in batch])
            for (_, future), answer in zip(batch, reversed(answers), strict=True):
                future.set_result(answer)

    body = {"input": ["one text", "another, longer text"]}
    answers = {}
    for name, cls in (("right", base), ("swapped", Swapped)):
        # a long wait so both texts share one call: the swap then shows in the response
        with TestClient(ns["batched_app"](cls(ns["embed_texts"], 32, 0.05))) as client:
            answers[name] = client.post("/embed", json=body).json()["embeddings"]
    assert answers["right"][0] == answers["swapped"][1] != answers["right"][1]


# ---------------------------------------------------------------- lab 03
def test_the_quantize_solution_passes_and_the_student_copy_fails():
    ns = _namespace("03", "def quantize_int8")
    assert "✓" in repr(lab03.check_quantize(ns["quantize_int8"], ns["dequantize"]))
    copy = _namespace("03", "def quantize_int8", student=True)
    with pytest.raises(CheckFailed) as err:
        lab03.check_quantize(copy["quantize_int8"], copy["dequantize"])
    assert "placeholder" in err.value.problem and err.value.hint


@pytest.mark.parametrize(
    "quantize",
    [
        lambda x: (np.zeros(np.shape(x), np.int8), 1.0, 0),  # a constant
        lambda x: R03.quantize_int8(x),  # the reference, wrapped
        lambda x: (lambda q, s, z: (q, s * 1.5, z))(*R03.quantize_int8(x)),  # a loose scale
        lambda x: (  # a symmetric scale: 0 is exact, but half the codes go unused
            np.clip(
                np.round(np.asarray(x, float) / (np.abs(x).max() / 127 or 1.0)), -128, 127
            ).astype(np.int8),
            float(np.abs(x).max() / 127 or 1.0),
            0,
        ),
    ],
    ids=["constant", "reference", "loose-scale", "symmetric"],
)
def test_wrong_quantizers_fail(quantize):
    with pytest.raises(CheckFailed) as err:
        lab03.check_quantize(quantize, R03.dequantize)
    assert err.value.hint


def test_int8_on_the_models_weight_is_the_students(monkeypatch):
    """The lab's measurement on the model's weight runs the student's int8_matmul: the float
    product in its place makes the error vanish."""
    ns = _namespace("03", "def quantize_int8", "def int8_matmul")
    ns["embedder"] = ns["Embedder"]("fp32", "cpu")
    cell = _cell("03", 'weights = matmul_weights("l0_w1")')
    exec(cell, ns)  # noqa: S102
    assert 1e-3 < ns["rel_error"] < 0.1
    ns["int8_matmul"] = lambda a, b: a.astype(np.float64) @ b.astype(np.float64)
    exec(cell, ns)  # noqa: S102
    assert ns["rel_error"] < 1e-6


def test_the_kits_int8_weight_is_per_column_and_within_half_a_step():
    from infralab.engines.models.encoder import matmul_weights

    w = matmul_weights("l0_w1")
    assert w["fp32"].shape == w["int8"].shape == (384, 1536)
    assert w["scale"].shape == (1536,) and not w["zero_point"].any()
    back = (w["int8"].astype(np.float64) - w["zero_point"]) * w["scale"]
    assert (np.abs(back - w["fp32"]) <= w["scale"] / 2 + 1e-7).all()
    with pytest.raises(ValueError, match="no MatMul weight"):
        matmul_weights("l9_w1")


# ---------------------------------------------------------------- lab 04
def test_decoder_kv_cache_bytes_is_the_formula_and_refuses_bad_configs():
    from infralab.engines.models import decoder

    smol = {"layers": 30, "heads": 9, "kv_heads": 3, "hidden": 576}
    assert decoder.kv_cache_bytes(smol, 1) == 46080  # test_decoder: the GGUF config agrees
    assert decoder.kv_cache_bytes(smol, 100, 4, 2) == 46080 // 2 * 100 * 4
    for bad in ({**smol, "kv_heads": 2}, {**smol, "hidden": 500}, {**smol, "layers": 0},
                {k: v for k, v in smol.items() if k != "heads"}, [1, 2]):  # fmt: skip
        with pytest.raises(ValueError):
            decoder.kv_cache_bytes(bad, 1)
    with pytest.raises(ValueError):
        decoder.kv_cache_bytes(smol, -1)


@pytest.fixture(scope="module")
def generator():
    from infralab.engines.models.text_generation import Generator

    return Generator("q4")


@pytest.mark.slow  # about 6 s on the shared 2-core machine
def test_the_kv_memory_measurement_agrees_with_the_formula(generator):
    from dataclasses import asdict

    from infralab.engines.models import decoder
    from infralab.engines.models.decoding import kv_memory_growth

    m = kv_memory_growth(generator, batch=2, tokens=64)
    predicted = decoder.kv_cache_bytes(asdict(generator.config), 64, 2, m["bytes_per_value"])
    # pages of 4 KiB: at most one more page per (sequence, layer, key or value, KV head)
    pages = 2 * generator.config.layers * 2 * generator.config.kv_heads
    assert predicted - pages * m["page_bytes"] <= m["growth_bytes"]
    assert m["growth_bytes"] <= predicted + pages * m["page_bytes"]
    assert m["resident_before_bytes"] < m["allocated_bytes"] / 10  # the cache began empty


@pytest.mark.slow  # about 8 s on the shared 2-core machine
def test_the_kv_memory_comparison_is_the_students(generator):
    """The lab's comparison runs the student's kv_cache_bytes: a wrong model fails the check,
    and the check refuses a config that is not the served model's."""
    ns = _namespace("04", "def kv_cache_bytes")
    ns["gen"] = generator
    cell = _cell("04", 'gen = Generator("q4")').replace('gen = Generator("q4")', "")
    exec(cell, ns)  # noqa: S102
    assert "✓" in repr(lab04.check_kv_memory(ns["kv_cache_bytes"], ns["config"], ns["measured"]))
    right = ns["predicted"]
    student = ns["kv_cache_bytes"]
    ns["kv_cache_bytes"] = lambda c, t, b, s: student({**c, "kv_heads": c["heads"]}, t, b, s)
    exec(cell, ns)  # noqa: S102
    assert ns["predicted"] == 3 * right  # 9 heads instead of 3 KV heads
    with pytest.raises(CheckFailed):
        lab04.check_kv_memory(ns["kv_cache_bytes"], ns["config"], ns["measured"])
    with pytest.raises(CheckFailed, match="not the served model"):
        lab04.check_kv_memory(student, {**ns["config"], "kv_heads": 9}, ns["measured"])
    with pytest.raises(CheckFailed):
        lab04.check_kv_memory(student, ns["config"], {**ns["measured"], "tokens": 1000})


def test_serve_in_thread_serves_and_stops():
    import httpx
    from fastapi import FastAPI

    from infralab.engines.serving.in_thread_server import serve_in_thread

    app = FastAPI()

    @app.get("/ping")
    async def ping():
        return {"pong": True}

    with serve_in_thread(app) as server:
        assert httpx.get(server.url + "/ping").json() == {"pong": True}
    assert not server.running


def test_the_kits_kv_formula_and_the_hidden_reference_agree_on_random_configs():
    from hypothesis import given, settings

    from infralab.engines.models import decoder
    from infralab.tooling.checks.references import lab04 as R04

    @settings(max_examples=200, deadline=None, derandomize=True, database=None)
    @given(lab04._kv_configs())
    def agree(args):
        assert decoder.kv_cache_bytes(*args) == R04.kv_cache_bytes(*args)

    agree()
    for bad in lab04.KV_BAD:  # both refuse what cannot be a model
        with pytest.raises(ValueError):
            decoder.kv_cache_bytes(*bad)
        with pytest.raises(ValueError):
            R04.kv_cache_bytes(*bad)
