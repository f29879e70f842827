/* The quantized linear layer behind RA_W_QUANT weights (include/ra/qlayer.h):
 * one switch per operation over the formats' in-memory forms. */
#include "ra/qlayer.h"

#include <stdlib.h>
#include <string.h>

#include "ra/minifloat.h"
#include "ra/util.h"

uint32_t ra_qlayer_rows(const ra_qlayer *q)
{
    switch (q->kind) {
    case RA_QL_INTQ: return q->u.intq.rows;
    case RA_QL_MARLIN: return q->u.marlin.rows;
    case RA_QL_FP8: return q->u.fp8.rows;
    case RA_QL_NVFP4: return q->u.nvfp4.b.rows;
    case RA_QL_MXFP4: return q->u.mxfp4.rows;
    }
    return 0;
}

uint32_t ra_qlayer_cols(const ra_qlayer *q)
{
    switch (q->kind) {
    case RA_QL_INTQ: return q->u.intq.cols;
    case RA_QL_MARLIN: return q->u.marlin.cols;
    case RA_QL_FP8: return q->u.fp8.cols;
    case RA_QL_NVFP4: return q->u.nvfp4.b.cols;
    case RA_QL_MXFP4: return q->u.mxfp4.cols;
    }
    return 0;
}

/* The cached rows through the float kernel (Marlin: x gathered by perm first). */
static ra_status deq_matmul(ra_pool *p, const ra_qlayer *q, const float *x, uint32_t n, float *y)
{
    const uint32_t rows = ra_qlayer_rows(q), cols = ra_qlayer_cols(q);
    ra_weight w = {.type = RA_W_F32, .rows = rows, .cols = cols, .row_bytes = (size_t)cols * 4, .data = (uint8_t *)q->deq,
                   .borrowed = true};
    const int32_t *perm = q->kind == RA_QL_MARLIN ? q->u.marlin.perm : NULL;
    if (!perm) return ra_cpu_matmul(p, &w, x, n, y);
    float *xg = NULL;
    RA_TRY(ra_calloc(&xg, (size_t)n * cols, sizeof *xg));
    for (uint32_t t = 0; t < n; t++)
        for (uint32_t k = 0; k < cols; k++) xg[(size_t)t * cols + k] = x[(size_t)t * cols + perm[k]];
    ra_status s = ra_cpu_matmul(p, &w, xg, n, y);
    free(xg);
    return s;
}

ra_status ra_qlayer_matmul(ra_pool *p, const ra_qlayer *q, const float *x, uint32_t n, float *y)
{
    if (q->deq && q->kind == RA_QL_FP8 && q->act != RA_FP8_ACT_NONE)
        return ra_fp8_matmul_decoded(p, &q->u.fp8, q->act, q->deq, x, n, y);
    if (q->deq) return deq_matmul(p, q, x, n, y);
    switch (q->kind) {
    case RA_QL_INTQ: return ra_intq_matmul(p, &q->u.intq, x, n, y);
    case RA_QL_MARLIN: return ra_marlin_matmul(p, &q->u.marlin, x, n, y);
    case RA_QL_FP8: return ra_fp8_matmul(p, &q->u.fp8, q->act, x, n, y);
    case RA_QL_NVFP4: return ra_nvfp4_matmul(p, &q->u.nvfp4, x, n, y);
    case RA_QL_MXFP4: return ra_mxfp4_matmul(p, &q->u.mxfp4, x, n, y);
    }
    return ra_fail(RA_ERR_INTERNAL, "unknown quantized layer kind %d", (int)q->kind);
}

/* Marlin dequantizes rows in its own column order (source column perm[k] at
 * k): put them back. */
