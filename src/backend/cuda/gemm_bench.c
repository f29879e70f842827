/* The matrix-product benchmark of `repro-audit bench` (include/ra/bench.h).
 * Method (../shared/reference/h100-ceilings.md, the device notes' METHOD.md):
 * the copy ceiling and every kernel in the same process; synthetic random
 * weights, several copies rotated so their total exceeds the L2 cache four
 * times over; warm-up launches, then each launch timed alone with events and
 * the median kept. */
#include <cjson/cJSON.h>
#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../backend.h"
#include "blas.h"
#include "blas_fp8.h"
#include "cuda_util.h"
#include "kernels.h"
#include "ra/format.h"
#include "ra/qformat.h"
#include "ra/bench.h"
#include "ra/util.h"

#define WARMUP 5

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Times `runs` launches of fn one by one; returns the median and minimum in microseconds. */
typedef ra_status (*launch_fn)(void *ctx, uint32_t i);

static ra_status time_launches(cudaStream_t s, launch_fn fn, void *ctx, uint32_t runs, float *median_us, float *min_us)
{
    cudaEvent_t *ev;
    float *ms;
    RA_TRY(ra_calloc(&ev, 2 * (size_t)runs, sizeof *ev));
    ra_status st = ra_calloc(&ms, runs, sizeof *ms);
    for (uint32_t i = 0; st == RA_OK && i < 2 * runs; i++) st = ra_cuda_check(cudaEventCreate(&ev[i]), "event");
    for (uint32_t i = 0; st == RA_OK && i < WARMUP; i++) st = fn(ctx, i);
    for (uint32_t i = 0; st == RA_OK && i < runs; i++) {
        st = ra_cuda_check(cudaEventRecord(ev[2 * i], s), "event record");
        if (st == RA_OK) st = fn(ctx, WARMUP + i);
        if (st == RA_OK) st = ra_cuda_check(cudaEventRecord(ev[2 * i + 1], s), "event record");
    }
    if (st == RA_OK) st = ra_cuda_check(cudaStreamSynchronize(s), "benchmark");
    for (uint32_t i = 0; st == RA_OK && i < runs; i++)
        st = ra_cuda_check(cudaEventElapsedTime(&ms[i], ev[2 * i], ev[2 * i + 1]), "elapsed time");
    if (st == RA_OK) {
        qsort(ms, runs, sizeof *ms, cmp_float);
        *median_us = 1000 * ms[runs / 2];
        *min_us = 1000 * ms[0];
    }
    for (uint32_t i = 0; i < 2 * runs; i++)
        if (ev[i]) cudaEventDestroy(ev[i]);
    free(ev);
    free(ms);
    return st;
}

typedef struct {
    cudaStream_t s;
    void *src, *dst;
    size_t bytes;
} copy_ctx;

static ra_status launch_copy(void *ctx, uint32_t i)
{
    (void)i;
    copy_ctx *c = ctx;
    return ra_cuda_check(cudaMemcpyAsync(c->dst, c->src, c->bytes, cudaMemcpyDeviceToDevice, c->s), "copy");
}

typedef struct {
    cudaStream_t s;
    ra_dtype dt;
    ra_blas *blas;            /* NULL: our kernel */
    void **w;                 /* rotating weight copies */
    uint32_t n_copies;
    void *x;
    float *y;
    float *ws;
    unsigned *counters;
    uint32_t m, n, k;
} gemm_ctx;

static ra_status launch_gemm(void *ctx, uint32_t i)
{
    gemm_ctx *g = ctx;
    const void *w = g->w[i % g->n_copies];
    if (g->blas) return ra_blas_gemm(g->blas, w, g->x, g->y, (int)g->m, (int)g->n, (int)g->k, false);
    ra_gemm_args a = {.dtype = g->dt, .w = w, .x = g->x, .y = g->y, .m = (int)g->m, .n = (int)g->n, .k = (int)g->k,
                      .epilogue = RA_EPI_STORE, .ws = g->ws, .counters = g->counters};
    return ra_cuda_check(ra_k_gemm(&a, g->s), "matrix product");
}

