"""The OpenAI-compatible chat API: answers, streams, batches, and rejects bad input with 4xx."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from infralab.models import decoder


@pytest.fixture(scope="module")
def generator():
    try:
        decoder.gguf_path()
    except decoder.DecoderError as exc:
        pytest.skip(str(exc))
    from infralab.models.generate import Generator

    return Generator("q4", "cpu", threads=2)


@pytest.fixture(scope="module")
def client(generator):
    from fastapi.testclient import TestClient

    from infralab.serving.chat import create_chat_app

    app = create_chat_app(generator=generator)
    with TestClient(app) as c:
        yield c


def _ask(content: str = "Say hello.", **kw) -> dict:
    return {"messages": [{"role": "user", "content": content}], "max_tokens": 8,
            "temperature": 0, **kw}  # fmt: skip


def test_healthz_and_models(client) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    models = client.get("/v1/models").json()
    assert models["object"] == "list" and models["data"][0]["id"].startswith("smollm2")


def test_completion_matches_the_generator(client) -> None:
    r = client.post("/v1/chat/completions", json=_ask())
    assert r.status_code == 200, r.text
    body = r.json()
    choice = body["choices"][0]
    gen = client.app.state.generator
    expected = gen.generate("Say hello.", max_tokens=8)
    assert choice["message"] == {"role": "assistant", "content": expected.text}
    assert choice["finish_reason"] == expected.finish_reason
    usage = body["usage"]
    assert usage["prompt_tokens"] == expected.prompt_tokens
    assert usage["completion_tokens"] == expected.completion_tokens
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert body["infralab"]["ttft_s"] > 0


def test_stream_is_server_sent_events(client) -> None:
    payload = _ask(stream=True, stream_options={"include_usage": True})
    with client.stream("POST", "/v1/chat/completions", json=payload) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = [ln for ln in r.iter_lines() if ln]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(ln[len("data: ") :]) for ln in lines[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == client.app.state.generator.generate("Say hello.", max_tokens=8).text
    assert chunks[-1]["usage"]["completion_tokens"] >= 1
    assert any(c["choices"] and c["choices"][0]["finish_reason"] for c in chunks)


def test_concurrent_requests_share_decode_steps(client) -> None:
    sched = client.app.state.scheduler
    sched.batch_sizes.clear()
    prompts = ["Name a fruit.", "Name a city in France.", "What is 2+2?", "Say yes."]
    answers: dict[str, str] = {}

    def call(p: str) -> None:
        r = client.post("/v1/chat/completions", json=_ask(p, max_tokens=16))
        answers[p] = r.json()["choices"][0]["message"]["content"]

    threads = [threading.Thread(target=call, args=(p,)) for p in prompts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    gen = client.app.state.generator
    for p in prompts:  # batching never changes a greedy answer
        assert answers[p] == gen.generate(p, max_tokens=16).text
    assert max(sched.batch_sizes) >= 2


@pytest.mark.parametrize(
    ("payload", "status", "words"),
    [
        ({"messages": []}, 400, "messages"),
        ({"messages": [{"role": "robot", "content": "hi"}]}, 400, "role"),
        ({"messages": [{"role": "user", "content": "x" * 20_000}]}, 400, "content"),
        (_ask(max_tokens=0), 400, "max_tokens"),
        (_ask(max_tokens=100_000), 400, "max_tokens"),
        (_ask(temperature=9), 400, "temperature"),
        (_ask(n=3), 400, "n"),
        (_ask(stop=["a", "b", "c", "d", "e"]), 400, "stop"),
        (_ask(model="gpt-9"), 404, "not found"),
        (
            {"messages": [{"role": "user", "content": "word " * 3000}], "max_tokens": 1000},
            400,
            "context",
        ),
        ({"messages": [{"role": "system", "content": "be brief"}]}, 400, "user message"),
    ],
)
def test_bad_requests_get_4xx_with_reason(client, payload: dict, status: int, words: str) -> None:
    r = client.post("/v1/chat/completions", json=payload)
    assert r.status_code == status, r.text
    assert words in r.json()["error"]["message"]


def test_not_json_is_4xx(client) -> None:
    r = client.post(
        "/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert 400 <= r.status_code < 500


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_official_openai_client_against_uvicorn() -> None:
    """The ``openai`` package gets a completion and a stream from a real server."""
    try:
        decoder.gguf_path()
    except decoder.DecoderError as exc:
        pytest.skip(str(exc))
    openai = pytest.importorskip("openai")
    port = _free_port()
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "infralab.serving.chat:create_chat_app",
           "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    try:
        deadline = time.time() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                out = proc.stdout.read().decode() if proc.stdout else ""
                pytest.fail(f"server did not start: {out[-2000:]}")
            time.sleep(0.3)
        oc = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="local", timeout=120)
        model = oc.models.list().data[0].id
        msgs = [{"role": "user", "content": "Name one planet."}]
        done = oc.chat.completions.create(model=model, messages=msgs, max_tokens=10, temperature=0)
        assert done.choices[0].message.content
        assert done.usage.completion_tokens >= 1
        stream = oc.chat.completions.create(model=model, messages=msgs, max_tokens=10,
                                            temperature=0, stream=True)  # fmt: skip
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert text == done.choices[0].message.content
        with pytest.raises(openai.BadRequestError):
            oc.chat.completions.create(model=model, messages=msgs, max_tokens=0)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
