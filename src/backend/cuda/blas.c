/* The field's matrix products through cuBLAS / cuBLASLt (see blas.h).
 * Row-major y = x . w^T is, in cuBLAS's column-major terms,
 * y^T (n x m, ld n) = op_T(w as k x n, ld k) . (x^T as k x m, ld k). */
#include "blas.h"

#include <cjson/cJSON.h>
#include <cublasLt.h>
#include <cublas_v2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_util.h"
#include "ra/util.h"

#define BLAS_WORKSPACE (32u << 20)
#define BLAS_MAX_SHAPES 32
#define BLAS_HEURISTIC_M 64

typedef struct {
    int n, k;
    cublasLtMatmulAlgo_t algo;
} shape_algo;

struct ra_blas {
    cudaStream_t stream;
    bool fixed_algo;
    cublasHandle_t handle;
    cublasLtHandle_t lt;
    cublasLtMatmulDesc_t desc;
    void *workspace;
    shape_algo shapes[BLAS_MAX_SHAPES];
    int n_shapes;
};

static ra_status blas_check(cublasStatus_t st, const char *what)
{
    if (st == CUBLAS_STATUS_SUCCESS) return RA_OK;
    return ra_fail(RA_ERR_DEVICE, "cuBLAS: %s: %s", what, cublasGetStatusString(st));
}
#define BLAS_TRY(call, what) RA_TRY(blas_check((call), (what)))

ra_status ra_blas_open(cudaStream_t stream, bool fixed_algo, ra_blas **out)
{
    ra_blas *b;
    RA_TRY(ra_calloc(&b, 1, sizeof *b));
    b->stream = stream;
    b->fixed_algo = fixed_algo;
    ra_status s = ra_cuda_alloc(&b->workspace, BLAS_WORKSPACE, 1, "cuBLAS workspace");
    if (s == RA_OK && !fixed_algo) {
        s = blas_check(cublasCreate(&b->handle), "cublasCreate");
        if (s == RA_OK) s = blas_check(cublasSetStream(b->handle, stream), "cublasSetStream");
        /* A workspace of our own, so graph capture needs no allocation. */
        if (s == RA_OK) s = blas_check(cublasSetWorkspace(b->handle, b->workspace, BLAS_WORKSPACE), "cublasSetWorkspace");
    }
    if (s == RA_OK && fixed_algo) {
        s = blas_check(cublasLtCreate(&b->lt), "cublasLtCreate");
        if (s == RA_OK) s = blas_check(cublasLtMatmulDescCreate(&b->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), "matmul desc");
        cublasOperation_t t = CUBLAS_OP_T, nt = CUBLAS_OP_N;
        if (s == RA_OK)
            s = blas_check(cublasLtMatmulDescSetAttribute(b->desc, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof t), "transa");
        if (s == RA_OK)
            s = blas_check(cublasLtMatmulDescSetAttribute(b->desc, CUBLASLT_MATMUL_DESC_TRANSB, &nt, sizeof nt), "transb");
    }
    if (s != RA_OK) {
        ra_blas_close(b);
        return s;
    }
    *out = b;
    return RA_OK;
}

void ra_blas_close(ra_blas *b)
{
    if (!b) return;
    if (b->handle) cublasDestroy(b->handle);
    if (b->desc) cublasLtMatmulDescDestroy(b->desc);
    if (b->lt) cublasLtDestroy(b->lt);
    cudaFree(b->workspace);
    free(b);
}

void ra_lt_layouts_free(ra_lt_layouts *l)
{
    if (l->a) cublasLtMatrixLayoutDestroy(l->a);
    if (l->x) cublasLtMatrixLayoutDestroy(l->x);
    if (l->y) cublasLtMatrixLayoutDestroy(l->y);
}

ra_status ra_lt_layouts_make(int type, int m, int n, int k, int ldy, ra_lt_layouts *l)
{
    memset(l, 0, sizeof *l);
    const cudaDataType_t t = (cudaDataType_t)type;
    ra_status s = blas_check(cublasLtMatrixLayoutCreate(&l->a, t, k, n, k), "layout w");
    if (s == RA_OK) s = blas_check(cublasLtMatrixLayoutCreate(&l->x, t, k, m, k), "layout x");
    if (s == RA_OK) s = blas_check(cublasLtMatrixLayoutCreate(&l->y, CUDA_R_32F, n, m, ldy), "layout y");
    if (s != RA_OK) ra_lt_layouts_free(l);
    return s;
}

static ra_status layouts_make(int m, int n, int k, ra_lt_layouts *l) { return ra_lt_layouts_make(CUDA_R_16BF, m, n, k, n, l); }

/* The one algorithm of a weight shape: the heuristic's first choice at
 * M = BLAS_HEURISTIC_M, with split-K forced off, checked to run at M = 1. */
