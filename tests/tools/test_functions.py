"""Function tools: schema from signature and docstring, validation, sync and async calls."""

from __future__ import annotations

import asyncio
import json
from typing import Literal

import pytest
from pydantic import BaseModel

import ossa.tools
from ossa.harmony import DeveloperContent, Message, Role, load_harmony_encoding
from ossa.tools import FunctionTool, tool
from ossa.tools.arguments import prompt_schema
from ossa.tools.functions import FunctionTools


@tool
def get_location() -> str:
    """Gets the location of the user."""
    return "Paris"


@tool
def get_current_weather(
    location: str, format: Literal["celsius", "fahrenheit"] = "celsius"
) -> dict:
    """Gets the current weather in the provided location.

    Args:
        location: The city and state, e.g. San Francisco, CA
    """
    return {"location": location, "temperature": 21, "unit": format}


@tool
async def slow_double(n: int) -> int:
    """Double a number, asynchronously."""
    await asyncio.sleep(0)
    return 2 * n


@tool(name="explode", description="Always fails.")
def _explode() -> None:
    raise RuntimeError("kaboom")


def call(tools: FunctionTools, name: str, arguments: str) -> Message:
    message = (
        Message.from_role_and_content(Role.ASSISTANT, arguments)
        .with_channel("commentary")
        .with_recipient(f"functions.{name}")
    )
    [reply] = tools.call(message)
    return reply


def text(message: Message) -> str:
    return message.content[0].text


TOOLS = FunctionTools([get_location, get_current_weather, slow_double, _explode])


def test_functions_render_like_harmony_reference():
    """The developer message matches harmony's own example for these two functions."""
    content = DeveloperContent.new().with_instructions("Always respond in riddles")
    content = content.with_tools(FunctionTools([get_location, get_current_weather]).namespace())
    enc = load_harmony_encoding()
    rendered = enc.decode(enc.render(Message.from_role_and_content(Role.DEVELOPER, content)))
    assert rendered == (
        "<|start|>developer<|message|># Instructions\n\nAlways respond in riddles\n\n"
        "# Tools\n\n## functions\n\nnamespace functions {\n\n"
        "// Gets the location of the user.\ntype get_location = () => any;\n\n"
        "// Gets the current weather in the provided location.\n"
        "type get_current_weather = (_: {\n"
        "// The city and state, e.g. San Francisco, CA\n"
        "location: string,\n"
        'format?: "celsius" | "fahrenheit", // default: celsius\n'
        "}) => any;\n\n"
        "} // namespace functions<|end|>"
    )


def test_valid_call_serializes_result_as_json():
    reply = call(TOOLS, "get_current_weather", '{"location": "Oslo", "format": "fahrenheit"}')
    assert json.loads(text(reply)) == {"location": "Oslo", "temperature": 21, "unit": "fahrenheit"}
    assert reply.author.role == Role.TOOL
    assert reply.author.name == "functions.get_current_weather"
    assert reply.recipient == "assistant"
    assert reply.channel == "commentary"


def test_string_result_is_sent_as_is_and_blank_arguments_mean_none():
    assert text(call(TOOLS, "get_location", "")) == "Paris"


def test_async_function_is_awaited():
    assert text(call(TOOLS, "slow_double", '{"n": "21"}')) == "42"


def test_invalid_arguments_go_back_to_the_model():
    reply = text(call(TOOLS, "get_current_weather", '{"format": "kelvin", "extra": 1}'))
    assert reply.startswith("Invalid arguments for get_current_weather:")
    assert "- location: Missing required argument" in reply
    assert "- format: Input should be 'celsius' or 'fahrenheit'" in reply
    assert "- extra: Extra inputs are not permitted" in reply


def test_async_invalid_arguments_never_reach_the_function():
    assert "Invalid arguments for slow_double" in text(call(TOOLS, "slow_double", '{"n": "x"}'))


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [("{not json", "Invalid JSON arguments"), ("[1, 2]", "Arguments must be a JSON object")],
)
def test_malformed_json_is_explained(arguments, expected):
    assert text(call(TOOLS, "get_current_weather", arguments)).startswith(expected)


def test_exception_in_function_becomes_message():
    assert text(call(TOOLS, "explode", "{}")) == "Error: explode raised RuntimeError: kaboom"


def test_unknown_function_lists_the_known_ones():
    reply = text(call(TOOLS, "nope", "{}"))
    assert reply == (
        "Unknown function 'nope'. Functions: get_location, get_current_weather, slow_double, explode."
    )


def test_decorated_function_is_still_callable_and_exported():
    assert get_current_weather("Rome")["location"] == "Rome"
    assert ossa.tools.tool is tool
    assert isinstance(slow_double, FunctionTool)
    assert asyncio.run(slow_double(4)) == 8


def test_variadic_functions_and_duplicate_names_are_refused():
    with pytest.raises(TypeError, match="named parameters only"):
        tool(lambda *args: None)
    with pytest.raises(ValueError, match="two function tools are named 'get_location'"):
        FunctionTools([get_location, get_location])


class Point(BaseModel):
    x: float
    y: float


def test_nested_models_and_optionals_render_without_refs_or_titles():
    @tool
    def move(to: Point, speed: int | None = None, tags: list[str] | None = None) -> str:
        """Move somewhere.

        Args:
            to: Destination.
        """
        return f"{to.x},{to.y} {speed} {tags}"

    assert move.parameters == {
        "type": "object",
        "properties": {
            "to": {
                "type": "object",
                "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
                "required": ["x", "y"],
                "description": "Destination.",
            },
            "speed": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["to"],
    }
    tools = FunctionTools([move])
    assert text(call(tools, "move", '{"to": {"x": 1, "y": 2}, "speed": 3}')) == "1.0,2.0 3 None"


def test_prompt_schema_unions_and_recursion():
    schema = {
        "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}},
        "type": "object",
        "title": "Args",
        "properties": {
            "a": {"anyOf": [{"type": "string"}, {"type": "integer"}], "title": "A"},
            "b": {"anyOf": [{"type": "string"}, {"type": "object", "properties": {}}]},
            "node": {"$ref": "#/$defs/Node"},
        },
    }
    assert prompt_schema(schema) == {
        "type": "object",
        "properties": {
            "a": {"type": ["string", "integer"]},
            "b": {"oneOf": [{"type": "string"}, {"type": "object", "properties": {}}]},
            "node": {"type": "object", "properties": {"next": {}}},
        },
    }
