/* GPTQ layout and quantizer (include/ra/gptq.h). Sources: AutoGPTQ
 * auto_gptq/quantization/quantizer.py (find_params, quantize),
 * nn_modules/qlinear/qlinear_cuda_old.py (pack, the v1 "zeros - 1" and the
 * reader's "+ 1"), GPTQModel utils/model.py (v1 <-> v2 word conversion). */
#include "ra/gptq.h"

#include <string.h>

#include "ra/util.h"

static const char FMT[] = "gptq";

uint8_t ra_gptq_code(float w, float scale, uint16_t zero, uint32_t bits)
{
    const float maxq = (float)((1u << bits) - 1), u = ra_round_even(w / scale) + (float)zero;
    return (uint8_t)(u < 0 ? 0 : u > maxq ? maxq : u);
}

ra_status ra_gptq_group_rule(const float *v, uint32_t n, const ra_intq_params *p, uint8_t *codes, float *scale,
                             uint16_t *zero)
{
    float xmin = 0, xmax = 0; /* the range always contains 0 */
    for (uint32_t i = 0; i < n; i++) {
        xmin = v[i] < xmin ? v[i] : xmin;
        xmax = v[i] > xmax ? v[i] : xmax;
    }
    if (p->symmetric) {
        xmax = -xmin > xmax ? -xmin : xmax;
        if (xmin < 0) xmin = -xmax;
    }
    if (xmin == 0 && xmax == 0) {
        xmin = -1;
        xmax = 1;
    }
    float s;
    RA_TRY(ra_scale_round((xmax - xmin) / (float)((1u << p->bits) - 1), p->scale_dtype, &s));
    float z = p->symmetric ? (float)(1u << (p->bits - 1)) : ra_round_even(-xmin / s);
    for (uint32_t i = 0; i < n; i++) codes[i] = ra_gptq_code(v[i], s, (uint16_t)z, p->bits);
    *scale = s;
    *zero = (uint16_t)z;
    return RA_OK;
}

/* Values per word, and the shape rules the packing imposes. */
static ra_status check_shape(uint32_t bits, uint32_t rows, uint32_t cols, uint32_t *pf)
{
    if (bits != 4 && bits != 8) return ra_fail(RA_ERR_UNSUPPORTED, "gptq: %u-bit weights", bits);
    *pf = 32 / bits;
    if (cols % *pf) return ra_fail(RA_ERR_FORMAT, "gptq: %u input features is not a multiple of %u", cols, *pf);
    if (rows % *pf) return ra_fail(RA_ERR_FORMAT, "gptq: %u output features is not a multiple of %u", rows, *pf);
    return RA_OK;
}

static uint32_t group_size_of(int32_t g, uint32_t cols) { return g <= 0 || (uint32_t)g > cols ? cols : (uint32_t)g; }

ra_status ra_gptq_quantize(const float *w, uint32_t rows, uint32_t cols, const ra_gptq_config *c, const int32_t *perm,
                           ra_intq *out)
{
    uint32_t pf;
    RA_TRY(check_shape(c->bits, rows, cols, &pf));
    const ra_intq_params p = {.bits = c->bits, .group_size = group_size_of(c->group_size, cols), .symmetric = c->sym,
                              .scale_dtype = RA_SCALE_F16, .perm = perm};
    return ra_intq_quantize(w, rows, cols, &p, ra_gptq_group_rule, out);
}

static uint32_t one_per_field(uint32_t bits) { return bits == 4 ? 0x11111111u : 0x01010101u; }
uint32_t ra_gptq_zeros_v1_to_v2(uint32_t word, uint32_t bits) { return word + one_per_field(bits); }
uint32_t ra_gptq_zeros_v2_to_v1(uint32_t word, uint32_t bits) { return word - one_per_field(bits); }

