/* The CUDA kernels against their CPU references, on random inputs of awkward
 * shapes (not multiples of any tile), then their determinism contract: bitwise
 * the same run to run, and a row's result bitwise the same alone and inside
 * batches of 2..64 at every position with other neighbours. The cuBLAS
 * kernels are held to the reference within tolerance, and what they do under
 * batching is measured and printed, not asserted. Needs a CUDA GPU. */
#include <cuda_runtime_api.h>
#include <stdlib.h>

#include "blas.h"
#include "gpu_test.h"
#include "kernels.h"
#include "ra/cpu.h"
#include "ra/util.h"


static void *dev_alloc(size_t bytes)
{
    void *p = NULL;
    CUDA_OK(cudaMalloc(&p, bytes ? bytes : 1));
    CUDA_OK(cudaMemset(p, 0xff, bytes ? bytes : 1)); /* poison: unwritten outputs read as NaN */
    return p;
}
static void *dev_copy(const void *host, size_t bytes)
{
    void *p = dev_alloc(bytes);
    CUDA_OK(cudaMemcpy(p, host, bytes, cudaMemcpyHostToDevice));
    return p;
}
static void host_copy(void *host, const void *dev, size_t bytes)
{
    CUDA_OK(cudaDeviceSynchronize());
    CUDA_OK(cudaMemcpy(host, dev, bytes, cudaMemcpyDeviceToHost));
}

/* Random values in the dtype, returned as exact floats too. */
static void *rand_values(ra_dtype dt, size_t n, float *exact)
{
    size_t es = dt == RA_DT_BF16 ? 2 : 4;
    uint8_t *buf = malloc(n * es);
    for (size_t i = 0; i < n; i++) {
        float v = frand();
        if (dt == RA_DT_BF16) {
            uint16_t h = ra_f32_to_bf16(v);
            memcpy(buf + 2 * i, &h, 2);
            v = ra_bf16_to_f32(h);
        } else {
            memcpy(buf + 4 * i, &v, 4);
        }
        exact[i] = v;
    }
    return buf;
}

static float act_value(ra_dtype dt, const void *act, size_t i)
{
    if (dt == RA_DT_BF16) return ra_bf16_to_f32(((const uint16_t *)act)[i]);
    return ((const float *)act)[i];
}

/* ---- matrix products ------------------------------------------------------ */

typedef struct {
    ra_dtype dt;
    int m, n, k;
    float *w, *x;        /* exact values */
    void *dw, *dx;       /* device copies in dt */
    float *ws;           /* split-K workspace and counters (ra_gemm_workspace) */
    unsigned *counters;
} gemm_case;

static void alloc_workspace(ra_dtype dt, int n, int k, float **ws, unsigned **counters)
{
    size_t wf, nc;
    ra_gemm_workspace(dt, n, k, &wf, &nc);
    *ws = dev_alloc(wf * 4);
    *counters = dev_alloc(nc * 4);
    CUDA_OK(cudaMemset(*counters, 0, nc ? nc * 4 : 1));
}

static void gemm_case_make(gemm_case *c, ra_dtype dt, int m, int n, int k)
{
    c->dt = dt;
    c->m = m;
    c->n = n;
    c->k = k;
    c->w = malloc((size_t)n * k * 4);
    c->x = malloc((size_t)m * k * 4);
    size_t es = dt == RA_DT_BF16 ? 2 : 4;
    void *hw = rand_values(dt, (size_t)n * k, c->w), *hx = rand_values(dt, (size_t)m * k, c->x);
    c->dw = dev_copy(hw, (size_t)n * k * es);
    c->dx = dev_copy(hx, (size_t)m * k * es);
    alloc_workspace(dt, n, k, &c->ws, &c->counters);
    free(hw);
    free(hx);
}

static void gemm_case_free(gemm_case *c)
{
    free(c->w);
    free(c->x);
    cudaFree(c->dw);
    cudaFree(c->dx);
    cudaFree(c->ws);
    cudaFree(c->counters);
}

/* The exact dot (double) and the sum of |products|, which scales the tolerance. */
static double ref_dot(const gemm_case *c, int t, int r, double *mag)
{
    double s = 0, a = 0;
    for (int i = 0; i < c->k; i++) {
        double p = (double)c->w[(size_t)r * c->k + i] * c->x[(size_t)t * c->k + i];
        s += p;
        a += fabs(p);
    }
    *mag = a;
    return s;
}

