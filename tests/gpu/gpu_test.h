/* What the GPU tests share: a seeded generator (define RA_TEST_SEED before
 * including for another sequence) and CUDA_OK. */
#ifndef RA_GPU_TEST_H
#define RA_GPU_TEST_H

#include <cuda_runtime_api.h>
#include <stdint.h>

#include "check.h"

#ifndef RA_TEST_SEED
#define RA_TEST_SEED 0x2545f4914f6cdd1dull
#endif

static uint64_t rng = RA_TEST_SEED;
static float frand(void) /* uniform in [-1, 1) */
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((int32_t)(rng >> 40) - (1 << 23)) / (float)(1 << 23);
}
static uint32_t urand(uint32_t n)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)((rng >> 33) % n);
}

#define CUDA_OK(call) CHECK_MSG((call) == cudaSuccess, "%s: %s", #call, cudaGetErrorString(cudaGetLastError()))

#endif
