"""C kernels for decoding one token on x86-64 CPUs with AVX2: routed MXFP4 experts, bf16 GEMV.

Decoding reads every weight once, so it should run at memory bandwidth. In torch it does not:
dequantizing an expert writes and reads ~8 bytes per weight, and a bf16 `F.linear` GEMV plus
its casts reaches ~60% of bandwidth. `moe` runs a token's routed experts (mlp1, SwiGLU, mlp2,
biases, weighting) from the packed bytes in one call; `linear` is a bf16-weight, fp32-activation
GEMV. Both split rows over torch's thread count with OpenMP (torch's own runtime: the library
is loaded into a process that already has it). The library is compiled on first use with the
system C compiler into the user cache; without a compiler or AVX2 the engine falls back to
torch. Set `OSSA_NO_KERNEL=1` to force the fallback.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import platformdirs
import torch

SOURCE = r"""
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

/* ---- MXFP4: 32 weights per group, 16 bytes (low nibble = even element) and a scale byte s
   meaning 2^(s-127). The products are exact fp32 products of the weights and the input. ---- */

/* 2^(s-127), times 1/2 and 2^-24 (see group_dot). Scales under 2^-100 come out denormal or
   zero: weights that small cannot matter next to the rest. */
static float group_scale[256];

__attribute__((constructor)) static void init_scales(void) {
    for (int s = 0; s < 256; s++) group_scale[s] = ldexpf(1.0f, s - 127 - 1 - 24);
}

/* The 32 weights of a group as int8, twice their E2M1 value (code bit 3 is the sign):
   lane 0 holds the even elements, lane 1 the odd ones. */
static inline __m256i group_codes(const uint8_t *b) {
    const __m256i twice_e2m1 = _mm256_setr_epi8(0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6,
                                                -8, -12, 0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3,
                                                -4, -6, -8, -12);
    __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)b));
    v = _mm256_srlv_epi32(v, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4));
    return _mm256_shuffle_epi8(twice_e2m1, _mm256_and_si256(v, _mm256_set1_epi8(0x0F)));
}

/* Bytes 4k..4k+3 of each lane into the top byte of 32-bit lanes: as floats, value * 2^24. */
static inline __m256 spread(__m256i w, int k) {
    const __m256i to_top = _mm256_setr_epi8(-1, -1, -1, 0, -1, -1, -1, 1, -1, -1, -1, 2, -1, -1,
                                            -1, 3, -1, -1, -1, 0, -1, -1, -1, 1, -1, -1, -1, 2,
                                            -1, -1, -1, 3);
    __m256i idx = _mm256_add_epi32(to_top, _mm256_set1_epi32((4 * k) << 24));
    return _mm256_cvtepi32_ps(_mm256_shuffle_epi8(w, idx));
}

/* Where element i of an input vector goes so that register k of a group lines up with
   spread(w, k): lane 0 = elements 8k, 8k+2, 8k+4, 8k+6 of the group, lane 1 = 8k+1 .. 8k+7. */
static inline int64_t mxfp4_slot(int64_t i) {
    int64_t e = i & 31, m = e >> 1;
    return (i & ~(int64_t)31) + 8 * (m >> 2) + 4 * (e & 1) + (m & 3);
}

/* One group's products, summed, times 2^25; two chains keep the FMA latency hidden. */
static inline __m256 group_dot(const uint8_t *b, const float *x) {
    __m256i w = group_codes(b);
    __m256 p = _mm256_mul_ps(spread(w, 0), _mm256_loadu_ps(x));
    __m256 q = _mm256_mul_ps(spread(w, 1), _mm256_loadu_ps(x + 8));
    p = _mm256_fmadd_ps(spread(w, 2), _mm256_loadu_ps(x + 16), p);
    q = _mm256_fmadd_ps(spread(w, 3), _mm256_loadu_ps(x + 24), q);
    return _mm256_add_ps(p, q);
}

