/* One decoded token through one transformer block in one call (see ossa/model/kernel.py).

   The block's kernels (GEMVs, attention, experts) each run at memory speed; between them the
   torch path spent ~100 us a layer in Python and small torch ops (norms, routing, adds), a
   tenth of a medium-sized model's step. Here the whole block is one call. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "decode.h"
#include "simd.h"

#define MAX_EXPERTS_PER_TOKEN 32

/* A block's weights, filled in once at load (mirrored by kernel.py's LayerWeights). */
struct layer {
    const float *attn_norm, *mlp_norm;         /* [H] */
    const uint16_t *qkv, *out, *gate;          /* bf16 [(hq + 2 hkv) d, H], [H, hq d], [E, H] */
    const float *qkv_bias, *out_bias, *gate_bias;
    const float *sink_q;                       /* [hq]: the sinks times sqrt(d) */
    const uint8_t *blocks1, *scales1, *blocks2, *scales2; /* the experts, MXFP4 */
    const float *bias1, *bias2;
    int64_t hidden, inter, experts, k, hq, hkv, d;
    float limit, eps;
};

/* out = x / rms(x) * scale, as torch's rms_norm: the mean of squares in fp32. */
static void rms_norm(const float *x, const float *scale, int64_t n, float eps, float *out) {
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) sum += x[i] * x[i];
    float r = 1.0f / sqrtf(sum / (float)n + eps);
    for (int64_t i = 0; i < n; i++) out[i] = x[i] * r * scale[i];
}

/* The k largest of `logits` [n], largest first (ties: the lower index), and their softmax. */
static void route(const float *logits, int64_t n, int64_t k, int64_t *chosen, float *weights) {
    for (int64_t j = 0; j < k; j++) {
        int64_t best = -1;
        for (int64_t e = 0; e < n; e++) {
            int taken = 0;
            for (int64_t i = 0; i < j; i++) taken |= chosen[i] == e;
            if (!taken && (best < 0 || logits[e] > logits[best])) best = e;
        }
        chosen[j] = best;
    }
    float top = logits[chosen[0]], total = 0.0f;
    for (int64_t j = 0; j < k; j++) total += weights[j] = expf(logits[chosen[j]] - top);
    for (int64_t j = 0; j < k; j++) weights[j] /= total;
}

/* x [H] += attention(norm(x)), then x += experts(norm(x)), for the token at `pos`; the cache
   arguments are attend_token's. */
void decode_layer(const struct layer *L, float *x, const float *cos, const float *sin,
                  void *keys, void *values, int64_t *positions, int kv_bf16, int64_t capacity,
                  int64_t ring, int64_t pos, int64_t first, int avx512, int threads) {
    void (*gemv)(const uint16_t *, const float *, const float *, float *, int64_t, int64_t,
                 int) = avx512 ? bf16_gemv_avx512 : bf16_gemv;
    int64_t h = L->hidden, qd = L->hq * L->d, rows = qd + 2 * L->hkv * L->d;
    float *t = floats(h + rows + qd + h + L->experts);
    float *qkv = t + h, *attn = qkv + rows, *y = attn + qd, *logits = y + h;
    rms_norm(x, L->attn_norm, h, L->eps, t);
    gemv(L->qkv, t, L->qkv_bias, qkv, rows, h, threads);
    attend_token(qkv, cos, sin, L->sink_q, keys, values, positions, kv_bf16, capacity, ring, pos,
                 first, L->hq, L->hkv, L->d, 1.0f / sqrtf((float)L->d), attn, threads);
    gemv(L->out, attn, L->out_bias, y, h, qd, threads);
    for (int64_t i = 0; i < h; i++) x[i] += y[i];
    rms_norm(x, L->mlp_norm, h, L->eps, t);
    gemv(L->gate, t, L->gate_bias, logits, L->experts, h, threads);
    int64_t chosen[MAX_EXPERTS_PER_TOKEN];
    float weights[MAX_EXPERTS_PER_TOKEN];
    route(logits, L->experts, L->k, chosen, weights);
    (avx512 ? moe_avx512 : moe)(t, y, h, L->inter, L->k, chosen, weights, L->blocks1, L->scales1,
                                L->bias1, L->blocks2, L->scales2, L->bias2, L->limit, threads);
    for (int64_t i = 0; i < h; i++) x[i] += y[i];
    free(t);
}
