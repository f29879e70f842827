/* cuBLAS and cuBLASLt as the field runs them: the "cublas" and "cublas-bi"
 * kernels. Private to src/backend/cuda/. */
#ifndef RA_BLAS_H
#define RA_BLAS_H

#include <stdbool.h>
#include <stdint.h>

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include "ra/status.h"

typedef struct ra_blas ra_blas;

/* fixed_algo false: cublasGemmEx with the default heuristics, asked anew for
 * every shape and batch size ("cublas"). fixed_algo true: cuBLASLt with one
 * algorithm per weight shape, chosen once (heuristic at M = 64, split-K off)
 * and kept for every batch size ("cublas-bi"). */
ra_status ra_blas_open(cudaStream_t stream, bool fixed_algo, ra_blas **out);
void ra_blas_close(ra_blas *b);

/* y (m x n float32, row stride n) = or += x (m x k bf16) . w^T (w: n x k bf16). */
ra_status ra_blas_gemm(ra_blas *b, const uint16_t *w, const uint16_t *x, float *y, int m, int n, int k, bool accumulate);

/* Library versions, CUBLAS_WORKSPACE_CONFIG and, for fixed_algo, each shape's
 * algorithm, into a cJSON object (void*). */
void ra_blas_describe(const ra_blas *b, void *json_object);
/* cuBLASLt layouts of y (n x m, row stride ldy, float32) = op_T(w: k x n) .
 * x (k x m), w and x of cudaDataType_t type (blas_fp8.c shares them). */
typedef struct {
    cublasLtMatrixLayout_t a, x, y;
} ra_lt_layouts;
ra_status ra_lt_layouts_make(int type, int m, int n, int k, int ldy, ra_lt_layouts *l);
void ra_lt_layouts_free(ra_lt_layouts *l);

/* A cuBLASLt algorithm's id, tile, stages and split-K into a cJSON object. */
void ra_blas_algo_describe(const void *cublaslt_algo, void *json_object);

#endif
