"""``replay:FILE``: recorded completions played back, one per ``generate`` call.

The file is JSONL, one ``{"completion": "<harmony text>"}`` per line, so demos and tests drive
the real tools and the real loop without model weights. The engine also counts prefix reuse
as a KV cache would (the prompt and every token it played are "cached"), which lets tests
check that each prompt extends the last one exactly.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from ossa.agent.engines.base import EngineError
from ossa.harmony import load_harmony_encoding
from ossa.model.stats import Generation, Stats


class ReplayEngine:
    """Plays recorded completions, one per call, in file order."""

    def __init__(self, path: Path, *, context_length: int = 131072) -> None:
        self.path = path
        self.context_length = context_length
        #: Every prompt it was given, in order (what tests compare).
        self.prompts: list[list[int]] = []
        #: The usage of each call, in order.
        self.calls: list[Stats] = []
        self._completions = _read_completions(path)
        self._cached: list[int] = []  # what a KV cache would hold after the last call
        self._encoding = load_harmony_encoding()

    @classmethod
    def open(cls, target: str, **_options: object) -> ReplayEngine:
        """The ``replay`` scheme's factory: device, dtype and threads mean nothing here."""
        return cls(Path(target).expanduser())

    @property
    def stats(self) -> Stats:
        """The usage of the last call (a single-threaded convenience for tests and demos)."""
        return self.calls[-1] if self.calls else Stats()

    @property
    def remaining(self) -> int:
        return len(self._completions) - len(self.prompts)

    def generate(
        self,
        prompt: list[int],
        *,
        stop: Iterable[int] = (),
        max_tokens: int,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int | None = None,
    ) -> Generation:
        if self.remaining <= 0:
            raise EngineError(
                f"{self.path}: all {len(self._completions)} recorded completions were used"
            )
        text = self._completions[len(self.prompts)]
        self.prompts.append(list(prompt))
        reused = _common_prefix(self._cached, prompt)
        usage = Stats(prefilled_tokens=len(prompt) - reused, reused_tokens=reused)
        self.calls.append(usage)
        self._cached = list(prompt)
        return Generation(self._play(text, frozenset(stop), max_tokens, usage), usage)

    def _play(
        self, text: str, stop: frozenset[int], max_tokens: int, usage: Stats
    ) -> Iterator[int]:
        tokens = self._encoding.encode(text, allowed_special="all")
        for token in tokens[:max_tokens]:
            self._cached.append(token)
            usage.generated_tokens += 1
            yield token
            if token in stop:
                return


def _read_completions(path: Path) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise EngineError(f"cannot read replay file: {exc}") from exc
    completions = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            completions.append(str(json.loads(line)["completion"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise EngineError(
                f'{path}:{number}: expected {{"completion": "<harmony text>"}}, got {line[:80]!r}'
            ) from exc
    if not completions:
        raise EngineError(f"{path}: no recorded completions")
    return completions


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n
