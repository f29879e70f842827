/* Log-softmax over the vocabulary and the greedy argmax, in the CPU's
 * arithmetic: the max in float, the sum of exp(x - max) in double, lse =
 * max + log(sum), and x - lse rounded once. A row is cut into slices of
 * LS_SLICE entries (the cut depends on the vocabulary size alone):
 *   pass 1, a block per slice: the slice's max, argmax and sum of
 *     exp(x - slice max), in a fixed tree;
 *   pass 2, a block per slice: the slices combined in slice order
 *     (sum = sum_b s_b * exp(m_b - max)), then the slice written as x - lse.
 * A slice whose values are all -inf adds 0; a NaN anywhere makes the row NaN,
 * as on the CPU. */
#include <math.h>

#include "common.cuh"

#define LS_THREADS 256
#define LS_SLICE 2048

typedef struct {
    float max;
    int idx;      /* argmax of the slice, -1 when every value is NaN */
    double sum;   /* sum of exp(x - max) over the slice */
} ls_part;

/* (value, index) candidates for the argmax: a higher value wins, equal
 * values go to the lower index, NaN never competes, index -1 is "none". */
static __device__ __forceinline__ void better(float &v, int &i, float v2, int i2)
{
    if (i2 >= 0 && (i < 0 || v2 > v || (v2 == v && i2 < i))) {
        v = v2;
        i = i2;
    }
}

static __device__ __forceinline__ void block_argmax(float &v, int &i, float *sv, int *si)
{
    for (int m = 16; m > 0; m >>= 1) better(v, i, __shfl_xor_sync(0xffffffffu, v, m), __shfl_xor_sync(0xffffffffu, i, m));
    if ((threadIdx.x & 31) == 0) {
        sv[threadIdx.x >> 5] = v;
        si[threadIdx.x >> 5] = i;
    }
    __syncthreads();
    v = sv[0];
    i = si[0];
    for (int w = 1; w < LS_THREADS / RA_WARP; w++) better(v, i, sv[w], si[w]);
    __syncthreads();
}

static __global__ void __launch_bounds__(LS_THREADS) softmax_slices(const float *logits, ls_part *parts, int vocab)
{
    __shared__ float sv[LS_THREADS / RA_WARP];
    __shared__ int si[LS_THREADS / RA_WARP];
    __shared__ double scratch[LS_THREADS / RA_WARP];
    pdl_wait();
    pdl_trigger();
    const int b = blockIdx.x, slices = gridDim.x, lo = b * LS_SLICE, hi = min(lo + LS_SLICE, vocab);
    const float *x = logits + (size_t)blockIdx.y * vocab;
    float best = -INFINITY;
    int bi = -1;
    for (int i = lo + threadIdx.x; i < hi; i += LS_THREADS) {
        const float v = x[i];
        if (v == v && (bi < 0 || v > best)) { best = v; bi = i; }
    }
    block_argmax(best, bi, sv, si);
    const float mx = bi < 0 ? -INFINITY : best;
    double sum = 0;
    for (int i = lo + threadIdx.x; i < hi; i += LS_THREADS)
        sum += mx == -INFINITY ? (x[i] == x[i] ? 0.0 : (double)x[i]) : exp((double)x[i] - (double)mx);
    sum = block_sum_d(sum, scratch, LS_THREADS / RA_WARP);
    if (threadIdx.x == 0) parts[(size_t)blockIdx.y * slices + b] = ls_part{mx, bi, sum};
}

static __global__ void __launch_bounds__(LS_THREADS) softmax_write(float *logits, const ls_part *parts, int32_t *argmax, int vocab)
{
    __shared__ double lse_s;
    pdl_wait();
    pdl_trigger();
    const int b = blockIdx.x, slices = gridDim.x, lo = b * LS_SLICE, hi = min(lo + LS_SLICE, vocab);
    const ls_part *p = parts + (size_t)blockIdx.y * slices;
    if (threadIdx.x == 0) { /* at most a few dozen slices: in order, by one thread */
        float mx = -INFINITY;
        int bi = -1;
        for (int s = 0; s < slices; s++) better(mx, bi, p[s].max, p[s].idx);
        if (bi < 0) mx = -INFINITY;
        double sum = 0;
        for (int s = 0; s < slices; s++)
            sum += p[s].max == -INFINITY ? p[s].sum : p[s].sum * exp((double)p[s].max - (double)mx);
        lse_s = (double)mx + log(sum);
        if (b == 0 && argmax) argmax[blockIdx.y] = bi < 0 ? 0 : bi;
    }
    __syncthreads();
    const double lse = lse_s;
    float *x = logits + (size_t)blockIdx.y * vocab;
    for (int i = lo + threadIdx.x; i < hi; i += LS_THREADS) x[i] = (float)((double)x[i] - lse);
}

extern "C" size_t ra_log_softmax_workspace(int n, int vocab)
{
    return (size_t)n * ra_blocks(vocab, LS_SLICE) * sizeof(ls_part);
}

extern "C" cudaError_t ra_k_log_softmax(float *logits, int32_t *argmax, void *ws, int n, int vocab, cudaStream_t stream)
{
    if (n <= 0) return cudaSuccess;
    if (n > 65535 || !ws) return cudaErrorInvalidValue;
    const dim3 grid(ra_blocks(vocab, LS_SLICE), n);
    cudaError_t e = ra_launch(softmax_slices, grid, dim3(LS_THREADS), stream, (const float *)logits, (ls_part *)ws, vocab);
    if (e != cudaSuccess) return e;
    return ra_launch(softmax_write, grid, dim3(LS_THREADS), stream, logits, (const ls_part *)ws, argmax, vocab);
}
