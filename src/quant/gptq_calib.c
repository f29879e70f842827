/* Calibrated GPTQ (include/ra/gptq_calib.h). Source: AutoGPTQ
 * auto_gptq/quantization/gptq.py (add_batch, fasterquant). AutoGPTQ works in
 * float32 with lazy block updates; this reference updates every later column
 * at once, in double, which is the same algorithm with fewer roundings. Every
 * sum has a fixed order (dot4), and every value is computed by one task. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3") /* vectorizes the lanes of dot4 and the row updates; float semantics stay strict */
#endif
#include "ra/gptq_calib.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ra/util.h"

/* sum a[k] * b[k] over k < n in four lanes by k % 4, then (l0 + l1) + (l2 + l3):
 * a fixed order that keeps four multiply-adds in flight. */
static double dot4(const double *a, const double *b, uint32_t n)
{
    double l0 = 0, l1 = 0, l2 = 0, l3 = 0; /* scalars, so they stay in registers */
    uint32_t k = 0;
    for (; k + 4 <= n; k += 4) {
        l0 += a[k] * b[k];
        l1 += a[k + 1] * b[k + 1];
        l2 += a[k + 2] * b[k + 2];
        l3 += a[k + 3] * b[k + 3];
    }
    if (k < n) l0 += a[k] * b[k];
    if (k + 1 < n) l1 += a[k + 1] * b[k + 1];
    if (k + 2 < n) l2 += a[k + 2] * b[k + 2];
    return (l0 + l1) + (l2 + l3);
}

typedef struct {
    double *h;
    const double *xt; /* activations transposed: [cols][n], so both factors of a dot are contiguous */
    uint32_t n, cols;
} hessian_job;

/* Row i of the upper triangle; the lower one mirrors it. */
static void hessian_task(void *ctx, uint32_t i)
{
    const hessian_job *j = ctx;
    const double *xi = j->xt + (size_t)i * j->n;
    for (uint32_t k = i; k < j->cols; k++) {
        j->h[(size_t)i * j->cols + k] += dot4(xi, j->xt + (size_t)k * j->n, j->n);
        if (k != i) j->h[(size_t)k * j->cols + i] = j->h[(size_t)i * j->cols + k];
    }
}

ra_status ra_gptq_hessian_add(ra_pool *p, double *hessian, const float *x, uint32_t n, uint32_t cols)
{
    double *xt = NULL;
    RA_TRY(ra_calloc(&xt, (size_t)n * cols, sizeof *xt));
    for (uint32_t t = 0; t < n; t++)
        for (uint32_t i = 0; i < cols; i++) xt[(size_t)i * n + t] = x[(size_t)t * cols + i];
    hessian_job j = {hessian, xt, n, cols};
    ra_pool_for(p, cols, hessian_task, &j);
    free(xt);
    return RA_OK;
}

/* Columns of the factorization, or weight rows of the updates, handled
 * together: a row streamed from memory then serves all of them. */
#define BLOCK 16

typedef struct {
    double *h;
    uint32_t K, j0, j1; /* the column block [j0, j1) */
    double *xd;         /* the inverse's diagonal */
} factor_job;

/* Reverse Cholesky (h = V V^T, V upper, columns from the last back, BLOCK at a
 * time): for i <= jj in the block [j0, j1), h[i][jj] minus the tail
 * k >= j1 (four lanes) minus the block's k in (jj, j1) (in order). V[i][jj]
 * is that over V[jj][jj], and V[jj][jj] its square root. */
static double reverse_entry(const double *h, uint32_t K, uint32_t i, uint32_t jj, uint32_t j1)
{
    const double *vi = h + (size_t)i * K, *vj = h + (size_t)jj * K;
    double s = vi[jj] - dot4(vi + j1, vj + j1, K - j1);
    for (uint32_t k = jj + 1; k < j1; k++) s -= vi[k] * vj[k];
    return s;
}

/* The block's columns for rows i < j0, one chunk of BLOCK rows. */
static void cholesky_task(void *ctx, uint32_t task)
{
    const factor_job *j = ctx;
    const uint32_t K = j->K, i1 = (task + 1) * BLOCK < j->j0 ? (task + 1) * BLOCK : j->j0;
    for (uint32_t i = task * BLOCK; i < i1; i++)
        for (uint32_t jj = j->j1; jj-- > j->j0;)
            j->h[(size_t)i * K + jj] = reverse_entry(j->h, K, i, jj, j->j1) / j->h[(size_t)jj * K + jj];
}

/* X = V^-1 (upper) for the columns c of one block: X[c][c] = 1 / V[c][c] into
 * xd, and for i from the bottom up X[i][c] = -(V[i][c] X[c][c] + sum over
 * k in (i, c) of V[i][k] X[k][c]) / V[i][i], stored transposed in the free
 * lower triangle (h[c][i]) so every sum runs along two rows. */
