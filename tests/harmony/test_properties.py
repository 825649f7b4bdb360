"""Property-based differential tests: random conversations through ossa and openai-harmony."""

from __future__ import annotations

import json

import openai_harmony as oh
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ossa.harmony import (
    Conversation,
    Message,
    RenderConversationConfig,
    Role,
    StreamableParser,
    StreamState,
)

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TRICKY = [
    "<|end|>", "<|start|>", "<|channel|>", "<|message|>", "<|constrain|>", " to=x", "json",
    "\n", "\r\n", " ", "\u3000", "🙂", "日本", "é", "\\", '"', "// ", "a\rb", "",
]  # fmt: skip
texts = st.lists(st.one_of(st.text(max_size=8), st.sampled_from(TRICKY)), max_size=4).map("".join)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    texts,
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(texts, inner, max_size=3)),
    max_leaves=6,
)
TYPES = ["string", "number", "integer", "boolean", "null", "array", "object", "any", "weird"]


def _schema(children):
    keys = {
        "type": st.one_of(st.sampled_from(TYPES), st.lists(st.sampled_from(TYPES), max_size=3)),
        "description": st.one_of(texts, json_scalars),
        "title": texts,
        "default": json_values,
        "enum": st.lists(st.one_of(texts, json_scalars), max_size=3),
        "nullable": st.one_of(st.booleans(), st.none()),
        "examples": st.lists(st.one_of(texts, json_scalars), max_size=3),
        "items": children,
        "properties": st.dictionaries(texts, children, max_size=3),
        "required": st.lists(st.one_of(texts, st.integers()), max_size=3),
        "oneOf": st.lists(children, max_size=3),
    }
    return st.fixed_dictionaries({}, optional=keys)


schemas = st.recursive(
    st.fixed_dictionaries(
        {"type": st.sampled_from(TYPES)}, optional={"description": texts, "default": json_values}
    ),
    _schema,
    max_leaves=8,
)
object_schemas = st.builds(
    lambda props, req: {"type": "object", "properties": props, "required": req},
    st.dictionaries(texts, schemas, max_size=4),
    st.lists(texts, max_size=2),
)
tools = st.fixed_dictionaries(
    {"name": texts, "description": texts},
    optional={"parameters": st.one_of(st.none(), object_schemas, schemas)},
)
namespaces = st.fixed_dictionaries(
    {"name": texts, "tools": st.lists(tools, max_size=3)},
    optional={"description": st.one_of(st.none(), texts)},
)
namespace_maps = st.one_of(
    st.none(),
    st.dictionaries(
        st.sampled_from(["functions", "browser", "python", "Alpha", "zz", "srv"]),
        namespaces,
        max_size=3,
    ),
)
system_contents = st.fixed_dictionaries(
    {"type": st.just("system_content")},
    optional={
        "model_identity": st.one_of(st.none(), texts),
        "reasoning_effort": st.sampled_from([None, "Low", "Medium", "High"]),
        "conversation_start_date": st.one_of(st.none(), texts),
        "knowledge_cutoff": st.one_of(st.none(), texts),
        "channel_config": st.one_of(
            st.none(),
            st.fixed_dictionaries(
                {"valid_channels": st.lists(texts, max_size=3), "channel_required": st.booleans()}
            ),
        ),
        "tools": namespace_maps,
    },
)
developer_contents = st.fixed_dictionaries(
    {"type": st.just("developer_content")},
    optional={"instructions": st.one_of(st.none(), texts), "tools": namespace_maps},
)
text_contents = st.builds(lambda t: {"type": "text", "text": t}, texts)
CHANNELS = st.sampled_from([None, "analysis", "commentary", "final"]) | texts
RECIPIENTS = st.sampled_from([None, "all", "assistant", "functions.f", "browser.search", "python"])
CONTENT_TYPES = st.sampled_from([None, "<|constrain|>json", "json", "code", "<|constrain|>"])


@st.composite
def messages(draw) -> dict:
    role = draw(st.sampled_from([r.value for r in Role]))
    content = {
        "system": st.lists(system_contents, min_size=1, max_size=1),
        "developer": st.lists(developer_contents, min_size=1, max_size=1),
    }.get(role, st.lists(text_contents, max_size=2))
    out = {"role": role, "name": draw(st.sampled_from([None, "alice", "functions.f"]) | texts)}
    if role == "tool" and draw(st.booleans()):
        out["name"] = draw(st.sampled_from(["functions.f", "browser.search", "python"]))
    out["content"] = draw(content)
    for key, values in (
        ("channel", CHANNELS),
        ("recipient", RECIPIENTS | texts),
        ("content_type", CONTENT_TYPES | texts),
    ):
        value = draw(values)
        if value is not None:
            out[key] = value
    return out


conversations = st.lists(messages(), max_size=6).map(lambda ms: {"messages": ms})


