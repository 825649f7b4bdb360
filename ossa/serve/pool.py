"""Sharing one engine among many clients, and each conversation's own tools.

The local engine (and the replay engine) generate one completion at a time: requests take
turns in arrival order (:class:`FairSlots`), so a burst of clients cannot starve one.
An engine that serves several at once (an HTTP engine) says so with a ``concurrency``
attribute, and that many generations run in parallel.

Each conversation owns its built-in tools: its python session keeps its variables from one
request to the next, its browser its pages (citations name them), and one request at a time
uses them. Tools idle for ``idle_seconds`` are closed (the sandbox container goes away).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ossa.agent.engines import Engine, SerializedEngine
from ossa.tools.base import Tool

log = logging.getLogger(__name__)


class FairSlots:
    """A FIFO semaphore: ``slots`` holders at a time, waiters served in arrival order."""

    def __init__(self, slots: int = 1) -> None:
        if slots < 1:
            raise ValueError(f"an engine's concurrency must be at least 1, not {slots}")
        self._free = slots
        self._waiting: deque[object] = deque()
        self._cond = threading.Condition()

    def acquire(self) -> None:
        ticket = object()
        with self._cond:
            self._waiting.append(ticket)
            while self._waiting[0] is not ticket or self._free == 0:
                self._cond.wait()
            self._waiting.popleft()
            self._free -= 1
            self._cond.notify_all()  # the next in line may find a free slot too

    def release(self) -> None:
        with self._cond:
            self._free += 1
            self._cond.notify_all()


def shared_engine(engine: Engine) -> SerializedEngine:
    """``engine`` shared by the server's threads, ``engine.concurrency`` generations at a time."""
    slots = int(getattr(engine, "concurrency", 1) or 1)
    return SerializedEngine(engine, FairSlots(slots))  # type: ignore[arg-type]


@dataclass
class Conversation:
    """One conversation's built-in tools, used by one request at a time."""

    id: str
    tools: dict[str, Tool]
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_used: float = field(default_factory=time.monotonic)
    users: int = 0


class ConversationPool:
    """Conversations by id, each with tools from ``make_tools``; idle ones are closed."""

    def __init__(self, make_tools: Callable[[], dict[str, Tool]], idle_seconds: float = 600.0):
        self._make_tools = make_tools
        self.idle_seconds = idle_seconds
        self._conversations: dict[str, Conversation] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._conversations)

    @contextlib.contextmanager
    def use(self, conversation_id: str) -> Iterator[Conversation]:
        """The conversation's tools, held until the block ends (the turn is over)."""
        with self._lock:
            conversation = self._conversations.get(conversation_id)
            if conversation is None:
                conversation = Conversation(conversation_id, self._make_tools())
                self._conversations[conversation_id] = conversation
            conversation.users += 1
        try:
            with conversation.lock:
                yield conversation
        finally:
            with self._lock:
                conversation.users -= 1
                conversation.last_used = time.monotonic()

    def reap(self, now: float | None = None) -> int:
        """Close the tools of conversations idle longer than ``idle_seconds``; how many."""
        now = time.monotonic() if now is None else now
        with self._lock:
            idle = [
                c
                for c in self._conversations.values()
                if c.users == 0 and now - c.last_used >= self.idle_seconds
            ]
            for c in idle:
                del self._conversations[c.id]
        for c in idle:
            _close(c)
        return len(idle)

    def close(self) -> None:
        with self._lock:
            conversations, self._conversations = list(self._conversations.values()), {}
        for c in conversations:
            _close(c)


def _close(conversation: Conversation) -> None:
    for tool in conversation.tools.values():
        try:
            tool.close()
        except Exception:
            log.exception("closing %s of conversation %s", tool.name, conversation.id)
