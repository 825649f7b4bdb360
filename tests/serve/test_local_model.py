"""``ossa serve`` on the local torch engine, with a tiny random-weight checkpoint.

A random model writes nonsense, so these tests check the protocol, not the words: every
response ends in a documented status with usage that adds up, the stream is in order, and
a continuation reuses the engine's KV cache.
"""

from __future__ import annotations

import pytest

from ossa.agent.engines import open_engine
from ossa.agent.settings import Settings
from ossa.model import synth
from tests.serve.conftest import running
from tests.serve.test_responses import client

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return synth.write_checkpoint(tmp_path_factory.mktemp("tiny"), "tiny")


@pytest.fixture
def server(tiny, tmp_path):
    engine = open_engine(str(tiny), device="cpu")
    settings = Settings(tools=[], max_steps=2, temperature=0.0)
    with running(engine, settings, tmp_path / "s.sqlite3") as server:
        yield server


def test_responses_plain_streamed_and_continued(server):
    api = client(server)
    first = api.responses.create(model="m", input="Hello", max_output_tokens=6, store=True)
    assert first.status in ("completed", "incomplete", "failed")
    assert 0 < first.usage.output_tokens <= 12  # at most two model calls of six tokens
    assert first.usage.input_tokens > 0
    with api.responses.stream(model="m", input="Again", max_output_tokens=6) as stream:
        events = list(stream)
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[0].type == "response.created"
    assert events[-1].type in ("response.completed", "response.incomplete", "response.failed")
    if first.status != "failed":
        later = api.responses.create(
            model="m", input="More", max_output_tokens=6, previous_response_id=first.id
        )
        assert later.usage.input_tokens_details.cached_tokens > 0


def test_chat_completion(server):
    api = client(server)
    completion = api.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "Hi"}], max_tokens=6
    )
    assert completion.choices[0].finish_reason in ("stop", "length", "error", "tool_calls")
    assert completion.usage.prompt_tokens > 0
    chunks = list(
        api.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "Hi"}], max_tokens=6, stream=True
        )
    )
    assert chunks[-1].choices[0].finish_reason is not None
