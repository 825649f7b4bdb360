"""Many clients at once: fair turns on a serial engine, parallel ones on a concurrent engine,
and a client that goes away stops its generation."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai

from ossa.agent.engines import ReplayEngine
from ossa.agent.settings import Settings
from ossa.model.stats import Generation
from ossa.serve import Limits
from ossa.serve.pool import FairSlots
from tests.serve.conftest import running
from tests.serve.test_responses import client

WAIT = 30  # seconds: a bound on waiting for threads, never a measured assertion


class Watched:
    """A replay engine that counts generations running at once and can slow its tokens."""

    def __init__(self, inner: ReplayEngine, *, concurrency: int = 1, delay: float = 0.0):
        self.inner = inner
        self.context_length = inner.context_length
        self.concurrency = concurrency
        self.delay = delay
        self.barrier: threading.Barrier | None = None
        self.active = 0
        self.most = 0
        self.closed = threading.Event()
        self.total = 0  # tokens in the first recorded completion, where a test needs them
        self._lock = threading.Lock()

    def generate(self, prompt, **kwargs) -> Generation:
        inner = self.inner.generate(prompt, **kwargs)
        return Generation(self._tokens(inner), inner.usage)

    def _tokens(self, inner: Generation):
        with self._lock:
            self.active += 1
            self.most = max(self.most, self.active)
        try:
            if self.barrier is not None:
                self.barrier.wait(WAIT)  # breaks (and fails the test) unless all run at once
            for token in inner:
                time.sleep(self.delay)
                yield token
        finally:
            with self._lock:
                self.active -= 1
            self.closed.set()


def test_fair_slots_serve_in_arrival_order():
    slots = FairSlots(1)
    slots.acquire()
    order: list[str] = []

    def take(name: str) -> None:
        slots.acquire()
        order.append(name)
        slots.release()

    threads = []
    for name in "abcd":
        threads.append(threading.Thread(target=take, args=(name,)))
        threads[-1].start()
        while len(slots._waiting) < len(threads):  # each is queued before the next arrives
            time.sleep(0.001)
    slots.release()
    for t in threads:
        t.join(WAIT)
    assert order == list("abcd")


def test_a_serial_engine_runs_one_generation_at_a_time(tmp_path, harmony):
    replay = tmp_path / "r.jsonl"
    replay.write_text(
        "".join(json.dumps({"completion": harmony.final(f"answer {i}")}) + "\n" for i in range(8))
    )
    engine = Watched(ReplayEngine(replay), delay=0.001)
    with running(engine, Settings(tools=[]), tmp_path / "s.sqlite3") as server:
        api = client(server)
        with ThreadPoolExecutor(8) as pool:
            answers = list(
                pool.map(
                    lambda i: api.responses.create(model="m", input=f"q{i}").output_text, range(8)
                )
            )
    assert sorted(answers) == sorted(f"answer {i}" for i in range(8))
    assert engine.most == 1


def test_a_concurrent_engine_runs_generations_in_parallel(tmp_path, harmony):
    replay = tmp_path / "r.jsonl"
    replay.write_text(
        "".join(json.dumps({"completion": harmony.final(f"answer {i}")}) + "\n" for i in range(3))
    )
    engine = Watched(ReplayEngine(replay), concurrency=3)
    engine.barrier = threading.Barrier(3)
    with running(engine, Settings(tools=[]), tmp_path / "s.sqlite3") as server:
        api = client(server)
        with ThreadPoolExecutor(3) as pool:
            answers = list(
                pool.map(
                    lambda i: api.responses.create(model="m", input=f"q{i}").output_text, range(3)
                )
            )
    assert sorted(answers) == ["answer 0", "answer 1", "answer 2"]
    assert engine.most == 3


def test_a_disconnect_mid_stream_stops_the_generation(tmp_path, harmony):
    long_answer = " ".join(f"word{i}" for i in range(2000))
    replay = tmp_path / "r.jsonl"
    replay.write_text(
        json.dumps({"completion": harmony.final(long_answer)})
        + "\n"
        + json.dumps({"completion": harmony.final("next client")})
        + "\n"
    )
    inner = ReplayEngine(replay)
    engine = Watched(inner, delay=0.005)
    with running(engine, Settings(tools=[]), tmp_path / "s.sqlite3") as server:
        body = {"model": "m", "input": "Talk a lot.", "stream": True}
        with httpx.stream(
            "POST", f"{server.base_url}/responses", json=body, timeout=WAIT
        ) as stream:
            for line in stream.iter_lines():
                if "response.output_text.delta" in line:
                    break  # the client goes away mid-answer
        assert engine.closed.wait(WAIT)
        total = len(inner._encoding.encode(harmony.final(long_answer), allowed_special="all"))
        assert inner.calls[0].generated_tokens < total
        # the engine is free again: the next client is served
        assert client(server).responses.create(model="m", input="hi").output_text == "next client"


def test_streamed_clients_get_their_own_outputs(serve, harmony):
    server = serve(*(harmony.final(f"reply {i}") for i in range(6)))
    api = openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)

    def ask(i: int) -> tuple[str, str]:
        with api.responses.stream(model="m", input=f"q{i}") as stream:
            deltas = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
            return deltas, stream.get_final_response().output_text

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(ask, range(6)))
    assert all(deltas == final for deltas, final in results)
    assert sorted(final for _, final in results) == [f"reply {i}" for i in range(6)]


def slow_server(tmp_path, harmony, **options):
    long_answer = " ".join(f"word{i}" for i in range(2000))
    replay = tmp_path / "r.jsonl"
    replay.write_text(
        json.dumps({"completion": harmony.final(long_answer)})
        + "\n"
        + json.dumps({"completion": harmony.final("next client")})
        + "\n"
    )
    engine = Watched(ReplayEngine(replay), delay=0.005)
    engine.total = len(
        engine.inner._encoding.encode(harmony.final(long_answer), allowed_special="all")
    )
    return engine, running(engine, Settings(tools=[]), tmp_path / "s.sqlite3", **options)


def test_a_client_that_gives_up_on_a_plain_request_stops_it(tmp_path, harmony):
    engine, serving = slow_server(tmp_path, harmony)
    with serving as server:
        timeout = httpx.Timeout(30, read=0.5)
        with httpx.Client(timeout=timeout) as http, contextlib.suppress(httpx.ReadTimeout):
            http.post(f"{server.base_url}/responses", json={"model": "m", "input": "Talk."})
        assert engine.closed.wait(WAIT)
        assert engine.inner.calls[0].generated_tokens < engine.total
        assert client(server).responses.create(model="m", input="hi").output_text == "next client"


def test_too_many_requests_in_progress_is_a_429(tmp_path, harmony):
    engine, serving = slow_server(tmp_path, harmony, limits=Limits(max_turns=1))
    with serving as server:
        body = {"model": "m", "input": "Talk a lot.", "stream": True}
        with httpx.stream(
            "POST", f"{server.base_url}/responses", json=body, timeout=WAIT
        ) as stream:
            lines = stream.iter_lines()  # held open: the first request is still in progress
            for line in lines:
                if "response.output_text.delta" in line:
                    break
            busy = httpx.post(f"{server.base_url}/responses", json={"model": "m", "input": "hi"})
        assert busy.status_code == 429
        assert busy.json()["error"]["code"] == "too_many_requests"
