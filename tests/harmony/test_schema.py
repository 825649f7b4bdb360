"""JSON Schema to TypeScript-like text, branch by branch, against openai-harmony."""

from __future__ import annotations

import pytest

from ossa.harmony import (
    Conversation,
    DeveloperContent,
    Message,
    Role,
    ToolDescription,
)
from ossa.harmony.schema import schema_to_typescript, to_json

PROPERTIES = [
    {"type": "string"},
    {"type": "integer", "default": 10},
    {"type": "number", "default": 1.5},
    {"type": "number", "default": 1e20},
    {"type": "number", "default": 1e-7},
    {"type": "number", "default": 10.0},
    {"type": "string", "enum": ["a", "b"], "default": "a"},
    {"type": "string", "default": 'x "q" \\'},
    {"type": "string", "default": None},
    {"type": "array", "items": {"type": "string"}, "default": ["a"]},
    {"type": "array"},
    {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}},
    {"type": ["string", "null"]},
    {"type": ["integer", "number"], "nullable": True},
    {"type": "string", "nullable": True},
    {"type": "null"},
    {"enum": ["x"]},
    {"anyOf": [{"type": "string"}]},
    {},
    {"type": "string", "enum": [1, 2]},
    {"type": "string", "enum": []},
    {"type": "object", "default": {"a": 1, "b": [True, None, "é\n"]}},
    {"type": "string", "title": "T", "examples": ["a", 2], "description": "d1\nd2"},
    {"type": "object", "description": "nested", "properties": {"a": {"type": "number"}}},
    {
        "description": "a oneof",
        "default": 20,
        "oneOf": [{"type": "string", "default": "s"}, {"type": "number", "description": "n"}],
    },
    {
        "description": "same",
        "oneOf": [
            {"type": "string", "description": "same"},
            {"type": "object", "properties": {"x": {"type": "boolean"}}, "nullable": True},
        ],
    },
    {"oneOf": [{"type": "string", "enum": ["p"], "default": "p"}]},
    {"type": "integer", "default": 123456789012345678901234567890},
    {"type": "number", "default": -0.0},
    "not a schema",
]

TOP_LEVEL = [
    {},
    {"type": "object"},
    {"type": "object", "properties": {}},
    {
        "type": "object",
        "description": "params object",
        "properties": {"q": {"type": "string"}},
        "required": ["q", 3],
    },
    {
        "oneOf": [
            {
                "type": "object",
                "description": "metric",
                "properties": {"celsius": {"type": "boolean"}},
            },
            {"type": "string", "enum": ["kelvin"], "default": "kelvin"},
            {"type": "number", "default": "d", "nullable": True},
        ]
    },
    {"type": "array", "items": {"type": "object", "properties": {"a": {"type": "string"}}}},
]


def developer_conversation(parameters: list) -> Conversation:
    tools = [ToolDescription.new(f"f{i}", f"Tool {i}.", p) for i, p in enumerate(parameters)]
    developer = DeveloperContent.new().with_function_tools(tools)
    return Conversation.from_messages([Message.from_role_and_content(Role.DEVELOPER, developer)])


@pytest.mark.parametrize("prop", PROPERTIES, ids=range(len(PROPERTIES)))
def test_property_renders_like_openai_harmony(render_both, prop):
    schema = {"type": "object", "properties": {"p": prop, "r": prop}, "required": ["r"]}
    ours, theirs = render_both(developer_conversation([schema]), "plain")
    assert ours == theirs


def test_top_level_shapes_render_like_openai_harmony(render_both):
    ours, theirs = render_both(developer_conversation(TOP_LEVEL), "plain")
    assert ours == theirs


def test_known_lines():
    schema = {
        "type": "object",
        "properties": {
            "format": {"type": "string", "enum": ["celsius", "fahrenheit"], "default": "celsius"},
            "items": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}},
        },
    }
    assert schema_to_typescript(schema) == (
        '{\nformat?: "celsius" | "fahrenheit", // default: celsius\nitems?: "a" | "b"[],\n}'
    )


@pytest.mark.parametrize(
    "value, text",
    [
        (10.0, "10.0"),
        (1e15, "1000000000000000.0"),
        (1e16, "1e16"),
        (1.5, "1.5"),
        (0.00001, "0.00001"),
        (1e-6, "1e-6"),
        (2.5e-5, "0.000025"),  # the reference says 2.5e-5; the library prints this
        (1.5e16, "1.5e16"),
        (2**64, "1.8446744073709552e19"),
        (-(2**63), "-9223372036854775808"),
        (-0.0, "-0.0"),
        (123456789012345678901234567890, "1.2345678901234568e29"),
        ({"k": "v", "a": [1, None, "\x01é"]}, '{"k":"v","a":[1,null,"\\u0001é"]}'),
    ],
)
def test_json_is_printed_as_serde_json(value, text):
    assert to_json(value) == text


def test_nan_is_refused():
    with pytest.raises(ValueError, match="invalid conversation JSON"):
        to_json(float("nan"))
