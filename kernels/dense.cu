/* Dense matrix products y = x . W^T ("ra" kernels), their epilogues, and the
 * embedding lookup. What a token's result depends on is written down in
 * kernels.h (ra_k_gemm): the shapes of the weights, never the batch.
 *
 * float32 (gemm_f32): a block owns 16 weight rows and up to 64 tokens; each
 *   warp takes 2 rows; a lane takes 4 consecutive k per 128-wide step, fmaf in
 *   order, then a butterfly over the lanes.
 * bfloat16 (gemm_bf16): a block owns 128 weight rows (16 per warp), up to 64
 *   tokens and one slice of K. Weights go from memory straight into the
 *   registers of the one warp that uses them (two chunks in flight), the
 *   block's tokens go through shared memory (cp.async, double-buffered) to
 *   every warp. mma.sync m16n8k16 with the weights as A and 8 tokens as B;
 *   a lane loads 8 consecutive k of weight rows g and g + 8 and of token g,
 *   and A and B use the same k permutation, so products pair up exactly as
 *   in a plain dot. K is cut into S slices (S from N and K alone); slice sums
 *   are added in slice order, either by one block that runs them all or, for
 *   few tokens, by the last of S blocks to finish (an integer counter picks
 *   which block, never the order). */
#include "common.cuh"

#define GEMM_THREADS 256

/* ---- epilogues ------------------------------------------------------------ */

/* Applies the epilogue to a block's reduced results v[r * ld + t]: rows
 * n0..n0+rows-1, tokens t0..t0+nt-1 of this launch. */
static __device__ void gemm_epilogue(const float *v, int ld, int rows, const ra_gemm_args &a, int n0, int t0, int nt)
{
    if (a.epilogue == RA_EPI_SWIGLU) {
        const int half = a.n / 2;
        for (int i = threadIdx.x; i < rows / 2 * nt; i += blockDim.x) {
            const int t = i / (rows / 2), p = i % (rows / 2), r = (p / 8) * 16 + p % 8;
            if (n0 + r >= a.n) continue;
            const double g = v[r * ld + t];
            const float silu = (float)(g / (1.0 + exp(-g)));
            store_act(a.act, (size_t)(t0 + t) * half + n0 / 2 + (p / 8) * 8 + p % 8, silu * v[(r + 8) * ld + t], a.dtype);
        }
        return;
    }
    if (a.epilogue == RA_EPI_ROPE) {
        const ra_rope_args &R = a.rope;
        const int hd = R.head_dim, half = hd / 2, q_dim = R.n_heads * hd, kv_dim = R.n_kv_heads * hd;
        for (int i = threadIdx.x; i < rows * nt; i += blockDim.x) {
            const int t = i / rows, r = i % rows, n = n0 + r;
            if (n >= a.n) continue;
            const int tok = t0 + t, pos = R.kv.pos[tok], j = n % hd;
            const size_t at = ((size_t)R.layer * R.kv.pool_len + R.kv.start[tok] + pos) * kv_dim;
            float out = v[r * ld + t];
            if (n < q_dim + kv_dim) { /* q or k: rotate-half, as rope_store computes it */
                const float c = R.cos_t[(size_t)pos * half + j % half], s = R.sin_t[(size_t)pos * half + j % half];
                if (j < half) out = v[r * ld + t] * c - v[(r + half) * ld + t] * s;
                else out = v[r * ld + t] * c + v[(r - half) * ld + t] * s;
            }
            if (n < q_dim) R.q_out[(size_t)tok * q_dim + n] = out;
            else if (n < q_dim + kv_dim) R.kv.k[at + (n - q_dim)] = out;
            else R.kv.v[at + (n - q_dim - kv_dim)] = out;
        }
        return;
    }
    for (int i = threadIdx.x; i < rows * nt; i += blockDim.x) {
        const int t = i / rows, r = i % rows;
        if (n0 + r >= a.n) continue;
        float *y = a.y + (size_t)(t0 + t) * a.n + n0 + r;
        *y = a.epilogue == RA_EPI_ADD ? *y + v[r * ld + t] : v[r * ld + t];
    }
}

/* ---- float32 -------------------------------------------------------------- */

