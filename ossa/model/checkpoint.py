"""Read gpt-oss checkpoints in either published layout, memory-mapped, under the original names.

Tensors are views of the mapped files, so nothing is read until a page is touched and MXFP4
experts stay packed. safetensors' own loaders copy each tensor into fresh memory, so the
(tiny, stable) file header is parsed here instead.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import math
import mmap
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ossa.errors import OssaError
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


MAX_HEADER = 100_000_000  # safetensors' own limit on the JSON header (bytes)
LFS_POINTER = b"version https://git-lfs.github.com/spec/"


class CheckpointError(OssaError, ValueError):
    """The directory is not a readable gpt-oss checkpoint.

    A ValueError too, so that callers which treat bad input as ValueError keep doing so.
    """


def read_header(path: Path) -> tuple[dict, int]:
    """A safetensors file's JSON header and its data offset, checked against the file's size.

    Every way a header can be wrong is reported with the file's likely cause: a Git LFS
    pointer (a clone without `git lfs pull`), an HTML page (a download that got a login or
    error page), or truncated or corrupt bytes.
    """
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            header_len = int.from_bytes(head, "little") if len(head) == 8 else -1
            fits = 0 <= header_len <= min(size - 8, MAX_HEADER)
            raw = f.read(header_len) if fits else head + f.read(512)
    except OSError as e:
        raise CheckpointError(f"cannot read {path}: {e.strerror or e}") from None
    if not fits:
        raise CheckpointError(_not_safetensors(path, raw, size))
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        header = None
    if not isinstance(header, dict):
        raise CheckpointError(_not_safetensors(path, raw, size))
    return header, 8 + header_len


def _not_safetensors(path: Path, start: bytes, size: int) -> str:
    """One line naming what `path` most likely is instead of a safetensors file."""
    text = start.lstrip().lower()
    if text.startswith(LFS_POINTER):
        return (
            f"{path} is a Git LFS pointer ({size} bytes), not the weights: "
            "run `git lfs pull` in that repository, or fetch it with `ossa model pull`"
        )
    if text.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head", b"<body")):
        return (
            f"{path} is an HTML page ({size} bytes), not the weights: the download "
            "got an error or login page; download it again"
        )
    return (
        f"{path} is not a safetensors file ({size} bytes, no valid header): "
        "truncated or corrupt; download it again"
    )


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """Map a `.safetensors` file and return read-only-in-spirit tensor views of it."""
    header, base = read_header(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        # ACCESS_COPY: private pages, so torch gets a writable buffer without touching the file
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY) if size else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = (
            torch.frombuffer(mapped, dtype=torch.uint8)
            if mapped
            else torch.empty(0, dtype=torch.uint8)
        )
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype, shape, (start, end) = _entry(path, name, info)
        if base + end > size:
            raise CheckpointError(
                f"{path} is truncated (tensor {name} runs past the end); download it again"
            )
        tensors[name] = data[base + start : base + end].view(dtype).view(shape)
    return tensors


def _entry(path: Path, name: str, info: object) -> tuple[torch.dtype, list[int], list[int]]:
    """A header entry's dtype, shape and offsets, checked for consistency."""
    malformed = CheckpointError(f"{path}: tensor {name} has a malformed header entry")
    if not isinstance(info, dict):
        raise malformed
    try:
        label, shape = info["dtype"], [int(n) for n in info["shape"]]
        start, end = (int(n) for n in info["data_offsets"])
    except (TypeError, KeyError, ValueError):
        raise malformed from None
    dtype = DTYPES.get(label)
    if dtype is None:
        raise CheckpointError(f"{path}: tensor {name} has unsupported dtype {label}")
    if min(shape, default=0) < 0 or end - start != math.prod(shape) * dtype.itemsize:
        raise CheckpointError(f"{path}: tensor {name}'s offsets do not match its shape")
    return dtype, shape, [start, end]


