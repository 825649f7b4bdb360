"""Key/value cache: growing buffers for full-attention layers, rings for sliding-window layers.

Slot 0 of every buffer is the attention sink: its key is the unit vector on an extra head
dimension (queries carry `sink / scale` there) and its value is zero, so scaled-dot-product
attention adds `exp(sink)` to the softmax denominator exactly as gpt-oss does. Each slot records
the position it holds, and the attention mask is built from those positions, so a ring's slot
order never matters. Keys are stored after rotary embedding.
"""

from __future__ import annotations

import torch

EMPTY = 1 << 62  # position of an unused slot: after every query, so always masked


class LayerCache:
    def __init__(
        self,
        kv_heads: int,
        head_dim: int,
        *,
        window: int | None,
        ring_slots: int,
        dtype: torch.dtype,
        device: torch.device,
    ) -> None:
        self.window = window
        self.ring = window is not None
        self.length = 0  # tokens written (positions 0..length-1)
        slots = ring_slots if self.ring else 256
        self.k = torch.zeros(kv_heads, slots + 1, head_dim + 1, dtype=dtype, device=device)
        self.v = torch.zeros(kv_heads, slots + 1, head_dim, dtype=dtype, device=device)
        self.k[:, 0, head_dim] = 1
        self.pos = torch.full((slots + 1,), EMPTY, dtype=torch.long, device=device)
        self.pos[0] = -1

    @property
    def slots(self) -> int:
        return self.pos.shape[0] - 1

    def write(self, k: torch.Tensor, v: torch.Tensor, start: int) -> None:
        """Store k, v `[T, kv_heads, head_dim]` for positions start..start+T-1."""
        n = k.shape[0]
        if start != self.length:
            raise ValueError(f"cache holds {self.length} tokens, cannot write at {start}")
        d = k.shape[-1]
        if n == 1:  # decoding: plain indexing, no index tensors
            if not self.ring:
                self._reserve(start + 1)
            slot = start % self.slots + 1 if self.ring else start + 1
            self.k[:, slot, :d] = k[0]
            self.v[:, slot] = v[0]
            self.pos[slot] = start
        elif self.ring:
            if n > self.slots - self.window + 1:
                raise ValueError("chunk too long for the sliding-window ring")
            slots = torch.arange(start, start + n, device=self.pos.device) % self.slots + 1
            self.k[:, slots, :d] = k.transpose(0, 1).to(self.k.dtype)
            self.v[:, slots] = v.transpose(0, 1).to(self.v.dtype)
            self.pos[slots] = torch.arange(start, start + n, device=self.pos.device)
        else:
            self._reserve(start + n)
            self.k[:, start + 1 : start + n + 1, :d] = k.transpose(0, 1)
            self.v[:, start + 1 : start + n + 1] = v.transpose(0, 1)
            self.pos[start + 1 : start + n + 1] = torch.arange(
                start, start + n, device=self.pos.device
            )
        self.length = start + n

    def view(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Keys `[kv_heads, S, head_dim+1]`, values `[kv_heads, S, head_dim]`, positions `[S]`."""
        if self.ring:
            return self.k, self.v, self.pos
        end = self.length + 1
        return self.k[:, :end], self.v[:, :end], self.pos[:end]

    def can_rewind(self, length: int) -> bool:
        """Whether this cache still holds every key a query at position `length` needs."""
        if length > self.length:
            return False
        if not self.ring:
            return True
        low = max(0, length - self.window + 1)
        held = ((self.pos >= low) & (self.pos < length)).sum().item()
        return held == length - low

    def rewind(self, length: int) -> None:
        """Forget positions `length` and after."""
        if not self.can_rewind(length):
            raise ValueError(f"cannot rewind this cache to {length} tokens")
        self.pos[1:][self.pos[1:] >= length] = EMPTY
        self.length = length

    def _reserve(self, n: int) -> None:
        if n <= self.slots:
            return
        grow = max(n, 2 * self.slots) - self.slots
        h, _, d = self.k.shape
        self.k = torch.cat([self.k, self.k.new_zeros(h, grow, d)], dim=1)
        self.v = torch.cat([self.v, self.v.new_zeros(h, grow, d - 1)], dim=1)
        self.pos = torch.cat([self.pos, self.pos.new_full((grow,), EMPTY)])


def attention_mask(
    query_pos: torch.Tensor, key_pos: torch.Tensor, window: int | None
) -> torch.Tensor | None:
    """Boolean `[T, S]` (True = attend): causal, within the window, the sink always."""
    allowed = key_pos[None, :] <= query_pos[:, None]
    if window is not None:
        allowed &= key_pos[None, :] > query_pos[:, None] - window
    allowed[:, 0] = True
    return allowed
