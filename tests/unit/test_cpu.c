/* The CPU backend's determinism contract: every output of ra_cpu_matmul equals
 * a scalar evaluation of the documented reduction order (src/backend/cpu/matmul.c)
 * bit for bit, for every batch size, tile and thread count; quantized kernels
 * match their documented integer-block order; and the float ops are sane. */
#include <stdlib.h>

#include "check.h"
#include "ra/cpu.h"
#include "ra/ggml_types.h"
#include "ra/util.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float frand(void) /* uniform in [-1, 1), exact in float */
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((int32_t)(rng >> 40) - (1 << 23)) / (float)(1 << 23);
}

/* The documented float order: 8 lanes over i < n8 by i % 8, tail n8 + j into
 * lane j, then (l0+l4, l1+l5, l2+l6, l3+l7) -> (s0+s2) + (s1+s3). */
static float ref_dot(const float *w, const float *x, uint32_t n)
{
    float l[8] = {0};
    uint32_t n8 = n & ~7u;
    for (uint32_t i = 0; i < n8; i++) l[i % 8] = l[i % 8] + w[i] * x[i];
    for (uint32_t i = n8; i < n; i++) l[i - n8] = l[i - n8] + w[i] * x[i];
    float s0 = l[0] + l[4], s1 = l[1] + l[5], s2 = l[2] + l[6], s3 = l[3] + l[7];
    return (s0 + s2) + (s1 + s3);
}

static int bits_differ(const float *a, const float *b, size_t n)
{
    return memcmp(a, b, n * sizeof *a) != 0;
}

static void check_float_kernel(ra_wtype type, uint32_t rows, uint32_t cols, ra_pool *pools[3])
{
    const uint32_t NT = 11;
    float *wf = malloc((size_t)rows * cols * 4), *x = malloc((size_t)NT * cols * 4);
    float *y = malloc((size_t)NT * rows * 4), *y1 = malloc((size_t)rows * 4), *want = malloc((size_t)NT * rows * 4);
    ra_weight w = {.type = type, .rows = rows, .cols = cols};
    CHECK_OK(ra_wtype_row_bytes(type, cols, &w.row_bytes));
    w.data = malloc((size_t)rows * w.row_bytes);
    for (size_t i = 0; i < (size_t)rows * cols; i++) {
        wf[i] = frand();
        if (type == RA_W_BF16) {
            uint16_t h = ra_f32_to_bf16(wf[i]);
            memcpy(w.data + 2 * i, &h, 2);
            wf[i] = ra_bf16_to_f32(h);
        }
    }
    if (type == RA_W_F32) memcpy(w.data, wf, (size_t)rows * cols * 4);
    for (size_t i = 0; i < (size_t)NT * cols; i++) x[i] = frand();
    for (uint32_t t = 0; t < NT; t++)
        for (uint32_t r = 0; r < rows; r++) want[(size_t)t * rows + r] = ref_dot(wf + (size_t)r * cols, x + (size_t)t * cols, cols);

    /* Every batch size from 1 to NT (tiles of 4 tokens, leftovers by rows of 4), every pool. */
    for (int p = 0; p < 3; p++)
        for (uint32_t n = 1; n <= NT; n++) {
            CHECK_OK(ra_cpu_matmul(pools[p], &w, x, n, y));
            CHECK_MSG(!bits_differ(y, want, (size_t)n * rows), "%s %ux%u, batch %u, pool %d: not the documented order",
                      ra_wtype_name(type), rows, cols, n, p);
        }
    /* Each token alone, at the batch's last position. */
    for (uint32_t t = 0; t < NT; t++) {
        CHECK_OK(ra_cpu_matmul(pools[1], &w, x + (size_t)t * cols, 1, y1));
        CHECK(!bits_differ(y1, want + (size_t)t * rows, rows));
    }
    free(wf); free(x); free(y); free(y1); free(want); free(w.data);
}

/* Activations quantized per block of 32 as documented: d = max|x| / 127,
 * q = round(x / d) (x * (1/d), half away from zero), s = d * sum(q). */
