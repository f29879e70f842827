/* FP8 E4M3 weights and W8A8 (include/ra/fp8.h). Sources: compressed-tensors
 * quantization/utils/helpers.py (calculate_qparams: amax / 448, zero scale to
 * eps), quant_args.py (round_to_quantized_type_args: clamp, then cast),
 * lifecycle/initialize.py (scale shapes); DeepSeek-V3 inference/kernel.py
 * (weight_quant, act_quant, the block GEMM) and README_WEIGHTS.md; vLLM
 * csrc/quantization/fp8/common.cu (per-token) and per_token_group_quant
 * (per-128-group activation scales). */
#include "ra/fp8.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "ra/minifloat.h"
#include "ra/util.h"

static const char FMT[] = "fp8";

static uint32_t ceil_div(uint32_t a, uint32_t b) { return a / b + (a % b != 0); }

/* The scale grid of a scheme. */
static void scale_grid(ra_fp8_scheme scheme, uint32_t rows, uint32_t cols, uint32_t *sr, uint32_t *sc)
{
    *sr = scheme == RA_FP8_TENSOR ? 1 : scheme == RA_FP8_CHANNEL ? rows : ceil_div(rows, RA_FP8_BLOCK_SIZE);
    *sc = scheme == RA_FP8_BLOCK ? ceil_div(cols, RA_FP8_BLOCK_SIZE) : 1;
}

/* The scale cell of element (n, k). */
static size_t scale_index(const ra_fp8_weight *w, uint32_t n, uint32_t k)
{
    switch (w->scheme) {
    case RA_FP8_TENSOR: return 0;
    case RA_FP8_CHANNEL: return n;
    default: return (size_t)(n / RA_FP8_BLOCK_SIZE) * w->scale_cols + k / RA_FP8_BLOCK_SIZE;
    }
}

float ra_fp8_scale_at(const ra_fp8_weight *w, uint32_t n, uint32_t k) { return w->scales[scale_index(w, n, k)]; }

void ra_fp8_free(ra_fp8_weight *w)
{
    free(w->codes);
    free(w->scales);
    memset(w, 0, sizeof *w);
}

static ra_status alloc_fp8(ra_fp8_weight *w, uint32_t rows, uint32_t cols, ra_fp8_scheme scheme, ra_scale_dtype dt)
{
    *w = (ra_fp8_weight){.rows = rows, .cols = cols, .scheme = scheme, .scale_dtype = dt};
    if (!rows || !cols) return ra_fail(RA_ERR_FORMAT, "fp8: empty weight");
    scale_grid(scheme, rows, cols, &w->scale_rows, &w->scale_cols);
    ra_status s = ra_calloc(&w->codes, (size_t)rows * cols, 1);
    if (s == RA_OK) s = ra_calloc(&w->scales, (size_t)w->scale_rows * w->scale_cols, sizeof *w->scales);
    if (s != RA_OK) ra_fp8_free(w);
    return s;
}

ra_status ra_fp8_quantize(const float *w, uint32_t rows, uint32_t cols, ra_fp8_scheme scheme, ra_scale_dtype dt,
                          ra_fp8_weight *out)
{
    memset(out, 0, sizeof *out);
    RA_TRY(ra_check_finite(FMT, w, (size_t)rows * cols));
    RA_TRY(alloc_fp8(out, rows, cols, scheme, dt));
    const size_t cells = (size_t)out->scale_rows * out->scale_cols;
    for (uint32_t n = 0; n < rows; n++) /* amax of each cell */
        for (uint32_t k = 0; k < cols; k++) {
            float *m = &out->scales[scale_index(out, n, k)], a = fabsf(w[(size_t)n * cols + k]);
            *m = a > *m ? a : *m;
        }
    ra_status s = RA_OK;
    for (size_t i = 0; i < cells && s == RA_OK; i++) {
        s = ra_scale_round(out->scales[i] / RA_E4M3_MAX, dt, &out->scales[i]);
        if (out->scales[i] == 0.0f) out->scales[i] = ra_scale_eps(dt);
    }
    if (s != RA_OK) {
        ra_fp8_free(out);
        return s;
    }
    for (uint32_t n = 0; n < rows; n++)
        for (uint32_t k = 0; k < cols; k++) {
            float v = w[(size_t)n * cols + k] / out->scales[scale_index(out, n, k)];
            out->codes[(size_t)n * cols + k] = ra_f32_to_e4m3(v, true); /* clamp to +-448, then round */
        }
    return RA_OK;
}

