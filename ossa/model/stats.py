"""What one engine call did, and the call itself (torch-free, so every engine can share them)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


@dataclass
class Stats:
    """Token counts and timings of one `generate` (or `logits`) call."""

    prefilled_tokens: int = 0
    reused_tokens: int = 0
    generated_tokens: int = 0
    prefill_s: float = 0.0
    decode_s: float = 0.0


class Generation:
    """One engine call: iterate it for token ids; ``usage`` belongs to this call alone.

    Each engine fills ``usage`` in as it prefills and generates, so a caller reads the counts
    of its own call even when other threads use the same engine. ``close()`` stops the
    generation early (the engine's work for it ends with the iterator).
    """

    def __init__(self, tokens: Iterator[int], usage: Stats) -> None:
        self._tokens = tokens
        self.usage = usage

    def __iter__(self) -> Generation:
        return self

    def __next__(self) -> int:
        return next(self._tokens)

    def close(self) -> None:
        close = getattr(self._tokens, "close", None)
        if close is not None:
            close()