static double worst_rel[2]; /* largest |error| / sum |products| seen, per dtype */

static void check_gemm(ra_dtype dt, int m, int n, int k, ra_epilogue epi)
{
    gemm_case c;
    gemm_case_make(&c, dt, m, n, k);
    const size_t es = dt == RA_DT_BF16 ? 2 : 4;
    float *y0 = malloc((size_t)m * n * 4), *y = malloc((size_t)m * n * 4);
    for (size_t i = 0; i < (size_t)m * n; i++) y0[i] = frand();
    float *dy = dev_copy(y0, (size_t)m * n * 4);
    void *dact = dev_alloc((size_t)m * (n / 2 + 1) * es);
    ra_gemm_args a = {.dtype = dt, .w = c.dw, .x = c.dx, .y = dy, .act = dact, .m = m, .n = n, .k = k, .epilogue = epi,
                      .ws = c.ws, .counters = c.counters};
    CUDA_OK(ra_k_gemm(&a, 0));
    int bad = 0;
    double worst = 0;
    if (epi == RA_EPI_SWIGLU) {
        void *act = malloc((size_t)m * (n / 2) * es);
        host_copy(act, dact, (size_t)m * (n / 2) * es);
        for (int t = 0; t < m; t++)
            for (int j = 0; j < n / 2; j++) {
                int rg = (j / 8) * 16 + j % 8;
                double mg, mu, g = ref_dot(&c, t, rg, &mg), u = ref_dot(&c, t, rg + 8, &mu);
                double want = g / (1 + exp(-g)) * u, got = act_value(dt, act, (size_t)t * (n / 2) + j);
                double tol = 1e-5 * (mg * (fabs(u) + 1) + mu * (fabs(g) + 1)) + (dt == RA_DT_BF16 ? fabs(want) / 128 : 1e-6) + 1e-6;
                if (!(fabs(got - want) <= tol) && bad++ < 5) fprintf(stderr, "  swiglu t%d j%d: %g vs %g\n", t, j, got, want);
                if (fabs(got - want) > worst) worst = fabs(got - want);
            }
        free(act);
    } else {
        host_copy(y, dy, (size_t)m * n * 4);
        for (int t = 0; t < m; t++)
            for (int r = 0; r < n; r++) {
                double mag, want = ref_dot(&c, t, r, &mag);
                if (epi == RA_EPI_ADD) want += y0[(size_t)t * n + r];
                double got = y[(size_t)t * n + r], tol = 1e-5 * mag + 1e-6;
                if (mag > 0 && fabs(got - want) / mag > worst_rel[dt]) worst_rel[dt] = fabs(got - want) / mag;
                if (!(fabs(got - want) <= tol) && bad++ < 5) fprintf(stderr, "  t%d r%d: %g vs %g\n", t, r, got, want);
                if (fabs(got - want) > worst) worst = fabs(got - want);
            }
    }
    CHECK_MSG(bad == 0, "gemm %s m%d n%d k%d epilogue %d: %d outputs off the reference (worst %g)",
              dt == RA_DT_BF16 ? "bf16" : "f32", m, n, k, (int)epi, bad, worst);
    free(y0);
    free(y);
    cudaFree(dy);
    cudaFree(dact);
    gemm_case_free(&c);
}

/* Computes rows idx[0..b) of the case's x as one batch; returns the outputs (b x n). */
typedef void (*gemm_fn)(const gemm_case *c, const void *dx, int b, float *dy, void *ctx);

static void run_ra(const gemm_case *c, const void *dx, int b, float *dy, void *ctx)
{
    (void)ctx;
    ra_gemm_args a = {.dtype = c->dt, .w = c->dw, .x = dx, .y = dy, .m = b, .n = c->n, .k = c->k,
                      .epilogue = RA_EPI_STORE, .ws = c->ws, .counters = c->counters};
    CUDA_OK(ra_k_gemm(&a, 0));
}

static void run_blas(const gemm_case *c, const void *dx, int b, float *dy, void *ctx)
{
    CHECK_OK(ra_blas_gemm(ctx, c->dw, dx, dy, b, c->n, c->k, false));
}

/* Rows of x gathered into a batch on the device. */
static void gather(const gemm_case *c, const int *idx, int b, void *dbatch)
{
    const size_t es = c->dt == RA_DT_BF16 ? 2 : 4, row = (size_t)c->k * es;
    for (int i = 0; i < b; i++)
        CUDA_OK(cudaMemcpy((uint8_t *)dbatch + i * row, (const uint8_t *)c->dx + (size_t)idx[i] * row, row,
                           cudaMemcpyDeviceToDevice));
}

