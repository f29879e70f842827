/* CPU matrix kernels, one per weight type. y[t][r] = W[r,:] . x[t,:].
 *
 * The reduction order is part of the result, so it is written out.
 * Float dot of n elements: 8 running sums, lane k takes the elements
 * i < n8 = n - n % 8 with i % 8 == k, in order, as acc[k] = acc[k] + w[i] * x[i]
 * (a product rounded to float, then a sum: no fused multiply-add); the tail
 * element n8 + j goes to lane j; then s[k] = acc[k] + acc[k + 4] (k < 4),
 * t[k] = s[k] + s[k + 2] (k < 2), result t[0] + t[1].
 * Quantized dots sum each block of 32 exactly in int32 and accumulate blocks
 * left to right in float. Tiles (one row x 4 tokens, 4 rows x 1 token) only
 * choose which outputs are computed together: every output follows the same
 * order, so nothing depends on the batch, the tile or the thread.
 * On x86-64 with AVX2 the block sums of the quantized kernels use byte
 * multiply-adds (exact in int32, like the scalar sums); the float steps are
 * the same expressions, so both paths give the same bits (tests/unit/test_cpu.c
 * checks each path against the scalar evaluation of the order). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3") /* vectorizes the lane loops; float semantics stay strict */
#endif
#include "ra/cpu.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ra/ggml_types.h"
#include "ra/qlayer.h"
#include "ra/util.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>

#include "../cpu_x86.h"
#define CPU_X86 1
#define TARGET_AVX2 __attribute__((target("avx2,f16c"))) /* no fma: every sum stays a rounded add */
#endif

#define ROWS_PER_TASK 16
#define QBLOCK 32

/* Four floats in a register on every target (SSE2, NEON); GCC's generic
 * vectors keep IEEE semantics lane by lane. */
typedef float v4 __attribute__((vector_size(16)));
typedef uint32_t u4 __attribute__((vector_size(16)));
typedef uint16_t h4 __attribute__((vector_size(8)));

