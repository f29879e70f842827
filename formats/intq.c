/* The integer group-quantized layer that AWQ, GPTQ, compressed-tensors
 * pack-quantized and Marlin decode to (include/ra/quant.h): allocation,
 * validation, the exact dequantizer, the matmul, and the RTN group loop that
 * each format's scale/zero rule plugs into. */
#include <stdlib.h>
#include <string.h>

#include "ra/quant.h"
#include "ra/util.h"

ra_status ra_intq_alloc(ra_intq *q, uint32_t rows, uint32_t cols, uint32_t bits, uint32_t group_size,
                        uint32_t n_groups, bool with_g_idx)
{
    memset(q, 0, sizeof *q);
    if (bits != 4 && bits != 8) return ra_fail(RA_ERR_UNSUPPORTED, "integer weights of %u bits", bits);
    if (!rows || !cols || !group_size || !n_groups) return ra_fail(RA_ERR_FORMAT, "empty quantized layer");
    *q = (ra_intq){.rows = rows, .cols = cols, .bits = bits, .group_size = group_size, .n_groups = n_groups};
    ra_status s = ra_calloc(&q->codes, (size_t)rows * cols, 1);
    if (s == RA_OK) s = ra_calloc(&q->zeros, (size_t)rows * n_groups, sizeof *q->zeros);
    if (s == RA_OK) s = ra_calloc(&q->scales, (size_t)rows * n_groups, sizeof *q->scales);
    if (s == RA_OK && with_g_idx) s = ra_calloc(&q->g_idx, cols, sizeof *q->g_idx);
    if (s != RA_OK) ra_intq_free(q);
    return s;
}

void ra_intq_free(ra_intq *q)
{
    free(q->codes);
    free(q->zeros);
    free(q->scales);
    free(q->g_idx);
    memset(q, 0, sizeof *q);
}

ra_status ra_intq_check(const ra_intq *q, const char *fmt)
{
    const uint32_t top = 1u << q->bits;
    for (size_t i = 0; i < (size_t)q->rows * q->cols; i++)
        if (q->codes[i] >= top) return ra_fail(RA_ERR_FORMAT, "%s: code %u of %u bits", fmt, q->codes[i], q->bits);
    for (size_t i = 0; i < (size_t)q->rows * q->n_groups; i++) {
        if (q->zeros[i] > top) return ra_fail(RA_ERR_FORMAT, "%s: zero point %u of %u bits", fmt, q->zeros[i], q->bits);
        if (!isfinite(q->scales[i])) return ra_fail(RA_ERR_FORMAT, "%s: scale %zu is %g", fmt, i, (double)q->scales[i]);
    }
    if (!q->g_idx && (uint64_t)(q->cols - 1) / q->group_size >= q->n_groups)
        return ra_fail(RA_ERR_FORMAT, "%s: %u columns in groups of %u need more than %u groups", fmt, q->cols,
                       q->group_size, q->n_groups);
    for (uint32_t k = 0; q->g_idx && k < q->cols; k++)
        if (q->g_idx[k] < 0 || (uint32_t)q->g_idx[k] >= q->n_groups)
            return ra_fail(RA_ERR_FORMAT, "%s: g_idx[%u] = %d is outside [0, %u)", fmt, k, q->g_idx[k], q->n_groups);
    return RA_OK;
}

void ra_intq_dequantize_rows(const ra_intq *q, uint32_t r0, uint32_t r1, float *out)
{
    for (uint32_t r = r0; r < r1; r++) {
        const uint8_t *u = q->codes + (size_t)r * q->cols;
        const uint16_t *z = q->zeros + (size_t)r * q->n_groups;
        const float *s = q->scales + (size_t)r * q->n_groups;
        float *o = out + (size_t)(r - r0) * q->cols;
        for (uint32_t k = 0; k < q->cols; k++) {
            uint32_t g = ra_intq_group(q, k);
            o[k] = (float)((int32_t)u[k] - (int32_t)z[g]) * s[g];
        }
    }
}

static void intq_rows(const void *layer, uint32_t r0, uint32_t r1, float *out) { ra_intq_dequantize_rows(layer, r0, r1, out); }

ra_status ra_intq_dequantize(const ra_intq *q, float **out) { return ra_qlinear_dequantize(q, q->rows, q->cols, intq_rows, out); }

ra_status ra_intq_matmul(ra_pool *p, const ra_intq *q, const float *x, uint32_t n, float *y)
{
    return ra_qlinear_matmul(p, q, q->rows, q->cols, intq_rows, x, n, y);
}

/* perm must be a permutation of [0, cols). */
static ra_status check_perm(const int32_t *perm, uint32_t cols)
{
    uint8_t *seen = NULL;
    RA_TRY(ra_calloc(&seen, cols, 1));
    ra_status s = RA_OK;
    for (uint32_t i = 0; i < cols && s == RA_OK; i++) {
        if (perm[i] < 0 || (uint32_t)perm[i] >= cols || seen[perm[i]])
            s = ra_fail(RA_ERR_USAGE, "act-order permutation: entry %u (%d) is out of range or repeated", i, perm[i]);
        else seen[perm[i]] = 1;
    }
    free(seen);
    return s;
}

/* The column at position i of the quantization order. */
static inline uint32_t column_at(const int32_t *perm, uint32_t i) { return perm ? (uint32_t)perm[i] : i; }

ra_status ra_intq_quantize(const float *w, uint32_t rows, uint32_t cols, const ra_intq_params *p, ra_intq_group_rule rule,
                           ra_intq *out)
{
    const uint32_t group_size = p->group_size && p->group_size < cols ? p->group_size : cols;
    const int32_t *perm = p->perm;
    RA_TRY(ra_check_finite("quantize", w, (size_t)rows * cols));
    if (perm) RA_TRY(check_perm(perm, cols));
    const uint32_t n_groups = (cols + group_size - 1) / group_size;
    RA_TRY(ra_intq_alloc(out, rows, cols, p->bits, group_size, n_groups, perm != NULL));
    out->scale_dtype = p->scale_dtype;
    for (uint32_t i = 0; perm && i < cols; i++) out->g_idx[perm[i]] = (int32_t)(i / group_size);
    float *vals = NULL;
    uint8_t *codes = NULL;
    ra_status s = ra_calloc(&vals, group_size, sizeof *vals);
    if (s == RA_OK) s = ra_calloc(&codes, group_size, 1);
    for (uint32_t r = 0; r < rows && s == RA_OK; r++) {
        const float *row = w + (size_t)r * cols;
        uint8_t *row_codes = out->codes + (size_t)r * cols;
        for (uint32_t g = 0; g < n_groups && s == RA_OK; g++) {
            uint32_t i0 = g * group_size, n = cols - i0 < group_size ? cols - i0 : group_size;
            for (uint32_t i = 0; i < n; i++) vals[i] = row[column_at(perm, i0 + i)];
            size_t gi = (size_t)r * n_groups + g;
            s = rule(vals, n, p, codes, &out->scales[gi], &out->zeros[gi]);
            for (uint32_t i = 0; s == RA_OK && i < n; i++) row_codes[column_at(perm, i0 + i)] = codes[i];
        }
    }
    free(vals);
    free(codes);
    if (s != RA_OK) ra_intq_free(out);
    return s;
}
