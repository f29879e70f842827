/* Dense matrix products y = x . W^T ("ra" kernels), their epilogues, and the
 * embedding lookup.
 *
 * Shape of the work: a block owns 16 weight rows and up to 64 tokens
 * (grid.x over rows, grid.y over tokens); its 8 warps split K into chunks
 * dealt round-robin (chunk c to warp c % 8), each warp accumulates its chunks
 * in ascending order, and the 8 partial sums are added in warp order. All of
 * that depends on K alone: a token's result is the same bits whatever M is
 * and wherever the token sits in the batch.
 *   float32: each lane takes 4 consecutive k per 128-wide chunk, fmaf in
 *     order, then a butterfly over the lanes (a warp holds 2 rows, so the
 *     K split is across lanes rather than warps).
 *   bfloat16: mma.sync m16n8k16 with the weights as A (16 rows) and 8 tokens
 *     as B; a lane loads 8 consecutive k of weight rows g and g + 8 and of
 *     token g with one 16-byte load each, and the same k permutation is used
 *     for A and B, so the products pair up exactly as in a plain dot. */
#include "common.cuh"

#define GEMM_WARPS 8
#define GEMM_THREADS (GEMM_WARPS * RA_WARP)
#define GEMM_ROWS 16
#define GEMM_TOKENS 64
#define GEMM_PAD 4 /* row pad of the shared tiles: no bank conflicts on the fragment stores */

typedef float gemm_tile[GEMM_TOKENS + GEMM_PAD];

/* v: the block's reduced results, [row][token]. */
static __device__ void gemm_epilogue(const gemm_tile *v, const ra_gemm_args &a, int n0, int t0, int nt)
{
    if (a.epilogue == RA_EPI_SWIGLU) {
        const int half = a.n / 2;
        for (int i = threadIdx.x; i < 8 * nt; i += GEMM_THREADS) {
            const int r = i & 7, t = i >> 3;
            const double g = v[r][t];
            const float silu = (float)(g / (1.0 + exp(-g)));
            store_act(a.act, (size_t)(t0 + t) * half + n0 / 2 + r, silu * v[r + 8][t], a.dtype);
        }
        return;
    }
    for (int i = threadIdx.x; i < GEMM_ROWS * nt; i += GEMM_THREADS) {
        const int r = i & 15, t = i >> 4;
        if (n0 + r >= a.n) continue;
        float *y = a.y + (size_t)(t0 + t) * a.n + n0 + r;
        *y = a.epilogue == RA_EPI_ADD ? *y + v[r][t] : v[r][t];
    }
}

/* Four floats at k of a row of length K; past the end reads as 0. */
static __device__ __forceinline__ float4 load4f(const float *row, int k, int K, bool vec)
{
    if (vec && k + 4 <= K) return __ldg((const float4 *)(row + k));
    float4 r;
    r.x = k < K ? row[k] : 0.f;
    r.y = k + 1 < K ? row[k + 1] : 0.f;
    r.z = k + 2 < K ? row[k + 2] : 0.f;
    r.w = k + 3 < K ? row[k + 3] : 0.f;
    return r;
}

