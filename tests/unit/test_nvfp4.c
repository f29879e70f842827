/* NVFP4: the formats-fp.md 8.3 block (global scale, E4M3 block scale, codes,
 * packed bytes, decoded values), the compressed-tensors rule on edge cases,
 * round trips, refusals and the matmul contract. */
#include "quant_check.h"
#include "ra/minifloat.h"
#include "ra/nvfp4.h"

static void check_reference_block(void)
{
    float w[32] = {0, 0.09375f, -0.203125f, 0.3125f, 0.4375f, -0.59375f, 0.75f, 0.90625f, -1.0625f, 1.1875f, 1.34375f,
                   -1.5f, 1.625f, -1.6875f, 0.046875f, -0.15625f};
    w[16 + 3] = 5.0f; /* the second block holds the tensor's amax */
    ra_nvfp4_weight q;
    CHECK_OK(ra_nvfp4_quantize(w, 1, 32, &q));
    CHECK(ra_f32_bits(q.global_scale) == 0x44066666 && q.global_scale == 537.5999755859375f);
    CHECK(q.b.scales[0] == 0x71 && ra_e4m3_to_f32(q.b.scales[0]) == 144.0f);
    float eff = ra_nvfp4_block_scale(&q, 0, 0);
    CHECK(ra_f32_bits(eff) == 0x3E892493);
    CHECK(eff == 144.0f * (1.0f / q.global_scale)); /* here s / g and s * (1/g) agree, as 8.3 says */
    const uint8_t codes[16] = {0x0, 0x1, 0xA, 0x2, 0x3, 0xC, 0x5, 0x5, 0xE, 0x6, 0x7, 0xF, 0x7, 0xF, 0x0, 0x9};
    CHECK(!memcmp(q.b.codes, codes, 16));
    ra_qtensors t = {0};
    CHECK_OK(ra_nvfp4_pack(&q, &t));
    const uint8_t packed[8] = {0x10, 0x2A, 0xC3, 0x55, 0x6E, 0xF7, 0xF7, 0x90};
    const ra_qtensor *wp = ra_qtensors_find(&t, ".weight_packed"), *sc = ra_qtensors_find(&t, ".weight_scale"),
                     *gs = ra_qtensors_find(&t, ".weight_global_scale");
    CHECK(wp && wp->shape[0] == 1 && wp->shape[1] == 16 && !memcmp(wp->data, packed, 8));
    CHECK(sc && sc->dtype == RA_QT_F8_E4M3 && sc->shape[1] == 2 && gs && gs->dtype == RA_QT_F32 && gs->shape[0] == 1);
    const float dec[16] = {0, 0.133928582072258f, -0.267857164144516f, 0.267857164144516f, 0.4017857313156128f,
                           -0.535714328289032f, 0.8035714626312256f, 0.8035714626312256f, -1.071428656578064f,
                           1.071428656578064f, 1.6071429252624512f, -1.6071429252624512f, 1.6071429252624512f,
                           -1.6071429252624512f, 0, -0.133928582072258f};
    ra_nvfp4_weight back;
    CHECK_OK(ra_nvfp4_unpack(&t, &back));
    float *d = NULL;
    CHECK_OK(ra_nvfp4_dequantize(&back, &d));
    for (int i = 0; i < 16; i++) CHECK_MSG(d[i] == dec[i], "decoded[%d] = %.17g, want %.17g", i, (double)d[i], (double)dec[i]);
    CHECK(q.b.scales[1] == 0x7e && q.b.codes[19] == 0x7 && fabsf(d[19] - 5.0f) < 1e-5f); /* the tensor amax: 448 and 6 */
    free(d);
    ra_qtensors_free(&t);
    ra_nvfp4_free(&back);
    ra_nvfp4_free(&q);
}