static void ref_quant_block(const float *v, float *d, float *s, int32_t q[32])
{
    float amax = 0;
    for (int j = 0; j < 32; j++) amax = fabsf(v[j]) > amax ? fabsf(v[j]) : amax;
    *d = amax / 127.0f;
    float id = *d != 0.0f ? 1.0f / *d : 0.0f;
    int sum = 0;
    for (int j = 0; j < 32; j++) {
        q[j] = (int32_t)roundf(v[j] * id);
        sum += q[j];
    }
    *s = *d * (float)sum;
}

/* Q4_1 / Q8_0 / Q4_0: the block dot in int32, blocks accumulated left to right in float. */
static float ref_quant_dot(ra_wtype type, const uint8_t *row, const float *x, uint32_t cols)
{
    float acc = 0;
    for (uint32_t b = 0; b < cols / 32; b++) {
        float xd, xs;
        int32_t xq[32], wq[32], isum = 0;
        ref_quant_block(x + 32 * b, &xd, &xs, xq);
        float d, m = 0;
        if (type == RA_W_Q4_1) {
            const ra_block_q4_1 *blk = (const ra_block_q4_1 *)row + b;
            d = ra_f16_to_f32(blk->d);
            m = ra_f16_to_f32(blk->m);
            for (int k = 0; k < 16; k++) {
                wq[k] = blk->qs[k] & 15;
                wq[k + 16] = blk->qs[k] >> 4;
            }
        } else if (type == RA_W_Q4_0) {
            const ra_block_q4_0 *blk = (const ra_block_q4_0 *)row + b;
            d = ra_f16_to_f32(blk->d);
            for (int k = 0; k < 16; k++) {
                wq[k] = (blk->qs[k] & 15) - 8;
                wq[k + 16] = (blk->qs[k] >> 4) - 8;
            }
        } else if (type == RA_W_Q5_0) {
            const ra_block_q5_0 *blk = (const ra_block_q5_0 *)row + b;
            const uint32_t qh = blk->qh[0] | blk->qh[1] << 8 | blk->qh[2] << 16 | (uint32_t)blk->qh[3] << 24;
            d = ra_f16_to_f32(blk->d);
            for (int k = 0; k < 32; k++) wq[k] = ((k < 16 ? blk->qs[k] & 15 : blk->qs[k - 16] >> 4) | (qh >> k & 1) << 4) - 16;
        } else if (type == RA_W_Q4_K) {
            /* sub-block b % 8 of super-block b / 8: x = (d sc) q - dmin m */
            const ra_block_q4_k *blk = (const ra_block_q4_k *)row + b / 8;
            const int j = (int)(b % 8);
            uint8_t sc, mn;
            ra_q4_k_scale_min(blk->scales, j, &sc, &mn);
            d = ra_f16_to_f32(blk->d) * sc;
            m = -(ra_f16_to_f32(blk->dmin) * mn);
            for (int k = 0; k < 32; k++) wq[k] = j % 2 ? blk->qs[32 * (j / 2) + k] >> 4 : blk->qs[32 * (j / 2) + k] & 15;
        } else if (type == RA_W_Q6_K) {
            /* element e of the super-block: 6-bit code from ql / qh as the GGUF spec lays it out, times its
             * group's int8 scale; the super-block's d */
            const ra_block_q6_k *blk = (const ra_block_q6_k *)row + b / 8;
            d = ra_f16_to_f32(blk->d);
            for (int k = 0; k < 32; k++) {
                const int e = 32 * (int)(b % 8) + k, h = e / 128, l = e % 32, part = (e % 128) / 32;
                const uint8_t lo = blk->ql[64 * h + l + (part & 1) * 32];
                const int code = ((part < 2 ? lo & 15 : lo >> 4) | ((blk->qh[32 * h + l] >> (2 * part)) & 3) << 4) - 32;
                wq[k] = blk->scales[e / 16] * code;
            }
        } else {
            const ra_block_q8_0 *blk = (const ra_block_q8_0 *)row + b;
            d = ra_f16_to_f32(blk->d);
            for (int k = 0; k < 32; k++) wq[k] = blk->qs[k];
        }
        for (int k = 0; k < 32; k++) isum += wq[k] * xq[k];
        float p = (d * xd) * (float)isum;
        acc += type == RA_W_Q4_1 || type == RA_W_Q4_K ? p + m * xs : p;
    }
    return acc;
}