void ra_fp8_dequantize_rows(const ra_fp8_weight *w, uint32_t r0, uint32_t r1, float *out)
{
    for (uint32_t n = r0; n < r1; n++)
        for (uint32_t k = 0; k < w->cols; k++)
            out[(size_t)(n - r0) * w->cols + k] = ra_e4m3_to_f32(w->codes[(size_t)n * w->cols + k]) * ra_fp8_scale_at(w, n, k);
}

static void fp8_rows(const void *layer, uint32_t r0, uint32_t r1, float *out) { ra_fp8_dequantize_rows(layer, r0, r1, out); }

ra_status ra_fp8_dequantize(const ra_fp8_weight *w, float **out) { return ra_qlinear_dequantize(w, w->rows, w->cols, fp8_rows, out); }

static const char *scale_name(ra_fp8_names names) { return names == RA_FP8_NAMES_DEEPSEEK ? ".weight_scale_inv" : ".weight_scale"; }

ra_status ra_fp8_pack(const ra_fp8_weight *w, ra_fp8_names names, ra_qtensors *out)
{
    if (names == RA_FP8_NAMES_DEEPSEEK && (w->scheme != RA_FP8_BLOCK || w->scale_dtype != RA_SCALE_F32))
        return ra_fail(RA_ERR_UNSUPPORTED, "fp8: DeepSeek checkpoints hold 128x128 block scales in F32");
    uint64_t shape[2] = {w->scale_rows, w->scale_cols};
    uint8_t *q, *sc;
    ra_status s = ra_qtensors_add(out, ".weight", RA_QT_F8_E4M3, 2, (uint64_t[]){w->rows, w->cols}, &q);
    if (s == RA_OK) s = ra_qtensors_add(out, scale_name(names), ra_scale_qt(w->scale_dtype), w->scheme == RA_FP8_TENSOR ? 1 : 2, shape, &sc);
    if (s != RA_OK) {
        ra_qtensors_free(out);
        return s;
    }
    memcpy(q, w->codes, (size_t)w->rows * w->cols);
    for (size_t i = 0; i < (size_t)w->scale_rows * w->scale_cols; i++) ra_scale_store(sc, i, w->scales[i], w->scale_dtype);
    return RA_OK;
}

