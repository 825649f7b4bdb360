"""gpt-oss in PyTorch: MXFP4 experts kept packed, a KV cache with prefix reuse.

`load(source, device="auto")` gives an `Engine`; `engine.generate(prompt_ids, stop=...,
max_tokens=...)` returns a `Generation`: iterate it for token ids, read its `usage` (a `Stats`)
for that call's counts. A later prompt that extends the last one reuses its cache.
Unreadable checkpoints raise `CheckpointError`, bad device names `OssaError` (from
`resolve_device`).

Names are imported on first use, so that the CLI and the agent start without loading torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ossa.model import kernel, synth
    from ossa.model.checkpoint import CheckpointError
    from ossa.model.config import Config
    from ossa.model.engine import ContextLengthError, Engine
    from ossa.model.loader import load, resolve_device
    from ossa.model.stats import Generation, Stats

_EXPORTS = {
    "CheckpointError": "ossa.model.checkpoint",
    "Config": "ossa.model.config",
    "ContextLengthError": "ossa.model.engine",
    "Engine": "ossa.model.engine",
    "Generation": "ossa.model.stats",
    "Stats": "ossa.model.stats",
    "load": "ossa.model.loader",
    "resolve_device": "ossa.model.loader",
}
_SUBMODULES = {"kernel", "synth"}

__all__ = [
    "CheckpointError",
    "Config",
    "ContextLengthError",
    "Engine",
    "Generation",
    "Stats",
    "kernel",
    "load",
    "resolve_device",
    "synth",
]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"ossa.model.{name}")
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'ossa.model' has no attribute {name!r}")
