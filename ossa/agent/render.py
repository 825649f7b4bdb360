"""Show agent events in a terminal with rich: dimmed reasoning, tool panels, Markdown answers.

The agent's generator runs on the caller's thread; :class:`TerminalView` only queues its events
and a display thread draws them, so a slow terminal never holds the engine back. The thread
merges the deltas that arrived since its last look and redraws the open part of the answer at a
bounded rate (:mod:`ossa.agent.markdown_stream` prints each finished block once), which keeps
the cost of showing an answer linear in its length. Between the user's Enter and the first
token, and while a tool runs, it shows a spinner, under the last lines of the output the tool
streams (a python cell's prints) until the tool's panel takes their place. Everything shown
passes through :mod:`ossa.agent.sanitize`: no escape sequence from the model or a tool reaches
the terminal.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import threading
import time
from dataclasses import dataclass
from queue import Empty, SimpleQueue

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.live import Live
from rich.panel import Panel
from rich.segment import Segment
from rich.spinner import Spinner
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
    ToolOutputDelta,
    TurnEnd,
    Usage,
)
from ossa.agent.markdown_stream import MarkdownStream, render_markdown
from ossa.agent.sanitize import ControlFilter, strip_controls
from ossa.harmony import Message, Role, TextContent
from ossa.tools.base import message_text

#: Characters of a tool result shown in its panel.
RESULT_CHARS = 600
#: Most redraws of the open part of an answer per second.
REFRESH_PER_SECOND = 12.0
#: Redraws never take more than this share of the display thread's time (a tall open block).
MAX_REDRAW_SHARE = 0.3
#: Lines of a running tool's output shown live above its spinner (the final panel replaces them).
LIVE_OUTPUT_LINES = 12
#: How often the spinner moves.
SPINNER_SECONDS = 0.08


def shorten(text: str, limit: int = RESULT_CHARS) -> str:
    """The head of ``text`` with a note of how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n… ({len(text) - limit} more characters)"


def hyperlinks(console: Console) -> bool:
    """Whether links can be terminal hyperlinks (OSC 8); elsewhere they become footnotes."""
    return (
        console.is_terminal
        and not console.is_dumb_terminal
        and os.environ.get("TERM", "") != "linux"  # the Linux console prints OSC 8 as text
    )


class TerminalView:
    """Renders one turn's events as they arrive: call :meth:`begin_turn` when the user's
    message is sent, :meth:`show` for each event, :meth:`close` when the turn is over.

    ``show`` only queues the event; a display thread started on demand draws it. ``close``
    waits until everything queued is on the screen (a first Ctrl-C while it waits drops what is
    not drawn yet; a second one is raised) and re-raises a failure of the display thread.
    """

    def __init__(self, console: Console, *, show_reasoning: bool = True) -> None:
        self.console = console
        self.show_reasoning = show_reasoning
        self._display: _Display | None = None

    def begin_turn(self) -> None:
        """Show a spinner until the first event of the turn arrives."""
        self._send(_Waiting("thinking"))

    def show(self, event: Event) -> None:
        """Queue ``event`` for the display; returns at once."""
        self._send(event)

    def close(self) -> None:
        """Finish the turn's output: flush what is queued and stop the display thread."""
        display, self._display = self._display, None
        if display is None:
            return
        display.queue.put(_CLOSE)
        try:
            display.thread.join()
        except KeyboardInterrupt:
            display.abandon.set()
            display.thread.join()
        if display.failure is not None:
            raise display.failure

    def _send(self, item: object) -> None:
        if self._display is None:
            self._display = _Display(self)
        self._display.queue.put(item)


@dataclass(frozen=True)
class _Waiting:
    """Nothing to show until the next event: spin with this label."""

    label: str


_CLOSE = object()
_DELTAS = (ReasoningDelta, CommentaryDelta, FinalDelta)


