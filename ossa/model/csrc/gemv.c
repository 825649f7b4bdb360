/* bf16-weight, fp32-activation GEMV for decoding (see ossa/model/kernel.py). */
#include <stdint.h>
#include <stdlib.h>

#include "simd.h"

/* ---- bf16 GEMV: a 32-byte load holds 16 weights; shifting each 32-bit lane left by 16 gives
   the even elements as fp32, masking the low half gives the odd ones. ---- */

/* out = W @ x (+ bias) for bf16 W [rows, cols] (cols a multiple of 16), fp32 x and out. */
void bf16_gemv(const uint16_t *w, const float *x, const float *bias, float *out, int64_t rows,
               int64_t cols, int threads) {
    float *xs = malloc(sizeof(float) * cols); /* per 16: the 8 even elements, then the 8 odd */
    for (int64_t c = 0; c < cols; c += 16)
        for (int j = 0; j < 8; j++) {
            xs[c + j] = x[c + 2 * j];
            xs[c + 8 + j] = x[c + 2 * j + 1];
        }
    const __m256i high = _mm256_set1_epi32((int)0xFFFF0000);
    /* four rows at a time share the loads of x; the next four are prefetched */
    #pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t r = 0; r < rows; r += 4) {
        const uint16_t *p[4];
        __m256 even[4], odd[4];
        for (int i = 0; i < 4; i++) {
            p[i] = w + (r + i < rows ? r + i : rows - 1) * cols; /* a short last block repeats */
            even[i] = odd[i] = _mm256_setzero_ps();
        }
        for (int64_t c = 0; c < cols; c += 16) {
            __m256 xe = _mm256_loadu_ps(xs + c), xo = _mm256_loadu_ps(xs + c + 8);
            for (int i = 0; i < 4; i++) {
                _mm_prefetch((const char *)(p[i] + 4 * cols + c), _MM_HINT_T0);
                __m256i v = _mm256_loadu_si256((const __m256i *)(p[i] + c));
                even[i] = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(v, 16)), xe, even[i]);
                odd[i] = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(v, high)), xo, odd[i]);
            }
        }
        for (int i = 0; i < 4 && r + i < rows; i++)
            out[r + i] = hsum(_mm256_add_ps(even[i], odd[i])) + (bias ? bias[r + i] : 0.0f);
    }
    free(xs);
}
