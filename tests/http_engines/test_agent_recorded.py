"""The agent loop over a recorded llama.cpp server: answers, usage, and failures mid-turn."""

from __future__ import annotations

from recorded import Recording, llamacpp, llamacpp_stream

from ossa.agent.engines.http import LlamaCppEngine
from ossa.agent.engines.http.client import Server
from ossa.agent.events import Error, TurnEnd, Usage
from ossa.agent.loop import Agent
from ossa.agent.sessions import SessionStore
from ossa.agent.settings import Settings
from ossa.harmony import Role

ANSWER = "<|channel|>analysis<|message|>Easy.<|end|><|start|>assistant<|channel|>final<|message|>4<|return|>"


def agent(recording: Recording, **kwargs) -> Agent:
    server = Server("http://llama", transport=recording.transport(), backoff=0.0)
    return Agent(LlamaCppEngine(server), None, Settings(tools=[]), **kwargs)


def test_an_agent_turn_through_the_server_reports_its_cache_reuse():
    recording = llamacpp([llamacpp_stream(ANSWER, prompt_n=5, cache_n=40)])
    events = list(agent(recording).run("2+2?"))
    assert events[-1] == TurnEnd(status="completed", answer="4", model_calls=1, tool_calls=0)
    (usage,) = [e for e in events if isinstance(e, Usage)]
    assert (usage.reused_tokens, usage.prompt_tokens) == (40, 45)


def test_a_stream_cut_mid_turn_is_one_error_and_nothing_half_written(tmp_path):
    session = SessionStore(tmp_path).create({"model": "llamacpp:http://llama"})
    bot = agent(llamacpp([llamacpp_stream(ANSWER, cut_after=4)]), session=session)
    events = list(bot.run("2+2?"))
    errors = [e for e in events if isinstance(e, Error)]
    assert len(errors) == 1 and errors[0].kind == "engine"
    assert "was cut mid-way" in errors[0].message
    assert events[-1].status == "error"
    assert bot.messages[-1].author.role == Role.USER
    assert session.load().messages == bot.messages