static inline v4 load4(const float *p)
{
    v4 v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Four weights at element i: float32, or bfloat16 widened exactly (bits << 16). */
static inline v4 loadw(const void *w, uint32_t i, bool bf16)
{
    if (!bf16) return load4((const float *)w + i);
    h4 h;
    memcpy(&h, (const uint16_t *)w + i, sizeof h);
    u4 u = __builtin_convertvector(h, u4) << 16;
    v4 v;
    memcpy(&v, &u, sizeof v);
    return v;
}

static inline float w_at(const void *w, uint32_t i, bool bf16)
{
    return bf16 ? ra_bf16_to_f32(((const uint16_t *)w)[i]) : ((const float *)w)[i];
}

/* The 8 lanes of one dot product as two vectors: lanes 0-3 and 4-7. */
typedef struct {
    v4 lo, hi;
} lanes8;

static inline void lanes_step(lanes8 *a, v4 wlo, v4 whi, const float *x)
{
    a->lo = a->lo + wlo * load4(x);
    a->hi = a->hi + whi * load4(x + 4);
}

/* Tail elements into lanes 0.., then the fixed tree. */
static inline float lanes_finish(lanes8 a, const void *w, bool bf16, const float *x, uint32_t n8, uint32_t n)
{
    float l[8];
    memcpy(l, &a.lo, 16);
    memcpy(l + 4, &a.hi, 16);
    for (uint32_t i = n8; i < n; i++) l[i - n8] = l[i - n8] + w_at(w, i, bf16) * x[i];
    float s0 = l[0] + l[4], s1 = l[1] + l[5], s2 = l[2] + l[6], s3 = l[3] + l[7];
    return (s0 + s2) + (s1 + s3);
}

/* One weight row against four token rows. */
static inline void dot_1x4(const void *w, bool bf16, const float *const x[4], uint32_t n, float out[4])
{
    lanes8 a[4] = {0};
    const uint32_t n8 = n & ~7u;
    for (uint32_t i = 0; i < n8; i += 8) {
        v4 lo = loadw(w, i, bf16), hi = loadw(w, i + 4, bf16);
        for (int k = 0; k < 4; k++) lanes_step(&a[k], lo, hi, x[k] + i);
    }
    for (int k = 0; k < 4; k++) out[k] = lanes_finish(a[k], w, bf16, x[k], n8, n);
}

/* Four weight rows against one token row. */
static inline void dot_4x1(const void *const w[4], bool bf16, const float *x, uint32_t n, float out[4])
{
    lanes8 a[4] = {0};
    const uint32_t n8 = n & ~7u;
    for (uint32_t i = 0; i < n8; i += 8)
        for (int k = 0; k < 4; k++) lanes_step(&a[k], loadw(w[k], i, bf16), loadw(w[k], i + 4, bf16), x + i);
    for (int k = 0; k < 4; k++) out[k] = lanes_finish(a[k], w[k], bf16, x, n8, n);
}

/* Rows r0..r1 of a float weight against every token: tokens in fours, then
 * the leftover tokens with rows in fours (a short last group repeats its
 * first row and drops the extra results). */
static inline void float_rows(const ra_weight *w, bool bf16, const float *x, uint32_t nt, float *y, uint32_t r0, uint32_t r1)
{
    const uint32_t cols = w->cols, t4 = nt & ~3u;
    float out[4];
    for (uint32_t r = r0; r < r1; r++) {
        const void *wr = w->data + (size_t)r * w->row_bytes;
        for (uint32_t t = 0; t < t4; t += 4) {
            const float *xs[4] = {x + (size_t)t * cols, x + (size_t)(t + 1) * cols, x + (size_t)(t + 2) * cols,
                                  x + (size_t)(t + 3) * cols};
            dot_1x4(wr, bf16, xs, cols, out);
            for (int k = 0; k < 4; k++) y[(size_t)(t + k) * w->rows + r] = out[k];
        }
    }
    for (uint32_t t = t4; t < nt; t++)
        for (uint32_t r = r0; r < r1; r += 4) {
            uint32_t m = r1 - r < 4 ? r1 - r : 4;
            const void *ws[4];
            for (uint32_t k = 0; k < 4; k++) ws[k] = w->data + (size_t)(r + (k < m ? k : 0)) * w->row_bytes;
            dot_4x1(ws, bf16, x + (size_t)t * cols, cols, out);
            for (uint32_t k = 0; k < m; k++) y[(size_t)t * w->rows + r + k] = out[k];
        }
}

/* Activations quantized per block of 32 for the integer kernels, as ggml's
 * CPU backend does (its Q8_1 / Q8_0 activation blocks): d = max|x| / 127,
 * q = round(x / d), s = d * sum(q). */
typedef struct {
    float d, s;
    int16_t q[QBLOCK]; /* int8 values, stored wide so the block dot compiles to pmaddwd / smlal */
    int8_t q8[QBLOCK]; /* the same values as bytes, for the AVX2 path */
} act_block;

static void quantize_act(const float *x, uint32_t n, act_block *out)
{
    for (uint32_t b = 0; b < n / QBLOCK; b++) {
        const float *v = x + b * QBLOCK;
        float amax = 0;
        for (int j = 0; j < QBLOCK; j++) amax = fabsf(v[j]) > amax ? fabsf(v[j]) : amax; /* fmaxf, inlined */
        float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        int sum = 0;
        for (int j = 0; j < QBLOCK; j++) {
            int q = (int)roundf(v[j] * id);
            out[b].q[j] = (int16_t)q;
            out[b].q8[j] = (int8_t)q;
            sum += q;
        }
        out[b].d = d;
        out[b].s = d * (float)sum;
    }
}

/* Exact: integer sums do not depend on their order. */
static int32_t dot_block(const int16_t *restrict a, const int16_t *restrict b)
{
    int32_t s = 0;
    for (int j = 0; j < QBLOCK; j++) s += (int32_t)a[j] * (int32_t)b[j];
    return s;
}

typedef struct {
    const ra_weight *w;
    const float *x;
    const act_block *xq; /* quantized activations for the integer kernels */
    uint32_t n;
    float *y;
    ra_cpu_path path;
} matmul_job;

/* One block's step of an output's float chain: the documented order. */
static inline float chain_step(float acc, float d, const float *m, uint32_t b, const act_block *x, int32_t isum)
{
    float p = (d * x->d) * (float)isum;
    return acc + (m ? p + m[b] * x->s : p);
}

/* K tokens (a compile-time 1 or 4) against one widened row: K independent
 * float chains over the blocks, each in block order. */
static inline void quant_tokens(const int16_t *wq, const float *d, const float *m, uint32_t nb,
                                const act_block *const xb[], float *out, const int K)
{
    float acc[4] = {0};
    for (uint32_t b = 0; b < nb; b++)
        for (int k = 0; k < K; k++) acc[k] = chain_step(acc[k], d[b], m, b, &xb[k][b], dot_block(wq + b * QBLOCK, xb[k][b].q));
    for (int k = 0; k < K; k++) out[k] = acc[k];
}

/* Block b of a quantized row: its fp16 scale and min (0 where the type has
 * none) and its quant bytes (16 of nibbles for q4, 32 int8 for q8_0). */
typedef struct {
    uint16_t d, m;
    const uint8_t *qs;
} block_view;

static inline block_view block_at(ra_wtype t, const uint8_t *row, uint32_t b)
{
    if (t == RA_W_Q4_1) {
        const ra_block_q4_1 *k = (const ra_block_q4_1 *)row + b;
        return (block_view){k->d, k->m, k->qs};
    }
    if (t == RA_W_Q4_0) {
        const ra_block_q4_0 *k = (const ra_block_q4_0 *)row + b;
        return (block_view){k->d, 0, k->qs};
    }
    const ra_block_q8_0 *k = (const ra_block_q8_0 *)row + b;
    return (block_view){k->d, 0, (const uint8_t *)k->qs};
}

/* Block b (32 values) of a quantized row as int16 codes q with x = d q (+ m):
 * q4_1 q, d, m; q8_0 q, d; q4_0 q - 8, d; q5_0 q - 16, d; q4_k sub-block b:
 * q, d * sc, -(dmin * m) (both products exact); q6_k: sc * (q - 32) (at most
 * 4096 in magnitude) with the super-block's d. Returns whether m is used. */
static bool decode_block(ra_wtype t, const uint8_t *row, uint32_t b, int16_t q[QBLOCK], float *d, float *m)
{
    *m = 0;
    switch (t) {
    case RA_W_Q5_0: {
        const ra_block_q5_0 *k = (const ra_block_q5_0 *)row + b;
        const uint32_t qh = ra_le32(k->qh);
        *d = ra_f16_to_f32(k->d);
        for (int i = 0; i < 16; i++) {
            q[i] = (int16_t)((k->qs[i] & 15) + ((qh >> i & 1) << 4) - 16);
            q[i + 16] = (int16_t)((k->qs[i] >> 4) + ((qh >> (i + 16) & 1) << 4) - 16);
        }
        return false;
    }
    case RA_W_Q4_K: {
        const ra_block_q4_k *k = (const ra_block_q4_k *)row + b / 8;
        const uint32_t j = b % 8;
        uint8_t sc, mn;
        ra_q4_k_scale_min(k->scales, (int)j, &sc, &mn);
        *d = ra_f16_to_f32(k->d) * sc;
        *m = -(ra_f16_to_f32(k->dmin) * mn);
        const uint8_t *qs = k->qs + 32 * (j / 2);
        for (int i = 0; i < QBLOCK; i++) q[i] = (int16_t)(j % 2 ? qs[i] >> 4 : qs[i] & 15);
        return true;
    }
    case RA_W_Q6_K: {
        const ra_block_q6_k *k = (const ra_block_q6_k *)row + b / 8;
        const uint32_t j = b % 8, h = j / 4, c = j % 4; /* half of 128, quarter of it */
        const uint8_t *ql = k->ql + 64 * h + 32 * (c % 2), *qh = k->qh + 32 * h;
        *d = ra_f16_to_f32(k->d);
        for (int i = 0; i < QBLOCK; i++) {
            const int v = ((c < 2 ? ql[i] & 15 : ql[i] >> 4) | ((qh[i] >> (2 * c)) & 3) << 4) - 32;
            q[i] = (int16_t)(k->scales[8 * h + 2 * c + i / 16] * v);
        }
        return false;
    }
    default: {
        const block_view v = block_at(t, row, b);
        *d = ra_f16_to_f32(v.d);
        *m = ra_f16_to_f32(v.m);
        if (t == RA_W_Q8_0) {
            for (int k = 0; k < QBLOCK; k++) q[k] = (int8_t)v.qs[k];
            return false;
        }
        const int off = t == RA_W_Q4_1 ? 0 : 8;
        for (int k = 0; k < 16; k++) {
            q[k] = (int16_t)((v.qs[k] & 15) - off);
            q[k + 16] = (int16_t)((v.qs[k] >> 4) - off);
        }
        return t == RA_W_Q4_1;
    }
    }
}

/* Rows r0..r1 of a quantized weight: each row's blocks widened to int16 once
 * (decode_block), then every token. */
static void quant_rows(const matmul_job *j, uint32_t r0, uint32_t r1)
{
    const ra_weight *w = j->w;
    const uint32_t nb = w->cols / QBLOCK;
    int16_t wq[w->cols];
    float d[nb], m[nb], out[4];
    bool q41 = false;
    for (uint32_t r = r0; r < r1; r++) {
        const uint8_t *row = w->data + (size_t)r * w->row_bytes;
        for (uint32_t b = 0; b < nb; b++) q41 = decode_block(w->type, row, b, wq + b * QBLOCK, &d[b], &m[b]);
        uint32_t t = 0;
        for (; t + 4 <= j->n; t += 4) {
            const act_block *xb[4] = {j->xq + (size_t)t * nb, j->xq + (size_t)(t + 1) * nb, j->xq + (size_t)(t + 2) * nb,
                                      j->xq + (size_t)(t + 3) * nb};
            quant_tokens(wq, d, q41 ? m : NULL, nb, xb, out, 4);
            for (int k = 0; k < 4; k++) j->y[(size_t)(t + k) * w->rows + r] = out[k];
        }
        for (; t < j->n; t++) {
            const act_block *xb[1] = {j->xq + (size_t)t * nb};
            quant_tokens(wq, d, q41 ? m : NULL, nb, xb, out, 1);
            j->y[(size_t)t * w->rows + r] = out[0];
        }
    }
}

#ifdef CPU_X86
/* The exact int32 sum of one block: unsigned weight bytes (q4_1) or signed
 * ones (q8_0, q4_0: signs moved onto the activations) times int8
 * activations, pairs to int16 (no saturation: |w| <= 128, |x| <= 127), pairs
 * to int32, then the 8 lanes. */
TARGET_AVX2 static inline __m256i block_lanes_avx2(__m256i a, const int8_t *x, bool is_unsigned)
{
    __m256i b = _mm256_loadu_si256((const __m256i *)x);
    if (!is_unsigned) {
        b = _mm256_sign_epi8(b, a);
        a = _mm256_sign_epi8(a, a);
    }
    return _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), _mm256_set1_epi16(1));
}

