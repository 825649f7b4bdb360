"""``ossa batch --concurrency N`` keeps N requests in flight on a server engine."""

from __future__ import annotations

import importlib
import json
import threading

import httpx
import pytest
from recorded import llamacpp, llamacpp_stream
from typer.testing import CliRunner

from ossa import cli
from ossa.agent.engines import ReplayEngine, SerializedEngine
from ossa.agent.engines.http import LlamaCppEngine
from ossa.agent.engines.http.client import Server

batch = importlib.import_module("ossa.agent.cli.batch")  # the package exports the command
ANSWER = "<|channel|>final<|message|>done<|return|>"


def test_batch_runs_server_requests_at_once(tmp_path, monkeypatch):
    monkeypatch.setenv("OSSA_HOME", str(tmp_path / "home"))
    together = threading.Barrier(3, timeout=60)  # every task's request must be in flight at once

    def completion(request: httpx.Request):
        together.wait()
        return llamacpp_stream(ANSWER)

    recording = llamacpp(completion)
    engine = LlamaCppEngine(Server("http://llama", transport=recording.transport(), retries=0))
    monkeypatch.setattr(batch, "open_model", lambda settings: engine)
    tasks, results = tmp_path / "tasks.jsonl", tmp_path / "out.jsonl"
    tasks.write_text("".join(json.dumps({"id": i, "task": "go"}) + "\n" for i in range(3)))
    args = ["batch", str(tasks), "-o", str(results), "--model", "llamacpp:http://llama"]
    out = CliRunner().invoke(cli.app, [*args, "--tools", "", "--concurrency", "3"])
    assert out.exit_code == 0, out.output
    records = [json.loads(line) for line in results.read_text().splitlines()]
    assert sorted(r["id"] for r in records) == [0, 1, 2]
    assert {r["status"] for r in records} == {"completed"}


@pytest.mark.parametrize("concurrent", [True, False])
def test_only_engines_that_say_so_are_shared_unserialised(concurrent, tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"completion": "<|return|>"}\n')
    engine = ReplayEngine(path)
    if concurrent:
        engine.concurrency = 4
    assert isinstance(batch.shared(engine), SerializedEngine) is not concurrent