ra_status ra_fp8_unpack(const ra_qtensors *t, ra_fp8_names names, ra_fp8_scheme scheme, ra_fp8_weight *out)
{
    memset(out, 0, sizeof *out);
    const ra_qtensor *q = ra_qtensors_find(t, ".weight"), *sc = ra_qtensors_find(t, scale_name(names));
    if (!q || !sc) return ra_fail(RA_ERR_FORMAT, "fp8: tensor %s missing", q ? scale_name(names) : ".weight");
    if (q->dtype != RA_QT_F8_E4M3 || q->n_dims != 2 || !q->shape[0] || !q->shape[1] || q->shape[0] > UINT32_MAX ||
        q->shape[1] > UINT32_MAX)
        return ra_fail(RA_ERR_FORMAT, "fp8: .weight must be a 2-D F8_E4M3 tensor");
    const uint32_t N = (uint32_t)q->shape[0], K = (uint32_t)q->shape[1];
    if (names == RA_FP8_NAMES_DEEPSEEK && scheme != RA_FP8_BLOCK)
        return ra_fail(RA_ERR_FORMAT, "fp8: weight_scale_inv holds block scales");
    RA_TRY(ra_qtensors_expect(t, FMT, ".weight", RA_QT_F8_E4M3, 2, (uint64_t[]){N, K}, &q));
    ra_scale_dtype dt;
    RA_TRY(ra_scale_dtype_of(sc, FMT, &dt));
    uint32_t sr, scols;
    scale_grid(scheme, N, K, &sr, &scols);
    if (scheme == RA_FP8_TENSOR && sc->n_dims == 0) { /* older per-tensor files store a scalar */
        if (sc->nbytes != ra_qt_dtype_size(sc->dtype))
            return ra_fail(RA_ERR_FORMAT, "fp8: a scalar scale of %llu bytes", (unsigned long long)sc->nbytes);
    } else {
        uint64_t shape[2] = {sr, scols};
        RA_TRY(ra_qtensors_expect(t, FMT, sc->suffix, sc->dtype, scheme == RA_FP8_TENSOR ? 1 : 2, shape, &sc));
    }
    RA_TRY(alloc_fp8(out, N, K, scheme, dt));
    memcpy(out->codes, q->data, (size_t)N * K);
    for (size_t i = 0; i < (size_t)sr * scols; i++) {
        out->scales[i] = ra_scale_load(sc->data, i, dt);
        if (!isfinite(out->scales[i])) {
            ra_fp8_free(out);
            return ra_fail(RA_ERR_FORMAT, "fp8: scale %zu is %g", i, (double)ra_scale_load(sc->data, i, dt));
        }
    }
    return RA_OK;
}

/* ---- W8A8 ---- */

uint32_t ra_fp8_act_groups(ra_fp8_act act, uint32_t cols)
{
    return act == RA_FP8_ACT_GROUP ? ceil_div(cols, RA_FP8_BLOCK_SIZE) : 1;
}

void ra_fp8_quantize_activations(const float *x, uint32_t n, uint32_t cols, ra_fp8_act act, uint8_t *q, float *scales)
{
    const uint32_t len = act == RA_FP8_ACT_GROUP ? RA_FP8_BLOCK_SIZE : cols, ng = ra_fp8_act_groups(act, cols);
    for (uint32_t t = 0; t < n; t++)
        for (uint32_t g = 0; g < ng; g++) {
            const uint32_t k0 = g * len, k1 = k0 + len < cols ? k0 + len : cols;
            const float *v = x + (size_t)t * cols;
            float amax = act == RA_FP8_ACT_GROUP ? 1e-10f : 0.0f; /* the group kernel seeds its max with eps */
            for (uint32_t k = k0; k < k1; k++) amax = fabsf(v[k]) > amax ? fabsf(v[k]) : amax;
            float s = amax / RA_E4M3_MAX;
            if (act != RA_FP8_ACT_GROUP && s < 1.0f / (RA_E4M3_MAX * 512.0f)) s = 1.0f / (RA_E4M3_MAX * 512.0f);
            scales[(size_t)t * ng + g] = s;
            for (uint32_t k = k0; k < k1; k++) q[(size_t)t * cols + k] = ra_f32_to_e4m3(v[k] / s, true);
        }
}

/* The documented float order over one segment: lane i % 8 for i < n8, the
 * tail into lanes 0.., then (l0+l4, l1+l5, l2+l6, l3+l7) -> (s0+s2) + (s1+s3). */
static float segment_dot(const float *a, const float *b, uint32_t n)
{
    float l[8] = {0};
    const uint32_t n8 = n & ~7u;
    for (uint32_t i = 0; i < n8; i += 8) /* eight independent lanes: the compiler may vectorize, the order stays */
        for (uint32_t j = 0; j < 8; j++) l[j] = l[j] + a[i + j] * b[i + j];
    for (uint32_t i = n8; i < n; i++) l[i - n8] = l[i - n8] + a[i] * b[i];
    float s0 = l[0] + l[4], s1 = l[1] + l[5], s2 = l[2] + l[6], s3 = l[3] + l[7];
    return (s0 + s2) + (s1 + s3);
}

