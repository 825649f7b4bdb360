"""The Responses API's output: agent events become output items and server-sent events.

One :class:`ResponseBuilder` follows a turn's events and keeps the response object's
``output`` up to date; each call returns the streaming events that step produces, in the
documented order (item added, content part added, deltas, done events, item done), each
with the next ``sequence_number``. A non-streamed request uses the same builder and keeps
only the final object, so both carry the same output.
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

from ossa.agent.events import (
    CommentaryDelta,
    Error,
    Event,
    FinalDelta,
    ReasoningDelta,
    ToolCallFinished,
    ToolCallStarted,
    TurnStatus,
    Usage,
)
from ossa.serve.messages import ClientFunctions, custom_input, resolve_call

Payload = dict[str, Any]

#: A citation as the browser's answer filter writes it: ``([domain, L9-L11](url))``.
_LINK = re.compile(r"\(\[(?P<title>[^\]]+)\]\((?P<url>[^)\s]+)\)\)")

#: The response status (and ``incomplete_details.reason``) for each way a turn ends.
STATUS = {
    TurnStatus.COMPLETED: ("completed", None),
    TurnStatus.MAX_TOKENS: ("incomplete", "max_output_tokens"),
    TurnStatus.MAX_STEPS: ("incomplete", "max_tool_calls"),
    TurnStatus.INTERRUPTED: ("cancelled", None),
    TurnStatus.ERROR: ("failed", None),
}


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(16)}"


def annotations(text: str) -> list[Payload]:
    """``url_citation`` annotations for the resolved citations in an answer."""
    return [
        {
            "type": "url_citation",
            "start_index": m.start(),
            "end_index": m.end(),
            "url": m.group("url"),
            "title": m.group("title"),
        }
        for m in _LINK.finditer(text)
    ]


class ResponseBuilder:
    """Builds ``response`` (a Responses API object) from agent events."""

    def __init__(self, response: Payload, functions: list[ClientFunctions]) -> None:
        self.response = response
        self.functions = functions
        self._sequence = 0
        self._open: Payload | None = None  # the message or reasoning item being streamed
        self._text: list[str] = []
        self._calls: dict[tuple[int, str], Payload] = {}  # running built-in calls by step
        self._error: str = ""

    @property
    def output(self) -> list[Payload]:
        return self.response["output"]

    def _event(self, kind: str, **fields: Any) -> Payload:
        event = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return event

    def _snapshot(self) -> Payload:
        return json.loads(json.dumps(self.response))

    def start(self) -> list[Payload]:
        return [
            self._event("response.created", response=self._snapshot()),
            self._event("response.in_progress", response=self._snapshot()),
        ]

    def feed(self, event: Event) -> list[Payload]:
        if isinstance(event, ReasoningDelta):
            return self._delta("reasoning", event.text)
        if isinstance(event, CommentaryDelta | FinalDelta):
            return self._delta("message", event.text)
        if isinstance(event, ToolCallStarted):
            return self._close() + self._call_started(event)
        if isinstance(event, ToolCallFinished):
            return self._call_finished(event)
        if isinstance(event, Error):
            self._error = event.message
        elif isinstance(event, Usage):
            self.response["usage"] = {
                "input_tokens": event.prompt_tokens,
                "input_tokens_details": {
                    "cached_tokens": event.reused_tokens,
                    "cache_write_tokens": event.prompt_tokens - event.reused_tokens,
                },
                "output_tokens": event.output_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": event.prompt_tokens + event.output_tokens,
            }
        return []

    def finish(self, status: TurnStatus, *, reasoning_tokens: int = 0) -> list[Payload]:
        """Close what is open and set the final status; the last event names it."""
        events = self._close()
        state, reason = STATUS[status]
        self.response["status"] = state
        if reason:
            self.response["incomplete_details"] = {"reason": reason}
        if state == "failed":
            self.response["error"] = {
                "code": "server_error",
                "message": self._error or "the model's turn failed",
            }
        if self.response.get("usage"):
            self.response["usage"]["output_tokens_details"]["reasoning_tokens"] = reasoning_tokens
        kind = {"completed": "completed", "incomplete": "incomplete"}.get(state, "failed")
        return [*events, self._event(f"response.{kind}", response=self._snapshot())]

    def fail(self, message: str) -> list[Payload]:
        """The turn broke (a server bug): a failed response, no traceback."""
        self._error = message
        return self.finish(TurnStatus.ERROR)

    # -- message and reasoning items -----------------------------------------------------

    def _delta(self, kind: str, text: str) -> list[Payload]:
        events: list[Payload] = []
        if self._open is None or self._open["type"] != kind:
            events += self._close() + self._open_item(kind)
        item, index = self._open, len(self.output) - 1
        assert item is not None
        self._text.append(text)
        if kind == "reasoning":
            events.append(
                self._event(
                    "response.reasoning_text.delta",
                    item_id=item["id"],
                    output_index=index,
                    content_index=0,
                    delta=text,
                )
            )
        else:
            events.append(
                self._event(
                    "response.output_text.delta",
                    item_id=item["id"],
                    output_index=index,
                    content_index=0,
                    delta=text,
                    logprobs=[],
                )
            )
        return events

    def _open_item(self, kind: str) -> list[Payload]:
        if kind == "reasoning":
            item = {"id": new_id("rs"), "type": "reasoning", "summary": [], "content": []}
            part: Payload = {"type": "reasoning_text", "text": ""}
        else:
            item = {
                "id": new_id("msg"),
                "type": "message",
                "role": "assistant",
                "status": "in_progress",
                "content": [],
            }
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        self._open, self._text = item, []
        self.output.append(item)
        index = len(self.output) - 1
        return [
            self._event("response.output_item.added", output_index=index, item=dict(item)),
            self._event(
                "response.content_part.added",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                part=part,
            ),
        ]

    def _close(self) -> list[Payload]:
        item, self._open = self._open, None
        if item is None:
            return []
        index = self.output.index(item)
        text = "".join(self._text)
        if item["type"] == "reasoning":
            part: Payload = {"type": "reasoning_text", "text": text}
            done = self._event(
                "response.reasoning_text.done",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                text=text,
            )
        else:
            part = {
                "type": "output_text",
                "text": text,
                "annotations": annotations(text),
                "logprobs": [],
            }
            item["status"] = "completed"
            done = self._event(
                "response.output_text.done",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                text=text,
                logprobs=[],
            )
        item["content"] = [part]
        return [
            done,
            self._event(
                "response.content_part.done",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                part=part,
            ),
            self._event("response.output_item.done", output_index=index, item=item),
        ]

    # -- tool calls ------------------------------------------------------------------------

    def _call_started(self, event: ToolCallStarted) -> list[Payload]:
        resolved = resolve_call(event.recipient, self.functions)
        if resolved is not None:
            namespace, function = resolved
            return self._client_call(namespace, function.name, function.kind, event.arguments)
        item = _builtin_item(event.recipient, event.arguments)
        if item is None:  # a tool the model made up: the toolbox answered it, nothing to show
            return []
        self.output.append(item)
        self._calls[(event.step, event.recipient)] = item
        index = len(self.output) - 1
        events = [self._event("response.output_item.added", output_index=index, item=dict(item))]
        events.append(
            self._event(
                f"response.{item['type']}.in_progress", output_index=index, item_id=item["id"]
            )
        )
        return events

    def _call_finished(self, event: ToolCallFinished) -> list[Payload]:
        item = self._calls.pop((event.step, event.recipient), None)
        if item is None:
            return []
        index = self.output.index(item)
        item["status"] = "completed"
        if item["type"] == "code_interpreter_call":
            item["outputs"] = [{"type": "logs", "logs": event.output}]
        return [
            self._event(
                f"response.{item['type']}.completed", output_index=index, item_id=item["id"]
            ),
            self._event("response.output_item.done", output_index=index, item=item),
        ]

    def _client_call(
        self, namespace: ClientFunctions, name: str, kind: str, arguments: str
    ) -> list[Payload]:
        index = len(self.output)
        if kind == "custom":
            item: Payload = {
                "id": new_id("ctc"),
                "type": "custom_tool_call",
                "call_id": new_id("call"),
                "name": name,
                "input": custom_input(arguments),
                "status": "completed",
            }
            field, delta, done = (
                "input",
                "response.custom_tool_call_input.delta",
                "response.custom_tool_call_input.done",
            )
        else:
            item = {
                "id": new_id("fc"),
                "type": "function_call",
                "call_id": new_id("call"),
                "name": name,
                "arguments": arguments,
                "status": "completed",
            }
            field, delta, done = (
                "arguments",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
            )
        if namespace.name != "functions":
            item["namespace"] = namespace.name
        self.output.append(item)
        added = {**item, field: "", "status": "in_progress"}
        ids = {"item_id": item["id"], "output_index": index}
        return [
            self._event("response.output_item.added", output_index=index, item=added),
            self._event(delta, **ids, delta=item[field]),
            self._event(
                done, **ids, **{field: item[field]}, **({"name": name} if kind != "custom" else {})
            ),
            self._event("response.output_item.done", output_index=index, item=item),
        ]


def _builtin_item(recipient: str, arguments: str) -> Payload | None:
    """The output item for a server-side tool call (python, browser), still in progress."""
    recipient = recipient.removeprefix("functions.")
    if recipient == "python" or recipient.startswith("python."):
        return {
            "id": new_id("ci"),
            "type": "code_interpreter_call",
            "status": "in_progress",
            "code": arguments,
            "container_id": "ossa-sandbox",
            "outputs": None,
        }
    if not recipient.startswith("browser."):
        return None
    try:
        args = json.loads(arguments)
    except ValueError:
        args = {}
    args = args if isinstance(args, dict) else {}
    command = recipient.removeprefix("browser.")
    if command == "search":
        action: Payload = {"type": "search", "query": str(args.get("query", ""))}
    elif command == "open":
        target = args.get("id")
        action = {"type": "open_page", "url": target if isinstance(target, str) else ""}
    else:
        action = {"type": "find", "pattern": str(args.get("pattern", "")), "url": ""}
    return {
        "id": new_id("ws"),
        "type": "web_search_call",
        "status": "in_progress",
        "action": action,
    }