/* Each of the case's m rows alone, then in batches of 2..m made of random
 * permutations, and target row 0 at every position of a batch of m; plus a
 * batch of 3m (several token blocks). Returns the number of rows whose bits
 * differ from the row computed alone, out of *total. */
static int batch_variance(const gemm_case *c, gemm_fn fn, void *ctx, int *total)
{
    const int m = c->m, n = c->n, big = 3 * m;
    const size_t es = c->dt == RA_DT_BF16 ? 2 : 4;
    float *alone = malloc((size_t)m * n * 4), *out = malloc((size_t)big * n * 4);
    float *dy = dev_alloc((size_t)big * n * 4);
    void *dbatch = dev_alloc((size_t)big * c->k * es);
    int *idx = malloc(big * sizeof *idx), differ = 0;
    *total = 0;
    for (int r = 0; r < m; r++) {
        gather(c, &r, 1, dbatch);
        fn(c, dbatch, 1, dy, ctx);
        host_copy(alone + (size_t)r * n, dy, (size_t)n * 4);
    }
    for (int b = 2; b <= big; b++) {
        if (b > m && b != big) continue;
        for (int i = 0; i < b; i++) idx[i] = i % m;
        for (int i = b - 1; i > 0; i--) { /* shuffle */
            int j = (int)urand((uint32_t)i + 1), t = idx[i];
            idx[i] = idx[j];
            idx[j] = t;
        }
        gather(c, idx, b, dbatch);
        fn(c, dbatch, b, dy, ctx);
        host_copy(out, dy, (size_t)b * n * 4);
        for (int i = 0; i < b; i++, (*total)++)
            differ += memcmp(out + (size_t)i * n, alone + (size_t)idx[i] * n, (size_t)n * 4) != 0;
    }
    for (int p = 0; p < m; p++) { /* row 0 at every position of a batch of m */
        for (int i = 0; i < m; i++) idx[i] = i == p ? 0 : 1 + (i + p) % (m - 1);
        gather(c, idx, m, dbatch);
        fn(c, dbatch, m, dy, ctx);
        host_copy(out, dy, (size_t)m * n * 4);
        (*total)++;
        differ += memcmp(out + (size_t)p * n, alone, (size_t)n * 4) != 0;
    }
    free(alone);
    free(out);
    free(idx);
    cudaFree(dy);
    cudaFree(dbatch);
    return differ;
}

static int run_to_run(const gemm_case *c, gemm_fn fn, void *ctx, int repeats)
{
    float *first = malloc((size_t)c->m * c->n * 4), *again = malloc((size_t)c->m * c->n * 4);
    float *dy = dev_alloc((size_t)c->m * c->n * 4);
    int differ = 0;
    fn(c, c->dx, c->m, dy, ctx);
    host_copy(first, dy, (size_t)c->m * c->n * 4);
    for (int i = 1; i < repeats; i++) {
        CUDA_OK(cudaMemset(dy, 0xff, (size_t)c->m * c->n * 4));
        fn(c, c->dx, c->m, dy, ctx);
        host_copy(again, dy, (size_t)c->m * c->n * 4);
        differ += memcmp(first, again, (size_t)c->m * c->n * 4) != 0;
    }
    free(first);
    free(again);
    cudaFree(dy);
    return differ;
}

