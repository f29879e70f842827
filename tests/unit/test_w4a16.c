/* compressed-tensors pack-quantized: the formats-int4.md section 4 vectors
 * (symmetric and asymmetric), the same bits as a GPTQ qweight, the
 * compressed-tensors RTN rule, round trips (4 and 8 bits, sym and asym,
 * groups of 32/64/128, channel with K not a multiple of 8, actorder),
 * refusals and the matmul contract. */
#include "int4_vectors.h"
#include "quant_check.h"
#include "ra/gptq.h"
#include "ra/w4a16.h"

/* N=8, K=16, G=8: q = ((k + 3n) % 16) - 8, s = (n + 1 + 8g) / 64, zp = ((2n + 5g) % 16) - 8 when asymmetric */
static void check_reference_vector(bool sym)
{
    ra_intq q;
    CHECK_OK(ra_intq_alloc(&q, 8, 16, 4, 8, 2, false));
    q.scale_dtype = RA_SCALE_BF16;
    for (uint32_t n = 0; n < 8; n++) {
        for (uint32_t k = 0; k < 16; k++) q.codes[n * 16 + k] = (uint8_t)((k + 3 * n) % 16);
        for (uint32_t g = 0; g < 2; g++) {
            q.scales[n * 2 + g] = (float)(n + 1 + 8 * g) / 64;
            q.zeros[n * 2 + g] = (uint16_t)(sym ? 8 : (2 * n + 5 * g) % 16);
        }
    }
    ra_qtensors t = {0};
    CHECK_OK(ra_w4a16_pack(&q, sym, &t));
    const uint32_t packed[8][2] = {{0x76543210, 0xFEDCBA98}, {0xA9876543, 0x210FEDCB}, {0xDCBA9876, 0x543210FE},
                                   {0x0FEDCBA9, 0x87654321}, {0x3210FEDC, 0xBA987654}, {0x6543210F, 0xEDCBA987},
                                   {0x98765432, 0x10FEDCBA}, {0xCBA98765, 0x43210FED}};
    const ra_qtensor *wp = ra_qtensors_find(&t, ".weight_packed"), *zp = ra_qtensors_find(&t, ".weight_zero_point"),
                     *sh = ra_qtensors_find(&t, ".weight_shape"), *sc = ra_qtensors_find(&t, ".weight_scale");
    int bad = 0;
    for (int i = 0; i < 16; i++) bad += qc_word(wp, i) != packed[i / 2][i % 2];
    CHECK_MSG(bad == 0, "weight_packed: %d words differ", bad);
    CHECK(sh && sh->dtype == RA_QT_I64 && ra_le64(sh->data) == 8 && ra_le64(sh->data + 8) == 16);
    CHECK(sc && sc->dtype == RA_QT_BF16 && sc->shape[0] == 8 && sc->shape[1] == 2);
    if (sym) CHECK(zp == NULL && t.n == 3);
    else CHECK(zp && zp->shape[0] == 1 && zp->shape[1] == 2 && qc_word(zp, 0) == 0xECA86420 && qc_word(zp, 1) == 0x31FDB975);

    ra_w4a16_config c = {.bits = 4, .group_size = 8, .symmetric = sym};
    ra_intq back;
    CHECK_OK(ra_w4a16_unpack(&t, &c, &back));
    float *w = NULL;
    CHECK_OK(ra_intq_dequantize(&back, &w));
    bad = 0;
    for (int n = 0; n < (sym ? 8 : 2); n++)
        for (int k = 0; k < 16; k++) bad += w[n * 16 + k] != (sym ? CT_SYM_W[n][k] : CT_ASYM_W[n][k]);
    CHECK_MSG(bad == 0, "%s: %d dequantized values differ from the section 4 table", sym ? "sym" : "asym", bad);

    /* weight_packed transposed is a GPTQ qweight of the same codes */
    ra_qtensors g = {0};
    q.scale_dtype = RA_SCALE_F16;
    for (int i = 0; i < 16; i++) q.zeros[i] = 8;
    CHECK_OK(ra_gptq_pack(&q, RA_GPTQ_V2, &g));
    bad = 0;
    for (int r = 0; r < 2; r++)
        for (int n = 0; n < 8; n++) bad += qc_word(&g.t[0], (size_t)r * 8 + n) != qc_word(wp, (size_t)n * 2 + r);
    CHECK_MSG(bad == 0, "weight_packed^T differs from the GPTQ qweight in %d words", bad);
    free(w);
    ra_qtensors_free(&g);
    ra_intq_free(&back);
    ra_qtensors_free(&t);
    ra_intq_free(&q);
}

