"""``POST /v1/responses`` and ``GET``/``DELETE /v1/responses/{id}``: the Responses API.

A request becomes a :class:`~ossa.serve.service.TurnRequest`: its ``input`` items become
harmony messages (a user message, the outputs of the client's function calls, an earlier
turn sent back whole as Codex does with ``store: false``), its ``tools`` the namespaces the
model sees. ``previous_response_id`` continues a stored conversation with its exact tokens,
so the engine prefills only the new input. Tools the API has but ossa does not serve
(``file_search``, ``image_generation``…) are accepted and not offered to the model, as a
server without them would; a malformed request is a 400 naming the parameter.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from sse_starlette import EventSourceResponse
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ossa.harmony import Message, Role
from ossa.serve import messages as hm
from ossa.serve.errors import APIError, bad_request
from ossa.serve.requests import effort, number, output_limit, read_json, text_of, tool_name, typed
from ossa.serve.response_events import ResponseBuilder, new_id
from ossa.serve.service import TurnRequest, TurnRun
from ossa.serve.state import ServerState
from ossa.serve.store import Stored

WEB_SEARCH = frozenset(
    {"web_search", "web_search_preview", "web_search_preview_2025_03_11", "web_search_2025_08_26"}
)
#: Tool types the API has and ossa does not serve: accepted, not offered to the model.
NOT_SERVED = frozenset(
    {
        "file_search",
        "computer_use_preview",
        "computer",
        "image_generation",
        "mcp",
        "local_shell",
        "shell",
        "apply_patch",
        "tool_search",
    }
)
#: Input item types that carry nothing the model can use again (their results are gone).
SKIPPED_ITEMS = frozenset(
    {
        "web_search_call",
        "file_search_call",
        "image_generation_call",
        "item_reference",
        "compaction",
        "mcp_list_tools",
    }
)


@dataclass
class Parsed:
    turn: TurnRequest
    response: dict[str, Any]
    store: bool
    stream: bool


def parse(body: dict[str, Any], state: ServerState) -> Parsed:
    """The turn a request asks for and the response object it will fill in."""
    limits = state.limits
    model = typed(body, "model", str, state.model_name)
    stream = bool(typed(body, "stream", bool, False))
    store = bool(typed(body, "store", bool, True))
    instructions = typed(body, "instructions", str, "")
    reasoning = typed(body, "reasoning", dict, {})
    previous_id = typed(body, "previous_response_id", str)
    max_output = output_limit(body.get("max_output_tokens"), "max_output_tokens", limits)
    temperature = number(body, "temperature", 0.0, 2.0)
    top_p = number(body, "top_p", 0.0, 1.0)
    typed(body, "include", list)  # accepted: reasoning comes back as text, nothing encrypted
    functions, builtins = _tools(body, state)

    previous = None
    history: list[Message] = []
    calls: dict[str, str] = {}  # call_id -> the recipient the model called
    if previous_id is not None:
        previous = state.store.get(previous_id)
        if previous is None:
            raise bad_request(
                f"Previous response with id '{previous_id}' not found.",
                "previous_response_id",
                "previous_response_not_found",
            )
        history = previous.messages
        for item in previous.response.get("output", []):
            if item.get("type") in ("function_call", "custom_tool_call"):
                calls[item["call_id"]] = hm.recipient_of(item["name"], item.get("namespace"))

    raw = body.get("input")
    if raw is None or raw == "" or raw == []:
        raise bad_request(
            "Missing required parameter: 'input'.", "input", "missing_required_parameter"
        )
    items = [{"role": "user", "content": raw}] if isinstance(raw, str) else raw
    if not isinstance(items, list):
        raise bad_request(
            "Invalid type for 'input': expected a string or an array of items.", "input"
        )
    if len(items) > limits.max_items:
        raise bad_request(
            f"'input' has {len(items)} items; this server accepts at most {limits.max_items}.",
            "input",
        )
    developer, turn_input = _input(items, calls)
    if not turn_input:
        raise bad_request("'input' has no message or tool output for the model.", "input")

    tokens = previous.tokens if previous is not None else None
    if previous is None:
        history, tokens, turn_input = state.service.split(turn_input)
    response_id = new_id("resp")
    conversation = (
        previous.conversation
        if previous is not None
        else str(body.get("prompt_cache_key") or body.get("conversation") or response_id)
    )
    turn = TurnRequest(
        conversation=conversation,
        input=turn_input,
        history=history,
        tokens=tokens,
        instructions="\n\n".join(p for p in (instructions, *developer) if p),
        effort=effort(reasoning.get("effort"), "reasoning.effort"),
        max_tokens=max_output,
        temperature=temperature,
        top_p=top_p,
        builtins=builtins,
        functions=functions,
    )
    response = {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": "in_progress",
        "model": model,
        "output": [],
        "instructions": instructions or None,
        "max_output_tokens": max_output,
        "previous_response_id": previous_id,
        "reasoning": {"effort": reasoning.get("effort"), "summary": None},
        "tools": body.get("tools") or [],
        "tool_choice": body.get("tool_choice", "auto"),
        "parallel_tool_calls": bool(body.get("parallel_tool_calls", True)),
        "temperature": temperature if temperature is not None else state.settings.temperature,
        "top_p": top_p if top_p is not None else state.settings.top_p,
        "text": body.get("text") or {"format": {"type": "text"}},
        "truncation": "disabled",
        "metadata": body.get("metadata") or {},
        "store": store,
        "background": False,
        "usage": None,
        "error": None,
        "incomplete_details": None,
        "user": body.get("user"),
    }
    return Parsed(turn, response, store, stream)


def _tools(
    body: dict[str, Any], state: ServerState
) -> tuple[list[hm.ClientFunctions], tuple[str, ...]]:
    """The client's function namespaces and the built-ins to offer, from ``tools``."""
    tools = typed(body, "tools", list, [])
    if len(tools) > state.limits.max_tools:
        raise bad_request(f"At most {state.limits.max_tools} tools per request.", "tools")
    if body.get("tool_choice") == "none":
        return [], ()
    plain: list[hm.ClientFunction] = []
    groups: list[hm.ClientFunctions] = []
    builtins: list[str] = []
    for i, tool in enumerate(tools):
        param = f"tools[{i}]"
        kind = tool.get("type") if isinstance(tool, dict) else None
        if not isinstance(kind, str):
            raise bad_request(f"Invalid '{param}': expected a tool object with a type.", param)
        if kind in ("function", "custom"):
            plain.append(_function(tool, param))
        elif kind == "namespace":
            name = tool_name(tool.get("name"), f"{param}.name")
            if name in hm.RESERVED or any(g.name == name for g in groups):
                raise bad_request(f"Invalid '{param}.name': {name!r} is taken.", f"{param}.name")
            inner = tool.get("tools")
            if not isinstance(inner, list):
                raise bad_request(f"Missing '{param}.tools'.", f"{param}.tools")
            group = [_function(t, f"{param}.tools[{j}]") for j, t in enumerate(inner)]
            groups.append(_namespace(group, name, str(tool.get("description") or ""), param))
        elif kind in WEB_SEARCH:
            builtins.append("browser")
        elif kind == "code_interpreter":
            builtins.append("python")
        elif kind not in NOT_SERVED:
            raise bad_request(f"Invalid value for '{param}.type': {kind!r}.", f"{param}.type")
    if plain:
        groups.insert(0, _namespace(plain, hm.FUNCTIONS, "", "tools"))
    served = tuple(name for name in dict.fromkeys(builtins) if name in state.builtins)
    return groups, served


