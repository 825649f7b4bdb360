"""The machine-readable result of one task (``ossa run --json``, one line of ``ossa batch``).

The status is a turn status (:data:`ossa.agent.events.STATUSES`); ``error`` is also the
status of a task that could not start, with the reason in ``errors``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ossa.agent.events import STATUSES, Error, Event, ToolCallFinished, TurnEnd, Usage
from ossa.harmony import Message

#: Exit status of ``ossa run`` per turn status (2 is taken by usage errors).
EXIT_CODES = {"completed": 0, "error": 1, "max_steps": 3, "max_tokens": 4, "interrupted": 130}

_USAGE_KEYS = ("prompt_tokens", "reused_tokens", "output_tokens", "model_calls")

#: JSON Schema of a result object.
RESULT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["status", "answer", "steps", "messages", "usage", "errors"],
    "properties": {
        "id": {"type": ["string", "integer"]},
        "status": {"enum": list(STATUSES)},
        "answer": {"type": "string"},
        "steps": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["recipient", "arguments", "output"],
                "properties": {
                    "recipient": {"type": "string"},
                    "arguments": {"type": "string"},
                    "output": {"type": "string"},
                },
            },
        },
        "messages": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["role", "content"],
                "properties": {"role": {"type": "string"}, "content": {"type": "array"}},
            },
        },
        "usage": {
            "type": "object",
            "required": list(_USAGE_KEYS),
            "properties": {key: {"type": "integer", "minimum": 0} for key in _USAGE_KEYS},
        },
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["kind", "message"],
                "properties": {"kind": {"type": "string"}, "message": {"type": "string"}},
            },
        },
        "session": {"type": "string"},
    },
}


def task_result(events: Iterable[Event], messages: list[Message]) -> dict[str, Any]:
    """Collect a turn's events (already consumed) and the final conversation into a result.

    This is the one place that reads event fields for results, so a change to the events
    is a change here only.
    """
    result = _empty([m.to_dict() for m in messages])
    for event in events:
        if isinstance(event, ToolCallFinished):
            result["steps"].append(
                {"recipient": event.recipient, "arguments": event.arguments, "output": event.output}
            )
        elif isinstance(event, Error):
            result["errors"].append({"kind": event.kind, "message": event.message})
        elif isinstance(event, Usage):
            result["usage"] = {key: getattr(event, key) for key in _USAGE_KEYS}
        elif isinstance(event, TurnEnd):
            result["status"] = str(getattr(event.status, "value", event.status))
            result["answer"] = event.answer
    return result


def failed_result(kind: str, message: str) -> dict[str, Any]:
    """The result of a task that never ran (a bad task line, a model that did not load)."""
    result = _empty([])
    result["errors"].append({"kind": kind, "message": message})
    return result


def _empty(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "status": "error",
        "answer": "",
        "steps": [],
        "messages": messages,
        "usage": dict.fromkeys(_USAGE_KEYS, 0),
        "errors": [],
    }
