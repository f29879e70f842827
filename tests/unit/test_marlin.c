/* Marlin: the formats-int4.md section 3 vector, the tile layout against two
 * independent constructions (IST-DASLab's 1024-entry permutation and the
 * per-thread formula of vLLM's repack kernel), act-order's stable argsort,
 * the scale and zero-point permutations, exact round trips back to GPTQ, AWQ
 * and w4a16 bytes, tensor round trips, refusals and the matmul contract. */
#include "quant_check.h"
#include "ra/awq.h"
#include "ra/gptq.h"
#include "ra/marlin.h"
#include "ra/w4a16.h"

static const int ORDER[8] = {0, 2, 4, 6, 1, 3, 5, 7};

/* IST-DASLab _get_perms: for each 16x16 tile row-major, 1024 values at a time. */
static void daslab_perm(int perm[1024])
{
    int n = 0, tmp[1024];
    for (int i = 0; i < 32; i++) {
        int perm1[8], m = 0, col = i / 4;
        for (int block = 0; block < 2; block++) {
            int rows[4] = {2 * (i % 4), 2 * (i % 4) + 1, 2 * (i % 4 + 4), 2 * (i % 4 + 4) + 1};
            for (int r = 0; r < 4; r++) perm1[m++] = 16 * rows[r] + col + 8 * block;
        }
        for (int j = 0; j < 4; j++)
            for (int p = 0; p < 8; p++) tmp[n++] = perm1[p] + 256 * j;
    }
    for (int b = 0; b < 128; b++)
        for (int i = 0; i < 8; i++) perm[8 * b + i] = tmp[8 * b + ORDER[i]];
}

/* Marlin.pack of IST-DASLab: 16x16 tiles flattened per k-tile row, permuted per 1024, packed 8 per word. */
static void daslab_pack(const uint8_t *u_kn, uint32_t K, uint32_t N, uint32_t *out)
{
    int perm[1024];
    daslab_perm(perm);
    uint8_t *row = malloc((size_t)16 * N), *pr = malloc((size_t)16 * N);
    for (uint32_t kt = 0; kt < K / 16; kt++) {
        size_t m = 0;
        for (uint32_t nt = 0; nt < N / 16; nt++)
            for (uint32_t r = 0; r < 16; r++)
                for (uint32_t c = 0; c < 16; c++) row[m++] = u_kn[(size_t)(16 * kt + r) * N + 16 * nt + c];
        for (size_t b = 0; b < (size_t)16 * N / 1024; b++)
            for (int i = 0; i < 1024; i++) pr[1024 * b + i] = row[1024 * b + perm[i]];
        for (size_t c = 0; c < (size_t)2 * N; c++) {
            uint32_t w = 0;
            for (int i = 0; i < 8; i++) w |= (uint32_t)pr[8 * c + i] << (4 * i);
            out[(size_t)kt * 2 * N + c] = w;
        }
    }
    free(row);
    free(pr);
}

/* The per-thread formula of gptq_marlin_repack.cu, as formats-int4.md section 3 tabulates it. */
static void formula_pack(const uint8_t *u_kn, uint32_t K, uint32_t N, uint32_t *out)
{
    const int off[4] = {0, 1, 8, 9};
    for (uint32_t kt = 0; kt < K / 16; kt++)
        for (uint32_t nt = 0; nt < N / 64; nt++)
            for (uint32_t t = 0; t < 32; t++)
                for (uint32_t w = 0; w < 4; w++) {
                    uint32_t r0 = 16 * kt + 2 * (t % 4), c0 = 64 * nt + 16 * w + t / 4, vals[8], word = 0;
                    for (int i = 0; i < 4; i++) {
                        vals[i] = u_kn[(size_t)(r0 + off[i]) * N + c0];
                        vals[4 + i] = u_kn[(size_t)(r0 + off[i]) * N + c0 + 8];
                    }
                    for (int i = 0; i < 8; i++) word |= vals[ORDER[i]] << (4 * i);
                    out[(size_t)kt * 2 * N + nt * 128 + 4 * t + w] = word;
                }
}