/* The block sums of 4 tokens at once (lanes of all four added in one
 * horizontal tree; integer sums, so the tree does not change them). */
TARGET_AVX2 static inline __m128i block_isums_avx2(const uint8_t *w, const act_block *const x[4], bool is_unsigned)
{
    const __m256i a = _mm256_loadu_si256((const __m256i *)w);
    const __m256i s0 = block_lanes_avx2(a, x[0]->q8, is_unsigned), s1 = block_lanes_avx2(a, x[1]->q8, is_unsigned);
    const __m256i s2 = block_lanes_avx2(a, x[2]->q8, is_unsigned), s3 = block_lanes_avx2(a, x[3]->q8, is_unsigned);
    const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(s0, s1), _mm256_hadd_epi32(s2, s3));
    return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

/* The block sums of 8 consecutive blocks of one token, in block order. */
TARGET_AVX2 static inline __m256i block_isums8_avx2(const uint8_t *w, const act_block *x, bool is_unsigned)
{
    __m256i s[8];
    for (int k = 0; k < 8; k++)
        s[k] = block_lanes_avx2(_mm256_loadu_si256((const __m256i *)(w + k * QBLOCK)), x[k].q8, is_unsigned);
    /* Per 128-bit half: g0 = partial sums of blocks 0-3, g1 of blocks 4-7. */
    const __m256i g0 = _mm256_hadd_epi32(_mm256_hadd_epi32(s[0], s[1]), _mm256_hadd_epi32(s[2], s[3]));
    const __m256i g1 = _mm256_hadd_epi32(_mm256_hadd_epi32(s[4], s[5]), _mm256_hadd_epi32(s[6], s[7]));
    return _mm256_add_epi32(_mm256_permute2x128_si256(g0, g1, 0x20), _mm256_permute2x128_si256(g0, g1, 0x31));
}

