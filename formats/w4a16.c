/* compressed-tensors pack-quantized (include/ra/w4a16.h). Sources:
 * compressed-tensors compressors/pack_quantized/{base,helpers}.py (tensor
 * names, pack_to_int32: offset, zero padding, packed_dim 0 for zero points),
 * quantization/utils/helpers.py (calculate_qparams), lifecycle/forward_helpers.py
 * (quantize: x / s + zp, clamp, round), lifecycle/initialize.py (shapes). */
#include "ra/w4a16.h"

#include <string.h>

#include "ra/util.h"

static const char FMT[] = "w4a16";

static ra_status ct_group(const float *v, uint32_t n, const ra_intq_params *p, uint8_t *codes, float *scale,
                          uint16_t *zero)
{
    const uint32_t bits = p->bits;
    const float q_min = -(float)(1u << (bits - 1)), q_max = (float)((1u << (bits - 1)) - 1), range = q_max - q_min;
    float lo = 0, hi = 0; /* 0 must be representable */
    for (uint32_t i = 0; i < n; i++) {
        lo = v[i] < lo ? v[i] : lo;
        hi = v[i] > hi ? v[i] : hi;
    }
    float s_raw, zp = 0;
    if (p->symmetric) {
        s_raw = (-lo > hi ? -lo : hi) / (range / 2);
    } else {
        s_raw = (hi - lo) / range;
        if (s_raw > 0) {
            zp = q_min - lo / s_raw;
            zp = ra_round_even(zp < q_min ? q_min : zp > q_max ? q_max : zp);
        }
    }
    float s;
    RA_TRY(ra_scale_round(s_raw, p->scale_dtype, &s));
    if (s == 0.0f) s = ra_scale_eps(p->scale_dtype);
    for (uint32_t i = 0; i < n; i++) {
        float q = v[i] / s + zp;
        q = ra_round_even(q < q_min ? q_min : q > q_max ? q_max : q);
        codes[i] = (uint8_t)(q - q_min);
    }
    *scale = s;
    *zero = (uint16_t)(zp - q_min);
    return RA_OK;
}

/* G for the config on K columns; strategy "group" needs G | K. */
static ra_status group_size_of(const ra_w4a16_config *c, uint32_t cols, uint32_t *G)
{
    if (c->bits != 4 && c->bits != 8) return ra_fail(RA_ERR_UNSUPPORTED, "w4a16: %u-bit weights", c->bits);
    *G = c->group_size <= 0 ? cols : (uint32_t)c->group_size;
    if (cols % *G)
        return ra_fail(RA_ERR_FORMAT, "w4a16: %u input features is not a multiple of the group size %u "
                                      "(compressed-tensors refuses it)", cols, *G);
    return RA_OK;
}

ra_status ra_w4a16_quantize(const float *w, uint32_t rows, uint32_t cols, const ra_w4a16_config *c,
                            const int32_t *perm, ra_intq *out)
{
    uint32_t G = 0;
    RA_TRY(group_size_of(c, cols, &G));
    const ra_intq_params p = {.bits = c->bits, .group_size = G, .symmetric = c->symmetric, .scale_dtype = c->scale_dtype,
                              .perm = perm};
    return ra_intq_quantize(w, rows, cols, &p, ct_group, out);
}

ra_status ra_w4a16_pack(const ra_intq *q, bool symmetric, ra_qtensors *out)
{
    RA_TRY(ra_intq_check(q, FMT));
    if (q->cols % q->group_size || q->n_groups != q->cols / q->group_size)
        return ra_fail(RA_ERR_UNSUPPORTED, "w4a16: groups of %u do not divide %u input features", q->group_size, q->cols);
    const uint32_t K = q->cols, N = q->rows, NG = q->n_groups, bits = q->bits, pf = 32 / bits, mid = 1u << (bits - 1);
    for (size_t i = 0; i < (size_t)N * NG; i++) {
        if (q->zeros[i] >= 2 * mid) return ra_fail(RA_ERR_UNSUPPORTED, "w4a16: zero point %u does not fit", q->zeros[i]);
        if (symmetric && q->zeros[i] != mid)
            return ra_fail(RA_ERR_UNSUPPORTED, "w4a16: a symmetric layer has zero point %u, not %u", q->zeros[i], mid);
    }
    const uint32_t KW = (K + pf - 1) / pf, NW = (N + pf - 1) / pf;
    uint8_t *wp, *sc, *zp = NULL, *gi = NULL, *shape;
    ra_status s = ra_qtensors_add(out, ".weight_packed", RA_QT_I32, 2, (uint64_t[]){N, KW}, &wp);
    if (s == RA_OK) s = ra_qtensors_add(out, ".weight_scale", ra_scale_qt(q->scale_dtype), 2, (uint64_t[]){N, NG}, &sc);
    if (s == RA_OK && !symmetric) s = ra_qtensors_add(out, ".weight_zero_point", RA_QT_I32, 2, (uint64_t[]){NW, NG}, &zp);
    if (s == RA_OK && q->g_idx) s = ra_qtensors_add(out, ".weight_g_idx", RA_QT_I32, 1, (uint64_t[]){K}, &gi);
    if (s == RA_OK) s = ra_qtensors_add(out, ".weight_shape", RA_QT_I64, 1, (uint64_t[]){2}, &shape);
    if (s != RA_OK) {
        ra_qtensors_free(out);
        return s;
    }
    for (uint32_t n = 0; n < N; n++) {
        for (uint32_t k = 0; k < K; k++) ra_field_set(wp, (size_t)n * KW + k / pf, k % pf, bits, q->codes[(size_t)n * K + k]);
        for (uint32_t g = 0; g < NG; g++) {
            ra_scale_store(sc, (size_t)n * NG + g, q->scales[(size_t)n * NG + g], q->scale_dtype);
            if (zp) ra_field_set(zp, (size_t)(n / pf) * NG + g, n % pf, bits, q->zeros[(size_t)n * NG + g]);
        }
    }
    for (uint32_t k = 0; gi && k < K; k++) ra_put_le32(gi + 4 * k, (uint32_t)q->g_idx[k]);
    ra_put_le64(shape, N);
    ra_put_le64(shape + 8, K);
    return RA_OK;
}