/* A symmetric 4-bit layer with codes u(k, n), one group per `group` columns, f16 scales. */
static void sym_layer(ra_intq *q, uint32_t N, uint32_t K, uint32_t group)
{
    CHECK_OK(ra_intq_alloc(q, N, K, 4, group, K / group, false));
    q->scale_dtype = RA_SCALE_F16;
    for (size_t i = 0; i < (size_t)N * K; i++) q->codes[i] = (uint8_t)qc_urand(16);
    for (size_t i = 0; i < (size_t)N * q->n_groups; i++) {
        q->zeros[i] = 8;
        q->scales[i] = (float)(i % 61 + 1) / 64;
    }
}

static void check_layout(void)
{
    /* 3: K=16, N=64, u = (3k + n + n/16) % 16 */
    ra_intq q;
    sym_layer(&q, 64, 16, 16);
    for (uint32_t n = 0; n < 64; n++)
        for (uint32_t k = 0; k < 16; k++) q.codes[n * 16 + k] = (uint8_t)((3 * k + n + n / 16) % 16);
    ra_marlin m;
    CHECK_OK(ra_marlin_from_intq(&q, &m));
    const uint32_t first[5] = {0x3BB30880, 0x4CC41991, 0x5DD52AA2, 0x6EE63BB3, 0x91196EE6};
    CHECK(!memcmp(m.qweight, first, sizeof first));
    CHECK(m.zeros == NULL && m.perm == NULL);
    ra_marlin_free(&m);
    ra_intq_free(&q);

    /* random codes at three shapes, with and without act-order: both constructions agree with ours */
    const uint32_t shapes[3][2] = {{16, 64}, {32, 128}, {48, 192}};
    for (int s = 0; s < 3; s++) {
        const uint32_t K = shapes[s][0], N = shapes[s][1];
        for (int act = 0; act < 2; act++) {
            sym_layer(&q, N, K, 16);
            if (act) {
                q.g_idx = malloc(K * sizeof *q.g_idx);
                for (uint32_t k = 0; k < K; k++) q.g_idx[k] = (int32_t)((k * 5) % (K / 16));
            }
            CHECK_OK(ra_marlin_from_intq(&q, &m));
            uint8_t *u = malloc((size_t)K * N); /* [K][N] in Marlin's row order */
            for (uint32_t k = 0; k < K; k++)
                for (uint32_t n = 0; n < N; n++) u[(size_t)k * N + n] = q.codes[(size_t)n * K + (act ? (uint32_t)m.perm[k] : k)];
            uint32_t *a = malloc((size_t)K / 16 * 2 * N * 4), *b = malloc((size_t)K / 16 * 2 * N * 4);
            daslab_pack(u, K, N, a);
            formula_pack(u, K, N, b);
            size_t words = (size_t)K / 16 * 2 * N * 4;
            CHECK_MSG(!memcmp(a, b, words) && !memcmp(a, m.qweight, words), "layout %ux%u act=%d", K, N, act);
            for (uint32_t k = 1; act && k < K; k++) /* stable: sorted by group, then by source row */
                CHECK(m.g_idx[k - 1] < m.g_idx[k] || (m.g_idx[k - 1] == m.g_idx[k] && m.perm[k - 1] < m.perm[k]));
            free(u); free(a); free(b);
            ra_marlin_free(&m);
            ra_intq_free(&q);
        }
    }

    /* act-order vector of section 2: the stable argsort of its g_idx is
     * 0,1,3,5,7,9,12,14 (group 0) then 2,4,6,8,10,11,13,15. Its groups of 8 rows
     * do not tile Marlin's 16-row k-tiles, so the pattern is repeated over
     * K = 32 with G = 16: each group then lists the first half's rows, then the
     * second half's. */
    const int32_t g_idx[16] = {0, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1};
    const int32_t sorted[16] = {0, 1, 3, 5, 7, 9, 12, 14, 2, 4, 6, 8, 10, 11, 13, 15};
    sym_layer(&q, 64, 16, 8);
    q.g_idx = malloc(sizeof g_idx);
    memcpy(q.g_idx, g_idx, sizeof g_idx);
    CHECK_STATUS(ra_marlin_from_intq(&q, &m), RA_ERR_FORMAT);
    ra_intq_free(&q);
    sym_layer(&q, 64, 32, 16);
    q.g_idx = malloc(32 * sizeof *q.g_idx);
    for (int k = 0; k < 32; k++) q.g_idx[k] = g_idx[k % 16];
    CHECK_OK(ra_marlin_from_intq(&q, &m));
    int bad = 0;
    for (int k = 0; k < 32; k++) {
        int half = k / 8 % 2, group = k / 16;
        bad += m.perm[k] != sorted[8 * group + k % 8] + 16 * half;
        bad += m.g_idx[k] != group;
    }
    CHECK_MSG(bad == 0, "act-order permutation: %d entries differ", bad);
    ra_marlin_free(&m);
    ra_intq_free(&q);
}