static void gemm_tests(void)
{
    static const int shapes[][3] = {{1, 37, 100}, {5, 100, 77}, {13, 33, 1000}, {64, 48, 576}, {70, 16, 31},
                                    {3, 200, 1536}, {130, 24, 8}, {2, 1, 3}, {9, 96, 4097}};
    for (int d = 0; d < 2; d++)
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
            check_gemm((ra_dtype)d, shapes[i][0], shapes[i][1], shapes[i][2], RA_EPI_STORE);
            check_gemm((ra_dtype)d, shapes[i][0], shapes[i][1], shapes[i][2], RA_EPI_ADD);
            if (shapes[i][1] % 16 == 0) check_gemm((ra_dtype)d, shapes[i][0], shapes[i][1], shapes[i][2], RA_EPI_SWIGLU);
        }
    printf("  largest |error| / sum|w x| against the double reference: f32@ra %.3g, bf16@ra %.3g (tolerance 1e-5)\n",
           worst_rel[0], worst_rel[1]);
    static const int inv[][2] = {{48, 1000}, {100, 576}, {33, 4097}};
    for (int d = 0; d < 2; d++)
        for (size_t i = 0; i < sizeof inv / sizeof inv[0]; i++) {
            gemm_case c;
            gemm_case_make(&c, (ra_dtype)d, 64, inv[i][0], inv[i][1]);
            int total, differ = batch_variance(&c, run_ra, NULL, &total);
            CHECK_MSG(differ == 0, "%s@ra n%d k%d: %d of %d batched rows differ from the row alone", d ? "bf16" : "f32",
                      c.n, c.k, differ, total);
            int rr = run_to_run(&c, run_ra, NULL, 20);
            CHECK_MSG(rr == 0, "%s@ra n%d k%d: %d of 19 repeats differ", d ? "bf16" : "f32", c.n, c.k, rr);
            printf("  %s@ra n=%d k=%d: %d batched rows (batches of 2..64 and 192, every position) all bit-identical "
                   "to the row alone: %s; 20 repeats identical: %s\n",
                   d ? "bf16" : "f32", c.n, c.k, total, differ ? "NO" : "yes", rr ? "NO" : "yes");
            gemm_case_free(&c);
        }
}

/* cuBLAS: within tolerance of the reference; batch behaviour measured. */
static void blas_tests(void)
{
    for (int fixed = 0; fixed < 2; fixed++) {
        ra_blas *b = NULL;
        CHECK_OK(ra_blas_open(0, fixed, &b));
        if (!b) continue;
        const char *name = fixed ? "bf16@cublas-bi" : "bf16@cublas";
        static const int shapes[][3] = {{1, 64, 576}, {7, 96, 1000}, {64, 4096, 4096}};
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
            gemm_case c;
            gemm_case_make(&c, RA_DT_BF16, shapes[i][0], shapes[i][1], shapes[i][2]);
            float *y = malloc((size_t)c.m * c.n * 4), *dy = dev_alloc((size_t)c.m * c.n * 4);
            CHECK_OK(ra_blas_gemm(b, c.dw, c.dx, dy, c.m, c.n, c.k, false));
            host_copy(y, dy, (size_t)c.m * c.n * 4);
            int bad = 0;
            for (int t = 0; t < c.m; t++)
                for (int r = 0; r < c.n; r++) {
                    double mag, want = ref_dot(&c, t, r, &mag);
                    bad += !(fabs(y[(size_t)t * c.n + r] - want) <= 1e-5 * mag + 1e-6);
                }
            CHECK_MSG(bad == 0, "%s m%d n%d k%d: %d outputs off the reference", name, c.m, c.n, c.k, bad);
            free(y);
            cudaFree(dy);
            gemm_case_free(&c);
        }
        static const int inv[][2] = {{4096, 4096}, {576, 576}, {1536, 576}};
        for (size_t i = 0; i < sizeof inv / sizeof inv[0]; i++) {
            gemm_case c;
            gemm_case_make(&c, RA_DT_BF16, 64, inv[i][0], inv[i][1]);
            int total, differ = batch_variance(&c, run_blas, b, &total), rr = run_to_run(&c, run_blas, b, 20);
            printf("  %s n=%d k=%d (measured, not asserted): %d of %d batched rows differ from the row alone; "
                   "%d of 19 repeats differ\n", name, c.n, c.k, differ, total, rr);
            gemm_case_free(&c);
        }
        ra_blas_close(b);
    }
}

/* ---- the other kernels --------------------------------------------------- */