TARGET_AVX2 static inline int32_t block_isum_avx2(const uint8_t *w, const act_block *x, bool is_unsigned)
{
    const __m256i s = block_lanes_avx2(_mm256_loadu_si256((const __m256i *)w), x->q8, is_unsigned);
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    h = _mm_add_epi32(h, _mm_unpackhi_epi64(h, h));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 1));
    return _mm_cvtsi128_si32(h);
}

/* quant_rows with the row's blocks as bytes and vector block sums: q4_1 and
 * q4_k codes unsigned (with a min), q8_0, q4_0 and q5_0 signed; q6_k's
 * scaled codes do not fit a byte and take quant_rows. */
TARGET_AVX2 static void quant_rows_avx2(const matmul_job *j, uint32_t r0, uint32_t r1)
{
    const ra_weight *w = j->w;
    const uint32_t nb = w->cols / QBLOCK;
    const bool q41 = w->type == RA_W_Q4_1 || w->type == RA_W_Q4_K; /* unsigned codes and a min */
    uint8_t wq[w->cols];
    float d[nb], m[nb], acc[4];
    for (uint32_t r = r0; r < r1; r++) {
        const uint8_t *row = w->data + (size_t)r * w->row_bytes;
        for (uint32_t b = 0; b < nb; b++) {
            uint8_t *q = wq + b * QBLOCK;
            if (w->type == RA_W_Q5_0) {
                const ra_block_q5_0 *k = (const ra_block_q5_0 *)row + b;
                d[b] = _cvtsh_ss(k->d);
                m[b] = 0;
                _mm256_storeu_si256((__m256i *)q, ra_q5_0_codes_avx2(k));
                continue;
            }
            if (w->type == RA_W_Q4_K) { /* d and m as decode_block makes them, the nibbles as bytes */
                const ra_block_q4_k *k = (const ra_block_q4_k *)row + b / 8;
                uint8_t sc, mn;
                ra_q4_k_scale_min(k->scales, (int)(b % 8), &sc, &mn);
                d[b] = _cvtsh_ss(k->d) * sc;
                m[b] = -(_cvtsh_ss(k->dmin) * mn);
                const __m256i t = _mm256_loadu_si256((const __m256i *)(k->qs + 32 * (b % 8 / 2)));
                _mm256_storeu_si256((__m256i *)q, _mm256_and_si256(b % 2 ? _mm256_srli_epi16(t, 4) : t, _mm256_set1_epi8(15)));
                continue;
            }
            const block_view v = block_at(w->type, row, b);
            d[b] = _cvtsh_ss(v.d);
            m[b] = _cvtsh_ss(v.m);
            if (w->type == RA_W_Q8_0) {
                memcpy(q, v.qs, QBLOCK);
                continue;
            }
            const __m128i t = _mm_loadu_si128((const __m128i *)v.qs), mask = _mm_set1_epi8(15);
            const __m128i off = _mm_set1_epi8(q41 ? 0 : 8);
            _mm_storeu_si128((__m128i *)q, _mm_sub_epi8(_mm_and_si128(t, mask), off));
            _mm_storeu_si128((__m128i *)(q + 16), _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(t, 4), mask), off));
        }
        /* Tokens in fours, their four float chains in the lanes of one vector
         * (chain_step's operations, lane by lane); a short last group repeats
         * its first token and drops the extra results; one token alone is scalar. */
        for (uint32_t t = 0; t < j->n; t += 4) {
            const uint32_t K = j->n - t >= 4 ? 4 : j->n - t;
            const act_block *x[4];
            if (K == 1) {
                /* Eight blocks' terms in the lanes of one vector (chain_step's
                 * operations lane by lane), then added to the chain in order. */
                const act_block *xt = j->xq + (size_t)t * nb;
                float a = 0, p8[8];
                uint32_t b = 0;
                for (; b + 8 <= nb; b += 8) {
                    const act_block *xb = xt + b;
                    const __m256 xd = _mm256_set_ps(xb[7].d, xb[6].d, xb[5].d, xb[4].d, xb[3].d, xb[2].d, xb[1].d, xb[0].d);
                    __m256 p = _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(d + b), xd),
                                             _mm256_cvtepi32_ps(block_isums8_avx2(wq + b * QBLOCK, xb, q41)));
                    if (q41) {
                        const __m256 xs = _mm256_set_ps(xb[7].s, xb[6].s, xb[5].s, xb[4].s, xb[3].s, xb[2].s, xb[1].s, xb[0].s);
                        p = _mm256_add_ps(p, _mm256_mul_ps(_mm256_loadu_ps(m + b), xs));
                    }
                    _mm256_storeu_ps(p8, p);
                    for (int k = 0; k < 8; k++) a = a + p8[k];
                }
                for (; b < nb; b++) a = chain_step(a, d[b], q41 ? m : NULL, b, xt + b, block_isum_avx2(wq + b * QBLOCK, xt + b, q41));
                j->y[(size_t)t * w->rows + r] = a;
                continue;
            }
            __m128 acc4 = _mm_setzero_ps();
            for (uint32_t b = 0; b < nb; b++) {
                for (uint32_t k = 0; k < 4; k++) x[k] = j->xq + (size_t)(t + (k < K ? k : 0)) * nb + b;
                const __m128 xd = _mm_set_ps(x[3]->d, x[2]->d, x[1]->d, x[0]->d);
                __m128 p = _mm_mul_ps(_mm_mul_ps(_mm_set1_ps(d[b]), xd), _mm_cvtepi32_ps(block_isums_avx2(wq + b * QBLOCK, x, q41)));
                if (q41) p = _mm_add_ps(p, _mm_mul_ps(_mm_set1_ps(m[b]), _mm_set_ps(x[3]->s, x[2]->s, x[1]->s, x[0]->s)));
                acc4 = _mm_add_ps(acc4, p);
            }
            _mm_storeu_ps(acc, acc4);
            for (uint32_t k = 0; k < K; k++) j->y[(size_t)(t + k) * w->rows + r] = acc[k];
        }
    }
}
#endif