static inline float hsum(__m256 v) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_hadd_ps(h, h);
    h = _mm_hadd_ps(h, h);
    return _mm_cvtss_f32(h);
}

/* Two consecutive rows (blocks b, scales s) against x in mxfp4_slot order. Prefetching 4 KiB
   ahead (past the next row pair): with the hardware prefetcher alone, streaming from memory
   ran ~40% slower. */
static inline void mxfp4_dot2(const uint8_t *b, const uint8_t *s, const float *x, int64_t groups,
                              float *out) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    for (int64_t g = 0; g < groups; g++) {
        _mm_prefetch((const char *)(b + 16 * g + 4096), _MM_HINT_T0);
        _mm_prefetch((const char *)(b + 16 * (groups + g) + 4096), _MM_HINT_T0);
        __m256 p0 = group_dot(b + 16 * g, x + 32 * g);
        __m256 p1 = group_dot(b + 16 * (groups + g), x + 32 * g);
        acc0 = _mm256_fmadd_ps(p0, _mm256_set1_ps(group_scale[s[g]]), acc0);
        acc1 = _mm256_fmadd_ps(p1, _mm256_set1_ps(group_scale[s[groups + g]]), acc1);
    }
    out[0] = hsum(acc0);
    out[1] = hsum(acc1);
}

/* A token's routed experts: out = sum_n weight[n] * (W2_e @ swiglu(W1_e @ x + b1_e) + b2_e),
   e = experts[n], for blocks/scales/biases of all of a layer's experts laid out as in the
   checkpoint (mlp1 rows interleave gate and linear). One parallel region, two row loops. */
void moe(const float *x, float *out, int64_t hidden, int64_t inter, int64_t k,
         const int64_t *experts, const float *weights, const uint8_t *blocks1,
         const uint8_t *scales1, const float *bias1, const uint8_t *blocks2,
         const uint8_t *scales2, const float *bias2, float limit, int threads) {
    int64_t g1 = hidden / 32, g2 = inter / 32;
    float *xs = malloc(sizeof(float) * hidden);
    float *act = malloc(sizeof(float) * k * inter); /* per expert, in mxfp4_slot order */
    float *y = malloc(sizeof(float) * k * hidden);
    for (int64_t i = 0; i < hidden; i++) xs[mxfp4_slot(i)] = x[i];
    #pragma omp parallel num_threads(threads)
    {
        #pragma omp for schedule(static)
        for (int64_t j = 0; j < k * inter; j++) { /* mlp1 rows 2i, 2i+1 -> activation i */
            int64_t n = j / inter, i = j % inter, row = experts[n] * 2 * inter + 2 * i;
            float h[2];
            mxfp4_dot2(blocks1 + row * g1 * 16, scales1 + row * g1, xs, g1, h);
            float gate = fminf(h[0] + bias1[row], limit);
            float lin = fmaxf(fminf(h[1] + bias1[row + 1], limit), -limit);
            act[n * inter + mxfp4_slot(i)] = gate / (1.0f + expf(-1.702f * gate)) * (lin + 1.0f);
        }
        #pragma omp for schedule(static)
        for (int64_t j = 0; j < k * hidden; j += 2) { /* mlp2, two rows at a time */
            int64_t n = j / hidden, row = experts[n] * hidden + j % hidden;
            mxfp4_dot2(blocks2 + row * g2 * 16, scales2 + row * g2, act + n * inter, g2, y + j);
            y[j] += bias2[row];
            y[j + 1] += bias2[row + 1];
        }
    }
    for (int64_t r = 0; r < hidden; r++) {
        float sum = 0.0f;
        for (int64_t n = 0; n < k; n++) sum += weights[n] * y[n * hidden + r];
        out[r] = sum;
    }
    free(xs);
    free(act);
    free(y);
}

/* ---- bf16 GEMV: a 32-byte load holds 16 weights; shifting each 32-bit lane left by 16 gives
   the even elements as fp32, masking the low half gives the odd ones. ---- */

