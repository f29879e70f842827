/* GPTQ: the formats-int4.md section 2 vectors (sym v1/v2, act-order asym,
 * the v1 zero-of-0 pitfall), AutoGPTQ's RTN rule, round trips for 4 and 8
 * bits, sym and asym, v1 and v2, groups of 32/64/128 and per channel, act-order
 * with a shuffled g_idx, refusals, and the matmul contract. */
#include "int4_vectors.h"
#include "quant_check.h"
#include "ra/gptq.h"

static float vec_scale(uint32_t g, uint32_t n) { return (float)(n + 1 + 8 * g) / 64; }

/* A K=16, N=8, G=8 layer with codes u(k, n), zeros z(g, n) and the vector scales. */
static void vector_layer(ra_intq *q, uint32_t (*u)(uint32_t, uint32_t), uint32_t (*z)(uint32_t, uint32_t),
                         const int32_t *g_idx)
{
    CHECK_OK(ra_intq_alloc(q, 8, 16, 4, 8, 2, g_idx != NULL));
    q->scale_dtype = RA_SCALE_F16;
    for (uint32_t n = 0; n < 8; n++) {
        for (uint32_t k = 0; k < 16; k++) q->codes[n * 16 + k] = (uint8_t)u(k, n);
        for (uint32_t g = 0; g < 2; g++) {
            q->zeros[n * 2 + g] = (uint16_t)z(g, n);
            q->scales[n * 2 + g] = vec_scale(g, n);
        }
    }
    if (g_idx) memcpy(q->g_idx, g_idx, 16 * sizeof *g_idx);
}

static uint32_t sym_u(uint32_t k, uint32_t n) { return (3 * k + n) % 16; }
static uint32_t sym_z(uint32_t g, uint32_t n) { (void)g; (void)n; return 8; }
static uint32_t act_u(uint32_t k, uint32_t n) { return (5 * k + 3 * n + 1) % 16; }
static uint32_t act_z(uint32_t g, uint32_t n) { return 1 + (2 * g + 3 * n) % 15; }

/* pack in `zf`, compare words, unpack, compare the dequantized table W^T[k][n] */
static void check_vector(const ra_intq *q, ra_gptq_zeros zf, const uint32_t qweight[2][8], const uint32_t qzeros[2],
                         const float wt[16][8], const char *name)
{
    ra_qtensors t = {0};
    CHECK_OK(ra_gptq_pack(q, zf, &t));
    const ra_qtensor *qw = ra_qtensors_find(&t, ".qweight"), *qz = ra_qtensors_find(&t, ".qzeros");
    int bad = 0;
    for (int i = 0; i < 16; i++) bad += qc_word(qw, i) != qweight[i / 8][i % 8];
    for (int g = 0; g < 2; g++) bad += qc_word(qz, g) != qzeros[g];
    CHECK_MSG(bad == 0, "%s: %d packed words differ", name, bad);
    ra_gptq_config c = {.bits = 4, .group_size = 8, .zeros = zf};
    ra_intq back;
    CHECK_OK(ra_gptq_unpack(&t, &c, &back));
    float *w = NULL;
    CHECK_OK(ra_intq_dequantize(&back, &w));
    bad = 0;
    for (int n = 0; n < 8; n++)
        for (int k = 0; k < 16; k++) bad += w[n * 16 + k] != wt[k][n];
    CHECK_MSG(bad == 0, "%s: %d dequantized values differ from the table", name, bad);
    free(w);
    ra_intq_free(&back);
    ra_qtensors_free(&t);
}

