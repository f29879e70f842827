/* Synthetic weights and activations for benchmarks and tests: a hash of the
 * index and a seed, uniform in [-1, 1), never a run of zeros (zeros can run
 * faster than real data and hide unwritten outputs). */
#include "common.cuh"

static __global__ void fill_random(ra_dtype dt, void *p, size_t n, uint32_t seed)
{
    pdl_wait();
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        uint32_t h = (uint32_t)i * 0x9e3779b1u ^ (uint32_t)(i >> 32) * 0x85ebca77u ^ seed * 0xc2b2ae3du;
        h ^= h >> 15;
        h *= 0x2c1b3c6du;
        h ^= h >> 12;
        h *= 0x297a2d39u;
        h ^= h >> 15;
        const float v = (float)(h >> 8) * (2.0f / 16777216.0f) - 1.0f;
        store_act(p, i, v, dt);
    }
}

extern "C" cudaError_t ra_k_fill_random(ra_dtype dtype, void *p, size_t n, uint32_t seed, cudaStream_t stream)
{
    if (n == 0) return cudaSuccess;
    return ra_launch(fill_random, dim3(1024), dim3(256), stream, dtype, p, n, seed);
}