static __global__ void __launch_bounds__(GEMM_THREADS) gemm_f32(ra_gemm_args a)
{
    __shared__ gemm_tile tile[GEMM_ROWS];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int n0 = blockIdx.x * GEMM_ROWS, t0 = blockIdx.y * GEMM_TOKENS;
    const int nt = min(a.m - t0, GEMM_TOKENS), K = a.k;
    const int r0 = n0 + 2 * warp;
    const float *W = (const float *)a.w, *X = (const float *)a.x;
    const float *w0 = W + (size_t)(r0 < a.n ? r0 : 0) * K, *w1 = W + (size_t)(r0 + 1 < a.n ? r0 + 1 : 0) * K;
    const bool vec = (K & 3) == 0;
    for (int tg = 0; tg < nt; tg += 8) {
        float acc0[8] = {}, acc1[8] = {};
#pragma unroll 2
        for (int k = lane * 4; k < K; k += 4 * RA_WARP) {
            const float4 wa = load4f(w0, k, K, vec), wb = load4f(w1, k, K, vec);
#pragma unroll
            for (int j = 0; j < 8; j++) {
                if (tg + j >= nt) break;
                const float4 x = load4f(X + (size_t)(t0 + tg + j) * K, k, K, vec);
                acc0[j] = fmaf(wa.x, x.x, acc0[j]);
                acc0[j] = fmaf(wa.y, x.y, acc0[j]);
                acc0[j] = fmaf(wa.z, x.z, acc0[j]);
                acc0[j] = fmaf(wa.w, x.w, acc0[j]);
                acc1[j] = fmaf(wb.x, x.x, acc1[j]);
                acc1[j] = fmaf(wb.y, x.y, acc1[j]);
                acc1[j] = fmaf(wb.z, x.z, acc1[j]);
                acc1[j] = fmaf(wb.w, x.w, acc1[j]);
            }
        }
#pragma unroll
        for (int j = 0; j < 8; j++) {
            const float s0 = warp_sum(acc0[j]), s1 = warp_sum(acc1[j]);
            if (lane == 0 && tg + j < nt) {
                tile[2 * warp][tg + j] = s0;
                tile[2 * warp + 1][tg + j] = s1;
            }
        }
    }
    __syncthreads();
    gemm_epilogue(tile, a, n0, t0, nt);
}

/* Eight bfloat16 at k of a row of length K (as four 32-bit pairs, the lower
 * k in the low half); past the end reads as 0. */
static __device__ __forceinline__ uint4 load8h(const uint16_t *row, int k, int K, bool vec)
{
    if (vec && k + 8 <= K) return __ldg((const uint4 *)(row + k));
    uint32_t p[4];
#pragma unroll
    for (int j = 0; j < 4; j++) {
        const uint32_t lo = k + 2 * j < K ? row[k + 2 * j] : 0u, hi = k + 2 * j + 1 < K ? row[k + 2 * j + 1] : 0u;
        p[j] = lo | (hi << 16);
    }
    return make_uint4(p[0], p[1], p[2], p[3]);
}

#define GEMM_UNROLL 4 /* chunks in flight per warp */

static __global__ void __launch_bounds__(GEMM_THREADS) gemm_bf16(ra_gemm_args a)
{
    __shared__ gemm_tile part[GEMM_WARPS][GEMM_ROWS];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, q = lane & 3;
    const int n0 = blockIdx.x * GEMM_ROWS, t0 = blockIdx.y * GEMM_TOKENS;
    const int nt = min(a.m - t0, GEMM_TOKENS), tiles = (nt + 7) >> 3, K = a.k;
    const uint16_t *W = (const uint16_t *)a.w, *X = (const uint16_t *)a.x;
    const bool lo_ok = n0 + g < a.n, hi_ok = n0 + g + 8 < a.n, vec = (K & 7) == 0;
    const uint16_t *wlo = W + (size_t)(lo_ok ? n0 + g : 0) * K, *whi = W + (size_t)(hi_ok ? n0 + g + 8 : 0) * K;
    const uint4 zero = make_uint4(0, 0, 0, 0);
    const int chunks = (K + 31) >> 5;
    float acc[8][4] = {};
    for (int c0 = warp; c0 < chunks; c0 += GEMM_UNROLL * GEMM_WARPS) {
        uint4 alo[GEMM_UNROLL], ahi[GEMM_UNROLL];
#pragma unroll
        for (int u = 0; u < GEMM_UNROLL; u++) {
            const int c = c0 + u * GEMM_WARPS, k = c * 32 + q * 8;
            alo[u] = c < chunks && lo_ok ? load8h(wlo, k, K, vec) : zero;
            ahi[u] = c < chunks && hi_ok ? load8h(whi, k, K, vec) : zero;
        }
#pragma unroll
        for (int t = 0; t < 8; t++) {
            if (t >= tiles) break;
            const int tok = t0 + t * 8 + g;
            const uint16_t *xr = X + (size_t)(tok < a.m ? tok : 0) * K;
#pragma unroll
            for (int u = 0; u < GEMM_UNROLL; u++) {
                const int c = c0 + u * GEMM_WARPS;
                if (c >= chunks) break;
                const uint4 b = tok < a.m ? load8h(xr, c * 32 + q * 8, K, vec) : zero;
                mma_bf16_16816(acc[t], alo[u].x, ahi[u].x, alo[u].y, ahi[u].y, b.x, b.y);
                mma_bf16_16816(acc[t], alo[u].z, ahi[u].z, alo[u].w, ahi[u].w, b.z, b.w);
            }
        }
    }
#pragma unroll
    for (int t = 0; t < 8; t++) {
        if (t >= tiles) break;
        part[warp][g][t * 8 + 2 * q] = acc[t][0];
        part[warp][g][t * 8 + 2 * q + 1] = acc[t][1];
        part[warp][g + 8][t * 8 + 2 * q] = acc[t][2];
        part[warp][g + 8][t * 8 + 2 * q + 1] = acc[t][3];
    }
    __syncthreads();
    for (int i = threadIdx.x; i < GEMM_ROWS * tiles * 8; i += GEMM_THREADS) {
        const int r = i / (tiles * 8), t = i % (tiles * 8);
        float s = part[0][r][t];
        for (int w = 1; w < GEMM_WARPS; w++) s += part[w][r][t];
        part[0][r][t] = s;
    }
    __syncthreads();
    gemm_epilogue(part[0], a, n0, t0, nt);
}

