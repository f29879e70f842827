/* AutoAWQ GEMM layout and quantizer (include/ra/awq.h). Sources: AutoAWQ
 * awq/modules/linear/gemm.py (WQLinear_GEMM.from_linear: the packer and its
 * order_map), awq/utils/packing_utils.py (the unpacker and reverse order) and
 * awq/quantize/quantizer.py (pseudo_quantize_tensor). */
#include "ra/awq.h"

#include <string.h>

#include "ra/util.h"

const uint8_t RA_AWQ_ORDER[8] = {0, 2, 4, 6, 1, 3, 5, 7};

static const char FMT[] = "awq";

ra_status ra_awq_group(const float *v, uint32_t n, const ra_intq_params *p, uint8_t *codes, float *scale,
                      uint16_t *zero)
{
    const float max_int = (float)((1u << p->bits) - 1);
    float lo = v[0], hi = v[0];
    for (uint32_t i = 1; i < n; i++) {
        lo = v[i] < lo ? v[i] : lo;
        hi = v[i] > hi ? v[i] : hi;
    }
    float range = hi - lo;
    float s;
    RA_TRY(ra_scale_round((range > 1e-5f ? range : 1e-5f) / max_int, p->scale_dtype, &s));
    float z = -ra_round_even(lo / s);
    z = z < 0 ? 0 : z > max_int ? max_int : z;
    for (uint32_t i = 0; i < n; i++) {
        float u = ra_round_even(v[i] / s) + z;
        codes[i] = (uint8_t)(u < 0 ? 0 : u > max_int ? max_int : u);
    }
    *scale = s;
    *zero = (uint16_t)z;
    return RA_OK;
}

/* The shape rules of AutoAWQ's GEMM layer. */
static ra_status check_shape(uint32_t rows, uint32_t cols, uint32_t group_size)
{
    if (rows % 8) return ra_fail(RA_ERR_FORMAT, "awq: %u output features is not a multiple of 8", rows);
    if (!group_size || cols % group_size)
        return ra_fail(RA_ERR_FORMAT, "awq: %u input features is not a multiple of the group size %u", cols, group_size);
    return RA_OK;
}

ra_status ra_awq_quantize(const float *w, uint32_t rows, uint32_t cols, uint32_t group_size, ra_intq *out)
{
    RA_TRY(check_shape(rows, cols, group_size));
    const ra_intq_params p = {.bits = 4, .group_size = group_size, .scale_dtype = RA_SCALE_F16};
    return ra_intq_quantize(w, rows, cols, &p, ra_awq_group, out);
}

ra_status ra_awq_pack(const ra_intq *q, ra_qtensors *out)
{
    RA_TRY(check_shape(q->rows, q->cols, q->group_size));
    if (q->bits != 4 || q->g_idx || q->n_groups != q->cols / q->group_size)
        return ra_fail(RA_ERR_UNSUPPORTED, "awq: only 4-bit layers in consecutive groups can be written");
    RA_TRY(ra_intq_check(q, FMT));
    const uint32_t K = q->cols, N = q->rows, NG = q->n_groups, W = N / 8;
    for (size_t i = 0; i < (size_t)N * NG; i++)
        if (q->zeros[i] > 15) return ra_fail(RA_ERR_UNSUPPORTED, "awq: zero point %u does not fit in 4 bits", q->zeros[i]);
    uint8_t *qw, *qz, *sc;
    ra_status s = ra_qtensors_add(out, ".qweight", RA_QT_I32, 2, (uint64_t[]){K, W}, &qw);
    if (s == RA_OK) s = ra_qtensors_add(out, ".qzeros", RA_QT_I32, 2, (uint64_t[]){NG, W}, &qz);
    if (s == RA_OK) s = ra_qtensors_add(out, ".scales", ra_scale_qt(q->scale_dtype), 2, (uint64_t[]){NG, N}, &sc);
    if (s != RA_OK) {
        ra_qtensors_free(out);
        return s;
    }
    for (uint32_t c = 0; c < W; c++)
        for (uint32_t i = 0; i < 8; i++) {
            uint32_t n = 8 * c + RA_AWQ_ORDER[i];
            for (uint32_t k = 0; k < K; k++) ra_field_set(qw, (size_t)k * W + c, i, 4, q->codes[(size_t)n * K + k]);
            for (uint32_t g = 0; g < NG; g++) {
                ra_field_set(qz, (size_t)g * W + c, i, 4, q->zeros[(size_t)n * NG + g]);
                ra_scale_store(sc, (size_t)g * N + n, q->scales[(size_t)n * NG + g], q->scale_dtype);
            }
        }
    return RA_OK;
}

ra_status ra_awq_unpack(const ra_qtensors *t, uint32_t group_size, ra_intq *out)
{
    memset(out, 0, sizeof *out);
    const ra_qtensor *qw = ra_qtensors_find(t, ".qweight"), *sc = ra_qtensors_find(t, ".scales"), *qz;
    if (!qw || !sc) return ra_fail(RA_ERR_FORMAT, "awq: tensor %s missing", qw ? ".scales" : ".qweight");
    if (qw->dtype != RA_QT_I32 || qw->n_dims != 2 || qw->shape[0] > UINT32_MAX || qw->shape[1] > UINT32_MAX / 8)
        return ra_fail(RA_ERR_FORMAT, "awq: .qweight must be a 2-D I32 tensor [K, N/8]");
    const uint32_t K = (uint32_t)qw->shape[0], W = (uint32_t)qw->shape[1], N = 8 * W;
    RA_TRY(check_shape(N, K, group_size));
    const uint32_t NG = K / group_size;
    ra_scale_dtype dt;
    RA_TRY(ra_scale_dtype_of(sc, FMT, &dt));
    RA_TRY(ra_qtensors_expect(t, FMT, ".scales", sc->dtype, 2, (uint64_t[]){NG, N}, &sc));
    RA_TRY(ra_qtensors_expect(t, FMT, ".qzeros", RA_QT_I32, 2, (uint64_t[]){NG, W}, &qz));
    RA_TRY(ra_qtensors_expect(t, FMT, ".qweight", RA_QT_I32, 2, (uint64_t[]){K, W}, &qw));
    RA_TRY(ra_intq_alloc(out, N, K, 4, group_size, NG, false));
    out->scale_dtype = dt;
    for (uint32_t c = 0; c < W; c++)
        for (uint32_t i = 0; i < 8; i++) {
            uint32_t n = 8 * c + RA_AWQ_ORDER[i];
            for (uint32_t k = 0; k < K; k++) out->codes[(size_t)n * K + k] = (uint8_t)ra_field_get(qw->data, (size_t)k * W + c, i, 4);
            for (uint32_t g = 0; g < NG; g++) {
                out->zeros[(size_t)n * NG + g] = (uint16_t)ra_field_get(qz->data, (size_t)g * W + c, i, 4);
                out->scales[(size_t)n * NG + g] = ra_scale_load(sc->data, (size_t)g * N + n, dt);
            }
        }
    ra_status s = ra_intq_check(out, FMT);
    if (s != RA_OK) ra_intq_free(out);
    return s;
}
