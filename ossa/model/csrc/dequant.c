/* MXFP4 rows to fp32 for prefill's tiled expert GEMMs (see ossa/model/kernel.py). */
#include <math.h>
#include <stdint.h>

#include "simd.h"

static float half_scale[256]; /* 2^(s-127) / 2: the codes below are twice the E2M1 value */

__attribute__((constructor)) static void init_half_scales(void) {
    for (int s = 0; s < 256; s++) half_scale[s] = ldexpf(1.0f, s - 128);
}

/* rows x (32 * groups) fp32 weights from blocks [rows, groups, 16] and scales [rows, groups]:
   byte j of a group holds element 2j (low nibble) and 2j+1 (high nibble), scaled by
   2^(s-127). Exact: the codes are small integers, the scale a power of two. */
void mxfp4_to_f32(const uint8_t *blocks, const uint8_t *scales, int64_t rows, int64_t groups,
                  float *out, int threads) {
    const __m128i twice_e2m1 = _mm_setr_epi8(0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6,
                                             -8, -12);
    const __m128i low = _mm_set1_epi8(0x0F);
    #pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t g = 0; g < groups; g++) {
            int64_t i = r * groups + g;
            __m128i b = _mm_loadu_si128((const __m128i *)(blocks + 16 * i));
            __m128i lo = _mm_shuffle_epi8(twice_e2m1, _mm_and_si128(b, low));
            __m128i hi = _mm_shuffle_epi8(twice_e2m1, _mm_and_si128(_mm_srli_epi16(b, 4), low));
            __m128i first = _mm_unpacklo_epi8(lo, hi), second = _mm_unpackhi_epi8(lo, hi);
            __m256 scale = _mm256_set1_ps(half_scale[scales[i]]);
            float *o = out + 32 * i;
            _mm256_storeu_ps(o, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(first)), scale));
            _mm256_storeu_ps(o + 8, _mm256_mul_ps(
                _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(first, 8))), scale));
            _mm256_storeu_ps(o + 16, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(second)), scale));
            _mm256_storeu_ps(o + 24, _mm256_mul_ps(
                _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(second, 8))), scale));
        }
    }
}
