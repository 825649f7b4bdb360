/* Tiles: MXFP4 or bf16 weight rows against fp32 vectors (see ossa/model/kernel.py).

   With AVX-512, one tile is four weight rows against up to four vectors (tokens). Each group of
   32 weights is expanded into two fp32 registers once and meets every vector; each load of a
   vector serves the four rows. The products are exact fp32 products of the weights (an MXFP4
   weight or a bf16 one is exactly an fp32 number), summed in fp32. Decoding the experts is one
   vector (moe.c); prefill's matmuls are tiles of four tokens, at ~95% of the FMA peak here,
   where torch's GEMM on weights dequantized in advance ran at a third of it. With AVX2 only
   (16 registers, no 16-bit permutes), one row against up to eight vectors, below. */
#include <stdint.h>
#include <stdlib.h>

#include "matmul.h"
#include "simd.h"

#define AVX512 __attribute__((target("avx512f,avx512bw")))

enum kind { MXFP4, BF16 };

/* ---- MXFP4: a group's 16 bytes are broadcast to the four 128-bit lanes and each 16-bit word
   of lane L shifted right by 4L, so that its low nibble is one code; vpermw reads only the low
   5 bits of an index, so the codes index a 32-word table (16 bf16 values, twice) with no
   masking and no byte shuffles, and the table is the group's own (E2M1 values times the group's
   scale 2^(s-127), exact in bf16, one of 256 tables), so no multiply applies the scale. The 32
   bf16 weights are widened to fp32 as bf16 rows are (below): word 8L+m holds element 4m+L, so
   lane i of the first register holds element 8(i%4) + i/4 of the group, of the second
   8(i%4) + 4 + i/4. (vpermps on 32-bit lanes needs two shifts and two permutes a group; this
   needs one of each, and ran ~6% faster.) */
static uint16_t scaled_e2m1[256][32] __attribute__((aligned(64)));

__attribute__((constructor)) static void init_scaled_e2m1(void) {
    for (int s = 0; s < 256; s++)
        for (int c = 0; c < 16; c++) scaled_e2m1[s][c] = scaled_e2m1[s][c + 16] = scaled_e2m1_bf16(s, c);
}

int64_t avx512_slot(int64_t i) {
    int64_t e = i & 31;
    return (i & ~(int64_t)31) + 16 * ((e >> 2) & 1) + 4 * (e & 3) + (e >> 3);
}

/* ---- bf16: a 64-byte load holds a group's 32 weights; shifting each 32-bit lane left by 16
   gives the even elements as fp32, masking the low half gives the odd ones. */
static inline int64_t bf16_slot(int64_t i) {
    int64_t e = i & 31;
    return (i & ~(int64_t)31) + 16 * (e & 1) + (e >> 1);
}

/* Group g of row r as two registers, in its kind's slot order. MXFP4: w and s are a quad's
   blocks [groups, 4, 16] and scales [groups, 4] (matmul.h), r < 4; bf16: w is [rows, 32 *
   groups], s unused. */
AVX512 __attribute__((always_inline)) static inline void expand(const int kind, const void *w,
                                                                 const uint8_t *s, int64_t groups,
                                                                 int64_t r, int64_t g, __m512 *w0,
                                                                 __m512 *w1) {
    __m512i v;
    if (kind == MXFP4) {
        const __m512i shifts = _mm512_set_epi16(12, 12, 12, 12, 12, 12, 12, 12, 8, 8, 8, 8, 8, 8, 8,
                                                8, 4, 4, 4, 4, 4, 4, 4, 4, 0, 0, 0, 0, 0, 0, 0, 0);
        __m512i table = _mm512_load_si512(scaled_e2m1[s[4 * g + r]]);
        __m512i codes = _mm512_broadcast_i32x4(
            _mm_loadu_si128((const __m128i *)((const uint8_t *)w + 16 * (4 * g + r))));
        v = _mm512_permutexvar_epi16(_mm512_srlv_epi16(codes, shifts), table);
    } else {
        v = _mm512_loadu_si512((const uint16_t *)w + 32 * (r * groups + g));
    }
    *w0 = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
    *w1 = _mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32((int)0xFFFF0000)));
}

/* Rows r..r+3 (w, s from row r on; for MXFP4, a quad) against T <= 4 vectors x, `cols` floats
   apart, in the kind's slot order: out[t * ldo + i] = row r+i . vector t. `prefetch`: the four
   rows are contiguous; each group step prefetches the matching part of the rows two tiles
   ahead (the thread's next rows): with the hardware prefetcher alone, streaming ran ~40%
   slower, and prefetching ahead within each row ~15% slower. */
