/* MXFP4 (include/ra/mxfp4.h). Sources: the OCP MX reference code
 * microsoft/microxcaling mx/mx_ops.py (_shared_exponents: floor(log2 amax) -
 * emax, clamped), compressed-tensors quantization/utils/mxfp_utils.py
 * (round_to_power_2, generate_mx_scales) and compressors/mxfp4/base.py
 * (names), openai/gpt-oss gpt_oss/torch/weights.py and transformers
 * integrations/mxfp4.py (the _blocks / _scales layout). */
#include "ra/mxfp4.h"

#include <string.h>

#include "ra/minifloat.h"
#include "ra/util.h"

static const char FMT[] = "mxfp4";

/* floor(log2 a) for a finite a > 0 */
static int floor_log2(float a)
{
    int e;
    frexpf(a, &e);
    return e - 1;
}

uint8_t ra_mxfp4_scale_byte(float amax, ra_mx_scale_rule rule)
{
    if (!(amax > 0)) return ra_e8m0_from_exponent(-127);
    const int emax_e2m1 = 2; /* floor(log2 6) */
    switch (rule) {
    case RA_MX_SCALE_OCP: return ra_e8m0_from_exponent(floor_log2(amax) - emax_e2m1);
    case RA_MX_SCALE_EVEN: { /* + half of the FP4 mantissa step below the 2nd mantissa bit, then keep sign and exponent */
        float p = ra_bits_f32((ra_f32_bits(amax) + (1u << 21)) & 0xff800000u);
        if (p == 0) return ra_e8m0_from_exponent(-127);                    /* a subnormal amax rounded to 0 */
        return ra_e8m0_from_exponent((isinf(p) ? 128 : floor_log2(p)) - emax_e2m1); /* or up past FLT_MAX */
    }
    case RA_MX_SCALE_CEIL: {
        float q = amax / RA_E2M1_MAX;
        int e;
        float f = frexpf(q, &e); /* q = f * 2^e, f in [0.5, 1) */
        return ra_e8m0_from_exponent(f == 0.5f ? e - 1 : e);
    }
    }
    return 0;
}

void ra_mxfp4_free(ra_mxfp4_weight *w) { ra_blockq_free(w); }

ra_status ra_mxfp4_quantize(const float *w, uint32_t rows, uint32_t cols, ra_mx_scale_rule rule, ra_mxfp4_weight *out)
{
    memset(out, 0, sizeof *out);
    RA_TRY(ra_check_finite(FMT, w, (size_t)rows * cols));
    RA_TRY(ra_blockq_alloc(out, FMT, rows, cols, RA_MXFP4_GROUP));
    for (size_t b = 0; b < (size_t)rows * cols / RA_MXFP4_GROUP; b++) {
        const float *v = w + b * RA_MXFP4_GROUP;
        float amax = 0;
        for (int i = 0; i < RA_MXFP4_GROUP; i++) amax = fabsf(v[i]) > amax ? fabsf(v[i]) : amax;
        out->scales[b] = ra_mxfp4_scale_byte(amax, rule);
        const int e = (int)out->scales[b] - 127;
        for (int i = 0; i < RA_MXFP4_GROUP; i++) out->codes[b * RA_MXFP4_GROUP + i] = ra_f32_to_e2m1(ldexpf(v[i], -e));
    }
    return RA_OK;
}

void ra_mxfp4_dequantize_rows(const ra_mxfp4_weight *w, uint32_t r0, uint32_t r1, float *out)
{
    for (uint32_t n = r0; n < r1; n++)
        for (uint32_t k = 0; k < w->cols; k++) {
            size_t i = (size_t)n * w->cols + k;
            out[i - (size_t)r0 * w->cols] = ra_e2m1_to_f32(w->codes[i]) * ra_e8m0_to_f32(w->scales[i / RA_MXFP4_GROUP]);
        }
}

static void mxfp4_rows(const void *layer, uint32_t r0, uint32_t r1, float *out) { ra_mxfp4_dequantize_rows(layer, r0, r1, out); }

