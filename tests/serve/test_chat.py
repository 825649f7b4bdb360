"""Chat Completions and the model list through the real ``openai`` SDK."""

from __future__ import annotations

import json

import openai

from tests.serve.test_responses import client, decoded, weather_call

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def test_completion_has_reasoning_content_and_usage(serve, harmony):
    server = serve(harmony.final("Hi!", reasoning="Say hi."))
    completion = client(server).chat.completions.create(
        model="gpt-oss-test",
        messages=[{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hello"}],
        reasoning_effort="low",
    )
    choice = completion.choices[0]
    assert choice.message.content == "Hi!" and choice.finish_reason == "stop"
    assert choice.message.model_extra["reasoning_content"] == "Say hi."
    assert completion.usage.prompt_tokens == len(server.engine.prompts[0])
    prompt = decoded(server, 0)
    assert "Reasoning: low" in prompt and "Be kind." in prompt


def test_tool_calls_round_trip(serve, harmony):
    server = serve(weather_call("Rome"), harmony.final("Warm in Rome."))
    api = client(server)
    messages = [{"role": "user", "content": "Weather in Rome?"}]
    first = api.chat.completions.create(model="m", messages=messages, tools=[WEATHER])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Rome"}
    messages.append(choice.message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "28C"})
    second = api.chat.completions.create(model="m", messages=messages, tools=[WEATHER])
    assert second.choices[0].message.content == "Warm in Rome."
    prompt = decoded(server, 1)
    assert (
        "<|start|>functions.get_weather to=assistant<|channel|>commentary<|message|>28C" in prompt
    )
    # the chain of thought sent back is before the last answer only: the model sees it again
    assert "Need the weather." in prompt


def test_streamed_chunks(serve, harmony):
    server = serve(weather_call("Lima"))
    stream = client(server).chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "Weather in Lima?"}],
        tools=[WEATHER],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    reasoning = "".join(
        c.choices[0].delta.model_extra.get("reasoning_content") or "" for c in chunks if c.choices
    )
    assert reasoning == "Need the weather."
    calls = [
        c.choices[0].delta.tool_calls for c in chunks if c.choices and c.choices[0].delta.tool_calls
    ]
    assert calls[0][0].function.name == "get_weather"
    finish = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finish == ["tool_calls"]
    assert chunks[-1].usage.completion_tokens > 0


def test_streamed_answer_text(serve, harmony):
    server = serve(harmony.final("Streaming works."))
    stream = client(server).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "Go"}], stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream)
    assert text == "Streaming works."


def test_models_lists_the_served_model(serve, harmony):
    api = client(serve(harmony.final("x")))
    assert [m.id for m in api.models.list()] == ["gpt-oss-test"]
    assert api.models.retrieve("gpt-oss-test").owned_by == "ossa"
    try:
        api.models.retrieve("other")
    except openai.NotFoundError as exc:
        assert exc.body["code"] == "model_not_found"
    else:
        raise AssertionError("an unknown model was found")
