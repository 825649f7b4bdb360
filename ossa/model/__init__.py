"""gpt-oss in PyTorch: MXFP4 experts kept packed, a KV cache with prefix reuse.

`load(source)` gives an `Engine`; `engine.generate(prompt_ids, stop=..., max_tokens=...)`
yields token ids, and a later prompt that extends the last one reuses its cache.
"""

from __future__ import annotations

from ossa.model import kernel, synth
from ossa.model.checkpoint import CheckpointError
from ossa.model.config import Config
from ossa.model.engine import ContextLengthError, Engine, Stats
from ossa.model.loader import load

__all__ = [
    "CheckpointError",
    "Config",
    "ContextLengthError",
    "Engine",
    "Stats",
    "kernel",
    "load",
    "synth",
]