static void check_reference_vectors(void)
{
    const uint32_t sym_qw[2][8] = {{0x52FC9630, 0x630DA741, 0x741EB852, 0x852FC963, 0x9630DA74, 0xA741EB85, 0xB852FC96, 0xC9630DA7},
                                   {0xDA741EB8, 0xEB852FC9, 0xFC9630DA, 0x0DA741EB, 0x1EB852FC, 0x2FC9630D, 0x30DA741E, 0x41EB852F}};
    ra_intq q;
    vector_layer(&q, sym_u, sym_z, NULL);
    check_vector(&q, RA_GPTQ_V1, sym_qw, (const uint32_t[]){0x77777777, 0x77777777}, GPTQ_SYM_WT, "sym v1");
    check_vector(&q, RA_GPTQ_V2, sym_qw, (const uint32_t[]){0x88888888, 0x88888888}, GPTQ_SYM_WT, "sym v2");
    ra_intq_free(&q);

    /* act-order: perm = descending diag(H) order, g_idx[k] = position of k in perm / G */
    const int32_t perm[16] = {3, 12, 0, 7, 9, 14, 1, 5, 10, 2, 15, 6, 11, 4, 8, 13};
    const int32_t g_idx[16] = {0, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1};
    const uint32_t act_qw[2][8] = {{0x4FA50B61, 0x72D83E94, 0xA50B61C7, 0xD83E94FA, 0x0B61C72D, 0x3E94FA50, 0x61C72D83, 0x94FA50B6},
                                   {0xC72D83E9, 0xFA50B61C, 0x2D83E94F, 0x50B61C72, 0x83E94FA5, 0xB61C72D8, 0xE94FA50B, 0x1C72D83E}};
    vector_layer(&q, act_u, act_z, g_idx);
    check_vector(&q, RA_GPTQ_V1, act_qw, (const uint32_t[]){0x630C9630, 0x852EB852}, GPTQ_ACT_WT, "act-order v1");
    check_vector(&q, RA_GPTQ_V2, act_qw, (const uint32_t[]){0x741DA741, 0x963FC963}, GPTQ_ACT_WT, "act-order v2");
    ra_intq_free(&q);
    /* the quantizer derives the same g_idx from the permutation */
    float w[8 * 16];
    for (int i = 0; i < 8 * 16; i++) w[i] = (float)(i % 7) - 3;
    ra_gptq_config c = {.bits = 4, .group_size = 8, .sym = false, .zeros = RA_GPTQ_V2};
    CHECK_OK(ra_gptq_quantize(w, 8, 16, &c, perm, &q));
    CHECK(q.g_idx && !memcmp(q.g_idx, g_idx, sizeof g_idx));
    ra_intq_free(&q);

    /* v1 cannot hold a zero of 0: GPTQModel's v2 -> v1 word subtraction
     * borrows, a v1 reader decodes [16, 4, 8, ...], and adding back restores it */
    CHECK(ra_gptq_zeros_v2_to_v1(0x88888850, 4) == 0x7777773F);
    CHECK(ra_gptq_zeros_v1_to_v2(0x7777773F, 4) == 0x88888850);
    CHECK(ra_gptq_zeros_v2_to_v1(0x88888888, 4) == 0x77777777 && ra_gptq_zeros_v1_to_v2(0x7F7F7F7F, 8) == 0x80808080);
    vector_layer(&q, sym_u, sym_z, NULL);
    ra_qtensors t = {0};
    CHECK_OK(ra_gptq_pack(&q, RA_GPTQ_V1, &t));
    uint8_t *qz = t.t[1].data;
    ra_put_le32(qz, 0x7777773F);
    ra_gptq_config v1 = {.bits = 4, .group_size = 8, .zeros = RA_GPTQ_V1};
    ra_intq back;
    CHECK_OK(ra_gptq_unpack(&t, &v1, &back));
    CHECK(back.zeros[0 * 2] == 16 && back.zeros[1 * 2] == 4 && back.zeros[2 * 2] == 8);
    ra_intq_free(&back);
    ra_qtensors_free(&t);
    q.zeros[3] = 0;
    CHECK_STATUS(ra_gptq_pack(&q, RA_GPTQ_V1, &t), RA_ERR_UNSUPPORTED);
    CHECK(t.n == 0);
    CHECK_OK(ra_gptq_pack(&q, RA_GPTQ_V2, &t));
    ra_qtensors_free(&t);
    ra_intq_free(&q);
}

/* AutoGPTQ's rule on groups worked by hand (4 bits):
 *  sym, range [-1.5, 0.75]: xmax = 1.5, s = 3 / 15 = 0.2 -> f16 0.199951171875,
 *    z = 8; a group with no negative weight keeps xmin = 0: s = max / 15 and
 *    z = 8, so weights above 7.5 s clip to code 15;
 *  asym, range [-0.25, 3.5]: s = 3.75 / 15 = 0.25, z = round(1) = 1. */
