/* Shared pieces of the quantized formats (include/ra/quant.h): checkpoint
 * tensor sets, scale dtypes, the weight-only matmul and block-scaled layers. */
#include "ra/quant.h"

#include <float.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ra/util.h"

/* ---- Checkpoint tensors ---- */

static const struct {
    const char *name;
    uint32_t size;
} qt_dtypes[] = {
    [RA_QT_I32] = {"I32", 4},   [RA_QT_I64] = {"I64", 8}, [RA_QT_U8] = {"U8", 1},
    [RA_QT_F16] = {"F16", 2},   [RA_QT_BF16] = {"BF16", 2}, [RA_QT_F32] = {"F32", 4},
    [RA_QT_F8_E4M3] = {"F8_E4M3", 1},
};

const char *ra_qt_dtype_name(ra_qt_dtype t) { return qt_dtypes[t].name; }
uint32_t ra_qt_dtype_size(ra_qt_dtype t) { return qt_dtypes[t].size; }

ra_status ra_qt_dtype_parse(const char *name, ra_qt_dtype *out)
{
    for (size_t i = 0; i < sizeof qt_dtypes / sizeof qt_dtypes[0]; i++)
        if (!strcmp(qt_dtypes[i].name, name)) {
            *out = (ra_qt_dtype)i;
            return RA_OK;
        }
    return ra_fail(RA_ERR_UNSUPPORTED, "tensor dtype %s is not used by any quantized format", name);
}

/* Bytes of a shape, failing when the count would overflow. */
static ra_status shape_bytes(const char *suffix, ra_qt_dtype dt, uint32_t n_dims, const uint64_t *shape, uint64_t *bytes)
{
    if (n_dims > 4) return ra_fail(RA_ERR_INTERNAL, "tensor %s: %u dimensions", suffix, n_dims);
    uint64_t n = ra_qt_dtype_size(dt);
    for (uint32_t d = 0; d < n_dims; d++) {
        if (shape[d] && n > UINT64_MAX / shape[d]) return ra_fail(RA_ERR_FORMAT, "tensor %s: size overflows", suffix);
        n *= shape[d];
    }
    *bytes = n;
    return RA_OK;
}

static ra_status add_entry(ra_qtensors *s, const char *suffix, ra_qt_dtype dt, uint32_t n_dims, const uint64_t *shape,
                           ra_qtensor **out)
{
    if (s->n >= RA_QT_MAX) return ra_fail(RA_ERR_INTERNAL, "more than %d tensors in one layer", RA_QT_MAX);
    if (strlen(suffix) >= RA_QT_SUFFIX_MAX) return ra_fail(RA_ERR_INTERNAL, "tensor suffix %s too long", suffix);
    ra_qtensor *t = &s->t[s->n];
    memset(t, 0, sizeof *t);
    strcpy(t->suffix, suffix);
    t->dtype = dt;
    t->n_dims = n_dims;
    for (uint32_t d = 0; d < n_dims; d++) t->shape[d] = shape[d];
    RA_TRY(shape_bytes(suffix, dt, n_dims, shape, &t->nbytes));
    *out = t;
    return RA_OK;
}

ra_status ra_qtensors_add(ra_qtensors *s, const char *suffix, ra_qt_dtype dt, uint32_t n_dims, const uint64_t *shape,
                          uint8_t **data)
{
    ra_qtensor *t;
    RA_TRY(add_entry(s, suffix, dt, n_dims, shape, &t));
    if (t->nbytes > SIZE_MAX) return ra_fail(RA_ERR_NOMEM, "tensor %s too large", suffix);
    RA_TRY(ra_calloc(&t->data, t->nbytes ? t->nbytes : 1, 1));
    t->owned = true;
    s->n++;
    *data = t->data;
    return RA_OK;
}

ra_status ra_qtensors_borrow(ra_qtensors *s, const char *suffix, ra_qt_dtype dt, uint32_t n_dims, const uint64_t *shape,
                             const void *data, uint64_t nbytes)
{
    ra_qtensor *t;
    RA_TRY(add_entry(s, suffix, dt, n_dims, shape, &t));
    if (t->nbytes != nbytes)
        return ra_fail(RA_ERR_FORMAT, "tensor %s: %llu bytes for a shape that needs %llu", suffix,
                       (unsigned long long)nbytes, (unsigned long long)t->nbytes);
    t->data = (uint8_t *)data; /* never written through: borrowed */
    s->n++;
    return RA_OK;
}

const ra_qtensor *ra_qtensors_find(const ra_qtensors *s, const char *suffix)
{
    for (uint32_t i = 0; i < s->n; i++)
        if (!strcmp(s->t[i].suffix, suffix)) return &s->t[i];
    return NULL;
}

void ra_qtensors_free(ra_qtensors *s)
{
    for (uint32_t i = 0; i < s->n; i++)
        if (s->t[i].owned) free(s->t[i].data);
    s->n = 0;
}

