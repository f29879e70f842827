/* cuBLASLt FP8 GEMM (blas_fp8.h). Row-major y = x . w^T is, in cuBLASLt's
 * column-major terms, y^T (n x m, ld ldy) = op_T(w as k x n, ld k) . (x^T as
 * k x m, ld k): the "TN" layout FP8 needs. A is w, B is x, so A's scales
 * are the weights' and B's the activations'. */
#include "blas_fp8.h"
#include "blas.h"

#include <cjson/cJSON.h>
#include <cublasLt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_util.h"
#include "ra/util.h"

#define FP8_WORKSPACE (32u << 20)
#define FP8_MAX_ALGOS 256

typedef struct {
    int m, n, k;
    bool block;
    cublasLtMatmulAlgo_t algo;
} fp8_algo;

struct ra_blas_fp8 {
    cudaStream_t stream;
    cublasLtHandle_t lt;
    cublasLtMatmulDesc_t desc[2]; /* outer-vector scales, 128-block scales */
    void *workspace;
    fp8_algo algos[FP8_MAX_ALGOS];
    int n_algos;
};

static ra_status lt_check(cublasStatus_t st, const char *what)
{
    if (st == CUBLAS_STATUS_SUCCESS) return RA_OK;
    return ra_fail(st == CUBLAS_STATUS_NOT_SUPPORTED ? RA_ERR_UNSUPPORTED : RA_ERR_DEVICE, "cuBLASLt FP8: %s: %s", what,
                   cublasGetStatusString(st));
}

static ra_status make_desc(cublasLtMatmulDesc_t *out, bool block)
{
    const cublasOperation_t t = CUBLAS_OP_T, nt = CUBLAS_OP_N;
    const int32_t amode = block ? CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F : CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F;
    const int32_t bmode = block ? CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F : CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F;
    RA_TRY(lt_check(cublasLtMatmulDescCreate(out, CUBLAS_COMPUTE_32F, CUDA_R_32F), "matmul desc"));
    RA_TRY(lt_check(cublasLtMatmulDescSetAttribute(*out, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof t), "transa"));
    RA_TRY(lt_check(cublasLtMatmulDescSetAttribute(*out, CUBLASLT_MATMUL_DESC_TRANSB, &nt, sizeof nt), "transb"));
    RA_TRY(lt_check(cublasLtMatmulDescSetAttribute(*out, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &amode, sizeof amode), "A scale mode"));
    return lt_check(cublasLtMatmulDescSetAttribute(*out, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &bmode, sizeof bmode), "B scale mode");
}

ra_status ra_blas_fp8_open(cudaStream_t stream, ra_blas_fp8 **out)
{
    ra_blas_fp8 *b;
    RA_TRY(ra_calloc(&b, 1, sizeof *b));
    b->stream = stream;
    ra_status s = ra_cuda_alloc(&b->workspace, FP8_WORKSPACE, 1, "cuBLASLt FP8 workspace");
    if (s == RA_OK) s = lt_check(cublasLtCreate(&b->lt), "cublasLtCreate");
    if (s == RA_OK) s = make_desc(&b->desc[0], false);
    if (s == RA_OK) s = make_desc(&b->desc[1], true);
    if (s != RA_OK) {
        ra_blas_fp8_close(b);
        return s;
    }
    *out = b;
    return RA_OK;
}

void ra_blas_fp8_close(ra_blas_fp8 *b)
{
    if (!b) return;
    for (int i = 0; i < 2; i++)
        if (b->desc[i]) cublasLtMatmulDescDestroy(b->desc[i]);
    if (b->lt) cublasLtDestroy(b->lt);
    cudaFree(b->workspace);
    free(b);
}

