/* Attention in C (see ossa/model/kernel.py): one decoded token's (attend_token), and a
   prefill chunk's (attend_chunk).

   In torch a decoded token's attention is some twenty small ops (rotary, cache writes, the sink
   column, two batched matmuls, softmax), each costing more in dispatch than in arithmetic; here
   it is one call. A chunk's attention in torch writes every score to memory, several times
   over (scale, mask, softmax): deep in a long context it ran at ~45 GFLOPS here. The cache layout is LayerCache's: keys [kv_heads, slots + 1, d + 1] (slot 0 the
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

/* Half-split rotary embedding of one head, as Rotary.apply. */
static void rotate(const float *x, const float *cos, const float *sin, int64_t d, float *out) {
    int64_t h = d / 2;
    for (int64_t i = 0; i < h; i++) {
        out[i] = x[i] * cos[i] - x[i + h] * sin[i];
        out[i + h] = x[i + h] * cos[i] + x[i] * sin[i];
    }
}

/* 8 values of a row (fp32 or bf16) as fp32. */
static inline __m256 load8(const void *row, int bf16, int64_t i) {
    if (bf16)
        return _mm256_castsi256_ps(_mm256_slli_epi32(
            _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)row + i))), 16));
    return _mm256_loadu_ps((const float *)row + i);
}

#define KEYS_BLOCK 256 /* keys scored, then their values summed, while they sit in cache */
#define KEYS_AT_ONCE 4 /* keys scored together: one key's FMA chains alone waited on latency */
#define MAX_HEAD_DIM 256

/* The address of position p's row in a key or value buffer of `width` elements a row. */
static inline const char *kv_row(const void *base, int64_t kv, int64_t capacity, int64_t ring,
                                 int64_t p, int64_t width, int64_t size) {
    int64_t s = ring ? p % ring + 1 : p + 1;
    return (const char *)base + (kv * capacity + s) * width * size;
}

/* Scores [n][8] of query lanes qt [d][8] against the keys at positions p..p+n-1 (n <= 4), and
   prefetches of the rows that follow: keys 32 ahead (the next block's, from memory), and the
   values of these keys (the block's value pass reads them next). */
static inline void score_keys(const float *qt, const void *keys, const void *values, int kv_bf16,
                              int64_t capacity, int64_t ring, int64_t p, int n, int64_t kv,
                              int64_t d, float *score) {
    int64_t kd = d + 1, size = kv_bf16 ? 2 : 4;
    float rows[KEYS_AT_ONCE][MAX_HEAD_DIM];
    const float *e[KEYS_AT_ONCE]; /* each key's elements as fp32: in place, or widened */
    for (int r = 0; r < KEYS_AT_ONCE; r++) {
        const char *k = kv_row(keys, kv, capacity, ring, p + (r < n ? r : 0), kd, size);
        const char *v = kv_row(values, kv, capacity, ring, p + (r < n ? r : 0), d, size);
        for (int64_t line = 0; line < kd * size; line += 64) {
            _mm_prefetch(k + 32 * kd * size + line, _MM_HINT_T0);
            _mm_prefetch(v + line, _MM_HINT_T0);
        }
        e[r] = (const float *)k;
        if (kv_bf16) {
            for (int64_t i = 0; i < d; i += 8) _mm256_storeu_ps(rows[r] + i, load8(k, 1, i));
            e[r] = rows[r];
        }
    }
    __m256 even[KEYS_AT_ONCE], odd[KEYS_AT_ONCE];
    for (int r = 0; r < KEYS_AT_ONCE; r++) even[r] = odd[r] = _mm256_setzero_ps();
    for (int64_t i = 0; i < d; i += 2) {
        __m256 q0 = _mm256_loadu_ps(qt + i * 8), q1 = _mm256_loadu_ps(qt + i * 8 + 8);
        for (int r = 0; r < KEYS_AT_ONCE; r++) {
            even[r] = _mm256_fmadd_ps(_mm256_set1_ps(e[r][i]), q0, even[r]);
            odd[r] = _mm256_fmadd_ps(_mm256_set1_ps(e[r][i + 1]), q1, odd[r]);
        }
    }
    for (int r = 0; r < n; r++) _mm256_storeu_ps(score + r * 8, _mm256_add_ps(even[r], odd[r]));
}

