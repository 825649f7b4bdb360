"""The agent loop: render the conversation, stream a completion, run tool calls, repeat.

One :meth:`Agent.run` call is one user turn. It appends the user message, then for each step
renders the whole conversation (the engine reuses the common prefix of its KV cache), streams
the completion through the tolerant harmony parser while emitting events, and either runs the
tool call the completion ends with or finishes on the final answer. Analysis is dropped by
harmony's own rendering rule. Everything appended is also written to the session transcript.

Robustness: a malformed completion gets a short corrective message and another try (bounded),
a tool failure is a tool message (the toolbox never raises), an engine error ends the turn
with an ``error`` event, and an interrupt (Ctrl-C or :meth:`Agent.interrupt`) discards the
half-generated completion or answers the running tool call, so the conversation stays valid.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

from ossa.agent import budget
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
from ossa.agent.settings import EFFORTS, Settings
from ossa.harmony import (
    Conversation,
    DeveloperContent,
    Message,
    ReasoningEffort,
    Role,
    StreamableParser,
    SystemContent,
    load_harmony_encoding,
)
from ossa.tools.base import message_text, tool_message

if TYPE_CHECKING:
    from ossa.agent.engines import Engine
    from ossa.agent.sessions import Session
    from ossa.tools import Toolbox

#: Corrective retries per turn before a malformed completion ends the turn with an error.
MAX_REPAIRS = 2


class Agent:
    """A conversation with one engine and (optionally) a toolbox."""

    def __init__(
        self,
        engine: Engine,
        toolbox: Toolbox | None = None,
        settings: Settings | None = None,
        *,
        session: Session | None = None,
        messages: list[Message] | None = None,
        start_date: str | None = None,
    ) -> None:
        settings = settings or Settings()
        self.engine = engine
        self.toolbox = toolbox
        self.instructions = settings.instructions
        self.max_steps = settings.max_steps
        self.max_tokens = settings.max_tokens
        self.sampling = {
            "temperature": settings.temperature,
            "top_p": settings.top_p,
            "seed": settings.seed,
        }
        self._effort = settings.effort
        self.session = session
        self.encoding = load_harmony_encoding()
        self._stop = self.encoding.stop_tokens_for_assistant_actions()
        self._interrupted = threading.Event()
        self._start_date = start_date or date.today().isoformat()
        self.messages: list[Message] = []
        if messages:
            self.messages = list(messages)
        else:
            for message in self._header():
                self._append(message)

    # -- settings that change the system/developer messages ------------------------------

    @property
    def effort(self) -> str:
        return self._effort

    def reconfigure(self, *, effort: str, toolbox: Toolbox | None) -> None:
        """Change the reasoning effort and the tools: the leading messages are rebuilt."""
        self._effort = effort
        self.toolbox = toolbox
        header = self._header()
        self.messages[: budget.leading_header_length(self.messages)] = header
        if self.session is not None:
            self.session.replace_header(header)

    def reset(self, session: Session | None = None) -> None:
        """Start over (``/new``): only the header, recorded in ``session``."""
        self.session = session
        self.messages = []
        for message in self._header():
            self._append(message)

    def _header(self) -> list[Message]:
        if self._effort not in EFFORTS:
            raise ValueError(f"effort must be one of {', '.join(EFFORTS)}, not {self._effort!r}")
        system = (
            SystemContent.new()
            .with_reasoning_effort(ReasoningEffort[self._effort.upper()])
            .with_conversation_start_date(self._start_date)
        )
        developer = DeveloperContent.new()
        if self.instructions:
            developer = developer.with_instructions(self.instructions)
        if self.toolbox is not None:
            system = self.toolbox.system_content(system)
            developer = self.toolbox.developer_content(developer)
        header = [Message.from_role_and_content(Role.SYSTEM, system)]
        if developer.instructions or developer.tools:
            header.append(Message.from_role_and_content(Role.DEVELOPER, developer))
        return header

    # -- the loop ------------------------------------------------------------------------

    def interrupt(self) -> None:
        """Stop the running turn at the next token or after the running tool call."""
        self._interrupted.set()

    def run(self, text: str) -> Iterator[Event]:
        """One user turn: yields events, the last one a :class:`TurnEnd`."""
        self._interrupted.clear()
        self._append(Message.from_role_and_content(Role.USER, text))
        recorder = _Recorder(self.session)
        for event in self._turn():
            recorder.record(event)
            yield event
        recorder.flush()

    def _turn(self) -> Iterator[Event]:
        usage = dict.fromkeys(_STAT_NAMES, 0)
        calls = generated = repairs = steps = 0
        answer = ""
        status = "completed"
        while True:
            if calls >= self.max_steps:
                status = "max_steps"
                break
            try:
                prompt, notice = self._prompt()
            except budget.ContextBudgetError as exc:
                yield Error("context", str(exc))
                status = "error"
                break
            if notice:
                yield Notice(notice)
            room = min(self.max_tokens - generated, self.engine.context_length - len(prompt))
            if room <= 0:
                status = "max_tokens"
                break
            calls += 1
            completion = _Completion(self.encoding, self._citations(), room)
            events = None
            try:
                events = completion.stream(self._generate(prompt, room))
                for event in events:
                    yield event
                    if self._interrupted.is_set():
                        break
            except KeyboardInterrupt:
                self._interrupted.set()
            except Exception as exc:  # any engine failure ends the turn cleanly
                yield Error("engine", f"{type(exc).__name__}: {exc}")
                status = "error"
                break
            finally:
                if events is not None:
                    events.close()
                    for name in _STAT_NAMES:  # the engine's stats describe its last call
                        usage[name] += int(getattr(self.engine.stats, name, 0))
                generated += completion.tokens
            if self._interrupted.is_set():
                status = "interrupted"
                break
            outcome = completion.finish()
            if outcome.kind == "tool":
                for message in outcome.messages:
                    self._append(message)
                steps += 1
                yield from self._call_tool(outcome.messages[-1], steps)
                if self._interrupted.is_set():
                    status = "interrupted"
                    break
            elif outcome.kind in ("final", "truncated"):
                for message in outcome.messages:
                    self._append(message)
                yield from outcome.events
                answer = outcome.answer
                status = "completed" if outcome.kind == "final" else "max_tokens"
                break
            else:  # malformed
                repairs += 1
                if repairs > MAX_REPAIRS:
                    yield Error(
                        "malformed", f"the model's output could not be used: {outcome.error}"
                    )
                    status = "error"
                    break
                yield Notice(f"malformed model output ({outcome.error}); asking the model again")
                for message in outcome.messages:
                    self._append(message)
                self._append(_corrective(outcome.error))
        yield _usage(usage, calls)
        yield TurnEnd(status=status, answer=answer, steps=steps)

    def _generate(self, prompt: list[int], room: int) -> Iterator[int]:
        return self.engine.generate(prompt, stop=self._stop, max_tokens=room, **self.sampling)

    def _prompt(self) -> tuple[list[int], str]:
        limit = self.engine.context_length - min(self.max_tokens, self.engine.context_length // 4)
        tokens = self.render()
        if len(tokens) <= limit:  # the usual case: render once, no budget work
            return tokens, ""
        fitted = budget.fit(self.messages, limit, self.encoding, self._render_length)
        notice = ""
        if fitted.shortened or fitted.dropped:
            notice = (
                f"context nearly full: {fitted.shortened} tool output(s) shortened, "
                f"{fitted.dropped} earlier message(s) left out"
            )
        return self.render(fitted.messages), notice

    def render(self, messages: list[Message] | None = None) -> list[int]:
        """The prompt tokens for the next assistant completion."""
        convo = Conversation.from_messages(self.messages if messages is None else messages)
        return self.encoding.render_conversation_for_completion(convo, Role.ASSISTANT)

    def _render_length(self, messages: list[Message]) -> int:
        return len(self.render(messages))

    def _call_tool(self, call: Message, step: int) -> Iterator[Event]:
        recipient = call.recipient or ""
        arguments = message_text(call)
        yield ToolCallStarted(step=step, recipient=recipient, arguments=arguments)

        def answer(text: str) -> list[Message]:
            return [tool_message(call, text, author=recipient or "tool")]

        try:
            if self._interrupted.is_set():
                replies = answer("Error: the user interrupted this tool call.")
            elif self.toolbox is None:
                replies = answer("Error: no tools are enabled in this session.")
            else:
                replies = self.toolbox.call(call)
        except KeyboardInterrupt:
            self._interrupted.set()
            replies = answer("Error: the user interrupted this tool call.")
        for reply in replies:
            self._append(reply)
        output = "\n".join(message_text(r) for r in replies)
        yield ToolCallFinished(step=step, recipient=recipient, arguments=arguments, output=output)

    def _citations(self):
        browser = getattr(self.toolbox, "browser", None)
        if browser is None:
            return None
        from ossa.tools.browser import CitationStream

        return CitationStream(browser)

    def _append(self, message: Message) -> None:
        self.messages.append(message)
        if self.session is not None:
            self.session.append_message(message)


@dataclass
class _Outcome:
    """How one completion ended: ``tool``, ``final``, ``truncated`` or ``malformed``."""

    kind: str
    messages: list[Message]
    answer: str = ""
    events: list[Event] = field(default_factory=list)
    error: str = ""


class _Completion:
    """Feeds one completion's tokens to the parser and turns them into events."""

    def __init__(self, encoding, citations, room: int) -> None:
        self.encoding = encoding
        self.parser = StreamableParser(encoding, Role.ASSISTANT, strict=False)
        self.citations = citations
        self.room = room  # the most tokens the engine was allowed to generate
        self.tokens = 0
        self.stopped = False  # ended on a stop token
        self.answer: list[str] = []  # final text already emitted, links resolved

    def stream(self, tokens: Iterator[int]) -> Iterator[Event]:
        stop = set(self.encoding.stop_tokens_for_assistant_actions())
        try:
            for token in tokens:
                self.tokens += 1
                self.stopped = token in stop
                self.parser.process(token)  # the tolerant parser never raises
                delta = self.parser.last_content_delta
                if delta and self.parser.current_recipient is None:
                    event = self._delta(self.parser.current_channel, delta)
                    if event is not None:
                        yield event
        finally:
            if hasattr(tokens, "close"):
                tokens.close()

    def _delta(self, channel: str | None, text: str) -> Event | None:
        if channel == "analysis":
            return ReasoningDelta(text)
        if channel == "commentary":
            return CommentaryDelta(text)
        text = self.citations.feed(text) if self.citations is not None else text
        self.answer.append(text)
        return FinalDelta(text) if text else None

    def finish(self) -> _Outcome:
        self.parser.process_eos()
        messages = list(self.parser.messages)
        if not messages:
            return _Outcome("malformed", [], error="no message in the completion")
        last = messages[-1]
        if not self.stopped and self.tokens >= self.room:
            events = self._flush(last) if last.channel in ("final", None) else []
            return _Outcome("truncated", messages, answer="".join(self.answer), events=events)
        if last.incomplete:  # the engine ended without a stop token (a replay file, or EOS)
            return _Outcome("malformed", messages[:-1], error="the completion stopped mid-message")
        if last.recipient is not None:
            return _Outcome("tool", messages)
        if last.channel in ("final", None):
            events = self._flush(last)
            return _Outcome("final", messages, answer="".join(self.answer), events=events)
        reason = f"the completion ended on the {last.channel!r} channel without an answer"
        return _Outcome("malformed", messages, error=reason)

    def _flush(self, final: Message) -> list[Event]:
        """Text held back by the citation stream, or the whole answer if none streamed."""
        if not self.answer:  # e.g. a header without <|message|>: nothing was streamed
            text = message_text(final)
            text = self.citations.feed(text) if self.citations is not None else text
            self.answer.append(text)
            tail = self.citations.flush() if self.citations is not None else ""
            self.answer.append(tail)
            return [FinalDelta(text + tail)] if text + tail else []
        tail = self.citations.flush() if self.citations is not None else ""
        self.answer.append(tail)
        return [FinalDelta(tail)] if tail else []


