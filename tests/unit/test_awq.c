/* AWQ (AutoAWQ GEMM): the formats-int4.md section 1 vector, RTN by AutoAWQ's
 * rule, pack/unpack round trips for groups of 32/64/128, refusals, and the
 * matmul contract. */
#include "int4_vectors.h"
#include "quant_check.h"
#include "ra/awq.h"

/* The K=16, N=8, G=8 vector: u = (k + 2n) % 16, z = (4g + n + 3) % 16, s = (n + 1 + 8g) / 64. */
static void check_reference_vector(void)
{
    ra_intq q;
    CHECK_OK(ra_intq_alloc(&q, 8, 16, 4, 8, 2, false));
    q.scale_dtype = RA_SCALE_F16;
    for (uint32_t n = 0; n < 8; n++) {
        for (uint32_t k = 0; k < 16; k++) q.codes[n * 16 + k] = (uint8_t)((k + 2 * n) % 16);
        for (uint32_t g = 0; g < 2; g++) {
            q.zeros[n * 2 + g] = (uint16_t)((4 * g + n + 3) % 16);
            q.scales[n * 2 + g] = (float)(n + 1 + 8 * g) / 64;
        }
    }
    ra_qtensors t = {0};
    CHECK_OK(ra_awq_pack(&q, &t));
    const ra_qtensor *qw = ra_qtensors_find(&t, ".qweight"), *qz = ra_qtensors_find(&t, ".qzeros"),
                     *sc = ra_qtensors_find(&t, ".scales");
    CHECK(qw && qz && sc && qw->shape[0] == 16 && qw->shape[1] == 1 && qz->shape[0] == 2 && sc->shape[1] == 8);
    const uint32_t col0[16] = {0xEA62C840, 0xFB73D951, 0x0C84EA62, 0x1D95FB73, 0x2EA60C84, 0x3FB71D95,
                               0x40C82EA6, 0x51D93FB7, 0x62EA40C8, 0x73FB51D9, 0x840C62EA, 0x951D73FB,
                               0xA62E840C, 0xB73F951D, 0xC840A62E, 0xD951B73F};
    for (int k = 0; k < 16; k++) CHECK_MSG(qc_word(qw, k) == col0[k], "qweight[%d][0] = %08x", k, qc_word(qw, k));
    CHECK(qc_word(qz, 0) == 0xA8649753 && qc_word(qz, 1) == 0xECA8DB97);
    const uint16_t s16[2][8] = {{0x2400, 0x2800, 0x2A00, 0x2C00, 0x2D00, 0x2E00, 0x2F00, 0x3000},
                                {0x3080, 0x3100, 0x3180, 0x3200, 0x3280, 0x3300, 0x3380, 0x3400}};
    for (int i = 0; i < 16; i++) CHECK_MSG(ra_le16(sc->data + 2 * i) == s16[i / 8][i % 8], "scales[%d]", i);

    ra_intq back;
    CHECK_OK(ra_awq_unpack(&t, 8, &back));
    float *w = NULL;
    CHECK_OK(ra_intq_dequantize(&back, &w));
    int bad = 0;
    for (int n = 0; n < 8; n++)
        for (int k = 0; k < 16; k++) bad += w[n * 16 + k] != AWQ_WT[k][n];
    CHECK_MSG(bad == 0, "%d dequantized values differ from the section 1 table", bad);
    CHECK(!memcmp(back.codes, q.codes, 128) && !memcmp(back.zeros, q.zeros, 32) && !memcmp(back.scales, q.scales, 64));
    free(w);
    ra_intq_free(&back);
    ra_qtensors_free(&t);
    ra_intq_free(&q);
}

static ra_status awq_pack(const void *cfg, const void *q, ra_qtensors *out) { (void)cfg; return ra_awq_pack(q, out); }
static ra_status awq_unpack(const void *cfg, const ra_qtensors *t, void *q) { return ra_awq_unpack(t, *(const uint32_t *)cfg, q); }
static const qc_format AWQ = {awq_pack, awq_unpack, qc_intq_dequantize, qc_intq_free};

