"""C kernels for x86-64 CPUs with AVX2 (AVX-512 where the CPU has it): decode and prefill.

Decoding reads every weight once, so it should run at memory bandwidth. In torch it does not:
dequantizing an expert writes and reads ~8 bytes per weight, a bf16 `F.linear` GEMV plus its
casts reaches ~60% of bandwidth, and the small ops of a step (norms, rotary, cache writes,
routing) each cost more in dispatch than in arithmetic. Here:

- `MoE`: a token's routed experts (mlp1, SwiGLU, mlp2, biases, weighting) from the packed bytes;
- `Bf16Matrix`: a bf16 weight's GEMV, and its matmul for prefill;
- `attend_token`: one token's attention over a layer's cache, `attend_chunk` a prefill chunk's;
- `DecodeLayer`: a whole block's one-token step, chaining the above in C;
- `mxfp4_matmul`: prefill's expert matmuls (the weights are expanded in registers only), and
  `swiglu` between them.

The MXFP4 kernels read blocks and scales with rows in quads (`quad_blocks`, `quad_scales`;
the engine arranges the experts so once, at load).

The classes check their weights once, at load, so a decoding step pays only for its own
arguments. Everything is exact fp32 arithmetic on the stored weights. All split their work over
torch's thread count with OpenMP (torch's own runtime: the library is loaded into a process
that already has it).

Where the CPU reports AVX-512 (F, BW) the AVX-512 variants (compiled into the same library with
a function target attribute) are chosen at each call; `OSSA_KERNEL_AVX2=1` forces the AVX2
code, so both paths can be tested on one machine.

The C lives in `csrc/` (package data). It is compiled on first use with `$CC` (else cc or gcc)
into the user cache, under a name hashed from the sources, compiler and flags, so an edited
source is rebuilt and never mistaken for an old build. The compiler's output goes to the
`ossa.model.kernel` logger; when the kernels cannot be used (no compiler, a compile error, no
AVX2, `OSSA_NO_KERNEL=1`) the engine decodes with torch and a warning says so once, with why.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import platformdirs
import torch

from ossa.model.cache import LayerCache

SOURCE_DIR = resources.files("ossa.model").joinpath("csrc")  # package data next to this module
FLAGS = ["-O3", "-mavx2", "-mfma", "-fopenmp", "-shared", "-fPIC"]
NO_KERNEL_ENV = "OSSA_NO_KERNEL"
AVX2_ENV = "OSSA_KERNEL_AVX2"  # forces the AVX2 variants on a CPU that has AVX-512
MAX_HEAD_DIM = 256  # csrc/attention.c keeps a head's vectors on the stack
log = logging.getLogger(__name__)

_P, _I64 = ctypes.c_void_p, ctypes.c_int64
_SLOT = [_P, _P, _P, ctypes.c_int, *[_I64] * 4]  # the cache arguments `_token_slot` gives
_SIGNATURES = {
    "moe": [_P, _P, _I64, _I64, _I64, _P, _P, _P, _P, _P, _P, _P, _P, ctypes.c_float, ctypes.c_int],
    "bf16_gemv": [_P, _P, _P, _P, _I64, _I64, ctypes.c_int],
    "mxfp4_matmul": [_P, _P, _I64, _I64, _P, _I64, _P, ctypes.c_int],
    "bf16_matmul": [_P, _I64, _I64, _P, _I64, _P, ctypes.c_int],
    "swiglu_rows": [_P, _P, _I64, _I64, ctypes.c_float, _P, ctypes.c_int],
    "attend_chunk": [_P, _P, _P, _P, *[_I64] * 11, ctypes.c_float, _P, ctypes.c_int, ctypes.c_int],
    "decode_layer": [_P, _P, _P, _P, *_SLOT, ctypes.c_int, ctypes.c_int],
    "attend_token": [_P, _P, _P, _P, *_SLOT, *[_I64] * 3, ctypes.c_float, _P, ctypes.c_int],
}
# the AVX-512 variants take their AVX2 twins' arguments
_SIGNATURES |= {
    f"{name}_avx512": _SIGNATURES[name]
    for name in ("moe", "bf16_gemv", "mxfp4_matmul", "bf16_matmul")
}


@dataclass
class _Build:
    """The outcome of the one build attempt per process: a library, or why there is none."""

    lib: ctypes.CDLL | None = None
    reason: str | None = None


_build: _Build | None = None
_warned = False


def sources() -> dict[str, str]:
    """The kernels' C files by name (headers included), read from the package."""
    return {f.name: f.read_text() for f in SOURCE_DIR.iterdir() if f.name.endswith((".c", ".h"))}


