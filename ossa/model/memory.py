"""How much memory a checkpoint needs to run, from its config alone (before any download)."""

from __future__ import annotations

from dataclasses import dataclass

from ossa.model.cache import FIRST_SLOTS, grown_slots
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


def full_layer_slots(context: int, *, prefill_chunk: int = 512) -> int:
    """Slots a full-attention layer holds once `context` tokens are prefilled from scratch in
    chunks of `prefill_chunk`, as the engine writes them: growth follows `LayerCache`'s own
    rule (`cache.grown_slots`), write by write. Decoding one token at a time can end at a
    slightly different count, as can a prompt appended to a short cache."""
    slots = FIRST_SLOTS
    for end in range(prefill_chunk, context + prefill_chunk, prefill_chunk):
        end = min(end, context)
        if end > slots:
            slots = grown_slots(slots, end)
    return slots


def kv_bytes(cfg: Config, context: int, *, kv_itemsize: int, prefill_chunk: int = 512) -> int:
    """The KV cache's bytes once `context` tokens are in it, exactly as cache.py lays it out.

    Every layer holds its slots plus slot 0, the attention sink: keys `[kv_heads, slots + 1,
    head_dim + 1]` (+1: the sink column) and values `[kv_heads, slots + 1, head_dim]` of
    `kv_itemsize` bytes each (2 for bf16, 4 for fp32), and one int64 position per slot.
    Sliding-window layers are rings of window + prefill chunk slots whatever the context;
    full-attention layers hold `full_layer_slots(context)`.
    """
    per_slot = cfg.num_key_value_heads * (2 * cfg.head_dim + 1) * kv_itemsize + 8
    sliding = sum(cfg.is_sliding(n) for n in range(cfg.num_hidden_layers))
    full = cfg.num_hidden_layers - sliding
    ring = cfg.sliding_window + prefill_chunk
    grown = full_layer_slots(context, prefill_chunk=prefill_chunk)
    return per_slot * (full * (grown + 1) + sliding * (ring + 1))


def estimate(cfg: Config, *, context: int, kv_itemsize: int, expert_cache_budget: int) -> Estimate:
    """The KV cache's element is 2 bytes in bf16 (the agent's default) and 4 in fp32; the
    expert cache fills up to its budget or the bf16 size of all experts, whichever is smaller."""
    all_experts_bf16 = 2 * cfg.parameter_counts()["mxfp4"]
    return Estimate(
        weights=sum(cfg.stored_bytes().values()),
        kv_cache=kv_bytes(cfg, context, kv_itemsize=kv_itemsize),
        expert_cache=min(expert_cache_budget, all_experts_bf16),
    )
