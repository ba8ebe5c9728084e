"""Figures the instructor docs quote agree with the code and the recorded files (issue #28).

Each test reads the figure from the source the tool itself uses (the pre-flight's own
functions, the site's list of notebooks, the recorded benchmark) and looks for it, in the
form the docs write it, next to the words that introduce it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from infralab.tooling import preflight, site


def _guide(repo_root) -> str:
    return (repo_root / "docs" / "instructor.md").read_text(encoding="utf-8")


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def test_preflight_memory_budget_in_the_guide_is_what_the_code_compares(repo_root):
    """No report CSV: the check reads the guide's table and leaves self-sizing lessons out."""
    peaks = preflight.peaks_from_guide(repo_root / "docs" / "instructor.md")
    peaks = {n: mb for n, mb in peaks.items() if not any(k in n for k in preflight.SELF_SIZING)}
    name = max(peaks, key=peaks.__getitem__)
    lesson = re.match(r"course/(\d\d)_", name)
    assert lesson, f"the heaviest notebook is not a lesson: {name}"
    guide = _flat(_guide(repo_root))
    said = f"compares with lesson {lesson[1]} at {peaks[name]:,.0f} MB"
    assert said in guide, f"the guide should say the memory check {said}"
    assert "compares with its 2.0 GB" not in guide
    # and the code agrees with itself: kit_peak on a copy without a report gives the same
    check = preflight.check_memory(available_mb=1e6, peak=(name, peaks[name], "guide"))
    assert f"{peaks[name]:,.0f} MB" in check.finding


def test_site_page_count_in_the_guide_is_what_the_build_makes(repo_root):
    pages = site.site_notebooks(repo_root)
    lessons = [p for p in pages if p.parent.name == "course"]
    labs = [p for p in pages if p.parent.name == "solutions"]
    assert len(lessons) + len(labs) == len(pages)
    said = f"`make site` builds {len(pages)} pages: the {len(lessons)} lessons and the {len(labs)} solution labs"
    assert said in _flat(_guide(repo_root))


def test_answer_key_07_quotes_the_recorded_embedding_throughput(repo_root):
    rate = _recorded(repo_root, "embedding.json")["sentences_per_s"]
    key = _flat((repo_root / "docs" / "answers" / "07_decision_framework.md").read_text())
    quoted = re.findall(r"embedding ([\d,]+) sentences/s from `embedding.json`", key)
    assert quoted, "answer key 07 no longer names its embedding input"
    assert quoted == [f"{rate:,.0f}"], (
        f"answer key 07 quotes {quoted}, embedding.json has {rate:,.0f}"
    )


def test_the_guide_says_what_to_do_about_the_oldest_price_list(repo_root):
    """The price list the pre-flight flags as oldest is named, with its date, in the guide."""
    import csv

    oldest: dict[str, str] = {}
    for path in sorted((repo_root / "datasets" / "pricing").glob("*.csv")):
        with path.open(newline="", encoding="utf-8") as fh:
            dates = [row["as_of"] for row in csv.DictReader(fh) if row.get("as_of")]
        if dates:
            oldest[path.name] = min(dates)
    name = min(oldest, key=oldest.__getitem__)
    guide = _flat(_guide(repo_root))
    assert f"`{name}` is flagged as dated {oldest[name]}" in guide
    assert "What to do:" in guide


# ------------------------------------------------------------------ the answer keys
def _recorded(repo_root, name: str) -> Mapping:
    """A recorded run as the kit's one reader returns it (each figure stored once)."""
    from infralab.core import results

    assert results.recorded_path(name.removesuffix(".json")).parent == (
        repo_root / "datasets" / "benchmarks"
    )
    return results.recorded(name.removesuffix(".json"))


def _key(repo_root, lesson: str) -> str:
    return _flat((repo_root / "docs" / "answers" / f"{lesson}.md").read_text(encoding="utf-8"))


def _sweep(recorded: Mapping, variant: str, provider: str, batch: int, seq: int) -> float:
    rows = [
        r
        for r in recorded["data"]["sweep"]
        if (r["variant"], r["provider"], r["batch"], r["seq"]) == (variant, provider, batch, seq)
    ]
    assert len(rows) == 1, f"no single sweep row for {variant} {provider} {batch}x{seq}"
    return rows[0]["sentences_per_s"]


def test_answer_keys_date_each_recorded_file_as_the_file_does(repo_root):
    """Where a key names a recorded benchmark with a date, the date is the file's own."""
    checked = 0
    for key in sorted((repo_root / "docs" / "answers").glob("0*.md")):
        text = _flat(key.read_text(encoding="utf-8"))
        for name, said in re.findall(
            r"`datasets/benchmarks/([\w.]+\.json)` \([^()]*?(\d{4}-\d\d-\d\d)\)", text
        ):
            recorded = _recorded(repo_root, name)
            measured = recorded.get("date")
            if measured:  # a record without a date (quality.json) says it in the key
                assert said == measured[:10], f"{key.name} dates {name} {said}, the file {measured}"
                checked += 1
    assert checked >= 3, "the keys no longer cite dated recorded files"