/* The heuristic's first choice for (m, n, k), asked once. */
static ra_status algo_for(ra_blas_fp8 *b, cublasLtMatmulDesc_t desc, const ra_lt_layouts *l, int m, int n, int k, bool block,
                          const cublasLtMatmulAlgo_t **out)
{
    for (int i = 0; i < b->n_algos; i++) {
        const fp8_algo *a = &b->algos[i];
        if (a->m == m && a->n == n && a->k == k && a->block == block) {
            *out = &a->algo;
            return RA_OK;
        }
    }
    if (b->n_algos == FP8_MAX_ALGOS) return ra_fail(RA_ERR_INTERNAL, "cuBLASLt FP8: more than %d shapes", FP8_MAX_ALGOS);
    cublasLtMatmulPreference_t pref = NULL;
    size_t ws = FP8_WORKSPACE;
    cublasLtMatmulHeuristicResult_t res;
    int found = 0;
    ra_status s = lt_check(cublasLtMatmulPreferenceCreate(&pref), "preference");
    if (s == RA_OK)
        s = lt_check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws),
                     "preference workspace");
    if (s == RA_OK)
        s = lt_check(cublasLtMatmulAlgoGetHeuristic(b->lt, desc, l->a, l->x, l->y, l->y, pref, 1, &res, &found),
                     "algorithm heuristic");
    if (s == RA_ERR_UNSUPPORTED) found = 0, s = RA_OK; /* "not supported": no algorithm, said below */
    if (s == RA_OK && found < 1)
        s = ra_fail(RA_ERR_UNSUPPORTED, "cuBLASLt %zu offers no FP8 algorithm for %d x %d at m = %d (%s scales)",
                    cublasLtGetVersion(), n, k, m, block ? "128-block" : "outer-vector");
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    RA_TRY(s);
    fp8_algo *a = &b->algos[b->n_algos++];
    *a = (fp8_algo){.m = m, .n = n, .k = k, .block = block, .algo = res.algo};
    *out = &a->algo;
    return RA_OK;
}

ra_status ra_blas_fp8_gemm(ra_blas_fp8 *b, const uint8_t *w8, const float *wscale, const uint8_t *x8, const float *xscale,
                           float *y, int m, int n, int k, int ldy, bool block, bool accumulate)
{
    if (m <= 0) return RA_OK;
    if (k % 16) return ra_fail(RA_ERR_UNSUPPORTED, "cuBLASLt FP8 needs K a multiple of 16 (%d x %d)", n, k);
    cublasLtMatmulDesc_t desc = b->desc[block];
    RA_TRY(lt_check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &wscale, sizeof wscale),
                    "A scales"));
    RA_TRY(lt_check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &xscale, sizeof xscale),
                    "B scales"));
    ra_lt_layouts l;
    RA_TRY(ra_lt_layouts_make(CUDA_R_8F_E4M3, m, n, k, ldy, &l));
    const cublasLtMatmulAlgo_t *algo = NULL;
    ra_status s = algo_for(b, desc, &l, m, n, k, block, &algo);
    const float one = 1.f, beta = accumulate ? 1.f : 0.f;
    if (s == RA_OK)
        s = lt_check(cublasLtMatmul(b->lt, desc, &one, w8, l.a, x8, l.x, &beta, y, l.y, y, l.y, algo, b->workspace,
                                    FP8_WORKSPACE, b->stream),
                     "cublasLtMatmul");
    ra_lt_layouts_free(&l);
    return s;
}

void ra_blas_fp8_describe(const ra_blas_fp8 *b, void *json_object)
{
    cJSON *o = json_object;
    if (!b) return;
    cJSON_AddStringToObject(o, "fp8_scaling", "cuBLASLt: outer-vector (per token x per channel) or 128 / 128x128 blocks");
    cJSON *arr = cJSON_AddArrayToObject(o, "cublaslt_fp8_algorithms");
    for (int i = 0; i < b->n_algos; i++) {
        const fp8_algo *a = &b->algos[i];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddNumberToObject(j, "m", a->m);
        cJSON_AddNumberToObject(j, "n", a->n);
        cJSON_AddNumberToObject(j, "k", a->k);
        cJSON_AddBoolToObject(j, "block_scales", a->block);
        ra_blas_algo_describe(&a->algo, j);
        cJSON_AddItemToArray(arr, j);
    }
}