/* Query heads h0..h0+7 (those past `heads` are zeros) that share key head kv, against
   positions first..first+count-1: out[h] = their softmax-weighted values with the sink.
   Lane g of every register is head h0+g, so a key row meets eight queries with no horizontal
   sums: scores come from broadcasting each key element against the queries laid out [d][8];
   each value row meets the eight weights likewise. One pass with an online softmax, a block of
   keys at a time: the block's keys and values are read once, and no score leaves the cache. */
static void attend_heads(const float *qkv, const float *cos, const float *sin,
                         const float *sink_q, const void *keys, const void *values, int kv_bf16,
                         int64_t capacity, int64_t ring, int64_t first, int64_t count,
                         int64_t h0, int64_t heads, int64_t kv, int64_t d, float scale,
                         float *out) {
    int64_t size = kv_bf16 ? 2 : 4;
    float qt[MAX_HEAD_DIM * 8] = {0}, score[KEYS_BLOCK * 8], sinks[8] = {0}, totals[8];
    for (int64_t g = 0; g < heads; g++) {
        float q[MAX_HEAD_DIM];
        rotate(qkv + (h0 + g) * d, cos, sin, d, q);
        for (int64_t i = 0; i < d; i++) qt[i * 8 + g] = q[i] * scale;
        sinks[g] = sink_q[h0 + g] * scale;
    }
    __m256 top = _mm256_loadu_ps(sinks), total = _mm256_set1_ps(1.0f); /* the sink's e^0 */
    float *o = out + h0 * d; /* the heads' outputs, scaled to e^-top */
    for (int64_t i = 0; i < heads * d; i++) o[i] = 0.0f;
    for (int64_t b = 0; b < count; b += KEYS_BLOCK) {
        int64_t n = count - b < KEYS_BLOCK ? count - b : KEYS_BLOCK;
        __m256 peak = top;
        for (int64_t j = 0; j < n; j += KEYS_AT_ONCE) {
            int m = n - j < KEYS_AT_ONCE ? (int)(n - j) : KEYS_AT_ONCE;
            score_keys(qt, keys, values, kv_bf16, capacity, ring, first + b + j, m, kv, d,
                       score + j * 8);
            for (int r = 0; r < m; r++) peak = _mm256_max_ps(peak, _mm256_loadu_ps(score + (j + r) * 8));
        }
        __m256 alpha = exp8(_mm256_sub_ps(top, peak)); /* what came before, to the new top */
        total = _mm256_mul_ps(total, alpha);
        top = peak;
        float rescale[8];
        _mm256_storeu_ps(rescale, alpha);
        for (int64_t g = 0; g < heads; g++)
            for (int64_t i = 0; i < d; i++) o[g * d + i] *= rescale[g];
        for (int64_t j = 0; j < n; j++) { /* weights in place of the scores, and their sum */
            __m256 w = exp8(_mm256_sub_ps(_mm256_loadu_ps(score + j * 8), top));
            _mm256_storeu_ps(score + j * 8, w);
            total = _mm256_add_ps(total, w);
        }
        for (int64_t i = 0; i < d; i += 8) { /* 8 output values of each head over the block */
            __m256 acc[8];
            for (int g = 0; g < 8; g++) acc[g] = _mm256_loadu_ps(o + (g < heads ? g : 0) * d + i);
            for (int64_t j = 0; j < n; j++) {
                __m256 v = load8(kv_row(values, kv, capacity, ring, first + b + j, d, size), kv_bf16, i);
                for (int g = 0; g < 8; g++) /* all eight lanes; a padded head's is dropped */
                    acc[g] = _mm256_fmadd_ps(_mm256_set1_ps(score[j * 8 + g]), v, acc[g]);
            }
            for (int64_t g = 0; g < heads; g++) _mm256_storeu_ps(o + g * d + i, acc[g]);
        }
    }
    _mm256_storeu_ps(totals, total);
    for (int64_t g = 0; g < heads; g++)
        for (int64_t i = 0; i < d; i++) o[g * d + i] /= totals[g];
}