static void norm_tests(void)
{
    static const int dims[] = {576, 1000, 33, 4096};
    for (int d = 0; d < 2; d++)
        for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++) {
            const int n = 7, dim = dims[di];
            const ra_dtype dt = (ra_dtype)d;
            float *x = malloc((size_t)n * dim * 4), *g = malloc((size_t)dim * 4), *want = malloc((size_t)dim * 4);
            for (int i = 0; i < n * dim; i++) x[i] = 3 * frand();
            for (int i = 0; i < dim; i++) g[i] = frand();
            int32_t rows[3] = {5, 0, 5};
            float *dx = dev_copy(x, (size_t)n * dim * 4), *dg = dev_copy(g, (size_t)dim * 4);
            int32_t *drows = dev_copy(rows, sizeof rows);
            size_t es = d ? 2 : 4;
            void *dout = dev_alloc((size_t)n * dim * es), *out = malloc((size_t)n * dim * es);
            CUDA_OK(ra_k_rmsnorm(dt, dx, NULL, dg, dout, n, dim, 1e-5f, 0));
            host_copy(out, dout, (size_t)n * dim * es);
            int off = 0;
            for (int r = 0; r < n; r++) {
                ra_cpu_rmsnorm(x + (size_t)r * dim, g, (uint32_t)dim, 1e-5f, want);
                for (int i = 0; i < dim; i++) {
                    float w = d ? ra_bf16_to_f32(ra_f32_to_bf16(want[i])) : want[i];
                    off += act_value(dt, out, (size_t)r * dim + i) != w;
                }
            }
            CHECK_MSG(off == 0, "rmsnorm %s dim %d: %d values differ from the CPU's", d ? "bf16" : "f32", dim, off);
            CUDA_OK(ra_k_rmsnorm(dt, dx, drows, dg, dout, 3, dim, 1e-5f, 0));
            void *out2 = malloc((size_t)3 * dim * es);
            host_copy(out2, dout, (size_t)3 * dim * es);
            CHECK(memcmp(out2, (uint8_t *)out + (size_t)5 * dim * es, (size_t)dim * es) == 0);
            CHECK(memcmp((uint8_t *)out2 + (size_t)dim * es, out, (size_t)dim * es) == 0);
            free(x); free(g); free(want); free(out); free(out2);
            cudaFree(dx); cudaFree(dg); cudaFree(drows); cudaFree(dout);
        }
}

/* KV pool of three sequences; rows at given (sequence, position). */
typedef struct {
    int n_heads, n_kv, hd, n_layers, pool;
    float *k, *v;        /* host copy of the whole pool [layer][pool][kv_dim] */
    float *dk, *dv;
} kv_case;

