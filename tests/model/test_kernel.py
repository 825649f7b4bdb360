"""The fused MXFP4 kernel against the dequantize-then-multiply formula, and in the engine."""

import pytest
import torch

import ossa.model
from ossa.model import kernel, mxfp4
from tests.model.conftest import random_tokens

pytestmark = pytest.mark.skipif(not kernel.available(), reason="no C compiler or no AVX2")


def test_gemv_matches_dequantized_weights():
    gen = torch.Generator().manual_seed(0)
    blocks = torch.randint(0, 256, (96, 8, 16), dtype=torch.uint8, generator=gen)
    blocks[:2].view(-1)[:] = torch.arange(256, dtype=torch.uint8)  # every byte value
    scales = torch.randint(110, 135, (96, 8), dtype=torch.uint8, generator=gen)
    x = torch.randn(256, generator=gen)
    expected = mxfp4.dequantize(blocks, scales).double() @ x.double()
    got = kernel.gemv(x, blocks, scales)
    assert got.dtype == torch.float32 and got.shape == (96,)
    assert torch.allclose(got.double(), expected, rtol=1e-5, atol=1e-5 * expected.abs().max())


def test_gemv_rejects_mismatched_input():
    blocks = torch.zeros(4, 2, 16, dtype=torch.uint8)
    scales = torch.zeros(4, 2, dtype=torch.uint8)
    with pytest.raises(ValueError):
        kernel.gemv(torch.zeros(32), blocks, scales)


def test_engine_decodes_the_same_with_and_without_it(ring_checkpoint, monkeypatch):
    prompt = random_tokens(20, seed=11)
    fused = ossa.model.load(ring_checkpoint, dtype=torch.float32, prefill_chunk=4)
    monkeypatch.setenv("OSSA_NO_KERNEL", "1")
    plain = ossa.model.load(ring_checkpoint, dtype=torch.float32, prefill_chunk=4)
    assert fused.model.expert_cache.budget == 0 and plain.model.expert_cache.budget > 0
    assert list(fused.generate(prompt, max_tokens=8)) == list(plain.generate(prompt, max_tokens=8))