/* qkv: the token's [(hq + 2 hkv) d] projection (d a multiple of 8); cos, sin: [d / 2] for its
   position `pos`. Writes its rotated key and its value at `pos`, then out [hq d] = each query
   head's softmax-weighted values over the sink (logit sink_q[h] * scale, value zero) and
   positions first..pos. ring: the slot count of a sliding-window ring (position p in slot
   p % ring + 1), 0 for a growing buffer (slot p + 1). Threads take key heads (and groups of
   eight query heads sharing one). */
void attend_token(const float *qkv, const float *cos, const float *sin, const float *sink_q,
                  void *keys, void *values, int64_t *positions, int kv_bf16, int64_t capacity,
                  int64_t ring, int64_t pos, int64_t first, int64_t hq, int64_t hkv, int64_t d,
                  float scale, float *out, int threads) {
    int64_t kd = d + 1, group = hq / hkv, count = pos - first + 1;
    int64_t slot = ring ? pos % ring + 1 : pos + 1;
    float *rotated = floats(d);
    for (int64_t h = 0; h < hkv; h++) {
        rotate(qkv + (hq + h) * d, cos, sin, d, rotated);
        for (int64_t i = 0; i < d; i++) {
            store(keys, kv_bf16, (h * capacity + slot) * kd + i, rotated[i]);
            store(values, kv_bf16, (h * capacity + slot) * d + i, qkv[(hq + hkv + h) * d + i]);
        }
    }
    positions[slot] = pos;
    free(rotated);
    int64_t chunks = (group + 7) / 8; /* of eight query heads per key head */
    #pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t c = 0; c < hkv * chunks; c++) {
        int64_t kv = c / chunks, h0 = kv * group + 8 * (c % chunks);
        int64_t heads = kv * group + group - h0 < 8 ? kv * group + group - h0 : 8;
        attend_heads(qkv, cos, sin, sink_q, keys, values, kv_bf16, capacity, ring, first, count,
                     h0, heads, kv, d, scale, out);
    }
}

#define CHUNK_ROWS 16 /* (query, head) rows a chunk's block holds: two registers of eight */
#define CHUNK_KEYS 64 /* keys scored at a time: their scores stay in L1 */

/* A block of `rows` (query, head) rows of key head kv, row r being query t0 + r / group, head
   kv * group + r % group: their scaled queries laid out qt [d][rows], positions (-1 for rows
   past the chunk's end, which compute nothing useful and are dropped) and sink logits. Returns
   the first position any row sees; *last is the last. */
static int64_t rows_begin(const float *q, const float *sink_q, int64_t first, int64_t start,
                          int64_t t0, int64_t n, int64_t window, int64_t hq, int64_t group,
                          int64_t kv, int64_t d, float scale, int rows, float *qt, float *pos,
                          float *sink, int64_t *last) {
    int64_t lowest = INT64_MAX;
    *last = -1;
    for (int r = 0; r < rows; r++) {
        int64_t t = t0 + r / group, head = kv * group + r % group;
        int live = t < n;
        pos[r] = live ? (float)(start + t) : -1.0f;
        sink[r] = sink_q[head] * scale;
        for (int64_t i = 0; i < d; i++) qt[i * rows + r] = live ? q[(t * hq + head) * d + i] * scale : 0.0f;
        if (live && start + t > *last) *last = start + t;
        if (live && start + t < lowest) lowest = start + t;
    }
    return window ? (lowest - window + 1 > first ? lowest - window + 1 : first) : first;
}