/* One timed point of the table: a kernel at one shape and batch size. */
static void add_result(const ra_gemm_bench_opts *o, cJSON *results, const char *kernel, const ra_bench_shape *sh,
                       uint32_t m, int slices, float med, float mn, size_t wbytes, double copy_gbps)
{
    const double gbps = (double)wbytes / (med * 1e-6) / 1e9;
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "kernel", kernel);
    cJSON_AddStringToObject(r, "shape", sh->name);
    cJSON_AddNumberToObject(r, "n", sh->n);
    cJSON_AddNumberToObject(r, "k", sh->k);
    cJSON_AddNumberToObject(r, "m", m);
    cJSON_AddNumberToObject(r, "k_slices", slices);
    cJSON_AddNumberToObject(r, "us_median", med);
    cJSON_AddNumberToObject(r, "us_min", mn);
    cJSON_AddNumberToObject(r, "weight_bytes", (double)wbytes);
    cJSON_AddNumberToObject(r, "weight_GBps", gbps);
    cJSON_AddNumberToObject(r, "copy_ratio", gbps / copy_gbps);
    cJSON_AddItemToArray(results, r);
    if (o->progress) fprintf(stderr, "  %-16s %-18s M=%-4u %9.2f us  %7.1f GB/s\n", kernel, sh->name, m, med, gbps);
}

/* ---- quantized kernels: FORMAT@ra, FORMAT@atomic (kernels/), FORMAT@cublaslt (W8A8) ---- */

typedef struct {
    cudaStream_t s;
    ra_qweight *w;            /* rotating copies */
    void **bufs;              /* 5 per copy */
    uint32_t n_copies;
    float *x, *y, *ws;
    float *xq, *xscale; /* W8A8: the activations quantized, as the engine does before each product */
    uint8_t *x8;        /* ... and their codes, for cuBLASLt */
    float *xscale_g;    /* ... and the per-group scales group-major */
    ra_blas_fp8 *lt;    /* FORMAT@cublaslt */
    int atomic;
    uint32_t m;
} qgemm_ctx;

/* One product; for W8A8 the activations' quantization is timed with it. */
static ra_status launch_qgemm(void *ctx, uint32_t i)
{
    qgemm_ctx *g = ctx;
    ra_qgemm_args a = {.w = g->w[i % g->n_copies], .x = g->x, .y = g->y, .m = (int)g->m, .epilogue = RA_EPI_STORE,
                       .ws = g->ws, .atomic = g->atomic};
    if (a.w.act) {
        RA_TRY(ra_cuda_check(ra_k_fp8_quantize_act(g->x, g->xq, g->xscale, a.m, a.w.k, a.w.act, g->s), "FP8 activations"));
        a.x = g->xq, a.xscale = g->xscale;
    }
    if (g->lt) {
        const bool block = a.w.block_rows > 1;
        RA_TRY(ra_cuda_check(ra_k_fp8_encode(g->xq, g->x8, (size_t)a.m * a.w.k, g->s), "FP8 codes"));
        if (block) RA_TRY(ra_cuda_check(ra_k_fp8_scales_by_group(g->xscale, g->xscale_g, a.m, (a.w.k + 127) / 128, g->s), "scales"));
        return ra_blas_fp8_gemm(g->lt, a.w.codes, a.w.fscales, g->x8, block ? g->xscale_g : g->xscale, g->y, a.m, a.w.n,
                                a.w.k, a.w.n, block, false);
    }
    return ra_cuda_check(ra_k_qgemm(&a, g->s), "quantized product");
}

/* One device buffer of `bytes` random bits (or every byte `fill` when fill >= 0). */
static ra_status rand_buf(cudaStream_t s, size_t bytes, int fill, uint32_t seed, void **out, size_t *total)
{
    RA_TRY(ra_cuda_alloc(out, (bytes + 3) / 4, 4, "benchmark weights"));
    *total += bytes;
    if (fill >= 0) return ra_cuda_check(cudaMemsetAsync(*out, fill, bytes, s), "fill");
    return ra_cuda_check(ra_k_fill_random(RA_DT_F32, *out, (bytes + 3) / 4, seed, s), "fill");
}

/* Synthetic weights of a quantized row at shape n x k, in its checkpoint's
 * packing: random codes and zero points, finite scales (a repeated byte),
 * g_idx a shuffle of the groups for act-order. */
