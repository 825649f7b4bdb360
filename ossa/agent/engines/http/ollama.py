"""``ollama:MODEL``: Ollama's ``/api/generate`` in raw mode (``ollama:gpt-oss:20b``).

Ollama takes text, not token ids, so ossa sends its rendering decoded (``raw: true`` keeps
Ollama's own template out of it) and tokenizes the streamed text back. It stops on
``<|return|>`` / ``<|call|>`` as stop strings, which it strips; ossa restores the right one
from the last message's header. Its final event counts the prompt tokens it evaluated
(``prompt_eval_count``): the rest of the prompt came from its cache.

The host is ``OLLAMA_HOST`` (as for the ``ollama`` command) or 127.0.0.1:11434, or given
after ``@``: ``ollama:gpt-oss:20b@http://gpu:11434``. Ollama's context defaults to a few
thousand tokens whatever the model supports, so ossa asks for ``num_ctx`` (8192 unless
the spec says ``?num_ctx=N``) and uses that as its context length.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from typing import Any

import httpx

from ossa.agent.engines.base import EngineError
from ossa.agent.engines.http.client import SERVER_CONCURRENCY, Server, api_key, server_url
from ossa.agent.engines.http.probe import PROBE, check_count
from ossa.agent.engines.http.stream import Piece, generation
from ossa.harmony import load_harmony_encoding
from ossa.model.stats import Generation

__all__ = ["DEFAULT_HOST", "OllamaEngine"]

DEFAULT_HOST = "127.0.0.1:11434"
DEFAULT_NUM_CTX = 8192


class OllamaEngine:
    """A model served by Ollama; safe to share (Ollama queues or parallelises requests)."""

    concurrency = SERVER_CONCURRENCY

    def __init__(self, server: Server, model: str, *, num_ctx: int = DEFAULT_NUM_CTX) -> None:
        self.server = server
        self.model = model
        self.context_length = num_ctx
        self._encoding = load_harmony_encoding()
        listed = [m.get("name") for m in server.get("/api/tags").get("models") or []]
        if model not in listed and f"{model}:latest" not in listed:
            raise EngineError(
                f"{server.base_url} has no model {model!r} (it has {listed}); "
                f"run `ollama pull {model}`"
            )
        self._check_tokenizer()

    @classmethod
    def open(
        cls, target: str, *, transport: httpx.BaseTransport | None = None, **_: object
    ) -> OllamaEngine:
        """The ``ollama`` scheme's factory: ``MODEL[@HOST][?num_ctx=N]``."""
        target, _, query = target.partition("?")
        model, _, host = target.partition("@")
        num_ctx = DEFAULT_NUM_CTX
        if query:
            name, _, value = query.partition("=")
            if name != "num_ctx" or not value.isdigit():
                raise EngineError(f"ollama: unknown option {query!r} (only num_ctx=N)")
            num_ctx = int(value)
        if not model:
            raise EngineError("ollama: name the model, like ollama:gpt-oss:20b")
        host = host or os.environ.get("OLLAMA_HOST") or DEFAULT_HOST
        server = Server(server_url("ollama", host), api_key=api_key("ollama"), transport=transport)
        return cls(server, model, num_ctx=num_ctx)

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
        stop = list(stop)
        options: dict[str, Any] = {
            "num_predict": max_tokens,
            "num_ctx": self.context_length,
            "temperature": temperature,
            "top_p": top_p,
            "stop": [self._encoding.decode([token]) for token in stop],
        }
        if seed is not None:
            options["seed"] = seed
        body = {
            "model": self.model,
            "prompt": self._encoding.decode(prompt),
            "raw": True,
            "stream": True,
            "options": options,
        }
        return generation(
            self.server,
            "/api/generate",
            body,
            _parse_with(len(prompt)),
            prompt_length=len(prompt),
            stop=stop,
            max_tokens=max_tokens,
        )

    def _check_tokenizer(self) -> None:
        """Ollama has no tokenize endpoint: a one-token raw completion counts the probe.

        A random prefix keeps Ollama's prompt cache from hiding part of the count.
        """
        nonce = f"{uuid.uuid4().int % 10**6:06d}"
        answer = self.server.post(
            "/api/generate",
            {
                "model": self.model,
                "prompt": nonce + PROBE,
                "raw": True,
                "stream": False,
                "options": {"num_predict": 1, "num_ctx": self.context_length},
            },
        )
        nonce_tokens = len(self._encoding.encode(nonce))
        check_count(self.server.base_url, answer.get("prompt_eval_count", 0) - nonce_tokens)


def _parse_with(prompt_length: int):
    def parse(event: dict[str, Any] | None) -> Piece | None:
        """An NDJSON line: text so far, or the final one with counts and durations (ns)."""
        if event is None:
            return None
        piece = Piece(text=event.get("response") or "")
        if event.get("done"):
            evaluated = event.get("prompt_eval_count")
            piece.final = True
            piece.finish = "length" if event.get("done_reason") == "length" else "stop"
            if isinstance(evaluated, int):
                piece.prompt_tokens = prompt_length
                piece.cached_tokens = max(0, prompt_length - evaluated)
            piece.generated = event.get("eval_count")
            piece.prefill_s = _seconds(event.get("prompt_eval_duration"))
            piece.decode_s = _seconds(event.get("eval_duration"))
        return piece

    return parse


def _seconds(ns: Any) -> float | None:
    return ns / 1e9 if isinstance(ns, int | float) else None