/* out = W @ x (+ bias) for bf16 W [rows, cols] (cols a multiple of 16), fp32 x and out. */
void bf16_gemv(const uint16_t *w, const float *x, const float *bias, float *out, int64_t rows,
               int64_t cols, int threads) {
    float *xs = malloc(sizeof(float) * cols); /* per 16: the 8 even elements, then the 8 odd */
    for (int64_t c = 0; c < cols; c += 16)
        for (int j = 0; j < 8; j++) {
            xs[c + j] = x[c + 2 * j];
            xs[c + 8 + j] = x[c + 2 * j + 1];
        }
    const __m256i high = _mm256_set1_epi32((int)0xFFFF0000);
    /* four rows at a time share the loads of x; the next four are prefetched */
    #pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t r = 0; r < rows; r += 4) {
        const uint16_t *p[4];
        __m256 even[4], odd[4];
        for (int i = 0; i < 4; i++) {
            p[i] = w + (r + i < rows ? r + i : rows - 1) * cols; /* a short last block repeats */
            even[i] = odd[i] = _mm256_setzero_ps();
        }
        for (int64_t c = 0; c < cols; c += 16) {
            __m256 xe = _mm256_loadu_ps(xs + c), xo = _mm256_loadu_ps(xs + c + 8);
            for (int i = 0; i < 4; i++) {
                _mm_prefetch((const char *)(p[i] + 4 * cols + c), _MM_HINT_T0);
                __m256i v = _mm256_loadu_si256((const __m256i *)(p[i] + c));
                even[i] = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(v, 16)), xe, even[i]);
                odd[i] = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(v, high)), xo, odd[i]);
            }
        }
        for (int i = 0; i < 4 && r + i < rows; i++)
            out[r + i] = hsum(_mm256_add_ps(even[i], odd[i])) + (bias ? bias[r + i] : 0.0f);
    }
    free(xs);
}
"""

_lib: ctypes.CDLL | None = None
_tried = False
_P, _I64 = ctypes.c_void_p, ctypes.c_int64
_SIGNATURES = {
    "moe": [_P, _P, _I64, _I64, _I64, _P, _P, _P, _P, _P, _P, _P, _P, ctypes.c_float, ctypes.c_int],
    "bf16_gemv": [_P, _P, _P, _P, _I64, _I64, ctypes.c_int],
}


def _cpu_has_avx2() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx2" in flags and " fma" in flags


def _build() -> ctypes.CDLL | None:
    compiler = shutil.which("cc") or shutil.which("gcc")
    if not compiler or not _cpu_has_avx2():
        return None
    digest = hashlib.sha256(SOURCE.encode()).hexdigest()[:16]
    target = Path(platformdirs.user_cache_dir("ossa")) / f"decode-{digest}.so"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            src, out = Path(tmp) / "decode.c", Path(tmp) / "decode.so"
            src.write_text(SOURCE)
            flags = ["-O3", "-mavx2", "-mfma", "-fopenmp", "-shared", "-fPIC"]
            done = subprocess.run([compiler, *flags, str(src), "-o", str(out)], capture_output=True)
            if done.returncode:
                return None
            os.replace(out, target)  # atomic: concurrent builders never see half a file
    lib = ctypes.CDLL(str(target))
    for name, argtypes in _SIGNATURES.items():
        getattr(lib, name).argtypes = argtypes
        getattr(lib, name).restype = None
    return lib


def _library() -> ctypes.CDLL:
    global _lib, _tried
    if not _tried:
        _tried = True
        _lib = _build()
    if _lib is None:
        raise RuntimeError("the decode kernels are not available on this machine")
    return _lib


def available() -> bool:
    """Whether the kernels run here (built on first call); `OSSA_NO_KERNEL=1` says no."""
    if os.environ.get("OSSA_NO_KERNEL"):
        return False
    try:
        _library()
    except RuntimeError:
        return False
    return True


def _check_cpu(*tensors: torch.Tensor) -> None:
    if any(t.device.type != "cpu" or not t.is_contiguous() for t in tensors):
        raise ValueError("the kernels need contiguous CPU tensors")


def moe(
    x: torch.Tensor,
    experts: torch.Tensor,
    weights: torch.Tensor,
    mlp1: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    mlp2: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    limit: float,
) -> torch.Tensor:
    """The weighted sum of a token's routed experts, `[H]` fp32.

    x: fp32 `[H]`; experts: int64 `[k]` indices; weights: fp32 `[k]`; mlp1 / mlp2: a layer's
    (blocks `[E, R, G, 16]`, scales `[E, R, G]`, fp32 bias `[E, R]`) for all E experts.
    """
    (b1, s1, bias1), (b2, s2, bias2) = mlp1, mlp2
    e, hidden, inter = b1.shape[0], b2.shape[1], b1.shape[1] // 2
    if hidden % 32 or inter % 32:
        raise ValueError("hidden and intermediate sizes must be multiples of 32")
    shapes = [
        (b1, (e, 2 * inter, hidden // 32, 16)),
        (s1, (e, 2 * inter, hidden // 32)),
        (bias1, (e, 2 * inter)),
        (b2, (e, hidden, inter // 32, 16)),
        (s2, (e, hidden, inter // 32)),
        (bias2, (e, hidden)),
    ]
    if any(tuple(t.shape) != shape for t, shape in shapes):
        raise ValueError("mlp1 must be [E, 2I, H/32, 16], [E, 2I, H/32], [E, 2I]; mlp2 likewise")
    if not all(t.dtype == torch.uint8 for t in (b1, s1, b2, s2)):
        raise ValueError("blocks and scales must be uint8")
    if bias1.dtype != torch.float32 or bias2.dtype != torch.float32:
        raise ValueError("biases must be fp32")
    if x.dtype != torch.float32 or x.shape != (hidden,):
        raise ValueError(f"x must be fp32 [{hidden}]")
    if experts.dtype != torch.int64 or weights.dtype != torch.float32:
        raise ValueError("experts must be int64 and weights fp32")
    if experts.dim() != 1 or weights.shape != experts.shape:
        raise ValueError("experts and weights must be matching vectors")
    experts, weights = experts.contiguous(), weights.contiguous()
    _check_cpu(x, experts, weights, b1, s1, bias1, b2, s2, bias2)
    if not 0 <= int(experts.min()) <= int(experts.max()) < e:
        raise ValueError("expert index out of range")
    out = torch.empty(hidden, dtype=torch.float32)
    _library().moe(
        x.data_ptr(),
        out.data_ptr(),
        hidden,
        inter,
        experts.numel(),
        experts.data_ptr(),
        weights.data_ptr(),
        b1.data_ptr(),
        s1.data_ptr(),
        bias1.data_ptr(),
        b2.data_ptr(),
        s2.data_ptr(),
        bias2.data_ptr(),
        limit,
        torch.get_num_threads(),
    )
    return out


def linear(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """fp32 `w @ x + bias` for a bf16 weight `[R, C]` (C a multiple of 16), fp32 x `[C]`."""
    rows, cols = w.shape
    if w.dtype != torch.bfloat16 or cols % 16:
        raise ValueError("w must be bf16 with a multiple of 16 columns")
    if x.dtype != torch.float32 or x.shape != (cols,):
        raise ValueError(f"x must be fp32 [{cols}]")
    if bias is not None and (bias.dtype != torch.float32 or bias.shape != (rows,)):
        raise ValueError(f"bias must be fp32 [{rows}]")
    _check_cpu(x, w, *([] if bias is None else [bias]))
    out = torch.empty(rows, dtype=torch.float32)
    _library().bf16_gemv(
        w.data_ptr(),
        x.data_ptr(),
        None if bias is None else bias.data_ptr(),
        out.data_ptr(),
        rows,
        cols,
        torch.get_num_threads(),
    )
    return out