/* [N, K] from weight_shape (I64 as written, or I32 as compression_param_info declares). */
static ra_status read_shape(const ra_qtensors *t, uint32_t *N, uint32_t *K)
{
    const ra_qtensor *sh = ra_qtensors_find(t, ".weight_shape");
    if (!sh) return ra_fail(RA_ERR_FORMAT, "w4a16: tensor .weight_shape missing");
    if ((sh->dtype != RA_QT_I64 && sh->dtype != RA_QT_I32) || sh->n_dims != 1 || sh->shape[0] != 2)
        return ra_fail(RA_ERR_FORMAT, "w4a16: .weight_shape must be I64 or I32 [2]");
    int64_t v[2];
    for (int i = 0; i < 2; i++)
        v[i] = sh->dtype == RA_QT_I64 ? (int64_t)ra_le64(sh->data + 8 * i) : (int32_t)ra_le32(sh->data + 4 * i);
    if (v[0] <= 0 || v[1] <= 0 || v[0] > UINT32_MAX || v[1] > UINT32_MAX - 32)
        return ra_fail(RA_ERR_FORMAT, "w4a16: weight_shape [%lld, %lld] is not a valid matrix", (long long)v[0], (long long)v[1]);
    *N = (uint32_t)v[0];
    *K = (uint32_t)v[1];
    return RA_OK;
}

ra_status ra_w4a16_unpack(const ra_qtensors *t, const ra_w4a16_config *c, ra_intq *out)
{
    memset(out, 0, sizeof *out);
    uint32_t N = 0, K = 0, G = 0;
    RA_TRY(read_shape(t, &N, &K));
    RA_TRY(group_size_of(c, K, &G));
    const uint32_t bits = c->bits, pf = 32 / bits, NG = K / G, KW = (K + pf - 1) / pf, NW = (N + pf - 1) / pf;
    const ra_qtensor *wp, *sc = ra_qtensors_find(t, ".weight_scale"), *zp = NULL, *gi = NULL;
    RA_TRY(ra_qtensors_expect(t, FMT, ".weight_packed", RA_QT_I32, 2, (uint64_t[]){N, KW}, &wp));
    if (!sc) return ra_fail(RA_ERR_FORMAT, "w4a16: tensor .weight_scale missing");
    ra_scale_dtype dt;
    RA_TRY(ra_scale_dtype_of(sc, FMT, &dt));
    RA_TRY(ra_qtensors_expect(t, FMT, ".weight_scale", sc->dtype, 2, (uint64_t[]){N, NG}, &sc));
    if (!c->symmetric) RA_TRY(ra_qtensors_expect(t, FMT, ".weight_zero_point", RA_QT_I32, 2, (uint64_t[]){NW, NG}, &zp));
    if (ra_qtensors_find(t, ".weight_g_idx"))
        RA_TRY(ra_qtensors_expect(t, FMT, ".weight_g_idx", RA_QT_I32, 1, (uint64_t[]){K}, &gi));
    RA_TRY(ra_intq_alloc(out, N, K, bits, G, NG, gi != NULL));
    out->scale_dtype = dt;
    for (uint32_t n = 0; n < N; n++) {
        for (uint32_t k = 0; k < K; k++) out->codes[(size_t)n * K + k] = (uint8_t)ra_field_get(wp->data, (size_t)n * KW + k / pf, k % pf, bits);
        for (uint32_t g = 0; g < NG; g++) {
            out->scales[(size_t)n * NG + g] = ra_scale_load(sc->data, (size_t)n * NG + g, dt);
            out->zeros[(size_t)n * NG + g] =
                (uint16_t)(zp ? ra_field_get(zp->data, (size_t)(n / pf) * NG + g, n % pf, bits) : 1u << (bits - 1));
        }
    }
    for (uint32_t k = 0; gi && k < K; k++) out->g_idx[k] = (int32_t)ra_le32(gi->data + 4 * k);
    ra_status s = ra_intq_check(out, FMT);
    if (s != RA_OK) ra_intq_free(out);
    return s;
}
