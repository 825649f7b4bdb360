"""The context budget: what shrinks first, what never goes, and the error."""

from __future__ import annotations

import pytest

from ossa.agent.budget import ContextBudgetError, fit
from ossa.harmony import (
    Author,
    Conversation,
    Message,
    Role,
    SystemContent,
    TextContent,
    load_harmony_encoding,
)

ENC = load_harmony_encoding()


def count(messages: list[Message]) -> int:
    return len(
        ENC.render_conversation_for_completion(Conversation.from_messages(messages), Role.ASSISTANT)
    )


def tool(text: str) -> Message:
    author = Author.new(Role.TOOL, "browser.search")
    return (
        Message.from_author_and_content(author, TextContent(text=text))
        .with_recipient("assistant")
        .with_channel("commentary")
    )


def say(role: Role, text: str, channel: str | None = None) -> Message:
    message = Message.from_role_and_content(role, text)
    return message.with_channel(channel) if channel else message


def conversation() -> list[Message]:
    long = "lorem ipsum dolor sit amet " * 60
    return [
        Message.from_role_and_content(Role.SYSTEM, SystemContent.new()),
        say(Role.DEVELOPER, "# Instructions\n\nCite sources."),
        say(Role.USER, "old question"),
        say(Role.ASSISTANT, "{}", "commentary").with_recipient("browser.search"),
        tool("OLD " + long),
        say(Role.ASSISTANT, "old answer", "final"),
        say(Role.USER, "new question"),
        say(Role.ASSISTANT, "{}", "commentary").with_recipient("browser.search"),
        tool("NEW1 " + long),
        say(Role.ASSISTANT, "{}", "commentary").with_recipient("browser.search"),
        tool("NEW2 " + long),
    ]


def test_fits_unchanged_when_there_is_room():
    messages = conversation()
    fitted = fit(messages, count(messages), ENC, count)
    assert fitted.messages == messages
    assert (fitted.shortened, fitted.dropped) == (0, 0)


def test_old_tool_outputs_shrink_first_with_a_marker():
    messages = conversation()
    fitted = fit(messages, count(messages) - 100, ENC, count)
    assert (fitted.shortened, fitted.dropped) == (1, 0)
    assert fitted.messages[4].content[0].text.startswith("OLD lorem")
    assert "output shortened" in fitted.messages[4].content[0].text
    assert fitted.messages[8:] == messages[8:]  # the current turn is untouched
    assert (
        fit(messages, count(messages) - 100, ENC, count).messages == fitted.messages
    )  # deterministic


def test_then_earlier_turns_then_current_tool_outputs_but_never_the_newest():
    messages = conversation()
    protected = [messages[0], messages[1], *messages[6:]]
    fitted = fit(messages, count(protected) - 100, ENC, count)
    assert fitted.dropped == 4
    assert fitted.messages[:2] == messages[:2]
    assert [m.content[0].text for m in fitted.messages[2:4]] == ["new question", "{}"]
    assert "output shortened" in fitted.messages[4].content[0].text
    assert fitted.messages[-1] == messages[-1]


def test_error_when_the_protected_part_cannot_fit():
    messages = conversation()
    with pytest.raises(ContextBudgetError, match="current turn must fit"):
        fit(messages, 300, ENC, count)
