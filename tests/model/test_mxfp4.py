import pytest
import torch

from ossa.model import mxfp4


def reference_dequantize(blocks: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """The published formula, element by element."""
    rows, groups, _ = blocks.shape
    out = torch.empty(rows, groups * 32, dtype=torch.float64)
    for r in range(rows):
        for g in range(groups):
            factor = 2.0 ** (int(scales[r, g]) - 127)
            for j in range(16):
                byte = int(blocks[r, g, j])
                out[r, g * 32 + 2 * j] = mxfp4.FP4_VALUES[byte & 0x0F] * factor
                out[r, g * 32 + 2 * j + 1] = mxfp4.FP4_VALUES[byte >> 4] * factor
    return out


def test_dequantize_matches_the_formula_for_every_byte():
    gen = torch.Generator().manual_seed(0)
    blocks = torch.arange(256, dtype=torch.uint8).view(4, 4, 16)  # every byte value once
    scales = torch.randint(100, 140, (4, 4), dtype=torch.uint8, generator=gen)
    got = mxfp4.dequantize(blocks, scales)
    assert got.dtype == torch.bfloat16 and got.shape == (4, 128)
    assert torch.equal(got.double(), reference_dequantize(blocks, scales))


def test_dequantize_keeps_leading_dimensions():
    gen = torch.Generator().manual_seed(1)
    blocks = torch.randint(0, 256, (3, 5, 2, 16), dtype=torch.uint8, generator=gen)
    scales = torch.randint(110, 130, (3, 5, 2), dtype=torch.uint8, generator=gen)
    got = mxfp4.dequantize(blocks, scales)
    assert got.shape == (3, 5, 64)
    assert torch.equal(got[2].double(), reference_dequantize(blocks[2], scales[2]))


def test_quantize_rounds_to_the_nearest_representable_value():
    w = torch.randn(8, 64, generator=torch.Generator().manual_seed(2)) * 0.05
    blocks, scales = mxfp4.quantize(w)
    back = mxfp4.dequantize(blocks, scales).float()
    step = torch.exp2(scales.float() - 127).repeat_interleave(32, dim=1)  # value spacing <= 2*scale
    assert ((back - w).abs() <= step + 1e-12).all()
    # the largest magnitude of every block is representable within one spacing of 6*scale
    assert (w.view(8, 2, 32).abs().amax(-1) <= 6 * torch.exp2(scales.float() - 127)).all()
    assert torch.equal(mxfp4.dequantize(*mxfp4.quantize(back)), back.bfloat16())  # idempotent


def test_bad_inputs_are_rejected():
    with pytest.raises(TypeError):
        mxfp4.dequantize(torch.zeros(2, 16), torch.zeros(2, dtype=torch.uint8))
    with pytest.raises(ValueError):
        mxfp4.dequantize(torch.zeros(2, 8, dtype=torch.uint8), torch.zeros(2, dtype=torch.uint8))
    with pytest.raises(ValueError):
        mxfp4.quantize(torch.zeros(4, 48))
