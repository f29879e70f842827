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
 * order, so nothing depends on the batch, the tile or the thread. */
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
} act_block;

static void quantize_act(const float *x, uint32_t n, act_block *out)
{
    for (uint32_t b = 0; b < n / QBLOCK; b++) {
        const float *v = x + b * QBLOCK;
        float amax = 0;
        for (int j = 0; j < QBLOCK; j++) amax = fmaxf(amax, fabsf(v[j]));
        float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        int sum = 0;
        for (int j = 0; j < QBLOCK; j++) {
            int q = (int)roundf(v[j] * id);
            out[b].q[j] = (int16_t)q;
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
} matmul_job;

/* K tokens (a compile-time 1 or 4) against one widened row: K independent
 * float chains over the blocks, each in block order. */
static inline void quant_tokens(const int16_t *wq, const float *d, const float *m, uint32_t nb,
                                const act_block *const xb[], float *out, const int K)
{
    float acc[4] = {0};
    for (uint32_t b = 0; b < nb; b++)
        for (int k = 0; k < K; k++) {
            float p = (d[b] * xb[k][b].d) * (float)dot_block(wq + b * QBLOCK, xb[k][b].q);
            acc[k] += m ? p + m[b] * xb[k][b].s : p;
        }
    for (int k = 0; k < K; k++) out[k] = acc[k];
}

/* Rows r0..r1 of a Q4_1 (x = q d + m) or Q8_0 (x = q d) weight: each row's
 * blocks widened to int16 once, then every token. */
static void quant_rows(const matmul_job *j, uint32_t r0, uint32_t r1)
{
    const ra_weight *w = j->w;
    const uint32_t nb = w->cols / QBLOCK;
    const bool q41 = w->type == RA_W_Q4_1;
    int16_t wq[w->cols];
    float d[nb], m[nb], out[4];
    for (uint32_t r = r0; r < r1; r++) {
        const uint8_t *row = w->data + (size_t)r * w->row_bytes;
        for (uint32_t b = 0; b < nb; b++) {
            int16_t *q = wq + b * QBLOCK;
            if (q41) {
                const ra_block_q4_1 *blk = (const ra_block_q4_1 *)row + b;
                d[b] = ra_f16_to_f32(blk->d);
                m[b] = ra_f16_to_f32(blk->m);
                for (int k = 0; k < 16; k++) {
                    q[k] = (int16_t)(blk->qs[k] & 15);
                    q[k + 16] = (int16_t)(blk->qs[k] >> 4);
                }
            } else {
                const ra_block_q8_0 *blk = (const ra_block_q8_0 *)row + b;
                d[b] = ra_f16_to_f32(blk->d);
                for (int k = 0; k < QBLOCK; k++) q[k] = blk->qs[k];
            }
        }
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

static void matmul_task(void *ctx, uint32_t task)
{
    const matmul_job *j = ctx;
    const ra_weight *w = j->w;
    uint32_t r0 = task * ROWS_PER_TASK, r1 = r0 + ROWS_PER_TASK;
    if (r1 > w->rows) r1 = w->rows;
    if (w->type == RA_W_F32 || w->type == RA_W_BF16) float_rows(w, w->type == RA_W_BF16, j->x, j->n, j->y, r0, r1);
    else quant_rows(j, r0, r1);
}

ra_status ra_cpu_matmul(ra_pool *p, const ra_weight *w, const float *x, uint32_t n, float *y)
{
    if (w->type == RA_W_QUANT) return ra_qlayer_matmul(p, w->q, x, n, y); /* the format's own order */
    matmul_job j = {w, x, NULL, n, y};
    act_block *xq = NULL;
    if (w->type == RA_W_Q4_1 || w->type == RA_W_Q8_0) {
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