#define F32_ROWS 16
#define F32_TOKENS 64
#define F32_LD (F32_TOKENS + 4)

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
    __shared__ float tile[F32_ROWS * F32_LD];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int n0 = blockIdx.x * F32_ROWS, t0 = blockIdx.y * F32_TOKENS;
    const int nt = min(a.m - t0, F32_TOKENS), K = a.k;
    const int r0 = n0 + 2 * warp;
    const float *W = (const float *)a.w, *X = (const float *)a.x;
    const float *w0 = W + (size_t)(r0 < a.n ? r0 : 0) * K, *w1 = W + (size_t)(r0 + 1 < a.n ? r0 + 1 : 0) * K;
    const bool vec = (K & 3) == 0;
    pdl_wait();
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
                tile[(2 * warp) * F32_LD + tg + j] = s0;
                tile[(2 * warp + 1) * F32_LD + tg + j] = s1;
            }
        }
    }
    pdl_trigger();
    __syncthreads();
    gemm_epilogue(tile, F32_LD, F32_ROWS, a, n0, t0, nt);
}

/* ---- bfloat16 ------------------------------------------------------------- */

#define BF_ROWS 128        /* weight rows per block: 16 per warp */
#define BF_TOKENS 64       /* tokens per block */
#define BF_KC 64           /* k per chunk */
#define BF_XLD (BF_KC + 32) /* a token's chunk in shared memory: a 192-byte row puts the 16-byte fragment
                             loads of each quarter-warp (tokens g, g+1) in distinct banks */
#define BF_TLD (BF_TOKENS + 4)
#ifndef BF_TARGET_BLOCKS
#define BF_TARGET_BLOCKS 512 /* K slices are chosen so a product has about this many blocks */
#endif
#define BF_SPLIT_MAX_M BF_TOKENS /* products of more rows run every slice in one block */

/* One buffer of shared memory, used first for the token chunks and then for
 * the block's reduced tile. */
#define BF_SMEM_X (2 * BF_TOKENS * BF_XLD * 2)
#define BF_SMEM_T (BF_ROWS * BF_TLD * 4)
#define BF_SMEM (BF_SMEM_X > BF_SMEM_T ? BF_SMEM_X : BF_SMEM_T)

/* Eight bfloat16 at k of a row of length K (four 32-bit pairs, the lower k in
 * the low half); past the end reads as 0. */
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

/* A warp's weights for one chunk: rows g and g + 8 of its 16, k halves 0 and 1. */
struct wchunk {
    uint4 lo0, hi0, lo1, hi1;
};

static __device__ __forceinline__ wchunk load_wchunk(const uint16_t *wlo, const uint16_t *whi, bool lo_ok, bool hi_ok, int c,
                                                     int q, int K, bool vec)
{
    const uint4 z = make_uint4(0, 0, 0, 0);
    const int k = c * BF_KC + q * 8;
    wchunk w;
    w.lo0 = lo_ok ? load8h(wlo, k, K, vec) : z;
    w.hi0 = hi_ok ? load8h(whi, k, K, vec) : z;
    w.lo1 = lo_ok ? load8h(wlo, k + 32, K, vec) : z;
    w.hi1 = hi_ok ? load8h(whi, k + 32, K, vec) : z;
    return w;
}

/* The block's tokens t0..t0+nt-1, k chunk c, into shared memory. Tokens past
 * nt (up to the end of their tile of 8) and k past K read as zero. */
static __device__ __forceinline__ void load_xchunk(uint16_t *xs, const uint16_t *X, int t0, int nt, int c, int K, bool vec)
{
    const int rows = (nt + 7) & ~7; /* the token tiles in use */
    for (int i = threadIdx.x; i < rows * (BF_KC / 8); i += GEMM_THREADS) {
        const int t = i / (BF_KC / 8), seg = i % (BF_KC / 8), k = c * BF_KC + seg * 8;
        uint16_t *dst = xs + t * BF_XLD + seg * 8;
        const uint16_t *src = X + (size_t)(t0 + (t < nt ? t : 0)) * K + k;
        if (vec && t < nt && k + 8 <= K) cp_async16(dst, src, 16);
        else if (t >= nt || k >= K) cp_async16(dst, X, 0); /* zero fill */
        else *(uint4 *)dst = load8h(src - k, k, K, false);
    }
}