/* The block's outputs ot [d][rows], divided by their softmax totals, into out [n, hq, d]. */
static void rows_end(const float *ot, const float *total, int rows, int64_t t0, int64_t n,
                     int64_t hq, int64_t group, int64_t kv, int64_t d, float *out) {
    for (int r = 0; r < rows; r++) {
        int64_t t = t0 + r / group, head = kv * group + r % group;
        if (t < n)
            for (int64_t i = 0; i < d; i++) out[(t * hq + head) * d + i] = ot[i * rows + r] / total[r];
    }
}

/* Rows of one key head kv: query t0 + r / group, head kv * group + r % group (r < 16, group
   dividing 16), against positions first.. (span index 1..: index 0, the sink, is the logit
   sink_q * scale), each row seeing its causal, windowed keys; an online softmax, so no score
   leaves this block. */
static void attend_rows(const float *q, const float *sink_q, const float *keys,
                        const float *values, int64_t k_head, int64_t k_row, int64_t v_head,
                        int64_t v_row, int64_t first, int64_t start, int64_t t0, int64_t n,
                        int64_t window, int64_t hq, int64_t group, int64_t kv, int64_t d,
                        float scale, float *out) {
    float qt[d * CHUNK_ROWS], ot[d * CHUNK_ROWS], pos[CHUNK_ROWS], sink[CHUNK_ROWS];
    float score[CHUNK_KEYS * CHUNK_ROWS];
    int64_t last, from = rows_begin(q, sink_q, first, start, t0, n, window, hq, group, kv, d,
                                    scale, CHUNK_ROWS, qt, pos, sink, &last);
    __m256 m[2], l[2], row_pos[2];
    for (int h = 0; h < 2; h++) {
        m[h] = _mm256_loadu_ps(sink + 8 * h);
        l[h] = _mm256_set1_ps(1.0f); /* the sink's own weight, e^(sink - m) */
        row_pos[h] = _mm256_loadu_ps(pos + 8 * h);
    }
    for (int64_t i = 0; i < d * CHUNK_ROWS; i++) ot[i] = 0.0f;
    for (int64_t b = from; b <= last; b += CHUNK_KEYS) {
        int64_t count = last - b + 1 < CHUNK_KEYS ? last - b + 1 : CHUNK_KEYS;
        __m256 top[2] = {m[0], m[1]};
        for (int64_t j = 0; j < count; j++) { /* scores, masked to -inf outside each row's view */
            const float *k = keys + kv * k_head + (b + j - first + 1) * k_row;
            __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
            __m256 u0 = _mm256_setzero_ps(), u1 = _mm256_setzero_ps();
            for (int64_t i = 0; i < d; i += 2) {
                __m256 e = _mm256_set1_ps(k[i]), o = _mm256_set1_ps(k[i + 1]);
                s0 = _mm256_fmadd_ps(e, _mm256_loadu_ps(qt + i * CHUNK_ROWS), s0);
                s1 = _mm256_fmadd_ps(e, _mm256_loadu_ps(qt + i * CHUNK_ROWS + 8), s1);
                u0 = _mm256_fmadd_ps(o, _mm256_loadu_ps(qt + (i + 1) * CHUNK_ROWS), u0);
                u1 = _mm256_fmadd_ps(o, _mm256_loadu_ps(qt + (i + 1) * CHUNK_ROWS + 8), u1);
            }
            __m256 p = _mm256_set1_ps((float)(b + j)), sc[2] = {_mm256_add_ps(s0, u0), _mm256_add_ps(s1, u1)};
            for (int h = 0; h < 2; h++) {
                __m256 seen = _mm256_cmp_ps(p, row_pos[h], _CMP_LE_OQ);
                if (window)
                    seen = _mm256_and_ps(seen, _mm256_cmp_ps(p, _mm256_sub_ps(row_pos[h], _mm256_set1_ps((float)window)), _CMP_GT_OQ));
                sc[h] = _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), sc[h], seen);
                top[h] = _mm256_max_ps(top[h], sc[h]);
                _mm256_storeu_ps(score + j * CHUNK_ROWS + 8 * h, sc[h]);
            }
        }
        for (int h = 0; h < 2; h++) { /* rescale what came before to the new maximum */
            __m256 alpha = exp8(_mm256_sub_ps(m[h], top[h]));
            l[h] = _mm256_mul_ps(l[h], alpha);
            for (int64_t i = 0; i < d; i++)
                _mm256_storeu_ps(ot + i * CHUNK_ROWS + 8 * h, _mm256_mul_ps(_mm256_loadu_ps(ot + i * CHUNK_ROWS + 8 * h), alpha));
            m[h] = top[h];
        }
        for (int64_t j = 0; j < count; j++) /* weights in place of the scores (0 where masked) */
            for (int h = 0; h < 2; h++) {
                __m256 sc = _mm256_loadu_ps(score + j * CHUNK_ROWS + 8 * h);
                __m256 w = _mm256_and_ps(exp8(_mm256_sub_ps(sc, m[h])), _mm256_cmp_ps(sc, _mm256_set1_ps(-INFINITY), _CMP_NEQ_OQ));
                _mm256_storeu_ps(score + j * CHUNK_ROWS + 8 * h, w);
                l[h] = _mm256_add_ps(l[h], w);
            }
        for (int64_t i0 = 0; i0 < d; i0 += 4) { /* four output dims of every row at a time */
            __m256 acc[4][2];
            for (int i = 0; i < 4; i++)
                for (int h = 0; h < 2; h++) acc[i][h] = _mm256_loadu_ps(ot + (i0 + i) * CHUNK_ROWS + 8 * h);
            for (int64_t j = 0; j < count; j++) {
                const float *v = values + kv * v_head + (b + j - first + 1) * v_row + i0;
                __m256 w0 = _mm256_loadu_ps(score + j * CHUNK_ROWS), w1 = _mm256_loadu_ps(score + j * CHUNK_ROWS + 8);
                for (int i = 0; i < 4; i++) {
                    __m256 x = _mm256_set1_ps(v[i]);
                    acc[i][0] = _mm256_fmadd_ps(x, w0, acc[i][0]);
                    acc[i][1] = _mm256_fmadd_ps(x, w1, acc[i][1]);
                }
            }
            for (int i = 0; i < 4; i++)
                for (int h = 0; h < 2; h++) _mm256_storeu_ps(ot + (i0 + i) * CHUNK_ROWS + 8 * h, acc[i][h]);
        }
    }
    float total[CHUNK_ROWS];
    _mm256_storeu_ps(total, l[0]);
    _mm256_storeu_ps(total + 8, l[1]);
    rows_end(ot, total, CHUNK_ROWS, t0, n, hq, group, kv, d, out);
}