static void rope_attention_tests(void)
{
    static const int cfg[][3] = {{9, 3, 64}, {4, 4, 30}, {8, 2, 128}, {2, 1, 256}};
    for (size_t ci = 0; ci < sizeof cfg / sizeof cfg[0]; ci++) {
        kv_case kc = {cfg[ci][0], cfg[ci][1], cfg[ci][2], 2, 300, NULL, NULL, NULL, NULL};
        const int q_dim = kc.n_heads * kc.hd, kv_dim = kc.n_kv * kc.hd, half = kc.hd / 2, layer = 1;
        const size_t pool_elems = (size_t)kc.n_layers * kc.pool * kv_dim;
        kc.k = malloc(pool_elems * 4);
        kc.v = malloc(pool_elems * 4);
        for (size_t i = 0; i < pool_elems; i++) { kc.k[i] = frand(); kc.v[i] = frand(); }
        kc.dk = dev_copy(kc.k, pool_elems * 4);
        kc.dv = dev_copy(kc.v, pool_elems * 4);
        const int max_pos = 200;
        float *cs = malloc((size_t)max_pos * half * 4), *sn = malloc((size_t)max_pos * half * 4);
        for (int p = 0; p < max_pos; p++)
            for (int i = 0; i < half; i++) {
                double a = p * pow(10000.0, -2.0 * i / kc.hd);
                cs[p * half + i] = (float)cos(a);
                sn[p * half + i] = (float)sin(a);
            }
        float *dcs = dev_copy(cs, (size_t)max_pos * half * 4), *dsn = dev_copy(sn, (size_t)max_pos * half * 4);
        /* rows: sequence starts 0, 100, 250 (capacity 100, 150, 50) */
        enum { N = 6 };
        int32_t start[N] = {0, 100, 100, 250, 0, 100}, pos[N] = {0, 37, 149, 12, 99, 38};
        int32_t *dstart = dev_copy(start, sizeof start), *dpos = dev_copy(pos, sizeof pos);
        float *qkv = malloc((size_t)N * (q_dim + 2 * kv_dim) * 4);
        for (int i = 0; i < N * (q_dim + 2 * kv_dim); i++) qkv[i] = frand();
        float *dqkv = dev_copy(qkv, (size_t)N * (q_dim + 2 * kv_dim) * 4), *dq = dev_alloc((size_t)N * q_dim * 4);
        ra_kv_layout lay = {kc.dk, kc.dv, kc.pool, kc.n_layers, dstart, dpos};
        ra_rope_args rope = {dq, lay, layer, kc.n_heads, kc.n_kv, kc.hd, dcs, dsn};
        CUDA_OK(ra_k_rope_store(dqkv, &rope, N, 0));
        float *q = malloc((size_t)N * q_dim * 4), *k = malloc(pool_elems * 4), *v = malloc(pool_elems * 4);
        host_copy(q, dq, (size_t)N * q_dim * 4);
        host_copy(k, kc.dk, pool_elems * 4);
        host_copy(v, kc.dv, pool_elems * 4);
        int off = 0;
        for (int r = 0; r < N; r++) { /* the CPU's rope, applied to host copies: must match bit for bit */
            const float *row = qkv + (size_t)r * (q_dim + 2 * kv_dim), *c = cs + pos[r] * half, *s = sn + pos[r] * half;
            const size_t at = ((size_t)layer * kc.pool + start[r] + pos[r]) * kv_dim;
            for (int h = 0; h < kc.n_heads + kc.n_kv; h++)
                for (int i = 0; i < half; i++) {
                    const float *src = h < kc.n_heads ? row + h * kc.hd : row + q_dim + (h - kc.n_heads) * kc.hd;
                    float a = src[i], b = src[i + half];
                    float x0 = a * c[i] - b * s[i], x1 = b * c[i] + a * s[i];
                    float *dst = h < kc.n_heads ? q + (size_t)r * q_dim + h * kc.hd : k + at + (h - kc.n_heads) * kc.hd;
                    if (h >= kc.n_heads) { kc.k[at + (h - kc.n_heads) * kc.hd + i] = x0; kc.k[at + (h - kc.n_heads) * kc.hd + i + half] = x1; }
                    off += dst[i] != x0 || dst[i + half] != x1;
                }
            for (int d = 0; d < kv_dim; d++) {
                kc.v[at + d] = row[q_dim + kv_dim + d];
                off += v[at + d] != kc.v[at + d];
            }
        }
        CHECK_MSG(off == 0, "rope_store heads %d/%d hd %d: %d values differ from the CPU formula", kc.n_heads, kc.n_kv,
                  kc.hd, off);
        CHECK(memcmp(k, kc.k, pool_elems * 4) == 0); /* nothing else in the pool was touched */

        /* attention: against a double reference, then alone vs batched, bitwise */
        for (int d = 0; d < 2; d++) {
            const ra_dtype dt = (ra_dtype)d;
            const size_t es = d ? 2 : 4;
            void *dout = dev_alloc((size_t)N * q_dim * es), *out = malloc((size_t)N * q_dim * es);
            CUDA_OK(ra_k_attention(dt, dq, &lay, layer, dout, N, kc.n_heads, kc.n_kv, kc.hd, 0));
            host_copy(out, dout, (size_t)N * q_dim * es);
            int bad = 0;
            for (int r = 0; r < N; r++)
                for (int h = 0; h < kc.n_heads; h++) {
                    const int kvh = h / (kc.n_heads / kc.n_kv), len = pos[r] + 1;
                    const float *qr = q + (size_t)r * q_dim + h * kc.hd;
                    double *sc = malloc((size_t)len * sizeof *sc), mx = -INFINITY, sum = 0;
                    for (int p = 0; p < len; p++) {
                        const float *kr = kc.k + ((size_t)layer * kc.pool + start[r] + p) * kv_dim + kvh * kc.hd;
                        double s = 0;
                        for (int i = 0; i < kc.hd; i++) s += (double)qr[i] * kr[i];
                        sc[p] = s / sqrt((double)kc.hd);
                        if (sc[p] > mx) mx = sc[p];
                    }
                    for (int p = 0; p < len; p++) sum += sc[p] = exp(sc[p] - mx);
                    for (int i = 0; i < kc.hd; i++) {
                        double o = 0;
                        for (int p = 0; p < len; p++)
                            o += sc[p] / sum * kc.v[((size_t)layer * kc.pool + start[r] + p) * kv_dim + kvh * kc.hd + i];
                        double got = act_value(dt, out, (size_t)r * q_dim + h * kc.hd + i);
                        bad += !(fabs(got - o) <= (d ? fabs(o) / 128 + 1e-5 : 2e-5));
                    }
                    free(sc);
                }
            CHECK_MSG(bad == 0, "attention %s heads %d/%d hd %d: %d outputs off the reference", d ? "bf16" : "f32",
                      kc.n_heads, kc.n_kv, kc.hd, bad);
            /* each row alone gives the bits it had in the batch */
            int moved = 0;
            for (int r = 0; r < N; r++) {
                ra_kv_layout one = {kc.dk, kc.dv, kc.pool, kc.n_layers, dstart + r, dpos + r};
                void *d1 = dev_alloc((size_t)q_dim * es), *h1 = malloc((size_t)q_dim * es);
                CUDA_OK(ra_k_attention(dt, dq + (size_t)r * q_dim, &one, layer, d1, 1, kc.n_heads, kc.n_kv, kc.hd, 0));
                host_copy(h1, d1, (size_t)q_dim * es);
                moved += memcmp(h1, (uint8_t *)out + (size_t)r * q_dim * es, (size_t)q_dim * es) != 0;
                free(h1);
                cudaFree(d1);
            }
            CHECK_MSG(moved == 0, "attention: %d rows differ alone and batched", moved);
            free(out);
            cudaFree(dout);
        }
        free(kc.k); free(kc.v); free(k); free(v); free(q); free(qkv); free(cs); free(sn);
        cudaFree(kc.dk); cudaFree(kc.dv); cudaFree(dcs); cudaFree(dsn); cudaFree(dstart); cudaFree(dpos);
        cudaFree(dqkv); cudaFree(dq);
    }
}