def _corrective(error: str) -> Message:
    text = (
        f"Your last reply could not be used ({error}). Reply again in the harmony format: "
        "think on the analysis channel, call a tool with a recipient, or give the answer on "
        "the final channel."
    )
    return Message.from_role_and_content(Role.DEVELOPER, text)


_STAT_NAMES = ("prefilled_tokens", "reused_tokens", "generated_tokens")


def _usage(totals: dict[str, int], calls: int) -> Usage:
    return Usage(
        prompt_tokens=totals["prefilled_tokens"] + totals["reused_tokens"],
        reused_tokens=totals["reused_tokens"],
        output_tokens=totals["generated_tokens"],
        model_calls=calls,
    )


class _Recorder:
    """Writes events to the transcript, coalescing runs of the same delta into one record."""

    _DELTAS = (ReasoningDelta, CommentaryDelta, FinalDelta)

    def __init__(self, session: Session | None) -> None:
        self.session = session
        self.pending: Event | None = None

    def record(self, event: Event) -> None:
        if self.session is None:
            return
        if isinstance(event, self._DELTAS):
            if type(self.pending) is type(event):
                self.pending = type(event)(self.pending.text + event.text)
                return
            self.flush()
            self.pending = event
            return
        self.flush()
        self.session.append_event(event)

    def flush(self) -> None:
        if self.session is not None and self.pending is not None:
            self.session.append_event(self.pending)
        self.pending = None
