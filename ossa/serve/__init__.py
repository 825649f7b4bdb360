"""``ossa serve``: the agent behind the OpenAI Responses and Chat Completions APIs.

state = build_state(open_engine("replay:examples/demo.jsonl"), Settings(), store=":memory:")
app = create_app(state)                     # an ASGI app; ``ossa serve`` runs it with uvicorn

The ASGI stack loads on first use, so the other ``ossa`` commands do not pay for it.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "APIError": "ossa.serve.errors",
    "Limits": "ossa.serve.limits",
    "ServerState": "ossa.serve.state",
    "build_state": "ossa.serve.app",
    "check_bind": "ossa.serve.limits",
    "create_app": "ossa.serve.app",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ossa.serve' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