/* ---- With AVX-512, chosen where the CPU has it: twice the rows (d a multiple of 8). */
#define AVX512 __attribute__((target("avx512f")))

AVX512 static inline __m512 exp16(__m512 x) { /* exp8, sixteen at a time */
    x = _mm512_max_ps(x, _mm512_set1_ps(EXP_MIN));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(EXP_LOG2E)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    x = _mm512_fnmadd_ps(n, _mm512_set1_ps(EXP_LN2_HI), x);
    x = _mm512_fnmadd_ps(n, _mm512_set1_ps(EXP_LN2_LO), x);
    __m512 y = _mm512_set1_ps(exp_poly[0]);
    for (int k = 1; k < 6; k++) y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(exp_poly[k]));
    y = _mm512_fmadd_ps(y, _mm512_mul_ps(x, x), _mm512_add_ps(x, _mm512_set1_ps(1.0f)));
    __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(y, _mm512_castsi512_ps(e));
}

#define WIDE_ROWS 48 /* (query, head) rows of an AVX-512 block: three registers of sixteen */
#define WIDE (WIDE_ROWS / 16)

/* attend_rows for WIDE_ROWS rows: each broadcast key or value element meets three registers
   of rows. With one (sixteen rows) the broadcasts, which take a vector pipe here as the FMAs
   do, held the FMAs to ~60% of their rate, as in the AVX2 code; with three, ~75%. */
