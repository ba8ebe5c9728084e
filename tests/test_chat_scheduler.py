"""The chat scheduler under a class's load: it queues, it is fair, it drops clients that left.

States are observed through the scheduler (its queue, its counters, its Prometheus metrics),
never through timings. Where a test needs the batch to stay busy it holds the generator's
model lock, so the scheduler thread waits inside its prefill for exactly as long as the test
wants, whatever the machine's speed.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest
from fastapi.testclient import TestClient

from infralab.engines.models import decoder


@pytest.fixture(scope="module")
def generator():
    try:
        decoder.gguf_path()
    except decoder.DecoderError as exc:
        pytest.skip(str(exc))
    from infralab.engines.models.text_generation import Generator

    return Generator("q4", "cpu", threads=2)


@contextmanager
def chat_client(generator, **kwargs) -> Iterator[TestClient]:
    from infralab.engines.serving.chat import create_chat_app

    with TestClient(create_chat_app(generator=generator, **kwargs)) as c:
        yield c


def wait_until(check: Callable[[], bool], what: str, timeout_s: float = 120.0) -> None:
    """Poll a state (not a timing): fail with ``what`` if it never holds."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"never reached: {what}")
        time.sleep(0.01)


def _ask(content: str, max_tokens: int = 4, **kw) -> dict:
    return {"messages": [{"role": "user", "content": content}], "max_tokens": max_tokens,
            "temperature": 0, **kw}  # fmt: skip


def _post_in_thread(client: TestClient, payload: dict, out: list, headers=None) -> threading.Thread:
    def run() -> None:
        out.append(client.post("/v1/chat/completions", json=payload, headers=headers or {}))

    t = threading.Thread(target=run)
    t.start()
    return t


def _stream_text(resp_lines: list[str]) -> tuple[str, str | None, bool]:
    """(text, finish_reason, saw an error event) of an SSE body."""
    text, finish, error = "", None, False
    for line in resp_lines:
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        chunk = json.loads(line[len("data: ") :])
        if "error" in chunk:
            error = True
            continue
        for choice in chunk.get("choices", []):
            text += choice["delta"].get("content") or ""
            finish = choice.get("finish_reason") or finish
    return text, finish, error


@pytest.mark.slow
@pytest.mark.parametrize("stream", [False, True])
def test_32_concurrent_requests_all_complete(generator, stream: bool) -> None:
    """A class at once: every request queues for a row and completes (the old loop 503'd)."""
    with chat_client(generator) as client:
        sched = client.app.state.scheduler
        results: dict[int, tuple[int, str, str | None, bool]] = {}

        def call(i: int) -> None:
            payload = _ask(f"Say the number {i}.", stream=stream)
            if stream:
                with client.stream("POST", "/v1/chat/completions", json=payload) as r:
                    lines = list(r.iter_lines())
                    text, finish, error = _stream_text(lines)
                    done = bool(lines) and [ln for ln in lines if ln][-1] == "data: [DONE]"
                    results[i] = (r.status_code, text, finish, error or not done)
            else:
                r = client.post("/v1/chat/completions", json=payload)
                body = r.json()
                choice = body["choices"][0] if r.status_code == 200 else {}
                results[i] = (
                    r.status_code,
                    choice.get("message", {}).get("content", ""),
                    choice.get("finish_reason"),
                    r.status_code != 200,
                )

        threads = [threading.Thread(target=call, args=(i,)) for i in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=600)
        assert len(results) == 32
        for i, (status, text, finish, error) in sorted(results.items()):
            assert status == 200 and not error, (i, status, text)
            assert finish in ("stop", "length") and text, (i, finish, text)
        assert sched.stats["completed"] == 32 and sched.stats["rejected"] == 0
        assert max(sched.batch_sizes) == sched.max_batch  # the rows were shared, not refused
        # Greedy answers do not depend on who shared the batch.
        for i in (0, 31):
            assert results[i][1] == generator.generate(f"Say the number {i}.", max_tokens=4).text


