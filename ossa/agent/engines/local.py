"""The local torch engine (``ossa.model``): a checkpoint directory or a Hugging Face id."""

from __future__ import annotations

from ossa.agent.engines.base import Engine, EngineError


def open_local(
    spec: str, *, device: str = "cpu", dtype: str | None = None, threads: int | None = None
) -> Engine:
    """Load ``spec`` (downloaded once if it is a Hugging Face id); torch is imported only here."""
    import torch

    import ossa.model

    torch_dtype = getattr(torch, dtype, None) if dtype else None
    if dtype and not isinstance(torch_dtype, torch.dtype):
        raise EngineError(f"unknown dtype {dtype!r} (try bfloat16 or float32)")
    try:
        return ossa.model.load(spec, device=device, dtype=torch_dtype, threads=threads)
    except (OSError, ValueError, RuntimeError) as exc:
        raise EngineError(f"cannot load model {spec!r}: {exc}") from exc
