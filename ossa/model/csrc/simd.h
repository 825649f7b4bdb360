/* Shared by the decode kernels (see ossa/model/kernel.py): AVX2 + FMA, x86-64. */
#ifndef OSSA_SIMD_H
#define OSSA_SIMD_H

#include <immintrin.h>

/* The sum of a register's eight floats. */
static inline float hsum(__m256 v) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_hadd_ps(h, h);
    h = _mm_hadd_ps(h, h);
    return _mm_cvtss_f32(h);
}

#endif
