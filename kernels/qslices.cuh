/* How the quantized products (quant.cu, marlin.cu, fp8_mma.cu) cut K into slices and add
 * the slices' sums. Internal to kernels/. */
#ifndef RA_QSLICES_CUH
#define RA_QSLICES_CUH

#include "common.cuh"

/* The workspace (ra_qgemm_workspace): a counter a block column (qgemm_gptq,
 * _awq, _rows; they start at zero, as ra_cuda_alloc leaves them, and the last
 * block of a column puts its counter back), then the slice sums (S x M x N). */
__host__ __device__ inline size_t ws_counters(int n) { return ((size_t)n / 8 + 4) / 4 * 4; }

/* ---- results: one slice, atomics, or slice sums added by the last block ---- */

/* Stores v, the sum of token t (row t of y) at feature n over slice s. */
__device__ __forceinline__ void put_result(const ra_qgemm_args &a, int s, int t, int n, float v)
{
    const size_t at = (size_t)t * a.ldy + n;
    if (a.atomic) atomicAdd(&a.y[at], v);
    else if (gridDim.y == 1) a.y[at] = a.epilogue == RA_EPI_ADD ? a.y[at] + v : v;
    else a.ws[ws_counters(a.w.n) + ((size_t)s * a.m + t) * a.w.n + n] = v;
}

/* With S > 1 slices (and no atomics), after every block has put its sums:
 * the last block of column blockIdx.x to finish adds the S slice sums of its
 * features [n0, n1) in slice order, for every token. Who is last varies; the
 * order of the additions does not. Called by every thread of the block. */
__device__ inline void finish_slices(const ra_qgemm_args &a, int n0, int n1)
{
    __shared__ int last;
    if (a.atomic || gridDim.y == 1) return;
    unsigned *counter = (unsigned *)a.ws + blockIdx.x;
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) last = atomicAdd(counter, 1u) == gridDim.y - 1;
    __syncthreads();
    if (!last) return;
    __threadfence();
    const int N = a.w.n, nf = min(n1, N) - n0;
    const float *part = a.ws + ws_counters(N);
    for (int i = threadIdx.x; i < nf * a.m; i += blockDim.x) {
        const int t = i / nf, n = n0 + i % nf;
        float v = __ldcg(part + (size_t)t * N + n);
        for (int s = 1; s < (int)gridDim.y; s++) v += __ldcg(part + ((size_t)s * a.m + t) * N + n);
        float *y = a.y + (size_t)t * a.ldy + n;
        *y = a.epilogue == RA_EPI_ADD ? *y + v : v;
    }
    if (threadIdx.x == 0) *counter = 0;
}

/* The tensor-core kernels' block result (marlin.cu, fp8_mma.cu): each of the
 * WARPS warps holds the m16 x n64 C fragments acc[8][4] of its part of the
 * slice (n8 tile j: rows gid, gid + 8, columns 8j + 2q, + 1); they meet in
 * red and are added in warp order, then put (put_result). */
template <int WARPS>
__device__ inline void put_warp_sums(const ra_qgemm_args &a, float (*red)[16][65], const float acc[8][4], int m0, int n0,
                                     int s)
{
    const int lane = threadIdx.x % RA_WARP, warp = threadIdx.x / RA_WARP, gid = lane / 4, q = lane % 4;
#pragma unroll
    for (int j = 0; j < 8; j++) {
        red[warp][gid][8 * j + 2 * q] = acc[j][0];
        red[warp][gid][8 * j + 2 * q + 1] = acc[j][1];
        red[warp][gid + 8][8 * j + 2 * q] = acc[j][2];
        red[warp][gid + 8][8 * j + 2 * q + 1] = acc[j][3];
    }
    __syncthreads();
    for (int e = threadIdx.x; e < 16 * 64; e += WARPS * RA_WARP) {
        const int r = e / 64, c = e % 64;
        if (m0 + r >= a.m || n0 + c >= a.w.n) continue;
        float v = red[0][r][c];
        for (int u = 1; u < WARPS; u++) v += red[u][r][c];
        put_result(a, s, m0 + r, n0 + c, v);
    }
    __syncthreads();
}

/* Marlin's tile layout on the tensor cores (marlin.cu): y = x . W^T with K
 * in slices of len columns (a multiple of 64). */
cudaError_t marlin_launch(const ra_qgemm_args &a, int len, cudaStream_t stream);
/* FP8 W8A8 on the tensor cores (fp8_mma.cu), where the device has them (sm_89+). */
bool fp8_mma_supported(void);
cudaError_t fp8_mma_launch(const ra_qgemm_args &a, int len, cudaStream_t stream);

#endif