AVX512 __attribute__((always_inline)) static inline void tile(const int T, const int kind,
                                                               const void *w, const uint8_t *s,
                                                               int64_t groups, const float *x,
                                                               int64_t cols, float *out,
                                                               int64_t ldo, int prefetch) {
    const int64_t step = kind == MXFP4 ? 64 : 256; /* bytes of the four rows per group */
    __m512 acc[4][4];
    for (int r = 0; r < 4; r++)
        for (int t = 0; t < T; t++) acc[r][t] = _mm512_setzero_ps();
    for (int64_t g = 0; g < groups; g++) {
        if (prefetch)
            for (int64_t line = 0; line < step; line += 64)
                _mm_prefetch((const char *)w + 2 * step * groups + step * g + line, _MM_HINT_T0);
        __m512 x0[4], x1[4];
        for (int t = 0; t < T; t++) {
            x0[t] = _mm512_loadu_ps(x + t * cols + 32 * g);
            x1[t] = _mm512_loadu_ps(x + t * cols + 32 * g + 16);
        }
        for (int r = 0; r < 4; r++) {
            __m512 w0, w1;
            expand(kind, w, s, groups, r, g, &w0, &w1);
            for (int t = 0; t < T; t++)
                acc[r][t] = _mm512_fmadd_ps(w1, x1[t], _mm512_fmadd_ps(w0, x0[t], acc[r][t]));
        }
    }
    for (int r = 0; r < 4; r++)
        for (int t = 0; t < T; t++) out[t * ldo + r] = _mm512_reduce_add_ps(acc[r][t]);
}

AVX512 void mxfp4_dot4_avx512(const uint8_t *b, const uint8_t *s, const float *x, int64_t groups,
                              float *out) {
    tile(1, MXFP4, b, s, groups, x, 0, out, 1, 1);
}

/* out [n, rows] = x [n, 32 * groups] @ W.T, rows a multiple of 4: threads split the rows, and
   each block of four rows, once streamed in, stays in cache while it meets every token, four
   at a time. */
AVX512 __attribute__((always_inline)) static inline void matmul(const int kind, const void *w, const uint8_t *s, int64_t rows,
                          int64_t groups, const float *x, int64_t n, float *out, int threads) {
    int64_t cols = 32 * groups, row_bytes = kind == MXFP4 ? 16 * groups : 64 * groups;
    float *xs = in_slots(x, n, cols, kind == MXFP4 ? avx512_slot : bf16_slot);
    #pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t r = 0; r < rows; r += 4) {
        const void *wr = (const uint8_t *)w + r * row_bytes;
        const uint8_t *sr = kind == MXFP4 ? s + r * groups : s;
        for (int64_t t = 0; t < n; t += 4) {
            const float *xt = xs + t * cols;
            float *o = out + t * rows + r;
            switch (n - t) {
            case 1: tile(1, kind, wr, sr, groups, xt, cols, o, rows, t == 0); break;
            case 2: tile(2, kind, wr, sr, groups, xt, cols, o, rows, t == 0); break;
            case 3: tile(3, kind, wr, sr, groups, xt, cols, o, rows, t == 0); break;
            default: tile(4, kind, wr, sr, groups, xt, cols, o, rows, t == 0);
            }
        }
    }
    free(xs);
}

/* MXFP4 W: blocks [rows / 4, groups, 4, 16], scales [rows / 4, groups, 4] (matmul.h). */
AVX512 void mxfp4_matmul_avx512(const uint8_t *blocks, const uint8_t *scales, int64_t rows,
                                int64_t groups, const float *x, int64_t n, float *out,
                                int threads) {
    matmul(MXFP4, blocks, scales, rows, groups, x, n, out, threads);
}

/* bf16 W [rows, cols], cols a multiple of 32. */
AVX512 void bf16_matmul_avx512(const uint16_t *w, int64_t rows, int64_t cols, const float *x,
                               int64_t n, float *out, int threads) {
    matmul(BF16, w, NULL, rows, cols / 32, x, n, out, threads);
}


/* ---- AVX2: a group of 32 weights at a time, as four registers of eight. MXFP4: mxfp4_group
   (matmul.h), the vectors in avx2_slot order; bf16: eight weights widened at a time, the
   vectors in element order. Here the FMAs bound the speed (each expanded register meets eight
   tokens): mxfp4_group's 10 vector ops a group, where expanding eight weights at a time with
   vpermps took 20, moved gpt-oss-20b's expert matmul from 136-151 to 149-154 GFLOPS. */
uint8_t scaled_e2m1_bytes[256][2][32] __attribute__((aligned(32)));

__attribute__((constructor)) static void init_scaled_e2m1_bytes(void) {
    for (int s = 0; s < 256; s++)
        for (int c = 0; c < 32; c++) {
            uint16_t w = scaled_e2m1_bf16(s, c & 15);
            scaled_e2m1_bytes[s][0][c] = (uint8_t)(w >> 8);
            scaled_e2m1_bytes[s][1][c] = (uint8_t)w;
        }
}

/* Group g of a row as four registers (MXFP4: w, s from its first group, quad_row). */
__attribute__((always_inline)) static inline void expand_group(const int kind, const void *w,
                                                               const uint8_t *s, int64_t g,
                                                               __m256 v[4]) {
    if (kind == MXFP4) {
        mxfp4_group((const uint8_t *)w + 64 * g, s[4 * g], v);
        return;
    }
    for (int k = 0; k < 4; k++)
        v[k] = _mm256_castsi256_ps(_mm256_slli_epi32(
            _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + 32 * g + 8 * k))), 16));
}

