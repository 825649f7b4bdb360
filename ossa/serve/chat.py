"""``POST /v1/chat/completions``: the Chat Completions API, stateless.

Each request carries the whole conversation: ``messages`` become harmony messages (system
and developer text joins the instructions; an assistant's ``tool_calls`` become function
calls and ``tool`` messages their outputs), ``tools`` the ``functions`` namespace. The
reasoning comes back in ``reasoning_content``, as vLLM and Ollama serve gpt-oss, and a
streamed answer as ``chat.completion.chunk`` objects ending with ``data: [DONE]``.
Built-in tools are a Responses API feature; a chat request gets only its own functions.
"""

from __future__ import annotations

import json
import time
from typing import Any

from sse_starlette import EventSourceResponse
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ossa.agent.events import (
    CommentaryDelta,
    Event,
    FinalDelta,
    ReasoningDelta,
    ToolCallStarted,
    TurnEnd,
    TurnStatus,
    Usage,
)
from ossa.harmony import Message
from ossa.serve import messages as hm
from ossa.serve.errors import APIError, bad_request
from ossa.serve.requests import effort, number, output_limit, read_json, text_of, tool_name, typed
from ossa.serve.response_events import new_id
from ossa.serve.service import TurnRequest, TurnRun
from ossa.serve.state import ServerState

FINISH = {
    TurnStatus.COMPLETED: "stop",
    TurnStatus.MAX_TOKENS: "length",
    TurnStatus.MAX_STEPS: "length",
    TurnStatus.INTERRUPTED: "stop",
    TurnStatus.ERROR: "error",
}


def parse(body: dict[str, Any], state: ServerState) -> TurnRequest:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' must be a non-empty array.", "messages")
    if len(messages) > state.limits.max_items:
        raise bad_request(
            f"'messages' has {len(messages)} items; at most {state.limits.max_items}.",
            "messages",
        )
    developer: list[str] = []
    out: list[Message] = []
    calls: dict[str, str] = {}
    for i, message in enumerate(messages):
        param = f"messages[{i}]"
        if not isinstance(message, dict):
            raise bad_request(f"Invalid '{param}': expected an object.", param)
        role = message.get("role")
        content = message.get("content")
        text = "" if content is None else text_of(content, f"{param}.content")
        if role in ("system", "developer"):
            developer.append(text)
        elif role == "user":
            out.append(hm.user(text))
        elif role == "assistant":
            reasoning = message.get("reasoning_content") or message.get("reasoning")
            if isinstance(reasoning, str) and reasoning:
                out.append(hm.assistant(reasoning, "analysis"))
            if text:
                out.append(hm.assistant(text))
            tool_calls = message.get("tool_calls") or []
            if not isinstance(tool_calls, list):
                raise bad_request(f"Invalid '{param}.tool_calls'.", f"{param}.tool_calls")
            for j, call in enumerate(tool_calls):
                where = f"{param}.tool_calls[{j}]"
                function = call.get("function") if isinstance(call, dict) else None
                if not isinstance(function, dict):
                    raise bad_request(f"Invalid '{where}': expected a function call.", where)
                recipient = hm.recipient_of(
                    tool_name(function.get("name"), f"{where}.function.name"), None
                )
                calls[str(call.get("id"))] = recipient
                out.append(hm.call(recipient, str(function.get("arguments") or "{}")))
        elif role == "tool":
            call_id = str(message.get("tool_call_id"))
            if call_id not in calls:
                raise bad_request(
                    f"Invalid '{param}.tool_call_id': no assistant tool call has id {call_id!r}.",
                    f"{param}.tool_call_id",
                )
            out.append(hm.tool_output(calls[call_id], text))
        else:
            raise bad_request(f"Invalid value for '{param}.role': {role!r}.", f"{param}.role")
    if not out:
        raise bad_request("'messages' has no user message.", "messages")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    history, tokens, turn_input = state.service.split(out)
    return TurnRequest(
        conversation=new_id("chat"),
        input=turn_input,
        history=history,
        tokens=tokens,
        instructions="\n\n".join(p for p in developer if p),
        effort=effort(body.get("reasoning_effort"), "reasoning_effort"),
        max_tokens=output_limit(max_tokens, "max_completion_tokens", state.limits),
        temperature=number(body, "temperature", 0.0, 2.0),
        top_p=number(body, "top_p", 0.0, 1.0),
        functions=_functions(body, state),
    )


