"""Tolerant mode (``strict=False``, the agent's): each recovery of what openai-harmony loses."""

from __future__ import annotations

import pytest

from ossa.harmony import Role, StreamableParser, StreamState


def parse(enc, text: str, role: Role | None = Role.ASSISTANT) -> list[dict]:
    tokens = enc.encode(text, allowed_special="all")
    return [
        m.to_dict() for m in enc.parse_messages_from_completion_tokens(tokens, role, strict=False)
    ]


def assistant(text: str, incomplete: bool = False, **header) -> dict:
    out = {"role": "assistant", "name": None, "content": [{"type": "text", "text": text}]}
    out.update({k: v for k, v in header.items() if v is not None})
    if incomplete:
        out["incomplete"] = True
    return out


ANALYSIS = "<|channel|>analysis<|message|>x<|end|>"
CALL = {"channel": "commentary", "recipient": "functions.f", "content_type": "<|constrain|>json"}

GOLDEN = {
    "refusal without <|message|> first": (
        "I must refuse<|end|><|start|>assistant<|channel|>analysis<|message|>x<|end|>",
        [assistant("I must refuse"), assistant("x", channel="analysis")],
    ),
    "refusal without <|message|> later, channel kept, spacing kept": (
        ANALYSIS + "<|start|>assistant<|channel|>final I  cannot\nhelp.<|return|>",
        [assistant("x", channel="analysis"), assistant("I  cannot\nhelp.", channel="final")],
    ),
    "refusal ended by a new <|start|>": (
        "Sorry, no.<|start|>assistant<|channel|>final<|message|>ok<|end|>",
        [assistant("Sorry, no."), assistant("ok", channel="final")],
    ),
    "recipient after the channel": (
        "<|channel|>commentary to=functions.f <|constrain|>json<|message|>{}<|call|>",
        [assistant("{}", **CALL)],
    ),
    "recipient in the role position": (
        "to=functions.f<|channel|>commentary<|constrain|>json<|message|>{}<|call|>",
        [assistant("{}", **CALL)],
    ),
    "recipient in both positions": (
        "to=functions.f<|channel|>commentary to=functions.f <|constrain|>json<|message|>{}<|call|>",
        [assistant("{}", **CALL)],
    ),
    "<|constrain|>json is never a recipient": (
        "<|channel|>final <|constrain|>json<|message|>{}<|end|>",
        [assistant("{}", channel="final", content_type="<|constrain|>json")],
    ),
    "<|constrain|> json with a space": (
        "<|channel|>commentary to=functions.f <|constrain|> json<|message|>{}<|call|>",
        [assistant("{}", **CALL)],
    ),
    "a bare json is never a recipient": (
        "<|channel|>final json<|message|>{}<|end|>",
        [assistant("{}", channel="final", content_type="json")],
    ),
    "functions.browser.search is the built-in browser": (
        "<|channel|>analysis to=functions.browser.search<|message|>{}<|call|>",
        [assistant("{}", channel="analysis", recipient="browser.search")],
    ),
    "functions.python is the built-in python": (
        "<|channel|>analysis to=functions.python code<|message|>1<|call|>",
        [assistant("1", channel="analysis", recipient="python", content_type="code")],
    ),
    "a repeated <|start|>assistant after the prompt's": (
        "<|start|>assistant<|channel|>final<|message|>hi<|end|>",
        [assistant("hi", channel="final")],
    ),
    "EOS inside content": (
        ANALYSIS + "<|start|>assistant<|channel|>final<|message|>cut o",
        [assistant("x", channel="analysis"), assistant("cut o", True, channel="final")],
    ),
    "EOS inside a header": (
        ANALYSIS + "<|start|>assistant<|channel|>fin",
        [assistant("x", channel="analysis"), assistant("", True, channel="fin")],
    ),
    "EOS right after <|start|> loses nothing": (
        ANALYSIS + "<|start|>",
        [assistant("x", channel="analysis")],
    ),
    "a forgotten <|end|> before <|start|>": (
        "<|channel|>final<|message|>a<|start|>assistant<|channel|>final<|message|>b<|end|>",
        [assistant("a", channel="final"), assistant("b", channel="final")],
    ),
    "a forgotten <|end|><|start|>assistant before <|channel|>": (
        "<|channel|>analysis<|message|>a<|channel|>final<|message|>b<|end|>",
        [assistant("a", channel="analysis"), assistant("b", channel="final")],
    ),
    "control tokens inside content are not text": (
        "<|channel|>final<|message|>a <|constrain|><|reserved_200100|><|message|>b<|end|>",
        [assistant("a b", channel="final")],
    ),
    "a stray stop token after a message": (
        "<|channel|>final<|message|>a<|end|><|return|>",
        [assistant("a", channel="final")],
    ),
    "text after <|end|> without <|start|>": (
        "<|channel|>final<|message|>a<|end|>more<|end|>",
        [assistant("a", channel="final"), assistant("more")],
    ),
    "an empty channel": ("<|channel|><|message|>x<|end|>", [assistant("x")]),
    "an empty completion": ("", []),
}