int main(void)
{
    check_reference_vector();

    /* AutoAWQ's rule on a group worked by hand: min -0.75, max 3 -> s = 3.75 / 15
     * = 0.25, z = -round(-3) = 3; 0.125 / s = 0.5 and 0.375 / s = 1.5 round to
     * even (0 and 2), so their codes are 3 and 5; 3 / s + 3 = 15. */
    {
        float w[8 * 8];
        const float g[8] = {-0.75f, 3.0f, 0.125f, 0.375f, -0.125f, 1.0f, 0.0f, 2.875f};
        for (int r = 0; r < 8; r++) memcpy(w + r * 8, g, sizeof g);
        ra_intq q;
        CHECK_OK(ra_awq_quantize(w, 8, 8, 8, &q));
        const uint8_t want[8] = {0, 15, 3, 5, 3, 7, 3, 15};
        CHECK(q.scales[0] == 0.25f && q.zeros[0] == 3 && !memcmp(q.codes, want, 8));
        ra_intq_free(&q);
    }

    /* Round trips for groups of 32, 64 and 128, and the RTN error */
    const uint32_t groups[3] = {32, 64, 128};
    for (int i = 0; i < 3; i++) {
        const uint32_t N = 48, K = 384;
        float *w = qc_random((size_t)N * K, 0.05f), *a = NULL;
        ra_intq q, back;
        CHECK_OK(ra_awq_quantize(w, N, K, groups[i], &q));
        qc_check_round_trip("awq", &AWQ, &groups[i], &q, &back, (size_t)N * K);
        /* half a step, except at a group's ends, where the f16 rounding of
         * the scale and the rounded zero can clip by under a step */
        CHECK_OK(ra_intq_dequantize(&q, &a));
        int far = 0;
        for (size_t j = 0; j < (size_t)N * K; j++) far += fabsf(a[j] - w[j]) > q.scales[(j / K) * q.n_groups + (j % K) / groups[i]];
        CHECK_MSG(far == 0, "awq G=%u: %d weights further than a step", groups[i], far);
        free(a); free(w);
        ra_intq_free(&q);
    }

    /* Refusals */
    {
        float *w = qc_random(16 * 200, 1.0f);
        ra_intq q;
        CHECK_STATUS(ra_awq_quantize(w, 16, 200, 128, &q), RA_ERR_FORMAT); /* K % G */
        CHECK_STATUS(ra_awq_quantize(w, 12, 200, 100, &q), RA_ERR_FORMAT); /* N % 8 */
        w[7] = NAN;
        CHECK_STATUS(ra_awq_quantize(w, 16, 200, 100, &q), RA_ERR_USAGE);
        w[7] = 0;
        CHECK_OK(ra_awq_quantize(w, 16, 200, 100, &q));
        ra_qtensors t = {0};
        CHECK_OK(ra_awq_pack(&q, &t));
        ra_intq_free(&q);
        CHECK_STATUS(ra_awq_unpack(&t, 128, &q), RA_ERR_FORMAT); /* wrong group size for the shapes */
        CHECK_STATUS(ra_awq_unpack(&t, 50, &q), RA_ERR_FORMAT);  /* qzeros has 2 rows, not 4 */
        ra_qtensors missing = qc_without(&t, ".qzeros");
        CHECK_STATUS(ra_awq_unpack(&missing, 100, &q), RA_ERR_FORMAT); /* no qzeros */
        CHECK(strstr(ra_errmsg(), "qzeros") != NULL);
        t.t[0].dtype = RA_QT_F32;
        CHECK_STATUS(ra_awq_unpack(&t, 100, &q), RA_ERR_FORMAT);
        t.t[0].dtype = RA_QT_I32;
        t.t[2].dtype = RA_QT_U8;
        CHECK_STATUS(ra_awq_unpack(&t, 100, &q), RA_ERR_FORMAT);
        CHECK_STATUS(ra_qtensors_borrow(&missing, ".x", RA_QT_I32, 2, (uint64_t[]){3, 3}, w, 35), RA_ERR_FORMAT);
        ra_qtensors_free(&missing);
        ra_qtensors_free(&t);
        free(w);
    }

    /* The matmul contract on an AWQ layer whose K is not a multiple of 128 */
    {
        float *w = qc_random(40 * 96, 0.1f);
        ra_intq q;
        CHECK_OK(ra_awq_quantize(w, 40, 96, 32, &q));
        qc_check_intq_matmul("awq", &q);
        ra_intq_free(&q);
        free(w);
    }
    CHECK_DONE();
}