static void check_rtn_rule(void)
{
    float w[8 * 8] = {0};
    for (int r = 0; r < 8; r++) {
        w[r * 8 + 0] = -1.5f;
        w[r * 8 + 1] = 0.75f;
    }
    ra_gptq_config c = {.bits = 4, .group_size = -1, .sym = true, .zeros = RA_GPTQ_V1};
    ra_intq q;
    CHECK_OK(ra_gptq_quantize(w, 8, 8, &c, NULL, &q));
    CHECK(q.scales[0] == ra_f16_to_f32(ra_f32_to_f16(0.2f)) && q.zeros[0] == 8);
    CHECK(q.codes[0] == 0 && q.codes[1] == 12 && q.codes[2] == 8); /* -1.5/s = -7.5018 -> -8; 0.75/s = 3.75 -> 4 */
    ra_intq_free(&q);
    for (int r = 0; r < 8; r++) {
        w[r * 8 + 0] = 3.0f;
        w[r * 8 + 1] = 0.75f;
    }
    CHECK_OK(ra_gptq_quantize(w, 8, 8, &c, NULL, &q));
    CHECK(q.scales[0] == ra_f16_to_f32(ra_f32_to_f16(0.2f)));
    CHECK(q.zeros[0] == 8 && q.codes[0] == 15); /* 3 / s = 15 -> 23, clipped */
    ra_intq_free(&q);
    for (int r = 0; r < 8; r++) {
        w[r * 8 + 0] = -0.25f;
        w[r * 8 + 1] = 3.5f;
        w[r * 8 + 2] = 0.375f; /* 1.5 steps: rounds to 2 */
    }
    c.sym = false;
    CHECK_OK(ra_gptq_quantize(w, 8, 8, &c, NULL, &q));
    CHECK(q.scales[0] == 0.25f && q.zeros[0] == 1 && q.codes[0] == 0 && q.codes[1] == 15 && q.codes[2] == 3);
    ra_intq_free(&q);
}

static ra_status gptq_pack(const void *cfg, const void *q, ra_qtensors *out)
{
    return ra_gptq_pack(q, ((const ra_gptq_config *)cfg)->zeros, out);
}
static ra_status gptq_unpack(const void *cfg, const ra_qtensors *t, void *q) { return ra_gptq_unpack(t, cfg, q); }
static const qc_format GPTQ = {gptq_pack, gptq_unpack, qc_intq_dequantize, qc_intq_free};

static void round_trip(uint32_t bits, int32_t group, bool sym, ra_gptq_zeros zf, bool act_order, uint32_t N, uint32_t K)
{
    float *w = qc_random((size_t)N * K, 0.05f);
    int32_t *perm = act_order ? qc_shuffled(K) : NULL;
    ra_gptq_config c = {.bits = bits, .group_size = group, .sym = sym, .zeros = zf};
    ra_intq q, back;
    CHECK_OK(ra_gptq_quantize(w, N, K, &c, perm, &q));
    bool zero0 = false; /* a group whose min is >= 0 has a zero point of 0, which v1 cannot hold */
    for (size_t i = 0; i < (size_t)N * q.n_groups; i++) zero0 |= q.zeros[i] == 0;
    ra_qtensors t = {0};
    if (zf == RA_GPTQ_V1 && zero0) {
        CHECK_STATUS(ra_gptq_pack(&q, zf, &t), RA_ERR_UNSUPPORTED);
        CHECK(t.n == 0);
    } else {
        char name[64];
        snprintf(name, sizeof name, "gptq %u-bit G=%d sym=%d v%d act=%d K=%u", bits, group, sym, zf + 1, act_order, K);
        qc_check_round_trip(name, &GPTQ, &c, &q, &back, (size_t)N * K);
    }
    free(w); free(perm);
    ra_intq_free(&q);
}

