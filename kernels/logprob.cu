/* Log-softmax over the vocabulary and the greedy argmax, one block per row,
 * in the CPU's arithmetic: the max in float, the sum of exp(x - max) in
 * double (here a fixed tree of per-thread sums), lse = max + log(sum), and
 * x - lse rounded once. */
#include <math.h>

#include "common.cuh"

#define LS_THREADS 1024

/* (value, index) candidates for the argmax: a higher value wins, equal
 * values go to the lower index, NaN never competes, index -1 is "none". */
static __device__ __forceinline__ void better(float &v, int &i, float v2, int i2)
{
    if (i2 >= 0 && (i < 0 || v2 > v || (v2 == v && i2 < i))) {
        v = v2;
        i = i2;
    }
}

static __global__ void __launch_bounds__(LS_THREADS) log_softmax(float *logits, int32_t *argmax, int vocab)
{
    __shared__ float sv[LS_THREADS / RA_WARP];
    __shared__ int si[LS_THREADS / RA_WARP];
    __shared__ double scratch[LS_THREADS / RA_WARP];
    float *x = logits + (size_t)blockIdx.x * vocab;
    float best = -INFINITY;
    int bi = -1;
    for (int i = threadIdx.x; i < vocab; i += LS_THREADS) {
        const float v = x[i];
        if (v == v && (bi < 0 || v > best)) { best = v; bi = i; }
    }
    for (int m = 16; m > 0; m >>= 1) better(best, bi, __shfl_xor_sync(0xffffffffu, best, m), __shfl_xor_sync(0xffffffffu, bi, m));
    if ((threadIdx.x & 31) == 0) {
        sv[threadIdx.x >> 5] = best;
        si[threadIdx.x >> 5] = bi;
    }
    __syncthreads();
    best = sv[0];
    bi = si[0];
    for (int w = 1; w < LS_THREADS / RA_WARP; w++) better(best, bi, sv[w], si[w]);
    if (threadIdx.x == 0 && argmax) argmax[blockIdx.x] = bi < 0 ? 0 : bi;

    const float mx = bi < 0 ? -INFINITY : best;
    double sum = 0;
    for (int i = threadIdx.x; i < vocab; i += LS_THREADS) sum += exp((double)x[i] - (double)mx);
    sum = block_sum_d(sum, scratch, LS_THREADS / RA_WARP);
    const double lse = (double)mx + log(sum);
    for (int i = threadIdx.x; i < vocab; i += LS_THREADS) x[i] = (float)((double)x[i] - lse);
}

extern "C" cudaError_t ra_k_log_softmax(float *logits, int32_t *argmax, int n, int vocab, cudaStream_t stream)
{
    if (n <= 0) return cudaSuccess;
    log_softmax<<<n, LS_THREADS, 0, stream>>>(logits, argmax, vocab);
    return cudaGetLastError();
}
