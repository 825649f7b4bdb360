"""The Responses API through the real ``openai`` SDK, against ``ossa serve`` on a replay engine."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import openai
import pydantic
import pytest
from openai.types.responses import Response, ResponseStreamEvent

from ossa.agent.engines import ReplayEngine
from ossa.agent.settings import Settings
from tests.serve.conftest import running

ROOT = Path(__file__).resolve().parents[2]
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def weather_call(city: str = "Paris") -> str:
    """A completion that calls the client's get_weather function, as gpt-oss writes it."""
    return (
        "<|channel|>analysis<|message|>Need the weather.<|end|>"
        "<|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json"
        f'<|message|>{{"city": "{city}"}}<|call|>'
    )


def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)


def decoded(server, index: int) -> str:
    encoding = server.state.service.engine.engine._encoding
    return encoding.decode(server.engine.prompts[index])


def test_create_returns_reasoning_answer_and_usage(serve, harmony):
    server = serve(harmony.final("Hello there!", reasoning="Greet back."))
    response = client(server).responses.create(
        model="gpt-oss-test", input="Hi", instructions="Be terse.", reasoning={"effort": "high"}
    )
    assert response.status == "completed"
    assert response.output_text == "Hello there!"
    reasoning, message = response.output
    assert reasoning.type == "reasoning" and reasoning.content[0].text == "Greet back."
    assert message.type == "message" and message.content[0].annotations == []
    assert response.usage.input_tokens == len(server.engine.prompts[0])
    assert response.usage.output_tokens > response.usage.output_tokens_details.reasoning_tokens > 0
    prompt = decoded(server, 0)
    assert "Reasoning: high" in prompt and "Be terse." in prompt
    assert prompt.endswith("<|start|>user<|message|>Hi<|end|><|start|>assistant")


def test_stream_emits_the_documented_sequence(serve, harmony):
    server = serve(harmony.final("Streamed answer.", reasoning="Think."))
    with client(server).responses.stream(model="m", input="Go") as stream:
        events = list(stream)
        final = stream.get_final_response()
    numbers = [e.sequence_number for e in events]
    assert numbers == list(range(len(events)))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    reasoning_at = kinds.index("response.reasoning_text.delta")
    text_at = kinds.index("response.output_text.delta")
    assert kinds[reasoning_at - 2 : reasoning_at] == [
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert reasoning_at < text_at
    assert kinds[-4:-1] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ]
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == final.output_text == "Streamed answer."


def test_function_tool_round_trip_with_previous_response(serve, harmony):
    server = serve(weather_call(), harmony.final("It is sunny in Paris."))
    api = client(server)
    first = api.responses.create(model="m", input="Weather in Paris?", tools=[WEATHER])
    call = first.output[-1]
    assert call.type == "function_call" and call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Paris"}
    assert first.status == "completed" and first.output_text == ""
    assert "type get_weather = (_: {\ncity: string,\n}) => any;" in decoded(server, 0)

    second = api.responses.create(
        model="m",
        previous_response_id=first.id,
        tools=[WEATHER],
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 24C"}],
    )
    assert second.output_text == "It is sunny in Paris."
    # the stored conversation is continued with the exact tokens: only the new input is new
    first_prompt, second_prompt = server.engine.prompts
    assert second_prompt[: len(first_prompt)] == first_prompt
    assert second.usage.input_tokens_details.cached_tokens == server.engine.calls[1].reused_tokens
    assert second.usage.input_tokens_details.cached_tokens > len(first_prompt)
    assert (
        "<|start|>functions.get_weather to=assistant<|channel|>commentary<|message|>sunny, 24C"
        in decoded(server, 1)
    )