ra_cpu_path ra_cpu_best_path(void)
{
#ifdef CPU_X86
    __builtin_cpu_init();
    unsigned a, b, c, d; /* F16C from cpuid: clang's __builtin_cpu_supports does not know "f16c" */
    const bool f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c) return RA_CPU_PATH_AVX2;
#endif
    return RA_CPU_PATH_SCALAR;
}

static void matmul_task(void *ctx, uint32_t task)
{
    const matmul_job *j = ctx;
    const ra_weight *w = j->w;
    uint32_t r0 = task * ROWS_PER_TASK, r1 = r0 + ROWS_PER_TASK;
    if (r1 > w->rows) r1 = w->rows;
    if (w->type == RA_W_F32 || w->type == RA_W_BF16) float_rows(w, w->type == RA_W_BF16, j->x, j->n, j->y, r0, r1);
#ifdef CPU_X86
    /* q6_k takes the scalar code on every path (its bits are the order's by construction). */
    else if (j->path == RA_CPU_PATH_AVX2 && w->type != RA_W_Q6_K) quant_rows_avx2(j, r0, r1);
#endif
    else quant_rows(j, r0, r1);
}

ra_status ra_cpu_matmul(ra_pool *p, const ra_weight *w, const float *x, uint32_t n, float *y)
{
    return ra_cpu_matmul_path(p, ra_cpu_best_path(), w, x, n, y);
}

ra_status ra_cpu_matmul_path(ra_pool *p, ra_cpu_path path, const ra_weight *w, const float *x, uint32_t n, float *y)
{
    if (w->type == RA_W_QUANT) return ra_qlayer_matmul(p, w->q, x, n, y); /* the format's own order */
    matmul_job j = {w, x, NULL, n, y, path};
    act_block *xq = NULL;
    if (w->type != RA_W_F32 && w->type != RA_W_BF16) {
        if (w->cols % QBLOCK) return ra_fail(RA_ERR_INTERNAL, "quantized weight with %u columns", w->cols);
        uint32_t nb = w->cols / QBLOCK;
        RA_TRY(ra_calloc(&xq, (size_t)n * nb, sizeof *xq));
        for (uint32_t t = 0; t < n; t++) quantize_act(x + (size_t)t * w->cols, w->cols, xq + (size_t)t * nb);
        j.xq = xq;
    }
    ra_pool_for(p, (w->rows + ROWS_PER_TASK - 1) / ROWS_PER_TASK, matmul_task, &j);
    free(xq);
    return RA_OK;
}