static void check_scales_and_zeros(void)
{
    /* grouped: an 8x8 transpose in each 64; values g * 64 + n are exact in f16 */
    ra_intq q;
    sym_layer(&q, 64, 32, 16);
    for (uint32_t n = 0; n < 64; n++)
        for (uint32_t g = 0; g < 2; g++) q.scales[n * 2 + g] = (float)(g * 64 + n);
    ra_marlin m;
    CHECK_OK(ra_marlin_from_intq(&q, &m));
    int bad = 0;
    for (int g = 0; g < 2; g++)
        for (int i = 0; i < 8; i++)
            for (int j = 0; j < 8; j++) bad += ra_f16_to_f32(m.scales[g * 64 + 8 * i + j]) != (float)(g * 64 + i + 8 * j);
    CHECK_MSG(bad == 0, "grouped scale permutation: %d differ", bad);
    ra_marlin_free(&m);
    ra_intq_free(&q);
    /* one group per row: out[8i + t] = in[2i + (0,1,8,9,16,17,24,25)[t]] in each 32 */
    sym_layer(&q, 64, 32, 32);
    for (uint32_t n = 0; n < 64; n++) q.scales[n] = (float)n;
    CHECK_OK(ra_marlin_from_intq(&q, &m));
    const int first16[16] = {0, 1, 8, 9, 16, 17, 24, 25, 2, 3, 10, 11, 18, 19, 26, 27};
    for (int i = 0; i < 16; i++) bad += ra_f16_to_f32(m.scales[i]) != (float)first16[i];
    for (int i = 0; i < 16; i++) bad += ra_f16_to_f32(m.scales[32 + i]) != (float)(32 + first16[i]);
    CHECK_MSG(bad == 0, "channelwise scale permutation: %d differ", bad);
    ra_marlin_free(&m);
    ra_intq_free(&q);

    /* AWQ zero points: the 64-block transpose, the 0,2,4,6,1,3,5,7 interleave, natural packing */
    sym_layer(&q, 128, 32, 16);
    for (size_t i = 0; i < 128 * 2; i++) q.zeros[i] = (uint16_t)qc_urand(16);
    q.zeros[0] = 3;
    CHECK_OK(ra_marlin_from_intq(&q, &m));
    CHECK(m.zeros != NULL);
    for (uint32_t g = 0; g < 2; g++) {
        uint32_t flat[128], tr[128];
        for (uint32_t n = 0; n < 128; n++) flat[n] = q.zeros[n * 2 + g];
        for (uint32_t b = 0; b < 2; b++)
            for (int i = 0; i < 8; i++)
                for (int j = 0; j < 8; j++) tr[64 * b + 8 * i + j] = flat[64 * b + i + 8 * j];
        for (uint32_t c = 0; c < 16; c++) {
            uint32_t w = 0;
            for (int i = 0; i < 8; i++) w |= tr[8 * c + ORDER[i]] << (4 * i);
            bad += m.zeros[g * 16 + c] != w;
        }
    }
    CHECK_MSG(bad == 0, "zero-point layout: %d words differ", bad);
    ra_marlin_free(&m);
    ra_intq_free(&q);
}

static ra_status marlin_mm(ra_pool *p, const void *m, const float *x, uint32_t n, float *y)
{
    return ra_marlin_matmul(p, m, x, n, y);
}

