"""The gpt-oss forward pass and a generation engine with a prefix-reusing KV cache."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator

import torch

from ossa.model import kernel
from ossa.model.cache import LayerCache, QueryBlock, query_blocks
from ossa.model.checkpoint import Checkpoint
from ossa.model.config import Config
from ossa.model.layers import (
    Attention,
    Block,
    ExpertCache,
    Experts,
    KernelAttention,
    KernelBlock,
    KernelExperts,
    KernelLinear,
    Linear,
    Packed,
    Rotary,
    rms_norm,
)
from ossa.model.stats import Generation, Stats

QUERY_BLOCK = 128  # prefill queries attended together; each block sees only its own keys
SCORES_BYTES = 64 << 20  # at most this much fp32 attention scores at once (all query heads)


class ContextLengthError(ValueError):
    """The prompt does not fit in the model's context."""


class Model:
    """Weights in inference form plus the forward pass over a KV cache."""

    def __init__(
        self,
        ckpt: Checkpoint,
        *,
        device: torch.device,
        dtype: torch.dtype,
        expert_cache_bytes: int,
        kv_dtype: torch.dtype | None = None,
    ) -> None:
        cfg = self.config = ckpt.config
        self.device, self.dtype = device, dtype
        # activations: fp32 on CPU (bf16 GEMMs are slow there), the weight dtype on accelerators
        self.act_dtype = torch.float32 if device.type == "cpu" else dtype
        self.kv_dtype = kv_dtype or self.act_dtype  # attention reads it back in act_dtype
        t = ckpt.tensors

        def dense(name: str) -> torch.Tensor:
            return t[name].to(device=device, dtype=dtype)

        def small(name: str) -> torch.Tensor:  # biases and sinks: tiny, kept in activation dtype
            return t[name].to(device=device, dtype=self.act_dtype)

        def norm(name: str) -> torch.Tensor:
            return t[name].to(device=device, dtype=torch.float32)

        # The implementation is chosen here, once: on a CPU (fp32 activations) the C kernels
        # take one-token steps where they apply. Decoding then reads experts packed, so
        # dequantized copies would only cost memory.
        kernels = device.type == "cpu" and kernel.enabled()

        def proj(weight: str, bias: str | None = None) -> Linear:
            w, b = dense(weight), (small(bias) if bias else None)
            if not (kernels and KernelLinear.fits(w)):
                return Linear(w, b)
            if w.data_ptr() == t[weight].data_ptr():  # as stored: read whole at every step
                w = ckpt.in_huge_pages(weight)
            return KernelLinear(w, b)

        def packed(prefix: str) -> Packed:
            blocks, scales = f"{prefix}_weight.blocks", f"{prefix}_weight.scales"
            if kernels:  # in the kernels' quads, in huge pages: both read whole every step
                b = ckpt.in_huge_pages(blocks, kernel.quad_blocks)
                s = ckpt.in_huge_pages(scales, kernel.quad_scales)
            else:
                b, s = t[blocks].to(device), t[scales].to(device)
            return Packed(b, s, small(f"{prefix}_bias"))

        self.expert_cache = ExpertCache(0 if kernels else expert_cache_bytes)
        experts_kind = KernelExperts if kernels else Experts
        attention_kind = (
            KernelAttention
            if kernels
            and kernel.attention_fits(
                cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
            )
            else Attention
        )
        self.embedding = dense("embedding.weight")
        self.unembedding = proj("unembedding.weight")
        self.norm = norm("norm.scale")
        self.blocks: list[Block] = []
        for n in range(cfg.num_hidden_layers):
            b = f"block.{n}."
            experts = experts_kind(
                n,
                packed(b + "mlp.mlp1"),
                packed(b + "mlp.mlp2"),
                limit=cfg.swiglu_limit,
                dtype=dtype,
                cache=self.expert_cache,
            )
            parts = dict(
                attn_norm=norm(b + "attn.norm.scale"),
                attention=attention_kind(
                    qkv=proj(b + "attn.qkv.weight", b + "attn.qkv.bias"),
                    out=proj(b + "attn.out.weight", b + "attn.out.bias"),
                    sink_q=(small(b + "attn.sinks") * math.sqrt(cfg.head_dim)).view(1, -1, 1),
                    heads=cfg.num_attention_heads,
                    kv_heads=cfg.num_key_value_heads,
                    head_dim=cfg.head_dim,
                ),
                mlp_norm=norm(b + "mlp.norm.scale"),
                gate=proj(b + "mlp.gate.weight", b + "mlp.gate.bias"),
                experts=experts,
                experts_per_token=cfg.experts_per_token,
            )
            block = Block(**parts)
            # a whole one-token step in C where every part of the block has its kernel
            self.blocks.append(KernelBlock(**parts) if KernelBlock.fits(block) else block)
        self.rotary = Rotary(cfg, device)

    def new_cache(self, ring_slots: int) -> list[LayerCache]:
        cfg = self.config
        return [
            LayerCache(
                cfg.num_key_value_heads,
                cfg.head_dim,
                window=cfg.sliding_window if cfg.is_sliding(n) else None,
                ring_slots=ring_slots,
                dtype=self.kv_dtype,
                device=self.device,
            )
            for n in range(cfg.num_hidden_layers)
        ]

    @torch.no_grad()
    def forward(self, tokens: torch.Tensor, start: int, cache: list[LayerCache]) -> torch.Tensor:
        """Hidden states (after the final norm) `[T, hidden]` for tokens at start..start+T-1."""
        n = tokens.shape[0]
        positions = torch.arange(start, start + n, device=self.device)
        rope = self.rotary.tables(positions, self.act_dtype)
        x = self.embedding[tokens].to(self.act_dtype)
        plans: dict[bool, list[QueryBlock]] = {}
        for block, c in zip(self.blocks, cache, strict=True):
            if c.ring not in plans:  # every layer of a kind holds the same positions
                cap = SCORES_BYTES // (4 * self.config.num_attention_heads)
                plans[c.ring] = query_blocks(start, n, c.window, QUERY_BLOCK, max_scores=cap)
            x = block(x, rope, c, start, plans[c.ring])
        return rms_norm(x, self.norm)

    def unembed(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.unembedding(hidden).float()


class Engine:
    """Greedy or sampled generation over one KV cache that later prompts reuse by prefix."""

    def __init__(self, model: Model, *, prefill_chunk: int = 512) -> None:
        self.model = model
        self.config: Config = model.config
        self.prefill_chunk = prefill_chunk
        # a ring this size lets a chunk be written before it is attended, and lets the cache
        # rewind up to prefill_chunk tokens and still serve every window
        self._ring_slots = model.config.sliding_window + prefill_chunk
        self._cache = model.new_cache(self._ring_slots)
        self._tokens: list[int] = []  # the tokens whose keys/values the cache holds
        # the last call's usage (each `generate` returns its own, which callers should read)
        self.stats = Stats()

    @property
    def context_length(self) -> int:
        return self.config.context_length

    def reset(self) -> None:
        """Forget the cached tokens: the next prompt is prefilled from scratch."""
        self._rewind([])

    def logits(self, tokens: Iterable[int]) -> torch.Tensor:
        """float32 `[len, vocab]` logits for every position, from a fresh cache."""
        ids = self._check_tokens(list(tokens))
        cache = self.model.new_cache(self._ring_slots)
        t0 = time.perf_counter()
        out = torch.cat([self.model.unembed(h) for h in self._prefill(ids, 0, cache)])
        self.stats = Stats(prefilled_tokens=len(ids), prefill_s=time.perf_counter() - t0)
        return out

    def generate(
        self,
        prompt: list[int],
        *,
        stop: Iterable[int] = (),
        max_tokens: int,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int | None = None,
    ) -> Generation:
        """Sampled tokens as they come, and this call's usage; a stop token is yielded, then
        generation ends. Bad arguments raise here, before anything runs."""
        ids = self._check_tokens(list(prompt))
        if max_tokens < 0:
            raise ValueError("max_tokens must be >= 0")
        if temperature < 0 or not 0 < top_p <= 1:
            raise ValueError("temperature must be >= 0 and top_p in (0, 1]")
        gen = torch.Generator(device=self.model.device)
        if seed is None:
            gen.seed()
        else:
            gen.manual_seed(seed)
        self.stats = usage = Stats()
        tokens = self._generate(ids, frozenset(stop), max_tokens, temperature, top_p, gen, usage)
        return Generation(tokens, usage)

    def _generate(
        self,
        ids: list[int],
        stop: frozenset[int],
        max_tokens: int,
        temperature: float,
        top_p: float,
        gen: torch.Generator,
        stats: Stats,
    ) -> Iterator[int]:
        t0 = time.perf_counter()
        reused = self._rewind(ids)
        stats.reused_tokens, stats.prefilled_tokens = reused, len(ids) - reused
        *_, hidden = self._prefill(ids[reused:], reused, self._cache)
        self._tokens = list(ids)
        logits = self.model.unembed(hidden[-1:])[0]
        stats.prefill_s = time.perf_counter() - t0
        for _ in range(max_tokens):
            token = _sample(logits, temperature, top_p, gen)
            stats.generated_tokens += 1
            yield token
            full = len(self._tokens) >= self.context_length
            if token in stop or full or stats.generated_tokens == max_tokens:
                return
            t0 = time.perf_counter()
            hidden = self.model.forward(self._tensor([token]), len(self._tokens), self._cache)
            self._tokens.append(token)
            logits = self.model.unembed(hidden)[0]
            stats.decode_s += time.perf_counter() - t0

    def _rewind(self, ids: list[int]) -> int:
        """Keep the longest usable cached prefix of ids (at least one token left to run)."""
        shared = 0
        limit = min(len(self._tokens), max(len(ids) - 1, 0))
        while shared < limit and self._tokens[shared] == ids[shared]:
            shared += 1
        if not all(c.can_rewind(shared) for c in self._cache):
            shared = 0  # a ring already overwrote keys that position needs: start over
        self._tokens = self._tokens[:shared]  # kept in step even if the prefill below fails
        for c in self._cache:
            c.rewind(shared)
        return shared

    def _prefill(
        self, ids: list[int], start: int, cache: list[LayerCache]
    ) -> Iterator[torch.Tensor]:
        for i in range(0, len(ids), self.prefill_chunk):
            chunk = ids[i : i + self.prefill_chunk]
            yield self.model.forward(self._tensor(chunk), start + i, cache)

    def _tensor(self, ids: list[int]) -> torch.Tensor:
        return torch.tensor(ids, dtype=torch.long, device=self.model.device)

    def _check_tokens(self, ids: list[int]) -> list[int]:
        if not ids:
            raise ValueError("the prompt is empty")
        if len(ids) > self.context_length:
            raise ContextLengthError(
                f"prompt of {len(ids)} tokens exceeds the context length of {self.context_length}"
            )
        vocab = self.config.vocab_size
        bad = next((t for t in ids if not isinstance(t, int) or not 0 <= t < vocab), None)
        if bad is not None:
            raise ValueError(f"token {bad!r} is not an id in [0, {vocab})")
        return ids


NUCLEUS_FIRST = 64  # candidates top_p looks at first; eight times more while they fall short


def _sample(logits: torch.Tensor, temperature: float, top_p: float, gen: torch.Generator) -> int:
    """A token drawn from softmax(logits / temperature), within the nucleus when top_p < 1: the
    smallest head of the sorted distribution whose mass reaches top_p.

    One uniform number meets the cumulative probabilities: over gpt-oss's 201k-entry vocabulary
    `torch.multinomial` took ~4 ms a token here (a quarter of a medium model's step), this
    ~0.2 ms. The nucleus is found among the top k for growing k, not by sorting the vocabulary
    (~15 ms)."""
    if temperature == 0:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    ids = None
    if top_p < 1:
        k = NUCLEUS_FIRST
        while True:
            head, order = torch.topk(probs, min(k, probs.numel()))  # largest first
            mass = head.cumsum(0)
            if mass[-1] >= top_p or k >= probs.numel():
                break
            k *= 8
        keep = (mass - head) < top_p
        probs, ids = head[keep], order[keep]
    cdf = probs.double().cumsum(0)
    u = torch.rand((), generator=gen, dtype=torch.float64, device=cdf.device) * cdf[-1]
    i = int(torch.searchsorted(cdf, u, right=True).clamp_(max=cdf.numel() - 1))
    return i if ids is None else int(ids[i])