static ra_status shape_algo_for(ra_blas *b, int n, int k, const cublasLtMatmulAlgo_t **out)
{
    for (int i = 0; i < b->n_shapes; i++)
        if (b->shapes[i].n == n && b->shapes[i].k == k) {
            *out = &b->shapes[i].algo;
            return RA_OK;
        }
    if (b->n_shapes == BLAS_MAX_SHAPES) return ra_fail(RA_ERR_INTERNAL, "cuBLASLt: more than %d weight shapes", BLAS_MAX_SHAPES);
    cublasLtMatmulPreference_t pref = NULL;
    ra_lt_layouts l;
    RA_TRY(layouts_make(BLAS_HEURISTIC_M, n, k, &l));
    size_t ws = BLAS_WORKSPACE;
    cublasLtMatmulHeuristicResult_t res;
    int found = 0;
    ra_status s = blas_check(cublasLtMatmulPreferenceCreate(&pref), "preference");
    if (s == RA_OK)
        s = blas_check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws),
                       "preference workspace");
    if (s == RA_OK)
        s = blas_check(cublasLtMatmulAlgoGetHeuristic(b->lt, b->desc, l.a, l.x, l.y, l.y, pref, 1, &res, &found),
                       "algorithm heuristic");
    if (s == RA_OK && found < 1) s = ra_fail(RA_ERR_DEVICE, "cuBLASLt has no algorithm for %d x %d", n, k);
    shape_algo *sa = &b->shapes[b->n_shapes];
    if (s == RA_OK) {
        uint32_t one = 1;
        cublasLtReductionScheme_t none = CUBLASLT_REDUCTION_SCHEME_NONE;
        sa->algo = res.algo;
        sa->n = n;
        sa->k = k;
        s = blas_check(cublasLtMatmulAlgoConfigSetAttribute(&sa->algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &one, sizeof one),
                       "split-K off");
        if (s == RA_OK)
            s = blas_check(
                cublasLtMatmulAlgoConfigSetAttribute(&sa->algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &none, sizeof none),
                "reduction scheme");
    }
    ra_lt_layouts_free(&l);
    for (int m = 1; s == RA_OK && m <= BLAS_HEURISTIC_M; m += BLAS_HEURISTIC_M - 1) {
        cublasLtMatmulHeuristicResult_t chk;
        if ((s = layouts_make(m, n, k, &l)) != RA_OK) break;
        s = blas_check(cublasLtMatmulAlgoCheck(b->lt, b->desc, l.a, l.x, l.y, l.y, &sa->algo, &chk), "algorithm check");
        if (s == RA_OK && chk.workspaceSize > BLAS_WORKSPACE)
            s = ra_fail(RA_ERR_DEVICE, "cuBLASLt algorithm for %d x %d wants %zu bytes of workspace", n, k, chk.workspaceSize);
        ra_lt_layouts_free(&l);
    }
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (s != RA_OK) return s;
    b->n_shapes++;
    *out = &sa->algo;
    return RA_OK;
}

ra_status ra_blas_gemm(ra_blas *b, const uint16_t *w, const uint16_t *x, float *y, int m, int n, int k, bool accumulate)
{
    const float one = 1.f, beta = accumulate ? 1.f : 0.f;
    if (m <= 0) return RA_OK;
    if (!b->fixed_algo)
        return blas_check(cublasGemmEx(b->handle, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &one, w, CUDA_R_16BF, k, x, CUDA_R_16BF, k,
                                       &beta, y, CUDA_R_32F, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                          "cublasGemmEx");
    const cublasLtMatmulAlgo_t *algo = NULL;
    RA_TRY(shape_algo_for(b, n, k, &algo));
    ra_lt_layouts l;
    RA_TRY(layouts_make(m, n, k, &l));
    ra_status s = blas_check(cublasLtMatmul(b->lt, b->desc, &one, w, l.a, x, l.x, &beta, y, l.y, y, l.y, algo, b->workspace,
                                            BLAS_WORKSPACE, b->stream),
                             "cublasLtMatmul");
    ra_lt_layouts_free(&l);
    return s;
}

void ra_blas_describe(const ra_blas *b, void *json_object)
{
    cJSON *o = json_object;
    char v[32];
    int major = 0, minor = 0, patch = 0;
    cublasGetProperty(MAJOR_VERSION, &major);
    cublasGetProperty(MINOR_VERSION, &minor);
    cublasGetProperty(PATCH_LEVEL, &patch);
    snprintf(v, sizeof v, "%d.%d.%d", major, minor, patch);
    cJSON_AddStringToObject(o, "cublas", v);
    snprintf(v, sizeof v, "%zu", cublasLtGetVersion());
    cJSON_AddStringToObject(o, "cublaslt", v);
    const char *wc = getenv("CUBLAS_WORKSPACE_CONFIG");
    if (wc) cJSON_AddStringToObject(o, "cublas_workspace_config", wc);
    else cJSON_AddNullToObject(o, "cublas_workspace_config");
    if (!b || !b->fixed_algo) return;
    cJSON *arr = cJSON_AddArrayToObject(o, "cublaslt_algorithms");
    for (int i = 0; i < b->n_shapes; i++) {
        const shape_algo *sa = &b->shapes[i];
        cJSON *a = cJSON_CreateObject();
        cJSON_AddNumberToObject(a, "n", sa->n);
        cJSON_AddNumberToObject(a, "k", sa->k);
        ra_blas_algo_describe(&sa->algo, a);
        cJSON_AddItemToArray(arr, a);
    }
}

void ra_blas_algo_describe(const void *algo, void *json_object)
{
    const cublasLtMatmulAlgo_t *al = algo;
    int id = 0, tile = 0, stages = 0, splitk = 0;
    size_t got;
    cublasLtMatmulAlgoConfigGetAttribute(al, CUBLASLT_ALGO_CONFIG_ID, &id, sizeof id, &got);
    cublasLtMatmulAlgoConfigGetAttribute(al, CUBLASLT_ALGO_CONFIG_TILE_ID, &tile, sizeof tile, &got);
    cublasLtMatmulAlgoConfigGetAttribute(al, CUBLASLT_ALGO_CONFIG_STAGES_ID, &stages, sizeof stages, &got);
    cublasLtMatmulAlgoConfigGetAttribute(al, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &splitk, sizeof splitk, &got);
    cJSON_AddNumberToObject(json_object, "algo_id", id);
    cJSON_AddNumberToObject(json_object, "tile_id", tile);
    cJSON_AddNumberToObject(json_object, "stages_id", stages);
    cJSON_AddNumberToObject(json_object, "split_k", splitk);
}
