"""Where completions come from: the local torch engine, or recorded completions (``replay:FILE``).

Every engine has the interface of ``ossa.model``'s engine: ``generate(prompt, stop=…,
max_tokens=…)`` yields token ids (the stop token included, then ends), ``stats`` counts
prefilled, reused and generated tokens, ``context_length`` bounds the prompt.

The replay engine plays one recorded assistant completion per ``generate`` call from a JSONL
file of ``{"completion": "<harmony text>"}`` lines, so demos and tests drive the real tools
and the real loop without model weights. It also keeps prefix-reuse statistics as a KV cache
would, which lets tests check that the loop renders each conversation as a prefix of the next.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Protocol

from ossa.harmony import load_harmony_encoding
from ossa.model.stats import Stats

REPLAY_PREFIX = "replay:"


class EngineError(RuntimeError):
    """The engine could not produce a completion (bad replay file, exhausted, load failure)."""


class Engine(Protocol):
    context_length: int

    @property
    def stats(self): ...

    def generate(
        self,
        prompt: list[int],
        *,
        stop: Iterable[int] = (),
        max_tokens: int,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int | None = None,
    ) -> Iterator[int]: ...


class ReplayEngine:
    """Plays recorded completions, one per call, in file order."""

    def __init__(self, path: Path, *, context_length: int = 131072) -> None:
        self.path = path
        self.context_length = context_length
        self.stats = Stats()
        self.prompts: list[list[int]] = []
        self._completions = _read_completions(path)
        self._cached: list[int] = []  # what a KV cache would hold after the last call
        self._encoding = load_harmony_encoding()

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
    ) -> Iterator[int]:
        if self.remaining <= 0:
            raise EngineError(
                f"{self.path}: all {len(self._completions)} recorded completions were used"
            )
        text = self._completions[len(self.prompts)]
        self.prompts.append(list(prompt))
        reused = _common_prefix(self._cached, prompt)
        self.stats = Stats(prefilled_tokens=len(prompt) - reused, reused_tokens=reused)
        self._cached = list(prompt)
        return self._play(text, frozenset(stop), max_tokens)

    def _play(self, text: str, stop: frozenset[int], max_tokens: int) -> Iterator[int]:
        tokens = self._encoding.encode(text, allowed_special="all")
        for token in tokens[:max_tokens]:
            self._cached.append(token)
            self.stats.generated_tokens += 1
            yield token
            if token in stop:
                return


class SerializedEngine:
    """One engine shared by threads: each ``generate`` holds a lock until it is exhausted."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.context_length = engine.context_length
        self._lock = threading.Lock()
        self._local = threading.local()  # each thread sees the stats of its own last call

    @property
    def stats(self):
        return getattr(self._local, "stats", Stats())

    def generate(self, prompt: list[int], **kwargs) -> Iterator[int]:
        with self._lock:
            try:
                yield from self.engine.generate(prompt, **kwargs)
            finally:
                self._local.stats = copy.copy(self.engine.stats)


def open_engine(
    spec: str, *, device: str = "cpu", dtype: str | None = None, threads: int | None = None
) -> Engine:
    """``replay:FILE``, a local checkpoint directory, or a Hugging Face id (downloaded once)."""
    if spec.startswith(REPLAY_PREFIX):
        return ReplayEngine(Path(spec[len(REPLAY_PREFIX) :]).expanduser())
    import torch  # slow to import: only when a model is asked for

    import ossa.model

    torch_dtype = getattr(torch, dtype, None) if dtype else None
    if dtype and not isinstance(torch_dtype, torch.dtype):
        raise EngineError(f"unknown dtype {dtype!r} (try bfloat16 or float32)")
    try:
        return ossa.model.load(spec, device=device, dtype=torch_dtype, threads=threads)
    except (OSError, ValueError, RuntimeError) as exc:
        raise EngineError(f"cannot load model {spec!r}: {exc}") from exc


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
