"""The embedding bench: its arithmetic, its tables and its refusal to invent GPU numbers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from infralab.core import results, runtime
from infralab.core.results import recorded_runs
from infralab.engines.models import throughput
from infralab.tooling.bench import embed, embed_measures


def test_sentences_are_deterministic_and_short() -> None:
    a, b = throughput.sample_sentences(50, seed=3), throughput.sample_sentences(50, seed=3)
    assert a == b and len(a) == 50 and all(isinstance(s, str) and s for s in a)
    assert throughput.sample_sentences(50, seed=4) != a
    with pytest.raises(ValueError, match="positive"):
        throughput.sample_sentences(0)


def test_flops_per_token_by_hand() -> None:
    h, i, layers = 384, 1536, 6
    assert throughput.encoder_flops_per_token(128) == 2 * layers * (
        4 * h * h + 2 * h * i + 2 * 128 * h
    )
    assert throughput.encoder_flops_per_token(256) > throughput.encoder_flops_per_token(16)


def test_fixed_batch_shape_and_errors() -> None:
    feeds = throughput.fixed_batch(3, 10)
    assert feeds["input_ids"].shape == (3, 10) and feeds["attention_mask"].all()
    assert (feeds["input_ids"][:, 0] == 101).all()
    with pytest.raises(ValueError, match="seq"):
        throughput.fixed_batch(2, 1000)


def test_compare_returns_one_row_per_engine() -> None:
    engines = {"a": lambda t: np.zeros((len(t), 2)), "b": lambda t: sum(range(1000))}
    df = throughput.compare(engines, ["x", "y", "z"], rounds=2, progress=False)
    assert list(df.engine) == ["a", "b"]
    assert (df.sentences_per_s > 0).all() and (df.passes == 2).all()


def test_matmul_peak_is_the_best_run_with_the_median_beside_it(monkeypatch) -> None:
    from infralab.core.timing import Timing

    runs = [2.0, 1.0, 4.0]  # seconds: the best is 1.0, the median 2.0
    monkeypatch.setattr(throughput, "measure", lambda fn, **kw: Timing(label="m", seconds=runs))
    peak = throughput.matmul_peak(100, repeats=3)
    flop = 2.0 * 100**3
    assert peak["best_gflops"] == pytest.approx(flop / 1.0 / 1e9)
    assert peak["median_gflops"] == pytest.approx(flop / 2.0 / 1e9)
    assert throughput.matmul_peak_gflops(100, 3) == peak["best_gflops"]
    with pytest.raises(ValueError, match="repeats"):
        throughput.matmul_peak(100, repeats=0)


def test_passages_come_from_the_corpus_in_the_token_range() -> None:
    from infralab.engines.models.encoder import _load_tokenizer
    from infralab.engines.rag.corpus import load_documents

    passages = embed_measures.sample_passages(40, seed=1)
    assert passages == embed_measures.sample_passages(40, seed=1) and len(set(passages)) == 40
    tok = _load_tokenizer(256)
    counts = [len(tok.encode(p).ids) for p in passages]
    assert (
        min(counts) >= embed_measures.PASSAGE_TOKENS[0]
        and max(counts) <= embed_measures.PASSAGE_TOKENS[1]
    )
    corpus = " ".join(d.text for d in load_documents())
    assert all(p in corpus for p in passages)  # verbatim windows of the corpus
    with pytest.raises(ValueError, match="fewer than"):
        embed_measures.sample_passages(100_000)
    with pytest.raises(ValueError, match="lo <= hi"):
        embed_measures.sample_passages(4, tokens=(150, 120))


def test_index_build_covers_every_chunk_once_per_round() -> None:
    seen: list[int] = []
    engines = {"a": lambda t: seen.append(len(t)), "b": lambda t: seen.append(len(t))}
    chunks = embed_measures.corpus_chunks()
    df = embed_measures.index_build(engines, chunks, rounds=1, progress=False)
    assert seen == [len(chunks), len(chunks)]  # no untimed pass: one timed pass each
    assert list(df.columns) == ["engine", "chunks", "seconds", "chunks_per_s", "passes"]
    assert (df.chunks == len(chunks)).all()
    assert df.seconds.to_numpy() == pytest.approx(len(chunks) / df.chunks_per_s.to_numpy())


def test_sweep_and_roofline_columns() -> None:
    df = throughput.sweep([("fp32", "cpu")], (2,), (16,), peak_gflops=100.0, max_time_s=0.05,
                     progress=False)  # fmt: skip
    assert len(df) == 1
    row = df.iloc[0]
    assert row.gflops > 0 and row.pct_of_peak == pytest.approx(row.gflops)
    assert row.tokens_per_s == pytest.approx(row.sentences_per_s * 16)


def test_crossover_on_cpu_and_crossover_point() -> None:
    df = throughput.crossover((16, 32), batch=4, layers=2, max_time_s=0.05, progress=False)
    assert set(df.provider) == {"cpu"} and len(df) == 2 and (df.ms > 0).all()
    assert throughput.crossover_point(df) is None  # no GPU column: no crossover claimed
    fake = pd.DataFrame(
        [
            {"hidden": h, "provider": p, "mode": "numpy in/out", "ms": ms}
            for h, p, ms in [(64, "cpu", 0.01), (64, "cuda", 0.1), (512, "cpu", 1.0),
                             (512, "cuda", 0.2), (1024, "cpu", 4.0), (1024, "cuda", 0.3)]
        ]
    )  # fmt: skip
    assert throughput.crossover_point(fake) == 512


def test_quality_is_cosine_to_base() -> None:
    x = np.eye(3, 4, dtype=np.float32)
    q = embed_measures.quality({"fp32": x, "same": x.copy(), "other": np.roll(x, 1, axis=1)})
    assert q["same"]["min_cosine"] == pytest.approx(1.0)
    assert q["other"]["min_cosine"] == pytest.approx(0.0)


def _gpu_run(folder, name: str, date: str) -> None:
    """A recorded GPU run written by the kit's one writer (as ``bench embed --out`` does)."""
    record = results.EmbeddingResult(
        date=date,
        machine={"cpu": "Xeon", "gpus": [{"name": "NVIDIA H100", "driver": "580"}]},
        command="python -m infralab bench embed --provider cuda",
        sentences_per_s=1.0,
        engine="cuda/fp16",
        provider="cuda",
    )
    detail = {"versions": {"onnxruntime-gpu": "1.31.1"}, "data": {"crossover": []}}
    results.write_recorded(name, record, detail, folder / f"{name}.json")