@pytest.mark.parametrize("name", list(GOLDEN))
def test_recovery(enc, name):
    text, expected = GOLDEN[name]
    assert parse(enc, text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "<|start|>functions.f<|message|>{}<|end|>",
            {"role": "tool", "name": "functions.f", "content": [{"type": "text", "text": "{}"}]},
        ),
        (
            "<|start|>user:alice<|message|>hi<|end|>",
            {"role": "user", "name": "alice", "content": [{"type": "text", "text": "hi"}]},
        ),
        (
            "<|start|><|start|>assistant<|channel|>final<|message|>a<|end|>",
            assistant("a", channel="final"),
        ),
        ("<|start|><|channel|>final<|message|>a<|end|>", assistant("a", channel="final")),
    ],
)
def test_headers_from_start(enc, text, expected):
    """What harmony renders (tool results without to=, author names) parses back."""
    assert parse(enc, text, role=None) == [expected]


def test_bad_bytes_become_replacement_characters(enc):
    tokens = [200005, 17196, 200008, 9552, 64, 200007]  # 9552 = space + half a 4-byte sequence
    assert parse_tokens(enc, tokens) == [assistant(" \ufffda", channel="final")]
    tokens = [200005, 17196, 200008, 64, 201089, 65, 200007]  # an unknown id: marked, not dropped
    assert parse_tokens(enc, tokens) == [assistant("a\ufffdb", channel="final")]


def parse_tokens(enc, tokens: list[int]) -> list[dict]:
    messages = enc.parse_messages_from_completion_tokens(tokens, Role.ASSISTANT, strict=False)
    return [m.to_dict() for m in messages]


def test_deltas_hold_text_only_and_add_up_to_the_content(enc):
    text = (
        "<|channel|>analysis<|message|>🙂 naïve<|reserved_200100|> 日本<|start|>assistant"
        "<|channel|>final<|message|>done 🙂<|return|>"
    )
    parser = StreamableParser(enc, Role.ASSISTANT, strict=False)
    deltas = []
    seen_states = set()
    for token in enc.encode(text, allowed_special="all"):
        parser.process(token)
        seen_states.add(parser.state)
        if parser.last_content_delta is not None:
            deltas.append(parser.last_content_delta)
            assert "<|" not in parser.last_content_delta
            assert parser.current_content.endswith(parser.last_content_delta)
    parser.process_eos()
    assert "".join(deltas) == "🙂 naïve 日本done 🙂"
    assert [m.text for m in parser.messages] == ["🙂 naïve 日本", "done 🙂"]
    assert seen_states == {StreamState.HEADER, StreamState.CONTENT, StreamState.EXPECT_START}


def test_utf8_split_across_tokens_waits_for_the_rest(enc):
    parser = StreamableParser(enc, Role.ASSISTANT, strict=False)
    for token in (200005, 17196, 200008):
        parser.process(token)
    flamingo = enc.tokenizer.encode_ordinary(" 🦩")
    assert flamingo == [9552, 99, 102]  # " \xf0\x9f", "\xa6", "\xa9"
    parser.process(flamingo[0])
    assert parser.last_content_delta == " "
    parser.process(flamingo[1])
    assert parser.last_content_delta is None and parser.current_content == " "
    parser.process(flamingo[2])
    assert parser.last_content_delta == "🦩" and parser.current_content == " 🦩"


def test_getters_while_streaming_a_tool_call(enc):
    parser = StreamableParser(enc, Role.ASSISTANT, strict=False)
    header = "<|channel|>commentary to=functions.browser.open <|constrain|>json<|message|>"
    for token in enc.encode(header + '{"id": 3', allowed_special="all"):
        parser.process(token)
    assert parser.current_role is Role.ASSISTANT
    assert parser.current_channel == "commentary"
    assert parser.current_recipient == "browser.open"
    assert parser.current_content_type == "<|constrain|>json"
    assert parser.current_content == '{"id": 3'
    parser.process(200012)
    assert parser.state is StreamState.EXPECT_START and parser.current_recipient is None
    assert parser.messages[0].recipient == "browser.open" and not parser.messages[0].incomplete