ra_status ra_gptq_pack(const ra_intq *q, ra_gptq_zeros zeros, ra_qtensors *out)
{
    uint32_t pf;
    RA_TRY(check_shape(q->bits, q->rows, q->cols, &pf));
    RA_TRY(ra_intq_check(q, FMT));
    const uint32_t K = q->cols, N = q->rows, NG = q->n_groups, top = 1u << q->bits;
    const uint16_t offset = zeros == RA_GPTQ_V1 ? 1 : 0;
    for (size_t i = 0; i < (size_t)N * NG; i++) {
        if (q->zeros[i] < offset) return ra_fail(RA_ERR_UNSUPPORTED, "gptq: a v1 checkpoint cannot store a zero point of 0");
        if ((uint32_t)(q->zeros[i] - offset) >= top)
            return ra_fail(RA_ERR_UNSUPPORTED, "gptq: zero point %u does not fit in %s", q->zeros[i], offset ? "v1" : "v2");
    }
    uint8_t *qw, *qz, *sc, *gi;
    ra_status s = ra_qtensors_add(out, ".qweight", RA_QT_I32, 2, (uint64_t[]){K / pf, N}, &qw);
    if (s == RA_OK) s = ra_qtensors_add(out, ".qzeros", RA_QT_I32, 2, (uint64_t[]){NG, N / pf}, &qz);
    if (s == RA_OK) s = ra_qtensors_add(out, ".scales", ra_scale_qt(q->scale_dtype), 2, (uint64_t[]){NG, N}, &sc);
    if (s == RA_OK) s = ra_qtensors_add(out, ".g_idx", RA_QT_I32, 1, (uint64_t[]){K}, &gi);
    if (s != RA_OK) {
        ra_qtensors_free(out);
        return s;
    }
    for (uint32_t n = 0; n < N; n++) {
        for (uint32_t k = 0; k < K; k++) ra_field_set(qw, (size_t)(k / pf) * N + n, k % pf, q->bits, q->codes[(size_t)n * K + k]);
        for (uint32_t g = 0; g < NG; g++) {
            ra_field_set(qz, (size_t)g * (N / pf) + n / pf, n % pf, q->bits, q->zeros[(size_t)n * NG + g] - offset);
            ra_scale_store(sc, (size_t)g * N + n, q->scales[(size_t)n * NG + g], q->scale_dtype);
        }
    }
    for (uint32_t k = 0; k < K; k++) ra_put_le32(gi + 4 * k, ra_intq_group(q, k));
    return RA_OK;
}

ra_status ra_gptq_unpack(const ra_qtensors *t, const ra_gptq_config *c, ra_intq *out)
{
    memset(out, 0, sizeof *out);
    const ra_qtensor *qw = ra_qtensors_find(t, ".qweight"), *sc = ra_qtensors_find(t, ".scales"), *qz, *gi = NULL;
    if (!qw || !sc) return ra_fail(RA_ERR_FORMAT, "gptq: tensor %s missing", qw ? ".scales" : ".qweight");
    if (c->bits != 4 && c->bits != 8) return ra_fail(RA_ERR_UNSUPPORTED, "gptq: %u-bit weights", c->bits);
    const uint32_t pf = 32 / c->bits;
    if (qw->dtype != RA_QT_I32 || qw->n_dims != 2 || qw->shape[0] == 0 || qw->shape[0] > UINT32_MAX / pf ||
        qw->shape[1] == 0 || qw->shape[1] > UINT32_MAX)
        return ra_fail(RA_ERR_FORMAT, "gptq: .qweight must be a non-empty 2-D I32 tensor [K/%u, N]", pf);
    const uint32_t K = (uint32_t)qw->shape[0] * pf, N = (uint32_t)qw->shape[1];
    uint32_t unused;
    RA_TRY(check_shape(c->bits, N, K, &unused));
    const uint32_t G = group_size_of(c->group_size, K), NG = (K + G - 1) / G;
    ra_scale_dtype dt;
    RA_TRY(ra_scale_dtype_of(sc, FMT, &dt));
    RA_TRY(ra_qtensors_expect(t, FMT, ".scales", sc->dtype, 2, (uint64_t[]){NG, N}, &sc));
    RA_TRY(ra_qtensors_expect(t, FMT, ".qzeros", RA_QT_I32, 2, (uint64_t[]){NG, N / pf}, &qz));
    RA_TRY(ra_qtensors_expect(t, FMT, ".qweight", RA_QT_I32, 2, (uint64_t[]){K / pf, N}, &qw));
    if (ra_qtensors_find(t, ".g_idx")) RA_TRY(ra_qtensors_expect(t, FMT, ".g_idx", RA_QT_I32, 1, (uint64_t[]){K}, &gi));
    RA_TRY(ra_intq_alloc(out, N, K, c->bits, G, NG, gi != NULL));
    out->scale_dtype = dt;
    const uint16_t offset = c->zeros == RA_GPTQ_V1 ? 1 : 0;
    for (uint32_t n = 0; n < N; n++) {
        for (uint32_t k = 0; k < K; k++)
            out->codes[(size_t)n * K + k] = (uint8_t)ra_field_get(qw->data, (size_t)(k / pf) * N + n, k % pf, c->bits);
        for (uint32_t g = 0; g < NG; g++) {
            out->zeros[(size_t)n * NG + g] = (uint16_t)(ra_field_get(qz->data, (size_t)g * (N / pf) + n / pf, n % pf, c->bits) + offset);
            out->scales[(size_t)n * NG + g] = ra_scale_load(sc->data, (size_t)g * N + n, dt);
        }
    }
    for (uint32_t k = 0; gi && k < K; k++) out->g_idx[k] = (int32_t)ra_le32(gi->data + 4 * k);
    ra_status s = ra_intq_check(out, FMT);
    if (s != RA_OK) ra_intq_free(out);
    return s;
}