def library_path(files: dict[str, str], compiler: list[str]) -> Path:
    """Where the library built from `files` by `compiler` is cached: the name hashes both
    (and the flags), so an edited source or another compiler never reuses an old build."""
    key = hashlib.sha256(repr((sorted(files.items()), compiler, FLAGS)).encode()).hexdigest()
    return Path(platformdirs.user_cache_dir("ossa")) / f"decode-{key[:16]}.so"


def _compiler() -> list[str] | None:
    """`$CC` (which may carry arguments), else cc or gcc on PATH."""
    words = shlex.split(os.environ.get("CC", "")) or ["cc"]
    found = shutil.which(words[0]) or (None if "CC" in os.environ else shutil.which("gcc"))
    return [found, *words[1:]] if found else None


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    line = next((x for x in text.splitlines() if x.startswith("flags")), "")
    return set(line.split(":", 1)[-1].split())


def _cpu_has_avx2() -> bool:
    return {"avx2", "fma"} <= _cpu_flags()


_CPU_AVX512 = {"avx512f", "avx512bw"} <= _cpu_flags()


def avx512() -> bool:
    """Whether the AVX-512 variants run: the CPU reports AVX-512 F and BW, and
    `OSSA_KERNEL_AVX2=1` (read at every call, to test both paths on one machine) is not set."""
    return _CPU_AVX512 and os.environ.get(AVX2_ENV, "") in ("", "0")


def _compile() -> _Build:
    if not _cpu_has_avx2():
        return _Build(reason="this CPU lacks AVX2/FMA (or is not x86-64)")
    compiler = _compiler()
    if compiler is None:
        wanted = os.environ.get("CC") or "cc or gcc"
        return _Build(reason=f"no C compiler was found ({wanted}; install gcc)")
    files = sources()
    target = library_path(files, compiler)
    if not target.is_file():
        log.info("compiling the decode kernels into %s", target)
        with tempfile.TemporaryDirectory() as tmp:
            for name, text in files.items():
                Path(tmp, name).write_text(text)
            out = Path(tmp) / "decode.so"
            units = [str(Path(tmp, n)) for n in sorted(files) if n.endswith(".c")]
            cmd = [*compiler, *FLAGS, *units, "-o", str(out)]
            try:
                done = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
            except OSError as e:
                return _Build(reason=f"the C compiler {compiler[0]} could not run: {e}")
            output = (done.stdout + done.stderr).strip()
            if output:
                log.debug("%s said:\n%s", shlex.join(cmd), output)
            if done.returncode:
                lines = output.replace(f"{tmp}/", "").splitlines()
                errors = [line.strip() for line in lines if "error" in line.lower()] or lines
                first = "; ".join(errors[:2]) or f"exit status {done.returncode}"
                return _Build(reason=f"compiling them failed ({compiler[0]}: {first})")
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(out, target)  # atomic: concurrent builders never see half a file
    try:
        lib = ctypes.CDLL(str(target))
    except OSError as e:
        return _Build(reason=f"the compiled library {target} could not be loaded: {e}")
    for name, argtypes in _SIGNATURES.items():
        getattr(lib, name).argtypes = argtypes
        getattr(lib, name).restype = None
    return _Build(lib=lib)


def _built() -> _Build:
    global _build
    if _build is None:
        _build = _compile()
    return _build


def unavailable_reason() -> str | None:
    """Why the kernels cannot run here (None when they can); built on the first call.

    `OSSA_NO_KERNEL=1` turns them off, read at every call.
    """
    if os.environ.get(NO_KERNEL_ENV, "") not in ("", "0"):
        return f"{NO_KERNEL_ENV}={os.environ[NO_KERNEL_ENV]} turns them off"
    return _built().reason


