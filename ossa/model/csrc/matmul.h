/* What matmul.c shares with the experts' decode step (moe.c): the MXFP4 layout, the AVX2 group
   expansion, and the AVX-512 tile kernel. */
#ifndef OSSA_MATMUL_H
#define OSSA_MATMUL_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "simd.h"

/* MXFP4 code c (bit 3 the sign) of a group with scale byte s, E2M1 times 2^(s-127), as bf16:
   exact (an E2M1 value has two significant bits), the top half of the fp32 number. */
static inline uint16_t scaled_e2m1_bf16(int s, int c) {
    static const float e2m1[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
    float value = ldexpf(c & 8 ? -e2m1[c & 7] : e2m1[c & 7], s - 127);
    uint32_t bits;
    memcpy(&bits, &value, 4);
    return (uint16_t)(bits >> 16);
}

/* Where a kernel wants element i of its input vectors (the order its expanded weights come
   in), and n vectors of `cols` floats so reordered, in a new buffer for free(). */
typedef int64_t (*slot_fn)(int64_t);

static inline float *in_slots(const float *x, int64_t n, int64_t cols, slot_fn slot) {
    float *xs = floats(n * cols);
    for (int64_t t = 0; t < n; t++)
        for (int64_t i = 0; i < cols; i++) xs[t * cols + slot(i)] = x[t * cols + i];
    return xs;
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

/* ---- MXFP4 with AVX2: a group's 16 bytes (low nibble = even element) are broadcast to both
   128-bit lanes, lane 1 shifted right by 4, so lane 0's bytes hold the even elements' codes in
   their low nibbles and lane 1's the odd ones'. Two vpshufb read the group's table (each code's
   value times the scale 2^(s-127), exact in bf16: its high bytes and its low bytes), and two
   byte unpacks pair them into 32 bf16 weights, widened to fp32 as bf16 rows are: a shift and a
   mask. So the products are exact fp32 products and no multiply applies the scale. Against int8
   codes spread to fp32, converted and scaled once a group (17 vector ops a group, now 14), a
   gpt-oss-20b layer's routed experts went from 2.97 to 2.40 ms in decode. */

/* Per scale byte: the bf16 weights of the 16 codes, high bytes then low bytes, each 16 twice
   (one copy a lane). */
extern uint8_t scaled_e2m1_bytes[256][2][32];

/* Where element i of an input vector goes to line up with mxfp4_group's registers: the unpacks
   give words [e0 e2 .. e14 | o1 o3 .. o15] and [e16 .. e30 | o17 .. o31] (e: even elements, o:
   odd), each widened into its low words (elements 4j, 4j + 1 of a half) and its high words
   (4j + 2, 4j + 3), eight floats a register. */
static inline int64_t avx2_slot(int64_t i) {
    int64_t e = i & 15;
    return (i & ~(int64_t)15) + 8 * ((e >> 1) & 1) + 4 * (e & 1) + (e >> 2);
}

/* The 32 weights of the group at `codes` with scale byte `scale` as four fp32 registers, in
   avx2_slot order. */
static inline void mxfp4_group(const uint8_t *codes, uint8_t scale, __m256 w[4]) {
    const uint8_t(*table)[32] = scaled_e2m1_bytes[scale];
    const __m256i high = _mm256_set1_epi32((int)0xFFFF0000);
    __m256i c = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)codes));
    c = _mm256_and_si256(_mm256_srlv_epi32(c, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4)),
                         _mm256_set1_epi8(0x0F));
    __m256i hi = _mm256_shuffle_epi8(_mm256_load_si256((const __m256i *)table[0]), c);
    __m256i lo = _mm256_shuffle_epi8(_mm256_load_si256((const __m256i *)table[1]), c);
    __m256i w0 = _mm256_unpacklo_epi8(lo, hi), w1 = _mm256_unpackhi_epi8(lo, hi);
    w[0] = _mm256_castsi256_ps(_mm256_slli_epi32(w0, 16));
    w[1] = _mm256_castsi256_ps(_mm256_and_si256(w0, high));
    w[2] = _mm256_castsi256_ps(_mm256_slli_epi32(w1, 16));
    w[3] = _mm256_castsi256_ps(_mm256_and_si256(w1, high));
}

/* Where element i of an input vector goes for the AVX-512 MXFP4 kernels. */
int64_t avx512_slot(int64_t i);

/* A quad of MXFP4 rows (blocks b, scales s from its start) against one vector x in avx512_slot
   order. */
void mxfp4_dot4_avx512(const uint8_t *b, const uint8_t *s, const float *x, int64_t groups,
                       float *out);

#endif
