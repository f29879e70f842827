/* Calibrated GPTQ: equal to RTN when the Hessian is diagonal (with and
 * without act-order), the OBQ update worked by hand on two columns, a lower
 * output error than RTN on correlated activations, dead columns, a Hessian
 * that is not positive definite, and bitwise the same result (Hessian and
 * layer) on 1, 2 and 5 threads. */
#include "quant_check.h"
#include "ra/gptq_calib.h"

static int same_layer(const ra_intq *a, const ra_intq *b)
{
    size_t nk = (size_t)a->rows * a->cols, ng = (size_t)a->rows * a->n_groups;
    return a->rows == b->rows && a->cols == b->cols && a->n_groups == b->n_groups && !memcmp(a->codes, b->codes, nk) &&
           !memcmp(a->zeros, b->zeros, ng * 2) && !memcmp(a->scales, b->scales, ng * 4) && !a->g_idx == !b->g_idx &&
           (!a->g_idx || !memcmp(a->g_idx, b->g_idx, a->cols * 4));
}

/* sum over samples of |x (W - Wq)^T|^2, in double */
static double output_error(const float *x, uint32_t n, const float *w, const ra_intq *q)
{
    float *wq = NULL;
    CHECK_OK(ra_intq_dequantize(q, &wq));
    double err = 0;
    for (uint32_t t = 0; t < n; t++)
        for (uint32_t r = 0; r < q->rows; r++) {
            double d = 0;
            for (uint32_t k = 0; k < q->cols; k++) d += (double)x[(size_t)t * q->cols + k] * (w[(size_t)r * q->cols + k] - wq[(size_t)r * q->cols + k]);
            err += d * d;
        }
    free(wq);
    return err;
}

static void check_diagonal(bool act_order)
{
    const uint32_t N = 16, K = 64;
    float *w = qc_random((size_t)N * K, 0.1f), *x = calloc((size_t)K * K, 4);
    for (uint32_t k = 0; k < K; k++) x[(size_t)k * K + k] = 1.0f + (float)((k * 37) % 11); /* distinct diagonal, ties too */
    double *h = calloc((size_t)K * K, 8);
    CHECK_OK(ra_gptq_hessian_add(NULL, h, x, K, K));
    int32_t perm[64];
    for (uint32_t i = 0; i < K; i++) perm[i] = (int32_t)i;
    for (uint32_t i = 1; i < K; i++) /* the same stable descending order, by insertion */
        for (uint32_t j = i; j > 0 && h[(size_t)perm[j - 1] * K + perm[j - 1]] < h[(size_t)perm[j] * K + perm[j]]; j--) {
            int32_t t = perm[j];
            perm[j] = perm[j - 1];
            perm[j - 1] = t;
        }
    ra_gptq_calib_config c = {.q = {.bits = 4, .group_size = 16, .sym = false}, .damp_percent = 0.01f, .act_order = act_order};
    ra_intq a, b;
    CHECK_OK(ra_gptq_quantize_calibrated(NULL, w, N, K, h, &c, &a));
    CHECK_OK(ra_gptq_quantize(w, N, K, &c.q, act_order ? perm : NULL, &b));
    CHECK_MSG(same_layer(&a, &b), "diagonal Hessian, act-order %d: calibrated differs from RTN", act_order);
    ra_intq_free(&a);
    ra_intq_free(&b);
    free(w); free(x); free(h);
}

/* K = 2, H = [[1, .5], [.5, 1]], no damping: U^T U = H^-1 gives U01 / U00 = -1/2,
 * so w1 becomes w1 + (w0 - q0) / 2 before it is quantized (the OBQ update,
 * H01 / H11). Per row, asymmetric, w = (-0.5, 0.3): s = f16(0.8 / 15), z = 9,
 * w0 -> code 0 (-9 s), and w1 moves from 15.6 steps above -9 s to 14.4: code
 * 14 where RTN gives 15. */
static void check_two_columns(void)
{
    double h[4] = {1, 0.5, 0.5, 1};
    const float w[2] = {-0.5f, 0.3f};
    ra_gptq_calib_config c = {.q = {.bits = 4, .group_size = -1, .sym = false}, .damp_percent = 0};
    ra_intq q;
    CHECK_OK(ra_gptq_quantize_calibrated(NULL, w, 1, 2, h, &c, &q));
    const float s = 0.0533447265625f;
    double w1 = 0.3f + (-0.5f - (double)(-9 * s)) / 2;
    CHECK(q.scales[0] == s && q.zeros[0] == 9 && q.codes[0] == 0);
    CHECK(q.codes[1] == 14 && ra_gptq_code((float)w1, s, 9, 4) == 14 && ra_gptq_code(0.3f, s, 9, 4) == 15);
    ra_intq_free(&q);
}