static ra_status make_qweight(cudaStream_t s, const ra_qformat *f, uint32_t n, uint32_t k, uint32_t seed, ra_qweight *w,
                              void **buf, size_t *bytes)
{
    const uint32_t G = f->group_size > 0 ? (uint32_t)f->group_size : 128, NG = (k + G - 1) / G;
    memset(w, 0, sizeof *w);
    w->n = (int)n, w->k = (int)k, w->group = (int)G;
    *bytes = 0;
    switch (f->family) {
    case RA_QF_GPTQ:
    case RA_QF_AWQ:
    case RA_QF_W4A16:
        w->kind = f->family == RA_QF_GPTQ ? RA_Q_GPTQ : f->family == RA_QF_AWQ ? RA_Q_AWQ : RA_Q_W4A16;
        w->scale_bf16 = f->family == RA_QF_W4A16;
        w->zero_offset = f->family == RA_QF_GPTQ;
        RA_TRY(rand_buf(s, (size_t)n * k / 2, -1, seed, &buf[0], bytes));
        RA_TRY(rand_buf(s, (size_t)NG * n * 2, 0x2c, 0, &buf[1], bytes));
        if (f->family != RA_QF_W4A16 || !f->sym) RA_TRY(rand_buf(s, (size_t)NG * n / 2, -1, seed + 1, &buf[2], bytes));
        w->qweight = buf[0], w->scales16 = buf[1], w->qzeros = buf[2];
        if (f->act_order) {
            int32_t *g;
            RA_TRY(ra_calloc(&g, k, sizeof *g));
            for (uint32_t i = 0; i < k; i++) g[i] = (int32_t)((i * 2654435761u % k) / G); /* groups interleaved */
            ra_status st = rand_buf(s, (size_t)k * 4, 0, 0, &buf[3], bytes);
            if (st == RA_OK) st = ra_cuda_check(cudaMemcpy(buf[3], g, (size_t)k * 4, cudaMemcpyHostToDevice), "g_idx");
            free(g);
            RA_TRY(st);
            w->g_idx = buf[3];
        }
        return RA_OK;
    case RA_QF_FP8: {
        const bool block = f->fp8_scheme == RA_FP8_BLOCK;
        w->kind = RA_Q_FP8;
        w->block_rows = block ? RA_FP8_BLOCK_SIZE : 1, w->block_cols = block ? RA_FP8_BLOCK_SIZE : (int)k;
        w->scale_cols = block ? (int)((k + 127) / 128) : 1;
        w->act = f->fp8_act == RA_FP8_ACT_TOKEN ? RA_QACT_TOKEN : f->fp8_act == RA_FP8_ACT_GROUP ? RA_QACT_GROUP : RA_QACT_NONE;
        w->seg = f->fp8_act == RA_FP8_ACT_GROUP || block ? RA_FP8_BLOCK_SIZE : (int)k; /* as qlinear.c */
        const size_t ns = block ? (size_t)((n + 127) / 128) * w->scale_cols : n;
        RA_TRY(rand_buf(s, (size_t)n * k, -1, seed, &buf[0], bytes));
        RA_TRY(rand_buf(s, ns * 4, 0x3c, 0, &buf[1], bytes));
        w->codes = buf[0], w->fscales = buf[1];
        return RA_OK;
    }
    case RA_QF_NVFP4:
    case RA_QF_MXFP4:
        w->kind = f->family == RA_QF_NVFP4 ? RA_Q_NVFP4 : RA_Q_MXFP4;
        w->global_scale = 448.0f * 6.0f;
        RA_TRY(rand_buf(s, (size_t)n * k / 2, -1, seed, &buf[0], bytes));
        RA_TRY(rand_buf(s, (size_t)n * k / (f->family == RA_QF_NVFP4 ? 16 : 32), 0x38, 0, &buf[1], bytes));
        w->codes = buf[0], w->bscales = buf[1];
        return RA_OK;
    case RA_QF_MARLIN: { /* GPTQ symmetric in the tile layout; groups that divide K (the layout needs it) */
        uint32_t g = G;
        while (g > 16 && k % g) g /= 2;
        if (n % 64 || k % 16 || k % g) return ra_fail(RA_ERR_USAGE, "bench: marlin needs N %% 64, K %% 16 (%u x %u)", n, k);
        w->kind = RA_Q_MARLIN, w->group = (int)g;
        RA_TRY(rand_buf(s, (size_t)n * k / 2, -1, seed, &buf[0], bytes));
        RA_TRY(rand_buf(s, (size_t)(k / g) * n * 2, 0x2c, 0, &buf[1], bytes));
        w->qweight = buf[0], w->scales16 = buf[1];
        return RA_OK;
    }
    }
    return ra_fail(RA_ERR_USAGE, "bench: no GPU kernel for %s layers yet", ra_qfamily_name(f->family));
}

