/* cuBLASLt's FP8 GEMM as the field runs it: the "cublaslt" kernel of the FP8
 * W8A8 formats. Private to src/backend/cuda/. */
#ifndef RA_BLAS_FP8_H
#define RA_BLAS_FP8_H

#include <stdbool.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

#include "ra/status.h"

typedef struct ra_blas_fp8 ra_blas_fp8;

ra_status ra_blas_fp8_open(cudaStream_t stream, ra_blas_fp8 **out);
void ra_blas_fp8_close(ra_blas_fp8 *b);

/* y (m x n float32, row stride ldy) = or += x8 . w8^T, E4M3 x E4M3 with
 * float32 accumulation, scaled by cuBLASLt itself: block false, per token
 * (xscale [m]) times per channel (wscale [n]), its outer-vector scaling;
 * block true, per 128 columns of x (xscale [k/128][m]: group-major, as
 * cuBLASLt reads it; ra_k_fp8_scales_by_group) times 128 x 128 blocks of w
 * (wscale [n/128][k/128]). The algorithm is the heuristic's first
 * choice for the shape and m, asked once and kept. k % 16 == 0. */
ra_status ra_blas_fp8_gemm(ra_blas_fp8 *b, const uint8_t *w8, const float *wscale, const uint8_t *x8, const float *xscale,
                           float *y, int m, int n, int k, int ldy, bool block, bool accumulate);

/* cuBLASLt's version, the scaling modes and each (shape, m)'s algorithm, into a cJSON object (void*). */
void ra_blas_fp8_describe(const ra_blas_fp8 *b, void *json_object);

#endif
