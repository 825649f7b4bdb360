"""The agent-core hook behind client-side tools: a call to one ends the turn, unanswered."""

from __future__ import annotations

from ossa.agent.engines import ReplayEngine
from ossa.agent.events import ToolCallFinished, ToolCallStarted, TurnEnd, TurnStatus
from ossa.agent.loop import Agent, Outcome
from ossa.harmony import Role
from ossa.serve.messages import ClientFunction, ClientFunctions, tool_output, user
from ossa.tools import Toolbox
from tests.serve.test_responses import weather_call


def test_a_client_call_ends_the_turn_and_its_output_continues_it(replay_file, harmony):
    engine = ReplayEngine(replay_file(weather_call("Kyiv"), harmony.final("Mild.")))
    toolbox = Toolbox([ClientFunctions([ClientFunction("get_weather")])])
    agent = Agent(engine, toolbox)
    events = list(agent.run([user("Weather in Kyiv?")]))
    started = [e for e in events if isinstance(e, ToolCallStarted)]
    assert [(e.recipient, e.arguments) for e in started] == [
        ("functions.get_weather", '{"city": "Kyiv"}')
    ]
    assert not any(isinstance(e, ToolCallFinished) for e in events)
    assert events[-1] == TurnEnd(TurnStatus.COMPLETED, model_calls=1, tool_calls=1)
    assert [s.outcome for s in agent.steps] == [Outcome.CLIENT_CALL]
    assert agent.messages[-1].recipient == "functions.get_weather"  # no answer appended

    events = list(agent.run([tool_output("functions.get_weather", "12C")]))
    assert events[-1].answer == "Mild."
    assert [m.author.role for m in agent.messages[-3:]] == [
        Role.TOOL,
        Role.ASSISTANT,
        Role.ASSISTANT,
    ]
