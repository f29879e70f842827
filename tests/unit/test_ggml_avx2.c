/* The ggml-avx2 kernel (src/backend/cpu/ggml_avx2.c): every vector path gives
 * the bits of the scalar one (products for every batch size and thread count,
 * attention), ggml's expf and activation quantization behave as ggml's do,
 * and the dots are the products they claim to be. Agreement with llama.cpp
 * itself is tests/e2e/test_llamacpp_fixture.c. */
#include <stdlib.h>

#include "check.h"
#include "ra/cpu.h"
#include "ra/ggml_types.h"
#include "ra/util.h"

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint32_t urand(void)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng >> 32);
}
static float frand(void) { return (float)((int32_t)(urand() >> 8) - (1 << 23)) / (float)(1 << 23); }

static void fill_weight(ra_weight *w, ra_wtype t, uint32_t rows, uint32_t cols)
{
    *w = (ra_weight){.type = t, .rows = rows, .cols = cols};
    CHECK_OK(ra_wtype_row_bytes(t, cols, &w->row_bytes));
    w->data = malloc((size_t)rows * w->row_bytes);
    for (size_t i = 0; i < (size_t)rows * w->row_bytes; i++) w->data[i] = (uint8_t)urand();
    /* Sane fp16 scales (random bits would give NaN and inf). */
    const size_t blk = t == RA_W_Q4_1 ? sizeof(ra_block_q4_1) : t == RA_W_Q5_0 ? sizeof(ra_block_q5_0)
                     : t == RA_W_Q4_K ? sizeof(ra_block_q4_k) : t == RA_W_Q6_K ? sizeof(ra_block_q6_k)
                                                                              : sizeof(ra_block_q8_0);
    const float k = t == RA_W_Q4_K || t == RA_W_Q6_K ? 1.0f / 64 : 1.0f; /* K-quant d scales sub-scales */
    for (size_t b = 0; b < (size_t)rows * w->row_bytes / blk; b++) {
        uint16_t d = ra_f32_to_f16(k * frand() / 64), m = ra_f32_to_f16(k * frand() / 8);
        memcpy(w->data + b * blk + (t == RA_W_Q6_K ? 208 : 0), &d, 2);
        if (t == RA_W_Q4_1 || t == RA_W_Q4_K) memcpy(w->data + b * blk + 2, &m, 2);
    }
}

/* One output in scalar C: the type's reference dot on its own activation blocks. */
static float ref_dot(const ra_weight *w, const uint8_t *row, const float *x)
{
    const uint32_t nb = w->cols / 32, nk = w->cols / 256;
    float d;
    if (w->type == RA_W_Q4_K || w->type == RA_W_Q6_K) {
        ra_ggml_q8k *xk = malloc(nk * sizeof *xk);
        ra_ggml_quantize_q8k(x, w->cols, xk);
        d = w->type == RA_W_Q6_K ? ra_ggml_dot_q6_k_ref(row, xk, nk)
          : w->rows % 8          ? ra_ggml_dot_q4_k_ref(row, xk, nk)
                                 : ra_ggml_dot_q4_k_8x8_ref(row, xk, nk);
        free(xk);
        return d;
    }
    ra_ggml_q8 *xq = malloc(nb * sizeof *xq);
    ra_ggml_quantize_q8(x, w->cols, w->type == RA_W_Q4_1, xq);
    d = w->type == RA_W_Q4_1 ? ra_ggml_dot_q4_1_ref(row, xq, nb)
      : w->type == RA_W_Q5_0 ? ra_ggml_dot_q5_0_ref(row, xq, nb)
                             : ra_ggml_dot_q8_0_ref(row, xq, nb);
    free(xq);
    return d;
}

/* Scalar and vector products, bit for bit, for batch sizes 1..6 and 1 or 3
 * threads; each against the scalar dot of its own row, and near the exact
 * product of the dequantized weights. */
static void check_matmul(ra_wtype t, uint32_t rows, uint32_t cols, ra_pool *pools[2])
{
    const uint32_t NT = 6;
    ra_weight w;
    fill_weight(&w, t, rows, cols);
    float *x = malloc((size_t)NT * cols * 4), *ys = malloc((size_t)NT * rows * 4), *yv = malloc((size_t)NT * rows * 4);
    float *wf = malloc((size_t)cols * 4);
    for (size_t i = 0; i < (size_t)NT * cols; i++) x[i] = frand() * 3;
    const ra_cpu_path best = ra_cpu_best_path();
    for (int p = 0; p < 2; p++)
        for (uint32_t n = 1; n <= NT; n++) {
            CHECK_OK(ra_ggml_matmul(pools[p], RA_CPU_PATH_SCALAR, &w, x, n, ys));
            CHECK_OK(ra_ggml_matmul(pools[p], best, &w, x, n, yv));
            CHECK_MSG(!memcmp(ys, yv, (size_t)n * rows * 4), "%s %ux%u batch %u: vector path differs from scalar",
                      ra_wtype_name(t), rows, cols, n);
        }
    double worst = 0;
    for (uint32_t r = 0; r < rows; r++) {
        const float d = ref_dot(&w, w.data + (size_t)r * w.row_bytes, x);
        CHECK(!memcmp(&d, &ys[r], 4));
        CHECK_OK(ra_weight_row_f32(&w, r, wf));
        double exact = 0, mag = 0;
        for (uint32_t c = 0; c < cols; c++) exact += (double)wf[c] * x[c], mag += fabs((double)wf[c] * x[c]);
        /* int8 activations: each block within about 1/254 of its magnitude. */
        worst = fmax(worst, fabs(d - exact) / (mag + 1e-30));
    }
    CHECK_MSG(worst < 1e-2, "%s: relative error %g against the float product", ra_wtype_name(t), worst);
    free(x); free(ys); free(yv); free(wf); free(w.data);
}

