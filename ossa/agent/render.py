"""Show agent events in a terminal with rich: dimmed reasoning, tool panels, Markdown answers."""

from __future__ import annotations

import json

from rich.console import Console
from rich.live import Live
from rich.markdown import Markdown
from rich.panel import Panel
from rich.syntax import Syntax
from rich.text import Text

from ossa.agent.events import (
    CommentaryDelta,
    Error,
    Event,
    FinalDelta,
    Notice,
    ReasoningDelta,
    ToolCallFinished,
    ToolCallStarted,
    TurnEnd,
    Usage,
)
from ossa.harmony import Message, Role, TextContent
from ossa.tools.base import message_text

#: Characters of a tool result shown in its panel.
RESULT_CHARS = 600


def shorten(text: str, limit: int = RESULT_CHARS) -> str:
    """The head of ``text`` with a note of how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n… ({len(text) - limit} more characters)"


class TerminalView:
    """Renders one turn's events as they arrive; call :meth:`show` for each event."""

    def __init__(self, console: Console, *, show_reasoning: bool = True) -> None:
        self.console = console
        self.show_reasoning = show_reasoning
        self._inline = False  # reasoning/commentary text printed without a newline yet
        self._answer = ""
        self._live: Live | None = None

    def show(self, event: Event) -> None:
        if isinstance(event, ReasoningDelta):
            if self.show_reasoning:
                self._stream(event.text, "dim italic")
        elif isinstance(event, CommentaryDelta):
            self._stream(event.text, "cyan")
        elif isinstance(event, FinalDelta):
            self._final(event.text)
        else:
            self._end_inline()
            self._stop_live()
            self._block(event)

    def close(self) -> None:
        """Finish the turn's output (stops the live answer view)."""
        self._end_inline()
        self._stop_live()

    def _stream(self, text: str, style: str) -> None:
        self._stop_live()
        self.console.print(Text(text, style=style), end="")
        self._inline = True

    def _final(self, text: str) -> None:
        self._end_inline()
        self._answer += text
        if self._live is None:
            self._live = Live(
                Markdown(self._answer), console=self.console, refresh_per_second=8, transient=False
            )
            self._live.start()
        else:
            self._live.update(Markdown(self._answer))

    def _block(self, event: Event) -> None:
        if isinstance(event, ToolCallStarted):
            body = _arguments(event.recipient, event.arguments)
            self.console.print(Panel(body, title=f"[bold]→ {event.recipient}", border_style="blue"))
        elif isinstance(event, ToolCallFinished):
            self.console.print(
                Panel(
                    Text(shorten(event.output)),
                    title=f"[bold]← {event.recipient}",
                    border_style="green",
                )
            )
        elif isinstance(event, Notice):
            self.console.print(Text(f"! {event.message}", style="yellow"))
        elif isinstance(event, Error):
            self.console.print(Text(f"error ({event.kind}): {event.message}", style="bold red"))
        elif isinstance(event, Usage):
            self.console.print(
                Text(
                    f"{event.prompt_tokens} prompt tokens ({event.reused_tokens} reused), "
                    f"{event.output_tokens} generated, {event.model_calls} model call(s)",
                    style="dim",
                )
            )
        elif isinstance(event, TurnEnd) and event.status != "completed":
            self.console.print(Text(f"[turn ended: {event.status}]", style="yellow"))

    def _end_inline(self) -> None:
        if self._inline:
            self.console.print()
            self._inline = False

    def _stop_live(self) -> None:
        if self._live is not None:
            self._live.stop()
            if not self.console.is_terminal:
                self.console.print()  # off a terminal, Live leaves the cursor after the answer
            self._live = None
            self._answer = ""


def _arguments(recipient: str, arguments: str) -> Syntax | Text:
    """Code for python, pretty JSON for JSON arguments, plain text otherwise."""
    if recipient.split(".")[0] == "python":
        return Syntax(arguments, "python", word_wrap=True)
    try:
        parsed = json.loads(arguments)
    except ValueError:
        return Text(shorten(arguments))
    return Syntax(json.dumps(parsed, indent=2, ensure_ascii=False), "json", word_wrap=True)


def _is_header(message: Message) -> bool:
    """The system/developer message holding the configuration, not text a person wrote."""
    return message.author.role in (Role.SYSTEM, Role.DEVELOPER) and not isinstance(
        message.content[0], TextContent
    )


def show_messages(console: Console, messages: list[Message], *, show_reasoning: bool) -> None:
    """Print a stored conversation: what the user saw, tool calls and outputs in panels."""
    for message in messages:
        if _is_header(message):
            continue
        role, text = message.author.role, message_text(message)
        if role == Role.USER:
            console.print(Text(f"> {text}", style="bold"))
        elif role == Role.TOOL:
            name = message.author.name or "tool"
            console.print(Panel(Text(shorten(text)), title=f"← {name}", border_style="green"))
        elif message.recipient is not None and role == Role.ASSISTANT:
            body = _arguments(message.recipient, text)
            console.print(Panel(body, title=f"→ {message.recipient}", border_style="blue"))
        elif message.channel == "analysis":
            if show_reasoning:
                console.print(Text(text, style="dim italic"))
        elif role == Role.ASSISTANT:
            console.print(Markdown(text))
        else:
            console.print(Text(f"[{role.value}] {text}", style="yellow"))


def conversation_markdown(messages: list[Message]) -> str:
    """A readable Markdown export of a conversation (reasoning as quotes, tools as code)."""
    parts = []
    for message in messages:
        if _is_header(message):
            continue
        role, text = message.author.role, message_text(message)
        if role == Role.USER:
            parts.append(f"## User\n\n{text}")
        elif role == Role.TOOL:
            parts.append(f"**{message.author.name or 'tool'} output**\n\n```\n{text}\n```")
        elif message.recipient is not None:
            parts.append(f"**call {message.recipient}**\n\n```\n{text}\n```")
        elif message.channel == "analysis":
            parts.append("\n".join(f"> {line}" for line in text.splitlines()))
        elif role == Role.ASSISTANT:
            parts.append(f"## Assistant\n\n{text}")
        else:
            parts.append(f"*{role.value}: {text}*")
    return "\n\n".join(parts) + "\n"
