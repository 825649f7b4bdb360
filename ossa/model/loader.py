"""`load()`: a checkpoint from a directory or the Hub, made into an `Engine` on a device."""

from __future__ import annotations

from pathlib import Path

import torch

from ossa.errors import OssaError
from ossa.model import checkpoint, hub
from ossa.model.engine import Engine, Model

DEFAULT_EXPERT_CACHE = 2 << 30  # dequantized experts kept for reuse across tokens (bytes)


def resolve_device(name: str) -> str:
    """The torch device for `name`: "auto" (CUDA when torch sees a GPU, else the CPU), "cpu",
    or "cuda" / "cuda:N" (refused when torch sees no GPU, rather than failing at first use)."""
    text = name.strip().lower()
    if text == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if text == "cpu":
        return "cpu"
    kind, _, index = text.partition(":")
    if kind != "cuda" or (index and not index.isdigit()):
        raise OssaError(f"unknown device {name!r}: use auto, cpu or cuda")
    if not torch.cuda.is_available():
        raise OssaError(
            f"device {name!r} was asked for, but torch sees no CUDA GPU "
            f"(torch {torch.__version__}); use --device cpu or auto"
        )
    if index and int(index) >= torch.cuda.device_count():
        raise OssaError(f"device {name!r}: torch sees {torch.cuda.device_count()} CUDA GPU(s)")
    return text


def load(
    source: str | Path,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    threads: int | None = None,
    expert_cache_bytes: int = DEFAULT_EXPERT_CACHE,
    prefill_chunk: int = 512,
    kv_dtype: torch.dtype | None = None,
) -> Engine:
    """An engine for `source` (a local directory in either layout, or a Hugging Face repo id).

    `device` is a name for `resolve_device` ("auto", "cpu", "cuda") or a torch.device.
    `dtype` is the dense weights' dtype (default bf16, as stored); the experts stay MXFP4.
    `threads` sets torch's CPU threads for the whole process.
    `kv_dtype` is the KV cache's dtype (default: the activations', fp32 on a CPU);
    torch.bfloat16 halves its memory and moves logits by ~1e-3 (keys and values rounded).
    The `ossa` agent asks for bf16 unless told `--kv-dtype fp32`.
    """
    device = torch.device(resolve_device(device) if isinstance(device, str) else device)
    if threads is not None:
        if threads < 1:
            raise ValueError("threads must be >= 1")
        torch.set_num_threads(threads)
    if prefill_chunk < 1:
        raise ValueError("prefill_chunk must be >= 1")
    ckpt = checkpoint.load(hub.resolve(source))
    model = Model(
        ckpt,
        device=device,
        dtype=dtype or torch.bfloat16,
        expert_cache_bytes=expert_cache_bytes,
        kv_dtype=kv_dtype,
    )
    return Engine(model, prefill_chunk=prefill_chunk)
