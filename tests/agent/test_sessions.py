"""Session transcripts: durable appends, torn lines, lookup by id."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ossa.agent.events import ToolCallFinished, Usage, event_from_dict
from ossa.agent.sessions import SessionError, SessionStore
from ossa.harmony import Message, Role, SystemContent


def test_messages_and_events_round_trip(tmp_path: Path):
    store = SessionStore(tmp_path)
    session = store.create({"model": "m", "effort": "low"})
    system = Message.from_role_and_content(Role.SYSTEM, SystemContent.new())
    user = Message.from_role_and_content(Role.USER, "How tall is it?")
    session.append_message(system)
    session.append_message(user)
    event = ToolCallFinished(step=1, recipient="python", arguments="print(1)", output="1")
    session.append_event(event)
    transcript = store.open(session.id).load()
    assert transcript.meta["model"] == "m"
    assert transcript.messages == [system, user]
    assert transcript.events == [event]
    assert transcript.title == "How tall is it?"


def test_header_record_replaces_the_leading_messages(tmp_path: Path):
    session = SessionStore(tmp_path).create({})
    old = Message.from_role_and_content(Role.SYSTEM, SystemContent.new())
    user = Message.from_role_and_content(Role.USER, "q")
    session.append_message(old)
    session.append_message(user)
    new = [
        Message.from_role_and_content(
            Role.SYSTEM, SystemContent.new().with_conversation_start_date("2026-01-01")
        ),
        Message.from_role_and_content(Role.DEVELOPER, "# Instructions\n\nBe brief."),
    ]
    session.replace_header(new)
    assert session.load().messages == [*new, user]


def test_a_torn_last_line_is_skipped_and_appends_start_fresh(tmp_path: Path):
    session = SessionStore(tmp_path).create({})
    session.append_message(Message.from_role_and_content(Role.USER, "kept"))
    with session.path.open("a") as f:
        f.write('{"kind": "message", "mess')  # killed mid-write
    reopened = SessionStore(tmp_path).open(session.id)
    reopened.append_message(Message.from_role_and_content(Role.USER, "after"))
    transcript = reopened.load()
    assert [m.content[0].text for m in transcript.messages] == ["kept", "after"]
    assert transcript.skipped_lines == 1
    assert all(json.loads(line) for line in session.path.read_text().splitlines()[:2])


def test_open_by_prefix_last_and_errors(tmp_path: Path):
    store = SessionStore(tmp_path)
    with pytest.raises(SessionError, match="no session"):
        store.open("last")
    a, b = store.create({}), store.create({})
    assert store.open("last").id == b.id
    assert store.open(a.id).id == a.id
    assert store.ids() == sorted([a.id, b.id])
    with pytest.raises(SessionError, match="matches 2 sessions"):
        store.open(a.id[:4])


def test_events_round_trip_and_reject_unknown_types():
    usage = Usage(prompt_tokens=3, reused_tokens=1, output_tokens=2, model_calls=1)
    assert event_from_dict(usage.to_dict()) == usage
    with pytest.raises(ValueError, match="unknown event type"):
        event_from_dict({"type": "bogus"})


def test_remove_and_summary(tmp_path: Path):
    store = SessionStore(tmp_path)
    session = store.create({"model": "m"})
    session.append_message(Message.from_role_and_content(Role.USER, "What  is\nit?"))
    summary = session.load().summary()
    assert summary["id"] == session.id
    assert (summary["model"], summary["messages"], summary["title"]) == ("m", 1, "What is it?")
    assert store.remove("last").id == session.id
    assert store.ids() == []
    with pytest.raises(SessionError, match="no session"):
        store.remove(session.id)


def test_a_lone_surrogate_in_tool_output_is_kept_in_the_transcript(
    tmp_path: Path, replay_file, harmony
):
    """A cell's repr or a page may carry a lone surrogate: the turn ends normally, nothing lost."""
    from ossa.agent.engines import ReplayEngine
    from ossa.agent.loop import Agent
    from ossa.tools import build_toolbox
    from ossa.tools.base import message_text

    def odd(key: str) -> str:
        """Return text with a lone surrogate, as ``repr`` of a broken string can."""
        return "before \ud800 after"

    replay = replay_file(harmony.call("functions.odd", '{"key": "a"}'), harmony.final("Ok."))
    store = SessionStore(tmp_path / "sessions")
    session = store.create({"model": "replay"})
    toolbox = build_toolbox([], functions=[odd], plugins=False)
    agent = Agent(ReplayEngine(replay), toolbox, session=session)
    events = list(agent.run("go"))
    assert events[-1].status == "completed"
    loaded = store.open(session.id).load()
    assert loaded.skipped_lines == 0
    assert loaded.messages == agent.messages
    assert any("before \ud800 after" in message_text(m) for m in loaded.messages)
    session.path.read_bytes().decode("utf-8")  # the file itself is valid UTF-8


def test_jsontext_escapes_only_surrogates():
    from ossa import jsontext

    value = {"k\udfff": ["é 😀 \ud800", 1]}
    text = jsontext.dumps(value)
    text.encode("utf-8")
    assert "é" in text and "😀" in text and "\\ud800" in text and "\\udfff" in text
    assert json.loads(text) == value
