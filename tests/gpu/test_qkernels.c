/* The quantized kernels (kernels/quant.cu) against their formats' CPU
 * references, on layers quantized here from random weights at awkward shapes
 * (N and K not multiples of the tiles, groups of 32/64/128, act-order with a
 * shuffled g_idx), packed as their checkpoints store them:
 *  - decoding: with one-hot activations every weight comes back bit for bit
 *    as the CPU dequantizes it (weight-only formats);
 *  - FP8 W8A8: the activations' codes and scales bit for bit as the CPU
 *    quantizes them, the product within tolerance of the CPU's;
 *  - the product within tolerance of a double-precision sum;
 *  - @ra: bitwise the same run to run, and a row alone = the same row inside
 *    batches of 2..64 at several positions with other neighbours;
 *  - @atomic: within tolerance; how often its bits change run to run is
 *    measured and printed, not asserted. Needs a CUDA GPU. */
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define RA_TEST_SEED 0x9e3779b97f4a7c15ull
#include "gpu_test.h"
#include "kernels.h"
#include "blas_fp8.h"
#include "qlinear.h"
#include "ra/format.h"
#include "ra/fp8.h"
#include "ra/minifloat.h"
#include "ra/util.h"

#define MAX_M 64
#define REPEATS 10


/* Marlin layers repacked from other sources than the row's own (GPTQ symmetric, f16 scales). */
typedef enum { FROM_ROW = 0, MARLIN_ACT, MARLIN_FROM_AWQ, MARLIN_FROM_W4A16 } qsource;

typedef struct {
    const char *row; /* the format's row in the traits table */
    uint32_t n, k;
    int32_t group;   /* 0: the row's own; -1: one group a row */
    qsource from;    /* Marlin: act-order, zero points (AWQ) or bf16 scales (W4A16) */
} qcase;

typedef struct {
    ra_qgemm_args a;
    float *dx, *dy, *dxq, *dxs; /* dxq, dxs: W8A8 activation codes (decoded) and scales */
    float *dxs_g;               /* the scales group-major (cuBLASLt's 128-block layout) */
    size_t mn_bytes;
} launch;

