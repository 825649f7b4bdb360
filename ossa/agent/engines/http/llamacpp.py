"""``llamacpp:URL``: llama.cpp's ``llama-server``, through its native ``/completion``.

The native endpoint takes the prompt as a token array (no re-tokenizing on the server),
streams each sampled token's id, keeps the prompt in the slot's cache (``cache_prompt``) and
ends with timings that say how much of the prompt the cache supplied (``cache_n``) and how
much it evaluated (``prompt_n``): exactly ossa's reused and prefilled counts. llama.cpp marks
``<|return|>`` and ``<|call|>`` as end-of-generation for gpt-oss, so it stops where ossa does.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpx

from ossa.agent.engines.base import EngineError
from ossa.agent.engines.http.client import SERVER_CONCURRENCY, Server, api_key, server_url
from ossa.agent.engines.http.probe import PROBE, check_tokens
from ossa.agent.engines.http.stream import Piece, generation
from ossa.model.stats import Generation

__all__ = ["LlamaCppEngine"]


class LlamaCppEngine:
    """A running llama-server; safe to share between threads (each request gets a slot)."""

    #: Requests may run at once: the server queues them onto its ``--parallel`` slots.
    concurrency = SERVER_CONCURRENCY

    def __init__(self, server: Server) -> None:
        self.server = server
        props = server.get("/props")
        settings = props.get("default_generation_settings") or {}
        if not isinstance(settings.get("n_ctx"), int):
            raise EngineError(f"{server.base_url}/props does not look like llama-server's")
        #: One slot's context: what a single conversation can use.
        self.context_length: int = settings["n_ctx"]
        self.slots: int = props.get("total_slots", 1)
        answer = server.post("/tokenize", {"content": PROBE, "parse_special": True})
        check_tokens(server.base_url, answer.get("tokens", []))

    @classmethod
    def open(cls, target: str, *, transport: httpx.BaseTransport | None = None, **_: object):
        """The ``llamacpp`` scheme's factory: ``llamacpp:http://127.0.0.1:8080``."""
        url = server_url("llamacpp", target)
        return cls(Server(url, api_key=api_key("llamacpp"), transport=transport))

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
        body: dict[str, Any] = {
            "prompt": list(prompt),
            "n_predict": max_tokens,
            "temperature": temperature,
            "top_p": top_p,
            "stream": True,
            "cache_prompt": True,
            "return_tokens": True,
        }
        if seed is not None:
            body["seed"] = seed
        return generation(
            self.server,
            "/completion",
            body,
            parse,
            prompt_length=len(prompt),
            stop=stop,
            max_tokens=max_tokens,
        )


def parse(event: dict[str, Any] | None) -> Piece | None:
    """A streamed ``/completion`` event: one token, or the final one with timings."""
    if event is None:
        return None
    tokens = [int(t) for t in event.get("tokens") or []]
    if not event.get("stop"):
        return Piece(tokens=tokens)
    timings = event.get("timings") or {}
    cached = timings.get("cache_n")
    evaluated = timings.get("prompt_n")
    return Piece(
        tokens=tokens,
        final=True,
        finish=_FINISH.get(event.get("stop_type", ""), "stop"),
        prompt_tokens=None if cached is None or evaluated is None else cached + evaluated,
        cached_tokens=cached,
        generated=event.get("tokens_predicted"),
        prefill_s=_seconds(timings.get("prompt_ms")),
        decode_s=_seconds(timings.get("predicted_ms")),
    )


_FINISH = {"eos": "stop", "word": "stop", "limit": "length", "none": "length"}


def _seconds(ms: Any) -> float | None:
    return ms / 1000 if isinstance(ms, int | float) else None
