"""Running one request's agent turn on a worker thread, as events an async handler reads.

Both APIs turn a request into a :class:`TurnRequest` (the conversation so far, the messages
that start the turn, the tools and limits) and read the agent's typed events back. The agent
runs on its own thread (generation and tools block); a client that goes away interrupts it
(:meth:`~ossa.agent.loop.Agent.interrupt`: it stops at the next token or after the running
tool call), and the conversation's tools are released for its next request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from ossa.agent.context import Tokens
from ossa.agent.engines import Engine
from ossa.agent.events import Event
from ossa.agent.loop import Agent
from ossa.agent.settings import Settings
from ossa.harmony import Message, Role
from ossa.serve.messages import ClientFunctions
from ossa.serve.pool import ConversationPool
from ossa.tools import Toolbox
from ossa.tools.base import message_text

log = logging.getLogger(__name__)

#: How often a non-streamed request checks whether its client is still there (seconds).
POLL_SECONDS = 0.5


@dataclass
class TurnRequest:
    """What one request asks of the agent."""

    conversation: str
    input: list[Message]
    #: The conversation before this turn (a stored response's), each message's exact tokens.
    history: list[Message] = field(default_factory=list)
    tokens: list[Tokens] | None = None
    instructions: str = ""
    effort: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    #: Built-in tools to offer ("browser", "python"), among those the server has.
    builtins: tuple[str, ...] = ()
    functions: list[ClientFunctions] = field(default_factory=list)


class TokenMemory:
    """The exact tokens of recently generated assistant messages, found by what they say.

    Clients that send the whole conversation every time (Codex with ``store: false``, the
    Agents SDK, every Chat Completions client) send back the model's messages as items,
    which harmony would render differently from how gpt-oss wrote them (a call's ``to=``
    before the channel, say), and the prompt would leave the engine's cache there. Looking
    the messages up here gives them their generated tokens back, so the prompt extends the
    cached one exactly. Any tokens recalled decode to the same message, so sharing the
    memory between conversations is safe.
    """

    def __init__(self, size: int = 8192) -> None:
        self.size = size
        self._tokens: OrderedDict[tuple[str, str], list[int]] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, messages: Sequence[Message], tokens: Sequence[Tokens]) -> None:
        with self._lock:
            for message, exact in zip(messages, tokens, strict=True):
                if exact is not None and message.author.role is Role.ASSISTANT:
                    self._tokens[_key(message)] = exact
                    self._tokens.move_to_end(_key(message))
            while len(self._tokens) > self.size:
                self._tokens.popitem(last=False)

    def recall(self, message: Message) -> Tokens:
        if message.author.role is not Role.ASSISTANT:
            return None
        with self._lock:
            return self._tokens.get(_key(message))


def _key(message: Message) -> tuple[str, str]:
    return (message.recipient or message.channel or "", message_text(message))


class Service:
    """The engine, the server's settings and the conversations' tools, shared by all requests."""

    def __init__(self, engine: Engine, settings: Settings, pool: ConversationPool) -> None:
        self.engine = engine
        self.settings = settings
        self.pool = pool
        self.memory = TokenMemory()
        #: Turns started and not yet over (running, or waiting for the engine).
        self.running = 0
        self._running_lock = threading.Lock()

    def split(self, messages: list[Message]) -> tuple[list[Message], list[Tokens], list[Message]]:
        """A whole conversation sent again: the history (with recalled tokens) and the new input.

        The new input is what follows the last assistant message (the user's message, the
        outputs of the client's tool calls).
        """
        last = max(
            (i for i, m in enumerate(messages) if m.author.role is Role.ASSISTANT), default=-1
        )
        history = messages[: last + 1]
        return history, [self.memory.recall(m) for m in history], messages[last + 1 :]

    def turn(self, request: TurnRequest) -> TurnRun:
        return TurnRun(self, request)

    def agent(self, request: TurnRequest, tools: dict) -> Agent:
        """An agent holding the request's conversation, with its tools and settings."""
        instructions = "\n\n".join(
            part for part in (self.settings.instructions, request.instructions) if part
        )
        settings = self.settings.updated(
            effort=request.effort,
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            top_p=request.top_p,
            instructions=instructions,
        )
        chosen = [tools[name] for name in request.builtins if name in tools]
        toolbox = Toolbox([*chosen, *request.functions]) if chosen or request.functions else None
        if not request.history:
            return Agent(self.engine, toolbox, settings)
        agent = Agent(
            self.engine, toolbox, settings, messages=request.history, tokens=request.tokens
        )
        agent.reconfigure(effort=settings.effort, toolbox=toolbox)  # this request's header
        return agent


class TurnRun:
    """One turn on a worker thread; iterate it (asynchronously) for its events."""

    def __init__(self, service: Service, request: TurnRequest) -> None:
        self.service = service
        self.request = request
        #: The agent, once the turn started (its messages and tokens are what gets stored).
        self.agent: Agent | None = None
        #: The number of messages before this turn's input.
        self.start = 0
        self.finished = False
        self._cancelled = threading.Event()
        self._lock = threading.Lock()

    def cancel(self) -> None:
        """Stop the turn (the client went away): generation and tool work end early."""
        with self._lock:
            self._cancelled.set()
            if self.agent is not None:
                self.agent.interrupt()

    async def events(
        self, disconnected: Callable[[], Awaitable[bool]] | None = None
    ) -> AsyncIterator[Event]:
        """The turn's events; ``disconnected`` is polled while waiting (non-streamed requests)."""
        loop = asyncio.get_running_loop()
        mailbox = _Mailbox(loop)
        thread = threading.Thread(
            target=self._work, args=(mailbox.put,), name="ossa-serve-turn", daemon=True
        )
        thread.start()
        check_at = loop.time() + POLL_SECONDS
        try:
            while True:
                items = await mailbox.take(POLL_SECONDS if disconnected else None)
                if disconnected is not None and loop.time() >= check_at:
                    check_at = loop.time() + POLL_SECONDS  # by the clock: events may not pause
                    if await disconnected():
                        return
                for item in items:
                    if item is _DONE:
                        self.finished = True
                        return
                    if isinstance(item, BaseException):
                        raise item
                    yield item  # type: ignore[misc]
        finally:
            if not self.finished:
                self.cancel()

    def _work(self, emit: Callable[[object], object]) -> None:
        service = self.service
        with service._running_lock:
            service.running += 1
        try:
            if not self.request.builtins:  # nothing of the conversation's to hold
                self._run({}, emit)
                return
            with self.service.pool.use(self.request.conversation) as conversation:
                self._run(conversation.tools, emit)
        except Exception as exc:  # a bug: the handler answers with a server error object
            log.exception("the agent turn failed")
            emit(exc)
        finally:
            with service._running_lock:
                service.running -= 1
            with contextlib.suppress(RuntimeError):  # the event loop is gone (shutdown)
                emit(_DONE)

    def _run(self, tools: dict, emit: Callable[[object], object]) -> None:
        agent = self.service.agent(self.request, tools)
        with self._lock:
            if self._cancelled.is_set():
                return
            self.agent = agent
            self.start = len(agent.messages)
        for event in agent.run(self.request.input):
            emit(event)
        context = agent.context
        self.service.memory.remember(context.messages[self.start :], context.tokens[self.start :])


class _Mailbox:
    """Items from the worker thread to the event loop, which is woken once per batch.

    Waking the loop for every token (``call_soon_threadsafe`` per event) made the loop the
    bottleneck with many streams; a batch is whatever arrived since the last wake-up.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._items: deque[object] = deque()
        self._ready = asyncio.Event()
        self._signalled = False

    def put(self, item: object) -> None:
        """Called on the worker thread."""
        self._items.append(item)
        if not self._signalled:
            self._signalled = True
            self._loop.call_soon_threadsafe(self._ready.set)

    async def take(self, timeout: float | None) -> list[object]:
        """What arrived (waiting up to ``timeout`` for something; [] when none came)."""
        if not self._items:
            try:
                await asyncio.wait_for(self._ready.wait(), timeout)
            except TimeoutError:
                return []
        self._ready.clear()
        self._signalled = False  # items put from now on wake the loop again
        items = []
        while self._items:
            items.append(self._items.popleft())
        return items


_DONE = object()