def _function(tool: Any, param: str) -> hm.ClientFunction:
    if not isinstance(tool, dict) or tool.get("type") not in ("function", "custom"):
        raise bad_request(f"Invalid '{param}': expected a function or custom tool.", param)
    name = tool_name(tool.get("name"), f"{param}.name")
    description = tool.get("description") or ""
    if tool["type"] == "custom":
        return hm.ClientFunction(name, str(description), hm.CUSTOM_PARAMETERS, "custom")
    parameters = tool.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise bad_request(f"Invalid '{param}.parameters': expected a JSON Schema object.", param)
    return hm.ClientFunction(name, str(description), parameters)


def _namespace(
    functions: list[hm.ClientFunction], name: str, description: str, param: str
) -> hm.ClientFunctions:
    try:
        return hm.ClientFunctions(functions, namespace=name, description=description)
    except ValueError as exc:  # two functions with one name
        raise bad_request(f"Invalid '{param}': {exc}.", param) from None


def _input(items: list[Any], calls: dict[str, str]) -> tuple[list[str], list[Message]]:
    """Developer texts (they join the instructions) and the messages that start the turn."""
    developer: list[str] = []
    out: list[Message] = []
    for i, item in enumerate(items):
        param = f"input[{i}]"
        if not isinstance(item, dict):
            raise bad_request(f"Invalid '{param}': expected an object.", param)
        kind = item.get("type", "message")
        if not isinstance(kind, str):
            raise bad_request(
                f"Invalid type for '{param}.type': expected a string.", f"{param}.type"
            )
        if kind == "message":
            role = item.get("role")
            text = text_of(item.get("content", ""), f"{param}.content")
            if role == "user":
                out.append(hm.user(text))
            elif role in ("system", "developer"):
                developer.append(text)
            elif role == "assistant":
                out.append(hm.assistant(text))
            else:
                raise bad_request(f"Invalid value for '{param}.role': {role!r}.", f"{param}.role")
        elif kind == "reasoning":
            parts = item.get("content") or item.get("summary") or []
            text = text_of(parts, f"{param}.content")
            if text:
                out.append(hm.assistant(text, "analysis"))
        elif kind in ("function_call", "custom_tool_call"):
            name = tool_name(item.get("name"), f"{param}.name")
            call_id = typed(item, "call_id", str)
            if call_id is None:
                raise bad_request(f"Missing '{param}.call_id'.", f"{param}.call_id")
            namespace = item.get("namespace")
            if namespace is not None:
                namespace = tool_name(namespace, f"{param}.namespace")
            recipient = hm.recipient_of(name, namespace)
            calls[call_id] = recipient
            if kind == "function_call":
                arguments = typed(item, "arguments", str, "{}")
            else:
                arguments = hm.custom_arguments(str(item.get("input", "")))
            out.append(hm.call(recipient, arguments))
        elif kind in ("function_call_output", "custom_tool_call_output"):
            call_id = item.get("call_id")
            if not isinstance(call_id, str) or call_id not in calls:
                raise bad_request(
                    f"No tool call found for function call output with call_id {call_id!r}.",
                    f"{param}.call_id",
                )
            output = item.get("output", "")
            text = output if isinstance(output, str) else text_of(output, f"{param}.output")
            out.append(hm.tool_output(calls[call_id], text))
        elif kind == "code_interpreter_call":
            code = str(item.get("code") or "")
            outputs = item.get("outputs")
            logs = "\n".join(
                str(o.get("logs", ""))
                for o in (outputs if isinstance(outputs, list) else [])
                if isinstance(o, dict)
            )
            out.append(
                Message.from_role_and_content(Role.ASSISTANT, code)
                .with_channel("analysis")
                .with_recipient("python")
                .with_content_type("code")
            )
            out.append(hm.tool_output("python", logs, "analysis"))
        elif kind not in SKIPPED_ITEMS:
            raise bad_request(f"Invalid value for '{param}.type': {kind!r}.", f"{param}.type")
    return developer, out


