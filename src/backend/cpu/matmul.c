/* CPU matrix kernels, one per weight type. y[t][r] = W[r,:] . x[t,:].
 *
 * The reduction order is part of the result, so it is written out: float
 * dots keep 16 running sums (lane k takes elements i with i % 16 == k) and
 * add them in a fixed tree; quantized dots sum each block of 32 exactly in
 * int32 and accumulate blocks left to right. Nothing depends on the number
 * of rows in the batch or on the thread that computes a row. */
#pragma GCC optimize("O3") /* lets GCC vectorize the lane loops; float semantics stay strict */
#include "ra/cpu.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ra/ggml_types.h"
#include "ra/util.h"

#define LANES 16
#define ROWS_PER_TASK 16
#define QBLOCK 32

static float dot_f32(const float *restrict w, const float *restrict x, uint32_t n)
{
    float acc[LANES] = {0};
    uint32_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int k = 0; k < LANES; k++) acc[k] += w[i + k] * x[i + k];
    for (int k = 0; i < n; i++, k++) acc[k] += w[i] * x[i];
    for (int width = LANES / 2; width > 0; width /= 2)
        for (int k = 0; k < width; k++) acc[k] += acc[k + width];
    return acc[0];
}

/* Activations quantized per block of 32 for the integer kernels, as ggml's
 * CPU backend does (its Q8_1 / Q8_0 activation blocks): d = max|x| / 127,
 * q = round(x / d), s = d * sum(q). */
typedef struct {
    float d, s;
    int8_t q[QBLOCK];
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
            out[b].q[j] = (int8_t)q;
            sum += q;
        }
        out[b].d = d;
        out[b].s = d * (float)sum;
    }
}

static int32_t dot_i8(const int8_t *restrict a, const int8_t *restrict b)
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

static void matmul_task(void *ctx, uint32_t task)
{
    const matmul_job *j = ctx;
    const ra_weight *w = j->w;
    const uint32_t cols = w->cols, nb = cols / QBLOCK;
    uint32_t r0 = task * ROWS_PER_TASK, r1 = r0 + ROWS_PER_TASK;
    if (r1 > w->rows) r1 = w->rows;

    float wf[cols];                 /* a bf16 row widened to float */
    int8_t wq[w->type == RA_W_Q4_1 || w->type == RA_W_Q8_0 ? cols : 1];
    for (uint32_t r = r0; r < r1; r++) {
        const uint8_t *row = w->data + (size_t)r * w->row_bytes;
        switch (w->type) {
        case RA_W_F32:
        case RA_W_BF16: {
            const float *wr = (const float *)row;
            if (w->type == RA_W_BF16) {
                const uint16_t *h = (const uint16_t *)row;
                for (uint32_t c = 0; c < cols; c++) wf[c] = ra_bf16_to_f32(h[c]);
                wr = wf;
            }
            for (uint32_t t = 0; t < j->n; t++) j->y[(size_t)t * w->rows + r] = dot_f32(wr, j->x + (size_t)t * cols, cols);
            break;
        }
        case RA_W_Q4_1: {
            const ra_block_q4_1 *blk = (const ra_block_q4_1 *)row;
            float d[nb], m[nb];
            for (uint32_t b = 0; b < nb; b++) {
                d[b] = ra_f16_to_f32(blk[b].d);
                m[b] = ra_f16_to_f32(blk[b].m);
                for (int k = 0; k < 16; k++) {
                    wq[b * QBLOCK + k] = (int8_t)(blk[b].qs[k] & 15);
                    wq[b * QBLOCK + k + 16] = (int8_t)(blk[b].qs[k] >> 4);
                }
            }
            for (uint32_t t = 0; t < j->n; t++) {
                const act_block *xb = j->xq + (size_t)t * nb;
                float acc = 0;
                for (uint32_t b = 0; b < nb; b++)
                    acc += (d[b] * xb[b].d) * (float)dot_i8(wq + b * QBLOCK, xb[b].q) + m[b] * xb[b].s;
                j->y[(size_t)t * w->rows + r] = acc;
            }
            break;
        }
        case RA_W_Q8_0: {
            const ra_block_q8_0 *blk = (const ra_block_q8_0 *)row;
            float d[nb];
            for (uint32_t b = 0; b < nb; b++) {
                d[b] = ra_f16_to_f32(blk[b].d);
                memcpy(wq + b * QBLOCK, blk[b].qs, QBLOCK);
            }
            for (uint32_t t = 0; t < j->n; t++) {
                const act_block *xb = j->xq + (size_t)t * nb;
                float acc = 0;
                for (uint32_t b = 0; b < nb; b++) acc += (d[b] * xb[b].d) * (float)dot_i8(wq + b * QBLOCK, xb[b].q);
                j->y[(size_t)t * w->rows + r] = acc;
            }
            break;
        }
        }
    }
}

ra_status ra_cpu_matmul(ra_pool *p, const ra_weight *w, const float *x, uint32_t n, float *y)
{
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
