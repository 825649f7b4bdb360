"""A fused MXFP4 matrix-vector product for x86-64 CPUs with AVX2, used when decoding.

Decoding one token needs each routed expert once: dequantizing it in torch writes and reads
~8 bytes per weight through memory, so 20b decodes far below bandwidth. This kernel reads the
packed bytes once (a table lookup with `pshufb`, then FMAs in fp32). It is compiled on first use
with the system C compiler into the user cache; without a compiler or AVX2 the engine falls
back to dequantizing in torch. Set `OSSA_NO_KERNEL=1` to force the fallback.
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

/* out[r] = sum_g 2^(scales[r,g]-127) * sum_k fp4(code k of block g of row r) * x[32g+k] */
void mxfp4_gemv(const uint8_t *blocks, const uint8_t *scales, const float *x, float *out,
                int64_t rows, int64_t groups, int threads) {
    /* twice the E2M1 values, as int8; bit 3 of a code is the sign */
    const __m128i lut = _mm_setr_epi8(0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12);
    const __m128i low4 = _mm_set1_epi8(0x0F);
    float half_pow2[256];
    for (int s = 0; s < 256; s++) half_pow2[s] = ldexpf(0.5f, s - 127);
    #pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *b = blocks + r * groups * 16;
        const uint8_t *s = scales + r * groups;
        __m256 acc = _mm256_setzero_ps();
        for (int64_t g = 0; g < groups; g++) {
            __m128i bytes = _mm_loadu_si128((const __m128i *)(b + 16 * g));
            __m128i lo = _mm_shuffle_epi8(lut, _mm_and_si128(bytes, low4));
            __m128i hi = _mm_shuffle_epi8(lut, _mm_and_si128(_mm_srli_epi16(bytes, 4), low4));
            __m128i e0 = _mm_unpacklo_epi8(lo, hi); /* low nibble = even element */
            __m128i e1 = _mm_unpackhi_epi8(lo, hi);
            const float *xg = x + 32 * g;
            __m256 p = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(e0)),
                                     _mm256_loadu_ps(xg));
            p = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(e0, 8))),
                                _mm256_loadu_ps(xg + 8), p);
            p = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(e1)),
                                _mm256_loadu_ps(xg + 16), p);
            p = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(e1, 8))),
                                _mm256_loadu_ps(xg + 24), p);
            acc = _mm256_fmadd_ps(p, _mm256_set1_ps(half_pow2[s[g]]), acc);
        }
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
        h = _mm_hadd_ps(h, h);
        h = _mm_hadd_ps(h, h);
        out[r] = _mm_cvtss_f32(h);
    }
}
"""

_lib: ctypes.CDLL | None = None
_tried = False


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
    target = Path(platformdirs.user_cache_dir("ossa")) / f"mxfp4-{digest}.so"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            src, out = Path(tmp) / "mxfp4.c", Path(tmp) / "mxfp4.so"
            src.write_text(SOURCE)
            flags = ["-O3", "-mavx2", "-mfma", "-fopenmp", "-shared", "-fPIC"]
            done = subprocess.run([compiler, *flags, str(src), "-o", str(out)], capture_output=True)
            if done.returncode:
                return None
            os.replace(out, target)  # atomic: concurrent builders never see half a file
    lib = ctypes.CDLL(str(target))
    lib.mxfp4_gemv.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_int64, ctypes.c_int64, ctypes.c_int]
    lib.mxfp4_gemv.restype = None
    return lib


def _library() -> ctypes.CDLL | None:
    global _lib, _tried
    if not _tried:
        _tried = True
        _lib = _build()
    return _lib


def available() -> bool:
    """Whether the kernel runs here (built on first call); `OSSA_NO_KERNEL=1` says no."""
    return not os.environ.get("OSSA_NO_KERNEL") and _library() is not None


def gemv(x: torch.Tensor, blocks: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """fp32 `W @ x` for MXFP4 `W` (blocks `[R, G, 16]`, scales `[R, G]`) and fp32 x `[G*32]`."""
    lib = _library()
    if lib is None:
        raise RuntimeError("the MXFP4 kernel is not available on this machine")
    rows, groups, width = blocks.shape
    if blocks.dtype != torch.uint8 or scales.dtype != torch.uint8 or width != 16:
        raise ValueError("blocks must be uint8 [rows, groups, 16] and scales uint8")
    if tuple(scales.shape) != (rows, groups) or blocks.device.type != "cpu":
        raise ValueError("scales must be [rows, groups] and everything on the CPU")
    if x.dtype != torch.float32 or x.numel() != groups * 32 or x.device.type != "cpu":
        raise ValueError("x must be a CPU fp32 vector matching the weight's input size")
    x, blocks, scales = x.contiguous(), blocks.contiguous(), scales.contiguous()
    out = torch.empty(rows, dtype=torch.float32)
    lib.mxfp4_gemv(
        blocks.data_ptr(),
        scales.data_ptr(),
        x.data_ptr(),
        out.data_ptr(),
        rows,
        groups,
        torch.get_num_threads(),
    )
    return out