async def create(request: Request) -> Response:
    state: ServerState = request.app.state.ossa
    parsed = parse(await read_json(request, state.limits), state)
    run = state.start(parsed.turn)
    builder = ResponseBuilder(parsed.response, parsed.turn.functions)
    if parsed.stream:
        return EventSourceResponse(_stream(run, builder, parsed, state), ping=15)
    end = None
    try:
        async for event in run.events(request.is_disconnected):
            builder.feed(event)
            end = event
    except Exception:  # logged where it happened; the client gets an error object
        raise APIError(
            500, "The server failed while running the model.", type="server_error"
        ) from None
    if not run.finished:  # the client went away; nothing to answer
        return Response(status_code=499)
    builder.finish(end.status, reasoning_tokens=_reasoning_tokens(run))  # type: ignore[union-attr]
    _save(run, parsed, state)
    return JSONResponse(builder.response)


async def _stream(run: TurnRun, builder: ResponseBuilder, parsed: Parsed, state: ServerState):
    for payload in builder.start():
        yield _sse(payload)
    end = None
    try:
        async for event in run.events():
            end = event
            for payload in builder.feed(event):
                yield _sse(payload)
    except Exception:
        for payload in builder.fail("The server failed while running the model."):
            yield _sse(payload)
        return
    for payload in builder.finish(end.status, reasoning_tokens=_reasoning_tokens(run)):  # type: ignore[union-attr]
        yield _sse(payload)
    _save(run, parsed, state)


def _sse(payload: dict[str, Any]) -> dict[str, str]:
    return {"event": payload["type"], "data": json.dumps(payload, ensure_ascii=False)}


def _reasoning_tokens(run: TurnRun) -> int:
    """Tokens the turn generated on the analysis channel (its chain of thought)."""
    if run.agent is None:
        return 0
    context = run.agent.context
    pairs = zip(context.messages[run.start :], context.tokens[run.start :], strict=True)
    return sum(
        len(tokens)
        for message, tokens in pairs
        if tokens and message.author.role is Role.ASSISTANT and message.channel == "analysis"
    )


def _save(run: TurnRun, parsed: Parsed, state: ServerState) -> None:
    if not parsed.store or run.agent is None:
        return
    context = run.agent.context
    state.store.put(
        Stored(
            id=parsed.response["id"],
            conversation=parsed.turn.conversation,
            response=parsed.response,
            messages=list(context.messages),
            tokens=list(context.tokens),
        )
    )


async def retrieve(request: Request) -> Response:
    state: ServerState = request.app.state.ossa
    stored = state.store.get(request.path_params["response_id"])
    if stored is None:
        raise _not_found(request.path_params["response_id"])
    return JSONResponse(stored.response)


async def delete(request: Request) -> Response:
    state: ServerState = request.app.state.ossa
    response_id = request.path_params["response_id"]
    if not state.store.delete(response_id):
        raise _not_found(response_id)
    return JSONResponse({"id": response_id, "object": "response", "deleted": True})


def _not_found(response_id: str) -> APIError:
    return APIError(404, f"No response found with id '{response_id}'.", param="response_id")