def test_answer_key_03_quotes_the_recorded_embedding_runs(repo_root):
    """Every figure key 03 takes from embedding.json and the H200 run, formatted as it writes it."""
    cpu = _recorded(repo_root, "embedding.json")
    gpu = _recorded(repo_root, "embedding_gpu_h200.json")
    key = _key(repo_root, "03_onnx_gpu_vs_cpu")

    def n(x: float) -> str:
        return f"{x:,.0f}"

    assert f"2 Intel Xeon vCPUs, {cpu['date'][:10]}" in key
    assert "Xeon" in cpu["machine"]["cpu_model"] and cpu["machine"]["cpus"] == 2
    int8 = lambda b, s: n(_sweep(cpu, "int8", "cpu", b, s))  # noqa: E731
    fp32 = lambda b, s: n(_sweep(cpu, "fp32", "cpu", b, s))  # noqa: E731
    expected = [
        f"int8: {int8(1, 16)} sentences/s at batch 1, {int8(32, 16)} at batch 32",
        f"int8: {int8(1, 128)} at batch 1, {int8(4, 128)} at batch 4, {int8(32, 128)} at batch 32",
        f"fp32: {fp32(4, 128)} at batch 4, {fp32(32, 128)} at batch 32",
    ]
    engines = cpu["data"]["sentences_per_s_by_engine"]
    mixed, i8, f32 = engines["cpu/int8-mixed"], engines["cpu/int8"], engines["cpu/fp32"]
    assert cpu["batch_size"] == 32
    expected += [
        f"measured {n(mixed)} sentences/s against {n(i8)} for int8 at batch 32",
        f"about {100 * (1 - mixed / i8):.0f} % slower (still {mixed / f32:.1f}x fp32's {n(f32)})",
    ]
    quality = cpu["quality"]["vs_cpu_fp32"]
    expected.append(
        f"worst cosine to fp32 improves from {quality['cpu/int8']['min_cosine']:.3f} "
        f"to {quality['cpu/int8-mixed']['min_cosine']:.3f}"
    )
    g = lambda v, b, s: _sweep(gpu, v, "cuda", b, s)  # noqa: E731
    expected += [
        f"1.2x (16 tokens: {n(g('fp16', 1, 16))} against {n(g('fp32', 1, 16))} sentences/s)",
        f"16 tokens, batch 128: {n(g('fp16', 128, 16))} against {n(g('fp32', 128, 16))}, "
        f"{g('fp16', 128, 16) / g('fp32', 128, 16):.1f}x",
        f"256 tokens, batch 128: {n(g('fp16', 128, 256))} against {n(g('fp32', 128, 256))}, "
        f"{g('fp16', 128, 256) / g('fp32', 128, 256):.1f}x",
    ]
    assert f"{g('fp16', 1, 16) / g('fp32', 1, 16):.1f}" == "1.2"
    missing = [e for e in expected if e not in key]
    assert not missing, f"answer key 03 does not quote the recorded figures: {missing}"


def test_answer_key_02_quotes_the_recorded_fp32_and_int8_throughput(repo_root):
    engines = _recorded(repo_root, "embedding.json")["data"]["sentences_per_s_by_engine"]
    said = (
        f"`embedding.json`: {engines['cpu/fp32']:,.0f} against {engines['cpu/int8']:,.0f} "
        "sentences/s at batch 32"
    )
    assert said in _key(repo_root, "02_serverless_api")


def test_answer_key_04_quotes_the_recorded_prefill_times(repo_root):
    """Key 04's exercise 1: time to first token per prompt length, from generation.json."""
    rows = {
        r["prompt_tokens"]: r
        for r in _recorded(repo_root, "generation.json")["ttft_vs_prompt"]["rows"]
    }
    ms = lambda n: f"{rows[n]['ttft_s'] * 1e3:.0f} ms"  # noqa: E731
    said = (
        f"16 tokens {ms(16)}, 64 tokens {ms(64)}, 256 tokens {ms(256)}, "
        f"1,024 tokens {rows[1024]['ttft_s']:.2f} s"
    )
    key = _key(repo_root, "04_llm_tokens")
    assert said in key, f"answer key 04 should quote {said!r}"
    top = max(r["prefill_tok_s"] for r in rows.values())
    assert (
        f"falls from about {round(top, -2):.0f} to {rows[1024]['prefill_tok_s']:.0f} tokens/s"
        in key
    )