static void check_attention(void)
{
    const uint32_t hd = 64, stride = 3 * hd;
    for (uint32_t npos = 1; npos <= 77; npos += 19) {
        float q[64], *K = malloc((size_t)npos * stride * 4), *V = malloc((size_t)npos * stride * 4);
        float w1[80], w2[80], o1[64], o2[64];
        for (uint32_t i = 0; i < hd; i++) q[i] = frand() * 4;
        for (size_t i = 0; i < (size_t)npos * stride; i++) K[i] = frand(), V[i] = frand();
        ra_ggml_attn_head(RA_CPU_PATH_SCALAR, q, K, V, stride, npos, hd, 0.125f, w1, o1);
        ra_ggml_attn_head(ra_cpu_best_path(), q, K, V, stride, npos, hd, 0.125f, w2, o2);
        CHECK_MSG(!memcmp(o1, o2, sizeof o1), "attention over %u positions: paths differ", npos);
        /* A softmax average of V lies within V's range, and the weights sum to 1. */
        double wsum = 0;
        for (uint32_t p = 0; p < npos; p++) wsum += w1[p];
        CHECK_NEAR(wsum, 1.0, 1e-5);
        for (uint32_t i = 0; i < hd; i++) CHECK(fabsf(o1[i]) <= 1.0f);
        free(K);
        free(V);
    }
}

static void check_expf(void)
{
    double worst = 0;
    for (float x = -87.0f; x < 88.0f; x += 0.0137f) {
        double want = exp((double)x), got = ra_ggml_expf(x);
        worst = fmax(worst, fabs(got - want) / want);
    }
    CHECK_MSG(worst < 4e-7, "ggml expf relative error %g (ggml: 1.45 ulp + 0.5)", worst);
    CHECK(ra_ggml_expf(0.0f) == 1.0f);
    CHECK(ra_ggml_expf(-INFINITY) == 0.0f); /* masked attention cells */
    CHECK(ra_ggml_expf(-200.0f) == 0.0f);
    CHECK(isinf(ra_ggml_expf(200.0f)));
}

/* Half-way values round to even (_mm256_round_ps), d and s are fp16. */
static void check_quantize(void)
{
    float x[32] = {0};
    ra_ggml_q8 b;
    x[0] = 127.0f; /* id = 1 */
    x[1] = 2.5f;
    x[2] = -3.5f;
    x[3] = 0.5f;
    x[4] = 1.0f / 3.0f;
    ra_ggml_quantize_q8(x, 32, true, &b);
    CHECK(b.q[0] == 127 && b.q[1] == 2 && b.q[2] == -4 && b.q[3] == 0 && b.q[4] == 0);
    CHECK(b.d == 1.0f);
    CHECK(b.s == 125.0f);
    x[0] = 1.1f; /* amax is now 3.5 */
    ra_ggml_quantize_q8(x, 32, true, &b);
    CHECK(b.d == ra_f16_to_f32(ra_f32_to_f16(3.5f / 127.0f)));
    ra_ggml_quantize_q8((float[32]){0}, 32, true, &b);
    CHECK(b.d == 0.0f && b.s == 0.0f && b.q[5] == 0);
}

int main(void)
{
    ra_pool *pools[2] = {NULL, NULL};
    CHECK_OK(ra_pool_new(1, &pools[0]));
    CHECK_OK(ra_pool_new(3, &pools[1]));
    printf("ggml-avx2 vector path on this machine: %s\n", ra_cpu_best_path() == RA_CPU_PATH_AVX2 ? "avx2" : "none (scalar only)");
    check_matmul(RA_W_Q4_1, 37, 96, pools);
    check_matmul(RA_W_Q8_0, 21, 576, pools);
    check_matmul(RA_W_Q5_0, 19, 576, pools);
    check_matmul(RA_W_Q6_K, 13, 1536, pools);
    check_matmul(RA_W_Q4_K, 24, 512, pools); /* rows % 8 == 0: llama.cpp's repacked product */
    check_matmul(RA_W_Q4_K, 11, 256, pools); /* ggml_vec_dot_q4_K_q8_K */
    check_attention();
    check_expf();
    check_quantize();
    ra_pool_free(pools[0]);
    ra_pool_free(pools[1]);
    CHECK_DONE();
}
