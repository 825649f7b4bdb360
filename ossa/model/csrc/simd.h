/* Shared by the decode kernels (see ossa/model/kernel.py): AVX2 + FMA, x86-64. */
#ifndef OSSA_SIMD_H
#define OSSA_SIMD_H

#include <immintrin.h>
#include <stdlib.h>

/* `count` floats on a 64-byte boundary, for free(): a vector load from them never straddles two
   cache lines (malloc's 16-byte alignment split every other AVX2 load and every AVX-512 one,
   and moved with the heap's state: the AVX2 expert matmul swung between 86 and 159 GFLOPS). */
static inline float *floats(size_t count) {
    return aligned_alloc(64, (sizeof(float) * count + 63) & ~(size_t)63);
}

/* The sum of a register's eight floats. */
static inline float hsum(__m256 v) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_hadd_ps(h, h);
    h = _mm_hadd_ps(h, h);
    return _mm_cvtss_f32(h);
}

/* e^x, eight at a time, for x <= 88 (callers clamp larger x): range reduction by ln 2 in two
   parts and a degree-7 polynomial, within 2 ulp of expf; below -87.3 it gives e^-87.3
   (~1e-38), not 0, which next to the largest softmax weight, 1, is nothing. */
#define EXP_MIN -87.3f
#define EXP_LOG2E 1.44269504f
#define EXP_LN2_HI 0.693359375f /* ln 2 in two parts */
#define EXP_LN2_LO -2.12194440e-4f
static const float exp_poly[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                                  4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};

static inline __m256 exp8(__m256 x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(EXP_MIN));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(EXP_LOG2E)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    x = _mm256_fnmadd_ps(n, _mm256_set1_ps(EXP_LN2_HI), x);
    x = _mm256_fnmadd_ps(n, _mm256_set1_ps(EXP_LN2_LO), x);
    __m256 y = _mm256_set1_ps(exp_poly[0]);
    for (int k = 1; k < 6; k++) y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(exp_poly[k]));
    y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

#endif
