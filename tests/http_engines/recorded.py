"""Recorded exchanges: an httpx transport that answers as a server's documentation shows.

These are recordings, not servers: each route returns the JSON (or the SSE / NDJSON stream)
that vLLM's, SGLang's, Ollama's and llama.cpp's documented APIs give for such a request,
built from ossa's own tokenizer so the ids are real o200k_harmony ids. Every request is
kept (method, path, JSON body, headers) so tests assert on what ossa sent, and a streamed
body knows whether it was closed (how a server notices a dropped connection).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from ossa.agent.engines.http.probe import PROBE
from ossa.harmony import load_harmony_encoding

ENCODING = load_harmony_encoding()
Handler = Callable[[httpx.Request], httpx.Response]


def ids(text: str) -> list[int]:
    return ENCODING.encode(text, allowed_special="all")


class Body(httpx.SyncByteStream):
    """A streamed response body: its chunks, then optionally a cut; remembers being closed."""

    def __init__(self, chunks: Iterable[bytes], cut: bool = False) -> None:
        self.chunks = list(chunks)
        self.cut = cut
        self.closed = False
        self.sent = 0

    def __iter__(self):
        for chunk in self.chunks:
            if self.closed:
                return
            self.sent += 1
            yield chunk
        if self.cut:
            raise httpx.RemoteProtocolError("peer closed connection without sending complete body")

    def close(self) -> None:
        self.closed = True


def sse(events: Iterable[Any], *, done: bool = False) -> list[bytes]:
    chunks = [f"data: {json.dumps(e)}\n\n".encode() for e in events]
    return chunks + ([b"data: [DONE]\n\n"] if done else [])


def ndjson(events: Iterable[Any]) -> list[bytes]:
    return [(json.dumps(e) + "\n").encode() for e in events]


@dataclass
class Recording:
    """Routes by ``(method, path)``; a route is a Response, a list (one per call) or a function."""

    routes: dict[tuple[str, str], Any] = field(default_factory=dict)
    requests: list[tuple[str, str, Any, httpx.Headers]] = field(default_factory=list)
    bodies: list[Body] = field(default_factory=list)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self._answer)

    def sent(self, path: str) -> list[Any]:
        return [body for _, p, body, _ in self.requests if p == path]

    def _answer(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.requests.append((request.method, request.url.path, body, request.headers))
        route = self.routes.get((request.method, request.url.path))
        if route is None:
            return httpx.Response(404, json={"error": {"message": "not found", "code": 404}})
        if isinstance(route, list):
            route = route.pop(0) if len(route) > 1 else route[0]
        answer = route(request) if callable(route) else route
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, Body):
            self.bodies.append(answer)
            return httpx.Response(200, stream=answer)
        return answer


# -- llama.cpp server (tools/server/README.md: /props, /tokenize, /completion) ---------------


def llamacpp(completions: list[Body] | Body, *, n_ctx: int = 4096, vocab=ids) -> Recording:
    return Recording(
        {
            ("GET", "/props"): httpx.Response(
                200,
                json={
                    "default_generation_settings": {"n_ctx": n_ctx, "params": {}},
                    "total_slots": 4,
                    "model_path": "gpt-oss-20b-mxfp4.gguf",
                },
            ),
            ("POST", "/tokenize"): httpx.Response(200, json={"tokens": vocab(PROBE)}),
            ("POST", "/completion"): completions,
        }
    )


def llamacpp_stream(
    text: str,
    *,
    prompt_n: int = 10,
    cache_n: int = 0,
    stop_type: str = "eos",
    cut_after: int | None = None,
) -> Body:
    """``/completion`` with ``stream: true``: one event per token, then the final one."""
    tokens = ids(text)
    events = [
        {"index": 0, "content": ENCODING.decode([t]), "tokens": [t], "stop": False} for t in tokens
    ]
    final = {
        "index": 0,
        "content": "",
        "tokens": [],
        "stop": True,
        "stop_type": stop_type,
        "tokens_predicted": len(tokens),
        "tokens_evaluated": prompt_n + cache_n,
        "tokens_cached": prompt_n + cache_n + len(tokens),
        "truncated": False,
        "timings": {
            "cache_n": cache_n,
            "prompt_n": prompt_n,
            "prompt_ms": 12.5,
            "predicted_n": len(tokens),
            "predicted_ms": 40.0,
        },
    }
    if cut_after is not None:
        return Body(sse(events[:cut_after]), cut=True)
    return Body(sse([*events, final]))


# -- vLLM / SGLang (OpenAI completions; vLLM's /tokenize, return_token_ids, stop_reason) ----


def openai_server(completions, *, models=("openai/gpt-oss-20b",), max_model_len=131072):
    return Recording(
        {
            ("GET", "/v1/models"): httpx.Response(
                200,
                json={
                    "object": "list",
                    "data": [
                        {"id": m, "object": "model", "max_model_len": max_model_len} for m in models
                    ],
                },
            ),
            ("POST", "/tokenize"): httpx.Response(
                200, json={"tokens": ids(PROBE), "count": len(ids(PROBE)), "max_model_len": 1}
            ),
            ("POST", "/v1/completions"): completions,
        }
    )


def openai_stream(
    pieces: list[str],
    *,
    with_ids: bool,
    finish: str = "stop",
    stop_reason: Any = None,
    prompt_tokens: int = 10,
    cached: int = 0,
) -> Body:
    """A streamed completion: one chunk per piece, the last with ``finish_reason``; usage; DONE."""
    chunks = []
    for i, piece in enumerate(pieces):
        last = i == len(pieces) - 1
        choice: dict[str, Any] = {
            "index": 0,
            "text": piece,
            "logprobs": None,
            "finish_reason": finish if last else None,
            "stop_reason": stop_reason if last else None,
        }
        if with_ids:
            choice["token_ids"] = ids(piece)
        chunks.append(
            {"id": "cmpl-1", "object": "text_completion", "model": "m", "choices": [choice]}
        )
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": 3,
        "total_tokens": prompt_tokens + 3,
        "prompt_tokens_details": {"cached_tokens": cached},
    }
    chunks.append({"id": "cmpl-1", "object": "text_completion", "choices": [], "usage": usage})
    return Body(sse(chunks, done=True))


# -- Ollama (docs/api.md: /api/tags, /api/generate with raw, NDJSON stream) -----------------


def ollama_server(completions, *, model: str = "gpt-oss:20b", counts=len) -> Recording:
    def probe(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if body.get("stream") is False:
            return httpx.Response(
                200,
                json={
                    "model": model,
                    "response": "x",
                    "done": True,
                    "done_reason": "length",
                    "prompt_eval_count": counts(ids(body["prompt"])),
                    "eval_count": 1,
                },
            )
        return completions.pop(0) if isinstance(completions, list) else completions

    return Recording(
        {
            ("GET", "/api/tags"): httpx.Response(
                200, json={"models": [{"name": model, "model": model, "size": 1}]}
            ),
            ("POST", "/api/generate"): probe,
        }
    )


def ollama_stream(pieces: list[str], *, prompt_eval_count: int, done_reason: str = "stop") -> Body:
    events = [
        {"model": "gpt-oss:20b", "created_at": "2025-08-05T00:00:00Z", "response": p, "done": False}
        for p in pieces
    ]
    events.append(
        {
            "model": "gpt-oss:20b",
            "response": "",
            "done": True,
            "done_reason": done_reason,
            "prompt_eval_count": prompt_eval_count,
            "prompt_eval_duration": 2_000_000,
            "eval_count": len(pieces),
            "eval_duration": 30_000_000,
        }
    )
    return Body(ndjson(events))
