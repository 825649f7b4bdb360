"""The tool contract: what a tool puts in the prompt and how it answers a message.

A tool owns one recipient namespace (``browser``, ``python``, ``functions``, an MCP server's
name). The agent routes each assistant message whose recipient falls in that namespace to
the tool's :meth:`Tool.call`, and appends the tool messages it returns. A tool never lets an
exception reach the agent: failures become tool messages the model can read.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from ossa.harmony import Author, Message, Role, TextContent, ToolNamespaceConfig


class Tool(ABC):
    """One recipient namespace and what it puts into the prompt."""

    #: The namespace: a message to ``browser.search`` goes to the tool named ``browser``.
    name: str
    #: True for the built-ins the model was trained with (rendered in the system message);
    #: False for tools rendered in the developer message (functions, MCP namespaces).
    builtin: bool = False

    @abstractmethod
    def namespace(self) -> ToolNamespaceConfig:
        """The namespace exactly as the model will see it in the prompt."""

    @abstractmethod
    def call(self, message: Message) -> list[Message]:
        """Answer an assistant message addressed to this namespace (never raises)."""

    def close(self) -> None:
        """Release what the tool holds (browser cache, sandbox session, server processes)."""

    def reply(self, message: Message, text: str, *, author: str | None = None) -> Message:
        """A tool message answering ``message``, on the caller's channel, back to the assistant."""
        name = author or message.recipient or self.name
        reply = Message.from_author_and_content(Author.new(Role.TOOL, name), TextContent(text=text))
        reply = reply.with_recipient("assistant")
        if message.channel is not None:
            reply = reply.with_channel(message.channel)
        return reply
