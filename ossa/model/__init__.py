"""gpt-oss in PyTorch: MXFP4 experts kept packed, a KV cache with prefix reuse.

    engine = ossa.model.load("openai/gpt-oss-20b")
    for token in engine.generate(prompt_ids, stop={200002, 200012}, max_tokens=256): ...
"""

from __future__ import annotations

from ossa.model import synth
from ossa.model.checkpoint import CheckpointError
from ossa.model.config import Config
from ossa.model.engine import ContextLengthError, Engine, Stats
from ossa.model.loader import load

__all__ = ["CheckpointError", "Config", "ContextLengthError", "Engine", "Stats", "load", "synth"]
