"""The data model writes and reads exactly openai-harmony's JSON."""

from __future__ import annotations

import json

import openai_harmony as oh
import pytest

from ossa import harmony
from ossa.harmony import (
    Author,
    Conversation,
    DeveloperContent,
    Message,
    ReasoningEffort,
    Role,
    SystemContent,
    TextContent,
    ToolDescription,
    ToolNamespaceConfig,
)


def build(m):
    """The same conversation built through either library's API (they share the names)."""
    system = (
        m.SystemContent.new()
        .with_reasoning_effort(m.ReasoningEffort.HIGH)
        .with_conversation_start_date("2026-11-28")
        .with_browser_tool()
        .with_python_tool()
    )
    developer = (
        m.DeveloperContent.new()
        .with_instructions("Be brief.")
        .with_function_tools(
            [m.ToolDescription.new("f", "Does f.", parameters={"type": "object", "default": None})]
        )
        .with_tools(m.ToolNamespaceConfig(name="srv", description="An MCP server.", tools=[]))
    )
    return m.Conversation.from_messages(
        [
            m.Message.from_role_and_content(m.Role.SYSTEM, system),
            m.Message.from_role_and_content(m.Role.DEVELOPER, developer),
            m.Message.from_author_and_content(m.Author.new(m.Role.USER, "alice"), "hi ünï"),
            m.Message.from_role_and_content(m.Role.ASSISTANT, "{}")
            .with_channel("commentary")
            .with_recipient("functions.f")
            .with_content_type("<|constrain|>json"),
            m.Message.from_author_and_content(m.Author.new(m.Role.TOOL, "functions.f"), "ok")
            .with_recipient("assistant")
            .with_channel("commentary"),
            m.Message.from_role_and_contents(
                m.Role.ASSISTANT, [m.TextContent(text="a"), m.TextContent(text="b")]
            ).with_channel("final"),
        ]
    )


def test_json_is_identical_to_openai_harmony():
    assert build(harmony).to_json() == build(oh).to_json()


def test_json_moves_between_libraries_unchanged():
    theirs = build(oh).to_json()
    ours = Conversation.from_json(theirs)
    assert ours.to_json() == theirs
    assert oh.Conversation.from_json(ours.to_json()).to_json() == theirs


def test_missing_fields_take_defaults_and_none_fields_are_left_out():
    system = SystemContent.new()
    system.knowledge_cutoff = None
    system.reasoning_effort = None
    assert system.to_dict() == oh.SystemContent(
        knowledge_cutoff=None, reasoning_effort=None
    ).to_dict() | {"type": "system_content"}
    loaded = SystemContent.from_dict({"type": "system_content", "model_identity": "x"})
    assert (
        loaded.knowledge_cutoff == "2024-06" and loaded.reasoning_effort is ReasoningEffort.MEDIUM
    )


def test_builtin_tool_namespaces_match_openai_harmony():
    assert ToolNamespaceConfig.browser().to_dict() == oh.ToolNamespaceConfig.browser().model_dump(
        exclude_none=True
    )
    assert ToolNamespaceConfig.python().to_dict() == oh.ToolNamespaceConfig.python().model_dump(
        exclude_none=True
    )
    ToolNamespaceConfig.browser().tools[0].parameters["required"].append("x")
    assert ToolNamespaceConfig.browser().tools[0].parameters["required"] == ["query"]


def test_plain_string_content_and_api_shape():
    msg = Message.from_dict({"role": "assistant", "content": "hello", "channel": "final"})
    assert msg.content == [TextContent(text="hello")] and msg.channel == "final"
    assert msg.author == Author(role=Role.ASSISTANT) and msg.text == "hello"
    assert Role.TOOL == "tool" and Author.new(Role.TOOL, "browser.search").name == "browser.search"
    dev = DeveloperContent.new().with_function_tools([ToolDescription.new("g", "G")])
    assert dev.tools is not None and list(dev.tools) == ["functions"]


@pytest.mark.parametrize(
    "bad, error",
    [
        ('{"messages": [{"role": "robot", "content": []}]}', "Unknown role: 'robot'"),
        ('{"messages": [{"role": "user"}]}', "missing 'content'"),
        ('{"messages": [{"role": "user", "content": [{"type": "image"}]}]}', "Unknown content"),
        ('{"msgs": []}', "must be a JSON object"),
    ],
)
def test_bad_json_is_a_clear_value_error(bad, error):
    with pytest.raises(ValueError, match=error):
        Conversation.from_json(bad)


def test_incomplete_flag_is_written_only_when_set():
    msg = Message.from_role_and_content(Role.ASSISTANT, "cut")
    assert "incomplete" not in msg.to_dict()
    msg.incomplete = True
    assert json.loads(msg.to_json())["incomplete"] is True
    assert Message.from_dict(msg.to_dict()).incomplete
