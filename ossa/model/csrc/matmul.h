/* The AVX-512 tile kernels of matmul.c that the experts' decode step (moe.c) uses. */
#ifndef OSSA_MATMUL_H
#define OSSA_MATMUL_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* MXFP4 code c (bit 3 the sign) of a group with scale byte s, E2M1 times 2^(s-127), as bf16:
   exact (an E2M1 value has two significant bits), the top half of the fp32 number. */
static inline uint16_t scaled_e2m1_bf16(int s, int c) {
    static const float e2m1[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
    float value = ldexpf(c & 8 ? -e2m1[c & 7] : e2m1[c & 7], s - 127);
    uint32_t bits;
    memcpy(&bits, &value, 4);
    return (uint16_t)(bits >> 16);
}

/* MXFP4 weights as the kernels read them: rows in quads, and each quad stored group by group,
   a group holding its four rows' 16 bytes of codes (blocks [R/4, G, 4, 16]) or their four
   scale bytes (scales [R/4, G, 4]); kernel.py's quad_blocks / quad_scales arrange them so at
   load. A tile of four rows then streams one contiguous run, a cache line a group, where rows
   side by side were four streams and a fifth for the scales (a gpt-oss-20b token's experts
   ran ~4% faster). Row r's first group (`size` bytes: 16 for blocks, 1 for scales); its next
   groups are 4 * size apart. */
static inline const uint8_t *quad_row(const uint8_t *base, int64_t r, int64_t groups,
                                      int64_t size) {
    return base + ((r & ~(int64_t)3) * groups + (r & 3)) * size;
}

/* Where element i of an input vector goes for the AVX-512 MXFP4 kernels. */
int64_t avx512_slot(int64_t i);

/* A quad of MXFP4 rows (blocks b, scales s from its start) against one vector x in avx512_slot
   order. */
void mxfp4_dot4_avx512(const uint8_t *b, const uint8_t *s, const float *x, int64_t groups,
                       float *out);

#endif
