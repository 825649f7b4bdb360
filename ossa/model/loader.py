"""`load()`: a checkpoint from a directory or the Hub, made into an `Engine` on a device."""

from __future__ import annotations

from pathlib import Path

import torch

from ossa.model import checkpoint, hub
from ossa.model.engine import Engine, Model

DEFAULT_EXPERT_CACHE = 2 << 30  # dequantized experts kept for reuse across tokens (bytes)


def load(
    source: str | Path,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    threads: int | None = None,
    expert_cache_bytes: int = DEFAULT_EXPERT_CACHE,
    prefill_chunk: int = 512,
) -> Engine:
    """An engine for `source` (a local directory in either layout, or a Hugging Face repo id).

    `dtype` is the dense weights' dtype (default bf16, as stored); the experts stay MXFP4.
    `threads` sets torch's CPU threads for the whole process.
    """
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("CUDA was requested but torch sees no CUDA device")
    if threads is not None:
        if threads < 1:
            raise ValueError("threads must be >= 1")
        torch.set_num_threads(threads)
    if prefill_chunk < 1:
        raise ValueError("prefill_chunk must be >= 1")
    ckpt = checkpoint.load(hub.resolve(source))
    model = Model(
        ckpt, device=device, dtype=dtype or torch.bfloat16, expert_cache_bytes=expert_cache_bytes
    )
    return Engine(model, prefill_chunk=prefill_chunk)