/* The compressed-tensors rule on groups worked by hand:
 *  sym, bf16: absmax 3 -> s = 3 / 7.5 = 0.4 -> bf16 0.400390625; 3 / s = 7.49 -> 7,
 *    -1.5 / s = -3.75 -> -4, 0.6 / s = 1.499 -> 1 (u = q + 8: 15, 4, 9);
 *  asym, f32: [-0.25, 3.5] -> s = 0.25, zp = -8 + 1 = -7; 0.125 / s + zp = -6.5
 *    rounds to even -6 (u = 2), where round(0.5) + zp would give -7. */
static void check_rtn_rule(void)
{
    float w[8 * 4] = {0};
    for (int r = 0; r < 8; r++) {
        w[r * 4 + 0] = 3.0f;
        w[r * 4 + 1] = -1.5f;
        w[r * 4 + 2] = 0.6f;
    }
    ra_w4a16_config c = {.bits = 4, .group_size = -1, .symmetric = true, .scale_dtype = RA_SCALE_BF16};
    ra_intq q;
    CHECK_OK(ra_w4a16_quantize(w, 8, 4, &c, NULL, &q));
    CHECK(q.scales[0] == 0.400390625f && q.zeros[0] == 8);
    CHECK(q.codes[0] == 15 && q.codes[1] == 4 && q.codes[2] == 9 && q.codes[3] == 8);
    ra_intq_free(&q);
    for (int r = 0; r < 8; r++) {
        w[r * 4 + 0] = -0.25f;
        w[r * 4 + 1] = 3.5f;
        w[r * 4 + 2] = 0.125f;
    }
    c.symmetric = false;
    c.scale_dtype = RA_SCALE_F32;
    CHECK_OK(ra_w4a16_quantize(w, 8, 4, &c, NULL, &q));
    CHECK(q.scales[0] == 0.25f && q.zeros[0] == 1);
    CHECK(q.codes[0] == 0 && q.codes[1] == 15 && q.codes[2] == 2 && q.codes[3] == 1);
    ra_intq_free(&q);
    /* an all-zero group: the scale becomes bf16's eps, every code dequantizes to 0 */
    memset(w, 0, sizeof w);
    c.scale_dtype = RA_SCALE_BF16;
    CHECK_OK(ra_w4a16_quantize(w, 8, 4, &c, NULL, &q));
    CHECK(q.scales[0] == 0x1p-7f && q.codes[0] == q.zeros[0]);
    ra_intq_free(&q);
}

static ra_status ct_pack(const void *cfg, const void *q, ra_qtensors *out)
{
    return ra_w4a16_pack(q, ((const ra_w4a16_config *)cfg)->symmetric, out);
}
static ra_status ct_unpack(const void *cfg, const ra_qtensors *t, void *q) { return ra_w4a16_unpack(t, cfg, q); }
static const qc_format W4A16 = {ct_pack, ct_unpack, qc_intq_dequantize, qc_intq_free};

static void round_trip(uint32_t bits, int32_t group, bool sym, bool act_order, uint32_t N, uint32_t K)
{
    float *w = qc_random((size_t)N * K, 0.05f);
    int32_t *perm = act_order ? qc_shuffled(K) : NULL;
    ra_w4a16_config c = {.bits = bits, .group_size = group, .symmetric = sym, .scale_dtype = RA_SCALE_BF16};
    ra_intq q, back;
    CHECK_OK(ra_w4a16_quantize(w, N, K, &c, perm, &q));
    char name[64];
    snprintf(name, sizeof name, "w4a16 %u-bit G=%d sym=%d act=%d K=%u", bits, group, sym, act_order, K);
    qc_check_round_trip(name, &W4A16, &c, &q, &back, (size_t)N * K);
    free(w); free(perm);
    ra_intq_free(&q);
}

