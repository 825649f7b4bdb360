/* The decode kernels that layer.c chains into one layer step (see ossa/model/kernel.py). */
#ifndef OSSA_DECODE_H
#define OSSA_DECODE_H

#include <stdint.h>

void bf16_gemv(const uint16_t *w, const float *x, const float *bias, float *out, int64_t rows,
               int64_t cols, int threads);
void bf16_gemv_avx512(const uint16_t *w, const float *x, const float *bias, float *out,
                      int64_t rows, int64_t cols, int threads);

#define MOE_ARGS                                                                               \
    const float *x, float *out, int64_t hidden, int64_t inter, int64_t k,                      \
        const int64_t *experts, const float *weights, const uint8_t *blocks1,                  \
        const uint8_t *scales1, const float *bias1, const uint8_t *blocks2,                    \
        const uint8_t *scales2, const float *bias2, float limit, int threads
void moe(MOE_ARGS);
void moe_avx512(MOE_ARGS);

void attend_token(const float *qkv, const float *cos, const float *sin, const float *sink_q,
                  void *keys, void *values, int64_t *positions, int kv_bf16, int64_t capacity,
                  int64_t ring, int64_t pos, int64_t first, int64_t hq, int64_t hkv, int64_t d,
                  float scale, float *out, int threads);

#endif