def test_function_tool_round_trip_stateless_and_streamed(serve, harmony):
    """Codex's way: ``store: false`` and the whole conversation as input each time."""
    server = serve(weather_call("Oslo"), harmony.final("Cold in Oslo."))
    api = client(server)
    with api.responses.stream(
        model="m", input="Weather in Oslo?", tools=[WEATHER], store=False
    ) as stream:
        events = list(stream)
        first = stream.get_final_response()
    kinds = [e.type for e in events]
    assert "response.function_call_arguments.delta" in kinds
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert json.loads(done.arguments) == {"city": "Oslo"}
    call = first.output[-1]
    with pytest.raises(openai.BadRequestError):  # not stored
        api.responses.create(model="m", previous_response_id=first.id, input="more")
    history = [{"role": "user", "content": "Weather in Oslo?"}]
    history += [item.model_dump(exclude_none=True) for item in first.output]
    history.append({"type": "function_call_output", "call_id": call.call_id, "output": "-3C"})
    second = api.responses.create(model="m", input=history, tools=[WEATHER], store=False)
    assert second.output_text == "Cold in Oslo."
    prompt = decoded(server, 1)
    assert (
        "<|start|>functions.get_weather to=assistant<|channel|>commentary<|message|>-3C" in prompt
    )
    # the items sent back get their generated tokens again: the prompt extends the cache
    engine = server.engine
    generated = engine._encoding.encode(weather_call("Oslo"), allowed_special="all")
    cached = engine.prompts[0] + generated
    assert engine.prompts[1][: len(cached)] == cached
    assert second.usage.input_tokens_details.cached_tokens == len(cached)


def test_stored_response_survives_a_restart(tmp_path, replay_file, harmony):
    store = tmp_path / "store.sqlite3"
    first_engine = ReplayEngine(replay_file(harmony.final("Remembered: 42.")))
    with running(first_engine, Settings(tools=[]), store) as server:
        first = client(server).responses.create(model="m", input="Remember 42.")
        got = httpx.get(f"{server.base_url}/responses/{first.id}").json()
        assert got["output"] == first.model_dump(mode="json", exclude_unset=True)["output"]
    second_engine = ReplayEngine(replay_file(harmony.final("You said 42.")))
    with running(second_engine, Settings(tools=[]), store) as server:
        api = client(server)
        second = api.responses.create(
            model="m", input="What number?", previous_response_id=first.id
        )
        assert second.output_text == "You said 42."
        prompt = second_engine._encoding.decode(second_engine.prompts[0])
        assert "Remember 42." in prompt and "Remembered: 42." in prompt
        assert api.responses.retrieve(first.id).id == first.id
        api.responses.delete(first.id)
        with pytest.raises(openai.NotFoundError):
            api.responses.retrieve(first.id)


def test_max_output_tokens_makes_an_incomplete_response(serve, harmony):
    server = serve(harmony.final("A long answer that will be cut short by the limit."))
    response = client(server).responses.create(model="m", input="Go", max_output_tokens=12)
    assert response.status == "incomplete"
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.usage.output_tokens == 12


def test_engine_failure_is_a_failed_response(serve, harmony):
    server = serve(harmony.final("only one"))
    api = client(server)
    api.responses.create(model="m", input="one")
    response = api.responses.create(model="m", input="two")  # the replay file is used up
    assert response.status == "failed"
    assert "recorded completions were used" in response.error.message


@pytest.mark.docker
def test_builtin_browser_and_python_run_server_side(serve):
    completions = [
        json.loads(line)["completion"]
        for line in (ROOT / "examples" / "demo.jsonl").read_text().splitlines()
    ]
    server = serve(*completions, tools=("browser", "python"), corpus=str(ROOT / "examples/corpus"))
    response = client(server).responses.create(
        model="m",
        input="How many bytes does one MXFP4 block take?",
        tools=[
            {"type": "web_search_preview"},
            {"type": "code_interpreter", "container": {"type": "auto"}},
        ],
    )
    Response.model_validate(response.model_dump(exclude_unset=True))
    kinds = [item.type for item in response.output]
    assert kinds.count("web_search_call") == 2 and kinds.count("code_interpreter_call") == 1
    search = next(i for i in response.output if i.type == "web_search_call")
    assert search.action.query == "MXFP4 block scale bytes" and search.status == "completed"
    python = next(i for i in response.output if i.type == "code_interpreter_call")
    assert python.outputs[0].logs.strip() == "16 17 4.25"  # run in the real sandbox
    answer = response.output[-1].content[0]
    assert "17 bytes" in answer.text
    (citation,) = answer.annotations
    assert citation.type == "url_citation"
    assert answer.text[citation.start_index : citation.end_index].startswith("([")
    assert citation.url in answer.text


