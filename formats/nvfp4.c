/* NVFP4, compressed-tensors convention (include/ra/nvfp4.h). Sources:
 * compressed-tensors compressors/nvfp4/{base,helpers}.py (tensor names,
 * pack_fp4_to_uint8), quantization/utils/helpers.py (generate_gparam,
 * calculate_qparams: the global scale times amax / 6, cast to E4M3, 0 -> eps
 * 0.125), lifecycle/forward_helpers.py (scale / global_scale, then x / scale). */
#include "ra/nvfp4.h"

#include <float.h>
#include <string.h>

#include "ra/minifloat.h"
#include "ra/util.h"

static const char FMT[] = "nvfp4";

void ra_nvfp4_free(ra_nvfp4_weight *w)
{
    ra_blockq_free(&w->b);
    w->global_scale = 0;
}

float ra_nvfp4_block_scale(const ra_nvfp4_weight *w, uint32_t n, uint32_t k)
{
    return ra_e4m3_to_f32(w->b.scales[((size_t)n * w->b.cols + k) / RA_NVFP4_GROUP]) / w->global_scale;
}

ra_status ra_nvfp4_quantize(const float *w, uint32_t rows, uint32_t cols, ra_nvfp4_weight *out)
{
    memset(out, 0, sizeof *out);
    RA_TRY(ra_check_finite(FMT, w, (size_t)rows * cols));
    RA_TRY(ra_blockq_alloc(&out->b, FMT, rows, cols, RA_NVFP4_GROUP));
    const size_t total = (size_t)rows * cols;
    float amax = 0;
    for (size_t i = 0; i < total; i++) amax = fabsf(w[i]) > amax ? fabsf(w[i]) : amax;
    float g = (RA_E4M3_MAX * RA_E2M1_MAX) / (amax > FLT_MIN ? amax : FLT_MIN);
    out->global_scale = isfinite(g) ? g : 1.0f;
    for (size_t b = 0; b < total / RA_NVFP4_GROUP; b++) {
        const float *v = w + b * RA_NVFP4_GROUP;
        float bmax = 0;
        for (int i = 0; i < RA_NVFP4_GROUP; i++) bmax = fabsf(v[i]) > bmax ? fabsf(v[i]) : bmax;
        uint8_t sb = ra_f32_to_e4m3(out->global_scale * (bmax / RA_E2M1_MAX), true); /* clamp to +-448, then cast */
        out->b.scales[b] = sb == 0 ? ra_f32_to_e4m3(0.125f, true) : sb;          /* a zero scale becomes eps */
        float eff = ra_e4m3_to_f32(out->b.scales[b]) / out->global_scale;
        for (int i = 0; i < RA_NVFP4_GROUP; i++) out->b.codes[b * RA_NVFP4_GROUP + i] = ra_f32_to_e2m1(v[i] / eff);
    }
    return RA_OK;
}

void ra_nvfp4_dequantize_rows(const ra_nvfp4_weight *w, uint32_t r0, uint32_t r1, float *out)
{
    const uint32_t K = w->b.cols;
    for (uint32_t n = r0; n < r1; n++)
        for (uint32_t k = 0; k < K; k++)
            out[(size_t)(n - r0) * K + k] = ra_e2m1_to_f32(w->b.codes[(size_t)n * K + k]) * ra_nvfp4_block_scale(w, n, k);
}

static void nvfp4_rows(const void *layer, uint32_t r0, uint32_t r1, float *out) { ra_nvfp4_dequantize_rows(layer, r0, r1, out); }

ra_status ra_nvfp4_dequantize(const ra_nvfp4_weight *w, float **out)
{
    return ra_qlinear_dequantize(w, w->b.rows, w->b.cols, nvfp4_rows, out);
}

ra_status ra_nvfp4_matmul(ra_pool *p, const ra_nvfp4_weight *w, const float *x, uint32_t n, float *y)
{
    return ra_qlinear_matmul(p, w, w->b.rows, w->b.cols, nvfp4_rows, x, n, y);
}

ra_status ra_nvfp4_pack(const ra_nvfp4_weight *w, ra_qtensors *out)
{
    const uint32_t N = w->b.rows, K = w->b.cols;
    uint8_t *wp, *sc, *gs;
    ra_status s = ra_qtensors_add(out, ".weight_packed", RA_QT_U8, 2, (uint64_t[]){N, K / 2}, &wp);
    if (s == RA_OK) s = ra_qtensors_add(out, ".weight_scale", RA_QT_F8_E4M3, 2, (uint64_t[]){N, K / RA_NVFP4_GROUP}, &sc);
    if (s == RA_OK) s = ra_qtensors_add(out, ".weight_global_scale", RA_QT_F32, 1, (uint64_t[]){1}, &gs);
    if (s != RA_OK) {
        ra_qtensors_free(out);
        return s;
    }
    ra_fp4_pack(w->b.codes, (size_t)N * K, wp);
    memcpy(sc, w->b.scales, (size_t)N * K / RA_NVFP4_GROUP);
    ra_put_le32(gs, ra_f32_bits(w->global_scale));
    return RA_OK;
}

ra_status ra_nvfp4_unpack(const ra_qtensors *t, ra_nvfp4_weight *out)
{
    memset(out, 0, sizeof *out);
    const ra_qtensor *wp = ra_qtensors_find(t, ".weight_packed"), *sc, *gs;
    if (!wp) return ra_fail(RA_ERR_FORMAT, "nvfp4: tensor .weight_packed missing");
    if (wp->dtype != RA_QT_U8 || wp->n_dims != 2 || wp->shape[0] > UINT32_MAX || wp->shape[1] > UINT32_MAX / 2)
        return ra_fail(RA_ERR_FORMAT, "nvfp4: .weight_packed must be a 2-D U8 tensor [N, K/2]");
    const uint32_t N = (uint32_t)wp->shape[0], K = 2 * (uint32_t)wp->shape[1];
    RA_TRY(ra_qtensors_expect(t, FMT, ".weight_packed", RA_QT_U8, 2, (uint64_t[]){N, K / 2}, &wp));
    RA_TRY(ra_qtensors_expect(t, FMT, ".weight_scale", RA_QT_F8_E4M3, 2, (uint64_t[]){N, K / RA_NVFP4_GROUP}, &sc));
    RA_TRY(ra_qtensors_expect(t, FMT, ".weight_global_scale", RA_QT_F32, 1, (uint64_t[]){1}, &gs));
    float g = ra_bits_f32(ra_le32(gs->data));
    if (!isfinite(g) || g <= 0) return ra_fail(RA_ERR_FORMAT, "nvfp4: weight_global_scale is %g", (double)g);
    RA_TRY(ra_blockq_alloc(&out->b, FMT, N, K, RA_NVFP4_GROUP));
    out->global_scale = g;
    ra_fp4_unpack(wp->data, (size_t)N * K, out->b.codes);
    memcpy(out->b.scales, sc->data, (size_t)N * K / RA_NVFP4_GROUP);
    return RA_OK;
}
