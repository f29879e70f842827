/* Error plumbing shared by the CUDA host code. Private to src/backend/cuda/. */
#ifndef RA_CUDA_UTIL_H
#define RA_CUDA_UTIL_H

#include <cuda_runtime_api.h>

#include "ra/status.h"

/* A failed CUDA runtime call becomes RA_ERR_DEVICE with what was being done. */
static inline ra_status ra_cuda_check(cudaError_t e, const char *what)
{
    if (e == cudaSuccess) return RA_OK;
    return ra_fail(RA_ERR_DEVICE, "CUDA: %s: %s", what, cudaGetErrorString(e));
}
#define CU_TRY(call, what) RA_TRY(ra_cuda_check((call), (what)))

/* The bytes of a device allocation of n elements of size sz, checked. */
ra_status ra_cuda_alloc(void *out_ptr, size_t n, size_t sz, const char *what);

#endif
