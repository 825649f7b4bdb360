/* bf16-weight, fp32-activation GEMV for decoding (see ossa/model/kernel.py). */
#include <stdint.h>
#include <stdlib.h>

#include "simd.h"

#define PREFETCH 4096 /* bytes: software prefetch distance along a row */

/* ---- bf16 GEMV: a 32-byte load holds 16 weights; shifting each 32-bit lane left by 16 gives
   the even elements as fp32, masking the low half gives the odd ones. ---- */

/* out = W @ x (+ bias) for bf16 W [rows, cols] (cols a multiple of 16), fp32 x and out. */
void bf16_gemv(const uint16_t *w, const float *x, const float *bias, float *out, int64_t rows,
               int64_t cols, int threads) {
    float *xs = floats(cols); /* per 16: the 8 even elements, then the 8 odd */
    for (int64_t c = 0; c < cols; c += 16)
        for (int j = 0; j < 8; j++) {
            xs[c + j] = x[c + 2 * j];
            xs[c + 8 + j] = x[c + 2 * j + 1];
        }
    const __m256i high = _mm256_set1_epi32((int)0xFFFF0000);
    /* one row at a time: each thread streams one contiguous range of rows, the pattern the
       hardware prefetcher follows best (four rows side by side ran at half the bandwidth) */
    #pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const uint16_t *p = w + r * cols;
        __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                         _mm256_setzero_ps()};
        int64_t c = 0;
        for (; c + 32 <= cols; c += 32) {
            _mm_prefetch((const char *)(p + c) + PREFETCH, _MM_HINT_T0);
            __m256i v0 = _mm256_loadu_si256((const __m256i *)(p + c));
            __m256i v1 = _mm256_loadu_si256((const __m256i *)(p + c + 16));
            acc[0] = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(v0, 16)), _mm256_loadu_ps(xs + c), acc[0]);
            acc[1] = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(v0, high)), _mm256_loadu_ps(xs + c + 8), acc[1]);
            acc[2] = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(v1, 16)), _mm256_loadu_ps(xs + c + 16), acc[2]);
            acc[3] = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(v1, high)), _mm256_loadu_ps(xs + c + 24), acc[3]);
        }
        if (c < cols) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(p + c));
            acc[0] = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(v, 16)), _mm256_loadu_ps(xs + c), acc[0]);
            acc[1] = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(v, high)), _mm256_loadu_ps(xs + c + 8), acc[1]);
        }
        __m256 sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        out[r] = hsum(sum) + (bias ? bias[r] : 0.0f);
    }
    free(xs);
}

/* The same with AVX-512 (chosen at run time where the CPU has it): a 64-byte load holds 32
   weights, one cache line; x is laid out per 32 as the 16 even elements, then the 16 odd. */
__attribute__((target("avx512f,avx512bw"))) void bf16_gemv_avx512(
    const uint16_t *w, const float *x, const float *bias, float *out, int64_t rows, int64_t cols,
    int threads) {
    if (cols % 32) {
        bf16_gemv(w, x, bias, out, rows, cols, threads);
        return;
    }
    float *xs = floats(cols);
    for (int64_t c = 0; c < cols; c += 32)
        for (int j = 0; j < 16; j++) {
            xs[c + j] = x[c + 2 * j];
            xs[c + 16 + j] = x[c + 2 * j + 1];
        }
    const __m512i high = _mm512_set1_epi32((int)0xFFFF0000);
    /* one row at a time, as above */
    #pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const uint16_t *p = w + r * cols;
        __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                         _mm512_setzero_ps()};
        int64_t c = 0;
        for (; c + 64 <= cols; c += 64) {
            _mm_prefetch((const char *)(p + c) + PREFETCH, _MM_HINT_T0);
            _mm_prefetch((const char *)(p + c) + PREFETCH + 64, _MM_HINT_T0);
            __m512i v0 = _mm512_loadu_si512((const void *)(p + c));
            __m512i v1 = _mm512_loadu_si512((const void *)(p + c + 32));
            acc[0] = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(v0, 16)), _mm512_loadu_ps(xs + c), acc[0]);
            acc[1] = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(v0, high)), _mm512_loadu_ps(xs + c + 16), acc[1]);
            acc[2] = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(v1, 16)), _mm512_loadu_ps(xs + c + 32), acc[2]);
            acc[3] = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(v1, high)), _mm512_loadu_ps(xs + c + 48), acc[3]);
        }
        for (; c < cols; c += 32) {
            __m512i v = _mm512_loadu_si512((const void *)(p + c));
            acc[0] = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(v, 16)), _mm512_loadu_ps(xs + c), acc[0]);
            acc[1] = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(v, high)), _mm512_loadu_ps(xs + c + 16), acc[1]);
        }
        __m512 sum = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
        out[r] = _mm512_reduce_add_ps(sum) + (bias ? bias[r] : 0.0f);
    }
    free(xs);
}
