"""Where completions come from: one interface, engines chosen by the model spec's scheme.

Every engine has ``context_length`` and ``generate(prompt, *, stop, max_tokens, temperature,
top_p, seed)``, which returns a :class:`~ossa.model.stats.Generation`: iterate it for token
ids (a stop token is yielded, then it ends); its ``usage`` counts that call's prefilled,
reused and generated tokens, so callers never read shared engine state after the fact.

A model spec ``SCHEME:TARGET`` picks the engine registered as ``SCHEME`` (``replay:FILE``;
the HTTP engines of :mod:`ossa.agent.engines.http`; a plugin's, through the ``ossa.engines`` entry-point group).
Anything else (a checkpoint directory, a Hugging Face id) goes to the local torch engine.
An engine factory is called as ``factory(target, device=…, dtype=…, threads=…, kv_dtype=…)``;
the options that mean nothing to an engine (all of them, to one over HTTP) it ignores.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from importlib.metadata import EntryPoint

from ossa import registry
from ossa.agent.engines.base import Engine, EngineError
from ossa.agent.engines.replay import ReplayEngine
from ossa.model.stats import Generation

__all__ = [
    "ENGINES",
    "Engine",
    "EngineError",
    "ReplayEngine",
    "SerializedEngine",
    "open_engine",
    "schemes",
]

GROUP = "ossa.engines"
#: Engines that ship with ossa, by scheme. The local engine takes specs with no known scheme.
ENGINES = {
    "replay": "ossa.agent.engines.replay:ReplayEngine.open",
    "vllm": "ossa.agent.engines.http:open_vllm",
    "sglang": "ossa.agent.engines.http:open_sglang",
    "openai": "ossa.agent.engines.http:open_openai",
    "llamacpp": "ossa.agent.engines.http:LlamaCppEngine.open",
    "ollama": "ossa.agent.engines.http:OllamaEngine.open",
}
LOCAL = "ossa.agent.engines.local:open_local"

log = logging.getLogger(__name__)


class SerializedEngine:
    """One engine shared by threads: a generation holds it until the stream ends or is closed."""

    def __init__(self, engine: Engine, lock: threading.Lock | None = None) -> None:
        """``lock``: anything with ``acquire``/``release`` (``ossa serve`` passes a fair queue)."""
        self.engine = engine
        self.context_length = engine.context_length
        self._lock = lock or threading.Lock()

    def generate(self, prompt: list[int], **kwargs) -> Generation:
        self._lock.acquire()
        try:
            inner = self.engine.generate(prompt, **kwargs)
        except BaseException:
            self._lock.release()
            raise
        return Generation(_Held(inner, self._lock), inner.usage)


class _Held:
    """The tokens of a generation that releases ``lock`` once, when it ends or is closed."""

    def __init__(self, inner: Generation, lock: threading.Lock) -> None:
        self._inner = inner
        self._lock: threading.Lock | None = lock

    def __iter__(self) -> Iterator[int]:
        return self

    def __next__(self) -> int:
        try:
            return next(self._inner)
        except BaseException:  # the end of the stream (StopIteration) or its failure
            self.close()
            raise

    def close(self) -> None:
        if self._lock is not None:
            lock, self._lock = self._lock, None
            try:
                self._inner.close()
            finally:
                lock.release()


def schemes(*, plugins: bool = True) -> list[str]:
    """The model-spec schemes with an engine (built-ins first)."""
    return list(registry.find(GROUP, ENGINES, plugins=plugins).entries)


def open_engine(
    spec: str,
    *,
    device: str = "cpu",
    dtype: str | None = None,
    threads: int | None = None,
    kv_dtype: str = "bf16",
) -> Engine:
    """``SCHEME:TARGET`` for a registered engine; a checkpoint directory or a Hugging Face id."""
    scheme, sep, target = spec.partition(":")
    found = registry.find(GROUP, ENGINES)
    for reason in found.refused:
        log.warning("refused %s", reason)
    entry = found.entries.get(scheme) if sep else None
    if entry is None:
        entry, target = EntryPoint("local", LOCAL, GROUP), spec
    try:
        factory = entry.load()
    except Exception as exc:  # a broken plugin: say which, not a traceback
        raise EngineError(f"engine {entry.name!r} ({entry.value}) failed to load: {exc}") from exc
    return factory(target, device=device, dtype=dtype, threads=threads, kv_dtype=kv_dtype)