def test_recorded_gpu_runs_and_provenance(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(recorded_runs, "RECORDED_DIR", tmp_path)
    assert results.recorded_gpu_runs() == []
    _gpu_run(tmp_path, "embedding_gpu_h100", "2026-11-28T01:00:00+00:00")
    runs = results.recorded_gpu_runs()
    assert len(runs) == 1
    line = results.provenance(runs[0])
    assert "NVIDIA H100" in line and "1.31.1" in line and "2026-11-28" in line
    assert "(embedding_gpu_h100.json)" in line
    (tmp_path / "embedding_gpu_broken.json").write_text("{not json")
    with pytest.raises(results.ResultError, match="embedding_gpu_broken.json is not valid JSON"):
        results.recorded_gpu_runs()  # a damaged kit file is named, never skipped in silence


def test_shipped_cpu_record_has_provenance() -> None:
    rec = results.recorded("embedding")
    assert rec.record is not None and rec.record.kind == "embedding" and rec["date"]
    assert rec["machine"]["cpu"] and rec["versions"]["onnx"]
    assert rec.record.sentences_per_s > 0  # the one number the cost lesson prices
    by_engine = rec["data"]["sentences_per_s_by_engine"]
    assert by_engine["cpu/fp32"] > 0 and by_engine[rec.record.engine] == rec.record.sentences_per_s


def test_throughput_summary_picks_best_kit_engine() -> None:
    df = pd.DataFrame(
        {
            "engine": ["cpu/fp32", "cpu/int8", throughput.ST_NAME],
            "sentences_per_s": [300.0, 500.0, 900.0],
        }
    )
    s = throughput.throughput_summary(df, 32)
    assert s["sentences_per_s"] == 500.0 and s["best_engine"] == "cpu/int8"
    assert s["sentences_per_s_by_engine"][throughput.ST_NAME] == 900.0
    assert throughput.throughput_summary(df, 32, "cuda")["best_engine"] == "cpu/int8"


@pytest.mark.skipif(runtime.cuda_usable(), reason="CUDA works here")
def test_cuda_bench_on_cpu_machine_refuses_with_reason(capsys) -> None:
    assert embed.main(["--provider", "cuda"]) == 2
    assert "CUDA" in capsys.readouterr().err


def test_cli_rejects_bad_batch() -> None:
    with pytest.raises(SystemExit):
        embed.main(["--batch", "0"])


def test_predict_crossover_model() -> None:
    sizes = [64, 128, 256, 512, 1024]
    # no overhead on either side: the faster GPU wins from the smallest size
    kw = {"batch": 32, "layers": 4, "cpu_gflops": 100.0, "gpu_gflops": 10000.0}
    assert throughput.predict_crossover(sizes, gpu_overhead_ms=0.0, **kw) == 64
    # 0.1 ms toll: the GPU wins once the CPU needs more than ~0.1 ms of compute
    assert throughput.predict_crossover(sizes, gpu_overhead_ms=0.1, **kw) == 256
    assert throughput.predict_crossover(sizes, gpu_overhead_ms=1e3, **kw) is None
    with pytest.raises(ValueError):
        throughput.predict_crossover(sizes, gpu_overhead_ms=0.1, batch=1, layers=1, cpu_gflops=0,
                                gpu_gflops=1)  # fmt: skip


def test_latest_gpu_run_is_the_newest(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(recorded_runs, "RECORDED_DIR", tmp_path)
    assert results.latest_gpu_run() is None
    for name, when in [("a", "2026-01-01"), ("b", "2026-06-01")]:
        _gpu_run(tmp_path, f"embedding_gpu_{name}", when)
    assert results.latest_gpu_run()["date"] == "2026-06-01"


def _fake_sweep() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"variant": "fp32", "provider": "cpu", "batch": b, "seq": 16, "p50_ms": 1.0 + b,
             "sentences_per_s": s, "gflops": s / 10}
            for b, s in [(1, 100.0), (8, 400.0), (32, 300.0)]
        ]
    )  # fmt: skip