/* Groups g0..g1-1 of one row (w, s from the row on) against T <= 8 vectors x, `cols` floats
   apart: out[t * ldo] (+)= that part of row . vector t (+= unless g0 is 0). Each expanded
   register meets all T vectors; eight tokens give eight independent FMA chains, enough to hide
   the FMA latency. (Tried for MXFP4: two rows against four tokens, half the loads of x but
   twice the expansions per FMA, 110-125 GFLOPS against 150-159; twelve tokens spilled
   registers, 121-137.) */
__attribute__((always_inline)) static inline void tile8(const int T, const int kind,
                                                        const void *w, const uint8_t *s,
                                                        int64_t g0, int64_t g1, const float *x,
                                                        int64_t cols, float *out, int64_t ldo) {
    __m256 acc[8];
    for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
    for (int64_t g = g0; g < g1; g++) {
        __m256 v[4];
        expand_group(kind, w, s, g, v);
        for (int k = 0; k < 4; k++)
            for (int t = 0; t < T; t++)
                acc[t] = _mm256_fmadd_ps(v[k], _mm256_loadu_ps(x + t * cols + 32 * g + 8 * k), acc[t]);
    }
    for (int t = 0; t < T; t++) out[t * ldo] = (g0 ? out[t * ldo] : 0.0f) + hsum(acc[t]);
}

#define ROW_BLOCK 16   /* rows that stay in cache while every tile of tokens meets them */
#define GROUP_BLOCK 16 /* groups of 32 columns at a time: eight tokens' slice of x, 16 KiB,
                          stays in L1 while it meets the block's rows (whole rows of eight
                          tokens came from L2 and ran at half the speed) */

/* Rows r0.. (a block) of out [n, rows] = x [n, 32 * groups] @ W.T: each tile of eight tokens
   meets every row of the block, a slice of columns at a time, while both are in cache. */
__attribute__((always_inline)) static inline void row_block(const int kind, const void *w,
                                                            const uint8_t *s, int64_t rows,
                                                            int64_t groups, const float *x,
                                                            int64_t n, float *out, int64_t r0) {
    int64_t cols = 32 * groups;
    for (int64_t g0 = 0; g0 < groups; g0 += GROUP_BLOCK) {
        int64_t g1 = g0 + GROUP_BLOCK < groups ? g0 + GROUP_BLOCK : groups;
        for (int64_t t = 0; t < n; t += 8)
            for (int64_t r = r0; r < rows && r < r0 + ROW_BLOCK; r++) {
                const void *wr = kind == MXFP4
                                     ? (const void *)quad_row((const uint8_t *)w, r, groups, 16)
                                     : (const void *)((const uint16_t *)w + r * cols);
                const uint8_t *sr = kind == MXFP4 ? quad_row(s, r, groups, 1) : s;
                const float *xt = x + t * cols;
                float *o = out + t * rows + r;
                switch (n - t) {
                case 1: tile8(1, kind, wr, sr, g0, g1, xt, cols, o, rows); break;
                case 2: tile8(2, kind, wr, sr, g0, g1, xt, cols, o, rows); break;
                case 3: tile8(3, kind, wr, sr, g0, g1, xt, cols, o, rows); break;
                case 4: tile8(4, kind, wr, sr, g0, g1, xt, cols, o, rows); break;
                case 5: tile8(5, kind, wr, sr, g0, g1, xt, cols, o, rows); break;
                case 6: tile8(6, kind, wr, sr, g0, g1, xt, cols, o, rows); break;
                case 7: tile8(7, kind, wr, sr, g0, g1, xt, cols, o, rows); break;
                default: tile8(8, kind, wr, sr, g0, g1, xt, cols, o, rows);
                }
            }
        }
}

/* Threads split the blocks of rows; the kind is a constant in each block's code (a variable
   captured by the parallel region would be tested in the innermost loop). */
static void matmul_avx2(const int kind, const void *w, const uint8_t *s, int64_t rows,
                        int64_t groups, const float *x, int64_t n, float *out, int threads) {
    int64_t cols = 32 * groups;
    float *xs = kind == MXFP4 ? in_slots(x, n, cols, avx2_slot) : NULL; /* bf16: element order */
    #pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t r0 = 0; r0 < rows; r0 += ROW_BLOCK) {
        if (kind == MXFP4)
            row_block(MXFP4, w, s, rows, groups, xs, n, out, r0);
        else
            row_block(BF16, w, s, rows, groups, x, n, out, r0);
    }
    free(xs);
}

/* MXFP4 W in quads, as mxfp4_matmul_avx512's. */
void mxfp4_matmul(const uint8_t *blocks, const uint8_t *scales, int64_t rows,
                       int64_t groups, const float *x, int64_t n, float *out, int threads) {
    matmul_avx2(MXFP4, blocks, scales, rows, groups, x, n, out, threads);
}

/* bf16 W [rows, cols], cols a multiple of 32. */
void bf16_matmul(const uint16_t *w, int64_t rows, int64_t cols, const float *x, int64_t n,
                      float *out, int threads) {
    matmul_avx2(BF16, w, NULL, rows, cols / 32, x, n, out, threads);
}