static void check_edges(void)
{
    /* an all-zero tensor: g = 2688 / FLT_MIN is inf -> 1; block scales 0 -> 0.125 (0x20); codes 0 */
    float z[16] = {0};
    ra_nvfp4_weight q;
    CHECK_OK(ra_nvfp4_quantize(z, 1, 16, &q));
    CHECK(q.global_scale == 1.0f && q.b.scales[0] == 0x20 && q.b.codes[0] == 0);
    ra_nvfp4_free(&q);
    /* one zero block beside a non-zero one */
    float w[32] = {0};
    w[20] = -3.0f;
    CHECK_OK(ra_nvfp4_quantize(w, 1, 32, &q));
    CHECK(q.b.scales[0] == 0x20 && q.b.codes[20] == 0xF); /* -3 is the amax: -6 * eff */
    CHECK(q.global_scale == 2688.0f / 3.0f && ra_e4m3_to_f32(q.b.scales[1]) == 448.0f);
    ra_nvfp4_free(&q);
    float *bad = qc_random(48, 1.0f);
    CHECK_STATUS(ra_nvfp4_quantize(bad, 2, 24, &q), RA_ERR_FORMAT); /* K % 16 */
    bad[3] = NAN;
    CHECK_STATUS(ra_nvfp4_quantize(bad, 3, 16, &q), RA_ERR_USAGE);
    free(bad);
}

static ra_status nvfp4_mm(ra_pool *p, const void *w, const float *x, uint32_t n, float *y)
{
    return ra_nvfp4_matmul(p, w, x, n, y);
}

static ra_status nv_pack(const void *cfg, const void *w, ra_qtensors *out) { (void)cfg; return ra_nvfp4_pack(w, out); }
static ra_status nv_unpack(const void *cfg, const ra_qtensors *t, void *w) { (void)cfg; return ra_nvfp4_unpack(t, w); }
static ra_status nv_dequantize(const void *w, float **out) { return ra_nvfp4_dequantize(w, out); }
static void nv_free(void *w) { ra_nvfp4_free(w); }
static const qc_format NVFP4 = {nv_pack, nv_unpack, nv_dequantize, nv_free};

int main(void)
{
    check_reference_block();
    check_edges();

    /* round trip; every code is the nearest E2M1 value of w / eff (ties to even, saturating) */
    const uint32_t N = 37, K = 272;
    float *w = qc_random((size_t)N * K, 0.5f), *a = NULL;
    ra_nvfp4_weight q, back;
    CHECK_OK(ra_nvfp4_quantize(w, N, K, &q));
    qc_check_round_trip("nvfp4", &NVFP4, NULL, &q, &back, (size_t)N * K);
    int far = 0;
    for (size_t i = 0; i < (size_t)N * K; i++)
        far += q.b.codes[i] != ra_f32_to_e2m1(w[i] / ra_nvfp4_block_scale(&q, (uint32_t)(i / K), (uint32_t)(i % K)));
    CHECK(far == 0);
    CHECK_OK(ra_nvfp4_dequantize(&q, &a));
    qc_check_matmul("nvfp4", nvfp4_mm, &q, a, N, K, NULL);
    ra_qtensors t = {0};
    CHECK_OK(ra_nvfp4_pack(&q, &t));

    /* refusals: missing global scale, a wrong scale shape, a bad global scale */
    ra_qtensors part = qc_without(&t, ".weight_global_scale");
    CHECK_STATUS(ra_nvfp4_unpack(&part, &back), RA_ERR_FORMAT);
    CHECK(strstr(ra_errmsg(), "weight_global_scale") != NULL);
    ra_qtensors_free(&part);
    t.t[1].shape[1] = 16;
    CHECK_STATUS(ra_nvfp4_unpack(&t, &back), RA_ERR_FORMAT);
    t.t[1].shape[1] = 17;
    ra_put_le32(t.t[2].data, 0xbf800000); /* -1 */
    CHECK_STATUS(ra_nvfp4_unpack(&t, &back), RA_ERR_FORMAT);
    free(a); free(w);
    ra_qtensors_free(&t);
    ra_nvfp4_free(&q);
    CHECK_DONE();
}
