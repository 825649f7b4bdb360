"""The gpt-oss blocks as plain functions over weight tensors: norm, rotary, attention, MoE."""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F

from ossa.model import kernel, mxfp4
from ossa.model.config import Config, yarn_inv_freq

GEMV_ROWS = 8  # up to this many rows a low-precision weight is read as is (bandwidth-bound)
UPCAST_CHUNK = 16384  # output rows upcast at a time, so no whole matrix is ever held in fp32


def linear(
    x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None, *, fused: bool = False
) -> torch.Tensor:
    """`x @ w.T + b` in x's dtype for `[out, in]` weights of any dtype.

    On CPU bf16 GEMMs are ~5x slower than fp32, so many-row inputs upcast the weight chunk by
    chunk; a few rows read the bf16 weight directly, which runs near memory bandwidth. With
    `fused` (the C kernels are in use), one fp32 row against bf16 weights goes to the kernel's
    GEMV: faster still, and the row is not rounded to bf16.
    """
    if fused and x.shape[0] == 1 and w.dtype == torch.bfloat16 and w.shape[1] % 16 == 0:
        return kernel.linear(x[0], w, b)[None]
    if x.dtype == w.dtype:
        return F.linear(x, w, b)
    if x.shape[0] <= GEMV_ROWS:
        out = F.linear(x.to(w.dtype), w).to(x.dtype)
        return out if b is None else out.add_(b)
    if w.shape[0] <= UPCAST_CHUNK:
        return F.linear(x, w.to(x.dtype), b)
    out = torch.cat([F.linear(x, c.to(x.dtype)) for c in w.split(UPCAST_CHUNK)], dim=-1)
    return out if b is None else out.add_(b)