static void shape_str(uint32_t n_dims, const uint64_t *shape, char *buf, size_t n)
{
    size_t used = (size_t)snprintf(buf, n, "[");
    for (uint32_t d = 0; d < n_dims && used < n; d++)
        used += (size_t)snprintf(buf + used, n - used, "%s%llu", d ? ", " : "", (unsigned long long)shape[d]);
    if (used < n) snprintf(buf + used, n - used, "]");
}

ra_status ra_qtensors_expect(const ra_qtensors *s, const char *fmt, const char *suffix, ra_qt_dtype dt, uint32_t n_dims,
                             const uint64_t *shape, const ra_qtensor **out)
{
    const ra_qtensor *t = ra_qtensors_find(s, suffix);
    if (!t) return ra_fail(RA_ERR_FORMAT, "%s: tensor %s missing", fmt, suffix);
    if (t->dtype != dt)
        return ra_fail(RA_ERR_FORMAT, "%s: tensor %s is %s, expected %s", fmt, suffix, ra_qt_dtype_name(t->dtype),
                       ra_qt_dtype_name(dt));
    bool same = t->n_dims == n_dims;
    for (uint32_t d = 0; same && d < n_dims; d++) same = t->shape[d] == shape[d];
    uint64_t bytes;
    if (same && (shape_bytes(suffix, dt, n_dims, shape, &bytes) != RA_OK || bytes != t->nbytes))
        return ra_fail(RA_ERR_FORMAT, "%s: tensor %s holds %llu bytes, not what its shape needs", fmt, suffix,
                       (unsigned long long)t->nbytes);
    if (!same) {
        char got[96], want[96];
        shape_str(t->n_dims, t->shape, got, sizeof got);
        shape_str(n_dims, shape, want, sizeof want);
        return ra_fail(RA_ERR_FORMAT, "%s: tensor %s has shape %s, expected %s", fmt, suffix, got, want);
    }
    *out = t;
    return RA_OK;
}

ra_status ra_qtensors_to_st(const ra_qtensors *s, const char *module, ra_st_tensor *out,
                            char (*names)[RA_QT_NAME_MAX])
{
    for (uint32_t i = 0; i < s->n; i++) {
        const ra_qtensor *t = &s->t[i];
        if ((size_t)snprintf(names[i], RA_QT_NAME_MAX, "%s%s", module, t->suffix) >= RA_QT_NAME_MAX)
            return ra_fail(RA_ERR_USAGE, "tensor name %s%s is too long", module, t->suffix);
        out[i] = (ra_st_tensor){.name = names[i], .dtype = ra_qt_dtype_name(t->dtype), .n_dims = t->n_dims,
                                .data = t->data, .nbytes = t->nbytes};
        memcpy(out[i].shape, t->shape, sizeof t->shape);
    }
    return RA_OK;
}

/* ---- Scales ---- */

ra_qt_dtype ra_scale_qt(ra_scale_dtype d)
{
    return d == RA_SCALE_F16 ? RA_QT_F16 : d == RA_SCALE_BF16 ? RA_QT_BF16 : RA_QT_F32;
}

const char *ra_scale_dtype_name(ra_scale_dtype d) { return ra_qt_dtype_name(ra_scale_qt(d)); }

ra_status ra_scale_dtype_of(const ra_qtensor *t, const char *fmt, ra_scale_dtype *out)
{
    switch (t->dtype) {
    case RA_QT_F16: *out = RA_SCALE_F16; return RA_OK;
    case RA_QT_BF16: *out = RA_SCALE_BF16; return RA_OK;
    case RA_QT_F32: *out = RA_SCALE_F32; return RA_OK;
    default:
        return ra_fail(RA_ERR_FORMAT, "%s: tensor %s is %s, expected F16, BF16 or F32", fmt, t->suffix,
                       ra_qt_dtype_name(t->dtype));
    }
}

ra_status ra_scale_round(float s, ra_scale_dtype d, float *out)
{
    float r = s;
    if (d == RA_SCALE_F16) r = ra_f16_to_f32(ra_f32_to_f16(s));
    else if (d == RA_SCALE_BF16) r = ra_bf16_to_f32(ra_f32_to_bf16(s));
    if (!isfinite(r)) return ra_fail(RA_ERR_UNSUPPORTED, "scale %g does not fit in %s", (double)s, ra_scale_dtype_name(d));
    if (r == 0.0f && s > 0.0f) r = d == RA_SCALE_F16 ? 0x1p-24f : d == RA_SCALE_BF16 ? 0x1p-133f : FLT_TRUE_MIN;
    *out = r;
    return RA_OK;
}

void ra_scale_store(uint8_t *dst, size_t i, float v, ra_scale_dtype d)
{
    if (d == RA_SCALE_F32) {
        ra_put_le32(dst + 4 * i, ra_f32_bits(v));
        return;
    }
    uint16_t h = d == RA_SCALE_F16 ? ra_f32_to_f16(v) : ra_f32_to_bf16(v);
    dst[2 * i] = (uint8_t)h;
    dst[2 * i + 1] = (uint8_t)(h >> 8);
}

