"""Engines over HTTP: gpt-oss served by vLLM, SGLang, llama.cpp, Ollama or any OpenAI server.

ossa still renders every prompt and parses every completion itself; the server only turns
token ids into token ids. Each server family has one module (:mod:`.openai`,
:mod:`.llamacpp`, :mod:`.ollama`) that shapes its request and reads its events; the shared
parts are the connection with its errors and retries (:mod:`.client`), the stream of events
as a :class:`~ossa.model.stats.Generation` (:mod:`.stream`) and the tokenizer check made on
connect (:mod:`.probe`). Every engine here declares a ``concurrency`` above 1: requests
from several threads may run at once (the server queues what its slots cannot take), so
``ossa batch --concurrency N`` and ``ossa serve`` do not serialise them.

Specs: ``vllm:http://host:8000``, ``sglang:http://host:30000``, ``openai:http://host/v1``
(any OpenAI-compatible server), ``llamacpp:http://127.0.0.1:8080``, ``ollama:gpt-oss:20b``.
API keys: ``OSSA_<SCHEME>_API_KEY``, else the ``api_key`` setting (``OSSA_API_KEY``).
"""

from __future__ import annotations

from ossa.agent.engines.http.client import Server
from ossa.agent.engines.http.llamacpp import LlamaCppEngine
from ossa.agent.engines.http.ollama import OllamaEngine
from ossa.agent.engines.http.openai import OpenAIEngine

__all__ = [
    "LlamaCppEngine",
    "OllamaEngine",
    "OpenAIEngine",
    "Server",
    "open_openai",
    "open_sglang",
    "open_vllm",
]

open_vllm = OpenAIEngine.opener("vllm")
open_sglang = OpenAIEngine.opener("sglang")
open_openai = OpenAIEngine.opener("openai")