@SETTINGS
@given(conversations, st.booleans())
def test_render_modes_match(render_both, data, keep_analysis):
    payload = json.dumps(data)
    ours = Conversation.from_json(payload)
    theirs = oh.Conversation.from_json(payload)
    for mode in ("plain", "completion", "training"):
        ours_tokens, theirs_tokens = render_both(ours, mode, keep_analysis, theirs)
        assert ours_tokens == theirs_tokens


@st.composite
def completion_messages(draw) -> dict:
    """Messages as gpt-oss completions hold them: assistant turns and tool results."""
    text = draw(texts)
    if draw(st.booleans()):
        recipient = draw(
            st.sampled_from([None, "functions.get_weather", "browser.search", "python"])
        )
        out = {"role": "assistant", "name": None, "content": [{"type": "text", "text": text}]}
        out["channel"] = draw(st.sampled_from(["analysis", "commentary", "final"]))
        if recipient is not None:
            out["recipient"] = recipient
            content_type = draw(st.sampled_from([None, "<|constrain|>json", "json", "code"]))
            if content_type is not None:
                out["content_type"] = content_type
        return out
    name = draw(st.sampled_from(["functions.get_weather", "browser.search", "python"]))
    return {
        "role": "tool",
        "name": name,
        "content": [{"type": "text", "text": text}],
        "channel": draw(st.sampled_from(["analysis", "commentary"])),
        "recipient": "assistant",
    }


completions = st.lists(completion_messages(), min_size=1, max_size=5)


def rendered(enc, dicts: list[dict]) -> list[int]:
    convo = Conversation.from_messages([Message.from_dict(d) for d in dicts])
    return enc.render_conversation(convo, RenderConversationConfig(auto_drop_analysis=False))


@SETTINGS
@given(completions)
def test_parsing_rendered_completions_matches(enc, parse_both, dicts):
    tokens = rendered(enc, dicts)
    ours, theirs = parse_both(tokens, None)
    assert ours == theirs == ("ok", dicts)
    tolerant, _ = parse_both(tokens, None, strict=False)
    assert tolerant == ("ok", dicts)


@SETTINGS
@given(completions, st.booleans())
def test_streaming_getters_agree_after_every_token(enc, stream_both, dicts, strict):
    tokens = rendered(enc, dicts)
    stream_both(tokens, None, strict=strict)
    if dicts[0]["role"] == "assistant":  # as after a prompt ending in <|start|>assistant
        stream_both(tokens[2:], Role.ASSISTANT, strict=strict)


# Token soup: control tokens, text, split UTF-8 (9552 99 102 is " 🦩"), header words, unknown ids.
SOUP = [
    200006, 200007, 200008, 200005, 200003, 200002, 200012, 200100, 201089,
    173781, 1428, 17952, 35644, 17196, 12606, 815, 316, 28, 44580, 775, 4108, 5701, 220,
    64, 65, 9552, 99, 102, 3490, 25, 17360,
]  # fmt: skip
soups = st.lists(st.sampled_from(SOUP), max_size=25)


@SETTINGS
@given(soups, st.sampled_from([None, Role.ASSISTANT]))
def test_strict_mode_matches_on_any_token_sequence(parse_both, stream_both, tokens, role):
    ours, theirs = parse_both(tokens, role)
    assert ours == theirs
    stream_both(tokens, role)


@SETTINGS
@given(soups, st.sampled_from([None, Role.ASSISTANT]))
def test_tolerant_mode_never_raises_and_never_leaks_control_tokens(enc, tokens, role):
    parser = StreamableParser(enc, role, strict=False)
    for token in tokens:
        parser.process(token)
        assert "<|" not in (parser.last_content_delta or "")
    parser.process_eos()
    assert parser.state is StreamState.EXPECT_START
    for message in parser.messages:
        assert "<|" not in message.text
        assert message.recipient is None or not message.recipient.startswith("<|")


@SETTINGS
@given(
    st.lists(
        st.one_of(
            st.floats(allow_nan=False, allow_infinity=False),
            st.integers(min_value=-(2**80), max_value=2**80),
            st.integers(min_value=-(10**300), max_value=10**300),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_number_defaults_print_like_serde_json(render_both, numbers):
    """Defaults pass Python's JSON text and serde_json's (inexact) float parser in the oracle."""
    props = {f"p{i}": {"type": "number", "default": n} for i, n in enumerate(numbers)}
    params = {"type": "object", "properties": props}
    payload = json.dumps(
        {
            "messages": [
                {
                    "role": "developer",
                    "content": [
                        {
                            "type": "developer_content",
                            "tools": {
                                "functions": {
                                    "name": "functions",
                                    "tools": [
                                        {"name": "f", "description": "", "parameters": params}
                                    ],
                                }
                            },
                        }
                    ],
                }
            ]
        }
    )
    ours, theirs = render_both(
        Conversation.from_json(payload), "plain", theirs_convo=oh.Conversation.from_json(payload)
    )
    assert ours == theirs