AVX512 static void attend_rows_avx512(const float *q, const float *sink_q, const float *keys,
                                      const float *values, int64_t k_head, int64_t k_row,
                                      int64_t v_head, int64_t v_row, int64_t first, int64_t start,
                                      int64_t t0, int64_t n, int64_t window, int64_t hq,
                                      int64_t group, int64_t kv, int64_t d, float scale,
                                      float *out) {
    float qt[d * WIDE_ROWS], ot[d * WIDE_ROWS], pos[WIDE_ROWS], sink[WIDE_ROWS];
    float score[CHUNK_KEYS * WIDE_ROWS];
    int64_t last, from = rows_begin(q, sink_q, first, start, t0, n, window, hq, group, kv, d,
                                    scale, WIDE_ROWS, qt, pos, sink, &last);
    __m512 m[WIDE], l[WIDE], row_pos[WIDE];
    for (int h = 0; h < WIDE; h++) {
        m[h] = _mm512_loadu_ps(sink + 16 * h);
        l[h] = _mm512_set1_ps(1.0f); /* the sink's own weight, e^(sink - m) */
        row_pos[h] = _mm512_loadu_ps(pos + 16 * h);
    }
    for (int64_t i = 0; i < d * WIDE_ROWS; i++) ot[i] = 0.0f;
    for (int64_t b = from; b <= last; b += CHUNK_KEYS) {
        int64_t count = last - b + 1 < CHUNK_KEYS ? last - b + 1 : CHUNK_KEYS;
        __m512 top[WIDE];
        for (int h = 0; h < WIDE; h++) top[h] = m[h];
        for (int64_t j = 0; j < count; j++) { /* scores, masked to -inf outside each row's view */
            const float *k = keys + kv * k_head + (b + j - first + 1) * k_row;
            __m512 s[2][WIDE];
            for (int c = 0; c < 2; c++)
                for (int h = 0; h < WIDE; h++) s[c][h] = _mm512_setzero_ps();
            for (int64_t i = 0; i < d; i += 2)
                for (int c = 0; c < 2; c++) {
                    __m512 e = _mm512_set1_ps(k[i + c]);
                    for (int h = 0; h < WIDE; h++)
                        s[c][h] = _mm512_fmadd_ps(e, _mm512_loadu_ps(qt + (i + c) * WIDE_ROWS + 16 * h), s[c][h]);
                }
            __m512 p = _mm512_set1_ps((float)(b + j));
            for (int h = 0; h < WIDE; h++) {
                __m512 sc = _mm512_add_ps(s[0][h], s[1][h]);
                __mmask16 seen = _mm512_cmp_ps_mask(p, row_pos[h], _CMP_LE_OQ);
                if (window)
                    seen &= _mm512_cmp_ps_mask(p, _mm512_sub_ps(row_pos[h], _mm512_set1_ps((float)window)), _CMP_GT_OQ);
                sc = _mm512_mask_blend_ps(seen, _mm512_set1_ps(-INFINITY), sc);
                top[h] = _mm512_max_ps(top[h], sc);
                _mm512_storeu_ps(score + j * WIDE_ROWS + 16 * h, sc);
            }
        }
        for (int h = 0; h < WIDE; h++) { /* rescale what came before to the new maximum */
            __m512 alpha = exp16(_mm512_sub_ps(m[h], top[h]));
            l[h] = _mm512_mul_ps(l[h], alpha);
            for (int64_t i = 0; i < d; i++)
                _mm512_storeu_ps(ot + i * WIDE_ROWS + 16 * h, _mm512_mul_ps(_mm512_loadu_ps(ot + i * WIDE_ROWS + 16 * h), alpha));
            m[h] = top[h];
        }
        for (int64_t j = 0; j < count; j++) /* weights in place of the scores (0 where masked) */
            for (int h = 0; h < WIDE; h++) {
                __m512 sc = _mm512_loadu_ps(score + j * WIDE_ROWS + 16 * h);
                __mmask16 live = _mm512_cmp_ps_mask(sc, _mm512_set1_ps(-INFINITY), _CMP_NEQ_OQ);
                __m512 w = _mm512_maskz_mov_ps(live, exp16(_mm512_sub_ps(sc, m[h])));
                _mm512_storeu_ps(score + j * WIDE_ROWS + 16 * h, w);
                l[h] = _mm512_add_ps(l[h], w);
            }
        for (int64_t i0 = 0; i0 < d; i0 += 8) { /* eight output dims of every row at a time */
            __m512 acc[8][WIDE];
            for (int i = 0; i < 8; i++)
                for (int h = 0; h < WIDE; h++) acc[i][h] = _mm512_loadu_ps(ot + (i0 + i) * WIDE_ROWS + 16 * h);
            for (int64_t j = 0; j < count; j++) {
                const float *v = values + kv * v_head + (b + j - first + 1) * v_row + i0;
                __m512 w[WIDE];
                for (int h = 0; h < WIDE; h++) w[h] = _mm512_loadu_ps(score + j * WIDE_ROWS + 16 * h);
                for (int i = 0; i < 8; i++) {
                    __m512 x = _mm512_set1_ps(v[i]);
                    for (int h = 0; h < WIDE; h++) acc[i][h] = _mm512_fmadd_ps(x, w[h], acc[i][h]);
                }
            }
            for (int i = 0; i < 8; i++)
                for (int h = 0; h < WIDE; h++) _mm512_storeu_ps(ot + (i0 + i) * WIDE_ROWS + 16 * h, acc[i][h]);
        }
    }
    float total[WIDE_ROWS];
    for (int h = 0; h < WIDE; h++) _mm512_storeu_ps(total + 16 * h, l[h]);
    rows_end(ot, total, WIDE_ROWS, t0, n, hq, group, kv, d, out);
}

