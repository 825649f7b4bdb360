"""Typed events the agent loop emits while it works on a turn.

The terminal renderer, ``ossa run --json``, batch results and the session transcript all read
the same events, so a plugin author sees exactly what the user saw. Every event turns into a
plain JSON object (``to_dict``) and back (``event_from_dict``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar


class TurnStatus(StrEnum):
    """Why a turn ended (a string in JSON; ``ossa run`` maps each to an exit status)."""

    COMPLETED = "completed"
    MAX_STEPS = "max_steps"  # the model-call limit (setting ``max_steps``) was reached
    MAX_TOKENS = "max_tokens"  # the token limit or the context window cut the answer
    INTERRUPTED = "interrupted"
    ERROR = "error"


@dataclass(frozen=True)
class Event:
    """Base class: ``type`` names the event in JSON."""

    type: ClassVar[str] = "event"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, **dataclasses.asdict(self)}


@dataclass(frozen=True)
class ReasoningDelta(Event):
    """Text the model streamed on the ``analysis`` channel (its chain of thought)."""

    type: ClassVar[str] = "reasoning_delta"
    text: str


@dataclass(frozen=True)
class CommentaryDelta(Event):
    """Text streamed on ``commentary`` with no recipient: a preamble meant for the user."""

    type: ClassVar[str] = "commentary_delta"
    text: str


@dataclass(frozen=True)
class FinalDelta(Event):
    """Answer text on the ``final`` channel, with citations already resolved to links."""

    type: ClassVar[str] = "final_delta"
    text: str


@dataclass(frozen=True)
class ToolCallStarted(Event):
    """The model addressed a tool; ``arguments`` is the message text (JSON or code).

    ``step`` is the number of the turn's step (its model call) that made the call.
    """

    type: ClassVar[str] = "tool_call_started"
    step: int
    recipient: str
    arguments: str


@dataclass(frozen=True)
class ToolOutputDelta(Event):
    """Output a tool reported while its call runs (a python cell's prints, as they come).

    Only a preview: the :class:`ToolCallFinished` that follows carries the call's whole
    output, as the model reads it, so transcripts do not keep these.
    """

    type: ClassVar[str] = "tool_output_delta"
    step: int
    recipient: str
    text: str


@dataclass(frozen=True)
class ToolCallFinished(Event):
    """What the tool answered (all its messages' text joined)."""

    type: ClassVar[str] = "tool_call_finished"
    step: int
    recipient: str
    arguments: str
    output: str


@dataclass(frozen=True)
class Notice(Event):
    """Something the loop did on its own that the user should know about (a repair, a shrink)."""

    type: ClassVar[str] = "notice"
    message: str


@dataclass(frozen=True)
class Error(Event):
    """A problem that ended or disturbed the turn; ``kind`` is a short machine-readable tag."""

    type: ClassVar[str] = "error"
    kind: str
    message: str


@dataclass(frozen=True)
class Usage(Event):
    """Token counts for the turn: the sum of each model call's own usage."""

    type: ClassVar[str] = "usage"
    prompt_tokens: int = 0
    reused_tokens: int = 0
    output_tokens: int = 0
    model_calls: int = 0


@dataclass(frozen=True)
class TurnEnd(Event):
    """The turn is over; ``answer`` has resolved links.

    A turn is a sequence of steps, one model call each: ``model_calls`` counts them (the
    ``max_steps`` setting bounds it), ``tool_calls`` the tool calls they made.
    """

    type: ClassVar[str] = "turn_end"
    status: TurnStatus
    answer: str = ""
    model_calls: int = 0
    tool_calls: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", TurnStatus(self.status))


#: Why a turn ended, as the strings JSON carries.
STATUSES = tuple(s.value for s in TurnStatus)

_TYPES: dict[str, type[Event]] = {
    cls.type: cls
    for cls in (
        ReasoningDelta,
        CommentaryDelta,
        FinalDelta,
        ToolCallStarted,
        ToolOutputDelta,
        ToolCallFinished,
        Notice,
        Error,
        Usage,
        TurnEnd,
    )
}


#: Fields renamed since transcripts were first written: (event type, old name) -> new name.
_RENAMED = {("turn_end", "steps"): "tool_calls"}


def event_from_dict(data: dict[str, Any]) -> Event:
    """Rebuild an event written by :meth:`Event.to_dict` (by this or an earlier version)."""
    fields = dict(data)
    kind = fields.pop("type", None)
    if kind not in _TYPES:
        raise ValueError(f"unknown event type {kind!r}")
    fields = {_RENAMED.get((kind, name), name): value for name, value in fields.items()}
    return _TYPES[kind](**fields)