static ra_status bench_qkernel_shape(const ra_gemm_bench_opts *o, cudaStream_t s, size_t l2, const char *kernel,
                                     const ra_qformat *f, int mode, const ra_bench_shape *sh, double copy_gbps,
                                     cJSON *results)
{
    const bool atomic = mode == 1, lt = mode == 2; /* @ra, @atomic, @cublaslt */
    qgemm_ctx g = {.s = s, .atomic = atomic};
    uint32_t max_m = 1;
    for (size_t i = 0; i < o->n_ms; i++) max_m = o->ms[i] > max_m ? o->ms[i] : max_m;
    size_t wbytes = 0;
    ra_qweight probe;
    void *pbuf[5] = {0};
    ra_status st = make_qweight(s, f, sh->n, sh->k, 1, &probe, pbuf, &wbytes);
    g.n_copies = (uint32_t)((4 * l2 + wbytes - 1) / (wbytes ? wbytes : 1));
    if (g.n_copies < 2) g.n_copies = 2;
    if (st == RA_OK) st = ra_calloc(&g.w, g.n_copies, sizeof *g.w);
    if (st == RA_OK) st = ra_calloc(&g.bufs, 5 * (size_t)g.n_copies, sizeof *g.bufs);
    if (st == RA_OK) {
        g.w[0] = probe;
        memcpy(g.bufs, pbuf, sizeof pbuf);
    } else {
        for (int i = 0; i < 5; i++) cudaFree(pbuf[i]);
    }
    for (uint32_t i = 1; st == RA_OK && i < g.n_copies; i++) {
        size_t b = 0;
        st = make_qweight(s, f, sh->n, sh->k, 1 + 2 * i, &g.w[i], g.bufs + 5 * i, &b);
    }
    if (st == RA_OK) st = ra_cuda_alloc(&g.x, (size_t)max_m * sh->k, sizeof(float), "benchmark activations");
    if (st == RA_OK) st = ra_cuda_check(ra_k_fill_random(RA_DT_F32, g.x, (size_t)max_m * sh->k, 7777, s), "fill");
    if (st == RA_OK) st = ra_cuda_alloc(&g.y, (size_t)max_m * sh->n, sizeof(float), "benchmark outputs");
    if (st == RA_OK && g.w[0].act) st = ra_cuda_alloc(&g.xq, (size_t)max_m * sh->k, sizeof(float), "FP8 activations");
    if (st == RA_OK && g.w[0].act) st = ra_cuda_alloc(&g.xscale, (size_t)max_m * ((sh->k + 127) / 128), sizeof(float), "scales");
    if (st == RA_OK && lt) st = ra_cuda_alloc(&g.x8, (size_t)max_m * sh->k, 1, "FP8 codes");
    if (st == RA_OK && lt) st = ra_cuda_alloc(&g.xscale_g, (size_t)max_m * ((sh->k + 127) / 128), sizeof(float), "scales");
    if (st == RA_OK && lt) st = ra_blas_fp8_open(s, &g.lt);
    const size_t ws = st == RA_OK ? ra_qgemm_workspace(g.w[0].kind, (int)sh->n, (int)sh->k, (int)max_m) : 0;
    if (st == RA_OK && ws) st = ra_cuda_alloc(&g.ws, ws, sizeof(float), "slice sums");
    for (size_t i = 0; st == RA_OK && i < o->n_ms; i++) {
        g.m = o->ms[i];
        float med = 0, mn = 0;
        st = time_launches(s, launch_qgemm, &g, o->runs, &med, &mn);
        if (st == RA_ERR_UNSUPPORTED && lt) { /* cuBLASLt offers no algorithm here: say so, go on */
            fprintf(stderr, "bench: %s, %s at M = %u: %s\n", kernel, sh->name, g.m, ra_errmsg());
            st = RA_OK;
            continue;
        }
        if (st != RA_OK) break;
        const int slices = lt ? 1 : atomic ? ra_qgemm_slices_atomic(g.w[0].kind, (int)sh->n, (int)sh->k, (int)g.w[0].act)
                                  : ra_qgemm_slices(g.w[0].kind, (int)sh->n, (int)sh->k);
        add_result(o, results, kernel, sh, g.m, slices, med, mn, wbytes, copy_gbps);
    }
    for (size_t i = 0; g.bufs && i < 5 * (size_t)g.n_copies; i++) cudaFree(g.bufs[i]);
    free(g.bufs);
    free(g.w);
    cudaFree(g.x);
    cudaFree(g.y);
    cudaFree(g.ws);
    cudaFree(g.xq);
    cudaFree(g.xscale);
    cudaFree(g.x8);
    cudaFree(g.xscale_g);
    ra_blas_fp8_close(g.lt);
    return st;
}

