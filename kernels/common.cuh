/* Shared device helpers for the kernels in this folder. */
#ifndef RA_COMMON_CUH
#define RA_COMMON_CUH

#include <stdint.h>

#include <cuda_runtime.h>

#include "kernels.h"

#define RA_WARP 32

/* bfloat16 as raw bits, converted exactly as the CPU does (src/util/util.c):
 * widening is exact, narrowing rounds to nearest even and keeps NaN quiet. */
__device__ __forceinline__ float bf16_to_f32(uint16_t b) { return __uint_as_float((uint32_t)b << 16); }

__device__ __forceinline__ uint16_t f32_to_bf16(float f)
{
    uint32_t u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

/* Stores one activation value in the engine's dtype. */
__device__ __forceinline__ void store_act(void *out, size_t i, float v, ra_dtype dt)
{
    if (dt == RA_DT_BF16) ((uint16_t *)out)[i] = f32_to_bf16(v);
    else ((float *)out)[i] = v;
}

/* Butterfly sums over the 32 lanes: every lane ends with the same bits
 * (each step adds a pair in both lanes, and float addition commutes). */
__device__ __forceinline__ float warp_sum(float v)
{
#pragma unroll
    for (int m = 16; m > 0; m >>= 1) v += __shfl_xor_sync(0xffffffffu, v, m);
    return v;
}

__device__ __forceinline__ double warp_sum_d(double v)
{
#pragma unroll
    for (int m = 16; m > 0; m >>= 1) v += __shfl_xor_sync(0xffffffffu, v, m);
    return v;
}

__device__ __forceinline__ float warp_max(float v)
{
#pragma unroll
    for (int m = 16; m > 0; m >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, m));
    return v;
}

/* Sum of one double per thread over a block of nwarps * 32 threads, in a
 * fixed order (butterfly in each warp, then warps in order); every thread
 * gets the result. scratch holds nwarps doubles. */
__device__ __forceinline__ double block_sum_d(double v, double *scratch, int nwarps)
{
    v = warp_sum_d(v);
    if ((threadIdx.x & 31) == 0) scratch[threadIdx.x >> 5] = v;
    __syncthreads();
    double s = scratch[0];
    for (int w = 1; w < nwarps; w++) s += scratch[w];
    __syncthreads();
    return s;
}

/* D += A . B on tensor cores: bf16 inputs, float32 accumulators.
 * A is 16 x 16 (a0..a3), B is 16 x 8 (b0, b1), D is 16 x 8 (d[0..3]), in the
 * fragment layout of PTX's mma.m16n8k16.row.col. */
__device__ __forceinline__ void mma_bf16_16816(float d[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                               uint32_t b0, uint32_t b1)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
                 "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
#else
    (void)d; (void)a0; (void)a1; (void)a2; (void)a3; (void)b0; (void)b1;
    __trap(); /* the build targets sm_80 and up only */
#endif
}

static inline unsigned ra_blocks(long long n, int per_block) { return (unsigned)((n + per_block - 1) / per_block); }

/* Programmatic dependent launch (Hopper): a kernel may start while the one
 * before it finishes, and must call pdl_wait() before it touches memory that
 * earlier kernels write or read. Every kernel calls it, so when it returns
 * every earlier kernel has finished. pdl_trigger() lets the next kernel start
 * its own prologue. On older GPUs both are no-ops and launches are plain. */
__device__ __forceinline__ void pdl_wait()
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void pdl_trigger()
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

/* Whether the current device can overlap launches (compute capability 9+). */
static inline bool ra_pdl_supported()
{
    int dev = 0, major = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess)
        return false;
    return major >= 9;
}

/* Launches kernel on stream, overlapping it with the previous kernel where
 * the GPU allows (see pdl_wait). */
template <typename... KArgs, typename... Args>
static cudaError_t ra_launch(void (*kernel)(KArgs...), dim3 grid, dim3 block, cudaStream_t stream, Args... args)
{
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.stream = stream;
    cfg.attrs = attr;
    cfg.numAttrs = ra_pdl_supported() ? 1 : 0;
    cudaError_t e = cudaLaunchKernelEx(&cfg, kernel, static_cast<KArgs>(args)...);
    return e != cudaSuccess ? e : cudaGetLastError();
}

/* 16-byte asynchronous copy global -> shared; src_bytes < 16 zero-fills the rest. */
__device__ __forceinline__ void cp_async16(void *smem, const void *gmem, int src_bytes)
{
    const unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(src_bytes) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N> __device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory"); }

#endif
