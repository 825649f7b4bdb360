"""Fit a conversation into the context window before it is rendered.

The agent passes the messages the model sees (the reasoning of answered turns, with the
browser's results that came back on ``analysis``, is already left out). Near the limit, in
this order:

1. tool outputs from earlier turns are shortened to a head plus a marker, oldest first;
2. earlier turns are left out whole, oldest first;
3. tool outputs of the current turn, except the newest, are shortened.

The system and developer messages and the current turn's other messages are never dropped;
when they alone do not fit, :class:`ContextBudgetError` says so. The result is a pure function
of the messages and the limit, so a resumed session renders exactly the same tokens.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ossa.harmony import HarmonyEncoding, Message, Role, TextContent
from ossa.tools.base import message_text

#: Tokens of a shortened tool output that stay visible before the marker.
KEEP_TOKENS = 64


class ContextBudgetError(RuntimeError):
    """The protected part of the conversation does not fit the context window."""


@dataclass
class Fitted:
    messages: list[Message]
    shortened: int = 0
    dropped: int = 0


def fit(
    messages: list[Message],
    limit: int,
    encoding: HarmonyEncoding,
    count: Callable[[list[Message]], int],
) -> Fitted:
    """Messages whose rendering (``count``) is at most ``limit`` tokens."""
    if count(messages) <= limit:
        return Fitted(list(messages))
    head = leading_header_length(messages)
    turn = _current_turn_start(messages, head)
    fitted: dict[int, Message] = dict(enumerate(messages))  # index -> message still kept
    state = Fitted(list(messages))

    def over() -> bool:
        state.messages = [fitted[i] for i in sorted(fitted)]
        return count(state.messages) > limit

    def shorten(indices: list[int]) -> bool:
        for i in indices:
            short = _shorten(fitted[i], encoding)
            if short is not None:
                fitted[i] = short
                state.shortened += 1
                if not over():
                    return True
        return False

    tools = [i for i in range(head, len(messages)) if messages[i].author.role == Role.TOOL]
    if shorten([i for i in tools if i < turn]):
        return state
    for start, end in _turns(messages, head, turn):
        for i in range(start, end):
            del fitted[i]
            state.dropped += 1
        if not over():
            return state
    if shorten([i for i in tools if i >= turn][:-1]):
        return state
    raise ContextBudgetError(
        f"the conversation needs {count(state.messages)} tokens after shortening old tool "
        f"outputs and leaving out earlier turns, but the context allows {limit}: the system "
        "and developer messages and the current turn must fit (shorten the question or "
        "instructions, use fewer tools, or start a new session)"
    )


def leading_header_length(messages: list[Message]) -> int:
    """Leading system and developer messages."""
    n = 0
    while n < len(messages) and messages[n].author.role in (Role.SYSTEM, Role.DEVELOPER):
        n += 1
    return n


def _current_turn_start(messages: list[Message], head: int) -> int:
    for i in range(len(messages) - 1, head - 1, -1):
        if messages[i].author.role == Role.USER:
            return i
    return head


def _turns(messages: list[Message], head: int, turn: int) -> list[tuple[int, int]]:
    """Earlier turns as ``[start, end)`` ranges, each starting at a user message."""
    starts = [i for i in range(head, turn) if messages[i].author.role == Role.USER]
    if not starts or starts[0] != head:
        starts.insert(0, head)
    bounds = [*starts, turn]
    return [(a, b) for a, b in zip(bounds, bounds[1:], strict=False) if a < b]


def _shorten(message: Message, encoding: HarmonyEncoding) -> Message | None:
    text = message_text(message)
    tokens = encoding.encode(text, allowed_special="all")
    if len(tokens) <= KEEP_TOKENS:
        return None
    head = encoding.decode(tokens[:KEEP_TOKENS])
    marker = f"\n…[ossa: output shortened from {len(tokens)} to {KEEP_TOKENS} tokens to fit the context window]"
    short = Message.from_author_and_content(message.author, TextContent(text=head + marker))
    if message.recipient is not None:
        short = short.with_recipient(message.recipient)
    if message.channel is not None:
        short = short.with_channel(message.channel)
    if message.content_type is not None:
        short = short.with_content_type(message.content_type)
    return short