def _functions(body: dict[str, Any], state: ServerState) -> list[hm.ClientFunctions]:
    tools = typed(body, "tools", list, [])
    if len(tools) > state.limits.max_tools:
        raise bad_request(f"At most {state.limits.max_tools} tools per request.", "tools")
    if not tools or body.get("tool_choice") == "none":
        return []
    functions = []
    for i, tool in enumerate(tools):
        param = f"tools[{i}]"
        spec = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(spec, dict) or tool.get("type") != "function":
            raise bad_request(f"Invalid '{param}': expected a function tool.", param)
        parameters = spec.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise bad_request(f"Invalid '{param}.function.parameters'.", param)
        name = tool_name(spec.get("name"), f"{param}.function.name")
        functions.append(hm.ClientFunction(name, str(spec.get("description") or ""), parameters))
    try:
        return [hm.ClientFunctions(functions)]
    except ValueError as exc:
        raise bad_request(f"Invalid 'tools': {exc}.", "tools") from None


class ChatBuilder:
    """The assistant message (or its chunks) from the agent's events."""

    def __init__(self, completion_id: str, model: str, functions: list[hm.ClientFunctions]):
        self.base = {"id": completion_id, "created": int(time.time()), "model": model}
        self.functions = functions
        self.content: list[str] = []
        self.reasoning: list[str] = []
        self.tool_calls: list[dict[str, Any]] = []
        self.usage: dict[str, Any] | None = None
        self.status = TurnStatus.COMPLETED

    def feed(self, event: Event) -> dict[str, Any] | None:
        """The chunk's ``delta`` for this event, if it shows anything."""
        if isinstance(event, ReasoningDelta):
            self.reasoning.append(event.text)
            return {"reasoning_content": event.text}
        if isinstance(event, CommentaryDelta | FinalDelta):
            self.content.append(event.text)
            return {"content": event.text}
        if isinstance(event, ToolCallStarted):
            resolved = hm.resolve_call(event.recipient, self.functions)
            if resolved is None:
                return None
            call = {
                "id": new_id("call"),
                "type": "function",
                "function": {"name": resolved[1].name, "arguments": event.arguments},
            }
            self.tool_calls.append(call)
            return {"tool_calls": [{"index": len(self.tool_calls) - 1, **call}]}
        if isinstance(event, Usage):
            self.usage = {
                "prompt_tokens": event.prompt_tokens,
                "completion_tokens": event.output_tokens,
                "total_tokens": event.prompt_tokens + event.output_tokens,
                "prompt_tokens_details": {"cached_tokens": event.reused_tokens},
            }
        if isinstance(event, TurnEnd):
            self.status = event.status
        return None

    @property
    def finish_reason(self) -> str:
        return "tool_calls" if self.tool_calls else FINISH[self.status]

    def chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {**self.base, "object": "chat.completion.chunk", "choices": [choice]}

    def completion(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self.content) or None}
        if self.reasoning:
            message["reasoning_content"] = "".join(self.reasoning)
        if self.tool_calls:
            message["tool_calls"] = self.tool_calls
        choice = {
            "index": 0,
            "message": message,
            "logprobs": None,
            "finish_reason": self.finish_reason,
        }
        return {**self.base, "object": "chat.completion", "choices": [choice], "usage": self.usage}


async def create(request: Request) -> Response:
    state: ServerState = request.app.state.ossa
    body = await read_json(request, state.limits)
    turn = parse(body, state)
    model = typed(body, "model", str, state.model_name)
    stream = bool(typed(body, "stream", bool, False))
    options = typed(body, "stream_options", dict, {})
    run = state.start(turn)
    builder = ChatBuilder(new_id("chatcmpl"), model, turn.functions)
    if stream:
        return EventSourceResponse(
            _stream(run, builder, bool(options.get("include_usage"))), ping=15
        )
    try:
        async for event in run.events(request.is_disconnected):
            builder.feed(event)
    except Exception:
        raise APIError(
            500, "The server failed while running the model.", type="server_error"
        ) from None
    if not run.finished:
        return Response(status_code=499)
    return JSONResponse(builder.completion())


async def _stream(run: TurnRun, builder: ChatBuilder, include_usage: bool):
    yield _data(builder.chunk({"role": "assistant", "content": ""}))
    try:
        async for event in run.events():
            delta = builder.feed(event)
            if delta is not None:
                yield _data(builder.chunk(delta))
    except Exception:
        error = APIError(500, "The server failed while running the model.", type="server_error")
        yield _data(error.body())
        return
    yield _data(builder.chunk({}, builder.finish_reason))
    if include_usage:
        yield _data({**builder.chunk({}), "choices": [], "usage": builder.usage})
    yield {"data": "[DONE]"}


def _data(payload: dict[str, Any]) -> dict[str, str]:
    return {"data": json.dumps(payload, ensure_ascii=False)}
