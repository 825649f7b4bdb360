"""How much memory a checkpoint needs to run, from its config alone (before any download)."""

from __future__ import annotations

from dataclasses import dataclass

from ossa.model.config import Config


@dataclass(frozen=True)
class Estimate:
    """Bytes needed on the device: weights as stored, the KV cache, dequantized experts."""

    weights: int
    kv_cache: int
    expert_cache: int

    @property
    def total(self) -> int:
        return self.weights + self.kv_cache + self.expert_cache


def kv_bytes(cfg: Config, context: int, *, act_bytes: int, prefill_chunk: int = 512) -> int:
    """Keys (+1 sink dimension) and values: full layers hold the context, sliding ones a ring
    of window + prefill chunk slots (see cache.py)."""
    per_slot = cfg.num_key_value_heads * (2 * cfg.head_dim + 1) * act_bytes
    sliding = sum(cfg.is_sliding(n) for n in range(cfg.num_hidden_layers))
    full = cfg.num_hidden_layers - sliding
    return per_slot * (full * context + sliding * (cfg.sliding_window + prefill_chunk))


def estimate(cfg: Config, *, context: int, act_bytes: int, expert_cache_budget: int) -> Estimate:
    """Activations are fp32 on CPUs (act_bytes 4) and bf16 on GPUs (2); the expert cache fills
    up to its budget or the bf16 size of all experts, whichever is smaller."""
    all_experts_bf16 = 2 * cfg.parameter_counts()["mxfp4"]
    return Estimate(
        weights=sum(cfg.stored_bytes().values()),
        kv_cache=kv_bytes(cfg, context, act_bytes=act_bytes),
        expert_cache=min(expert_cache_budget, all_experts_bf16),
    )