static void check_quant_kernel(ra_wtype type, uint32_t rows, uint32_t cols, ra_pool *pools[3])
{
    const uint32_t NT = 9;
    ra_weight w = {.type = type, .rows = rows, .cols = cols};
    CHECK_OK(ra_wtype_row_bytes(type, cols, &w.row_bytes));
    w.data = malloc((size_t)rows * w.row_bytes);
    for (size_t i = 0; i < (size_t)rows * w.row_bytes; i++) w.data[i] = (uint8_t)(frand() * 128 + 128);
    /* Sane block scales: random bytes could make f16 NaNs or huge values. */
    const bool super = type == RA_W_Q4_K || type == RA_W_Q6_K;
    const uint32_t nblk = cols / (super ? 256 : 32);
    const size_t blk_bytes = w.row_bytes / nblk;
    for (uint32_t r = 0; r < rows; r++)
        for (uint32_t b = 0; b < nblk; b++) {
            uint8_t *blk = w.data + (size_t)r * w.row_bytes + (size_t)b * blk_bytes;
            const float scale = super ? 0.0005f : 1.0f; /* K-quant d multiplies 6- or 8-bit sub-scales */
            uint16_t d = ra_f32_to_f16(scale * (0.01f + 0.02f * fabsf(frand()))), m = ra_f32_to_f16(-0.1f * fabsf(frand()));
            if (type == RA_W_Q6_K) memcpy(blk + 208, &d, 2);
            else memcpy(blk, &d, 2);
            if (type == RA_W_Q4_1) memcpy(blk + 2, &m, 2);
            if (type == RA_W_Q4_K) {
                m = ra_f32_to_f16(scale * 0.1f * fabsf(frand()));
                memcpy(blk + 2, &m, 2);
            }
        }
    float *x = malloc((size_t)NT * cols * 4), *y = malloc((size_t)NT * rows * 4), *want = malloc((size_t)NT * rows * 4);
    float *wf = malloc((size_t)cols * 4);
    for (size_t i = 0; i < (size_t)NT * cols; i++) x[i] = frand();
    x[5] = 0; /* a block with a zero, and below one that is all zeros */
    for (uint32_t i = 0; i < 32; i++) x[cols + i] = 0;
    for (uint32_t t = 0; t < NT; t++)
        for (uint32_t r = 0; r < rows; r++)
            want[(size_t)t * rows + r] = ref_quant_dot(type, w.data + (size_t)r * w.row_bytes, x + (size_t)t * cols, cols);
    /* Every path this machine has (the scalar one and, with AVX2, the vector one). */
    const ra_cpu_path paths[] = {RA_CPU_PATH_SCALAR, ra_cpu_best_path()};
    for (int ip = 0; ip < 2; ip++)
        for (int p = 0; p < 3; p++)
            for (uint32_t n = 1; n <= NT; n++) {
                CHECK_OK(ra_cpu_matmul_path(pools[p], paths[ip], &w, x, n, y));
                CHECK_MSG(!bits_differ(y, want, (size_t)n * rows),
                          "%s %ux%u, batch %u, pool %d, path %d: not the documented order", ra_wtype_name(type), rows,
                          cols, n, p, (int)paths[ip]);
            }
    /* And close to the float product with the exactly dequantized weights:
     * int8 activations cost at most half a step (d/2) per element. */
    double worst = 0;
    for (uint32_t r = 0; r < rows; r++) {
        CHECK_OK(ra_weight_row_f32(&w, r, wf));
        for (uint32_t t = 0; t < NT; t++) {
            double exact = 0, bound = 0;
            for (uint32_t c = 0; c < cols; c++) {
                exact += (double)wf[c] * x[(size_t)t * cols + c];
                bound += fabs(wf[c]) / 127.0 * 0.5 * 1.0001 + 1e-6;
            }
            double err = fabs(exact - y[(size_t)t * rows + r]);
            if (err > worst) worst = err;
            CHECK_MSG(err <= bound, "%s row %u token %u: %g off the exact product, bound %g", ra_wtype_name(type), r, t, err, bound);
        }
    }
    free(x); free(y); free(want); free(wf); free(w.data);
}

