"""What an engine reports about its last call (torch-free, so other engines can share it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Stats:
    """What the last `generate` (or `logits`) call did."""

    prefilled_tokens: int = 0
    reused_tokens: int = 0
    generated_tokens: int = 0
    prefill_s: float = 0.0
    decode_s: float = 0.0