class _Display:
    """The display thread's state: what is on the screen and what comes next."""

    def __init__(self, view: TerminalView) -> None:
        self.view = view
        self.console = view.console
        self.queue: SimpleQueue[object] = SimpleQueue()
        self.abandon = threading.Event()
        self.failure: BaseException | None = None
        self.interactive = self.console.is_interactive
        self.hyperlinks = hyperlinks(self.console)
        self.live: Live | None = None
        self.spinner: Spinner | None = None
        self.next_spin = 0.0
        self.inline = False  # reasoning/commentary text printed without a newline yet
        self.answer: MarkdownStream | None = None
        self.dirty = False  # the answer has text not drawn yet
        self.next_redraw = 0.0
        self.filters = {kind: ControlFilter() for kind in _DELTAS}
        self.tool_output = ""  # the tail of the running tool's streamed output, sanitized
        self.tool_filter = ControlFilter()
        self.thread = threading.Thread(target=self._run, name="ossa-display", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while not self.abandon.is_set():
                items = self._next_items()
                closing = _CLOSE in items
                for item in _merged(items):
                    if self.abandon.is_set():
                        break
                    self._handle(item)
                if closing:
                    break
                self._redraw()
                self._turn_spinner()
            self._finish()
        except BaseException as exc:  # the caller's close() raises it
            self.failure = exc
            with contextlib.suppress(Exception):
                self._stop_live()  # give the terminal its cursor back

    def _next_items(self) -> list[object]:
        """What arrived since the last look; waits until something did or a redraw is due."""
        due = [self.next_redraw] if self.dirty else []
        if self.spinner is not None:
            due.append(self.next_spin)
        timeout = max(0.0, min(due) - time.monotonic()) if due else None
        try:
            items = [self.queue.get(timeout=timeout)]
        except Empty:
            return []
        while True:
            try:
                items.append(self.queue.get_nowait())
            except Empty:
                return items

    def _handle(self, item: object) -> None:
        if isinstance(item, _Waiting):
            self._end_text()
            self._spin(item.label)
        elif isinstance(item, ReasoningDelta | CommentaryDelta):
            shown = isinstance(item, CommentaryDelta) or self.view.show_reasoning
            text = self.filters[type(item)].feed(item.text)
            if shown and text:
                self._end_answer()
                self._stop_live()
                style = "cyan" if isinstance(item, CommentaryDelta) else "dim italic"
                self.console.print(Text(text, style=style), end="")
                self.inline = True
        elif isinstance(item, FinalDelta):
            self._end_inline()
            self.spinner = None  # the answer's first redraw takes the spinner's place
            if self.answer is None:
                self.answer = MarkdownStream(hyperlinks=self.hyperlinks)
                self.next_redraw = 0.0
            self.answer.feed(self.filters[FinalDelta].feed(item.text))
            self.dirty = True
        elif isinstance(item, ToolOutputDelta):
            self._tool_output(item.recipient, self.tool_filter.feed(item.text))
        elif isinstance(item, Event):
            self._end_text()
            self._stop_live()
            if shown := _block(item):
                self.console.print(*shown)
            if isinstance(item, ToolCallStarted):
                self.tool_output, self.tool_filter = "", ControlFilter()
                self._spin(f"running {strip_controls(item.recipient)}")
            elif isinstance(item, ToolCallFinished | Notice):
                self._spin("thinking")

    def _redraw(self) -> None:
        """Print the answer's finished blocks and redraw its open part, at a bounded rate."""
        start = time.monotonic()
        if self.answer is None or not self.dirty or start < self.next_redraw:
            return
        finished = self.answer.finished()
        if finished is not None:
            self.console.print(finished)
        if self.interactive:
            self._show_live(_Bottom(self.answer.live()))
        self.dirty = False
        cost = time.monotonic() - start
        self.next_redraw = start + max(1 / REFRESH_PER_SECOND, cost / MAX_REDRAW_SHARE)

    def _tool_output(self, recipient: str, text: str) -> None:
        """Show the last lines of a running tool's output above its spinner (interactive only:
        elsewhere the tool's panel shows the output once, when the call ends)."""
        if not self.interactive or not text:
            return
        lines = (self.tool_output + text).splitlines(keepends=True)[-LIVE_OUTPUT_LINES:]
        self.tool_output = "".join(lines)[-LIVE_OUTPUT_LINES * 200 :]
        if self.spinner is None:
            self._spin(f"running {strip_controls(recipient)}")
        output = Text(self.tool_output.rstrip("\n"), style="dim", no_wrap=True, overflow="ellipsis")
        self._show_live(Group(output, self.spinner))

    def _spin(self, label: str) -> None:
        if not self.interactive:
            return
        self.spinner = Spinner("dots", Text(label, style="dim"), style="dim")
        self.next_spin = time.monotonic() + SPINNER_SECONDS
        self._show_live(self.spinner)

    def _turn_spinner(self) -> None:
        """Move the spinner on when it is due (hidden reasoning may be streaming meanwhile)."""
        now = time.monotonic()
        if self.spinner is not None and self.live is not None and now >= self.next_spin:
            self.live.refresh()
            self.next_spin = now + SPINNER_SECONDS

    def _show_live(self, renderable: RenderableType) -> None:
        if self.live is None:
            self.live = Live(
                renderable,
                console=self.console,
                auto_refresh=False,
                transient=True,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self.live.start(refresh=True)
        else:
            self.live.update(renderable, refresh=True)

    def _stop_live(self) -> None:
        self.spinner = None
        if self.live is not None:
            self.live.update(Text(""))  # stop() draws once more: nothing tall to wipe
            self.live.stop()
            self.live = None

    def _end_text(self) -> None:
        self._end_inline()
        self._end_answer()

    def _end_inline(self) -> None:
        for kind in (ReasoningDelta, CommentaryDelta):
            rest = self.filters[kind].flush()
            if rest and (kind is CommentaryDelta or self.view.show_reasoning):
                self.console.print(Text(rest), end="")
                self.inline = True
        if self.inline:
            self.console.print()
            self.inline = False

    def _end_answer(self) -> None:
        if self.answer is None:
            return
        self.answer.feed(self.filters[FinalDelta].flush())
        self._stop_live()
        parts = self.answer.end()
        self.answer, self.dirty = None, False
        if parts:
            self.console.print(*parts)

    def _finish(self) -> None:
        if self.abandon.is_set():
            self._stop_live()
            self.answer = None
            self.console.print(Text("… (display stopped)", style="dim"))
        self._end_text()
        self._stop_live()


def _merged(items: list[object]) -> list[object]:
    """Runs of deltas of one kind joined into one (the display catches up in one step)."""
    merged: list[object] = []
    for item in items:
        last = merged[-1] if merged else None
        if isinstance(item, _DELTAS) and type(last) is type(item):
            merged[-1] = type(item)(text=last.text + item.text)  # type: ignore[union-attr]
        elif isinstance(item, ToolOutputDelta) and isinstance(last, ToolOutputDelta):
            merged[-1] = dataclasses.replace(last, text=last.text + item.text)
        else:
            merged.append(item)
    return merged


class _Bottom:
    """The last lines of a renderable that fit the terminal, so a tall open block scrolls."""

    def __init__(self, renderable: RenderableType) -> None:
        self.renderable = renderable

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        lines = console.render_lines(self.renderable, options.update(height=None), pad=False)
        for line in lines[-max(1, console.height - 1) :]:
            yield from line
            yield Segment.line()


def _block(event: Event) -> list[RenderableType]:
    """What a non-streamed event shows: a panel for a tool call, a line for the rest."""
    if isinstance(event, ToolCallStarted):
        return [_call_panel(event.recipient, event.arguments)]
    if isinstance(event, ToolCallFinished):
        return [_output_panel(event.recipient, event.output)]
    if isinstance(event, Notice):
        return [Text(f"! {strip_controls(event.message)}", style="yellow")]
    if isinstance(event, Error):
        return [Text(f"error ({event.kind}): {strip_controls(event.message)}", style="bold red")]
    if isinstance(event, Usage):
        return [
            Text(
                f"{event.prompt_tokens} prompt tokens ({event.reused_tokens} reused), "
                f"{event.output_tokens} generated, {event.model_calls} model call(s)",
                style="dim",
            )
        ]
    if isinstance(event, TurnEnd) and event.status != "completed":
        return [Text(f"[turn ended: {event.status}]", style="yellow")]
    return []


def _call_panel(recipient: str, arguments: str) -> Panel:
    title = Text(f"→ {strip_controls(recipient)}", style="bold")  # Text: no markup in names
    return Panel(_arguments(recipient, strip_controls(arguments)), title=title, border_style="blue")


def _output_panel(name: str, output: str) -> Panel:
    title = Text(f"← {strip_controls(name)}", style="bold")
    return Panel(Text(shorten(strip_controls(output))), title=title, border_style="green")


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
            console.print(Text(f"> {strip_controls(text)}", style="bold"))
        elif role == Role.TOOL:
            console.print(_output_panel(message.author.name or "tool", text))
        elif message.recipient is not None and role == Role.ASSISTANT:
            console.print(_call_panel(message.recipient, text))
        elif message.channel == "analysis":
            if show_reasoning:
                console.print(Text(strip_controls(text), style="dim italic"))
        elif role == Role.ASSISTANT:
            console.print(*render_markdown(strip_controls(text), hyperlinks=hyperlinks(console)))
        else:
            console.print(Text(f"[{role.value}] {strip_controls(text)}", style="yellow"))


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