/* The ROPE epilogue of the bf16 product writes the bits that a STORE product
 * followed by ra_k_rope_store writes: queries, keys and values. */
static void rope_epilogue_tests(void)
{
    static const int cfg[][4] = {{9, 3, 64, 576}, {8, 2, 128, 520}, {4, 4, 32, 97}};
    for (size_t ci = 0; ci < sizeof cfg / sizeof cfg[0]; ci++) {
        const int nh = cfg[ci][0], nkv = cfg[ci][1], hd = cfg[ci][2], K = cfg[ci][3], M = 21, pool = 64, half = hd / 2;
        const int q_dim = nh * hd, kv_dim = nkv * hd, N = q_dim + 2 * kv_dim;
        CHECK(ra_gemm_fuses_rope(RA_DT_BF16, hd));
        gemm_case c;
        gemm_case_make(&c, RA_DT_BF16, M, N, K);
        float *cs = malloc((size_t)pool * half * 4), *sn = malloc((size_t)pool * half * 4);
        for (int i = 0; i < pool * half; i++) { cs[i] = frand(); sn[i] = frand(); }
        int32_t start[21], pos[21];
        for (int i = 0; i < M; i++) { start[i] = (i % 3) * 20; pos[i] = i / 3 + (i % 3); }
        float *dcs = dev_copy(cs, (size_t)pool * half * 4), *dsn = dev_copy(sn, (size_t)pool * half * 4);
        int32_t *dstart = dev_copy(start, sizeof start), *dpos = dev_copy(pos, sizeof pos);
        const size_t cache = (size_t)2 * pool * kv_dim * 4, qb = (size_t)M * q_dim * 4;
        float *k1 = dev_alloc(cache), *v1 = dev_alloc(cache), *q1 = dev_alloc(qb), *k2 = dev_alloc(cache), *v2 = dev_alloc(cache),
              *q2 = dev_alloc(qb), *qkv = dev_alloc((size_t)M * N * 4);
        ra_rope_args r1 = {q1, {k1, v1, pool, 2, dstart, dpos}, 1, nh, nkv, hd, dcs, dsn}, r2 = r1;
        r2.q_out = q2;
        r2.kv.k = k2;
        r2.kv.v = v2;
        ra_gemm_args a = {.dtype = RA_DT_BF16, .w = c.dw, .x = c.dx, .y = qkv, .m = M, .n = N, .k = K,
                          .epilogue = RA_EPI_STORE, .ws = c.ws, .counters = c.counters};
        CUDA_OK(ra_k_gemm(&a, 0));
        CUDA_OK(ra_k_rope_store(qkv, &r1, M, 0));
        a.epilogue = RA_EPI_ROPE;
        a.y = NULL;
        a.rope = r2;
        CUDA_OK(ra_k_gemm(&a, 0));
        float *h1 = malloc(cache), *h2 = malloc(cache);
        host_copy(h1, q1, qb);
        host_copy(h2, q2, qb);
        CHECK_MSG(memcmp(h1, h2, qb) == 0, "ROPE epilogue heads %d/%d hd %d: queries differ from rope_store's", nh, nkv, hd);
        host_copy(h1, k1, cache);
        host_copy(h2, k2, cache);
        CHECK_MSG(memcmp(h1, h2, cache) == 0, "ROPE epilogue: keys differ from rope_store's");
        host_copy(h1, v1, cache);
        host_copy(h2, v2, cache);
        CHECK_MSG(memcmp(h1, h2, cache) == 0, "ROPE epilogue: values differ from rope_store's");
        free(h1); free(h2); free(cs); free(sn);
        cudaFree(k1); cudaFree(v1); cudaFree(q1); cudaFree(k2); cudaFree(v2); cudaFree(q2); cudaFree(qkv);
        cudaFree(dcs); cudaFree(dsn); cudaFree(dstart); cudaFree(dpos);
        gemm_case_free(&c);
    }
    CHECK(!ra_gemm_fuses_rope(RA_DT_BF16, 256) && !ra_gemm_fuses_rope(RA_DT_F32, 64));
}

