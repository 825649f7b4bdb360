"""Rendering messages and conversations: golden texts, the dropping rule, errors."""

from __future__ import annotations

import openai_harmony as oh
import pytest

from ossa import harmony
from ossa.harmony import (
    Author,
    Conversation,
    DeveloperContent,
    Message,
    RenderOptions,
    Role,
    SystemContent,
    ToolDescription,
    ToolNamespaceConfig,
)
from ossa.harmony.render import rust_lines

DEFAULT_SYSTEM = (
    "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n"
    "Knowledge cutoff: 2024-06\n\nReasoning: medium\n\n"
    "# Valid channels: analysis, commentary, final. "
    "Channel must be included for every message.<|end|>"
)


def msg(role: Role, text: str, channel: str | None = None) -> Message:
    m = Message.from_role_and_content(role, text)
    return m.with_channel(channel) if channel else m


def convo(*messages: Message) -> Conversation:
    return Conversation.from_messages(list(messages))


def test_default_system_message(enc):
    tokens = enc.render(Message.from_role_and_content(Role.SYSTEM, SystemContent.new()))
    assert enc.decode(tokens) == DEFAULT_SYSTEM


def test_tool_call_header_and_pieces_are_encoded_separately(enc):
    call = (
        msg(Role.ASSISTANT, "{}", "commentary")
        .with_recipient("functions.get_weather")
        .with_content_type("<|constrain|>json")
    )
    tokens = enc.render(call)
    assert tokens[:2] == [200006, 173781]
    assert tokens[2:7] == [316, 28, 44580, 775, 170154]  # " to=functions.get_weather"
    assert tokens[7:11] == [200005, 12606, 815, 220]  # <|channel|>commentary " "
    assert tokens[11:14] == [200003, 4108, 200008]  # <|constrain|>json<|message|>
    assert tokens[-1] == 200012  # <|call|>
    two_texts = (
        Message.from_role_and_contents(Role.USER, []).adding_content("a").adding_content("b")
    )
    assert enc.render(two_texts)[2:5] == [200008, 64, 65]


def test_special_text_in_content_stays_text(enc):
    assert enc.render(msg(Role.USER, "<|end|>"))[3:8] == [27, 91, 419, 91, 29]


SYSTEM_WITH_TOOLS = (
    SystemContent.new()
    .with_conversation_start_date("2025-06-28")
    .with_python_tool()
    .with_browser_tool()
    .with_tools(ToolNamespaceConfig(name="Alpha", description="first\r\nsecond\r", tools=[]))
    .with_tools(ToolNamespaceConfig(name="zz", tools=[]))
)
FUNCTIONS = DeveloperContent.new().with_function_tools(
    [ToolDescription.new("f", "line one\n\nline three\n"), ToolDescription.new("g", "")]
)
CASES = {
    "tools and namespaces sorted by key": convo(
        Message.from_role_and_content(Role.SYSTEM, SYSTEM_WITH_TOOLS),
        Message.from_role_and_content(Role.DEVELOPER, FUNCTIONS.with_instructions("")),
        msg(Role.USER, "hi"),
    ),
    "drop analysis before the first final": convo(
        msg(Role.USER, "q1"),
        msg(Role.ASSISTANT, "think1", "analysis"),
        msg(Role.ASSISTANT, "a1", "final"),
        msg(Role.USER, "q2"),
        msg(Role.ASSISTANT, "think2", "analysis"),
        msg(Role.ASSISTANT, "a2", "final"),
    ),
    "nothing dropped while a tool turn runs": convo(
        msg(Role.USER, "q1"),
        msg(Role.ASSISTANT, "think1", "analysis"),
        msg(Role.ASSISTANT, "a1", "final"),
        msg(Role.ASSISTANT, "think2", "analysis"),
        msg(Role.ASSISTANT, "x = 1", "analysis").with_recipient("python"),
    ),
    "recipient all, names, tool results": convo(
        Message.from_author_and_content(Author.new(Role.USER, "alice"), "hi"),
        msg(Role.ASSISTANT, "x", "commentary").with_recipient("all").with_content_type("json"),
        msg(Role.USER, "y").with_recipient("assistant").with_content_type("<|constrain|>"),
        Message.from_author_and_content(Author.new(Role.TOOL, "python"), "out"),
        msg(Role.ASSISTANT, "done", "final").with_recipient("functions.f"),
    ),
    "empty conversation": convo(),
}


def empty_contents(m):
    """Fields set to None leave their lines out (built in either library: JSON would refill them)."""
    system = m.SystemContent(
        model_identity="",
        reasoning_effort=None,
        knowledge_cutoff=None,
        channel_config=m.ChannelConfig(valid_channels=[], channel_required=False),
    )
    return m.Conversation.from_messages(
        [
            m.Message.from_role_and_content(m.Role.SYSTEM, system),
            m.Message.from_role_and_content(m.Role.DEVELOPER, m.DeveloperContent.new()),
            m.Message.from_role_and_content(
                m.Role.DEVELOPER, m.DeveloperContent.new().with_function_tools([])
            ),
        ]
    )


def test_empty_contents_render_like_openai_harmony(render_both, enc):
    ours, theirs = render_both(empty_contents(harmony), "plain", theirs_convo=empty_contents(oh))
    assert ours == theirs
    assert enc.decode(ours[1]).startswith("<|start|>system<|message|><|end|>")


@pytest.mark.parametrize("mode", ["plain", "completion", "training"])
@pytest.mark.parametrize("keep_analysis", [False, True])
@pytest.mark.parametrize("name", list(CASES))
def test_conversations_render_like_openai_harmony(render_both, name, mode, keep_analysis):
    ours, theirs = render_both(CASES[name], mode, keep_analysis)
    assert ours == theirs
    assert ours[0] == "ok"


def test_dropping_rule_and_training_return(enc):
    tokens = enc.render_conversation_for_training(CASES["drop analysis before the first final"])
    text = enc.decode(tokens)
    assert "think1" not in text and "think2" in text
    assert tokens[-1] == 200002
    kept = enc.render_conversation(
        CASES["drop analysis before the first final"],
        config=harmony.RenderConversationConfig(auto_drop_analysis=False),
    )
    assert "think1" in enc.decode(kept)


def test_functions_line_follows_the_conversation(enc):
    system = Message.from_role_and_content(Role.SYSTEM, SystemContent.new())
    line = "Calls to these tools must go to the commentary channel: 'functions'."
    assert line not in enc.decode(enc.render(system))
    options = RenderOptions(conversation_has_function_tools=True)
    assert line in enc.decode(enc.render(system, options))
    developer = Message.from_role_and_content(Role.DEVELOPER, FUNCTIONS)
    assert line in enc.decode(enc.render_conversation(convo(system, developer)))


@pytest.mark.parametrize(
    "bad",
    [
        Message.from_role_and_content(Role.TOOL, "no name"),
        Message.from_role_and_content(Role.USER, SystemContent.new()),
        Message.from_role_and_content(Role.ASSISTANT, DeveloperContent.new()),
    ],
)
def test_render_errors_match_openai_harmony(render_both, bad):
    ours, theirs = render_both(convo(bad), "completion")
    assert ours == theirs
    assert ours[0] == "error"


@pytest.mark.parametrize(
    "text, lines",
    [
        ("", []),
        ("a\n", ["a"]),
        ("a\n\n", ["a", ""]),
        ("a\r\nb\r", ["a", "b\r"]),
        ("\n", [""]),
        ("a\x0bb\u2028c", ["a\x0bb\u2028c"]),
    ],
)
def test_rust_lines(text, lines):
    assert rust_lines(text) == lines