extern "C" cudaError_t ra_k_gemm(const ra_gemm_args *a, cudaStream_t stream)
{
    if (a->m <= 0 || a->n <= 0 || a->k <= 0) return a->m == 0 ? cudaSuccess : cudaErrorInvalidValue;
    if (a->epilogue == RA_EPI_SWIGLU && a->n % 16) return cudaErrorInvalidValue;
    const dim3 grid(ra_blocks(a->n, GEMM_ROWS), ra_blocks(a->m, GEMM_TOKENS));
    if (grid.y > 65535) return cudaErrorInvalidValue;
    if (a->dtype == RA_DT_BF16) gemm_bf16<<<grid, GEMM_THREADS, 0, stream>>>(*a);
    else gemm_f32<<<grid, GEMM_THREADS, 0, stream>>>(*a);
    return cudaGetLastError();
}

static __global__ void swiglu(ra_dtype dt, const float *y, void *act, int n)
{
    const int t = blockIdx.y, half = n / 2;
    for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < half; j += gridDim.x * blockDim.x) {
        const float *row = y + (size_t)t * n + (j / 8) * 16 + (j % 8);
        const double g = row[0];
        const float silu = (float)(g / (1.0 + exp(-g)));
        store_act(act, (size_t)t * half + j, silu * row[8], dt);
    }
}

extern "C" cudaError_t ra_k_swiglu(ra_dtype dtype, const float *y, void *act, int m, int n, cudaStream_t stream)
{
    if (m <= 0) return cudaSuccess;
    if (n % 16 || m > 65535) return cudaErrorInvalidValue;
    swiglu<<<dim3(ra_blocks(n / 2, 256), m), 256, 0, stream>>>(dtype, y, act, n);
    return cudaGetLastError();
}

static __global__ void embed(ra_dtype dt, const void *table, const int32_t *tokens, float *x, int dim)
{
    const size_t row = (size_t)tokens[blockIdx.x] * dim;
    float *out = x + (size_t)blockIdx.x * dim;
    for (int d = threadIdx.x; d < dim; d += blockDim.x)
        out[d] = dt == RA_DT_BF16 ? bf16_to_f32(((const uint16_t *)table)[row + d]) : ((const float *)table)[row + d];
}

extern "C" cudaError_t ra_k_embed(ra_dtype dtype, const void *table, const int32_t *tokens, float *x, int n, int dim,
                                  cudaStream_t stream)
{
    if (n <= 0) return cudaSuccess;
    embed<<<n, 256, 0, stream>>>(dtype, table, tokens, x, dim);
    return cudaGetLastError();
}