/* The tensor-core steps of one chunk for every token tile. */
template <int NT>
static __device__ __forceinline__ void mma_chunk(float (&acc)[NT][4], const wchunk &w, const uint16_t *xs, int tiles, int g, int q)
{
#pragma unroll
    for (int t = 0; t < NT; t++) {
        if (t >= tiles) break;
        const uint16_t *xr = xs + (t * 8 + g) * BF_XLD + q * 8;
        const uint4 b0 = *(const uint4 *)xr, b1 = *(const uint4 *)(xr + 32);
        mma_bf16_16816(acc[t], w.lo0.x, w.hi0.x, w.lo0.y, w.hi0.y, b0.x, b0.y);
        mma_bf16_16816(acc[t], w.lo0.z, w.hi0.z, w.lo0.w, w.hi0.w, b0.z, b0.w);
        mma_bf16_16816(acc[t], w.lo1.x, w.hi1.x, w.lo1.y, w.hi1.y, b1.x, b1.y);
        mma_bf16_16816(acc[t], w.lo1.z, w.hi1.z, w.lo1.w, w.hi1.w, b1.z, b1.w);
    }
}

/* NT: token tiles of 8 a block handles at most (1, 2 or 8); DEPTH: weight
 * chunks in flight per warp. Only the register budget depends on them, never
 * the order of any sum.
 * A block runs K slices first_slice .. first_slice + n_slices - 1 in order.
 * Each slice is a fresh chain of mma over its chunks; slice sums are added
 * left to right (total = p0, then total + p1, ...). With one slice per block
 * the blocks of a tile leave their p_s in the workspace and the last one adds
 * them in the same order, so both ways give the same bits: the launcher picks
 * one block per slice for few tokens (parallelism) and one block for all
 * slices for many (no workspace traffic). */
template <int NT, int DEPTH>
static __global__ void __launch_bounds__(GEMM_THREADS, 2) gemm_bf16(ra_gemm_args a, int slices, int slice_chunks)
{
    __shared__ __align__(16) unsigned char smem[BF_SMEM];
    __shared__ int last;
    uint16_t *xs = (uint16_t *)smem;
    float *tile = (float *)smem;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, q = lane & 3;
    const int K = a.k, chunks = (K + BF_KC - 1) / BF_KC;
    const int nb = blockIdx.x * BF_ROWS, n0 = nb + warp * 16, t0 = blockIdx.y * BF_TOKENS;
    const int nt = min(a.m - t0, BF_TOKENS), tiles = (nt + 7) >> 3;
    const bool split = gridDim.z > 1; /* one block per slice, partials through the workspace */
    const int c0 = split ? blockIdx.z * slice_chunks : 0, c1 = split ? min(c0 + slice_chunks, chunks) : chunks;
    const uint16_t *W = (const uint16_t *)a.w, *X = (const uint16_t *)a.x;
    const bool lo_ok = n0 + g < a.n, hi_ok = n0 + g + 8 < a.n, vec = (K & 7) == 0;
    const uint16_t *wlo = W + (size_t)(lo_ok ? n0 + g : 0) * K, *whi = W + (size_t)(hi_ok ? n0 + g + 8 : 0) * K;

    /* The weights do not depend on earlier kernels: start loading them first. */
    wchunk w[DEPTH];
#pragma unroll
    for (int u = 0; u < DEPTH; u++)
        if (c0 + u < c1) w[u] = load_wchunk(wlo, whi, lo_ok, hi_ok, c0 + u, q, K, vec);
    pdl_wait();
    load_xchunk(xs, X, t0, nt, c0, K, vec);
    cp_async_commit();

    float acc[NT][4] = {}, total[NT][4] = {};
    for (int c = c0; c < c1; c += DEPTH) {
#pragma unroll
        for (int u = 0; u < DEPTH; u++) { /* chunk c + u: weights w[u], tokens in buffer u % 2 */
            const int cc = c + u;
            if (cc >= c1) break;
            if (cc + 1 < c1) load_xchunk(xs + ((u + 1) & 1) * BF_TOKENS * BF_XLD, X, t0, nt, cc + 1, K, vec);
            cp_async_commit();
            cp_async_wait<1>();
            __syncthreads();
            mma_chunk<NT>(acc, w[u], xs + (u & 1) * BF_TOKENS * BF_XLD, tiles, g, q);
            if ((cc + 1) % slice_chunks == 0 || cc + 1 == c1) { /* the end of a slice: add it to the total */
                const bool first = cc + 1 - c0 <= slice_chunks;
#pragma unroll
                for (int t = 0; t < NT; t++)
#pragma unroll
                    for (int i = 0; i < 4; i++) {
                        total[t][i] = first ? acc[t][i] : total[t][i] + acc[t][i];
                        acc[t][i] = 0.f;
                    }
            }
            if (cc + DEPTH < c1) w[u] = load_wchunk(wlo, whi, lo_ok, hi_ok, cc + DEPTH, q, K, vec);
            __syncthreads();
        }
    }
    cp_async_wait<0>();
    __syncthreads();
    pdl_trigger();

    const int r0 = warp * 16 + g;
#pragma unroll
    for (int t = 0; t < NT; t++) {
        if (t >= tiles) break;
        tile[r0 * BF_TLD + t * 8 + 2 * q] = total[t][0];
        tile[r0 * BF_TLD + t * 8 + 2 * q + 1] = total[t][1];
        tile[(r0 + 8) * BF_TLD + t * 8 + 2 * q] = total[t][2];
        tile[(r0 + 8) * BF_TLD + t * 8 + 2 * q + 1] = total[t][3];
    }
    __syncthreads();
    if (split) {
        float *part = a.ws + (size_t)blockIdx.z * a.m * a.n;
        for (int i = threadIdx.x; i < BF_ROWS * nt; i += GEMM_THREADS) {
            const int t = i / BF_ROWS, r = i % BF_ROWS;
            if (nb + r < a.n) part[(size_t)(t0 + t) * a.n + nb + r] = tile[r * BF_TLD + t];
        }
        __threadfence();
        __syncthreads();
        unsigned *counter = a.counters + blockIdx.x + gridDim.x * blockIdx.y;
        if (threadIdx.x == 0) last = atomicAdd(counter, 1u) == (unsigned)slices - 1;
        __syncthreads();
        if (!last) return;
        __threadfence();
        for (int i = threadIdx.x; i < BF_ROWS * nt; i += GEMM_THREADS) {
            const int t = i / BF_ROWS, r = i % BF_ROWS;
            if (nb + r >= a.n) continue;
            const size_t at = (size_t)(t0 + t) * a.n + nb + r;
            float v = __ldcg(a.ws + at);
            for (int s = 1; s < slices; s++) v += __ldcg(a.ws + (size_t)s * a.m * a.n + at);
            tile[r * BF_TLD + t] = v;
        }
        if (threadIdx.x == 0) *counter = 0;
        __syncthreads();
    }
    gemm_epilogue(tile, BF_TLD, BF_ROWS, a, nb, t0, nt);
}

