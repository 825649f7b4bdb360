"""Read gpt-oss checkpoints in either published layout, memory-mapped, under the original names.

Tensors are views of the mapped files, so nothing is read until a page is touched and MXFP4
experts stay packed. safetensors' own loaders copy each tensor into fresh memory, so the
(tiny, stable) file header is parsed here instead.
"""

from __future__ import annotations

import json
import mmap
import re
import struct
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from ossa.model.config import Config

DTYPES = {
    "BF16": torch.bfloat16,
    "F16": torch.float16,
    "F32": torch.float32,
    "U8": torch.uint8,
    "I8": torch.int8,
    "I32": torch.int32,
    "I64": torch.int64,
}


class CheckpointError(ValueError):
    """The directory is not a readable gpt-oss checkpoint."""


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """Map a `.safetensors` file and return read-only-in-spirit tensor views of it."""
    with open(path, "rb") as f:
        try:
            (header_len,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(header_len))
        except (struct.error, ValueError) as e:
            raise CheckpointError(f"{path} is not a safetensors file: {e}") from None
        size = path.stat().st_size
        # ACCESS_COPY: private pages, so torch gets a writable buffer without touching the file
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY) if size else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = (
            torch.frombuffer(mapped, dtype=torch.uint8)
            if mapped
            else torch.empty(0, dtype=torch.uint8)
        )
    base = 8 + header_len
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = DTYPES.get(info["dtype"])
        if dtype is None:
            raise CheckpointError(f"{path}: tensor {name} has unsupported dtype {info['dtype']}")
        start, end = info["data_offsets"]
        if base + end > size:
            raise CheckpointError(f"{path} is truncated (tensor {name} runs past the end)")
        raw = data[base + start : base + end]
        tensors[name] = raw.view(dtype).view(info["shape"])
    return tensors


@dataclass
class Checkpoint:
    """A checkpoint's config and its tensors under the `original/` names."""

    config: Config
    tensors: dict[str, torch.Tensor]
    layout: str
    path: Path

    def nbytes(self) -> dict[str, int]:
        """Bytes by dtype name, as stored."""
        out: dict[str, int] = {}
        for t in self.tensors.values():
            key = str(t.dtype).removeprefix("torch.")
            out[key] = out.get(key, 0) + t.numel() * t.element_size()
        return out


def find(path: str | Path) -> tuple[str, Path]:
    """The layout ("original" or "transformers") and the directory holding its files."""
    root = Path(path)
    if not root.is_dir():
        raise CheckpointError(f"{root} is not a directory")
    for candidate in (root / "original", root):
        cfg = candidate / "config.json"
        if cfg.is_file() and any(candidate.glob("*.safetensors")):
            data = _read_json(cfg)
            return ("transformers" if "num_local_experts" in data else "original"), candidate
    raise CheckpointError(
        f"{root} holds no config.json with *.safetensors (nor an original/ folder)"
    )


def load(path: str | Path) -> Checkpoint:
    """Open a checkpoint directory in either layout (an `original/` subfolder is found)."""
    layout, folder = find(path)
    data = _read_json(folder / "config.json")
    config = Config.from_original(data) if layout == "original" else Config.from_transformers(data)
    raw: dict[str, torch.Tensor] = {}
    for file in sorted(folder.glob("*.safetensors")):
        raw.update(read_safetensors(file))
    tensors = raw if layout == "original" else dict(_from_transformers(raw))
    _check(config, tensors, folder)
    return Checkpoint(config, tensors, layout, folder)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"cannot read {path}: {e}") from None