static ra_status bench_point(gemm_ctx *g, uint32_t runs, float *med, float *mn)
{
    return time_launches(g->s, launch_gemm, g, runs, med, mn);
}

static void free_copies(void **w, uint32_t n)
{
    for (uint32_t i = 0; w && i < n; i++) cudaFree(w[i]);
    free(w);
}

/* One kernel on one shape at every M. */
static ra_status bench_kernel_shape(const ra_gemm_bench_opts *o, cudaStream_t s, size_t l2, const char *kernel,
                                    const ra_bench_shape *sh, double copy_gbps, cJSON *results)
{
    const char *at = strchr(kernel, '@');
    char row[32];
    if (at && (size_t)(at - kernel) < sizeof row) { /* a quantized row: FORMAT@ra or FORMAT@atomic */
        memcpy(row, kernel, (size_t)(at - kernel));
        row[at - kernel] = 0;
        const ra_format *qf = ra_format_find(row);
        if (qf && qf->quant) {
            const bool w8a8 = qf->quant->family == RA_QF_FP8 && qf->quant->fp8_act != RA_FP8_ACT_NONE;
            const int mode = !strcmp(at + 1, "ra") ? 0 : !strcmp(at + 1, "atomic") ? 1 : w8a8 && !strcmp(at + 1, "cublaslt") ? 2 : -1;
            if (mode < 0)
                return ra_fail(RA_ERR_USAGE, "bench: %s kernels are @ra, @atomic%s, not %s", row, w8a8 ? ", @cublaslt" : "",
                               kernel);
            return bench_qkernel_shape(o, s, l2, kernel, qf->quant, mode, sh, copy_gbps, results);
        }
    }
    const bool f32 = !strncmp(kernel, "f32@", 4);
    const bool is_blas = !strcmp(kernel, "bf16@cublas") || !strcmp(kernel, "bf16@cublas-bi");
    if (!f32 && strncmp(kernel, "bf16@", 5)) return ra_fail(RA_ERR_USAGE, "bench: kernel %s is not a GPU kernel", kernel);
    if (!is_blas && strcmp(kernel + (f32 ? 4 : 5), "ra")) return ra_fail(RA_ERR_USAGE, "bench: unknown kernel %s", kernel);
    gemm_ctx g = {.s = s, .dt = f32 ? RA_DT_F32 : RA_DT_BF16, .n = sh->n, .k = sh->k};
    const size_t es = f32 ? 4 : 2, wbytes = (size_t)sh->n * sh->k * es;
    uint32_t max_m = 1;
    for (size_t i = 0; i < o->n_ms; i++) max_m = o->ms[i] > max_m ? o->ms[i] : max_m;
    g.n_copies = (uint32_t)((4 * l2 + wbytes - 1) / wbytes);
    if (g.n_copies < 2) g.n_copies = 2;
    ra_status st = ra_calloc(&g.w, g.n_copies, sizeof *g.w);
    for (uint32_t i = 0; st == RA_OK && i < g.n_copies; i++) {
        st = ra_cuda_alloc(&g.w[i], wbytes, 1, "benchmark weights");
        if (st == RA_OK) st = ra_cuda_check(ra_k_fill_random(g.dt, g.w[i], (size_t)sh->n * sh->k, 1 + i, s), "fill");
    }
    if (st == RA_OK) st = ra_cuda_alloc(&g.x, (size_t)max_m * sh->k, es, "benchmark activations");
    if (st == RA_OK) st = ra_cuda_check(ra_k_fill_random(g.dt, g.x, (size_t)max_m * sh->k, 7777, s), "fill");
    if (st == RA_OK) st = ra_cuda_alloc(&g.y, (size_t)max_m * sh->n, sizeof(float), "benchmark outputs");
    if (st == RA_OK && is_blas) st = ra_blas_open(s, !strcmp(kernel, "bf16@cublas-bi"), &g.blas);
    size_t ws_floats = 0, n_counters = 0;
    ra_gemm_workspace(g.dt, (int)sh->n, (int)sh->k, &ws_floats, &n_counters);
    if (st == RA_OK) st = ra_cuda_alloc(&g.ws, ws_floats, sizeof(float), "split-K workspace");
    if (st == RA_OK) st = ra_cuda_alloc(&g.counters, n_counters, sizeof(unsigned), "split-K counters");
    if (st == RA_OK && n_counters) st = ra_cuda_check(cudaMemset(g.counters, 0, n_counters * sizeof(unsigned)), "counters");
    for (size_t i = 0; st == RA_OK && i < o->n_ms; i++) {
        g.m = o->ms[i];
        float med = 0, mn = 0;
        st = bench_point(&g, o->runs, &med, &mn);
        if (st != RA_OK) break;
        add_result(o, results, kernel, sh, g.m, ra_gemm_splits(g.dt, (int)sh->n, (int)sh->k) * !is_blas, med, mn, wbytes, copy_gbps);
    }
    ra_blas_close(g.blas);
    free_copies(g.w, g.n_copies);
    cudaFree(g.x);
    cudaFree(g.y);
    cudaFree(g.ws);
    cudaFree(g.counters);
    return st;
}

