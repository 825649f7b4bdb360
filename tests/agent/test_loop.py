"""The agent loop driven by recorded completions through the real tools."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from ossa.agent.engines import ReplayEngine
from ossa.agent.events import (
    Error,
    FinalDelta,
    Notice,
    ReasoningDelta,
    ToolCallFinished,
    ToolCallStarted,
    TurnEnd,
    TurnStatus,
    Usage,
    event_from_dict,
)
from ossa.agent.loop import MAX_REPAIRS, TURN_STATUS, Agent, Outcome
from ossa.agent.sessions import SessionStore
from ossa.agent.settings import Settings
from ossa.harmony import Message, Role, ToolNamespaceConfig
from ossa.model.stats import Generation
from ossa.tools import Tool, Toolbox, build_toolbox

CORPUS = Path(__file__).resolve().parents[2] / "examples" / "corpus"


def corpus_toolbox(*names: str, **kwargs):
    return build_toolbox(
        names or ["browser"],
        search_backend="local",
        corpus_dir=str(CORPUS),
        plugins=False,
        **kwargs,
    )


def turn(agent: Agent, text: str) -> list:
    return list(agent.run(text))


def end(events: list) -> TurnEnd:
    assert isinstance(events[-1], TurnEnd)
    return events[-1]


def test_plain_answer_streams_reasoning_and_final(replay_file, harmony):
    engine = ReplayEngine(replay_file(harmony.final("Hello there!", "User greets.")))
    events = turn(Agent(engine), "hi")
    assert "".join(e.text for e in events if isinstance(e, ReasoningDelta)) == "User greets."
    assert "".join(e.text for e in events if isinstance(e, FinalDelta)) == "Hello there!"
    assert end(events).status == "completed"
    assert end(events).answer == "Hello there!"
    usage = next(e for e in events if isinstance(e, Usage))
    assert usage.model_calls == 1
    assert usage.output_tokens > 0


def test_browser_search_open_and_cited_answer(replay_file, harmony):
    replay = replay_file(
        harmony.call("browser.search", '{"query": "MXFP4 block scale bytes"}'),
        harmony.call("browser.open", '{"id": 0}'),
        harmony.final("A block takes 17 bytes 【1†L4-L6】."),
    )
    engine = ReplayEngine(replay)
    agent = Agent(engine, toolbox=corpus_toolbox())
    events = turn(agent, "How many bytes does an MXFP4 block take?")

    started = [e for e in events if isinstance(e, ToolCallStarted)]
    finished = [e for e in events if isinstance(e, ToolCallFinished)]
    assert [e.recipient for e in started] == ["browser.search", "browser.open"]
    assert "microscaling" in finished[0].output
    assert "16 bytes plus" in finished[1].output
    assert end(events).status == "completed"
    assert end(events).tool_calls == 2
    # the citation is resolved to the opened page's URL in what the user sees ...
    assert (CORPUS / "mxfp4.md").resolve().as_uri() in end(events).answer
    # ... while the conversation keeps the model's own text
    assert agent.messages[-1].content[0].text == "A block takes 17 bytes 【1†L4-L6】."
    roles = [m.author.role for m in agent.messages]
    assert roles.count(Role.TOOL) == 2


def test_each_prompt_extends_the_previous_one(replay_file, harmony):
    """The whole conversation is re-rendered, so the engine can reuse its prefix."""
    replay = replay_file(
        harmony.call("browser.search", '{"query": "harmony channels"}'),
        harmony.final("Three channels."),
    )
    engine = ReplayEngine(replay)
    events = turn(Agent(engine, toolbox=corpus_toolbox()), "Which channels?")
    first, second = engine.prompts
    assert second[: len(first)] == first
    assert engine.stats.reused_tokens >= len(first)
    usage = next(e for e in events if isinstance(e, Usage))
    assert usage.reused_tokens >= len(first)
    assert usage.prompt_tokens == len(first) + len(second)


def test_tool_failure_becomes_a_tool_message_and_the_loop_goes_on(replay_file, harmony):
    replay = replay_file(
        harmony.call("browser.open", '{"id": 7}'),  # nothing was searched: no page 7
        harmony.call("browser.nosuch", "{}"),
        harmony.final("I could not open it."),
    )
    agent = Agent(ReplayEngine(replay), toolbox=corpus_toolbox())
    events = turn(agent, "open it")
    outputs = [e.output for e in events if isinstance(e, ToolCallFinished)]
    assert len(outputs) == 2
    assert all(outputs)
    assert "nosuch" in outputs[1]
    assert end(events).status == "completed"
    assert [m.author.role for m in agent.messages].count(Role.TOOL) == 2


def test_malformed_completion_gets_a_correction_and_a_retry(replay_file, harmony):
    replay = replay_file(
        "<|channel|>analysis<|message|>Thinking only.<|return|>",  # no answer
        "<|channel|>analysis<|message|>a<|end|><|start|>assistant<|channel|>final<|message|>cut",
        harmony.final("Fixed."),
    )
    agent = Agent(ReplayEngine(replay))
    events = turn(agent, "q")
    notices = [e for e in events if isinstance(e, Notice)]
    assert len(notices) == 2
    assert "stopped mid-message" in notices[1].message
    assert end(events).status == "completed"
    assert end(events).answer == "Fixed."
    corrections = [m for m in agent.messages if m.author.role == Role.DEVELOPER]
    assert len(corrections) == 2


def test_malformed_output_is_retried_a_bounded_number_of_times(replay_file):
    bad = "<|channel|>analysis<|message|>hmm<|return|>"
    agent = Agent(ReplayEngine(replay_file(*[bad] * (MAX_REPAIRS + 2))))
    events = turn(agent, "q")
    assert end(events).status == "error"
    assert any(isinstance(e, Error) and e.kind == "malformed" for e in events)
    assert next(e for e in events if isinstance(e, Usage)).model_calls == MAX_REPAIRS + 1


def test_final_json_header_quirk_is_an_answer_not_a_tool_call(replay_file):
    """``<|channel|>final json`` parses ``json`` as a recipient (harmony#56)."""
    replay = replay_file('<|channel|>final json<|message|>{"a": 1}<|return|>')
    agent = Agent(ReplayEngine(replay), toolbox=corpus_toolbox())
    events = turn(agent, "json please")
    assert not any(isinstance(e, ToolCallStarted) for e in events)
    assert end(events).answer == '{"a": 1}'
    assert agent.messages[-1].recipient is None


def test_refusal_without_header_is_kept_as_the_answer(replay_file):
    """gpt-oss-120b refusals come without channel or <|message|> (harmony#80)."""
    events = turn(Agent(ReplayEngine(replay_file("I must refuse<|return|>"))), "q")
    assert end(events).status == "completed"
    assert end(events).answer == "I must refuse"


def test_step_limit_leaves_a_consistent_conversation(replay_file, harmony):
    search = harmony.call("browser.search", '{"query": "gpt-oss"}')
    agent = Agent(
        ReplayEngine(replay_file(search, search, search)),
        toolbox=corpus_toolbox(),
        settings=Settings(max_steps=2),
    )
    events = turn(agent, "loop forever")
    assert end(events).status == "max_steps"
    assert end(events).tool_calls == 2
    assert agent.messages[-1].author.role == Role.TOOL  # every call has its answer


def test_token_limit(replay_file, harmony):
    agent = Agent(
        ReplayEngine(replay_file(harmony.final("word " * 200))), settings=Settings(max_tokens=40)
    )
    events = turn(agent, "long")
    assert end(events).status == "max_tokens"
    assert 0 < len(end(events).answer) < len("word " * 200)


def test_engine_error_ends_the_turn_cleanly(replay_file, harmony):
    agent = Agent(
        ReplayEngine(replay_file(harmony.call("browser.search", '{"query": "x"}'))),
        toolbox=corpus_toolbox(),
    )
    events = turn(agent, "q")  # the second model call finds no recorded completion
    errors = [e for e in events if isinstance(e, Error)]
    assert [e.kind for e in errors] == ["engine"]
    assert "recorded completions were used" in errors[0].message
    assert end(events).status == "error"
    assert agent.messages[-1].author.role == Role.TOOL


def test_interrupt_during_generation_discards_the_partial_completion(replay_file, harmony):
    replay = replay_file(
        harmony.final("never shown", "a long thought " * 20), harmony.final("Second.")
    )
    agent = Agent(ReplayEngine(replay))
    events = []
    for event in agent.run("first"):
        events.append(event)
        if isinstance(event, ReasoningDelta):
            agent.interrupt()
    assert end(events).status == "interrupted"
    assert not any(isinstance(e, FinalDelta) for e in events)
    assert agent.messages[-1].author.role == Role.USER
    assert end(turn(agent, "again")).answer == "Second."


def test_ctrl_c_in_a_tool_answers_the_call_and_keeps_the_session_valid(
    replay_file, harmony, tmp_path
):
    def slow_lookup(key: str) -> str:
        """Look up a key (the user pressed Ctrl-C while it ran)."""
        raise KeyboardInterrupt

    replay = replay_file(
        harmony.call("functions.slow_lookup", '{"key": "a"}'), harmony.final("Ok.")
    )
    store = SessionStore(tmp_path / "sessions")
    session = store.create({"model": "replay"})
    toolbox = build_toolbox([], functions=[slow_lookup], plugins=False)
    agent = Agent(ReplayEngine(replay), toolbox=toolbox, session=session)
    events = turn(agent, "look it up")
    assert end(events).status == "interrupted"
    assert agent.messages[-1].author.role == Role.TOOL
    assert "interrupted" in agent.messages[-1].content[0].text
    assert session.load().messages == agent.messages
    assert end(turn(agent, "go on")).answer == "Ok."


def test_resumed_session_renders_the_same_tokens(replay_file, harmony, tmp_path):
    replay = [
        harmony.call("browser.search", '{"query": "gpt-oss parameters"}'),
        harmony.final("21B total 【0†L1】."),
        harmony.final("Yes."),
    ]
    store = SessionStore(tmp_path / "sessions")
    session = store.create({"model": "replay"})
    original = Agent(
        ReplayEngine(replay_file(*replay)),
        corpus_toolbox(),
        Settings(effort="high"),
        session=session,
    )
    turn(original, "How big is gpt-oss-20b?")

    transcript = store.open(session.id).load()
    assert transcript.skipped_lines == 0
    resumed_engine = ReplayEngine(replay_file(replay[2]))
    resumed = Agent(
        resumed_engine,
        toolbox=corpus_toolbox(),
        session=store.open(session.id),
        messages=transcript.messages,
    )
    assert resumed.render() == original.render()

    turn(original, "Sure?")
    turn(resumed, "Sure?")
    assert resumed_engine.prompts[-1] == original.engine.prompts[-1]


def test_effort_change_is_recorded_and_resumes(replay_file, harmony, tmp_path):
    store = SessionStore(tmp_path / "sessions")
    session = store.create({"model": "replay"})
    agent = Agent(
        ReplayEngine(replay_file(harmony.final("a"))),
        settings=Settings(instructions="Be brief."),
        session=session,
    )
    turn(agent, "q")
    agent.reconfigure(effort="low", toolbox=corpus_toolbox())
    loaded = store.open(session.id).load().messages
    assert loaded == agent.messages
    system = agent.messages[0].content[0]
    assert str(system.reasoning_effort.value).lower() == "low"
    assert "browser" in (system.tools or {})
    assert agent.messages[1].author.role == Role.DEVELOPER


def test_context_budget_shortens_old_tool_outputs(replay_file, harmony):
    """Old tool outputs the model still sees are shortened first.

    Function results come back on ``commentary`` and stay in the prompt (the browser's come
    back on ``analysis`` and leave it with the reasoning once a turn is answered). The window
    is sized from the conversation itself, one token short for the third turn: a fixed size
    made the test depend on the checkout's path, which search results show in their URLs.
    """

    def notes(topic: str) -> str:
        """Notes on a topic."""
        return f"{topic}: " + "a long line of notes " * 40

    call = (
        "<|channel|>commentary to=functions.notes <|constrain|>json<|message|>"
        '{"topic": "gpt-oss"}<|call|>'
    )
    replay = replay_file(
        call, harmony.final("one"), call, harmony.final("two"), harmony.final("three")
    )
    engine = ReplayEngine(replay)
    toolbox = build_toolbox([], functions=[notes], plugins=False)
    agent = Agent(engine, toolbox, Settings(max_tokens=200))
    assert end(turn(agent, "first")).status == "completed"
    assert end(turn(agent, "second")).status == "completed"
    third = Message.from_role_and_content(Role.USER, "third")
    engine.context_length = len(agent.render([*agent.messages, third])) - 1 + 200
    events = turn(agent, "third")
    assert end(events).status == "completed"
    assert any(isinstance(e, Notice) and "shortened" in e.message for e in events)
    prompt_text = agent.encoding.decode(engine.prompts[-1])
    assert "output shortened" in prompt_text
    assert "third" in prompt_text  # the current turn is intact
    assert len(engine.prompts[-1]) <= engine.context_length - 200


def test_context_budget_error_when_the_current_turn_cannot_fit(replay_file, harmony):
    agent = Agent(
        ReplayEngine(replay_file(harmony.final("x")), context_length=400),
        settings=Settings(max_tokens=50),
    )
    events = turn(agent, "word " * 500)
    assert end(events).status == "error"
    error = next(e for e in events if isinstance(e, Error))
    assert error.kind == "context"
    assert "current turn must fit" in error.message


def test_session_records_messages_and_coalesced_events(replay_file, harmony, tmp_path):
    store = SessionStore(tmp_path / "sessions")
    session = store.create({"model": "replay"})
    agent = Agent(ReplayEngine(replay_file(harmony.final("Hello there, friend."))), session=session)
    turn(agent, "hi")
    records = [json.loads(line) for line in session.path.read_text().splitlines()]
    kinds = [r["kind"] for r in records]
    assert kinds[0] == "meta"
    assert kinds.count("message") == len(agent.messages)
    events = [r["event"] for r in records if r["kind"] == "event"]
    assert [e["type"] for e in events] == ["reasoning_delta", "final_delta", "usage", "turn_end"]
    assert events[1]["text"] == "Hello there, friend."


@pytest.mark.docker
def test_demo_replay_runs_the_browser_and_the_python_sandbox():
    demo = Path(__file__).resolve().parents[2] / "examples" / "demo.jsonl"
    toolbox = corpus_toolbox("browser", "python")
    try:
        agent = Agent(ReplayEngine(demo), toolbox=toolbox)
        events = turn(agent, "How many bytes does one MXFP4 block take?")
    finally:
        toolbox.close()
    outputs = {e.recipient: e.output for e in events if isinstance(e, ToolCallFinished)}
    assert outputs["python"].split() == ["16", "17", "4.25"]
    assert end(events).status == "completed"
    assert "17 bytes" in end(events).answer


@pytest.mark.docker
@pytest.mark.timeout(120)
def test_interrupt_from_another_thread_stops_a_running_python_cell(replay_file, harmony):
    """A server whose client went away calls ``interrupt()`` from its own thread: the cell stops
    now (it would sleep for ten minutes), the call is answered, the turn ends interrupted."""
    replay = replay_file(harmony.call("python", "import time\ntime.sleep(600)"))
    toolbox = build_toolbox(["python"], plugins=False)
    try:
        agent = Agent(ReplayEngine(replay), toolbox)
        events = []
        for event in agent.run("sleep"):
            events.append(event)
            if isinstance(event, ToolCallStarted):
                threading.Timer(1.0, agent.interrupt).start()
    finally:
        toolbox.close()
    assert end(events).status == "interrupted"
    output = next(e.output for e in events if isinstance(e, ToolCallFinished))
    assert "KeyboardInterrupt" in output or "interrupt" in output.lower()
    assert agent.messages[-1].author.role == Role.TOOL


# -- steps ------------------------------------------------------------------------------


def test_each_step_has_a_typed_outcome_and_its_own_usage(replay_file, harmony):
    replay = replay_file(
        harmony.call("browser.search", '{"query": "harmony"}'),
        "<|channel|>analysis<|message|>no answer<|return|>",  # malformed: corrected, retried
        harmony.final("Done."),
    )
    engine = ReplayEngine(replay)
    agent = Agent(engine, corpus_toolbox())
    events = turn(agent, "q")
    assert [s.outcome for s in agent.steps] == [
        Outcome.TOOL_CALL,
        Outcome.MALFORMED,
        Outcome.ANSWER,
    ]
    assert [s.status for s in agent.steps] == [None, None, TurnStatus.COMPLETED]
    assert [s.usage for s in agent.steps] == engine.calls
    assert (end(events).model_calls, end(events).tool_calls) == (3, 1)
    assert end(events).status is TurnStatus.COMPLETED
    assert set(TURN_STATUS) == set(Outcome)  # one rule covers every outcome


def test_step_limit_is_a_step_without_a_model_call(replay_file, harmony):
    search = harmony.call("browser.search", '{"query": "x"}')
    agent = Agent(
        ReplayEngine(replay_file(search, search)), corpus_toolbox(), Settings(max_steps=1)
    )
    events = turn(agent, "q")
    assert [s.outcome for s in agent.steps] == [Outcome.TOOL_CALL, Outcome.STEP_LIMIT]
    assert end(events).status == "max_steps"
    assert (end(events).model_calls, end(events).tool_calls) == (1, 1)


class FailingEngine(ReplayEngine):
    """Streams three tokens of its recorded completion, then the engine breaks."""

    def generate(self, prompt, **kwargs):
        inner = super().generate(prompt, **kwargs)

        def tokens():
            for n, token in enumerate(inner, 1):
                yield token
                if n == 3:
                    raise OSError("connection reset")

        return Generation(tokens(), inner.usage)


def test_an_engine_failure_mid_stream_ends_the_turn_and_leaves_the_conversation(
    replay_file, harmony
):
    agent = Agent(FailingEngine(replay_file(harmony.final("never"))))
    events = turn(agent, "q")
    assert [(e.kind, e.message) for e in events if isinstance(e, Error)] == [
        ("engine", "OSError: connection reset")
    ]
    assert agent.steps[-1].outcome is Outcome.ENGINE_ERROR
    assert agent.steps[-1].usage.generated_tokens == 3
    assert end(events).status == "error"
    assert agent.messages[-1].author.role == Role.USER


class BuggyFilterTool(Tool):
    """A tool whose answer filter has a bug."""

    name = "buggy"

    def namespace(self) -> ToolNamespaceConfig:
        return ToolNamespaceConfig(name="buggy", description="Nothing.", tools=[])

    def call(self, message: Message) -> list[Message]:
        return [self.reply(message, "ok")]

    def answer_filter(self):
        return self

    def feed(self, text: str) -> str:
        raise ZeroDivisionError("filter bug")

    def flush(self) -> str:
        return ""


def test_a_bug_outside_the_engine_is_not_reported_as_an_engine_error(replay_file, harmony):
    agent = Agent(ReplayEngine(replay_file(harmony.final("Hi."))), Toolbox([BuggyFilterTool()]))
    with pytest.raises(ZeroDivisionError, match="filter bug"):
        turn(agent, "q")


def test_answer_filter_comes_from_the_toolbox(replay_file, harmony):
    """The loop knows no browser: the toolbox's filter resolves the citation."""
    replay = replay_file(
        harmony.call("browser.search", '{"query": "MXFP4 block scale bytes"}'),
        harmony.call("browser.open", '{"id": 0}'),
        harmony.final("See 【1†L4-L6】 and 【9†L2】."),
    )
    agent = Agent(ReplayEngine(replay), corpus_toolbox())
    answer = end(turn(agent, "q")).answer
    assert (CORPUS / "mxfp4.md").resolve().as_uri() in answer  # a page it showed: linked
    assert "【9†L2】" in answer  # a cursor it never showed: kept as written


def test_reset_starts_a_new_session_with_only_the_header(replay_file, harmony, tmp_path):
    store = SessionStore(tmp_path / "sessions")
    agent = Agent(
        ReplayEngine(replay_file(harmony.final("a"), harmony.final("b"))),
        settings=Settings(instructions="Be brief."),
        session=store.create({"model": "replay"}),
    )
    turn(agent, "first")
    header = agent.messages[:2]
    toolbox = corpus_toolbox()
    fresh = store.create({"model": "replay"})
    agent.reset(session=fresh, toolbox=toolbox)
    assert agent.session is fresh and agent.toolbox is toolbox
    assert [m.author.role for m in agent.messages] == [Role.SYSTEM, Role.DEVELOPER]
    assert agent.messages[1] == header[1]
    assert "browser" in (agent.messages[0].content[0].tools or {})
    assert end(turn(agent, "second")).answer == "b"
    assert fresh.load().messages == agent.messages
    assert [m.author.role for m in store.open(fresh.id).load().messages][:3] == [
        Role.SYSTEM,
        Role.DEVELOPER,
        Role.USER,
    ]


def test_old_transcript_turn_end_with_steps_still_loads():
    event = event_from_dict({"type": "turn_end", "status": "completed", "steps": 2})
    assert event == TurnEnd(status=TurnStatus.COMPLETED, tool_calls=2)
    assert json.loads(json.dumps(event.to_dict()))["status"] == "completed"


# -- exact prefix reuse -----------------------------------------------------------------

#: Tool calls as gpt-oss writes them: ``to=`` after the channel (harmony renders it before).
SEARCH = (
    "<|channel|>analysis<|message|>Search.<|end|><|start|>assistant<|channel|>analysis"
    ' to=browser.search <|constrain|>json<|message|>{"query": "MXFP4 block"}<|call|>'
)
OPEN = (
    "<|channel|>analysis<|message|>Open.<|end|><|start|>assistant<|channel|>analysis"
    ' to=browser.open <|constrain|>json<|message|>{"id": 0}<|call|>'
)
ANSWER = (
    "<|channel|>analysis<|message|>Answer.<|end|><|start|>assistant<|channel|>final"
    "<|message|>17 bytes 【1†L4-L6】.<|return|>"
)


def test_within_a_turn_each_call_prefills_only_the_new_tokens(replay_file):
    engine = ReplayEngine(replay_file(SEARCH, OPEN, ANSWER))
    agent = Agent(engine, corpus_toolbox())
    turn(agent, "How many bytes does an MXFP4 block take?")
    encoding = agent.encoding
    completions = [encoding.encode(c, allowed_special="all") for c in (SEARCH, OPEN)]
    for before, completion, prompt, usage in zip(
        engine.prompts[:-1], completions, engine.prompts[1:], engine.calls[1:], strict=True
    ):
        seen = before + completion  # what the engine's cache holds after the previous call
        assert prompt[: len(seen)] == seen  # the completion is kept exactly as generated
        assert usage.reused_tokens == len(seen)
        assert usage.prefilled_tokens == len(prompt) - len(seen)  # tool output and headers
        new = encoding.decode(prompt[len(seen) :])
        assert new.startswith("<|start|>browser.") and new.endswith("<|start|>assistant")


def test_across_turns_the_prefix_diverges_only_at_the_dropped_reasoning(replay_file):
    engine = ReplayEngine(replay_file(SEARCH, ANSWER, ANSWER))
    agent = Agent(engine, corpus_toolbox())
    turn(agent, "first")
    turn(agent, "second")
    first, _, second = engine.prompts
    # the first turn's prompt ends with "<|start|>assistant", which its dropped analysis
    # continued with "<|channel|>": the cache is reused up to that message's channel name
    assert engine.calls[2].reused_tokens == len(first) + 1
    assert second[: len(first)] == first
    assert "Search." not in agent.encoding.decode(second)  # reasoning of a finished turn
    assert "17 bytes" in agent.encoding.decode(second)  # its answer stays


def test_resume_renders_the_generated_tokens_not_a_re_rendering(replay_file, tmp_path):
    store = SessionStore(tmp_path / "sessions")
    session = store.create({"model": "replay"})
    original = Agent(ReplayEngine(replay_file(SEARCH)), corpus_toolbox(), session=session)
    turn(original, "first")  # a tool call, then the replay file runs out: the turn ends
    transcript = store.open(session.id).load()
    resumed = Agent(
        ReplayEngine(replay_file(ANSWER)),
        corpus_toolbox(),
        session=store.open(session.id),
        messages=transcript.messages,
        tokens=transcript.tokens,
    )
    assert resumed.render() == original.render()
    rerendered = Agent(
        ReplayEngine(replay_file(ANSWER)), corpus_toolbox(), messages=transcript.messages
    )
    assert rerendered.render() != original.render()  # harmony puts to= before the channel