int main(void)
{
    ra_pool *pools[3] = {NULL, NULL, NULL};
    CHECK_OK(ra_pool_new(1, &pools[0]));
    CHECK_OK(ra_pool_new(2, &pools[1]));
    CHECK_OK(ra_pool_new(5, &pools[2]));

    /* Awkward shapes: not multiples of the 4-row tile, the 16-row task or the 8 lanes. */
    const uint32_t shapes[][2] = {{1, 1}, {3, 7}, {5, 8}, {17, 9}, {33, 77}, {50, 64}, {19, 1000}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        check_float_kernel(RA_W_F32, shapes[i][0], shapes[i][1], pools);
        check_float_kernel(RA_W_BF16, shapes[i][0], shapes[i][1], pools);
    }
    const uint32_t qshapes[][2] = {{1, 32}, {7, 64}, {21, 96}, {35, 576}};
    for (size_t i = 0; i < sizeof qshapes / sizeof qshapes[0]; i++) {
        check_quant_kernel(RA_W_Q4_1, qshapes[i][0], qshapes[i][1], pools);
        check_quant_kernel(RA_W_Q8_0, qshapes[i][0], qshapes[i][1], pools);
        check_quant_kernel(RA_W_Q4_0, qshapes[i][0], qshapes[i][1], pools);
        check_quant_kernel(RA_W_Q5_0, qshapes[i][0], qshapes[i][1], pools);
    }
    const uint32_t kshapes[][2] = {{1, 256}, {21, 512}, {35, 1536}};
    for (size_t i = 0; i < sizeof kshapes / sizeof kshapes[0]; i++) {
        check_quant_kernel(RA_W_Q4_K, kshapes[i][0], kshapes[i][1], pools);
        check_quant_kernel(RA_W_Q6_K, kshapes[i][0], kshapes[i][1], pools);
    }

    /* Float ops. */
    float v[5] = {1, 2, 3, 4, 5}, g[5] = {1, 1, 1, 1, 2}, o[5];
    ra_cpu_rmsnorm(v, g, 5, 0, o);
    CHECK_NEAR(o[0], 1 / sqrt(11.0), 1e-7);
    CHECK_NEAR(o[4], 10 / sqrt(11.0), 1e-6);
    float lp[4] = {0, 1, 2, 3};
    ra_cpu_log_softmax(lp, 4);
    double z = log(1 + exp(1.0) + exp(2.0) + exp(3.0));
    CHECK_NEAR(lp[0], -z, 1e-6);
    CHECK_NEAR(lp[3], 3 - z, 1e-6);
    double total = 0;
    for (int i = 0; i < 4; i++) total += exp((double)lp[i]);
    CHECK_NEAR(total, 1.0, 1e-6);
    float big[3] = {1000, 1000, -INFINITY}; /* no overflow, -inf stays -inf */
    ra_cpu_log_softmax(big, 3);
    CHECK_NEAR(big[0], -log(2.0), 1e-6);
    CHECK(isinf(big[2]) && big[2] < 0);
    float gate[3] = {0, 1, -20}, up[3] = {5, 2, 1};
    ra_cpu_swiglu(gate, up, 3);
    CHECK(gate[0] == 0);
    CHECK_NEAR(gate[1], 2 / (1 + exp(-1.0)), 1e-6);
    CHECK_NEAR(gate[2], -20 / (1 + exp(20.0)), 1e-12);

    for (int p = 0; p < 3; p++) ra_pool_free(pools[p]);
    CHECK_DONE();
}