/* Speed-up of every result over the fastest cuBLAS kernel at the same point. */
static void add_speedups(cJSON *results)
{
    const cJSON *r, *b;
    cJSON_ArrayForEach(r, results)
    {
        double best = 0;
        cJSON_ArrayForEach(b, results)
        {
            const char *k = cJSON_GetObjectItem(b, "kernel")->valuestring;
            if (strcmp(k, "bf16@cublas") && strcmp(k, "bf16@cublas-bi")) continue;
            if (strcmp(cJSON_GetObjectItem(b, "shape")->valuestring, cJSON_GetObjectItem(r, "shape")->valuestring) ||
                cJSON_GetObjectItem(b, "m")->valuedouble != cJSON_GetObjectItem(r, "m")->valuedouble)
                continue;
            double t = cJSON_GetObjectItem(b, "us_median")->valuedouble;
            if (best == 0 || t < best) best = t;
        }
        if (best > 0)
            cJSON_AddNumberToObject((cJSON *)r, "speedup_vs_best_cublas", best / cJSON_GetObjectItem(r, "us_median")->valuedouble);
    }
}

ra_status ra_bench_gemm(const ra_gemm_bench_opts *o, void **json_out)
{
    char why[256];
    if (!ra_cuda_probe(why, sizeof why)) return ra_fail(RA_ERR_UNSUPPORTED, "bench: no CUDA GPU can be used: %s", why);
    if (o->runs < 3) return ra_fail(RA_ERR_USAGE, "bench: at least 3 timed runs per point");
    struct cudaDeviceProp p;
    CU_TRY(cudaGetDeviceProperties(&p, 0), "device properties");
    cudaStream_t s;
    CU_TRY(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "stream");
    cJSON *root = cJSON_CreateObject();
    cJSON *dev = cJSON_AddObjectToObject(root, "device");
    cJSON_AddStringToObject(dev, "gpu", p.name);
    cJSON_AddNumberToObject(dev, "sm_count", p.multiProcessorCount);
    cJSON_AddNumberToObject(dev, "l2_bytes", p.l2CacheSize);

    /* The ceiling: a 1 GiB device-to-device copy, counting bytes read plus written. */
    copy_ctx c = {.s = s, .bytes = (size_t)1 << 30};
    float med = 0, mn = 0;
    ra_status st = ra_cuda_alloc(&c.src, c.bytes, 1, "copy source");
    if (st == RA_OK) st = ra_cuda_alloc(&c.dst, c.bytes, 1, "copy destination");
    if (st == RA_OK) st = ra_cuda_check(ra_k_fill_random(RA_DT_F32, c.src, c.bytes / 4, 3, s), "fill");
    if (st == RA_OK) st = time_launches(s, launch_copy, &c, 20, &med, &mn);
    cudaFree(c.src);
    cudaFree(c.dst);
    const double copy_gbps = st == RA_OK ? 2.0 * (double)c.bytes / (med * 1e-6) / 1e9 : 0;
    cJSON_AddNumberToObject(root, "copy_GBps", copy_gbps);
    if (st == RA_OK && o->progress) fprintf(stderr, "  device copy: %.0f GB/s (1 GiB, read + write, median of 20)\n", copy_gbps);

    cJSON *results = cJSON_AddArrayToObject(root, "gemm");
    for (size_t si = 0; st == RA_OK && si < o->n_shapes; si++)
        for (size_t ki = 0; st == RA_OK && ki < o->n_kernels; ki++)
            st = bench_kernel_shape(o, s, (size_t)p.l2CacheSize, o->kernels[ki], &o->shapes[si], copy_gbps, results);
    cudaStreamDestroy(s);
    if (st != RA_OK) {
        cJSON_Delete(root);
        return st;
    }
    add_speedups(results);
    *json_out = root;
    return RA_OK;
}
