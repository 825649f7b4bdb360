"""The gpt-oss blocks: norm, rotary, attention, MoE, and the `Block` that holds one layer."""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ossa.model import kernel, mxfp4
from ossa.model.cache import LayerCache, QueryBlock
from ossa.model.config import Config, yarn_inv_freq

GEMV_ROWS = 8  # up to this many rows a low-precision weight is read as is (bandwidth-bound)
UPCAST_CHUNK = 16384  # output rows upcast at a time, so no whole matrix is ever held in fp32


def linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """`x @ w.T + b` in x's dtype for `[out, in]` weights of any dtype.

    On CPU bf16 GEMMs are ~5x slower than fp32, so many-row inputs upcast the weight chunk by
    chunk; a few rows read the bf16 weight directly, which runs near memory bandwidth.
    """
    if x.dtype == w.dtype:
        return F.linear(x, w, b)
    if x.shape[0] <= GEMV_ROWS:
        out = F.linear(x.to(w.dtype), w).to(x.dtype)
        return out if b is None else out.add_(b)
    if w.shape[0] <= UPCAST_CHUNK:
        return F.linear(x, w.to(x.dtype), b)
    out = torch.cat([F.linear(x, c.to(x.dtype)) for c in w.split(UPCAST_CHUNK)], dim=-1)
    return out if b is None else out.add_(b)


@dataclass
class Linear:
    """A weight `[out, in]` and optional bias, applied in torch (`linear`)."""

    weight: torch.Tensor
    bias: torch.Tensor | None = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)


@dataclass
class KernelLinear(Linear):
    """A bf16 weight whose products run in the C kernels, in fp32 on the stored weights: one
    row in the GEMV, several in the matmul (no fp32 copy of the weight is made; torch's bf16
    GEMV would round the rows to bf16). Chosen at load only where they apply."""

    def __post_init__(self) -> None:
        self.matrix = kernel.Bf16Matrix(self.weight, self.bias)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.matrix.gemv(x[0])[None] if x.shape[0] == 1 else self.matrix.matmul(x)

    @staticmethod
    def fits(weight: torch.Tensor) -> bool:
        """Whether the kernels take this weight: bf16 on CPU, in the matmul's shape."""
        return (
            weight.dtype == torch.bfloat16
            and weight.device.type == "cpu"
            and weight.shape[1] % 32 == 0
            and weight.shape[0] % 4 == 0
        )


def rms_norm(x: torch.Tensor, scale: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """In fp32 whatever x's dtype (`F.rms_norm` is one fused op; .float() of fp32 is free)."""
    return F.rms_norm(x.float(), scale.shape, scale, eps).to(x.dtype)


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
    """Grouped-query attention: q `[Hq, T, D']`, keys `[Hkv, S, D']`, values `[Hkv, S, D]`,
    mask `[T, S]` (True = attend; the sink is always attended, so no row is all masked); keys
    and values in q's dtype.

    Done by hand as batched matmuls, each key head against its group's queries: CPU
    scaled_dot_product_attention with a mask takes its math path, ~10x slower at T=1 and with a
    guarded softmax that costs as much as the matmuls for a chunk.
    """
    hq, n, _ = q.shape
    hkv, s, d = values.shape
    g = hq // hkv
    scores = torch.matmul(q.reshape(hkv, g * n, -1), keys.transpose(1, 2)).mul_(scale)
    if mask is not None:
        scores.view(hkv, g, n, s).masked_fill_(~mask, float("-inf"))
    return torch.matmul(scores.softmax(-1), values).view(hq, n, d)


@dataclass
class Attention:
    """Grouped-query attention with sinks over one layer's KV cache: the qkv projection, rotary,
    the cache write, each block of queries against the keys it sees, the output projection."""

    qkv: Linear
    out: Linear
    sink_q: torch.Tensor  # [1, heads, 1]: the extra query dimension that meets the sink key
    heads: int
    kv_heads: int
    head_dim: int

    def __call__(
        self,
        t: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor],
        cache: LayerCache,
        start: int,
        plan: list[QueryBlock],
    ) -> torch.Tensor:
        """t `[T, H]` (normed) at positions start..start+T-1; `plan`: the query blocks."""
        n, hq, hkv, d = t.shape[0], self.heads, self.kv_heads, self.head_dim
        qkv = self.qkv(t)
        qk = Rotary.apply(qkv[:, : (hq + hkv) * d].view(n, hq + hkv, d), *rope)
        cache.write(qk[:, hq:], qkv[:, (hq + hkv) * d :].view(n, hkv, d), start)
        # the keys every block sees, read (and a bf16 cache widened) once
        first = plan[0].first
        keys, values = (x.to(t.dtype) for x in cache.span(first, plan[-1].last))
        attn = self.attend(qk[:, :hq], keys, values, start, plan, cache.window)
        return self.out(attn.reshape(n, hq * d))

    def attend(
        self,
        q: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        start: int,
        plan: list[QueryBlock],
        window: int | None,
    ) -> torch.Tensor:
        """`[T, heads, D]` for rotated queries q `[T, heads, D]` at start.. and the span of
        keys/values the plan's blocks see (`LayerCache.span` from the first block's first
        position); `window`: the layer's sliding window (None: full attention)."""
        n, hq = q.shape[:2]
        q = torch.cat([q, self.sink_q.expand(n, hq, 1)], dim=-1).transpose(0, 1)
        scale = 1 / math.sqrt(self.head_dim)
        first = plan[0].first
        parts = []
        for b in plan:  # blocks starting where the first does (full attention) take a prefix
            lo, hi = 1 + b.first - first, 2 + b.last - first
            k, v = (keys[:, :hi], values[:, :hi]) if lo == 1 else (
                torch.cat([keys[:, :1], keys[:, lo:hi]], dim=1),
                torch.cat([values[:, :1], values[:, lo:hi]], dim=1),
            )  # fmt: skip
            parts.append(attend(q[:, b.rows], k, v, b.mask, scale))
        attn = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
        return attn.transpose(0, 1)


