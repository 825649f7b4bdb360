"""Code written for openai-harmony, run unchanged on ``import ossa.harmony as openai_harmony``.

Each scenario is the typical use from openai-harmony's README, written once against a module
argument ``openai_harmony``: it is run with ossa.harmony and with the real library, and
everything it observes must be equal.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import openai_harmony as real
import pytest

import ossa.harmony as openai_harmony

LIBRARIES = [openai_harmony, real]


def observe(scenario: Any) -> list[Any]:
    """The scenario's observations with each library; both must be alike."""
    return [scenario(lib) for lib in LIBRARIES]


def chat_prompt(openai_harmony: ModuleType) -> Any:
    """Build a system/developer/user conversation with tools and render it for completion."""
    from_role = openai_harmony.Message.from_role_and_content
    encoding = openai_harmony.load_harmony_encoding(
        openai_harmony.HarmonyEncodingName.HARMONY_GPT_OSS
    )
    system = (
        openai_harmony.SystemContent.new()
        .with_reasoning_effort(openai_harmony.ReasoningEffort.HIGH)
        .with_conversation_start_date("2026-11-30")
        .with_browser_tool()
    )
    developer = (
        openai_harmony.DeveloperContent.new()
        .with_instructions("Answer like a ship's cook.")
        .with_function_tools(
            [
                openai_harmony.ToolDescription.new(
                    "get_location", "Gets the location of the user."
                ),
                openai_harmony.ToolDescription.new(
                    "get_current_weather",
                    "Gets the current weather in the provided location.",
                    parameters={
                        "type": "object",
                        "properties": {
                            "location": {"type": "string", "description": "City and state"},
                            "format": {
                                "type": "string",
                                "enum": ["celsius", "fahrenheit"],
                                "default": "celsius",
                            },
                        },
                        "required": ["location"],
                    },
                ),
            ]
        )
    )
    convo = openai_harmony.Conversation.from_messages(
        [
            from_role(openai_harmony.Role.SYSTEM, system),
            from_role(openai_harmony.Role.DEVELOPER, developer),
            from_role(openai_harmony.Role.USER, "What is the weather in Tokyo?"),
            from_role(
                openai_harmony.Role.ASSISTANT, "User asks for the weather. Use the tool."
            ).with_channel("analysis"),
            from_role(openai_harmony.Role.ASSISTANT, '{"location": "Tokyo"}')
            .with_channel("commentary")
            .with_recipient("functions.get_current_weather")
            .with_content_type("<|constrain|>json"),
            openai_harmony.Message.from_author_and_content(
                openai_harmony.Author.new(
                    openai_harmony.Role.TOOL, "functions.get_current_weather"
                ),
                '{"sunny": true, "temperature": 20}',
            )
            .with_channel("commentary")
            .with_recipient("assistant"),
        ]
    )
    tokens = encoding.render_conversation_for_completion(convo, openai_harmony.Role.ASSISTANT)
    training = encoding.render_conversation_for_training(
        convo, openai_harmony.RenderConversationConfig(auto_drop_analysis=False)
    )
    single = encoding.render(
        convo.messages[1],
        openai_harmony.RenderOptions(conversation_has_function_tools=True),
    )
    return tokens, training, single, encoding.decode_utf8(tokens), convo.to_json()


COMPLETION = (
    "<|channel|>analysis<|message|>Sunny and 20 degrees. Answer.<|end|>"
    "<|start|>assistant<|channel|>final<|message|>Fair skies over Tokyo, 20°C. 🍲<|return|>"
)


def parse_completion(openai_harmony: ModuleType) -> Any:
    """Parse what the model answered (only the completion, after <|start|>assistant)."""
    encoding = openai_harmony.load_harmony_encoding(
        openai_harmony.HarmonyEncodingName.HARMONY_GPT_OSS
    )
    tokens = encoding.encode(COMPLETION, allowed_special="all")
    messages = encoding.parse_messages_from_completion_tokens(
        tokens, role=openai_harmony.Role.ASSISTANT
    )
    return [m.to_dict() for m in messages], [m.model_dump(mode="json") for m in messages]


def stream_completion(openai_harmony: ModuleType) -> Any:
    """The README's streaming loop: feed each token, read every getter after it."""
    encoding = openai_harmony.load_harmony_encoding(
        openai_harmony.HarmonyEncodingName.HARMONY_GPT_OSS
    )
    stream = openai_harmony.StreamableParser(encoding, role=openai_harmony.Role.ASSISTANT)
    seen = []
    for token in encoding.encode(COMPLETION, allowed_special="all"):
        stream.process(token)
        seen.append(
            (
                stream.current_role,
                stream.current_channel,
                stream.last_content_delta,
                stream.current_content_type,
                stream.current_recipient,
                stream.current_content,
                stream.state.value,
            )
        )
    stream.process_eos()
    return seen, [m.to_dict() for m in stream.messages], stream.tokens


def json_round_trip(openai_harmony: ModuleType) -> Any:
    """Save a conversation as JSON and load it back."""
    convo = openai_harmony.Conversation.from_messages(
        [
            openai_harmony.Message.from_role_and_content(
                openai_harmony.Role.SYSTEM, openai_harmony.SystemContent.new()
            ),
            openai_harmony.Message.from_role_and_content(openai_harmony.Role.USER, "hi"),
        ]
    )
    loaded = openai_harmony.Conversation.from_json(convo.to_json())
    return loaded.to_json(), loaded == convo, [m.author.role for m in loaded]


@pytest.mark.parametrize(
    "scenario", [chat_prompt, parse_completion, stream_completion, json_round_trip]
)
def test_readme_usage_runs_unchanged_and_agrees(scenario):
    ours, theirs = observe(scenario)
    assert ours == theirs


def test_errors_are_caught_by_the_same_except_clauses():
    """``except HarmonyError`` / ``except ValueError`` written for openai-harmony still work."""
    for lib in LIBRARIES:
        encoding = lib.load_harmony_encoding(lib.HarmonyEncodingName.HARMONY_GPT_OSS)
        with pytest.raises(lib.HarmonyError, match="Unexpected EOS"):
            encoding.parse_messages_from_completion_tokens([200006, 173781], role=None)
        with pytest.raises(ValueError):
            lib.Conversation.from_messages([{"role": "user"}, 3])