float ra_scale_load(const uint8_t *src, size_t i, ra_scale_dtype d)
{
    if (d == RA_SCALE_F32) return ra_bits_f32(ra_le32(src + 4 * i));
    uint16_t h = ra_le16(src + 2 * i);
    return d == RA_SCALE_F16 ? ra_f16_to_f32(h) : ra_bf16_to_f32(h);
}

float ra_scale_eps(ra_scale_dtype d) { return d == RA_SCALE_F16 ? 0x1p-10f : d == RA_SCALE_BF16 ? 0x1p-7f : FLT_EPSILON; }

ra_status ra_check_finite(const char *fmt, const float *w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(w[i])) return ra_fail(RA_ERR_USAGE, "%s: weight %zu is %g; cannot quantize it", fmt, i, (double)w[i]);
    return RA_OK;
}

/* ---- Weight-only matmul ---- */

#define ROWS_PER_TASK 16

typedef struct {
    const void *layer;
    uint32_t rows, cols, n;
    ra_dequant_rows_fn dequant;
    const float *x;
    float *y;
    atomic_int failed; /* 0, or the first task that failed wrote `msg` */
    char msg[256];
} qlinear_job;

/* Rows r0..r1 dequantized, multiplied by ra_cpu_matmul on one thread (every
 * output in the documented order whatever the tile), scattered into y. */
static void qlinear_task(void *ctx, uint32_t task)
{
    qlinear_job *j = ctx;
    uint32_t r0 = task * ROWS_PER_TASK, r1 = r0 + ROWS_PER_TASK < j->rows ? r0 + ROWS_PER_TASK : j->rows, m = r1 - r0;
    float *w = NULL, *y = NULL;
    ra_status s = ra_calloc(&w, (size_t)m * j->cols, sizeof *w);
    if (s == RA_OK) s = ra_calloc(&y, (size_t)j->n * m, sizeof *y);
    if (s == RA_OK) {
        j->dequant(j->layer, r0, r1, w);
        ra_weight chunk = {.type = RA_W_F32, .rows = m, .cols = j->cols, .row_bytes = (size_t)j->cols * 4,
                           .data = (uint8_t *)w, .borrowed = true};
        s = ra_cpu_matmul(NULL, &chunk, j->x, j->n, y);
    }
    if (s == RA_OK) {
        for (uint32_t t = 0; t < j->n; t++) memcpy(j->y + (size_t)t * j->rows + r0, y + (size_t)t * m, m * sizeof *y);
    } else {
        int expected = 0;
        if (atomic_compare_exchange_strong(&j->failed, &expected, 1)) snprintf(j->msg, sizeof j->msg, "%s", ra_errmsg());
    }
    free(w);
    free(y);
}

ra_status ra_qlinear_matmul(ra_pool *p, const void *layer, uint32_t rows, uint32_t cols, ra_dequant_rows_fn dequant,
                            const float *x, uint32_t n, float *y)
{
    qlinear_job j = {.layer = layer, .rows = rows, .cols = cols, .n = n, .dequant = dequant, .x = x, .y = y};
    atomic_init(&j.failed, 0);
    ra_pool_for(p, (rows + ROWS_PER_TASK - 1) / ROWS_PER_TASK, qlinear_task, &j);
    if (atomic_load(&j.failed)) return ra_fail(RA_ERR_NOMEM, "quantized matmul %ux%u: %s", rows, cols, j.msg);
    return RA_OK;
}

ra_status ra_qlinear_dequantize(const void *layer, uint32_t rows, uint32_t cols, ra_dequant_rows_fn dequant, float **out)
{
    RA_TRY(ra_calloc(out, (size_t)rows * cols, sizeof **out));
    dequant(layer, 0, rows, *out);
    return RA_OK;
}

/* ---- Block-scaled minifloat layers ---- */

ra_status ra_blockq_alloc(ra_blockq *b, const char *fmt, uint32_t rows, uint32_t cols, uint32_t group)
{
    memset(b, 0, sizeof *b);
    if (!rows || !cols || cols % group)
        return ra_fail(RA_ERR_FORMAT, "%s: a %u x %u weight; K must be a positive multiple of %u", fmt, rows, cols, group);
    *b = (ra_blockq){.rows = rows, .cols = cols, .group = group};
    ra_status s = ra_calloc(&b->codes, (size_t)rows * cols, 1);
    if (s == RA_OK) s = ra_calloc(&b->scales, (size_t)rows * cols / group, 1);
    if (s != RA_OK) ra_blockq_free(b);
    return s;
}

void ra_blockq_free(ra_blockq *b)
{
    free(b->codes);
    free(b->scales);
    memset(b, 0, sizeof *b);
}
