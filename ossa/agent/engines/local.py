"""The local torch engine (``ossa.model``): a checkpoint directory or a Hugging Face id."""

from __future__ import annotations

from ossa.agent.engines.base import Engine, EngineError


def open_local(
    spec: str,
    *,
    device: str = "cpu",
    dtype: str | None = None,
    threads: int | None = None,
    kv_dtype: str = "bf16",
) -> Engine:
    """Load ``spec`` (downloaded once if it is a Hugging Face id); torch is imported only here.

    ``kv_dtype`` is the KV cache's: ``bf16`` (the agent's default, half the memory) or
    ``fp32`` (exact against an fp32 reference).
    """
    import torch

    import ossa.model

    torch_dtype = getattr(torch, dtype, None) if dtype else None
    if dtype and not isinstance(torch_dtype, torch.dtype):
        raise EngineError(f"unknown dtype {dtype!r} (try bfloat16 or float32)")
    kv_torch_dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}.get(kv_dtype)
    if kv_torch_dtype is None:
        raise EngineError(f"unknown KV cache dtype {kv_dtype!r} (try bf16 or fp32)")
    try:
        return ossa.model.load(
            spec, device=device, dtype=torch_dtype, threads=threads, kv_dtype=kv_torch_dtype
        )
    except (OSError, ValueError, RuntimeError) as exc:
        raise EngineError(f"cannot load model {spec!r}: {exc}") from exc
