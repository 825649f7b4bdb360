/* The AVX-512 tile kernels of matmul.c that the experts' decode step (moe.c) uses. */
#ifndef OSSA_MATMUL_H
#define OSSA_MATMUL_H

#include <stdint.h>

/* Where element i of an input vector goes for the AVX-512 MXFP4 kernels. */
int64_t avx512_slot(int64_t i);

/* Four consecutive MXFP4 rows (blocks b, scales s) against one vector x in avx512_slot order. */
void mxfp4_dot4_avx512(const uint8_t *b, const uint8_t *s, const float *x, int64_t groups,
                       float *out);

#endif
