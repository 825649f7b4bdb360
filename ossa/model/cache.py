"""Key/value cache: growing buffers for full-attention layers, rings for sliding-window layers.

Slot 0 of every buffer is the attention sink: its key is the unit vector on an extra head
dimension (queries carry `sink / scale` there) and its value is zero, so scaled-dot-product
attention adds `exp(sink)` to the softmax denominator exactly as gpt-oss does. Each slot records
the position it holds. Attention reads a span of positions in order (`span`): queries go in
blocks, each against only the keys it can see (`query_blocks`), with a mask built from positions.
Keys are stored after rotary embedding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

EMPTY = 1 << 62  # position of an unused slot: after every query, so always masked
FIRST_SLOTS = 256  # a full-attention layer's slots before it first grows
GROWTH = 8  # a full-attention layer grows by at least 1/GROWTH of its slots


def grown_slots(slots: int, needed: int) -> int:
    """A full-attention layer's slots after growing from `slots` to hold `needed` positions:
    at least an eighth more (so growing stays amortized linear), in steps of 256; not twice
    (doubling left a 16k-token cache holding 32k slots)."""
    target = max(needed, slots + slots // GROWTH)
    return -(-target // FIRST_SLOTS) * FIRST_SLOTS


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
        slots = ring_slots if self.ring else FIRST_SLOTS
        self.k = torch.zeros(kv_heads, slots + 1, head_dim + 1, dtype=dtype, device=device)
        self.v = torch.zeros(kv_heads, slots + 1, head_dim, dtype=dtype, device=device)
        self.k[:, 0, head_dim] = 1
        self.pos = torch.full((slots + 1,), EMPTY, dtype=torch.long, device=device)
        self.pos[0] = -1

    @property
    def slots(self) -> int:
        return self.pos.shape[0] - 1

    def claim(self, start: int, n: int) -> None:
        """Make room for positions start..start+n-1 (the next ones) and count them as held;
        `write`, or a kernel that writes the slots itself, fills them."""
        if start != self.length:
            raise ValueError(f"cache holds {self.length} tokens, cannot write at {start}")
        if self.ring and n > self.slots - self.window + 1:
            raise ValueError("chunk too long for the sliding-window ring")
        if not self.ring:
            self._reserve(start + n)
        self.length = start + n

    def slot(self, position: int) -> int:
        return position % self.slots + 1 if self.ring else position + 1

    def write(self, k: torch.Tensor, v: torch.Tensor, start: int) -> None:
        """Store k, v `[T, kv_heads, head_dim]` for positions start..start+T-1."""
        n = k.shape[0]
        self.claim(start, n)
        d = k.shape[-1]
        if n == 1:  # decoding: plain indexing, no index tensors
            slot = self.slot(start)
            self.k[:, slot, :d] = k[0]
            self.v[:, slot] = v[0]
            self.pos[slot] = start
            return
        positions = torch.arange(start, start + n, device=self.pos.device)
        slots = positions % self.slots + 1 if self.ring else slice(start + 1, start + n + 1)
        self.k[:, slots, :d] = k.transpose(0, 1).to(self.k.dtype)
        self.v[:, slots] = v.transpose(0, 1).to(self.v.dtype)
        self.pos[slots] = positions

    def span(self, first: int, last: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys `[kv_heads, S, head_dim+1]` and values `[kv_heads, S, head_dim]` of the sink and
        positions first..last, in position order: only what a block of queries can see, so
        attention never scores a whole ring to mask most of it away."""
        if not self.ring:
            if first:
                raise ValueError("a full-attention layer's span starts at position 0")
            return self.k[:, : last + 2], self.v[:, : last + 2]
        if last - first + 1 > self.slots:
            raise ValueError(f"the ring holds {self.slots} positions, not {first}..{last}")
        a, b = first % self.slots + 1, last % self.slots + 1
        pieces = [slice(0, 1), slice(a, b + 1)] if a <= b else [
            slice(0, 1), slice(a, self.slots + 1), slice(1, b + 1)
        ]  # fmt: skip
        return (
            torch.cat([self.k[:, p] for p in pieces], dim=1),
            torch.cat([self.v[:, p] for p in pieces], dim=1),
        )

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
        grow = grown_slots(self.slots, n) - self.slots
        h, _, d = self.k.shape
        self.k = torch.cat([self.k, self.k.new_zeros(h, grow, d)], dim=1)
        self.v = torch.cat([self.v, self.v.new_zeros(h, grow, d - 1)], dim=1)
        self.pos = torch.cat([self.pos, self.pos.new_full((grow,), EMPTY)])


@dataclass
class QueryBlock:
    """Queries `rows` of a chunk, the key positions first..last they can see (after the sink),
    and their mask over those keys (None: every key is visible, as for one decoded token)."""

    rows: slice
    first: int
    last: int
    mask: torch.Tensor | None


def query_blocks(
    start: int, n: int, window: int | None, size: int, *, max_scores: int | None = None
) -> list[QueryBlock]:
    """A chunk's queries at positions start..start+n-1 in blocks of up to `size`, each with the
    span of keys it attends: the sliding window's ~window + size keys, not the whole ring.

    `max_scores` caps a block's query rows times keys (the attention scores one query head holds
    at once): deep in a long context a full-attention block of `size` queries would score every
    key, a transient of gigabytes at 16k tokens, so such blocks get fewer rows.
    """
    blocks = []
    i = 0
    while i < n:
        first = 0 if window is None else max(0, start + i - window + 1)
        rows = size
        if max_scores is not None:  # keys seen by the block's last query: at most last - first + 2
            rows = min(size, max(1, max_scores // (start + i + size - first + 1)))
        j = min(i + rows, n)
        last = start + j - 1
        mask = None
        if j - i > 1:
            key_pos = torch.cat([torch.tensor([-1]), torch.arange(first, last + 1)])
            mask = attention_mask(torch.arange(start + i, start + j), key_pos, window)
        blocks.append(QueryBlock(slice(i, j), first, last, mask))
        i = j
    return blocks


def attention_mask(
    query_pos: torch.Tensor, key_pos: torch.Tensor, window: int | None
) -> torch.Tensor:
    """Boolean `[T, S]` (True = attend): causal, within the window, the sink always."""
    allowed = key_pos[None, :] <= query_pos[:, None]
    if window is not None:
        allowed &= key_pos[None, :] > query_pos[:, None] - window
    allowed[:, 0] = True
    return allowed