def test_queue_full_gets_429_with_retry_after_only_past_the_bound(generator) -> None:
    openai = pytest.importorskip("openai")
    try:  # the HTTP library the installed openai client speaks (httpx2 from openai 3)
        import httpx2 as openai_http
    except ImportError:
        import httpx as openai_http

    with chat_client(generator, max_batch=1, max_queue=2) as client:
        sched = client.app.state.scheduler
        out: list = []
        with generator.lock:  # the scheduler stays inside the first prefill
            threads = [_post_in_thread(client, _ask("Name a colour."), out)]
            wait_until(lambda: len(sched.running) == 1, "the first request runs")
            threads += [_post_in_thread(client, _ask(f"Name a fruit {i}."), out) for i in (1, 2)]
            wait_until(lambda: sched.n_waiting == 2, "two requests wait")
            assert sched.stats["rejected"] == 0  # up to the bound: queued, not refused
            full = client.post("/v1/chat/completions", json=_ask("One more."))
        for t in threads:
            t.join(timeout=300)
    assert full.status_code == 429
    assert int(full.headers["retry-after"]) >= 1
    assert "queue" in full.json()["error"]["message"]
    assert [r.status_code for r in out] == [200, 200, 200]
    assert sched.stats["rejected"] == 1

    # The official client reads it as a RateLimitError carrying the message.
    def replay(request):
        return openai_http.Response(
            full.status_code, headers=dict(full.headers), content=full.content
        )

    oc = openai.OpenAI(base_url="http://local/v1", api_key="k", max_retries=0,
                       http_client=openai_http.Client(transport=openai_http.MockTransport(replay)))  # fmt: skip
    with pytest.raises(openai.RateLimitError) as err:
        oc.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert "queue" in err.value.message


def test_queue_is_fair_across_clients(generator) -> None:
    """Six requests from A, then one from B: B is served second, not seventh."""
    with chat_client(generator, max_batch=1) as client:
        sched = client.app.state.scheduler
        out: list = []
        a, b = {"Authorization": "Bearer student-a"}, {"Authorization": "Bearer student-b"}
        with generator.lock:
            threads = [_post_in_thread(client, _ask("A first."), out, a)]
            wait_until(lambda: len(sched.running) == 1, "A's first request runs")
            for i in range(5):
                threads.append(_post_in_thread(client, _ask(f"A again {i}."), out, a))
            wait_until(lambda: sched.n_waiting == 5, "A's five wait")
            threads.append(_post_in_thread(client, _ask("B once."), out, b))
            wait_until(lambda: sched.n_waiting == 6, "B waits behind them")
        for t in threads:
            t.join(timeout=300)
    assert [r.status_code for r in out] == [200] * 7
    order = [key.split("|")[1] for key in sched.admitted]
    assert len(order) == 7 and order[0] == order[2] != order[1]  # A, B, A, ...
    assert order.count(order[1]) == 1


class _Server:
    """The chat app on a real uvicorn in a thread, so a client can really hang up."""

    def __init__(self, app) -> None:
        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_until(lambda: self.server.started, "uvicorn started")

    def open_request(self, payload: dict) -> socket.socket:
        body = json.dumps(payload).encode()
        sock = socket.create_connection(("127.0.0.1", self.port))
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: local\r\n"
            b"Content-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        return sock

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.mark.parametrize("stream", [False, True])
def test_a_client_that_hangs_up_stops_its_generation(generator, stream: bool) -> None:
    from infralab.engines.serving.chat import create_chat_app
    from infralab.engines.serving.metrics import sample

    app = create_chat_app(generator=generator, max_batch=1)
    sched = app.state.scheduler
    server = _Server(app)
    long = _ask("Count from 1 to 500, one number per line.", max_tokens=1000, stream=stream)
    try:
        with generator.lock:  # hold the first request inside its prefill
            running_sock = server.open_request(long)
            wait_until(lambda: len(sched.running) == 1, "the long request runs")
            running = sched.running[0]
            waiting_sock = server.open_request(long)
            wait_until(lambda: sched.n_waiting == 1, "a second request waits")
            waiting = sched.waiting[0]
            waiting_sock.close()  # hangs up while waiting: dropped from the queue
            wait_until(lambda: waiting.state == "cancelled", "the waiting request is dropped")
            assert sched.n_waiting == 0
            running_sock.close()  # hangs up while running
            wait_until(lambda: running.cancelled, "the server notices the hang-up")
        wait_until(lambda: running.state == "cancelled", "the running request stops")
        assert running.seq.finish_reason == "cancelled"
        assert len(running.seq.out_ids) < 1000  # it did not decode to max_tokens
        assert sched.stats["cancelled_running"] == 1 and sched.stats["cancelled_waiting"] == 1
        assert sched.stats["completed"] == 0 and not sched.running
        m = app.state.metrics
        assert sample(m, "infralab_chat_cancelled_total", {"where": "running"}) == 1
        assert sample(m, "infralab_chat_cancelled_total", {"where": "waiting"}) == 1
        # The server is still healthy and serves the next client.
        r = httpx.post(
            f"http://127.0.0.1:{server.port}/v1/chat/completions", json=_ask("Hi."), timeout=300
        )
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"]
    finally:
        server.stop()
