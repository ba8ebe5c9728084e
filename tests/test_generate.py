"""Generator: reference greedy tokens, batching equals one-by-one, streaming, sampling, errors."""

from __future__ import annotations

import json

import pytest

from infralab.core.paths import SMOLLM2_REFERENCE
from infralab.engines.models import decoder


@pytest.fixture(scope="module")
def gen():
    try:
        decoder.gguf_path()
    except decoder.DecoderError as exc:
        pytest.skip(str(exc))
    from infralab.engines.models.text_generation import Generator

    return Generator("q4", threads=2)


@pytest.fixture(scope="module")
def reference() -> dict:
    return json.loads(SMOLLM2_REFERENCE.read_text())


def _expected(item: dict, n: int) -> tuple[list[int], bool]:
    """The reference's first ``n`` new ids without the end token, and whether it ended."""
    ids = item["greedy_new_ids"][:n]
    ended = bool(ids) and ids[-1] == 2
    return (ids[:-1] if ended else ids), ended


@pytest.mark.slow
def test_fp32_generator_reproduces_reference_greedy(reference: dict) -> None:
    from infralab.engines.models.text_generation import Generator

    g = Generator("fp32", threads=2)
    for item in reference["items"]:
        r = g.generate(item["user_message"], max_tokens=16)
        ids, ended = _expected(item, 16)
        assert r.token_ids == ids
        assert r.prompt_tokens == len(item["prompt_ids"])
        if ended:
            assert r.finish_reason == "stop"


def test_measurements_are_filled(gen) -> None:
    r = gen.generate("What is a GPU?", max_tokens=8)
    assert r.completion_tokens == len(r.token_ids) <= 8
    assert r.ttft_s > 0 and r.prefill_tok_s > 0 and r.total_s >= r.ttft_s
    assert r.kv_bytes_per_token == 2 * 30 * 3 * 64 * 4
    # the cache holds every token fed to the model: the prompt and all but the last new token
    cached = r.prompt_tokens + r.completion_tokens - 1
    assert r.kv_cache_bytes == cached * r.kv_bytes_per_token
    assert r.provider == "cpu" and r.variant == "q4"


@pytest.mark.slow
def test_batch_of_different_lengths_equals_one_by_one(gen) -> None:
    prompts = ["Hi", "Explain in two sentences why GPUs are fast at matrix multiplication.", "2+2?"]
    batch = gen.generate_batch(prompts, max_tokens=12)
    assert batch.batch_size == 3 and len(batch.results) == 3
    for p, r in zip(prompts, batch.results, strict=True):
        assert r.token_ids == gen.generate(p, max_tokens=12).token_ids
    assert batch.decode_tok_s > 0


def test_stream_pieces_join_to_the_text(gen) -> None:
    pieces = list(gen.stream("Name a colour.", max_tokens=10))
    assert len(pieces) >= 2
    assert "".join(pieces) == gen.last_result.text
    assert gen.last_result.text == gen.generate("Name a colour.", max_tokens=10).text


def test_seeded_sampling_is_reproducible(gen) -> None:
    kw = dict(max_tokens=12, temperature=0.9, top_p=0.9)
    a = gen.generate("Write a word.", seed=7, **kw).token_ids
    assert a == gen.generate("Write a word.", seed=7, **kw).token_ids
    others = {tuple(gen.generate("Write a word.", seed=s, **kw).token_ids) for s in range(1, 5)}
    assert len(others | {tuple(a)}) > 1  # different seeds explore different continuations


@pytest.mark.slow
def test_stop_string_cuts_the_text(gen) -> None:
    full = gen.generate("Count from 1 to 10, one number per line.", max_tokens=40).text
    assert "3" in full
    r = gen.generate("Count from 1 to 10, one number per line.", max_tokens=40, stop=["3"])
    assert "3" not in r.text and r.finish_reason == "stop"
    assert full.startswith(r.text)


def test_messages_and_token_ids_are_accepted(gen) -> None:
    msgs = [{"role": "user", "content": "Hello"}]
    assert gen.encode(msgs) == gen.encode("Hello")
    ids = gen.encode("Hello")
    assert (
        gen.generate(ids, max_tokens=4).token_ids == gen.generate("Hello", max_tokens=4).token_ids
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": "5"}, "max_tokens"),
        ({"temperature": -1}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"stop": [""]}, "stop"),
        ({"max_tokens": 5000}, "context"),
    ],
)
def test_bad_arguments_get_clear_errors(gen, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        gen.generate("Hi", **kwargs)


def test_bad_prompts_and_settings(gen) -> None:
    from infralab.engines.models.text_generation import Generator

    with pytest.raises(ValueError, match="empty"):
        gen.generate("")
    with pytest.raises(ValueError, match="prompt must be"):
        gen.generate(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="token ids"):
        gen.generate([1, 999999])
    with pytest.raises(ValueError, match="variant"):
        Generator("int3")
    with pytest.raises(ValueError, match="provider"):
        Generator("q4", provider="tpu")