/* ---- launchers -------------------------------------------------------------- */

extern "C" int ra_gemm_splits(ra_dtype dtype, int n, int k)
{
    if (dtype != RA_DT_BF16) return 1;
    const int chunks = (k + BF_KC - 1) / BF_KC, row_blocks = (n + BF_ROWS - 1) / BF_ROWS;
    int s = (BF_TARGET_BLOCKS + row_blocks - 1) / row_blocks;
    s = s < 1 ? 1 : s > chunks ? chunks : s;
    const int per = (chunks + s - 1) / s;
    return (chunks + per - 1) / per;
}

extern "C" void ra_gemm_workspace(ra_dtype dtype, int n, int k, size_t *ws_floats, size_t *n_counters)
{
    const int s = ra_gemm_splits(dtype, n, k);
    *ws_floats = s > 1 ? (size_t)s * BF_SPLIT_MAX_M * n : 0;
    *n_counters = s > 1 ? (size_t)ra_blocks(n, BF_ROWS) : 0;
}

extern "C" int ra_gemm_fuses_rope(ra_dtype dtype, int head_dim)
{
    return dtype == RA_DT_BF16 && head_dim > 0 && head_dim % 2 == 0 && BF_ROWS % head_dim == 0;
}

static cudaError_t gemm_bf16_launch(ra_gemm_args a, cudaStream_t stream)
{
    const int slices = ra_gemm_splits(RA_DT_BF16, a.n, a.k), chunks = (a.k + BF_KC - 1) / BF_KC;
    const int per = (chunks + slices - 1) / slices;
    const dim3 block(GEMM_THREADS);
    if (slices == 1 || a.m > BF_SPLIT_MAX_M) { /* one block runs every slice: no workspace */
        const dim3 grid(ra_blocks(a.n, BF_ROWS), ra_blocks(a.m, BF_TOKENS), 1);
        if (grid.y > 65535) return cudaErrorInvalidValue;
        if (a.m <= 8) return ra_launch(gemm_bf16<1, 4>, grid, block, stream, a, slices, per);
        if (a.m <= 16) return ra_launch(gemm_bf16<2, 4>, grid, block, stream, a, slices, per);
        return ra_launch(gemm_bf16<8, 2>, grid, block, stream, a, slices, per);
    }
    if (!a.ws || !a.counters) return cudaErrorInvalidValue;
    const dim3 grid(ra_blocks(a.n, BF_ROWS), ra_blocks(a.m, BF_TOKENS), slices);
    if (a.m <= 8) return ra_launch(gemm_bf16<1, 4>, grid, block, stream, a, slices, per);
    if (a.m <= 16) return ra_launch(gemm_bf16<2, 4>, grid, block, stream, a, slices, per);
    return ra_launch(gemm_bf16<8, 2>, grid, block, stream, a, slices, per);
}