/* Runs the product on host activations x (m x k); y gets m x n. */
static void run(launch *L, const float *x, int m, int atomic, float *y)
{
    const int k = L->a.w.k, n = L->a.w.n;
    CUDA_OK(cudaMemcpy(L->dx, x, (size_t)m * k * sizeof(float), cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemset(L->dy, 0xff, L->mn_bytes)); /* poison: unwritten outputs read as NaN */
    L->a.m = m;
    L->a.atomic = atomic;
    if (L->a.w.act) CUDA_OK(ra_k_fp8_quantize_act(L->dx, L->dxq, L->dxs, m, k, L->a.w.act, 0));
    CUDA_OK(ra_k_qgemm(&L->a, 0));
    CUDA_OK(cudaDeviceSynchronize());
    CUDA_OK(cudaMemcpy(y, L->dy, (size_t)m * n * sizeof(float), cudaMemcpyDeviceToHost));
}

/* fp8-w8a8@cublaslt / fp8-block@cublaslt: cuBLASLt's FP8 GEMM on the same
 * quantized activations; within tolerance of the CPU's W8A8 product where
 * cuBLASLt takes the shape (K % 16 == 0), refused with a message elsewhere;
 * its run-to-run and batch behaviour measured, not asserted. */
static void lt_run(launch *L, ra_blas_fp8 *lt, uint8_t *dx8, const float *x, int m, float *y, ra_status *st)
{
    const int k = L->a.w.k, n = L->a.w.n;
    CUDA_OK(cudaMemcpy(L->dx, x, (size_t)m * k * sizeof(float), cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemset(L->dy, 0xff, L->mn_bytes));
    CUDA_OK(ra_k_fp8_quantize_act(L->dx, L->dxq, L->dxs, m, k, L->a.w.act, 0));
    CUDA_OK(ra_k_fp8_encode(L->dxq, dx8, (size_t)m * k, 0));
    const bool block = L->a.w.block_rows > 1;
    if (block) CUDA_OK(ra_k_fp8_scales_by_group(L->dxs, L->dxs_g, m, (k + 127) / 128, 0));
    *st = ra_blas_fp8_gemm(lt, L->a.w.codes, L->a.w.fscales, dx8, block ? L->dxs_g : L->dxs, L->dy, m, n, k, n, block, false);
    CUDA_OK(cudaDeviceSynchronize());
    CUDA_OK(cudaMemcpy(y, L->dy, (size_t)m * n * sizeof(float), cudaMemcpyDeviceToHost));
}

static void test_cublaslt(const qcase *c, launch *L, const float *x, const float *ycpu, const float *deq)
{
    const int N = L->a.w.n, K = L->a.w.k;
    ra_blas_fp8 *lt = NULL;
    uint8_t *dx8 = NULL;
    CHECK_OK(ra_blas_fp8_open(0, &lt));
    CUDA_OK(cudaMalloc((void **)&dx8, (size_t)MAX_M * K));
    float *y = malloc(L->mn_bytes), *y0 = malloc(L->mn_bytes), *alone = malloc((size_t)N * sizeof *alone);
    ra_status st;
    lt_run(L, lt, dx8, x, MAX_M, y0, &st);
    if (K % 16) {
        CHECK_MSG(st == RA_ERR_UNSUPPORTED, "%s@cublaslt K=%d: not refused", c->row, K);
        printf("  %-12s N=%-4d K=%-5d cublaslt: refused (%s)\n", c->row, N, K, ra_errmsg());
    } else if (st != RA_OK) {
        CHECK_MSG(0, "%s@cublaslt %dx%d: %s", c->row, N, K, ra_errmsg());
    } else {
        double worst = 0;
        for (int t = 0; t < MAX_M; t++)
            for (int n = 0; n < N; n++) {
                double mag = 0;
                for (int k = 0; k < K; k++) mag += fabs((double)deq[(size_t)n * K + k] * x[(size_t)t * K + k]);
                const double e = fabs(y0[(size_t)t * N + n] - ycpu[(size_t)t * N + n]) / (mag > 0 ? mag : 1);
                worst = e > worst || isnan(e) ? e : worst;
            }
        CHECK_MSG(worst <= 1e-3, "%s@cublaslt %dx%d: error %.3g", c->row, N, K, worst);
        int runs_diff = 0, batch_diff = 0, batch_checked = 0;
        for (int r = 0; r < REPEATS; r++) {
            lt_run(L, lt, dx8, x, MAX_M, y, &st);
            runs_diff += memcmp(y, y0, (size_t)MAX_M * N * 4) != 0;
        }
        lt_run(L, lt, dx8, x, 1, alone, &st);
        static const int ms[] = {2, 5, 16, 33, 64};
        for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++, batch_checked++) {
            lt_run(L, lt, dx8, x, ms[i], y, &st);
            batch_diff += memcmp(y, alone, (size_t)N * 4) != 0;
        }
        printf("  %-12s N=%-4d K=%-5d cublaslt: err %.2g  repeats differ %d/%d  row 0 alone vs batches "
               "differ %d/%d\n",
               c->row, N, K, worst, runs_diff, REPEATS, batch_diff, batch_checked);
    }
    free(y), free(y0), free(alone);
    cudaFree(dx8);
    ra_blas_fp8_close(lt);
}

static void test_case(const qcase *c)
{
    const ra_format *f = ra_format_find(c->row);
    CHECK_MSG(f && f->quant, "row %s", c->row);
    if (!f || !f->quant) return;
    ra_qformat qf = *f->quant;
    if (c->group) qf.group_size = c->group;
    const uint32_t N = c->n, K = c->k;
    float *w = malloc((size_t)N * K * sizeof *w), *deq = malloc((size_t)N * K * sizeof *deq);
    for (size_t i = 0; i < (size_t)N * K; i++) w[i] = 0.05f * frand();
    int32_t *perm = NULL;
    if (c->from == MARLIN_ACT) qf.act_order = true;
    if (qf.act_order) { /* a shuffled column order: g_idx is not monotone */
        perm = malloc(K * sizeof *perm);
        for (uint32_t i = 0; i < K; i++) perm[i] = (int32_t)i;
        for (uint32_t i = K - 1; i > 0; i--) {
            uint32_t j = urand(i + 1);
            int32_t t = perm[i];
            perm[i] = perm[j], perm[j] = t;
        }
    }
    ra_qlayer q = {0};
    ra_cuda_qlayer d = {0};
    if (c->from == MARLIN_FROM_AWQ || c->from == MARLIN_FROM_W4A16) { /* quantized by the source, then repacked */
        ra_qformat src = *ra_format_find(c->from == MARLIN_FROM_AWQ ? "awq" : "w4a16")->quant;
        src.group_size = qf.group_size;
        ra_qlayer s0 = {0};
        CHECK_OK(ra_qformat_quantize(&src, w, N, K, NULL, &s0));
        CHECK_OK(ra_qformat_from_intq(&qf, &s0.u.intq, &q));
    } else {
        CHECK_OK(ra_qformat_quantize(&qf, w, N, K, perm, &q));
    }
    for (uint32_t r = 0; r < N; r++) CHECK_OK(ra_qlayer_row_f32(&q, r, deq + (size_t)r * K));
    CHECK_OK(ra_cuda_qlayer_upload(&qf, &q, &d));

    launch L = {.a = {.w = d.w, .epilogue = RA_EPI_STORE}, .mn_bytes = (size_t)MAX_M * N * sizeof(float)};
    const size_t ws = ra_qgemm_workspace(d.w.kind, (int)N, (int)K, MAX_M);
    CUDA_OK(cudaMalloc((void **)&L.dx, (size_t)MAX_M * K * sizeof(float)));
    CUDA_OK(cudaMalloc((void **)&L.dy, L.mn_bytes));
    if (ws) CUDA_OK(cudaMalloc((void **)&L.a.ws, ws * sizeof(float)));
    if (ws) CUDA_OK(cudaMemset(L.a.ws, 0, ws * sizeof(float))); /* its counters start at zero (kernels.h) */
    L.a.x = L.dx, L.a.y = L.dy;
    const bool w8a8 = d.w.act != RA_QACT_NONE;
    const uint32_t groups = d.w.act == RA_QACT_GROUP ? (K + 127) / 128 : 1;
    if (w8a8) {
        CUDA_OK(cudaMalloc((void **)&L.dxq, (size_t)MAX_M * K * sizeof(float)));
        CUDA_OK(cudaMalloc((void **)&L.dxs, (size_t)MAX_M * groups * sizeof(float)));
        CUDA_OK(cudaMalloc((void **)&L.dxs_g, (size_t)MAX_M * groups * sizeof(float)));
        L.a.x = L.dxq, L.a.xscale = L.dxs;
    }
    float *x = calloc((size_t)MAX_M * K, sizeof *x), *y = malloc(L.mn_bytes), *y0 = malloc(L.mn_bytes),
          *y1 = malloc(L.mn_bytes);

    /* 1. Decoding: one-hot rows pick single weights (weight-only formats). */
    uint64_t decode_bad = 0;
    for (uint32_t k0 = 0; !w8a8 && k0 < K; k0 += MAX_M) {
        const int m = (int)(K - k0 < MAX_M ? K - k0 : MAX_M);
        memset(x, 0, (size_t)MAX_M * K * sizeof *x);
        for (int t = 0; t < m; t++) x[(size_t)t * K + k0 + t] = 1.0f;
        run(&L, x, m, 0, y);
        for (int t = 0; t < m; t++)
            for (uint32_t n = 0; n < N; n++) decode_bad += y[(size_t)t * N + n] != deq[(size_t)n * K + k0 + t];
    }
    CHECK_MSG(decode_bad == 0, "%s %ux%u: %llu weights decode differently from the CPU", c->row, N, K,
              (unsigned long long)decode_bad);

    /* 2. Tolerance against a double sum (W8A8: against the CPU's product), for @ra and @atomic. */
    for (size_t i = 0; i < (size_t)MAX_M * K; i++) x[i] = frand() * (i % 97 == 5 ? 40.0f : 1.0f);
    float *ycpu = NULL;
    if (w8a8) { /* the activations' codes and scales, bit for bit; the CPU's product */
        uint8_t *codes = malloc((size_t)MAX_M * K);
        float *xs = malloc((size_t)MAX_M * groups * sizeof *xs), *xq = malloc((size_t)MAX_M * K * sizeof *xq),
              *gxs = malloc((size_t)MAX_M * groups * sizeof *gxs);
        ra_fp8_quantize_activations(x, MAX_M, K, q.act, codes, xs);
        run(&L, x, MAX_M, 0, y);
        CUDA_OK(cudaMemcpy(xq, L.dxq, (size_t)MAX_M * K * sizeof *xq, cudaMemcpyDeviceToHost));
        CUDA_OK(cudaMemcpy(gxs, L.dxs, (size_t)MAX_M * groups * sizeof *gxs, cudaMemcpyDeviceToHost));
        uint64_t bad = 0;
        for (size_t i = 0; i < (size_t)MAX_M * K; i++) bad += memcmp(&xq[i], &(float){ra_e4m3_to_f32(codes[i])}, 4) != 0;
        for (size_t i = 0; i < (size_t)MAX_M * groups; i++) bad += memcmp(&xs[i], &gxs[i], 4) != 0;
        CHECK_MSG(bad == 0, "%s: %llu activation codes or scales differ from the CPU's", c->row, (unsigned long long)bad);
        ycpu = malloc(L.mn_bytes);
        ra_pool *pool = NULL;
        CHECK_OK(ra_pool_new(1, &pool));
        CHECK_OK(ra_qlayer_matmul(pool, &q, x, MAX_M, ycpu));
        ra_pool_free(pool);
        free(codes), free(xs), free(xq), free(gxs);
    }
    /* Marlin rounds the activations to its operands' type (f16: 2^-11 relative, bf16: 2^-8); the rest is float32 */
    const double tol = d.w.kind != RA_Q_MARLIN ? 1e-5 : (d.w.scale_bf16 ? 0x1p-8 : 0x1p-11) + 1e-5;
    double worst[2] = {0, 0};
    for (int atomic = 0; atomic < 2; atomic++) {
        run(&L, x, MAX_M, atomic, y);
        for (int t = 0; t < MAX_M; t++)
            for (uint32_t n = 0; n < N; n++) {
                double ref = 0, mag = 0;
                for (uint32_t k = 0; k < K; k++) {
                    const double p = (double)deq[(size_t)n * K + k] * x[(size_t)t * K + k];
                    ref += p, mag += fabs(p);
                }
                if (ycpu) ref = ycpu[(size_t)t * N + n]; /* same quantized activations on both sides */
                const double e = fabs(y[(size_t)t * N + n] - ref) / (mag > 0 ? mag : 1);
                worst[atomic] = e > worst[atomic] || isnan(e) ? e : worst[atomic];
            }
        CHECK_MSG(worst[atomic] <= tol, "%s@%s %ux%u: error %.3g of sum |w x|", c->row, atomic ? "atomic" : "ra", N, K,
                  worst[atomic]);
    }

    if (ycpu) test_cublaslt(c, &L, x, ycpu, deq);

    /* 3. @ra run to run, and @atomic measured. */
    run(&L, x, MAX_M, 0, y0);
    uint64_t ra_diff = 0, at_runs_diff = 0, at_vals_diff = 0;
    for (int r = 0; r < REPEATS; r++) {
        run(&L, x, MAX_M, 0, y);
        ra_diff += memcmp(y, y0, (size_t)MAX_M * N * 4) != 0;
    }
    CHECK_MSG(ra_diff == 0, "%s@ra %ux%u: %llu of %d repeats differ", c->row, N, K, (unsigned long long)ra_diff, REPEATS);
    run(&L, x, MAX_M, 1, y1);
    for (int r = 0; r < REPEATS; r++) {
        run(&L, x, MAX_M, 1, y);
        uint64_t v = 0;
        for (size_t i = 0; i < (size_t)MAX_M * N; i++) v += memcmp(&y[i], &y1[i], 4) != 0;
        at_runs_diff += v > 0, at_vals_diff += v;
    }

    /* 4. Batch invariance: row `t` alone, and at several positions of batches
     * of 2..64 with other neighbours. */
    float *alone = malloc(N * sizeof *alone), *xb = malloc((size_t)MAX_M * K * sizeof *xb);
    uint64_t batch_bad = 0, batch_checked = 0;
    for (int probe = 0; probe < 3; probe++) {
        const float *row = x + (size_t)probe * K;
        run(&L, row, 1, 0, alone);
        static const int ms[] = {2, 3, 5, 8, 9, 16, 17, 33, 64};
        for (size_t mi = 0; mi < sizeof ms / sizeof ms[0]; mi++) {
            const int m = ms[mi], at[3] = {0, m / 2, m - 1};
            for (int p = 0; p < 3; p++) {
                for (size_t i = 0; i < (size_t)m * K; i++) xb[i] = frand();
                memcpy(xb + (size_t)at[p] * K, row, K * sizeof *row);
                run(&L, xb, m, 0, y);
                batch_bad += memcmp(y + (size_t)at[p] * N, alone, N * sizeof *alone) != 0;
                batch_checked++;
            }
        }
    }
    CHECK_MSG(batch_bad == 0, "%s@ra %ux%u: %llu of %llu batched rows differ from the row alone", c->row, N, K,
              (unsigned long long)batch_bad, (unsigned long long)batch_checked);
    printf("  %-12s N=%-4u K=%-5u group %-4d slices %d (atomic %d)  %s  err ra %.2g atomic %.2g  "
           "batched rows %llu same  atomic: %llu/%d repeats differ (%llu values)\n",
           c->row, N, K, qf.group_size, ra_qgemm_slices(d.w.kind, (int)N, (int)K),
           ra_qgemm_slices_atomic(d.w.kind, (int)N, (int)K, (int)d.w.act),
           w8a8 ? "activations exact" : "decode exact", worst[0], worst[1],
           (unsigned long long)batch_checked, (unsigned long long)at_runs_diff, REPEATS, (unsigned long long)at_vals_diff);

    free(alone), free(xb), free(x), free(y), free(y0), free(y1), free(w), free(deq), free(perm), free(ycpu);
    cudaFree(L.dx), cudaFree(L.dy), cudaFree(L.a.ws), cudaFree(L.dxq), cudaFree(L.dxs), cudaFree(L.dxs_g);
    ra_cuda_qlayer_free(&d);
    ra_qlayer_free(&q);
}

int main(void)
{
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
        fprintf(stderr, "test_qkernels: no CUDA GPU\n");
        return 2;
    }
    static const qcase cases[] = {
        {"gptq", 200, 640, 128, FROM_ROW},     {"gptq", 72, 2048, 32, FROM_ROW},     {"gptq-act", 136, 384, 64, FROM_ROW},
        {"gptq-act", 264, 1152, 128, FROM_ROW}, {"awq", 264, 640, 128, FROM_ROW},    {"awq", 72, 320, 32, FROM_ROW},
        {"w4a16", 200, 512, 64, FROM_ROW},     {"w4a16", 96, 1024, 128, FROM_ROW},  {"fp8", 200, 1000, 0, FROM_ROW},
        {"fp8-block", 304, 1000, 0, FROM_ROW}, {"nvfp4", 200, 640, 0, FROM_ROW},    {"mxfp4", 72, 352, 0, FROM_ROW},
        {"mxfp4", 584, 4096, 0, FROM_ROW},      {"fp8-w8a8", 200, 1000, 0, FROM_ROW}, {"fp8-w8a8", 96, 4096, 0, FROM_ROW},
        {"fp8-block", 136, 1000, 0, FROM_ROW}, {"fp8-block", 256, 1024, 0, FROM_ROW}, {"fp8-w8a8", 200, 1024, 0, FROM_ROW},
        {"marlin", 192, 640, 128, FROM_ROW},   {"marlin", 64, 1056, 32, FROM_ROW},   {"marlin", 128, 1024, -1, FROM_ROW},
        {"marlin", 128, 512, 64, MARLIN_ACT}, {"marlin", 256, 384, 128, MARLIN_FROM_AWQ},
        {"marlin", 320, 832, 64, MARLIN_FROM_W4A16},
    };
    printf("quantized kernels (@ra fixed order, @atomic split-K with float atomics):\n");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) test_case(&cases[i]);
    CHECK_DONE();
}
