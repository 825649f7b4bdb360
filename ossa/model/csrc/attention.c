/* One decoded token's attention in one layer (see ossa/model/kernel.py).

   In torch this step is some twenty small ops (rotary, cache writes, the sink column, two
   batched matmuls, softmax), each costing more in dispatch than in arithmetic at T=1; here it
   is one call. The cache layout is LayerCache's: keys [kv_heads, slots + 1, d + 1] (slot 0 the
   sink, the last column the sink's key dimension), values [kv_heads, slots + 1, d], positions
   [slots + 1], in fp32 or bf16. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "simd.h"

static inline float from_bf16(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline uint16_t to_bf16(float f) { /* round to nearest even, as torch does */
    uint32_t bits;
    memcpy(&bits, &f, 4);
    if ((bits & 0x7FFFFFFF) > 0x7F800000) return (uint16_t)((bits >> 16) | 0x40); /* NaN */
    return (uint16_t)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
}

static inline void store(void *base, int bf16, int64_t i, float f) {
    if (bf16)
        ((uint16_t *)base)[i] = to_bf16(f);
    else
        ((float *)base)[i] = f;
}

/* q . k for one key row of d (a multiple of 8) fp32 or bf16 values; four chains. */
static inline float dot(const float *q, const void *k, int bf16, int64_t d) {
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                     _mm256_setzero_ps()};
    for (int64_t i = 0; i < d; i += 8) {
        __m256 kv = bf16 ? _mm256_castsi256_ps(_mm256_slli_epi32(
                               _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)k + i))), 16))
                         : _mm256_loadu_ps((const float *)k + i);
        acc[(i / 8) & 3] = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), kv, acc[(i / 8) & 3]);
    }
    return hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
}

/* Half-split rotary embedding of one head, as Rotary.apply. */
static void rotate(const float *x, const float *cos, const float *sin, int64_t d, float *out) {
    int64_t h = d / 2;
    for (int64_t i = 0; i < h; i++) {
        out[i] = x[i] * cos[i] - x[i + h] * sin[i];
        out[i + h] = x[i + h] * cos[i] + x[i] * sin[i];
    }
}

/* qkv: the token's [(hq + 2 hkv) d] projection; cos, sin: [d / 2] for its position `pos`.
   Writes its rotated key and its value at `pos`, then out [hq d] = each query head's
   softmax-weighted values over the sink (logit sink_q[h] * scale, value zero) and positions
   first..pos. ring: the slot count of a sliding-window ring (position p in slot p % ring + 1),
   0 for a growing buffer (slot p + 1). */
void attend_token(const float *qkv, const float *cos, const float *sin, const float *sink_q,
                  void *keys, void *values, int64_t *positions, int kv_bf16, int64_t capacity,
                  int64_t ring, int64_t pos, int64_t first, int64_t hq, int64_t hkv, int64_t d,
                  float scale, float *out, int threads) {
    int64_t kd = d + 1, group = hq / hkv, count = pos - first + 1;
    int64_t slot = ring ? pos % ring + 1 : pos + 1;
    float *rotated = malloc(sizeof(float) * d);
    for (int64_t h = 0; h < hkv; h++) {
        rotate(qkv + (hq + h) * d, cos, sin, d, rotated);
        for (int64_t i = 0; i < d; i++) {
            store(keys, kv_bf16, (h * capacity + slot) * kd + i, rotated[i]);
            store(values, kv_bf16, (h * capacity + slot) * d + i, qkv[(hq + hkv + h) * d + i]);
        }
    }
    positions[slot] = pos;
    free(rotated);
    #pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t head = 0; head < hq; head++) {
        int64_t kv = head / group;
        float *q = malloc(sizeof(float) * (d + count));
        float *score = q + d;
        rotate(qkv + head * d, cos, sin, d, q);
        float top = sink_q[head] * scale;
        for (int64_t j = 0; j < count; j++) {
            int64_t p = first + j, s = ring ? p % ring + 1 : p + 1;
            int64_t row = (kv * capacity + s) * kd;
            const void *k = kv_bf16 ? (const void *)((const uint16_t *)keys + row)
                                    : (const void *)((const float *)keys + row);
            score[j] = dot(q, k, kv_bf16, d) * scale;
            top = fmaxf(top, score[j]);
        }
        float total = expf(sink_q[head] * scale - top);
        float *o = out + head * d;
        for (int64_t i = 0; i < d; i++) o[i] = 0.0f;
        for (int64_t j = 0; j < count; j++) {
            int64_t p = first + j, s = ring ? p % ring + 1 : p + 1;
            int64_t row = (kv * capacity + s) * d;
            float w = expf(score[j] - top);
            total += w;
            if (kv_bf16)
                for (int64_t i = 0; i < d; i++) o[i] += w * from_bf16(((const uint16_t *)values)[row + i]);
            else
                for (int64_t i = 0; i < d; i++) o[i] += w * ((const float *)values)[row + i];
        }
        for (int64_t i = 0; i < d; i++) o[i] /= total;
        free(q);
    }
}
