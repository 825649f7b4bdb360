/* A token's routed MXFP4 experts in one call (see ossa/model/kernel.py). */
#include <stdint.h>
#include <stdlib.h>

#include "decode.h"
#include "matmul.h"
#include "simd.h"

/* A quad of MXFP4 rows (blocks b, scales s from its start, quad_row) against x in avx2_slot
   order (matmul.h), prefetching the next quad's line of each group. Two accumulators a row
   hide the FMA latency. */
static inline void mxfp4_dot4(const uint8_t *b, const uint8_t *s, const float *x, int64_t groups,
                              float *out) {
    __m256 acc[4][2];
    for (int r = 0; r < 4; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (int64_t g = 0; g < groups; g++) {
        _mm_prefetch((const char *)b + 64 * groups + 64 * g, _MM_HINT_T0);
        const float *xg = x + 32 * g;
        for (int r = 0; r < 4; r++) {
            __m256 w[4];
            mxfp4_group(b + 64 * g + 16 * r, s[4 * g + r], w);
            acc[r][0] = _mm256_fmadd_ps(w[0], _mm256_loadu_ps(xg), acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(w[1], _mm256_loadu_ps(xg + 8), acc[r][1]);
            acc[r][0] = _mm256_fmadd_ps(w[2], _mm256_loadu_ps(xg + 16), acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(w[3], _mm256_loadu_ps(xg + 24), acc[r][1]);
        }
    }
    for (int r = 0; r < 4; r++) out[r] = hsum(_mm256_add_ps(acc[r][0], acc[r][1]));
}

/* SwiGLU of eight (gate, linear) pairs, biases added: as Experts.expert's swiglu (layers.py),
   the sigmoid as 1 / (1 + e^-1.702g); one expf at a time took ~5% of a gpt-oss-20b step's
   experts. */
static inline void swiglu8(const float *h, const float *bias, float limit, float *out) {
    float gate[8], lin[8];
    for (int i = 0; i < 8; i++) {
        gate[i] = h[2 * i] + bias[2 * i];
        lin[i] = h[2 * i + 1] + bias[2 * i + 1];
    }
    __m256 lim = _mm256_set1_ps(limit), one = _mm256_set1_ps(1.0f);
    __m256 g = _mm256_min_ps(_mm256_loadu_ps(gate), lim);
    __m256 l = _mm256_max_ps(_mm256_min_ps(_mm256_loadu_ps(lin), lim), _mm256_sub_ps(_mm256_setzero_ps(), lim));
    __m256 e = exp8(_mm256_min_ps(_mm256_mul_ps(g, _mm256_set1_ps(-1.702f)), _mm256_set1_ps(88.0f)));
    _mm256_storeu_ps(out, _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(one, e)), _mm256_add_ps(l, one)));
}

/* out [n, inter] = SwiGLU of h [n, 2 * inter] (rows interleaving gate and linear) plus the
   bias [2 * inter], inter a multiple of 8: prefill's experts between their two matmuls. In
   torch, the bias add and SwiGLU's six passes over h took 4% of a gpt-oss-20b prefill; this one
   pass takes half as long. */
void swiglu_rows(const float *h, const float *bias, int64_t n, int64_t inter, float limit,
                 float *out, int threads) {
    #pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t r = 0; r < n; r++)
        for (int64_t i = 0; i < inter; i += 8)
            swiglu8(h + r * 2 * inter + 2 * i, bias + 2 * i, limit, out + r * inter + i);
}

typedef void (*dot_fn)(const uint8_t *, const uint8_t *, const float *, int64_t, float *);
/* A token's routed experts: out = sum_n weight[n] * (W2_e @ swiglu(W1_e @ x + b1_e) + b2_e),
   e = experts[n], for blocks/scales of all of a layer's experts in quads (matmul.h) and biases
   as in the checkpoint (mlp1 rows interleave gate and linear). One parallel region, three
   loops: mlp1's rows, SwiGLU, mlp2's rows. `dot` computes a quad of rows (sizes are multiples
   of 32); `slot`: where it wants each element of its input vectors. */
static void moe_with(dot_fn dot, slot_fn slot, const float *x, float *out,
                     int64_t hidden, int64_t inter, int64_t k, const int64_t *experts,
                     const float *weights, const uint8_t *blocks1, const uint8_t *scales1,
                     const float *bias1, const uint8_t *blocks2, const uint8_t *scales2,
                     const float *bias2, float limit, int threads) {
    int64_t g1 = hidden / 32, g2 = inter / 32;
    float *xs = in_slots(x, 1, hidden, slot);
    float *h = floats(k * 2 * inter);
    float *act = floats(k * inter); /* per expert, in slot order */
    float *y = floats(k * hidden);
    #pragma omp parallel num_threads(threads)
    {
        #pragma omp for schedule(static)
        for (int64_t j = 0; j < k * 2 * inter; j += 4) { /* mlp1 */
            int64_t row = experts[j / (2 * inter)] * 2 * inter + j % (2 * inter);
            dot(quad_row(blocks1, row, g1, 16), quad_row(scales1, row, g1, 1), xs, g1, h + j);
        }
        #pragma omp for schedule(static)
        for (int64_t a = 0; a < k * inter; a += 8) { /* rows 2i, 2i+1 -> activation i */
            int64_t n = a / inter, i = a % inter;
            float out8[8];
            swiglu8(h + 2 * a, bias1 + experts[n] * 2 * inter + 2 * i, limit, out8);
            for (int p = 0; p < 8; p++) act[n * inter + slot(i + p)] = out8[p];
        }
        #pragma omp for schedule(static)
        for (int64_t j = 0; j < k * hidden; j += 4) { /* mlp2 */
            int64_t n = j / hidden, row = experts[n] * hidden + j % hidden;
            dot(quad_row(blocks2, row, g2, 16), quad_row(scales2, row, g2, 1), act + n * inter,
                g2, y + j);
            for (int r = 0; r < 4; r++) y[j + r] += bias2[row + r];
        }
    }
    for (int64_t r = 0; r < hidden; r++) {
        float sum = 0.0f;
        for (int64_t n = 0; n < k; n++) sum += weights[n] * y[n * hidden + r];
        out[r] = sum;
    }
    free(xs);
    free(h);
    free(act);
    free(y);
}

#define MOE_PASS                                                                               \
    x, out, hidden, inter, k, experts, weights, blocks1, scales1, bias1, blocks2, scales2,     \
        bias2, limit, threads

void moe(MOE_ARGS) { moe_with(mxfp4_dot4, avx2_slot, MOE_PASS); }

void moe_avx512(MOE_ARGS) { moe_with(mxfp4_dot4_avx512, avx512_slot, MOE_PASS); }