@pytest.mark.docker
def test_a_conversation_keeps_its_python_session(serve, harmony):
    def python(code: str) -> str:
        return f"<|channel|>analysis to=python code<|message|>{code}<|call|>"

    server = serve(
        python("x = 41"),
        harmony.final("Set."),
        python("print(x + 1)"),
        harmony.final("42."),
        tools=("python",),
    )
    api = client(server)
    tools = [{"type": "code_interpreter", "container": {"type": "auto"}}]
    first = api.responses.create(model="m", input="Set x.", tools=tools)
    second = api.responses.create(
        model="m", input="Print x+1.", tools=tools, previous_response_id=first.id
    )
    call = next(i for i in second.output if i.type == "code_interpreter_call")
    assert call.outputs[0].logs.strip() == "42"
    assert len(server.state.service.pool) == 1
    assert server.state.service.pool.reap(now=float("inf")) == 1  # idle: the sandbox closes


def call_to(recipient: str, arguments: str) -> str:
    return f"<|channel|>commentary to={recipient} <|constrain|>json<|message|>{arguments}<|call|>"


def test_namespaced_and_custom_tools(serve, harmony):
    server = serve(
        call_to("crm.lookup", '{"id": 7}'),
        call_to("functions.apply_patch", json.dumps({"input": "*** Begin Patch"})),
        harmony.final("Done."),
    )
    api = client(server)
    tools = [
        {
            "type": "namespace",
            "name": "crm",
            "description": "Customer records.",
            "tools": [{"type": "function", "name": "lookup", "parameters": {"type": "object"}}],
        },
        {"type": "custom", "name": "apply_patch", "description": "Apply a patch."},
    ]
    first = api.responses.create(model="m", input="Find customer 7.", tools=tools)
    (call,) = first.output
    assert (call.type, call.namespace, call.name) == ("function_call", "crm", "lookup")
    prompt = decoded(server, 0)
    assert "## crm\n\n// Customer records.\nnamespace crm {" in prompt
    assert (
        "type apply_patch = (_: {\n// The tool's input, verbatim.\ninput: string,\n}) => any;"
        in prompt
    )

    second = api.responses.create(
        model="m",
        previous_response_id=first.id,
        tools=tools,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "Ada"}],
    )
    (patch,) = second.output
    assert (patch.type, patch.name, patch.input) == (
        "custom_tool_call",
        "apply_patch",
        "*** Begin Patch",
    )
    assert "<|start|>crm.lookup to=assistant<|channel|>commentary<|message|>Ada" in decoded(
        server, 1
    )

    third = api.responses.create(
        model="m",
        previous_response_id=second.id,
        tools=tools,
        input=[{"type": "custom_tool_call_output", "call_id": patch.call_id, "output": "applied"}],
    )
    assert third.output_text == "Done."
    assert "functions.apply_patch to=assistant<|channel|>commentary<|message|>applied" in decoded(
        server, 2
    )


def test_unserved_tools_are_accepted_and_not_offered(serve, harmony):
    server = serve(harmony.final("No tools here."))
    response = client(server).responses.create(
        model="m",
        input="Hi",
        tools=[
            {"type": "web_search"},
            {"type": "code_interpreter", "container": {"type": "auto"}},
            {"type": "file_search", "vector_store_ids": ["vs_1"]},
            {"type": "image_generation"},
        ],
    )
    assert response.output_text == "No tools here."
    prompt = decoded(server, 0)
    assert "# Tools" not in prompt  # this server runs no built-ins: none is offered


def stream_payloads(server, body: dict) -> list[dict]:
    """The data of every server-sent event of one streamed request, as sent."""
    url = f"{server.base_url}/responses"
    with httpx.stream("POST", url, json={**body, "stream": True}, timeout=60) as response:
        return [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")]


def test_every_event_and_response_validates_against_the_sdk_models(serve, harmony):
    """Strict validation: the SDK builds its objects leniently, and a field it requires but
    does not find turns an object into a plain dict (clients then fail in odd ways)."""
    server = serve(
        weather_call(),
        call_to("functions.apply_patch", json.dumps({"input": "*** Begin Patch"})),
        harmony.final("Done."),
    )
    adapter = pydantic.TypeAdapter(ResponseStreamEvent)
    tools = [WEATHER, {"type": "custom", "name": "apply_patch"}]
    kinds = set()
    for text in ("one", "two", "three"):
        for payload in stream_payloads(server, {"model": "m", "input": text, "tools": tools}):
            adapter.validate_python(payload)
            kinds.add(payload["type"])
    assert {
        "response.function_call_arguments.done",
        "response.custom_tool_call_input.done",
        "response.reasoning_text.done",
        "response.output_text.done",
        "response.completed",
    } <= kinds
    stored = httpx.get(f"{server.base_url}/responses/{payload['response']['id']}").json()
    Response.model_validate(stored)