/* source -> intq -> marlin -> tensors -> marlin -> intq -> source: the same bytes */
static void check_round_trips(void)
{
    const int32_t groups[4] = {32, 64, 128, -1};
    for (int g = 0; g < 4; g++)
        for (int act = 0; act < 2; act++) {
            const uint32_t N = 128, K = 256;
            float *w = qc_random((size_t)N * K, 0.05f);
            int32_t *perm = act ? qc_shuffled(K) : NULL;
            ra_gptq_config c = {.bits = 4, .group_size = groups[g], .sym = true, .zeros = RA_GPTQ_V1};
            ra_intq q, q2, back;
            CHECK_OK(ra_gptq_quantize(w, N, K, &c, perm, &q));
            ra_qtensors src = {0}, again = {0}, mt = {0};
            CHECK_OK(ra_gptq_pack(&q, RA_GPTQ_V1, &src));
            CHECK_OK(ra_gptq_unpack(&src, &c, &q2));
            ra_marlin m, m2;
            CHECK_OK(ra_marlin_from_intq(&q2, &m));
            CHECK_OK(ra_marlin_pack(&m, RA_MARLIN_NAMES_VLLM, &mt));
            CHECK_OK(ra_marlin_unpack(&mt, RA_MARLIN_NAMES_VLLM, groups[g], &m2));
            CHECK_OK(ra_marlin_to_intq(&m2, &back));
            CHECK_OK(ra_gptq_pack(&back, RA_GPTQ_V1, &again));
            CHECK_MSG(qc_same_tensors(&src, &again), "gptq G=%d act=%d: marlin round trip changed the bytes", groups[g], act);
            float *a = NULL, *b = NULL;
            CHECK_OK(ra_intq_dequantize(&q2, &a));
            CHECK_OK(ra_marlin_dequantize(&m2, &b));
            CHECK(qc_same_bits(a, b, (size_t)N * K));
            if (g == 1) { /* the matmul contract, reduced in Marlin's row order */
                float *wm = malloc((size_t)N * K * 4);
                ra_marlin_dequantize_rows(&m2, 0, N, wm);
                qc_check_matmul(act ? "marlin act-order" : "marlin", marlin_mm, &m2, wm, N, K, m2.perm);
                free(wm);
            }
            free(a); free(b); free(w); free(perm);
            ra_qtensors_free(&src); ra_qtensors_free(&again); ra_qtensors_free(&mt);
            ra_marlin_free(&m); ra_marlin_free(&m2);
            ra_intq_free(&q); ra_intq_free(&q2); ra_intq_free(&back);
        }

    /* AWQ (zero points) and w4a16 (bf16 scales) through Marlin and back */
    float *w = qc_random(64 * 256, 0.05f);
    ra_intq q, back;
    ra_marlin m;
    ra_qtensors src = {0}, again = {0};
    CHECK_OK(ra_awq_quantize(w, 64, 256, 128, &q));
    CHECK_OK(ra_awq_pack(&q, &src));
    CHECK_OK(ra_marlin_from_intq(&q, &m));
    CHECK(m.zeros != NULL);
    CHECK_OK(ra_marlin_to_intq(&m, &back));
    CHECK_OK(ra_awq_pack(&back, &again));
    CHECK(qc_same_tensors(&src, &again));
    ra_qtensors_free(&src); ra_qtensors_free(&again);
    ra_marlin_free(&m); ra_intq_free(&q); ra_intq_free(&back);
    ra_w4a16_config c = {.bits = 4, .group_size = 64, .symmetric = true, .scale_dtype = RA_SCALE_BF16};
    CHECK_OK(ra_w4a16_quantize(w, 64, 256, &c, NULL, &q));
    CHECK_OK(ra_w4a16_pack(&q, true, &src));
    CHECK_OK(ra_marlin_from_intq(&q, &m));
    CHECK(m.zeros == NULL && m.scale_dtype == RA_SCALE_BF16);
    CHECK_OK(ra_marlin_to_intq(&m, &back));
    CHECK_OK(ra_w4a16_pack(&back, true, &again));
    CHECK(qc_same_tensors(&src, &again));
    ra_qtensors_free(&src); ra_qtensors_free(&again);
    ra_marlin_free(&m); ra_intq_free(&q); ra_intq_free(&back);

    /* IST-DASLab names: B and s, symmetric f16, G = 128 */
    ra_gptq_config gc = {.bits = 4, .group_size = 128, .sym = true, .zeros = RA_GPTQ_V1};
    ra_marlin m2;
    CHECK_OK(ra_gptq_quantize(w, 64, 256, &gc, NULL, &q));
    CHECK_OK(ra_marlin_from_intq(&q, &m));
    CHECK_OK(ra_marlin_pack(&m, RA_MARLIN_NAMES_DASLAB, &src));
    CHECK(src.n == 2 && ra_qtensors_find(&src, ".B") && ra_qtensors_find(&src, ".s"));
    CHECK_OK(ra_marlin_unpack(&src, RA_MARLIN_NAMES_DASLAB, 128, &m2));
    CHECK_OK(ra_marlin_pack(&m2, RA_MARLIN_NAMES_DASLAB, &again));
    CHECK(qc_same_tensors(&src, &again));
    ra_qtensors_free(&src); ra_qtensors_free(&again);
    ra_marlin_free(&m); ra_marlin_free(&m2); ra_intq_free(&q);
    free(w);
}

