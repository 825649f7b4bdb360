"""``vllm:URL``, ``sglang:URL``, ``openai:URL``: OpenAI-compatible ``/v1/completions``.

The prompt goes as token ids (the completions API accepts a token array), so the server
never re-tokenizes ossa's rendering. What comes back depends on the server, and each flavor
asks for the most it can get:

- vLLM returns the sampled ids (``return_token_ids``), keeps special tokens in the text
  (``skip_special_tokens: false``) and stops on token ids (``stop_token_ids``), reporting
  which in ``stop_reason``; its cached-prompt count comes in the final usage
  (``prompt_tokens_details.cached_tokens``, with ``--enable-prompt-tokens-details``).
- SGLang takes the same stop ids and special-token switch but returns text, which ossa
  tokenizes.
- A generic server gets only the standard fields, with ``<|return|>`` and ``<|call|>`` as
  stop strings; it strips them, and ossa restores the right one from the last header.

A spec may name the served model after ``#`` (``vllm:http://gpu:8000#openai/gpt-oss-120b``);
otherwise the server's only model, or its one gpt-oss model, is used.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpx

from ossa.agent.engines.base import EngineError
from ossa.agent.engines.http.client import (
    SERVER_CONCURRENCY,
    Server,
    ServerError,
    api_key,
    server_url,
)
from ossa.agent.engines.http.probe import PROBE, check_count, check_tokens
from ossa.agent.engines.http.stream import Piece, generation
from ossa.harmony import load_harmony_encoding
from ossa.model.stats import Generation

__all__ = ["FLAVORS", "OpenAIEngine"]

#: What each flavor adds to the standard request.
FLAVORS = ("vllm", "sglang", "openai")
#: Used when the server does not say how long a context it serves.
DEFAULT_CONTEXT = 131072


class OpenAIEngine:
    """An OpenAI-compatible completions server; safe to share between threads."""

    concurrency = SERVER_CONCURRENCY

    def __init__(self, server: Server, flavor: str, model: str | None = None) -> None:
        self.server = server
        self.flavor = flavor
        listed = server.get("/v1/models").get("data") or []
        entry = _pick(server.base_url, listed, model)
        self.model: str = entry["id"]
        self.context_length: int = int(entry.get("max_model_len") or DEFAULT_CONTEXT)
        self._check_tokenizer()

    @classmethod
    def opener(cls, flavor: str):
        """The factory of a flavor's scheme: ``vllm:http://host:8000[#model]``."""

        def open_flavor(
            target: str, *, transport: httpx.BaseTransport | None = None, **_: object
        ) -> OpenAIEngine:
            url, _, model = target.partition("#")
            server = Server(server_url(flavor, url), api_key=api_key(flavor), transport=transport)
            return cls(server, flavor, model or None)

        return open_flavor

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
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": list(prompt),
            "max_tokens": max_tokens,
            "temperature": temperature,
            "top_p": top_p,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if seed is not None:
            body["seed"] = seed
        if self.flavor == "openai":
            encoding = load_harmony_encoding()
            body["stop"] = [encoding.decode([token]) for token in stop]
        else:
            body |= {"stop_token_ids": stop, "skip_special_tokens": False}
        if self.flavor == "vllm":
            body |= {"return_token_ids": True, "spaces_between_special_tokens": False}
        return generation(
            self.server,
            "/v1/completions",
            body,
            parse,
            prompt_length=len(prompt),
            stop=stop,
            max_tokens=max_tokens,
        )

    def _check_tokenizer(self) -> None:
        """The server's ``/tokenize`` (vLLM, SGLang) where it has one; else a one-token
        completion of the probe as text, whose usage says how many tokens the server made of it."""
        where = self.server.base_url
        if self.flavor != "openai":
            try:
                answer = self.server.post(
                    "/tokenize", {"model": self.model, "prompt": PROBE, "add_special_tokens": False}
                )
            except ServerError as exc:
                if exc.status != 404:
                    raise
            else:
                check_tokens(where, answer.get("tokens", []))
                return
        answer = self.server.post(
            "/v1/completions",
            {"model": self.model, "prompt": PROBE, "max_tokens": 1, "temperature": 0},
        )
        check_count(where, (answer.get("usage") or {}).get("prompt_tokens"))


def parse(event: dict[str, Any] | None) -> Piece | None:
    """A streamed completion chunk; the ``[DONE]`` marker (``None``) is the end."""
    if event is None:
        return Piece(final=True)
    piece = Piece(tokens=None)
    choices = event.get("choices") or []
    if choices:
        choice = choices[0]
        piece.tokens = _ids(choice)
        piece.text = choice.get("text") or ""
        reason = choice.get("finish_reason")
        if reason:
            piece.finish = "length" if reason == "length" else "stop"
            stop_reason = choice.get("stop_reason")
            piece.stop_token = stop_reason if isinstance(stop_reason, int) else None
    usage = event.get("usage")
    if usage:
        details = usage.get("prompt_tokens_details") or {}
        piece.prompt_tokens = usage.get("prompt_tokens")
        piece.generated = usage.get("completion_tokens")
        piece.cached_tokens = details.get("cached_tokens") or 0
    if piece.tokens is None and not piece.text:
        piece.tokens = []  # a usage-only chunk: nothing to tokenize
    return piece


def _ids(choice: dict[str, Any]) -> list[int] | None:
    """The chunk's token ids: vLLM's ``token_ids``, or ``token_id:N`` logprob tokens."""
    ids = choice.get("token_ids")
    if isinstance(ids, list):
        return [int(t) for t in ids]
    tokens = (choice.get("logprobs") or {}).get("tokens")
    if tokens and all(isinstance(t, str) and t.startswith("token_id:") for t in tokens):
        return [int(t.removeprefix("token_id:")) for t in tokens]
    return None


def _pick(where: str, listed: list[dict[str, Any]], model: str | None) -> dict[str, Any]:
    """The named model, else the only one, else the only gpt-oss one."""
    ids = [m.get("id") for m in listed]
    if model is not None:
        for entry in listed:
            if entry.get("id") == model:
                return entry
        raise EngineError(f"{where} does not serve {model!r} (it serves {ids})")
    if len(listed) == 1:
        return listed[0]
    gpt_oss = [m for m in listed if "gpt-oss" in str(m.get("id", "")).lower()]
    if len(gpt_oss) == 1:
        return gpt_oss[0]
    if not listed:
        raise EngineError(f"{where}/v1/models lists no model")
    raise EngineError(f"{where} serves several models {ids}: name one, like URL#{ids[0]}")
