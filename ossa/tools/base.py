"""The tool contract: what a tool puts in the prompt and how it answers a message.

A tool owns one recipient namespace (``browser``, ``python``, ``functions``, an MCP server's
name). The agent routes each assistant message whose recipient falls in that namespace to
the tool's :meth:`Tool.call`, and appends the tool messages it returns. A tool never lets an
exception reach the agent: failures become tool messages the model can read.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Protocol

from ossa.harmony import Author, Message, Role, TextContent, ToolNamespaceConfig


class Tool(ABC):
    """One recipient namespace and what it puts into the prompt."""

    #: The namespace: a message to ``browser.search`` goes to the tool named ``browser``.
    name: str
    #: True for the built-ins the model was trained with (rendered in the system message);
    #: False for tools rendered in the developer message (functions, MCP namespaces).
    builtin: bool = False
    #: True for tools an API client runs itself (``ossa serve``): a call to one ends the
    #: agent's turn, and the client sends the result with its next request.
    client_side: bool = False

    @abstractmethod
    def namespace(self) -> ToolNamespaceConfig:
        """The namespace exactly as the model will see it in the prompt."""

    @abstractmethod
    def call(self, message: Message) -> list[Message]:
        """Answer an assistant message addressed to this namespace (never raises)."""

    def call_streaming(self, message: Message, progress: Callable[[str], None]) -> list[Message]:
        """:meth:`call`, reporting output to ``progress`` while the call runs (the python
        tool streams a cell's prints). The default reports nothing, so every tool has it;
        the returned messages stay the whole answer, whatever was reported."""
        return self.call(message)

    def close(self) -> None:  # noqa: B027 - an optional hook
        """Release what the tool holds (browser cache, sandbox session, server processes)."""

    def interrupt(self) -> bool:
        """Stop a call running in another thread, if the tool can (the python cell can);
        safe from any thread. Returns whether something was stopped."""
        return False

    def answer_filter(self) -> AnswerFilter | None:
        """A rewrite of the final answer's text for people (the browser resolves citations).

        Called once per completion; the filter sees the answer as it streams. The model's own
        text stays in the conversation unchanged.
        """
        return None

    def reply(self, message: Message, text: str, *, author: str | None = None) -> Message:
        """A tool message answering ``message`` (see :func:`tool_message`)."""
        return tool_message(message, text, author=author or message.recipient or self.name)


class AnswerFilter(Protocol):
    """Rewrites streamed answer text; may hold text back until it can decide (``flush``)."""

    def feed(self, text: str) -> str:
        """The rewritten text that is safe to show now."""
        ...

    def flush(self) -> str:
        """Whatever is still held, rewritten, at the end of the answer."""
        ...


def tool_message(message: Message, text: str, *, author: str) -> Message:
    """A tool message from ``author`` answering ``message``, on the caller's channel, to the assistant."""
    reply = Message.from_author_and_content(Author.new(Role.TOOL, author), TextContent(text=text))
    reply = reply.with_recipient("assistant")
    if message.channel is not None:
        reply = reply.with_channel(message.channel)
    return reply


def message_text(message: Message) -> str:
    """The text the assistant sent (the concatenation of its text parts)."""
    return "".join(getattr(part, "text", "") for part in message.content)