def available() -> bool:
    """Whether the kernels run here (built on first call); `OSSA_NO_KERNEL=1` says no."""
    return unavailable_reason() is None


def enabled() -> bool:
    """`available()`, for a model choosing its CPU decode path at load: the first time the
    answer is no, a warning says that decoding falls back to torch and why (once a process)."""
    global _warned
    reason = unavailable_reason()
    if reason is not None and not _warned:
        _warned = True
        log.warning("decoding with torch, several times slower: the C kernels are off, %s", reason)
    return reason is None


def _library() -> ctypes.CDLL:
    lib = _built().lib
    if lib is None:
        raise RuntimeError(f"the decode kernels are not available: {_built().reason}")
    return lib


def _check_cpu(*tensors: torch.Tensor) -> None:
    if any(t.device.type != "cpu" or not t.is_contiguous() for t in tensors):
        raise ValueError("the kernels need contiguous CPU tensors")


def _in_quads(t: torch.Tensor, row_dim: int) -> torch.Tensor:
    rows = t.shape[row_dim]
    if rows % 4:
        raise ValueError(f"the rows ({rows}) must be a multiple of 4")
    shape = t.shape[:row_dim] + (rows // 4, 4) + t.shape[row_dim + 1 :]
    return t.reshape(shape).transpose(row_dim + 1, row_dim + 2)


def quad_blocks(blocks: torch.Tensor) -> torch.Tensor:
    """MXFP4 blocks `[..., R, G, 16]` as the kernels read them, `[..., R/4, G, 4, 16]`: every
    four rows group by group, so that a tile of four rows streams one contiguous run (a view;
    copy it to make it contiguous)."""
    return _in_quads(blocks, blocks.dim() - 3)


def quad_scales(scales: torch.Tensor) -> torch.Tensor:
    """MXFP4 scales `[..., R, G]` as the kernels read them, `[..., R/4, G, 4]` (see
    `quad_blocks`)."""
    return _in_quads(scales, scales.dim() - 2)


class MoE:
    """A layer's MXFP4 experts for the C kernel, checked once so that each token's call costs
    only its own few checks: mlp1 / mlp2 are (blocks `[E, R/4, G, 4, 16]`, scales `[E, R/4, G,
    4]`, in quads as `quad_blocks` / `quad_scales` give them, and fp32 bias `[E, R]`) for all E
    experts, mlp1's rows interleaving gate and linear."""

    def __init__(
        self,
        mlp1: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
        mlp2: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
        limit: float,
    ) -> None:
        (b1, s1, bias1), (b2, s2, bias2) = mlp1, mlp2
        e, hidden, inter = bias2.shape[0], bias2.shape[-1], bias1.shape[-1] // 2
        if hidden % 32 or inter % 32:
            raise ValueError("hidden and intermediate sizes must be multiples of 32")
        shapes = [
            (b1, (e, 2 * inter // 4, hidden // 32, 4, 16)),
            (s1, (e, 2 * inter // 4, hidden // 32, 4)),
            (bias1, (e, 2 * inter)),
            (b2, (e, hidden // 4, inter // 32, 4, 16)),
            (s2, (e, hidden // 4, inter // 32, 4)),
            (bias2, (e, hidden)),
        ]
        if any(tuple(t.shape) != shape for t, shape in shapes):
            raise ValueError(
                "mlp1 must be [E, 2I/4, H/32, 4, 16], [E, 2I/4, H/32, 4], [E, 2I]; mlp2 likewise"
            )
        if not all(t.dtype == torch.uint8 for t in (b1, s1, b2, s2)):
            raise ValueError("blocks and scales must be uint8")
        if bias1.dtype != torch.float32 or bias2.dtype != torch.float32:
            raise ValueError("biases must be fp32")
        _check_cpu(b1, s1, bias1, b2, s2, bias2)
        self.experts, self.hidden, self.inter, self.limit = e, hidden, inter, limit
        self._weights = (b1, s1, bias1, b2, s2, bias2)  # kept alive: C reads their memory
        self._pointers = [t.data_ptr() for t in self._weights]

    def __call__(
        self, x: torch.Tensor, experts: torch.Tensor, weights: torch.Tensor
    ) -> torch.Tensor:
        """The weighted sum of a token's routed experts, fp32 `[H]`, for x fp32 `[H]`,
        experts int64 `[k]` indices and their weights fp32 `[k]`."""
        if x.dtype != torch.float32 or x.shape != (self.hidden,):
            raise ValueError(f"x must be fp32 [{self.hidden}]")
        if experts.dtype != torch.int64 or weights.dtype != torch.float32:
            raise ValueError("experts must be int64 and weights fp32")
        if experts.dim() != 1 or weights.shape != experts.shape:
            raise ValueError("experts and weights must be matching vectors")
        experts, weights = experts.contiguous(), weights.contiguous()
        _check_cpu(x, experts, weights)
        if not all(0 <= e < self.experts for e in experts.tolist()):
            raise ValueError("expert index out of range")
        out = torch.empty(self.hidden, dtype=torch.float32)
        lib = _library()
        (lib.moe_avx512 if avx512() else lib.moe)(
            x.data_ptr(),
            out.data_ptr(),
            self.hidden,
            self.inter,
            experts.numel(),
            experts.data_ptr(),
            weights.data_ptr(),
            *self._pointers,
            self.limit,
            torch.get_num_threads(),
        )
        return out


class Bf16Matrix:
    """A bf16 weight `[R, C]` (C a multiple of 16) and an optional fp32 bias `[R]` for the C
    kernels, checked once: `gemv` for one fp32 vector, `matmul` for several."""

    def __init__(self, w: torch.Tensor, bias: torch.Tensor | None = None) -> None:
        rows, cols = w.shape
        if w.dtype != torch.bfloat16 or cols % 16:
            raise ValueError("w must be bf16 with a multiple of 16 columns")
        if bias is not None and (bias.dtype != torch.float32 or bias.shape != (rows,)):
            raise ValueError(f"bias must be fp32 [{rows}]")
        _check_cpu(w, *([] if bias is None else [bias]))
        self.rows, self.cols, self.w, self.bias = rows, cols, w, bias

    def gemv(self, x: torch.Tensor) -> torch.Tensor:
        """fp32 `w @ x + bias` `[R]` for fp32 x `[C]`."""
        if x.dtype != torch.float32 or x.shape != (self.cols,):
            raise ValueError(f"x must be fp32 [{self.cols}]")
        _check_cpu(x)
        out = torch.empty(self.rows, dtype=torch.float32)
        lib = _library()
        (lib.bf16_gemv_avx512 if avx512() else lib.bf16_gemv)(
            self.w.data_ptr(),
            x.data_ptr(),
            None if self.bias is None else self.bias.data_ptr(),
            out.data_ptr(),
            self.rows,
            self.cols,
            torch.get_num_threads(),
        )
        return out

    @property
    def tiles(self) -> bool:
        """Whether `matmul` takes this weight: C a multiple of 32 and R of 4."""
        return self.cols % 32 == 0 and self.rows % 4 == 0

    def matmul(self, x: torch.Tensor) -> torch.Tensor:
        """fp32 `x @ w.T + bias` `[n, R]` for fp32 rows x `[n, C]`, the bf16 weights widened
        in registers (exact) and never stored as fp32; see `tiles`."""
        if not self.tiles:
            raise ValueError("the bf16 matmul needs C a multiple of 32 and R of 4")
        if x.dtype != torch.float32 or x.dim() != 2 or x.shape[1] != self.cols:
            raise ValueError(f"x must be fp32 [n, {self.cols}]")
        x = x.contiguous()
        _check_cpu(x)
        out = torch.empty(x.shape[0], self.rows)
        lib = _library()
        (lib.bf16_matmul_avx512 if avx512() else lib.bf16_matmul)(
            self.w.data_ptr(),
            self.rows,
            self.cols,
            x.data_ptr(),
            x.shape[0],
            out.data_ptr(),
            torch.get_num_threads(),
        )
        return out if self.bias is None else out.add_(self.bias)


def mxfp4_matmul(blocks: torch.Tensor, scales: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """`x @ W.T`, fp32 `[n, R]`, for fp32 rows x `[n, 32G]` and an MXFP4 matrix W in quads
    (blocks `[R/4, G, 4, 16]`, scales `[R/4, G, 4]`): prefill's expert matmuls, exact fp32
    products of the weights, which are expanded in registers and never stored. With AVX-512
    tiles of four rows and four tokens run at ~3x torch's GEMM on weights dequantized in
    advance; with AVX2, one row and eight tokens, ~2x at 16 tokens an expert, on a par from
    128 (measured here with the AVX-512 variant of torch's GEMM)."""
    if scales.dim() != 3 or scales.shape[2] != 4 or blocks.shape != (*scales.shape, 16):
        raise ValueError("blocks must be [R/4, G, 4, 16] and scales [R/4, G, 4]")
    quads, groups, _ = scales.shape
    rows = 4 * quads
    if blocks.dtype != torch.uint8 or scales.dtype != torch.uint8:
        raise ValueError("blocks and scales must be uint8")
    if x.dtype != torch.float32 or x.dim() != 2 or x.shape[1] != 32 * groups:
        raise ValueError(f"x must be fp32 [n, {32 * groups}]")
    x = x.contiguous()
    _check_cpu(blocks, scales, x)
    n = x.shape[0]
    out = torch.empty(n, rows)
    lib = _library()
    (lib.mxfp4_matmul_avx512 if avx512() else lib.mxfp4_matmul)(
        blocks.data_ptr(),
        scales.data_ptr(),
        rows,
        groups,
        x.data_ptr(),
        n,
        out.data_ptr(),
        torch.get_num_threads(),
    )
    return out


def swiglu(h: torch.Tensor, bias: torch.Tensor, limit: float) -> torch.Tensor:
    """gpt-oss's SwiGLU (`layers.swiglu`) of `h + bias`, fp32 `[n, I]`, for fp32 h `[n, 2I]`
    (rows interleaving gate and linear) and bias `[2I]`, I a multiple of 8, in one pass."""
    if h.dtype != torch.float32 or h.dim() != 2 or h.shape[1] % 16:
        raise ValueError("h must be fp32 [n, 2I], I a multiple of 8")
    n, width = h.shape
    if bias.dtype != torch.float32 or bias.shape != (width,):
        raise ValueError(f"bias must be fp32 [{width}]")
    h, bias = h.contiguous(), bias.contiguous()
    _check_cpu(h, bias)
    out = torch.empty(n, width // 2)
    _library().swiglu_rows(
        h.data_ptr(), bias.data_ptr(), n, width // 2, limit, out.data_ptr(), torch.get_num_threads()
    )
    return out


def attention_fits(heads: int, kv_heads: int, head_dim: int) -> bool:
    """Whether the attention kernels take this shape: head_dim a multiple of 8 and at most
    MAX_HEAD_DIM (their buffers live on the stack), and whole groups of query heads."""
    return head_dim % 8 == 0 and 0 < head_dim <= MAX_HEAD_DIM and heads % kv_heads == 0


def _check_heads(heads: int, kv_heads: int, head_dim: int) -> None:
    if not attention_fits(heads, kv_heads, head_dim):
        raise ValueError(
            f"head_dim must be a multiple of 8 up to {MAX_HEAD_DIM} and heads a multiple of"
            " kv_heads"
        )


def _token_slot(cache: LayerCache, position: int) -> tuple:
    """The C arguments that place one token at `position` in `cache` (claimed here): keys,
    values, positions, bf16 or not, capacity, ring slots (0: a growing buffer), the position
    and the first position it sees."""
    if cache.k.dtype not in (torch.float32, torch.bfloat16) or cache.v.dtype != cache.k.dtype:
        raise ValueError("the cache must hold fp32 or bf16 keys and values")
    cache.claim(position, 1)
    _check_cpu(cache.k, cache.v, cache.pos)
    first = 0 if cache.window is None else max(0, position - cache.window + 1)
    return (
        cache.k.data_ptr(),
        cache.v.data_ptr(),
        cache.pos.data_ptr(),
        cache.k.dtype == torch.bfloat16,
        cache.k.shape[1],
        cache.slots if cache.ring else 0,
        position,
        first,
    )


def attend_token(
    qkv: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    sink_q: torch.Tensor,
    cache: LayerCache,
    position: int,
    heads: int,
    scale: float,
) -> torch.Tensor:
    """One decoded token's attention, fp32 `[heads * D]`: its key and value (rotary applied to
    the key and the queries) written into `cache` at `position`, then each query head over the
    sink and every key the token sees.

    qkv: fp32 `[(heads + 2 * kv_heads) * D]`; cos, sin: fp32 `[D / 2]`; sink_q: fp32 `[heads]`
    (the sinks times sqrt(D), as the torch path's extra query dimension). The cache's
    keys/values may be fp32 or bf16.
    """
    kv_heads, _, d = cache.v.shape
    if qkv.dtype != torch.float32 or qkv.numel() != (heads + 2 * kv_heads) * d:
        raise ValueError(f"qkv must be fp32 [{(heads + 2 * kv_heads) * d}]")
    if any(
        t.dtype != torch.float32 or t.numel() != n
        for t, n in ((cos, d // 2), (sin, d // 2), (sink_q, heads))
    ):
        raise ValueError(f"cos and sin must be fp32 [{d // 2}], sink_q fp32 [{heads}]")
    _check_heads(heads, kv_heads, d)
    _check_cpu(qkv, cos, sin, sink_q)
    out = torch.empty(heads * d, dtype=torch.float32)
    _library().attend_token(
        qkv.data_ptr(),
        cos.data_ptr(),
        sin.data_ptr(),
        sink_q.data_ptr(),
        *_token_slot(cache, position),
        heads,
        kv_heads,
        d,
        scale,
        out.data_ptr(),
        torch.get_num_threads(),
    )
    return out


class _LayerWeights(ctypes.Structure):
    """csrc/layer.c's `struct layer`, field for field."""

    _fields_ = [
        *[(name, ctypes.c_void_p) for name in ("attn_norm", "mlp_norm", "qkv", "out", "gate")],
        *[(name, ctypes.c_void_p) for name in ("qkv_bias", "out_bias", "gate_bias", "sink_q")],
        *[(name, ctypes.c_void_p) for name in ("blocks1", "scales1", "blocks2", "scales2")],
        *[(name, ctypes.c_void_p) for name in ("bias1", "bias2")],
        *[(name, ctypes.c_int64) for name in ("hidden", "inter", "experts", "k", "hq", "hkv", "d")],
        ("limit", ctypes.c_float),
        ("eps", ctypes.c_float),
    ]


class DecodeLayer:
    """A whole transformer block's one-token step in one C call: the residual stream x += the
    attention of its norm (qkv, rotary, the cache write, attention, out), then x += the routed
    experts of its norm (gate, top-k, softmax, experts). The parts are checked as they are
    built (`Bf16Matrix`, `MoE`); here only that they fit together."""

    def __init__(
        self,
        *,
        attn_norm: torch.Tensor,
        mlp_norm: torch.Tensor,
        qkv: Bf16Matrix,
        out: Bf16Matrix,
        gate: Bf16Matrix,
        sink_q: torch.Tensor,
        experts: MoE,
        experts_per_token: int,
        heads: int,
        kv_heads: int,
        head_dim: int,
        eps: float = 1e-5,
    ) -> None:
        h, q = experts.hidden, heads * head_dim
        fits = [
            (attn_norm, (h,)),
            (mlp_norm, (h,)),
            (sink_q, (heads,)),
        ]
        if any(t.dtype != torch.float32 or tuple(t.shape) != shape for t, shape in fits):
            raise ValueError(f"norms must be fp32 [{h}] and sink_q fp32 [{heads}]")
        if (qkv.rows, qkv.cols) != (q + 2 * kv_heads * head_dim, h) or (out.rows, out.cols) != (
            h,
            q,
        ):
            raise ValueError(
                "qkv must be [(heads + 2 kv_heads) head_dim, H] and out [H, heads head_dim]"
            )
        if (gate.rows, gate.cols) != (experts.experts, h):
            raise ValueError(f"gate must be [{experts.experts}, {h}]")
        if not 0 < experts_per_token <= min(32, experts.experts):
            raise ValueError("experts_per_token must be in 1..min(32, experts)")
        _check_heads(heads, kv_heads, head_dim)
        if any(m.bias is None for m in (qkv, out, gate)):
            raise ValueError("qkv, out and gate need their biases")
        _check_cpu(attn_norm, mlp_norm, sink_q)
        self._keep = (attn_norm, mlp_norm, qkv, out, gate, sink_q, experts)  # C reads them
        b1, s1, bias1, b2, s2, bias2 = experts._pointers
        self._weights = _LayerWeights(
            attn_norm.data_ptr(), mlp_norm.data_ptr(), qkv.w.data_ptr(), out.w.data_ptr(),
            gate.w.data_ptr(), qkv.bias.data_ptr(), out.bias.data_ptr(), gate.bias.data_ptr(),
            sink_q.data_ptr(), b1, s1, b2, s2, bias1, bias2, h, experts.inter, experts.experts,
            experts_per_token, heads, kv_heads, head_dim, experts.limit, eps,
        )  # fmt: skip
        self.hidden = h

    def __call__(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        cache: LayerCache,
        position: int,
    ) -> None:
        """x: the residual stream, fp32 `[H]`, updated in place; cos, sin: fp32 `[D / 2]` for
        `position`, where the token's key and value are written into `cache` (fp32 or bf16)."""
        if x.dtype != torch.float32 or x.shape != (self.hidden,) or not x.is_contiguous():
            raise ValueError(f"x must be a contiguous fp32 [{self.hidden}]")
        _check_cpu(x, cos, sin)
        _library().decode_layer(
            ctypes.byref(self._weights),
            x.data_ptr(),
            cos.data_ptr(),
            sin.data_ptr(),
            *_token_slot(cache, position),
            avx512(),
            torch.get_num_threads(),
        )


def attend_chunk(
    q: torch.Tensor,
    sink_q: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    *,
    first: int,
    start: int,
    window: int | None,
    scale: float,
) -> torch.Tensor:
    """A prefill chunk's attention, fp32 `[T, heads, D]`, its scores never stored: rotated
    queries q `[T, heads, D]` at positions start..start+T-1; keys `[kv_heads, S, D + 1]` and
    values `[kv_heads, S, D]` in fp32 holding the sink at index 0 and positions first.. after it
    (`LayerCache.span`); sink_q `[heads]` (the sinks times sqrt(D)); each query sees the keys
    at or before it, within `window` of it when given. heads / kv_heads must divide 16."""
    n, heads, d = q.shape
    kv_heads, span, kd = keys.shape
    if q.dtype != torch.float32 or keys.dtype != torch.float32 or values.dtype != torch.float32:
        raise ValueError("q, keys and values must be fp32")
    if (
        kd != d + 1
        or values.shape != (kv_heads, span, d)
        or heads % kv_heads
        or 16 % (heads // kv_heads)
    ):
        raise ValueError(
            "keys must be [kv_heads, S, D + 1], values [kv_heads, S, D], and heads / kv_heads divide 16"
        )
    if d % 4 or sink_q.dtype != torch.float32 or sink_q.shape != (heads,):
        raise ValueError(f"D must be a multiple of 4 and sink_q fp32 [{heads}]")
    if first > start or start + n - 1 - first + 2 > span:
        raise ValueError("the span must hold every position the chunk sees")
    if keys.stride(2) != 1 or values.stride(2) != 1:
        raise ValueError("keys and values rows must be contiguous")
    q, sink_q = q.contiguous(), sink_q.contiguous()
    _check_cpu(q, sink_q)
    if keys.device.type != "cpu" or values.device.type != "cpu":
        raise ValueError("the kernels need CPU tensors")
    out = torch.empty(n, heads, d)
    _library().attend_chunk(
        q.data_ptr(),
        sink_q.data_ptr(),
        keys.data_ptr(),
        values.data_ptr(),
        keys.stride(0),
        keys.stride(1),
        values.stride(0),
        values.stride(1),
        first,
        start,
        n,
        window or 0,
        heads,
        kv_heads,
        d,
        scale,
        out.data_ptr(),
        avx512(),
        torch.get_num_threads(),
    )
    return out
