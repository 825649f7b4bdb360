"""The agent loop: a turn is a sequence of steps, each one model call and what it leads to.

One :meth:`Agent.run` call is one user turn. It appends the user message, then runs steps
until one ends the turn. A step renders the prompt (:class:`~ossa.agent.context.Context`
keeps every completion's tokens as generated, so the engine prefills only what is new),
streams a completion through the tolerant harmony parser while yielding events, and then
runs the tool call the completion ends with, or takes its final answer. Each step returns a
:class:`Step` whose :class:`Outcome` decides, through one table (:data:`TURN_STATUS`),
whether the turn goes on and with which :class:`~ossa.agent.events.TurnStatus` it ends.

Robustness: a malformed completion gets a short corrective message and another try (bounded),
a tool failure is a tool message (the toolbox never raises), an engine failure (``generate``
or its token stream raising) ends the turn with an ``error`` event, and an interrupt (Ctrl-C
or :meth:`Agent.interrupt`) discards the half-generated completion or answers the running
tool call, so the conversation stays valid. Only the engine is guarded: a bug in the parser
or a tool filter is a bug, and keeps its traceback. Everything appended is also written to
the session transcript, with the generated tokens, so a resumed session renders the same.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from queue import SimpleQueue
from typing import TYPE_CHECKING

from ossa.agent import budget
from ossa.agent.context import Context, Tokens
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
    TurnStatus,
    Usage,
)
from ossa.agent.settings import EFFORTS, Settings
from ossa.harmony import (
    DeveloperContent,
    Message,
    ReasoningEffort,
    Role,
    StreamableParser,
    SystemContent,
    load_harmony_encoding,
)
from ossa.model.stats import Generation, Stats
from ossa.tools.base import AnswerFilter, message_text, tool_message
from ossa.tools.toolbox import AnswerFilters

if TYPE_CHECKING:
    from ossa.agent.engines import Engine
    from ossa.agent.sessions import Session
    from ossa.tools import Toolbox

#: The answer to a tool call that Ctrl-C stopped.
INTERRUPTED_CALL = "Error: the user interrupted this tool call."
#: Corrective retries per turn before a malformed completion ends the turn with an error.
MAX_REPAIRS = 2


class Outcome(StrEnum):
    """What one step came to."""

    TOOL_CALL = "tool_call"  # the completion called a tool, which answered
    ANSWER = "answer"  # a final answer
    TRUNCATED = "truncated"  # the token limit or the context window cut the completion
    MALFORMED = "malformed"  # unusable output; the model was told so and tries again
    UNUSABLE = "unusable"  # still malformed after MAX_REPAIRS corrections
    STEP_LIMIT = "step_limit"  # the turn already made ``max_steps`` model calls
    CONTEXT_FULL = "context_full"  # the current turn alone does not fit the context window
    ENGINE_ERROR = "engine_error"  # the engine failed to start or during its stream
    INTERRUPTED = "interrupted"  # the user stopped the generation or the tool call
    CLIENT_CALL = "client_call"  # a call to a tool the API client runs (ossa serve): it answers


#: The one rule for how a turn goes on: None continues, a status ends the turn.
TURN_STATUS: dict[Outcome, TurnStatus | None] = {
    Outcome.TOOL_CALL: None,
    Outcome.MALFORMED: None,
    Outcome.ANSWER: TurnStatus.COMPLETED,
    Outcome.CLIENT_CALL: TurnStatus.COMPLETED,
    Outcome.TRUNCATED: TurnStatus.MAX_TOKENS,
    Outcome.STEP_LIMIT: TurnStatus.MAX_STEPS,
    Outcome.UNUSABLE: TurnStatus.ERROR,
    Outcome.CONTEXT_FULL: TurnStatus.ERROR,
    Outcome.ENGINE_ERROR: TurnStatus.ERROR,
    Outcome.INTERRUPTED: TurnStatus.INTERRUPTED,
}


@dataclass(frozen=True)
class Step:
    """The typed result of one step: its outcome and its model call's own usage."""

    number: int
    outcome: Outcome
    usage: Stats = field(default_factory=Stats)

    @property
    def status(self) -> TurnStatus | None:
        """How the turn ends after this step; None: it goes on."""
        return TURN_STATUS[self.outcome]