int main(void)
{
    check_diagonal(false);
    check_diagonal(true);
    check_two_columns();

    /* correlated activations: x = z M with a mixing matrix M */
    const uint32_t N = 24, K = 96, S = 256;
    float *z = qc_random((size_t)S * K, 1.0f), *m = qc_random((size_t)K * K, 0.3f), *x = calloc((size_t)S * K, 4);
    for (uint32_t k = 0; k < K; k++) m[(size_t)k * K + k] += 1.0f;
    for (uint32_t t = 0; t < S; t++)
        for (uint32_t j = 0; j < K; j++) {
            float acc = 0;
            for (uint32_t k = 0; k < K; k++) acc += z[(size_t)t * K + k] * m[(size_t)k * K + j];
            x[(size_t)t * K + j] = acc;
        }
    for (uint32_t t = 0; t < S; t++) x[(size_t)t * K + 5] = 0; /* a dead column */
    float *w = qc_random((size_t)N * K, 0.1f);
    ra_pool *pools[3];
    const uint32_t threads[3] = {1, 2, 5};
    for (int i = 0; i < 3; i++) CHECK_OK(ra_pool_new(threads[i], &pools[i]));
    double *h0 = calloc((size_t)K * K, 8), *h = malloc((size_t)K * K * 8);
    CHECK_OK(ra_gptq_hessian_add(pools[0], h0, x, S / 2, K)); /* two batches */
    CHECK_OK(ra_gptq_hessian_add(pools[0], h0, x + (size_t)S / 2 * K, S / 2, K));
    for (int i = 1; i < 3; i++) {
        double *hi = calloc((size_t)K * K, 8);
        CHECK_OK(ra_gptq_hessian_add(pools[i], hi, x, S / 2, K));
        CHECK_OK(ra_gptq_hessian_add(pools[i], hi, x + (size_t)S / 2 * K, S / 2, K));
        CHECK(!memcmp(hi, h0, (size_t)K * K * 8));
        free(hi);
    }
    const int32_t groups[2] = {32, -1};
    for (int g = 0; g < 2; g++)
        for (int sym = 0; sym < 2; sym++)
            for (int act = 0; act < 2; act++) {
                ra_gptq_calib_config c = {.q = {.bits = 4, .group_size = groups[g], .sym = sym}, .damp_percent = 0.01f,
                                          .act_order = act};
                ra_intq cal[3], rtn;
                for (int i = 0; i < 3; i++) {
                    memcpy(h, h0, (size_t)K * K * 8);
                    CHECK_OK(ra_gptq_quantize_calibrated(pools[i], w, N, K, h, &c, &cal[i]));
                }
                CHECK_MSG(same_layer(&cal[0], &cal[1]) && same_layer(&cal[0], &cal[2]), "G=%d sym=%d act=%d: thread counts differ",
                          groups[g], sym, act);
                CHECK_OK(ra_gptq_quantize(w, N, K, &c.q, NULL, &rtn));
                double eg = output_error(x, S, w, &cal[0]), er = output_error(x, S, w, &rtn);
                CHECK_MSG(eg < 0.8 * er, "G=%d sym=%d act=%d: GPTQ error %g is not below RTN's %g", groups[g], sym, act, eg, er);
                float *wq = NULL;
                CHECK_OK(ra_intq_dequantize(&cal[0], &wq));
                for (uint32_t r = 0; r < N; r++) CHECK(wq[(size_t)r * K + 5] == 0.0f); /* the dead column */
                free(wq);
                for (int i = 0; i < 3; i++) ra_intq_free(&cal[i]);
                ra_intq_free(&rtn);
            }
    /* a Hessian that is not positive definite */
    for (size_t i = 0; i < (size_t)K * K; i++) h[i] = i % (K + 1) == 0 ? -1.0 : 0.0;
    ra_gptq_calib_config c = {.q = {.bits = 4, .group_size = 32, .sym = true}, .damp_percent = 0.01f};
    ra_intq q;
    CHECK_STATUS(ra_gptq_quantize_calibrated(pools[1], w, N, K, h, &c, &q), RA_ERR_USAGE);
    for (int i = 0; i < 3; i++) ra_pool_free(pools[i]);
    free(z); free(m); free(x); free(w); free(h0); free(h);
    CHECK_DONE();
}