_HF_NAMES = [
    (r"model\.embed_tokens\.weight", "embedding.weight"),
    (r"model\.norm\.weight", "norm.scale"),
    (r"lm_head\.weight", "unembedding.weight"),
    (r"model\.layers\.(\d+)\.input_layernorm\.weight", r"block.\1.attn.norm.scale"),
    (r"model\.layers\.(\d+)\.self_attn\.o_proj\.(weight|bias)", r"block.\1.attn.out.\2"),
    (r"model\.layers\.(\d+)\.self_attn\.sinks", r"block.\1.attn.sinks"),
    (r"model\.layers\.(\d+)\.post_attention_layernorm\.weight", r"block.\1.mlp.norm.scale"),
    (r"model\.layers\.(\d+)\.mlp\.router\.(weight|bias)", r"block.\1.mlp.gate.\2"),
    (
        r"model\.layers\.(\d+)\.mlp\.experts\.gate_up_proj_(blocks|scales)",
        r"block.\1.mlp.mlp1_weight.\2",
    ),
    (r"model\.layers\.(\d+)\.mlp\.experts\.gate_up_proj_bias", r"block.\1.mlp.mlp1_bias"),
    (
        r"model\.layers\.(\d+)\.mlp\.experts\.down_proj_(blocks|scales)",
        r"block.\1.mlp.mlp2_weight.\2",
    ),
    (r"model\.layers\.(\d+)\.mlp\.experts\.down_proj_bias", r"block.\1.mlp.mlp2_bias"),
]
_HF_PATTERNS = [(re.compile(p), r) for p, r in _HF_NAMES]
_QKV = re.compile(r"model\.layers\.(\d+)\.self_attn\.([qkv])_proj\.(weight|bias)")


def _from_transformers(raw: dict[str, torch.Tensor]) -> Iterator[tuple[str, torch.Tensor]]:
    """Rename transformers tensors; q/k/v are concatenated into the reference's fused qkv."""
    parts: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    for name, t in raw.items():
        if m := _QKV.fullmatch(name):
            parts.setdefault((m[1], m[3]), {})[m[2]] = t
            continue
        for pattern, repl in _HF_PATTERNS:
            if pattern.fullmatch(name):
                yield pattern.sub(repl, name), t
                break
        else:
            raise CheckpointError(f"unexpected tensor {name} in a transformers gpt-oss checkpoint")
    for (layer, kind), qkv in parts.items():
        if set(qkv) != {"q", "k", "v"}:
            raise CheckpointError(f"layer {layer} lacks some of q/k/v_proj.{kind}")
        yield f"block.{layer}.attn.qkv.{kind}", torch.cat([qkv["q"], qkv["k"], qkv["v"]])


def expected_shapes(cfg: Config) -> dict[str, tuple[int, ...]]:
    """Every tensor of an `original/` checkpoint and its shape."""
    h, i, e, g = cfg.hidden_size, cfg.intermediate_size, cfg.num_experts, cfg.hidden_size // 32
    q = cfg.num_attention_heads * cfg.head_dim
    qkv = q + 2 * cfg.num_key_value_heads * cfg.head_dim
    shapes: dict[str, tuple[int, ...]] = {"embedding.weight": (cfg.vocab_size, h)}
    for n in range(cfg.num_hidden_layers):
        b = f"block.{n}"
        shapes |= {
            f"{b}.attn.norm.scale": (h,),
            f"{b}.attn.qkv.weight": (qkv, h),
            f"{b}.attn.qkv.bias": (qkv,),
            f"{b}.attn.sinks": (cfg.num_attention_heads,),
            f"{b}.attn.out.weight": (h, q),
            f"{b}.attn.out.bias": (h,),
            f"{b}.mlp.norm.scale": (h,),
            f"{b}.mlp.gate.weight": (e, h),
            f"{b}.mlp.gate.bias": (e,),
            f"{b}.mlp.mlp1_weight.blocks": (e, 2 * i, g, 16),
            f"{b}.mlp.mlp1_weight.scales": (e, 2 * i, g),
            f"{b}.mlp.mlp1_bias": (e, 2 * i),
            f"{b}.mlp.mlp2_weight.blocks": (e, h, i // 32, 16),
            f"{b}.mlp.mlp2_weight.scales": (e, h, i // 32),
            f"{b}.mlp.mlp2_bias": (e, h),
        }
    shapes |= {"norm.scale": (h,), "unembedding.weight": (cfg.vocab_size, h)}
    return shapes


def _check(cfg: Config, tensors: dict[str, torch.Tensor], folder: Path) -> None:
    expected = expected_shapes(cfg)
    missing = sorted(set(expected) - set(tensors))
    if missing:
        raise CheckpointError(f"{folder}: {len(missing)} tensors missing, e.g. {missing[:3]}")
    for name, shape in expected.items():
        if tuple(tensors[name].shape) != shape:
            raise CheckpointError(
                f"{folder}: {name} has shape {tuple(tensors[name].shape)}, config implies {shape}"
            )