extern "C" cudaError_t ra_k_gemm(const ra_gemm_args *a, cudaStream_t stream)
{
    if (a->m <= 0 || a->n <= 0 || a->k <= 0) return a->m == 0 ? cudaSuccess : cudaErrorInvalidValue;
    if (a->epilogue == RA_EPI_SWIGLU && a->n % 16) return cudaErrorInvalidValue;
    if (a->epilogue == RA_EPI_ROPE &&
        (!ra_gemm_fuses_rope(a->dtype, a->rope.head_dim) ||
         a->n != (a->rope.n_heads + 2 * a->rope.n_kv_heads) * a->rope.head_dim))
        return cudaErrorInvalidValue;
    if (a->dtype == RA_DT_BF16) return gemm_bf16_launch(*a, stream);
    const dim3 grid(ra_blocks(a->n, F32_ROWS), ra_blocks(a->m, F32_TOKENS));
    if (grid.y > 65535) return cudaErrorInvalidValue;
    return ra_launch(gemm_f32, grid, dim3(GEMM_THREADS), stream, *a);
}

/* halves: gate in columns 0..n/2-1, up in n/2..n-1; else interleaved by 8. */
static __global__ void swiglu(ra_dtype dt, const float *y, void *act, int n, int halves)
{
    pdl_wait();
    pdl_trigger();
    const int t = blockIdx.y, half = n / 2;
    for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < half; j += gridDim.x * blockDim.x) {
        const float *row = y + (size_t)t * n + (halves ? j : (j / 8) * 16 + (j % 8));
        const double g = row[0];
        const float silu = (float)(g / (1.0 + exp(-g)));
        store_act(act, (size_t)t * half + j, silu * row[halves ? half : 8], dt);
    }
}

extern "C" cudaError_t ra_k_swiglu(ra_dtype dtype, const float *y, void *act, int m, int n, cudaStream_t stream)
{
    if (m <= 0) return cudaSuccess;
    if (n % 16 || m > 65535) return cudaErrorInvalidValue;
    return ra_launch(swiglu, dim3(ra_blocks(n / 2, 256), m), dim3(256), stream, dtype, y, act, n, 0);
}

extern "C" cudaError_t ra_k_swiglu_halves(ra_dtype dtype, const float *y, void *act, int m, int n, cudaStream_t stream)
{
    if (m <= 0) return cudaSuccess;
    if (n % 2 || m > 65535) return cudaErrorInvalidValue;
    return ra_launch(swiglu, dim3(ra_blocks(n / 2, 256), m), dim3(256), stream, dtype, y, act, n, 1);
}

static __global__ void embed(ra_dtype dt, const void *table, const int32_t *tokens, float *x, int dim)
{
    pdl_wait();
    pdl_trigger();
    const size_t row = (size_t)tokens[blockIdx.x] * dim;
    float *out = x + (size_t)blockIdx.x * dim;
    for (int d = threadIdx.x; d < dim; d += blockDim.x)
        out[d] = dt == RA_DT_BF16 ? bf16_to_f32(((const uint16_t *)table)[row + d]) : ((const float *)table)[row + d];
}

extern "C" cudaError_t ra_k_embed(ra_dtype dtype, const void *table, const int32_t *tokens, float *x, int n, int dim,
                                  cudaStream_t stream)
{
    if (n <= 0) return cudaSuccess;
    return ra_launch(embed, dim3(n), dim3(256), stream, dtype, table, tokens, x, dim);
}
