"""MXFP4 (OCP microscaling, E2M1 values with one E8M0 scale per 32) as gpt-oss stores experts.

Each byte holds two 4-bit codes: the low nibble is the even element, the high nibble the odd
one; each 32-element block along the input dimension shares a power-of-two scale `2**(s-127)`.
"""

from __future__ import annotations

import torch

_MAGNITUDES = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)
FP4_VALUES = _MAGNITUDES + tuple(-v for v in _MAGNITUDES)  # index = code; bit 3 is the sign
BLOCK = 32

_lut_cache: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}


def _luts(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Byte -> both bf16 values packed in one int32 (low half = even element), and scale -> 2**(s-127)."""
    if device not in _lut_cache:
        values = torch.tensor(FP4_VALUES, dtype=torch.bfloat16)
        pairs = torch.stack([values.repeat(16), values.repeat_interleave(16)], dim=-1)
        byte_lut = pairs.contiguous().view(torch.int32).view(256)
        scale_lut = torch.exp2(torch.arange(256, dtype=torch.float32) - 127).to(torch.bfloat16)
        _lut_cache[device] = (byte_lut.to(device), scale_lut.to(device))
    return _lut_cache[device]


def dequantize(blocks: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """uint8 blocks `[*p, G, 16]` and scales `[*p, G]` -> bf16 `[*p, G*32]`, exactly."""
    if blocks.dtype != torch.uint8 or scales.dtype != torch.uint8:
        raise TypeError("MXFP4 blocks and scales must be uint8")
    *prefix, groups, width = blocks.shape
    if width != BLOCK // 2 or tuple(scales.shape) != (*prefix, groups):
        raise ValueError(
            f"MXFP4 shapes do not match: {tuple(blocks.shape)} / {tuple(scales.shape)}"
        )
    byte_lut, scale_lut = _luts(blocks.device)
    pairs = torch.index_select(byte_lut, 0, blocks.reshape(-1).to(torch.int32))
    values = pairs.view(torch.bfloat16).view(*prefix, groups, BLOCK)
    factor = torch.index_select(scale_lut, 0, scales.reshape(-1).to(torch.int32))
    return (values * factor.view(*prefix, groups, 1)).view(*prefix, groups * BLOCK)


def quantize(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Round `[*p, N]` weights to MXFP4 (nearest value, per-block scale fitting the max in 6)."""
    *prefix, n = weight.shape
    if n % BLOCK:
        raise ValueError(f"last dimension {n} is not a multiple of {BLOCK}")
    w = weight.float().reshape(*prefix, n // BLOCK, BLOCK)
    amax = w.abs().amax(dim=-1).clamp_min(2.0**-126)
    exponent = torch.ceil(torch.log2(amax / 6.0)).clamp(-127, 127)
    scaled = w / torch.exp2(exponent).unsqueeze(-1)
    midpoints = torch.tensor([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0])
    codes = torch.bucketize(scaled.abs(), midpoints, right=False).to(torch.uint8)
    codes |= (scaled < 0).to(torch.uint8) << 3
    codes = codes.view(*prefix, n // BLOCK, BLOCK // 2, 2)
    blocks = codes[..., 0] | (codes[..., 1] << 4)
    scales = (exponent + 127).to(torch.uint8)
    return blocks.contiguous(), scales.contiguous()