static ra_status marlin_row(const ra_marlin *m, uint32_t r, float *out)
{
    if (!m->perm) {
        ra_marlin_dequantize_rows(m, r, r + 1, out);
        return RA_OK;
    }
    float *tmp = NULL;
    RA_TRY(ra_calloc(&tmp, m->cols, sizeof *tmp));
    ra_marlin_dequantize_rows(m, r, r + 1, tmp);
    for (uint32_t k = 0; k < m->cols; k++) out[m->perm[k]] = tmp[k];
    free(tmp);
    return RA_OK;
}

ra_status ra_qlayer_row_f32(const ra_qlayer *q, uint32_t r, float *out)
{
    if (r >= ra_qlayer_rows(q)) return ra_fail(RA_ERR_INTERNAL, "row %u of a %u-row quantized layer", r, ra_qlayer_rows(q));
    switch (q->kind) {
    case RA_QL_INTQ: ra_intq_dequantize_rows(&q->u.intq, r, r + 1, out); return RA_OK;
    case RA_QL_MARLIN: return marlin_row(&q->u.marlin, r, out);
    case RA_QL_FP8: ra_fp8_dequantize_rows(&q->u.fp8, r, r + 1, out); return RA_OK;
    case RA_QL_NVFP4: ra_nvfp4_dequantize_rows(&q->u.nvfp4, r, r + 1, out); return RA_OK;
    case RA_QL_MXFP4: ra_mxfp4_dequantize_rows(&q->u.mxfp4, r, r + 1, out); return RA_OK;
    }
    return ra_fail(RA_ERR_INTERNAL, "unknown quantized layer kind %d", (int)q->kind);
}

void ra_qlayer_free(ra_qlayer *q)
{
    free(q->deq);
    switch (q->kind) {
    case RA_QL_INTQ: ra_intq_free(&q->u.intq); break;
    case RA_QL_MARLIN: ra_marlin_free(&q->u.marlin); break;
    case RA_QL_FP8: ra_fp8_free(&q->u.fp8); break;
    case RA_QL_NVFP4: ra_nvfp4_free(&q->u.nvfp4); break;
    case RA_QL_MXFP4: ra_mxfp4_free(&q->u.mxfp4); break;
    }
    memset(q, 0, sizeof *q);
}

/* q->deq: every row in the order its matmul reduces it. */
static ra_status cache_rows(ra_qlayer *q)
{
    const uint32_t rows = ra_qlayer_rows(q), cols = ra_qlayer_cols(q);
    RA_TRY(ra_calloc(&q->deq, (size_t)rows * cols, sizeof *q->deq));
    switch (q->kind) {
    case RA_QL_INTQ: ra_intq_dequantize_rows(&q->u.intq, 0, rows, q->deq); break;
    case RA_QL_MARLIN: ra_marlin_dequantize_rows(&q->u.marlin, 0, rows, q->deq); break;
    case RA_QL_FP8:
        if (q->act == RA_FP8_ACT_NONE) ra_fp8_dequantize_rows(&q->u.fp8, 0, rows, q->deq);
        else for (size_t i = 0; i < (size_t)rows * cols; i++) q->deq[i] = ra_e4m3_to_f32(q->u.fp8.codes[i]);
        break;
    case RA_QL_NVFP4: ra_nvfp4_dequantize_rows(&q->u.nvfp4, 0, rows, q->deq); break;
    case RA_QL_MXFP4: ra_mxfp4_dequantize_rows(&q->u.mxfp4, 0, rows, q->deq); break;
    }
    return RA_OK;
}

ra_status ra_weight_from_qlayer(ra_qlayer *q, ra_weight *out)
{
    memset(out, 0, sizeof *out);
    ra_qlayer *own = NULL;
    ra_status s = cache_rows(q);
    if (s == RA_OK) s = ra_calloc(&own, 1, sizeof *own);
    if (s != RA_OK) {
        ra_qlayer_free(q);
        return s;
    }
    *own = *q;
    memset(q, 0, sizeof *q);
    *out = (ra_weight){.type = RA_W_QUANT, .rows = ra_qlayer_rows(own), .cols = ra_qlayer_cols(own), .q = own};
    return RA_OK;
}