static void logprob_tests(void)
{
    static const int vocabs[] = {49152, 1000, 31, 128256};
    for (size_t vi = 0; vi < sizeof vocabs / sizeof vocabs[0]; vi++) {
        const int V = vocabs[vi], n = 4;
        float *x = malloc((size_t)n * V * 4), *got = malloc((size_t)n * V * 4);
        for (int i = 0; i < n * V; i++) x[i] = 20 * frand();
        x[1 * V + 3] = x[1 * V + V - 2] = 50; /* a tie: the lower id wins */
        x[2 * V + 0] = NAN;                   /* NaN is never chosen */
        for (int i = 0; i < V && i < 2500; i++) x[3 * V + i] = -INFINITY; /* a whole slice at -inf adds nothing */
        x[2 * V + V / 2] = 60;
        float *dx = dev_copy(x, (size_t)n * V * 4);
        int32_t *darg = dev_alloc(n * 4), arg[4];
        void *ws = dev_alloc(ra_log_softmax_workspace(n, V));
        CUDA_OK(ra_k_log_softmax(dx, darg, ws, n, V, 0));
        host_copy(got, dx, (size_t)n * V * 4);
        host_copy(arg, darg, sizeof arg);
        CHECK(arg[1] == 3);
        CHECK(arg[2] == V / 2);
        for (int r = 0; r < n; r++) {
            if (r != 2) CHECK_MSG(arg[r] == ra_argmax(x + (size_t)r * V, (uint32_t)V), "argmax row %d: %d", r, arg[r]);
            if (r == 2) continue; /* NaN row: every log-prob is NaN on both sides */
            ra_cpu_log_softmax(x + (size_t)r * V, (uint32_t)V);
            int off = 0;
            for (int i = 0; i < V; i++) off += fabsf(got[(size_t)r * V + i] - x[(size_t)r * V + i]) > 1e-6f;
            CHECK_MSG(off == 0, "log-softmax vocab %d row %d: %d values differ from the CPU's by > 1e-6", V, r, off);
        }
        free(x); free(got);
        cudaFree(dx); cudaFree(darg); cudaFree(ws);
    }
}

static void embed_tests(void)
{
    for (int d = 0; d < 2; d++) {
        const int V = 1000, dim = 77;
        float *exact = malloc((size_t)V * dim * 4), *x = malloc((size_t)3 * dim * 4);
        void *tab = rand_values((ra_dtype)d, (size_t)V * dim, exact);
        void *dtab = dev_copy(tab, (size_t)V * dim * (d ? 2 : 4));
        int32_t tok[3] = {999, 0, 517};
        int32_t *dtok = dev_copy(tok, sizeof tok);
        float *dxo = dev_alloc((size_t)3 * dim * 4);
        CUDA_OK(ra_k_embed((ra_dtype)d, dtab, dtok, dxo, 3, dim, 0));
        host_copy(x, dxo, (size_t)3 * dim * 4);
        for (int i = 0; i < 3; i++) CHECK(memcmp(x + (size_t)i * dim, exact + (size_t)tok[i] * dim, (size_t)dim * 4) == 0);
        free(exact); free(x); free(tab);
        cudaFree(dtab); cudaFree(dtok); cudaFree(dxo);
    }
}

int main(void)
{
    char why[256];
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
        snprintf(why, sizeof why, "%s", cudaGetErrorString(cudaGetLastError()));
        fprintf(stderr, "test_kernels: no CUDA GPU (%s)\n", why);
        return 2;
    }
    gemm_tests();
    norm_tests();
    rope_attention_tests();
    rope_epilogue_tests();
    logprob_tests();
    embed_tests();
    blas_tests();
    CHECK_DONE();
}