/* A prefill chunk's attention: q [n, hq, d] (rotated) for positions start..start+n-1, against
   keys [hkv, S, d + 1] and values [hkv, S, d] (fp32, strides in floats: k_head, k_row, v_head,
   v_row) holding the sink at index 0 and positions first.. after it, each query seeing the
   keys at or before it (and within `window` of it, when window > 0); out [n, hq, d]. The
   query heads per key head, `group`, must divide 16 (a block of rows is two registers of
   eight, or three of sixteen). Threads take blocks of rows. */
void attend_chunk(const float *q, const float *sink_q, const float *keys, const float *values,
                  int64_t k_head, int64_t k_row, int64_t v_head, int64_t v_row, int64_t first,
                  int64_t start, int64_t n, int64_t window, int64_t hq, int64_t hkv, int64_t d,
                  float scale, float *out, int avx512, int threads) {
    int wide = avx512 && d % 8 == 0;
    int64_t group = hq / hkv, per_block = (wide ? WIDE_ROWS : CHUNK_ROWS) / group;
    int64_t blocks = (n + per_block - 1) / per_block;
    void (*rows)(const float *, const float *, const float *, const float *, int64_t, int64_t,
                 int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                 int64_t, int64_t, int64_t, float, float *) =
        wide ? attend_rows_avx512 : attend_rows;
    #pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
    for (int64_t c = 0; c < hkv * blocks; c++)
        rows(q, sink_q, keys, values, k_head, k_row, v_head, v_row, first, start,
             (c % blocks) * per_block, n, window, hq, group, c / blocks, d, scale, out);
}