class Agent:
    """A conversation with one engine and (optionally) a toolbox."""

    def __init__(
        self,
        engine: Engine,
        toolbox: Toolbox | None = None,
        settings: Settings | None = None,
        *,
        session: Session | None = None,
        messages: Sequence[Message] | None = None,
        tokens: Sequence[Tokens] | None = None,
        start_date: str | None = None,
    ) -> None:
        """``messages`` (and the ``tokens`` a transcript kept with them) resume a conversation."""
        settings = settings or Settings()
        self.engine = engine
        self.toolbox = toolbox
        self.instructions = settings.instructions
        #: Model calls per turn (the ``max_steps`` setting: one step is one model call).
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
        self._stop = frozenset(self.encoding.stop_tokens_for_assistant_actions())
        self._interrupted = threading.Event()
        self._start_date = start_date or date.today().isoformat()
        #: The steps of the last (or running) turn.
        self.steps: list[Step] = []
        self.context = Context(self.encoding, messages or (), tokens if messages else None)
        if not messages:
            for message in self._header():
                self._append(message)

    @property
    def messages(self) -> list[Message]:
        """The conversation so far (the header, then every turn's messages)."""
        return self.context.messages

    # -- settings that change the system/developer messages ------------------------------

    @property
    def effort(self) -> str:
        return self._effort

    def reconfigure(self, *, effort: str, toolbox: Toolbox | None) -> None:
        """Change the reasoning effort and the tools: the leading messages are rebuilt."""
        self._effort = effort
        self.toolbox = toolbox
        header = self._header()
        self.context.replace_header(header)
        if self.session is not None:
            self.session.replace_header(header)

    def reset(self, *, session: Session | None, toolbox: Toolbox | None) -> None:
        """Start over (``/new``): a new transcript, the given tools, only the header messages.

        The caller closes the old toolbox; engine, effort and limits stay as they are.
        """
        self.session = session
        self.toolbox = toolbox
        self.steps = []
        self.context = Context(self.encoding)
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
        """Stop the running turn: generation at the next token, a running tool call now
        where the tool can stop (a python cell), otherwise when it returns."""
        self._interrupted.set()
        if self.toolbox is not None:
            self.toolbox.interrupt()

    def run(self, text: str | Sequence[Message]) -> Iterator[Event]:
        """One user turn: yields events, the last one a :class:`TurnEnd`.

        ``text`` is the user's message, or the messages that start the turn (an API client's
        input: user messages, the outputs of its own tools' calls).
        """
        self._interrupted.clear()
        if isinstance(text, str):
            text = [Message.from_role_and_content(Role.USER, text)]
        for message in text:
            self._append(message)
        recorder = _Recorder(self.session)
        for event in self._turn():
            recorder.record(event)
            yield event
        recorder.flush()

    def _turn(self) -> Iterator[Event]:
        self.steps = []
        turn = _Turn()
        while True:
            step = yield from self._step(turn)
            self.steps.append(step)
            if step.status is not None:
                break
        yield turn.usage_event(self.steps)
        yield TurnEnd(
            status=step.status,
            answer=turn.answer,
            model_calls=turn.model_calls,
            tool_calls=turn.tool_calls,
        )

    def _step(self, turn: _Turn) -> Iterator[Event]:
        """One model call and the tool call it may end with; returns the :class:`Step`."""
        number = len(self.steps) + 1
        if turn.model_calls >= self.max_steps:
            return Step(number, Outcome.STEP_LIMIT)
        try:
            prompt, notice = self._prompt()
        except budget.ContextBudgetError as exc:
            yield Error("context", str(exc))
            return Step(number, Outcome.CONTEXT_FULL)
        if notice:
            yield Notice(notice)
        room = min(self.max_tokens - turn.generated, self.engine.context_length - len(prompt))
        if room <= 0:
            return Step(number, Outcome.TRUNCATED)
        turn.model_calls += 1
        completion = _Completion(self.encoding, self._stop, self._answer_filter(), room)
        stopped = yield from self._stream(prompt, completion)
        turn.generated += len(completion.tokens)
        if stopped is not None:
            return Step(number, stopped, completion.usage)
        outcome = yield from self._conclude(completion, turn, number)
        return Step(number, outcome, completion.usage)

    def _stream(self, prompt: list[int], completion: _Completion) -> Iterator[Event]:
        """Run the engine into ``completion``; returns the outcome if it did not finish.

        Only ``generate`` and its token stream are guarded: their failure ends the turn.
        """
        try:
            generation = self.engine.generate(
                prompt, stop=self._stop, max_tokens=completion.room, **self.sampling
            )
        except KeyboardInterrupt:
            self._interrupted.set()
            return Outcome.INTERRUPTED
        except Exception as exc:  # the engine could not start this call
            yield Error("engine", f"{type(exc).__name__}: {exc}")
            return Outcome.ENGINE_ERROR
        completion.usage = generation.usage
        failure = None
        try:
            for event in completion.stream(_engine_tokens(generation)):
                yield event
                if self._interrupted.is_set():
                    break
        except _EngineFailure as exc:
            failure = exc.__cause__
        except KeyboardInterrupt:
            self._interrupted.set()
        finally:
            generation.close()
        if failure is not None:
            yield Error("engine", f"{type(failure).__name__}: {failure}")
            return Outcome.ENGINE_ERROR
        return Outcome.INTERRUPTED if self._interrupted.is_set() else None

    def _conclude(self, completion: _Completion, turn: _Turn, number: int) -> Iterator[Event]:
        """Keep what the finished completion said and act on it; returns the outcome."""
        parsed = completion.finish()
        outcome = parsed.outcome
        if outcome is Outcome.MALFORMED:
            turn.repairs += 1
            if turn.repairs > MAX_REPAIRS:
                yield Error("malformed", f"the model's output could not be used: {parsed.error}")
                return Outcome.UNUSABLE
            yield Notice(f"malformed model output ({parsed.error}); asking the model again")
        tokens = self.context.split(completion.tokens, len(parsed.messages))
        for message, exact in zip(parsed.messages[: parsed.kept], tokens, strict=False):
            self._append(message, exact)
        if outcome is Outcome.MALFORMED:
            self._append(_corrective(parsed.error))
        elif outcome is Outcome.TOOL_CALL:
            turn.tool_calls += 1
            call = parsed.messages[-1]
            if self.toolbox is not None and self.toolbox.client_side(call):
                yield ToolCallStarted(
                    step=number, recipient=call.recipient or "", arguments=message_text(call)
                )
                return Outcome.CLIENT_CALL
            yield from self._call_tool(call, number)
            if self._interrupted.is_set():
                return Outcome.INTERRUPTED
        else:  # ANSWER or TRUNCATED
            yield from parsed.events
            turn.answer = parsed.answer
        return outcome

    def _prompt(self) -> tuple[list[int], str]:
        limit = self.engine.context_length - min(self.max_tokens, self.engine.context_length // 4)
        tokens = self.render()
        if len(tokens) <= limit:  # the usual case: render once, no budget work
            return tokens, ""
        visible = self.context.visible()  # what the model sees is what has to fit
        fitted = budget.fit(visible, limit, self.encoding, self._render_length)
        notice = ""
        if fitted.shortened or fitted.dropped:
            notice = (
                f"context nearly full: {fitted.shortened} tool output(s) shortened, "
                f"{fitted.dropped} earlier message(s) left out"
            )
        return self.render(fitted.messages), notice

    def render(self, messages: list[Message] | None = None) -> list[int]:
        """The prompt tokens for the next assistant completion (see :class:`Context`)."""
        return self.context.render(messages)

    def _render_length(self, messages: list[Message]) -> int:
        return len(self.render(messages))

    def _call_tool(self, call: Message, step: int) -> Iterator[Event]:
        recipient = call.recipient or ""
        arguments = message_text(call)
        yield ToolCallStarted(step=step, recipient=recipient, arguments=arguments)

        def answer(text: str) -> list[Message]:
            return [tool_message(call, text, author=recipient or "tool")]

        if self._interrupted.is_set():
            replies = answer(INTERRUPTED_CALL)
        elif self.toolbox is None:
            replies = answer("Error: no tools are enabled in this session.")
        else:
            replies = yield from self._run_tool(call, step, recipient)
            if replies is None:
                replies = answer(INTERRUPTED_CALL)
        for reply in replies:
            self._append(reply)
        output = "\n".join(message_text(r) for r in replies)
        yield ToolCallFinished(step=step, recipient=recipient, arguments=arguments, output=output)

    def _run_tool(
        self, call: Message, step: int, recipient: str
    ) -> Generator[Event, None, list[Message] | None]:
        """Run the call on a worker thread and yield its output as the tool reports it; return
        its replies, or None when Ctrl-C stopped it.

        The generator's own thread only waits on a queue, so Ctrl-C (KeyboardInterrupt here, or
        raised by the tool itself) lands where it did when the call ran inline: the call is
        stopped through the toolbox and answered as interrupted. A tool that can stop (the
        python cell) is waited for, so its session is in step for the next call; one that
        cannot is left to finish on its own thread, its answer unused.
        """
        toolbox = self.toolbox
        items: SimpleQueue[tuple[bool, object]] = SimpleQueue()  # (finished, text or outcome)

        def work() -> None:
            try:
                outcome: object = toolbox.call(call, lambda text: items.put((False, text)))
            except BaseException as exc:  # handed to the generator's thread to raise there
                outcome = exc
            items.put((True, outcome))

        try:  # Ctrl-C may come while the thread starts, and the tool may raise it at once
            threading.Thread(target=work, name="ossa-tool-call", daemon=True).start()
            while True:
                finished, value = items.get()
                if not finished:
                    yield ToolOutputDelta(step=step, recipient=recipient, text=value)
                elif isinstance(value, BaseException):
                    raise value
                else:
                    return value
        except KeyboardInterrupt:
            self._interrupted.set()
            stopping = toolbox.interrupt()
            while stopping:
                try:
                    stopping = not items.get()[0]
                except KeyboardInterrupt:
                    toolbox.interrupt()
            return None

    def _answer_filter(self) -> AnswerFilter:
        return self.toolbox.answer_filter() if self.toolbox is not None else AnswerFilters([])

    def _append(self, message: Message, tokens: Tokens = None) -> None:
        self.context.append(message, tokens)
        if self.session is not None:
            self.session.append_message(message, tokens=tokens)


@dataclass
class _Turn:
    """What the running turn has used so far."""

    model_calls: int = 0
    tool_calls: int = 0
    generated: int = 0
    repairs: int = 0
    answer: str = ""

    def usage_event(self, steps: list[Step]) -> Usage:
        prefilled = sum(s.usage.prefilled_tokens for s in steps)
        reused = sum(s.usage.reused_tokens for s in steps)
        return Usage(
            prompt_tokens=prefilled + reused,
            reused_tokens=reused,
            output_tokens=sum(s.usage.generated_tokens for s in steps),
            model_calls=self.model_calls,
        )


class _EngineFailure(Exception):
    """The engine's token stream raised (the cause); nothing else is an engine failure."""


def _engine_tokens(generation: Generation) -> Iterator[int]:
    """The generation's tokens, with its failures told apart from the parser's and ours."""
    while True:
        try:
            token = next(generation)
        except StopIteration:
            return
        except Exception as exc:
            raise _EngineFailure from exc
        yield token


@dataclass
class _Parsed:
    """A finished completion: how it ended and the messages the conversation keeps.

    ``kept`` messages are appended (a malformed completion's broken last message is not).
    """

    outcome: Outcome
    messages: list[Message]
    kept: int
    answer: str = ""
    events: list[Event] = field(default_factory=list)
    error: str = ""


class _Completion:
    """Feeds one completion's tokens to the parser and turns them into events."""

    def __init__(
        self, encoding, stop: frozenset[int], answer_filter: AnswerFilter, room: int
    ) -> None:
        self.parser = StreamableParser(encoding, Role.ASSISTANT, strict=False)
        self.filter = answer_filter
        self.stop = stop
        self.room = room  # the most tokens the engine may generate
        self.usage = Stats()  # the engine call's own, once it started
        self.tokens: list[int] = []  # as generated
        self.answer: list[str] = []  # final text already emitted, filtered

    def stream(self, tokens: Iterator[int]) -> Iterator[Event]:
        for token in tokens:
            self.tokens.append(token)
            self.parser.process(token)  # the tolerant parser never raises
            delta = self.parser.last_content_delta
            if delta and self.parser.current_recipient is None:
                event = self._delta(self.parser.current_channel, delta)
                if event is not None:
                    yield event

    def _delta(self, channel: str | None, text: str) -> Event | None:
        if channel == "analysis":
            return ReasoningDelta(text)
        if channel == "commentary":
            return CommentaryDelta(text)
        text = self.filter.feed(text)
        self.answer.append(text)
        return FinalDelta(text) if text else None

    def finish(self) -> _Parsed:
        self.parser.process_eos()
        messages = list(self.parser.messages)
        n = len(messages)
        if not messages:
            return _Parsed(Outcome.MALFORMED, [], 0, error="no message in the completion")
        last = messages[-1]
        stopped = bool(self.tokens) and self.tokens[-1] in self.stop
        if not stopped and len(self.tokens) >= self.room:
            events = self._flush(last) if last.channel in ("final", None) else []
            return _Parsed(Outcome.TRUNCATED, messages, n, "".join(self.answer), events)
        if last.incomplete:  # the engine ended without a stop token (a replay file, or EOS)
            error = "the completion stopped mid-message"
            return _Parsed(Outcome.MALFORMED, messages, n - 1, error=error)
        if last.recipient is not None:
            return _Parsed(Outcome.TOOL_CALL, messages, n)
        if last.channel in ("final", None):
            events = self._flush(last)
            return _Parsed(Outcome.ANSWER, messages, n, "".join(self.answer), events)
        error = f"the completion ended on the {last.channel!r} channel without an answer"
        return _Parsed(Outcome.MALFORMED, messages, n, error=error)

    def _flush(self, final: Message) -> list[Event]:
        """Text the filter held back, or the whole answer if none streamed.

        Nothing streams when the answer had no ``<|message|>`` (a bare refusal, say).
        """
        text = "" if self.answer else self.filter.feed(message_text(final))
        text += self.filter.flush()
        self.answer.append(text)
        return [FinalDelta(text)] if text else []


def _corrective(error: str) -> Message:
    text = (
        f"Your last reply could not be used ({error}). Reply again in the harmony format: "
        "think on the analysis channel, call a tool with a recipient, or give the answer on "
        "the final channel."
    )
    return Message.from_role_and_content(Role.DEVELOPER, text)


class _Recorder:
    """Writes events to the transcript, coalescing runs of the same delta into one record
    (a tool's streamed output is left out: its ToolCallFinished has all of it)."""

    _DELTAS = (ReasoningDelta, CommentaryDelta, FinalDelta)

    def __init__(self, session: Session | None) -> None:
        self.session = session
        self.pending: Event | None = None

    def record(self, event: Event) -> None:
        if self.session is None or isinstance(event, ToolOutputDelta):
            return  # a tool's output is kept whole in its ToolCallFinished
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
