/* A token's routed MXFP4 experts in one call (see ossa/model/kernel.py). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "simd.h"

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

/* The same for AVX-512 (chosen at run time): each nibble indexes a 16-float table of E2M1
   values (vpermps), so x stays in element order; the scale is 2^(s-127). */
static float unit_scale[256];

__attribute__((constructor)) static void init_unit_scales(void) {
    for (int s = 0; s < 256; s++) unit_scale[s] = ldexpf(1.0f, s - 127);
}

__attribute__((target("avx512f,avx512bw"))) static inline __m512 group_dot512(const uint8_t *b,
                                                                              const float *x) {
    const __m512 e2m1 = _mm512_setr_ps(0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f, -0.0f,
                                       -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f);
    const __m128i nibble = _mm_set1_epi8(0x0F);
    __m128i v = _mm_loadu_si128((const __m128i *)b);
    __m128i lo = _mm_and_si128(v, nibble), hi = _mm_and_si128(_mm_srli_epi16(v, 4), nibble);
    __m512 w0 = _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(_mm_unpacklo_epi8(lo, hi)), e2m1);
    __m512 w1 = _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(_mm_unpackhi_epi8(lo, hi)), e2m1);
    return _mm512_fmadd_ps(w1, _mm512_loadu_ps(x + 16), _mm512_mul_ps(w0, _mm512_loadu_ps(x)));
}

__attribute__((target("avx512f,avx512bw"))) static void mxfp4_dot2_avx512(
    const uint8_t *b, const uint8_t *s, const float *x, int64_t groups, float *out) {
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    for (int64_t g = 0; g < groups; g++) {
        _mm_prefetch((const char *)(b + 16 * g + 4096), _MM_HINT_T0);
        _mm_prefetch((const char *)(b + 16 * (groups + g) + 4096), _MM_HINT_T0);
        __m512 p0 = group_dot512(b + 16 * g, x + 32 * g);
        __m512 p1 = group_dot512(b + 16 * (groups + g), x + 32 * g);
        acc0 = _mm512_fmadd_ps(p0, _mm512_set1_ps(unit_scale[s[g]]), acc0);
        acc1 = _mm512_fmadd_ps(p1, _mm512_set1_ps(unit_scale[s[groups + g]]), acc1);
    }
    out[0] = _mm512_reduce_add_ps(acc0);
    out[1] = _mm512_reduce_add_ps(acc1);
}

typedef void (*dot2_fn)(const uint8_t *, const uint8_t *, const float *, int64_t, float *);
/* A token's routed experts: out = sum_n weight[n] * (W2_e @ swiglu(W1_e @ x + b1_e) + b2_e),
   e = experts[n], for blocks/scales/biases of all of a layer's experts laid out as in the
   checkpoint (mlp1 rows interleave gate and linear). One parallel region, two row loops.
   `slotted`: dot2 wants x in mxfp4_slot order (the AVX2 code) rather than element order. */
static void moe_with(dot2_fn dot2, int slotted, const float *x, float *out, int64_t hidden,
                     int64_t inter, int64_t k, const int64_t *experts, const float *weights,
                     const uint8_t *blocks1, const uint8_t *scales1, const float *bias1,
                     const uint8_t *blocks2, const uint8_t *scales2, const float *bias2,
                     float limit, int threads) {
    int64_t g1 = hidden / 32, g2 = inter / 32;
    float *xs = malloc(sizeof(float) * hidden);
    float *act = malloc(sizeof(float) * k * inter); /* per expert, in mxfp4_slot order */
    float *y = malloc(sizeof(float) * k * hidden);
    for (int64_t i = 0; i < hidden; i++) xs[slotted ? mxfp4_slot(i) : i] = x[i];
    #pragma omp parallel num_threads(threads)
    {
        #pragma omp for schedule(static)
        for (int64_t j = 0; j < k * inter; j++) { /* mlp1 rows 2i, 2i+1 -> activation i */
            int64_t n = j / inter, i = j % inter, row = experts[n] * 2 * inter + 2 * i;
            float h[2];
            dot2(blocks1 + row * g1 * 16, scales1 + row * g1, xs, g1, h);
            float gate = fminf(h[0] + bias1[row], limit);
            float lin = fmaxf(fminf(h[1] + bias1[row + 1], limit), -limit);
            act[n * inter + (slotted ? mxfp4_slot(i) : i)] = gate / (1.0f + expf(-1.702f * gate)) * (lin + 1.0f);
        }
        #pragma omp for schedule(static)
        for (int64_t j = 0; j < k * hidden; j += 2) { /* mlp2, two rows at a time */
            int64_t n = j / hidden, row = experts[n] * hidden + j % hidden;
            dot2(blocks2 + row * g2 * 16, scales2 + row * g2, act + n * inter, g2, y + j);
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

#define MOE_ARGS                                                                               \
    const float *x, float *out, int64_t hidden, int64_t inter, int64_t k,                      \
        const int64_t *experts, const float *weights, const uint8_t *blocks1,                  \
        const uint8_t *scales1, const float *bias1, const uint8_t *blocks2,                    \
        const uint8_t *scales2, const float *bias2, float limit, int threads
#define MOE_PASS                                                                               \
    x, out, hidden, inter, k, experts, weights, blocks1, scales1, bias1, blocks2, scales2,     \
        bias2, limit, threads

void moe(MOE_ARGS) { moe_with(mxfp4_dot2, 1, MOE_PASS); }

void moe_avx512(MOE_ARGS) { moe_with(mxfp4_dot2_avx512, 0, MOE_PASS); }