static void check_refusals(void)
{
    float *w = qc_random(16 * 64, 1.0f);
    ra_gptq_config c = {.bits = 4, .group_size = 32, .sym = true, .zeros = RA_GPTQ_V1};
    ra_intq q, back;
    CHECK_STATUS(ra_gptq_quantize(w, 16, 60, &c, NULL, &q), RA_ERR_FORMAT); /* K % 8 */
    CHECK_STATUS(ra_gptq_quantize(w, 12, 64, &c, NULL, &q), RA_ERR_FORMAT); /* N % 8 */
    c.bits = 3;
    CHECK_STATUS(ra_gptq_quantize(w, 16, 64, &c, NULL, &q), RA_ERR_UNSUPPORTED);
    c.bits = 4;
    int32_t bad_perm[64];
    for (int i = 0; i < 64; i++) bad_perm[i] = i % 63;
    CHECK_STATUS(ra_gptq_quantize(w, 16, 64, &c, bad_perm, &q), RA_ERR_USAGE);
    CHECK_OK(ra_gptq_quantize(w, 16, 64, &c, NULL, &q));
    ra_qtensors t = {0};
    CHECK_OK(ra_gptq_pack(&q, RA_GPTQ_V1, &t));
    uint8_t *gi = t.t[3].data;
    ra_put_le32(gi + 4 * 5, 2); /* 2 groups: g_idx 2 is out of range */
    CHECK_STATUS(ra_gptq_unpack(&t, &c, &back), RA_ERR_FORMAT);
    CHECK(strstr(ra_errmsg(), "g_idx[5]") != NULL);
    ra_put_le32(gi + 4 * 5, 0xffffffff);
    CHECK_STATUS(ra_gptq_unpack(&t, &c, &back), RA_ERR_FORMAT);
    ra_put_le32(gi + 4 * 5, 0);
    CHECK_OK(ra_gptq_unpack(&t, &c, &back));
    ra_intq_free(&back);
    c.group_size = 16; /* the config says 4 groups, the tensors hold 2 */
    CHECK_STATUS(ra_gptq_unpack(&t, &c, &back), RA_ERR_FORMAT);
    c.group_size = 32;
    c.bits = 8; /* qweight [8, 16] read as 8-bit: K = 32, N = 16, scales must be [1, 16] */
    CHECK_STATUS(ra_gptq_unpack(&t, &c, &back), RA_ERR_FORMAT);
    c.bits = 4;
    ra_qtensors part = qc_without(&t, ".qzeros");
    CHECK_STATUS(ra_gptq_unpack(&part, &c, &back), RA_ERR_FORMAT); /* missing qzeros */
    CHECK(strstr(ra_errmsg(), "qzeros") != NULL);
    ra_qtensors_free(&part);
    t.t[3].shape[0] = 63; /* a g_idx of the wrong length */
    CHECK_STATUS(ra_gptq_unpack(&t, &c, &back), RA_ERR_FORMAT);
    ra_qtensors_free(&t);
    ra_intq_free(&q);
    free(w);
}

int main(void)
{
    check_reference_vectors();
    check_rtn_rule();
    const int32_t groups[4] = {32, 64, 128, -1};
    for (int g = 0; g < 4; g++)
        for (uint32_t bits = 4; bits <= 8; bits += 4)
            for (int sym = 0; sym < 2; sym++)
                for (int zf = 0; zf < 2; zf++) round_trip(bits, groups[g], sym, (ra_gptq_zeros)zf, g == 1, 32, 256);
    round_trip(4, 128, true, RA_GPTQ_V1, true, 16, 200); /* K not a multiple of G: a short last group */
    round_trip(8, 64, false, RA_GPTQ_V2, false, 24, 100);
    check_refusals();

    /* matmul contract: act-order, K = 200 (a short last group) */
    float *w = qc_random(24 * 200, 0.1f);
    int32_t *perm = qc_shuffled(200);
    ra_gptq_config c = {.bits = 4, .group_size = 64, .sym = false, .zeros = RA_GPTQ_V2};
    ra_intq q;
    CHECK_OK(ra_gptq_quantize(w, 24, 200, &c, perm, &q));
    qc_check_intq_matmul("gptq act-order", &q);
    ra_intq_free(&q);
    free(w);
    free(perm);
    CHECK_DONE();
}