static void inverse_task(void *ctx, uint32_t task)
{
    const factor_job *j = ctx;
    const uint32_t K = j->K, c0 = task * BLOCK, c1 = c0 + BLOCK < K ? c0 + BLOCK : K;
    for (uint32_t c = c0; c < c1; c++) j->xd[c] = 1 / j->h[(size_t)c * K + c];
    for (uint32_t i = c1 - 1; i-- > 0;) {
        const double *vi = j->h + (size_t)i * K;
        for (uint32_t c = i + 1 > c0 ? i + 1 : c0; c < c1; c++) {
            double *xc = j->h + (size_t)c * K;
            xc[i] = -(vi[c] * j->xd[c] + dot4(vi + i + 1, xc + i + 1, c - i - 1)) / vi[i];
        }
    }
}

/* In place on h (symmetric, K x K): V, then U = V^-1, so that h ends as U
 * with U^T U = h^-1 in its upper triangle and diagonal. */
static ra_status inverse_factor(ra_pool *p, double *h, uint32_t K)
{
    factor_job j = {.h = h, .K = K};
    for (j.j1 = K; j.j1 > 0; j.j1 = j.j0) {
        j.j0 = j.j1 > BLOCK ? j.j1 - BLOCK : 0;
        for (uint32_t jj = j.j1; jj-- > j.j0;) { /* the block's own rows first, in order */
            double d = reverse_entry(h, K, jj, jj, j.j1);
            if (!(d > 0))
                return ra_fail(RA_ERR_USAGE, "gptq: the damped Hessian is not positive definite (column %u); raise the damping", jj);
            h[(size_t)jj * K + jj] = sqrt(d);
            for (uint32_t i = jj; i-- > j.j0;) h[(size_t)i * K + jj] = reverse_entry(h, K, i, jj, j.j1) / h[(size_t)jj * K + jj];
        }
        ra_pool_for(p, (j.j0 + BLOCK - 1) / BLOCK, cholesky_task, &j);
    }
    RA_TRY(ra_calloc(&j.xd, K, sizeof *j.xd));
    ra_pool_for(p, (K + BLOCK - 1) / BLOCK, inverse_task, &j);
    for (uint32_t i = 0; i < K; i++) { /* move X into the upper triangle */
        h[(size_t)i * K + i] = j.xd[i];
        for (uint32_t c = i + 1; c < K; c++) h[(size_t)i * K + c] = h[(size_t)c * K + i];
    }
    free(j.xd);
    return RA_OK;
}

typedef struct {
    const float *w;
    const double *u;    /* U, upper triangle, in permuted order */
    const int32_t *perm;
    const uint8_t *dead;
    ra_intq_params p;
    uint32_t cols;
    ra_intq *out;
    atomic_int failed;
    char msg[256];
} calib_job;

/* Rows r0..r0+m-1: GPTQ's column loop with immediate updates, the rows side
 * by side so each row of U is read once for all of them; a row's arithmetic
 * does not depend on its neighbours. w: m x K doubles, vals: the group. */
static ra_status calib_rows(calib_job *j, uint32_t r0, uint32_t m, double *w, float *vals, uint8_t *codes)
{
    const uint32_t K = j->cols, G = j->out->group_size, NG = j->out->n_groups;
    ra_intq *q = j->out;
    float s[BLOCK];
    uint16_t z[BLOCK];
    double e[BLOCK];
    for (uint32_t r = 0; r < m; r++)
        for (uint32_t i = 0; i < K; i++) {
            uint32_t src = j->perm ? (uint32_t)j->perm[i] : i;
            w[(size_t)r * K + i] = j->dead[src] ? 0.0 : j->w[(size_t)(r0 + r) * K + src];
        }
    for (uint32_t i = 0; i < K; i++) {
        const double *urow = j->u + (size_t)i * K;
        for (uint32_t r = 0; r < m; r++) {
            double *wr = w + (size_t)r * K;
            if (i % G == 0) { /* the group's parameters from the current weights */
                uint32_t n = K - i < G ? K - i : G;
                for (uint32_t t = 0; t < n; t++) vals[t] = (float)wr[i + t];
                RA_TRY(ra_gptq_group_rule(vals, n, &j->p, codes, &s[r], &z[r]));
                q->scales[(size_t)(r0 + r) * NG + i / G] = s[r];
                q->zeros[(size_t)(r0 + r) * NG + i / G] = z[r];
            }
            const uint8_t u = ra_gptq_code((float)wr[i], s[r], z[r], j->p.bits);
            q->codes[(size_t)(r0 + r) * K + (j->perm ? (uint32_t)j->perm[i] : i)] = u;
            e[r] = (wr[i] - (double)((float)((int32_t)u - (int32_t)z[r]) * s[r])) / urow[i];
        }
        for (uint32_t r = 0; r < m; r++) {
            double *wr = w + (size_t)r * K;
            for (uint32_t k = i + 1; k < K; k++) wr[k] -= e[r] * urow[k];
        }
    }
    return RA_OK;
}