class KernelAttention(Attention):
    """Attention in C: one decoded token's in one call (`kernel.attend_token`, which dispatches
    far less than the torch ops above), a chunk's with its scores never leaving cache
    (`kernel.attend_chunk`)."""

    def __call__(
        self,
        t: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor],
        cache: LayerCache,
        start: int,
        plan: list[QueryBlock],
    ) -> torch.Tensor:
        if t.shape[0] > 1:
            return super().__call__(t, rope, cache, start, plan)
        qkv = self.qkv(t)[0]
        cos, sin = rope
        attn = kernel.attend_token(
            qkv, cos, sin, self.sink_q, cache, start, self.heads, 1 / math.sqrt(self.head_dim)
        )
        return self.out(attn[None])

    def attend(
        self,
        q: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        start: int,
        plan: list[QueryBlock],
        window: int | None,
    ) -> torch.Tensor:
        if 16 % (self.heads // self.kv_heads):  # the kernel's blocks hold 16 rows
            return super().attend(q, keys, values, start, plan, window)
        return kernel.attend_chunk(
            q, self.sink_q.reshape(-1), keys, values, first=plan[0].first, start=start,
            window=window, scale=1 / math.sqrt(self.head_dim),
        )  # fmt: skip


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


@dataclass
class Packed:
    """One MXFP4 projection of all of a layer's experts: blocks `[E, R, G, 16]`, scales
    `[E, R, G]` (uint8) and the bias `[E, R]` in activation dtype; for `KernelExperts`, blocks
    and scales in the kernels' quads (`kernel.quad_blocks`, `kernel.quad_scales`)."""

    blocks: torch.Tensor
    scales: torch.Tensor
    bias: torch.Tensor

    def dequantize(self, e: int, dtype: torch.dtype) -> torch.Tensor:
        return mxfp4.dequantize(self.blocks[e], self.scales[e]).to(dtype)


class Experts:
    """One layer's experts, kept as MXFP4; a routed expert is dequantized when used (and kept in
    the shared cache, which makes decoding without the kernels bearable)."""

    def __init__(
        self,
        layer: int,
        mlp1: Packed,
        mlp2: Packed,
        *,
        limit: float,
        dtype: torch.dtype,
        cache: ExpertCache,
    ) -> None:
        self.layer, self.mlp1, self.mlp2 = layer, mlp1, mlp2
        self.limit, self.dtype, self.cache = limit, dtype, cache

    def __call__(
        self, t: torch.Tensor, chosen: torch.Tensor, weights: torch.Tensor
    ) -> torch.Tensor:
        """The weighted sum of each row's routed experts: t `[T, H]`, chosen and weights `[T, k]`.

        Tokens are grouped by expert, so each routed expert's weights are used once per call.
        """
        if t.shape[0] == 1:  # decoding: no grouping to do, keep the step lean
            out = None
            for e, w in zip(chosen[0].tolist(), weights[0], strict=True):
                o = self.expert(e, t) * w
                out = o if out is None else out.add_(o)
            return out
        k = chosen.shape[1]
        out = torch.zeros_like(t)
        flat = chosen.flatten()
        order = torch.argsort(flat, stable=True)
        counts = torch.bincount(flat, minlength=self.mlp1.blocks.shape[0]).tolist()
        rows = order // k
        flat_w = weights.flatten()[order].unsqueeze(-1)
        start = 0
        for e, n in enumerate(counts):
            if not n:
                continue
            idx = rows[start : start + n]
            out.index_add_(0, idx, self.expert(e, t[idx]) * flat_w[start : start + n])
            start += n
        return out

    def expert(self, e: int, x: torch.Tensor) -> torch.Tensor:
        """Expert e on rows x `[n, H]`: mlp1, SwiGLU, mlp2, each with its bias."""
        w1, w2 = self.weights(e)
        h = swiglu(linear(x, w1, self.mlp1.bias[e]), self.limit)
        return linear(h, w2, self.mlp2.bias[e])

    def weights(self, e: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Expert e's mlp1 `[2I, H]` and mlp2 `[H, I]` weights, `[out, in]`."""
        key = (self.layer, e)
        item = self.cache.get(key)
        if item is None:
            item = (self.mlp1.dequantize(e, self.dtype), self.mlp2.dequantize(e, self.dtype))
            self.cache.put(key, item)
        return item


class KernelExperts(Experts):
    """Experts computed from the packed bytes, nothing dequantized whole, nothing cached: a
    one-token step runs in the C kernel (`kernel.MoE`); several tokens (grouped by expert as
    in `Experts`) meet each routed expert's weights in `kernel.mxfp4_matmul`."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        mlp1, mlp2 = (self.mlp1.blocks, self.mlp1.scales, self.mlp1.bias), (
            self.mlp2.blocks, self.mlp2.scales, self.mlp2.bias
        )  # fmt: skip
        self.token_moe = kernel.MoE(mlp1, mlp2, self.limit)

    def __call__(
        self, t: torch.Tensor, chosen: torch.Tensor, weights: torch.Tensor
    ) -> torch.Tensor:
        if t.shape[0] > 1:
            return super().__call__(t, chosen, weights)
        return self.token_moe(t[0], chosen[0], weights[0])[None]

    def expert(self, e: int, x: torch.Tensor) -> torch.Tensor:
        h = kernel.mxfp4_matmul(self.mlp1.blocks[e], self.mlp1.scales[e], x)
        h = kernel.swiglu(h, self.mlp1.bias[e], self.limit)
        return kernel.mxfp4_matmul(self.mlp2.blocks[e], self.mlp2.scales[e], h).add_(
            self.mlp2.bias[e]
        )


@dataclass
class Block:
    """One transformer block: attention then mixture of experts, each pre-normed.

    Built once at load, with each projection already bound to its implementation (torch, or
    the C kernels on a CPU that has them), so the forward pass never asks which to use.
    """

    attn_norm: torch.Tensor
    attention: Attention
    mlp_norm: torch.Tensor
    gate: Linear
    experts: Experts
    experts_per_token: int

    def __call__(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor],
        cache: LayerCache,
        start: int,
        plan: list[QueryBlock],
    ) -> torch.Tensor:
        """The residual stream `[T, H]` after this block, for tokens at start..start+T-1."""
        x = x + self.attention(rms_norm(x, self.attn_norm), rope, cache, start, plan)
        return x + self.moe(rms_norm(x, self.mlp_norm))

    def moe(self, t: torch.Tensor) -> torch.Tensor:
        """Top-k routing with softmax over the chosen k, then the routed experts."""
        top = torch.topk(self.gate(t), self.experts_per_token, dim=-1, sorted=True)
        return self.experts(t, top.indices, torch.softmax(top.values, dim=-1))


@dataclass
class KernelBlock(Block):
    """A block whose one-token steps run whole in one C call (`kernel.DecodeLayer`): norms,
    projections, attention, routing and experts, with no Python between them. Chosen at load
    where every part has its kernel (bf16 projections on a CPU with the kernels)."""

    def __post_init__(self) -> None:
        a, experts = self.attention, self.experts
        self._step = kernel.DecodeLayer(  # the kernels the parts already built, checked
            attn_norm=self.attn_norm,
            mlp_norm=self.mlp_norm,
            qkv=a.qkv.matrix,
            out=a.out.matrix,
            gate=self.gate.matrix,
            sink_q=a.sink_q.reshape(-1),
            experts=experts.token_moe,
            experts_per_token=self.experts_per_token,
            heads=a.heads,
            kv_heads=a.kv_heads,
            head_dim=a.head_dim,
        )

    def __call__(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor],
        cache: LayerCache,
        start: int,
        plan: list[QueryBlock],
    ) -> torch.Tensor:
        if x.shape[0] > 1:
            return super().__call__(x, rope, cache, start, plan)
        x = x.contiguous()
        self._step(x[0], *rope, cache, start)
        return x

    @staticmethod
    def fits(block: Block) -> bool:
        """Whether every part of `block` has its kernel: bf16 projections, attention, experts."""
        a = block.attention
        return (
            all(isinstance(p, KernelLinear) for p in (a.qkv, a.out, block.gate))
            and isinstance(a, KernelAttention)
            and isinstance(block.experts, KernelExperts)
        )