#define ROWS_PER_TASK 16

typedef struct {
    const ra_fp8_weight *w;
    const float *xa;     /* decoded activation codes [n][cols] */
    const float *xs;     /* activation scales [n][groups] */
    const float *wdec;   /* decoded weight codes [rows][cols], or NULL */
    uint32_t n, act_groups, seg;
    float *y;
    atomic_int failed;
} w8a8_job;

static void w8a8_task(void *ctx, uint32_t task)
{
    w8a8_job *j = ctx;
    const ra_fp8_weight *w = j->w;
    const uint32_t K = w->cols, r0 = task * ROWS_PER_TASK, r1 = r0 + ROWS_PER_TASK < w->rows ? r0 + ROWS_PER_TASK : w->rows;
    float *buf = NULL;
    if (!j->wdec && ra_calloc(&buf, K, sizeof *buf) != RA_OK) {
        atomic_store(&j->failed, 1);
        return;
    }
    for (uint32_t r = r0; r < r1; r++) {
        const float *wr = j->wdec ? j->wdec + (size_t)r * K : buf;
        for (uint32_t k = 0; !j->wdec && k < K; k++) buf[k] = ra_e4m3_to_f32(w->codes[(size_t)r * K + k]);
        for (uint32_t t = 0; t < j->n; t++) {
            const float *xa = j->xa + (size_t)t * K;
            float acc = 0.0f;
            for (uint32_t k0 = 0; k0 < K; k0 += j->seg) {
                uint32_t len = K - k0 < j->seg ? K - k0 : j->seg;
                float sa = j->xs[(size_t)t * j->act_groups + (j->act_groups > 1 ? k0 / RA_FP8_BLOCK_SIZE : 0)];
                acc = acc + (segment_dot(xa + k0, wr + k0, len) * sa) * ra_fp8_scale_at(w, r, k0);
            }
            j->y[(size_t)t * w->rows + r] = acc;
        }
    }
    free(buf);
}

ra_status ra_fp8_matmul(ra_pool *p, const ra_fp8_weight *w, ra_fp8_act act, const float *x, uint32_t n, float *y)
{
    return ra_fp8_matmul_decoded(p, w, act, NULL, x, n, y);
}

ra_status ra_fp8_matmul_decoded(ra_pool *p, const ra_fp8_weight *w, ra_fp8_act act, const float *wdec, const float *x,
                                uint32_t n, float *y)
{
    if (act == RA_FP8_ACT_NONE) return ra_qlinear_matmul(p, w, w->rows, w->cols, fp8_rows, x, n, y);
    const uint32_t K = w->cols, groups = ra_fp8_act_groups(act, K);
    uint8_t *q = NULL;
    float *xa = NULL, *xs = NULL;
    ra_status s = ra_calloc(&q, (size_t)n * K, 1);
    if (s == RA_OK) s = ra_calloc(&xa, (size_t)n * K, sizeof *xa);
    if (s == RA_OK) s = ra_calloc(&xs, (size_t)n * groups, sizeof *xs);
    if (s == RA_OK) {
        ra_fp8_quantize_activations(x, n, K, act, q, xs);
        for (size_t i = 0; i < (size_t)n * K; i++) xa[i] = ra_e4m3_to_f32(q[i]);
        w8a8_job j = {.w = w, .xa = xa, .xs = xs, .wdec = wdec, .n = n, .act_groups = groups, .y = y,
                      .seg = act == RA_FP8_ACT_GROUP || w->scheme == RA_FP8_BLOCK ? RA_FP8_BLOCK_SIZE : K};
        atomic_init(&j.failed, 0);
        ra_pool_for(p, (w->rows + ROWS_PER_TASK - 1) / ROWS_PER_TASK, w8a8_task, &j);
        if (atomic_load(&j.failed)) s = ra_fail(RA_ERR_NOMEM, "fp8 matmul: out of memory");
    }
    free(q);
    free(xa);
    free(xs);
    return s;
}