static void check_refusals(void)
{
    float *w = qc_random(20 * 96, 1.0f);
    ra_w4a16_config c = {.bits = 4, .group_size = 64, .symmetric = false, .scale_dtype = RA_SCALE_BF16};
    ra_intq q, back;
    CHECK_STATUS(ra_w4a16_quantize(w, 20, 96, &c, NULL, &q), RA_ERR_FORMAT); /* 96 % 64 */
    c.group_size = 32;
    CHECK_OK(ra_w4a16_quantize(w, 20, 96, &c, NULL, &q));
    CHECK_STATUS(ra_w4a16_pack(&q, true, &(ra_qtensors){0}), RA_ERR_UNSUPPORTED); /* asymmetric zeros as symmetric */
    {
        ra_gptq_config gc = {.bits = 4, .group_size = 64, .sym = true, .zeros = RA_GPTQ_V2};
        ra_intq g;
        CHECK_OK(ra_gptq_quantize(w, 16, 96, &gc, NULL, &g)); /* a short last group */
        CHECK_STATUS(ra_w4a16_pack(&g, true, &(ra_qtensors){0}), RA_ERR_UNSUPPORTED);
        ra_intq_free(&g);
    }
    ra_qtensors t = {0};
    CHECK_OK(ra_w4a16_pack(&q, false, &t));
    CHECK(t.t[2].shape[0] == 3 && t.t[2].shape[1] == 3); /* zero points: ceil(20 / 8) x 3 groups */
    c.symmetric = true; /* a symmetric config reads no zero points: fine, but ... */
    CHECK_OK(ra_w4a16_unpack(&t, &c, &back));
    ra_intq_free(&back);
    c.symmetric = false;
    ra_qtensors part = qc_without(&t, ".weight_zero_point");
    CHECK_STATUS(ra_w4a16_unpack(&part, &c, &back), RA_ERR_FORMAT); /* ... asymmetric needs them */
    CHECK(strstr(ra_errmsg(), "weight_zero_point") != NULL);
    ra_qtensors_free(&part);
    uint8_t *shape = t.t[3].data;
    ra_put_le64(shape + 8, 97); /* K = 97: weight_packed would need 13 words, and 97 % 32 */
    CHECK_STATUS(ra_w4a16_unpack(&t, &c, &back), RA_ERR_FORMAT);
    ra_put_le64(shape + 8, (uint64_t)-5);
    CHECK_STATUS(ra_w4a16_unpack(&t, &c, &back), RA_ERR_FORMAT);
    ra_put_le64(shape + 8, 96);
    c.group_size = -1; /* channel: scales would be [20, 1] */
    CHECK_STATUS(ra_w4a16_unpack(&t, &c, &back), RA_ERR_FORMAT);
    ra_qtensors_free(&t);
    ra_intq_free(&q);

    /* actorder: a g_idx entry past the groups */
    int32_t *perm = qc_shuffled(96);
    c.group_size = 32;
    CHECK_OK(ra_w4a16_quantize(w, 20, 96, &c, perm, &q));
    CHECK_OK(ra_w4a16_pack(&q, false, &t));
    const ra_qtensor *gi = ra_qtensors_find(&t, ".weight_g_idx");
    CHECK(gi != NULL);
    ra_put_le32(gi->data + 4 * 7, 3);
    CHECK_STATUS(ra_w4a16_unpack(&t, &c, &back), RA_ERR_FORMAT);
    ra_qtensors_free(&t);
    ra_intq_free(&q);
    free(perm);
    free(w);
}

int main(void)
{
    check_reference_vector(true);
    check_reference_vector(false);
    check_rtn_rule();
    const int32_t groups[3] = {32, 64, 128};
    for (int g = 0; g < 3; g++)
        for (uint32_t bits = 4; bits <= 8; bits += 4)
            for (int sym = 0; sym < 2; sym++) round_trip(bits, groups[g], sym, g == 2, 20, 384);
    round_trip(4, -1, true, false, 12, 100); /* channel, K padded to 104 */
    round_trip(4, -1, false, false, 13, 100);
    round_trip(8, -1, false, false, 5, 99);
    check_refusals();

    float *w = qc_random(21 * 100, 0.1f);
    ra_w4a16_config c = {.bits = 4, .group_size = -1, .symmetric = false, .scale_dtype = RA_SCALE_BF16};
    ra_intq q;
    CHECK_OK(ra_w4a16_quantize(w, 21, 100, &c, NULL, &q));
    qc_check_intq_matmul("w4a16 channel", &q);
    ra_intq_free(&q);
    free(w);
    CHECK_DONE();
}