def test_charts_title_every_axis() -> None:
    from infralab.presentation.charts import inference as charts

    sweep = _fake_sweep()
    cross = pd.DataFrame(
        [{"hidden": 64, "provider": "cpu", "mode": "numpy in/out", "ms": 0.1, "gflops": 1.0}]
    )
    quality = pd.DataFrame([{"engine": "cpu/int8", "sentences_per_s": 5.0, "min_cosine": 0.99}])
    for chart in (charts.throughput_vs_batch(sweep), charts.latency_vs_seq(sweep),
                  charts.roofline(sweep, 50.0), charts.crossover_chart(cross),
                  charts.speed_vs_quality(quality)):  # fmt: skip
        spec = json.dumps(chart.to_dict())
        assert '"title"' in spec and "(" in spec  # titled axes carry units in parentheses
    with pytest.raises(ValueError, match="columns"):
        charts.throughput_vs_batch(sweep.drop(columns=["seq"]))
    with pytest.raises(ValueError, match="non-empty"):
        charts.crossover_chart(pd.DataFrame())


def test_lab03_checks_pass_and_fail_with_hints() -> None:
    from infralab.tooling.checks import CheckFailed, lab03

    sweep = _fake_sweep()
    assert "Batch 8" in lab03.check_best_batch(sweep, 8)
    with pytest.raises(CheckFailed, match="batch 8 is fastest"):
        lab03.check_best_batch(sweep, 32)
    with pytest.raises(CheckFailed, match="fewer than 3"):
        lab03.check_best_batch(sweep.head(2), 8)

    # check_int8_quality embeds real sentences itself: tests/test_checks_labs.py covers it.

    # A correct crossover function is tested in tests/test_checks_labs.py (the kit's own is
    # refused by design); here: a constant and a placeholder fail with their hints.
    with pytest.raises(CheckFailed, match="a constant"):
        lab03.check_predict_crossover(lambda *args: 64)
    with pytest.raises(CheckFailed, match="placeholder"):
        lab03.check_predict_crossover(lambda *args: (_ for _ in ()).throw(NotImplementedError()))

    assert lab03.check_crossover_prediction(512, 128)
    with pytest.raises(CheckFailed, match="GPU won from"):
        lab03.check_crossover_prediction(2048, 128)
    with pytest.raises(CheckFailed, match="no measured crossover"):
        lab03.check_crossover_prediction(512, None)


@pytest.mark.skipif(runtime.cuda_usable(), reason="CUDA works here: the CPU embedder is not best")
def test_check_provider_on_a_cpu_machine() -> None:
    from infralab.engines.models.encoder import Embedder
    from infralab.tooling.checks import CheckFailed, lab03

    assert "runs on cpu" in lab03.check_provider(Embedder("fp32", "cpu", threads=1))
    with pytest.raises(CheckFailed, match="should be a Embedder"):
        lab03.check_provider("cpu")
