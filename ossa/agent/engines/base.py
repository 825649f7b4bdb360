"""The engine interface every engine implements, and its one error."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from ossa.errors import OssaError
from ossa.model.stats import Generation


class EngineError(OssaError):
    """The engine could not produce a completion (bad replay file, exhausted, load failure)."""


class Engine(Protocol):
    """``generate`` returns a :class:`Generation`: token ids to iterate, and that call's usage.

    An engine whose ``generate`` may be called from several threads at once (a server that
    batches requests) says how many with a class attribute ``concurrency``; without it (or
    at 1), callers that share the engine serialise its calls (:class:`SerializedEngine`).
    """

    context_length: int

    def generate(
        self,
        prompt: list[int],
        *,
        stop: Iterable[int] = (),
        max_tokens: int,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int | None = None,
    ) -> Generation: ...