class _Arena:
    """Tensors packed one after another into large anonymous mappings advised for transparent
    huge pages. One mapping per tensor rounded each up to a whole 2 MiB page: ~0.12 GiB for
    gpt-oss-20b's 72 projections, the smallest (a router, 184 KB) holding a whole page. Here
    only the last page of each mapping is partly used, and the pages past it never touched
    are never resident."""

    CHUNK = 256 << 20

    def __init__(self) -> None:
        self._free = torch.empty(0, dtype=torch.uint8)

    def take(self, nbytes: int) -> torch.Tensor:
        """`nbytes` uint8, 64-byte aligned, alive as long as the tensor (or a view) is."""
        size = -(-nbytes // 64) * 64
        if size > self._free.numel():
            self._free = _huge_pages(max(self.CHUNK, -(-size // _HUGE_PAGE) * _HUGE_PAGE))
        out, self._free = self._free[:nbytes], self._free[size:]
        return out


def _huge_pages(nbytes: int) -> torch.Tensor:
    """A fresh anonymous mapping of `nbytes` starting on a 2 MiB boundary, advised for huge
    pages where the OS has them (plain pages otherwise)."""
    buffer = mmap.mmap(-1, nbytes + _HUGE_PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    with contextlib.suppress(AttributeError, OSError):
        buffer.madvise(mmap.MADV_HUGEPAGE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = torch.frombuffer(buffer, dtype=torch.uint8)  # keeps the buffer alive
    start = -raw.data_ptr() % _HUGE_PAGE
    return raw[start : start + nbytes]


@dataclass
class Checkpoint:
    """A checkpoint's config and its tensors under the `original/` names."""

    config: Config
    tensors: dict[str, torch.Tensor]
    layout: str
    path: Path
    mapped: frozenset[str] = frozenset()  # names whose tensors are views of the files' mappings
    _arena: _Arena = field(default_factory=_Arena, init=False, repr=False, compare=False)

    def in_huge_pages(
        self, name: str, arrange: Callable[[torch.Tensor], torch.Tensor] | None = None
    ) -> torch.Tensor:
        """Tensor `name` copied into anonymous memory advised for transparent huge pages, its
        mapped pages released (so it is not resident twice): a decode step reads such weights
        whole, and reading them ran ~7% faster from huge pages than from the page cache's
        4 KiB pages here (34.5 against 32 GB/s). `arrange` gives the view to copy (a layout a
        kernel reads better); without it, a tensor that is not mapped is returned as is."""
        t = self.tensors[name]
        if name not in self.mapped and arrange is None:
            return t
        view = t if arrange is None else arrange(t)
        copy = self._arena.take(t.numel() * t.element_size()).view(t.dtype).view(view.shape)
        copy.copy_(view)
        if name in self.mapped:
            _release(t)
        return copy

    def nbytes(self) -> dict[str, int]:
        """Bytes by dtype name, as stored."""
        out: dict[str, int] = {}
        for t in self.tensors.values():
            key = str(t.dtype).removeprefix("torch.")
            out[key] = out.get(key, 0) + t.numel() * t.element_size()
        return out


def find(path: str | Path, *, weights: bool = True) -> tuple[str, Path]:
    """The layout ("original" or "transformers") and the directory holding its files.

    With `weights=False` a config.json alone is enough (to describe a checkpoint before its
    weights are downloaded).
    """
    root = Path(path)
    if not root.is_dir():
        raise CheckpointError(f"{root} is not a directory")
    for candidate in (root / "original", root):
        if (candidate / "config.json").is_file() and (
            not weights or any(candidate.glob("*.safetensors"))
        ):
            return read_config(candidate)[0], candidate
    wanted = "config.json with *.safetensors" if weights else "config.json"
    raise CheckpointError(f"{root} holds no {wanted} (nor an original/ folder)")


def read_config(folder: Path) -> tuple[str, Config]:
    """The layout and hyper-parameters given by `folder/config.json`."""
    path = folder / "config.json"
    data = _read_json(path)
    layout = "transformers" if "num_local_experts" in data else "original"
    try:
        if layout == "original":
            return layout, Config.from_original(data)
        return layout, Config.from_transformers(data)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path} is not a gpt-oss config: {e}") from None


def load(path: str | Path) -> Checkpoint:
    """Open a checkpoint directory in either layout (an `original/` subfolder is found)."""
    _, folder = find(path)
    layout, config = read_config(folder)
    raw: dict[str, torch.Tensor] = {}
    for file in sorted(folder.glob("*.safetensors")):
        raw.update(read_safetensors(file))
    tensors = raw if layout == "original" else dict(_from_transformers(raw))
    _check(config, tensors, folder)
    views = {id(t) for t in raw.values()}
    mapped = frozenset(name for name, t in tensors.items() if id(t) in views)
    return Checkpoint(config, tensors, layout, folder, mapped)


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"cannot read {path}: {e}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} does not hold a JSON object")
    return data


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
        for part in qkv.values():
            _release(part)


_PAGE = mmap.PAGESIZE
_HUGE_PAGE = 2 << 20
_libc = ctypes.CDLL(None, use_errno=True)


def _release(t: torch.Tensor) -> None:
    """Drop the whole pages of a mapped tensor from this process once it has been copied (q, k
    and v into the fused qkv): otherwise the file pages it was read from stay mapped and count
    a second time in the resident set, ~0.7 GB for gpt-oss-20b. Only for `read_safetensors`'
    private file mappings, which nothing writes: the pages stay in the page cache, and a later
    read would fault them in from the file again."""
    start = t.data_ptr()
    end = start + t.numel() * t.element_size()
    first, last = -(-start // _PAGE) * _PAGE, end // _PAGE * _PAGE
    if last > first and hasattr(mmap, "MADV_DONTNEED"):
        _libc.madvise(ctypes.c_void_p(first), ctypes.c_size_t(last - first), mmap.MADV_DONTNEED)


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
