"""Small helpers over harmony messages shared by the loop, transcripts and renderers."""

from __future__ import annotations

from ossa.harmony import Author, Message, Role, TextContent


def text_of(message: Message) -> str:
    """All text content of a message joined (system/developer contents have none)."""
    return "".join(getattr(c, "text", "") for c in message.content)


def tool_reply(call: Message, text: str) -> Message:
    """A tool message answering ``call`` on its channel, as a tool would."""
    author = Author.new(Role.TOOL, call.recipient or "tool")
    reply = Message.from_author_and_content(author, TextContent(text=text))
    reply = reply.with_recipient("assistant")
    return reply.with_channel(call.channel) if call.channel else reply
