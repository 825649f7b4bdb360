"""Tolerant mode (``strict=False``, the agent's): each recovery of what openai-harmony loses."""

from __future__ import annotations

import pytest

from ossa.harmony import Message, Role, StreamableParser, StreamState


def parse(enc, text: str, role: Role | None = Role.ASSISTANT) -> list[dict]:
    tokens = enc.encode(text, allowed_special="all")
    return [
        m.to_dict() for m in enc.parse_messages_from_completion_tokens(tokens, role, strict=False)
    ]


def assistant(text: str, incomplete: bool = False, header_rest: str | None = None, **header):
    out = {"role": "assistant", "name": None, "content": [{"type": "text", "text": text}]}
    out.update({k: v for k, v in header.items() if v is not None})
    if incomplete:
        out["incomplete"] = True
    if header_rest is not None:
        out["header_rest"] = header_rest
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


# -- equality, content types, channels, words: nothing changed, merged or lost ----------------


def test_an_incomplete_message_equals_the_same_message_built_by_hand(enc):
    tokens = enc.encode("<|channel|>final<|message|>cut o", allowed_special="all")
    [parsed] = enc.parse_messages_from_completion_tokens(tokens, Role.ASSISTANT, strict=False)
    by_hand = Message.from_role_and_content(Role.ASSISTANT, "cut o").with_channel("final")
    assert parsed.incomplete and not by_hand.incomplete
    assert parsed == by_hand
    assert parsed.to_dict() == {**by_hand.to_dict(), "incomplete": True}


HEADERS = {
    "<|constrain|>code after the recipient": (
        "<|channel|>analysis to=python <|constrain|>code<|message|>1<|call|>",
        assistant("1", channel="analysis", recipient="python", content_type="<|constrain|>code"),
    ),
    "<|constrain|>code in a header without <|message|> is no text": (
        "<|channel|>analysis <|constrain|>code print(1)<|call|>",
        assistant("print(1)", channel="analysis", content_type="<|constrain|>code"),
    ),
    "a channel name without its marker is the channel, not the content type": (
        "commentary to=functions.f<|message|>{}<|call|>",
        assistant("{}", channel="commentary", recipient="functions.f"),
    ),
    "a channel name beside the channel is kept, not the content type": (
        "<|channel|>commentary analysis to=functions.f<|message|>{}<|call|>",
        assistant("{}", channel="commentary", recipient="functions.f", header_rest="analysis"),
    ),
    "a second channel is kept": (
        "<|channel|>final<|channel|>analysis<|message|>x<|end|>",
        assistant("x", channel="final", header_rest="<|channel|>analysis"),
    ),
    "a word past recipient and content type is kept": (
        "<|channel|>commentary to=functions.f <|constrain|>json extra<|message|>{}<|call|>",
        assistant("{}", **CALL, header_rest="extra"),
    ),
    "a second recipient is kept as written": (
        "<|channel|>commentary to=a to=functions.b<|message|>{}<|call|>",
        assistant("{}", channel="commentary", recipient="a", header_rest="to=functions.b"),
    ),
    "a second content type is kept": (
        "<|channel|>commentary to=functions.f <|constrain|>json code<|message|>{}<|call|>",
        assistant("{}", **CALL, header_rest="code"),
    ),
    "three bare words: openai-harmony's reading, the first kept": (
        "<|channel|>commentary a b c<|message|>{}<|call|>",
        assistant("{}", channel="commentary", recipient="b", content_type="c", header_rest="a"),
    ),
}


@pytest.mark.parametrize("name", list(HEADERS))
def test_header_words_are_placed_or_kept(enc, name):
    text, expected = HEADERS[name]
    [message] = parse(enc, text)
    assert message == expected


def test_kept_header_words_travel_in_json_but_do_not_change_equality(enc):
    tokens = enc.encode(HEADERS["a second channel is kept"][0], allowed_special="all")
    [parsed] = enc.parse_messages_from_completion_tokens(tokens, Role.ASSISTANT, strict=False)
    assert parsed.header_rest == "<|channel|>analysis"
    assert Message.from_dict(parsed.to_dict()).header_rest == "<|channel|>analysis"
    assert parsed == Message.from_role_and_content(Role.ASSISTANT, "x").with_channel("final")


def test_unknown_ids_are_marked_like_openai_harmony_and_the_text_goes_on(enc):
    parser = StreamableParser(enc, Role.ASSISTANT, strict=False)
    deltas = []
    for token in [200005, 17196, 200008, 64, 201089, 65, 999_999, 200007]:
        parser.process(token)
        deltas.append(parser.last_content_delta)
    assert deltas == [None, None, None, "a", "\ufffd", "b", "\ufffd", None]
    assert parser.messages[0].text == "a\ufffdb\ufffd"
    # In a header the mark stays visible too, never a recipient or a content type.
    header = [200005, 17196, 220, 201089, 200008, 64, 200007]  # <|channel|>final <bad><|message|>
    [message] = enc.parse_messages_from_completion_tokens(header, Role.ASSISTANT, strict=False)
    assert message.to_dict() == assistant("a", channel="final", header_rest="\ufffd")
    glued = [200005, 17196, 201089, 200008, 64, 200007]  # <|channel|>final<bad><|message|>
    [message] = enc.parse_messages_from_completion_tokens(glued, Role.ASSISTANT, strict=False)
    assert message.to_dict() == assistant("a", channel="final", header_rest="\ufffd")
