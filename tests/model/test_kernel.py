"""The C decode kernels against torch formulas in float64, and in the engine."""

import pytest
import torch
import torch.nn.functional as F

import ossa.model
from ossa.model import kernel, mxfp4
from ossa.model.cache import LayerCache, query_blocks
from ossa.model.config import Config
from ossa.model.layers import Attention, KernelAttention, Linear, Rotary, swiglu
from tests.model.conftest import random_tokens

pytestmark = pytest.mark.skipif(
    not kernel.available(), reason="no C compiler, no AVX2 or OSSA_NO_KERNEL"
)


def random_experts(gen: torch.Generator, experts: int, rows: int, cols: int) -> tuple:
    blocks = torch.randint(
        0, 256, (experts, rows, cols // 32, 16), dtype=torch.uint8, generator=gen
    )
    blocks.view(-1)[:256] = torch.arange(256, dtype=torch.uint8)  # every byte value
    scales = torch.randint(110, 135, (experts, rows, cols // 32), dtype=torch.uint8, generator=gen)
    return blocks, scales, torch.randn(experts, rows, generator=gen)


def in_quads(packed: tuple) -> tuple:
    """Blocks, scales and bias as the kernels read them."""
    blocks, scales, bias = packed
    return kernel.quad_blocks(blocks).contiguous(), kernel.quad_scales(scales).contiguous(), bias


@pytest.mark.parametrize("avx2", ["1", "0"])  # forced AVX2, then AVX-512 where the CPU has it
def test_moe_matches_dequantized_experts(avx2, monkeypatch):
    monkeypatch.setenv("OSSA_KERNEL_AVX2", avx2)
    gen = torch.Generator().manual_seed(0)
    hidden, inter, limit = 96, 64, 7.0
    mlp1 = random_experts(gen, 5, 2 * inter, hidden)
    mlp2 = random_experts(gen, 5, hidden, inter)
    x = torch.randn(hidden, generator=gen)
    chosen, weights = torch.tensor([3, 0, 4]), torch.tensor([0.5, 0.3, 0.2])
    expected = torch.zeros(hidden, dtype=torch.float64)
    for e, w in zip(chosen.tolist(), weights.double(), strict=True):
        w1, w2 = (mxfp4.dequantize(b[e], s[e]).double() for b, s, _ in (mlp1, mlp2))
        h = swiglu(w1 @ x.double() + mlp1[2][e].double(), limit)
        expected += w * (w2 @ h + mlp2[2][e].double())
    got = kernel.MoE(in_quads(mlp1), in_quads(mlp2), limit)(x, chosen, weights)
    assert got.dtype == torch.float32 and got.shape == (hidden,)
    assert torch.allclose(got.double(), expected, rtol=1e-5, atol=1e-5 * expected.abs().max())


def test_swiglu_matches_torch_and_checks_its_input():
    """Prefill's SwiGLU between the expert matmuls: clamps on both sides of the limit, and
    sigmoids from saturated to flat, as layers.swiglu computes them."""
    gen = torch.Generator().manual_seed(3)
    h, bias = torch.randn(7, 96, generator=gen) * 6, torch.randn(96, generator=gen)
    got = kernel.swiglu(h, bias, 7.0)
    expected = swiglu((h + bias).double(), 7.0)
    assert got.shape == (7, 48) and got.dtype == torch.float32
    assert torch.allclose(got.double(), expected, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="multiple of 8"):
        kernel.swiglu(torch.zeros(2, 24), torch.zeros(24), 7.0)
    with pytest.raises(ValueError, match="bias"):
        kernel.swiglu(h, torch.zeros(95), 7.0)


def test_moe_rejects_mismatched_input():
    gen = torch.Generator().manual_seed(1)
    mlp1, mlp2 = in_quads(random_experts(gen, 2, 64, 32)), in_quads(random_experts(gen, 2, 32, 32))
    chosen, weights = torch.tensor([0]), torch.tensor([1.0])
    with pytest.raises(ValueError):
        kernel.MoE(mlp1, mlp2, 7.0)(torch.zeros(64), chosen, weights)
    with pytest.raises(ValueError):
        kernel.MoE(mlp1, mlp2, 7.0)(torch.zeros(32), torch.tensor([2]), weights)
    with pytest.raises(ValueError):
        kernel.MoE(mlp1, (mlp2[0], mlp2[1][:, :4], mlp2[2]), 7.0)
    with pytest.raises(ValueError, match="multiple of 4"):
        kernel.quad_blocks(torch.zeros(2, 6, 1, 16, dtype=torch.uint8))


@pytest.mark.parametrize("rows", [1, 6, 64])
def test_linear_matches_float64(rows):
    gen = torch.Generator().manual_seed(rows)
    w = torch.randn(rows, 48, generator=gen).to(torch.bfloat16)
    x, bias = torch.randn(48, generator=gen), torch.randn(rows, generator=gen)
    expected = F.linear(x.double(), w.double(), bias.double())
    got = kernel.Bf16Matrix(w, bias).gemv(x)
    assert torch.allclose(got.double(), expected, rtol=1e-5, atol=1e-5 * expected.abs().max())
    assert torch.allclose(
        kernel.Bf16Matrix(w).gemv(x).double(), expected - bias.double(), atol=1e-4
    )


@pytest.mark.parametrize("cols", [48, 96])  # 48: the AVX-512 variant hands over to AVX2
def test_both_instruction_sets_give_the_same_gemv(cols, monkeypatch):
    gen = torch.Generator().manual_seed(cols)
    w = torch.randn(37, cols, generator=gen).to(torch.bfloat16)
    x = torch.randn(cols, generator=gen)
    expected = F.linear(x.double(), w.double())
    monkeypatch.setenv("OSSA_KERNEL_AVX2", "1")
    assert not kernel.avx512()
    avx2 = kernel.Bf16Matrix(w).gemv(x)
    monkeypatch.delenv("OSSA_KERNEL_AVX2")
    for got in (avx2, kernel.Bf16Matrix(w).gemv(x)):
        assert torch.allclose(got.double(), expected, rtol=1e-5, atol=1e-5 * expected.abs().max())


def test_engine_prefills_the_same_with_and_without_them(ring_checkpoint, monkeypatch):
    """Several-token chunks take the tiled expert GEMMs with the kernels, torch without."""
    prompt = random_tokens(40, seed=12)
    tiled = ossa.model.load(ring_checkpoint, dtype=torch.float32, prefill_chunk=16)
    monkeypatch.setenv("OSSA_NO_KERNEL", "1")
    plain = ossa.model.load(ring_checkpoint, dtype=torch.float32, prefill_chunk=16)
    got, expected = tiled.logits(prompt), plain.logits(prompt)
    assert torch.allclose(got, expected, rtol=0, atol=1e-5 * expected.abs().max())


def test_engine_decodes_the_same_with_and_without_them(ring_checkpoint, monkeypatch):
    prompt = random_tokens(20, seed=11)
    fused = ossa.model.load(ring_checkpoint, dtype=torch.float32, prefill_chunk=4)
    monkeypatch.setenv("OSSA_NO_KERNEL", "1")
    plain = ossa.model.load(ring_checkpoint, dtype=torch.float32, prefill_chunk=4)
    assert fused.model.expert_cache.budget == 0 and plain.model.expert_cache.budget > 0
    assert list(fused.generate(prompt, max_tokens=8)) == list(plain.generate(prompt, max_tokens=8))


def random_attention(
    gen: torch.Generator, heads: int, kv_heads: int, d: int, hidden: int
) -> tuple[dict, Rotary]:
    """An attention layer's random parts (for Attention or KernelAttention) and its rotary."""
    qkv = Linear(torch.randn((heads + 2 * kv_heads) * d, hidden, generator=gen) / 4,
                 torch.randn((heads + 2 * kv_heads) * d, generator=gen))  # fmt: skip
    out = Linear(torch.randn(hidden, heads * d, generator=gen) / 8)
    parts = dict(qkv=qkv, out=out, sink_q=torch.randn(1, heads, 1, generator=gen) * 4,
                 heads=heads, kv_heads=kv_heads, head_dim=d)  # fmt: skip
    cfg = Config(head_dim=d, num_attention_heads=heads, num_key_value_heads=kv_heads)
    return parts, Rotary(cfg, torch.device("cpu"))


@pytest.mark.parametrize("kv_dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("window", [None, 5])
def test_attend_token_matches_the_torch_attention(kv_dtype, window):
    """Token by token past the end of a small ring (so slots wrap), and a growing buffer
    (so it reallocates): the same outputs and the same cache as the torch ops."""
    gen = torch.Generator().manual_seed(7)
    kv_heads, d, hidden = 2, 16, 32
    parts, rotary = random_attention(gen, 8, kv_heads, d, hidden)
    torch_attn, kernel_attn = Attention(**parts), KernelAttention(**parts)
    caches = [
        LayerCache(kv_heads, d, window=window, ring_slots=7, dtype=kv_dtype, device="cpu")
        for _ in range(2)
    ]
    prompt = torch.randn(3, hidden, generator=gen)
    for attn, cache in zip((torch_attn, kernel_attn), caches, strict=True):
        attn(prompt, rotary.tables(torch.arange(3), torch.float32), cache, 0,
             query_blocks(0, 3, window, 128))  # fmt: skip
    for position in range(3, 300):
        x = torch.randn(1, hidden, generator=gen)
        rope = rotary.tables(torch.tensor([position]), torch.float32)
        plan = query_blocks(position, 1, window, 128)
        expected = torch_attn(x, rope, caches[0], position, plan)
        got = kernel_attn(x, rope, caches[1], position, plan)
        assert torch.allclose(got, expected, atol=1e-5), position
    assert caches[1].length == caches[0].length == 300
    assert torch.equal(caches[1].pos, caches[0].pos)
    assert torch.allclose(
        caches[1].k.float(), caches[0].k.float(), atol=1e-2 if kv_dtype == torch.bfloat16 else 1e-6
    )
    assert torch.allclose(caches[1].v.float(), caches[0].v.float(), atol=0)


# every remainder of the AVX-512 tiles' four tokens and the AVX2 tiles' eight; 19 groups of 32
# columns span two of the AVX2 kernel's column slices, and 40 rows end in part of a row block
@pytest.mark.parametrize("avx2", ["1", "0"])
@pytest.mark.parametrize("tokens", [1, 3, 4, 7, 9, 18])
def test_mxfp4_matmul_matches_float64(avx2, tokens, monkeypatch):
    monkeypatch.setenv("OSSA_KERNEL_AVX2", avx2)
    gen = torch.Generator().manual_seed(tokens)
    blocks, scales, _ = random_experts(gen, 1, 40, 608)
    scales[0, 0, :3] = torch.tensor([0, 1, 160], dtype=torch.uint8)  # tiny, zero and huge too
    x = torch.randn(tokens, 608, generator=gen)
    expected = x.double() @ mxfp4.dequantize(blocks[0], scales[0]).double().T
    quads, quad_scales, _ = in_quads((blocks[0], scales[0], None))
    got = kernel.mxfp4_matmul(quads, quad_scales, x)
    assert got.shape == (tokens, 40) and got.dtype == torch.float32
    assert torch.allclose(got.double(), expected, rtol=1e-5, atol=1e-5 * expected.abs().max())


@pytest.mark.parametrize("avx2", ["1", "0"])
@pytest.mark.parametrize("tokens", [2, 4, 7, 9])
def test_bf16_matmul_matches_float64(avx2, tokens, monkeypatch):
    monkeypatch.setenv("OSSA_KERNEL_AVX2", avx2)
    gen = torch.Generator().manual_seed(tokens)
    w = torch.randn(12, 608, generator=gen).to(torch.bfloat16)
    bias, x = torch.randn(12, generator=gen), torch.randn(tokens, 608, generator=gen)
    expected = x.double() @ w.double().T + bias.double()
    got = kernel.Bf16Matrix(w, bias).matmul(x)
    assert got.shape == (tokens, 12) and got.dtype == torch.float32
    assert torch.allclose(got.double(), expected, rtol=1e-5, atol=1e-5 * expected.abs().max())


@pytest.mark.parametrize("kv_dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("simd", ["avx512", "avx2"])
def test_whole_block_steps_decode_as_the_torch_path(ring_checkpoint, monkeypatch, kv_dtype, simd):
    """bf16 projections (the default) make every block a KernelBlock: a decoded token's block
    is one C call, in fp32 on the stored weights, and prefill's few-token chunks stay in fp32
    too (on AVX2 they once went through torch's bf16 GEMV, which rounds activations). The same
    tokens and logits as torch in fp32 on the same weights: within fp32 rounding with an fp32
    cache; with a bf16 cache, fp32-sized differences in a key or value now and then round to
    the neighbouring bf16 number, so within bf16 rounding."""
    from ossa.model.layers import KernelBlock

    monkeypatch.setenv(kernel.AVX2_ENV, "1" if simd == "avx2" else "0")
    if simd == "avx512" and not kernel.avx512():
        pytest.skip("this CPU lacks AVX-512")
    prompt = random_tokens(20, seed=13)
    fused = ossa.model.load(ring_checkpoint, prefill_chunk=4, kv_dtype=kv_dtype)
    assert all(isinstance(b, KernelBlock) for b in fused.model.blocks)
    monkeypatch.setenv("OSSA_NO_KERNEL", "1")
    plain = ossa.model.load(
        ring_checkpoint, prefill_chunk=4, kv_dtype=kv_dtype, dtype=torch.float32
    )
    assert not any(isinstance(b, KernelBlock) for b in plain.model.blocks)
    tokens = list(fused.generate(prompt, max_tokens=12))
    assert tokens == list(plain.generate(prompt, max_tokens=12))
    logits = []
    for engine in (fused, plain):  # one more one-token step on the same history
        position = engine._cache[0].length
        hidden = engine.model.forward(torch.tensor([tokens[0]]), position, engine._cache)
        logits.append(engine.model.unembed(hidden))
    got, expected = logits
    tolerance = 1e-4 if kv_dtype == torch.float32 else 2**-7
    assert torch.allclose(got, expected, rtol=0, atol=tolerance * expected.abs().max())


@pytest.mark.parametrize("kv_dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("window", [None, 5])
@pytest.mark.parametrize("heads", [8, 16])  # two and four query heads per key head
@pytest.mark.parametrize("avx2", ["1", "0"])  # AVX2's blocks of 16 rows, AVX-512's of 48
def test_attend_chunk_matches_the_torch_attention(kv_dtype, window, heads, avx2, monkeypatch):
    """Chunks of several sizes, from the start and deep into a ring that has wrapped."""
    monkeypatch.setenv("OSSA_KERNEL_AVX2", avx2)
    gen = torch.Generator().manual_seed(heads)
    kv_heads, d, hidden = 4, 16, 32
    parts, rotary = random_attention(gen, heads, kv_heads, d, hidden)
    caches = [
        LayerCache(kv_heads, d, window=window, ring_slots=40, dtype=kv_dtype, device="cpu")
        for _ in range(2)
    ]
    position = 0
    for n in (3, 17, 33, 1, 30, 35, 2, 36):
        x = torch.randn(n, hidden, generator=gen)
        rope = rotary.tables(torch.arange(position, position + n), torch.float32)
        plan = query_blocks(position, n, window, 8)
        expected = Attention(**parts)(x, rope, caches[0], position, plan)
        got = KernelAttention(**parts)(x, rope, caches[1], position, plan)
        assert torch.allclose(got, expected, atol=2e-5), (n, position)
        position += n


def test_attention_kernels_refuse_heads_they_cannot_hold():
    """head_dim past the kernels' stack buffers (or not a multiple of 8, or query heads not in
    whole groups) is a clear ValueError, and the engine keeps torch attention for it."""
    assert kernel.attention_fits(64, 8, 64)
    assert not kernel.attention_fits(64, 8, kernel.MAX_HEAD_DIM + 8)
    assert not kernel.attention_fits(64, 8, 60)
    assert not kernel.attention_fits(12, 8, 64)
    d = kernel.MAX_HEAD_DIM + 8
    cache = LayerCache(1, d, window=None, ring_slots=0, dtype=torch.float32, device="cpu")
    with pytest.raises(ValueError, match="head_dim"):
        kernel.attend_token(
            torch.zeros(3 * d), torch.zeros(d // 2), torch.zeros(d // 2), torch.zeros(1), cache,
            0, 1, 0.1,
        )  # fmt: skip