static void check_refusals(void)
{
    ra_intq q;
    ra_marlin m;
    sym_layer(&q, 32, 64, 32); /* N % 64 */
    CHECK_STATUS(ra_marlin_from_intq(&q, &m), RA_ERR_FORMAT);
    ra_intq_free(&q);
    sym_layer(&q, 64, 40, 40); /* K % 16 */
    CHECK_STATUS(ra_marlin_from_intq(&q, &m), RA_ERR_FORMAT);
    ra_intq_free(&q);
    sym_layer(&q, 64, 64, 32);
    q.scale_dtype = RA_SCALE_F32;
    CHECK_STATUS(ra_marlin_from_intq(&q, &m), RA_ERR_UNSUPPORTED);
    q.scale_dtype = RA_SCALE_F16;
    q.zeros[3] = 16; /* a v1 zero of 16 */
    CHECK_STATUS(ra_marlin_from_intq(&q, &m), RA_ERR_UNSUPPORTED);
    q.zeros[3] = 2;
    CHECK_OK(ra_marlin_from_intq(&q, &m));
    ra_qtensors t = {0};
    CHECK_STATUS(ra_marlin_pack(&m, RA_MARLIN_NAMES_DASLAB, &t), RA_ERR_UNSUPPORTED); /* zero points */
    CHECK(t.n == 0);
    ra_marlin_free(&m);
    ra_intq_free(&q);

    /* act-order tensors: a repeated sort index, an unsorted g_idx */
    sym_layer(&q, 64, 64, 32);
    q.g_idx = malloc(64 * sizeof *q.g_idx);
    for (int k = 0; k < 64; k++) q.g_idx[k] = k % 2;
    CHECK_OK(ra_marlin_from_intq(&q, &m));
    CHECK_OK(ra_marlin_pack(&m, RA_MARLIN_NAMES_VLLM, &t));
    ra_marlin back;
    uint8_t *pm = (uint8_t *)ra_qtensors_find(&t, ".g_idx_sort_indices")->data;
    uint8_t *gi = (uint8_t *)ra_qtensors_find(&t, ".g_idx")->data;
    ra_put_le32(pm + 4, ra_le32(pm));
    CHECK_STATUS(ra_marlin_unpack(&t, RA_MARLIN_NAMES_VLLM, 32, &back), RA_ERR_FORMAT);
    ra_put_le32(pm + 4, (uint32_t)m.perm[1]);
    ra_put_le32(gi, 1);
    CHECK_STATUS(ra_marlin_unpack(&t, RA_MARLIN_NAMES_VLLM, 32, &back), RA_ERR_FORMAT);
    ra_put_le32(gi, 0);
    CHECK_OK(ra_marlin_unpack(&t, RA_MARLIN_NAMES_VLLM, 32, &back));
    ra_marlin_free(&back);
    CHECK_STATUS(ra_marlin_unpack(&t, RA_MARLIN_NAMES_VLLM, 48, &back), RA_ERR_FORMAT); /* 48 does not divide 64 */
    CHECK_STATUS(ra_marlin_unpack(&t, RA_MARLIN_NAMES_DASLAB, 32, &back), RA_ERR_FORMAT); /* no B */
    ra_qtensors_free(&t);
    ra_marlin_free(&m);
    ra_intq_free(&q);
}

int main(void)
{
    check_layout();
    check_scales_and_zeros();
    check_round_trips();
    check_refusals();
    CHECK_DONE();
}