static void calib_task(void *ctx, uint32_t task)
{
    calib_job *j = ctx;
    const uint32_t r0 = task * BLOCK, m = j->out->rows - r0 < BLOCK ? j->out->rows - r0 : BLOCK;
    double *w = NULL;
    float *vals = NULL;
    uint8_t *codes = NULL;
    ra_status s = ra_calloc(&w, (size_t)m * j->cols, sizeof *w);
    if (s == RA_OK) s = ra_calloc(&vals, j->out->group_size, sizeof *vals);
    if (s == RA_OK) s = ra_calloc(&codes, j->out->group_size, 1);
    if (s == RA_OK) s = calib_rows(j, r0, m, w, vals, codes);
    int expected = 0;
    if (s != RA_OK && atomic_compare_exchange_strong(&j->failed, &expected, 1)) snprintf(j->msg, sizeof j->msg, "%s", ra_errmsg());
    free(w);
    free(vals);
    free(codes);
}

/* Columns by descending diagonal, ties in column order (a stable sort). */
static int32_t *descending_diagonal(const double *h, uint32_t K)
{
    int32_t *perm = malloc((size_t)K * sizeof *perm);
    if (!perm) return NULL;
    for (uint32_t i = 0; i < K; i++) { /* insertion into the sorted prefix, from the right */
        uint32_t at = i;
        while (at > 0 && h[(size_t)perm[at - 1] * K + perm[at - 1]] < h[(size_t)i * K + i]) {
            perm[at] = perm[at - 1];
            at--;
        }
        perm[at] = (int32_t)i;
    }
    return perm;
}

/* h gathered by perm in place: h'[a][b] = h[perm[a]][perm[b]]. */
static ra_status permute_symmetric(double *h, const int32_t *perm, uint32_t K)
{
    double *row = NULL;
    RA_TRY(ra_calloc(&row, K, sizeof *row));
    for (uint32_t a = 0; a < K; a++) { /* columns first, row by row */
        for (uint32_t b = 0; b < K; b++) row[b] = h[(size_t)a * K + perm[b]];
        memcpy(h + (size_t)a * K, row, (size_t)K * sizeof *row);
    }
    for (uint32_t b = 0; b < K; b++) { /* then rows, column by column */
        for (uint32_t a = 0; a < K; a++) row[a] = h[(size_t)perm[a] * K + b];
        for (uint32_t a = 0; a < K; a++) h[(size_t)a * K + b] = row[a];
    }
    free(row);
    return RA_OK;
}

ra_status ra_gptq_quantize_calibrated(ra_pool *p, const float *w, uint32_t rows, uint32_t cols, double *hessian,
                                      const ra_gptq_calib_config *c, ra_intq *out)
{
    memset(out, 0, sizeof *out);
    if (c->q.bits != 4 && c->q.bits != 8) return ra_fail(RA_ERR_UNSUPPORTED, "gptq: %u-bit weights", c->q.bits);
    if (!rows || !cols) return ra_fail(RA_ERR_USAGE, "gptq: empty layer");
    RA_TRY(ra_check_finite("gptq", w, (size_t)rows * cols));
    const uint32_t K = cols, G = c->q.group_size <= 0 || (uint32_t)c->q.group_size > K ? K : (uint32_t)c->q.group_size;
    uint8_t *dead = NULL;
    int32_t *perm = NULL;
    RA_TRY(ra_calloc(&dead, K, 1));
    double mean = 0;
    for (uint32_t i = 0; i < K; i++) {
        double *d = &hessian[(size_t)i * K + i];
        if (!isfinite(*d)) {
            free(dead);
            return ra_fail(RA_ERR_USAGE, "gptq: Hessian diagonal %u is %g", i, *d);
        }
        if (*d == 0) {
            *d = 1;
            dead[i] = 1;
        }
    }
    ra_status s = RA_OK;
    if (c->act_order) {
        perm = descending_diagonal(hessian, K);
        s = perm ? permute_symmetric(hessian, perm, K) : ra_fail(RA_ERR_NOMEM, "gptq: out of memory");
    }
    for (uint32_t i = 0; i < K; i++) mean += hessian[(size_t)i * K + i];
    const double damp = c->damp_percent * (mean / K);
    for (uint32_t i = 0; i < K; i++) hessian[(size_t)i * K + i] += damp;
    if (s == RA_OK) s = inverse_factor(p, hessian, K);
    if (s == RA_OK) s = ra_intq_alloc(out, rows, K, c->q.bits, G, (K + G - 1) / G, perm != NULL);
    if (s == RA_OK) {
        out->scale_dtype = RA_SCALE_F16;
        for (uint32_t i = 0; perm && i < K; i++) out->g_idx[perm[i]] = (int32_t)(i / G);
        calib_job j = {.w = w, .u = hessian, .perm = perm, .dead = dead, .cols = K, .out = out,
                       .p = {.bits = c->q.bits, .group_size = G, .symmetric = c->q.sym, .scale_dtype = RA_SCALE_F16}};
        atomic_init(&j.failed, 0);
        ra_pool_for(p, (rows + BLOCK - 1) / BLOCK, calib_task, &j);
        if (atomic_load(&j.failed)) {
            s = ra_fail(RA_ERR_UNSUPPORTED, "gptq: %s", j.msg);
            ra_intq_free(out);
        }
    }
    free(dead);
    free(perm);
    return s;
}