def rms_norm(x: torch.Tensor, scale: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    t = x.float()
    t = t * torch.rsqrt(t.pow(2).mean(-1, keepdim=True) + eps)
    return (t * scale).to(x.dtype)


class Rotary:
    """Half-split YaRN rotary embedding; cos/sin carry the concentration factor."""

    def __init__(self, cfg: Config, device: torch.device) -> None:
        inv_freq, self.concentration = yarn_inv_freq(cfg)
        self.inv_freq = torch.tensor(inv_freq, dtype=torch.float32, device=device)

    def tables(
        self, positions: torch.Tensor, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor]:
        angles = positions.float()[:, None] * self.inv_freq[None, :]
        cos = (angles.cos() * self.concentration).to(dtype)[:, None, :]
        sin = (angles.sin() * self.concentration).to(dtype)[:, None, :]
        return cos, sin

    @staticmethod
    def apply(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """x: `[T, heads, head_dim]`."""
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


def attend(
    q: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    mask: torch.Tensor | None,
    scale: float,
) -> torch.Tensor:
    """Grouped-query attention: q `[Hq, T, D']`, keys `[Hkv, S, D']`, values `[Hkv, S, D]`.

    One query is done by hand: CPU scaled_dot_product_attention costs ~10x more at T=1.
    """
    hq, n, _ = q.shape
    hkv, s, d = values.shape
    if n > 1:
        out = F.scaled_dot_product_attention(
            q[None], keys[None], values[None], attn_mask=mask, scale=scale, enable_gqa=True
        )
        return out[0]
    scores = torch.matmul(q.view(hkv, hq // hkv, -1), keys.transpose(1, 2)) * scale
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.matmul(scores.softmax(-1), values).view(hq, 1, d)


def swiglu(h: torch.Tensor, limit: float, alpha: float = 1.702) -> torch.Tensor:
    """gpt-oss SwiGLU: interleaved gate/linear rows, clamps, and `(linear + 1)`."""
    gate = h[..., ::2].clamp(max=limit)
    lin = h[..., 1::2].clamp(-limit, limit)
    return gate * torch.sigmoid(alpha * gate) * (lin + 1)


class ExpertCache:
    """Dequantized experts, least recently used first out, within a byte budget."""

    def __init__(self, budget_bytes: int) -> None:
        self.budget = budget_bytes
        self.used = 0
        self._items: OrderedDict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = OrderedDict()

    def get(self, key: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor] | None:
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
        return item

    def put(self, key: tuple[int, int], item: tuple[torch.Tensor, torch.Tensor]) -> None:
        size = sum(t.numel() * t.element_size() for t in item)
        if size > self.budget:
            return
        while self.used + size > self.budget:
            _, old = self._items.popitem(last=False)
            self.used -= sum(t.numel() * t.element_size() for t in old)
        self._items[key] = item
        self.used += size


class Experts:
    """One layer's experts, kept as MXFP4; each is used packed or dequantized when routed to.

    A single token on a CPU with the C kernels reads the packed bytes directly (`decode`);
    otherwise an expert is dequantized (and kept in the shared cache, for decoding without the
    kernels).
    """

    def __init__(
        self,
        layer: int,
        tensors: dict[str, torch.Tensor],
        *,
        limit: float,
        dtype: torch.dtype,
        cache: ExpertCache,
        fused: bool,
    ) -> None:
        self.layer, self.limit, self.dtype, self.cache, self.fused = (
            layer,
            limit,
            dtype,
            cache,
            fused,
        )
        self.w1 = (tensors["mlp1_weight.blocks"], tensors["mlp1_weight.scales"])
        self.w2 = (tensors["mlp2_weight.blocks"], tensors["mlp2_weight.scales"])
        self.b1, self.b2 = tensors["mlp1_bias"], tensors["mlp2_bias"]

    def __call__(self, e: int, x: torch.Tensor) -> torch.Tensor:
        """Expert e on rows x `[n, H]`: mlp1, SwiGLU, mlp2, each with its bias."""
        w1, w2 = self.weights(e)
        return linear(swiglu(linear(x, w1, self.b1[e]), self.limit), w2, self.b2[e])

    def weights(self, e: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Expert e's mlp1 `[2I, H]` and mlp2 `[H, I]` weights, `[out, in]`."""
        key = (self.layer, e)
        item = self.cache.get(key)
        if item is None:
            w1 = mxfp4.dequantize(self.w1[0][e], self.w1[1][e]).to(self.dtype)
            w2 = mxfp4.dequantize(self.w2[0][e], self.w2[1][e]).to(self.dtype)
            item = (w1, w2)
            self.cache.put(key, item)
        return item

    def decode(self, x: torch.Tensor, chosen: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """The routed experts' weighted sum for one token `[1, H]`, in the C kernel."""
        mlp1, mlp2 = (*self.w1, self.b1), (*self.w2, self.b2)
        return kernel.moe(x[0], chosen, weights, mlp1, mlp2, self.limit)[None]


def moe(
    t: torch.Tensor, gate_w: torch.Tensor, gate_b: torch.Tensor, experts: Experts, cfg: Config
) -> torch.Tensor:
    """Top-k routing with softmax over the chosen k; tokens grouped by expert, not weights by token."""
    logits = linear(t, gate_w, gate_b, fused=experts.fused)
    top = torch.topk(logits, cfg.experts_per_token, dim=-1, sorted=True)
    weights = torch.softmax(top.values, dim=-1)
    if t.shape[0] == 1 and experts.fused:
        return experts.decode(t, top.indices[0], weights[0])
    if t.shape[0] == 1:  # decoding: no grouping to do, keep the step lean
        out = None
        for e, w in zip(top.indices[0].tolist(), weights[0], strict=True):
            o = experts(e, t) * w
            out = o if out is None else out.add_(o)
        return out
    out = torch.zeros_like(t)
    chosen = top.indices.flatten()
    order = torch.argsort(chosen, stable=True)
    counts = torch.bincount(chosen, minlength=cfg.num_experts).tolist()
    rows = order // cfg.experts_per_token
    flat_w = weights.flatten()[order].unsqueeze(-1)
    start = 0
    for e, n in enumerate(counts):
        if not n:
            continue
        idx = rows[start : start + n]
        out.index_add_(0, idx, experts(e, t[idx]) * flat_w[start : start + n])
        start += n
    return out