ra_status ra_mxfp4_dequantize(const ra_mxfp4_weight *w, float **out)
{
    return ra_qlinear_dequantize(w, w->rows, w->cols, mxfp4_rows, out);
}

ra_status ra_mxfp4_matmul(ra_pool *p, const ra_mxfp4_weight *w, const float *x, uint32_t n, float *y)
{
    return ra_qlinear_matmul(p, w, w->rows, w->cols, mxfp4_rows, x, n, y);
}

/* Names and shapes: gpt-oss splits the packed row into blocks of 16 bytes. */
static void layout(ra_mxfp4_names names, uint32_t N, uint32_t K, const char **pn, const char **sn, uint32_t *dims,
                   uint64_t shape[3])
{
    const bool oss = names == RA_MXFP4_NAMES_GPT_OSS;
    *pn = oss ? "_blocks" : ".weight_packed";
    *sn = oss ? "_scales" : ".weight_scale";
    *dims = oss ? 3 : 2;
    shape[0] = N;
    shape[1] = oss ? K / RA_MXFP4_GROUP : K / 2;
    shape[2] = RA_MXFP4_GROUP / 2;
}

ra_status ra_mxfp4_pack(const ra_mxfp4_weight *w, ra_mxfp4_names names, ra_qtensors *out)
{
    const char *pn, *sn;
    uint32_t dims;
    uint64_t shape[3];
    layout(names, w->rows, w->cols, &pn, &sn, &dims, shape);
    uint8_t *wp, *sc;
    ra_status s = ra_qtensors_add(out, pn, RA_QT_U8, dims, shape, &wp);
    if (s == RA_OK) s = ra_qtensors_add(out, sn, RA_QT_U8, 2, (uint64_t[]){w->rows, w->cols / RA_MXFP4_GROUP}, &sc);
    if (s != RA_OK) {
        ra_qtensors_free(out);
        return s;
    }
    ra_fp4_pack(w->codes, (size_t)w->rows * w->cols, wp);
    memcpy(sc, w->scales, (size_t)w->rows * w->cols / RA_MXFP4_GROUP);
    return RA_OK;
}

ra_status ra_mxfp4_unpack(const ra_qtensors *t, ra_mxfp4_names names, ra_mxfp4_weight *out)
{
    memset(out, 0, sizeof *out);
    const char *pn, *sn;
    uint32_t dims;
    uint64_t shape[3];
    layout(names, 0, 0, &pn, &sn, &dims, shape);
    const ra_qtensor *wp = ra_qtensors_find(t, pn), *sc;
    if (!wp) return ra_fail(RA_ERR_FORMAT, "mxfp4: tensor %s missing", pn);
    if (wp->dtype != RA_QT_U8 || wp->n_dims != dims || wp->shape[0] > UINT32_MAX || wp->shape[1] > UINT32_MAX / RA_MXFP4_GROUP)
        return ra_fail(RA_ERR_FORMAT, "mxfp4: %s must be a %u-D U8 tensor", pn, dims);
    const uint32_t N = (uint32_t)wp->shape[0], K = (uint32_t)(dims == 3 ? wp->shape[1] * RA_MXFP4_GROUP : wp->shape[1] * 2);
    layout(names, N, K, &pn, &sn, &dims, shape);
    RA_TRY(ra_qtensors_expect(t, FMT, pn, RA_QT_U8, dims, shape, &wp));
    RA_TRY(ra_qtensors_expect(t, FMT, sn, RA_QT_U8, 2, (uint64_t[]){N, K / RA_MXFP4_GROUP}, &sc));
    RA_TRY(ra_blockq_alloc(out, FMT, N, K, RA_MXFP4_GROUP));
    ra_fp4_unpack(wp->data, (size_t)N * K, out->codes);
    memcpy(out->scales, sc->data, (size_t)N * K / RA_MXFP4_GROUP);
    return RA_OK;
}
