"""Random-weight gpt-oss checkpoints in exactly the published layouts, for tests and benches.

Weights are drawn with unit-variance activations in mind (std 1/sqrt(fan_in)) so attention,
routing and sampling are far from uniform; experts are quantized to MXFP4 from such weights.
Files are streamed tensor by tensor, so a 20b-shaped checkpoint never sits in memory whole.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable
from pathlib import Path

import torch

from ossa.model import mxfp4
from ossa.model.checkpoint import expected_shapes
from ossa.model.config import Config, preset

SHARD_BYTES = 4_800_000_000  # the transformers converter's shard size
_NAMES = {torch.bfloat16: "BF16", torch.uint8: "U8", torch.float32: "F32"}


def write_checkpoint(
    path: str | Path,
    config_or_preset: Config | str,
    *,
    layout: str = "original",
    seed: int = 0,
    fast: bool = False,
) -> Path:
    """Write a random checkpoint under `path` (`path/original/` for the original layout).

    `fast` draws the MXFP4 codes and scales directly instead of quantizing random weights,
    for multi-GB shapes where quantizing would take most of an hour.
    """
    cfg = preset(config_or_preset) if isinstance(config_or_preset, str) else config_or_preset
    if layout not in ("original", "transformers"):
        raise ValueError(f"layout must be 'original' or 'transformers', not {layout!r}")
    root = Path(path)
    gen = torch.Generator().manual_seed(seed)
    tensors = _random_tensors(cfg, gen, fast)
    if layout == "original":
        folder = root / "original"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text(json.dumps(cfg.to_original(), indent=2))
        dtypes = {n: _dtype_label(n) for n in tensors}
        (folder / "dtypes.json").write_text(json.dumps(dtypes, indent=2))
        _write_safetensors(folder / "model.safetensors", tensors)
        return root
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text(json.dumps(cfg.to_transformers(), indent=2))
    hf = _to_transformers_names(cfg, tensors)
    shards = _shard(hf)
    if len(shards) == 1:
        _write_safetensors(root / "model.safetensors", hf)
    else:
        weight_map = {}
        for k, shard in enumerate(shards, start=1):
            name = f"model-{k:05d}-of-{len(shards):05d}.safetensors"
            _write_safetensors(root / name, shard)
            weight_map |= dict.fromkeys(shard, name)
        total = sum(math.prod(s) * d.itemsize for d, s, _ in hf.values())
        index = {"metadata": {"total_size": total}, "weight_map": weight_map}
        (root / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    return root


# name -> (dtype, shape, make); make() produces the tensor when it is written
Spec = dict[str, tuple[torch.dtype, tuple[int, ...], Callable[[], torch.Tensor]]]


def _random_tensors(cfg: Config, gen: torch.Generator, fast: bool) -> Spec:
    spec: Spec = {}
    experts: dict[str, torch.Tensor] = {}

    def normal(shape: tuple[int, ...], std: float, mean: float = 0.0) -> Callable[[], torch.Tensor]:
        return lambda: (torch.randn(shape, generator=gen) * std + mean).to(torch.bfloat16)

    def packed(name: str, shape: tuple[int, ...], part: str) -> Callable[[], torch.Tensor]:
        def make() -> torch.Tensor:
            if part == "blocks":  # quantize expert by expert; scales follow right after
                e, rows, groups, _ = shape
                blocks = torch.empty(shape, dtype=torch.uint8)
                scales = torch.empty((e, rows, groups), dtype=torch.uint8)
                for k in range(e):
                    if fast:  # uniform codes have std ~2.9 x scale; aim at 1/sqrt(fan_in)
                        blocks[k] = torch.randint(
                            0, 256, shape[1:], generator=gen, dtype=torch.uint8
                        )
                        exponent = round(math.log2(1 / (2.9 * math.sqrt(groups * 32))))
                        scales[k] = 127 + exponent
                        continue
                    w = torch.randn(rows, groups * 32, generator=gen) / math.sqrt(groups * 32)
                    blocks[k], scales[k] = mxfp4.quantize(w)
                experts[name] = scales
                return blocks
            return experts.pop(name)

        return make

    for name, shape in expected_shapes(cfg).items():
        if name.endswith((".blocks", ".scales")):
            part = name.rsplit(".", 1)[1]
            spec[name] = (torch.uint8, shape, packed(name.rsplit(".", 1)[0], shape, part))
        elif name.endswith(".scale"):
            spec[name] = (torch.bfloat16, shape, normal(shape, 0.1, 1.0))
        elif name.endswith(("bias", "sinks")):
            spec[name] = (torch.bfloat16, shape, normal(shape, 0.5 if "sinks" in name else 0.1))
        elif name == "embedding.weight":
            spec[name] = (torch.bfloat16, shape, normal(shape, 1.0))
        else:
            spec[name] = (torch.bfloat16, shape, normal(shape, 1 / math.sqrt(shape[-1])))
    return spec


def _dtype_label(name: str) -> str:
    return "FP4" if name.endswith(".blocks") else "UE8" if name.endswith(".scales") else "BF16"


def _to_transformers_names(cfg: Config, spec: Spec) -> Spec:
    out: Spec = {}
    q = cfg.num_attention_heads * cfg.head_dim
    kv = cfg.num_key_value_heads * cfg.head_dim
    for name, (dtype, shape, make) in spec.items():
        parts = name.split(".")
        if name == "embedding.weight":
            out["model.embed_tokens.weight"] = (dtype, shape, make)
        elif name == "norm.scale":
            out["model.norm.weight"] = (dtype, shape, make)
        elif name == "unembedding.weight":
            out["lm_head.weight"] = (dtype, shape, make)
        elif parts[2:4] == ["attn", "qkv"]:
            layer, kind = f"model.layers.{parts[1]}.self_attn", parts[4]
            bounds = {"q": (0, q), "k": (q, q + kv), "v": (q + kv, q + 2 * kv)}
            fused: dict[str, torch.Tensor] = {}
            for proj, (a, b) in bounds.items():
                out[f"{layer}.{proj}_proj.{kind}"] = (
                    dtype,
                    (b - a, *shape[1:]),
                    _slice_of(make, fused, a, b, last=proj == "v"),
                )
        else:
            out[_hf_name(parts)] = (dtype, shape, make)
    return out


def _slice_of(make, fused: dict, a: int, b: int, *, last: bool) -> Callable[[], torch.Tensor]:
    def get() -> torch.Tensor:
        if "t" not in fused:
            fused["t"] = make()
        t = fused["t"][a:b]
        if last:
            fused.clear()
        return t

    return get


def _hf_name(parts: list[str]) -> str:
    layer = f"model.layers.{parts[1]}"
    rest = ".".join(parts[2:])
    return (
        layer
        + {
            "attn.norm.scale": ".input_layernorm.weight",
            "attn.out.weight": ".self_attn.o_proj.weight",
            "attn.out.bias": ".self_attn.o_proj.bias",
            "attn.sinks": ".self_attn.sinks",
            "mlp.norm.scale": ".post_attention_layernorm.weight",
            "mlp.gate.weight": ".mlp.router.weight",
            "mlp.gate.bias": ".mlp.router.bias",
            "mlp.mlp1_weight.blocks": ".mlp.experts.gate_up_proj_blocks",
            "mlp.mlp1_weight.scales": ".mlp.experts.gate_up_proj_scales",
            "mlp.mlp1_bias": ".mlp.experts.gate_up_proj_bias",
            "mlp.mlp2_weight.blocks": ".mlp.experts.down_proj_blocks",
            "mlp.mlp2_weight.scales": ".mlp.experts.down_proj_scales",
            "mlp.mlp2_bias": ".mlp.experts.down_proj_bias",
        }[rest]
    )


def _shard(spec: Spec) -> list[Spec]:
    shards: list[Spec] = [{}]
    size = 0
    for name, entry in spec.items():
        nbytes = math.prod(entry[1]) * entry[0].itemsize
        if shards[-1] and size + nbytes > SHARD_BYTES:
            shards.append({})
            size = 0
        shards[-1][name] = entry
        size += nbytes
    return shards


def _write_safetensors(path: Path, spec: Spec) -> None:
    """Stream a safetensors file: the header first (shapes are known), then each tensor."""
    header: dict[str, dict] = {}
    offset = 0
    for name, (dtype, shape, _) in spec.items():
        nbytes = math.prod(shape) * dtype.itemsize
        header[name] = {
            "dtype": _NAMES[dtype],
            "shape": list(shape),
            "data_offsets": [offset, offset + nbytes],
        }
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        for name, (dtype, shape, make) in spec.items():
            t = make()
            if t.dtype != dtype or tuple(t.shape) != shape:
                raise AssertionError(f"synth produced {name} as {t.dtype}{tuple(t.shape)}")
            f.write(t.contiguous().view(torch.uint8).numpy().tobytes())
