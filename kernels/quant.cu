/* Weight-only quantized matrix products y = x . W^T on the checkpoints' own
 * packing (kernels.h, ra_k_qgemm): GPTQ, AutoAWQ, compressed-tensors W4A16,
 * FP8 E4M3, NVFP4 and MXFP4. The weights are decoded in registers to the
 * float32 values the format's CPU reference gives (the same expression, so
 * the same bits: docs/formats.md) and multiplied with float32 activations.
 *
 * A thread owns one output feature n. A block owns 128 of them and one of S
 * slices of K (S from the layout, N and K alone: ra_qgemm_slices). In its slice a thread
 * walks k upward, 8 at a time, and adds w * x into one float32 sum per token
 * (fmaf, in that order); tokens go up to 8 at a time (fewer only for smaller
 * batches: a token's chain of fmaf is the same either way) through shared
 * memory, in tiles of 256 columns. The S slice sums are then added in slice order by a second
 * kernel (combine), so a token's result depends on N, K and its own row
 * only. The `atomic` variant adds the slice sums into y with floating-point
 * atomics instead, in whatever order the blocks finish, as split-K kernels
 * in the field do: the audit measures what that costs in bits.
 *
 * GPTQ and AWQ have kernels of their own (qgemm_gptq, qgemm_awq) that read
 * whole rows of packed words with every lane of a warp on its own word (the
 * generic kernel has 8 lanes share an AWQ word): a GPTQ thread takes 4
 * features with one 16-byte load, an AWQ thread the 8 features of a word;
 * the warps of a block share one slice, warp w taking every G_WARPS-th (or
 * A_WARPS-th) word of it, and their sums are added in warp order. Slices are
 * longer (fewer slice sums to store). The K-major layouts (W4A16, FP8,
 * NVFP4, MXFP4) run a warp a feature (qgemm_rows). */
#include <cuda_fp16.h>

#include "common.cuh"
#include "qslices.cuh"

#define Q_THREADS 128
#define Q_TILE 256    /* columns of x staged in shared memory */
/* FP8 weights with activations quantized per token or per 128-group (W8A8):
 * the kernel multiplies the decoded codes of both and scales each segment's
 * sum, as the CPU reference does (formats/fp8.c). Internal to this file. */
#define Q_FP8_W8A8 100


/* Blocks a product aims for, by layout (measured on the H100, docs/gpu.md):
 * where a warp's 32 features sit side by side in memory (FP8's
 * wide rows) short slices and many blocks keep more loads in flight; the
 * packed K-major layouts prefer longer slices. */
static int target_blocks(int kind)
{
    return kind == RA_Q_FP8 || kind == Q_FP8_W8A8 ? 4224 : 1056;
}

/* (float)(q - z) for a 4-bit code q, exactly and without a conversion
 * instruction: 2^23 + q has q in its low mantissa bits; zm is 2^23 + z. */
__device__ __forceinline__ float code_minus(uint32_t q, float zm) { return __uint_as_float(0x4B000000u | q) - zm; }
#define ZM(z) (8388608.0f + (float)(z))

/* ---- element decoders (the CPU's expressions, minifloat.c) ----------------- */

__device__ __forceinline__ float e4m3_to_f32(uint32_t b)
{
    const uint32_t e = (b >> 3) & 15, m = b & 7;
    float v;
    if ((b & 0x7f) == 0x7f) v = __uint_as_float(0x7fc00000u);
    else if (e == 0) v = (float)m * 0x1p-9f; /* subnormal: m * 2^-9, exact */
    else v = __uint_as_float(((e + 120u) << 23) | (m << 20));
    return b & 0x80 ? -v : v;
}

__device__ __forceinline__ float e2m1_to_f32(uint32_t c)
{
    const uint32_t e = (c >> 1) & 3, m = c & 1;
    const float v = e == 0 ? 0.5f * (float)m : __uint_as_float(((e + 126u) << 23) | (m << 22));
    return c & 8 ? -v : v;
}

__device__ __forceinline__ float e8m0_to_f32(uint32_t b)
{
    if (b == 0xff) return __uint_as_float(0x7fc00000u);
    return b == 0 ? __uint_as_float(0x00400000u) : __uint_as_float(b << 23); /* 2^(b - 127) */
}

__device__ __forceinline__ float scale16(const ra_qweight &w, size_t i)
{
    const uint16_t s = __ldg(&w.scales16[i]);
    return w.scale_bf16 ? bf16_to_f32(s) : __half2float(__ushort_as_half(s));
}

__device__ __forceinline__ int group_of(const ra_qweight &w, int k) { return w.g_idx ? w.g_idx[k] : k / w.group; }

/* AutoAWQ packs output features 0..7 of a word in the order 0,2,4,6,1,3,5,7:
 * the field that holds feature j. */
__device__ __forceinline__ int awq_field(int j) { return (j & 1) * 4 + (j >> 1); }

/* out[j] = W[n][k0 + j], j < 8 (k0 a multiple of 8, k0 + 8 <= K). */
template <int KIND>
__device__ __forceinline__ void decode8(const ra_qweight &w, int n, int k0, float out[8])
{
    const int N = w.n, K = w.k;
    if (KIND == RA_Q_GPTQ) {
        const uint32_t word = __ldg(&w.qweight[(size_t)(k0 / 8) * N + n]);
        if (!w.g_idx) { /* groups are multiples of 8 columns: one scale and zero for the 8 */
            const int g = k0 / w.group;
            const int z = (int)((__ldg(&w.qzeros[(size_t)g * (N / 8) + n / 8]) >> (4 * (n % 8))) & 15) + (int)w.zero_offset;
            const float sc = scale16(w, (size_t)g * N + n);
#pragma unroll
            for (int j = 0; j < 8; j++) out[j] = (float)((int)((word >> (4 * j)) & 15) - z) * sc;
            return;
        }
#pragma unroll
        for (int j = 0; j < 8; j++) { /* act-order: g_idx looked up per column */
            const int g = w.g_idx[k0 + j];
            const uint32_t z = ((__ldg(&w.qzeros[(size_t)g * (N / 8) + n / 8]) >> (4 * (n % 8))) & 15) + w.zero_offset;
            out[j] = (float)((int)((word >> (4 * j)) & 15) - (int)z) * scale16(w, (size_t)g * N + n);
        }
    } else if (KIND == RA_Q_AWQ) {
        const int f = 4 * awq_field(n % 8), g = k0 / w.group;
        const int z = (int)((__ldg(&w.qzeros[(size_t)g * (N / 8) + n / 8]) >> f) & 15);
        const float sc = scale16(w, (size_t)g * N + n);
#pragma unroll
        for (int j = 0; j < 8; j++)
            out[j] = (float)((int)((__ldg(&w.qweight[(size_t)(k0 + j) * (N / 8) + n / 8]) >> f) & 15) - z) * sc;
    } else if (KIND == RA_Q_W4A16) {
        const int G = (K + w.group - 1) / w.group;
        const uint32_t word = __ldg(&w.qweight[(size_t)n * ((K + 7) / 8) + k0 / 8]);
        if (!w.g_idx) {
            const int g = k0 / w.group;
            const int z = w.qzeros ? (int)((__ldg(&w.qzeros[(size_t)(n / 8) * G + g]) >> (4 * (n % 8))) & 15) : 8;
            const float sc = scale16(w, (size_t)n * G + g), zm = ZM(z);
#pragma unroll
            for (int j = 0; j < 8; j++) out[j] = code_minus((word >> (4 * j)) & 15, zm) * sc;
            return;
        }
#pragma unroll
        for (int j = 0; j < 8; j++) {
            const int g = w.g_idx[k0 + j];
            const uint32_t z = w.qzeros ? (__ldg(&w.qzeros[(size_t)(n / 8) * G + g]) >> (4 * (n % 8))) & 15 : 8;
            out[j] = (float)((int)((word >> (4 * j)) & 15) - (int)z) * scale16(w, (size_t)n * G + g);
        }
    } else if (KIND == Q_FP8_W8A8) { /* the codes alone: scales apply per segment */
        const uint2 b = __ldg((const uint2 *)(w.codes + (size_t)n * K + k0));
#pragma unroll
        for (int j = 0; j < 8; j++) out[j] = e4m3_to_f32(((j < 4 ? b.x : b.y) >> (8 * (j % 4))) & 0xff);
    } else if (KIND == RA_Q_FP8) {
        const uint2 b = __ldg((const uint2 *)(w.codes + (size_t)n * K + k0));
        const float s = __ldg(&w.fscales[(size_t)(n / w.block_rows) * w.scale_cols + k0 / w.block_cols]);
#pragma unroll
        for (int j = 0; j < 8; j++) out[j] = e4m3_to_f32(((j < 4 ? b.x : b.y) >> (8 * (j % 4))) & 0xff) * s;
    } else { /* NVFP4, MXFP4: two codes a byte, the even column in the low nibble */
        const uint32_t word = __ldg((const uint32_t *)(w.codes + (size_t)n * (K / 2) + k0 / 2));
        const int gs = KIND == RA_Q_NVFP4 ? 16 : 32;
        const uint32_t sb = __ldg(&w.bscales[(size_t)n * (K / gs) + k0 / gs]);
        /* NVFP4: e4m3(s) / global, rounded once, as ra_nvfp4_block_scale */
        const float s = KIND == RA_Q_NVFP4 ? __fdiv_rn(e4m3_to_f32(sb), w.global_scale) : e8m0_to_f32(sb);
#pragma unroll
        for (int j = 0; j < 8; j++) out[j] = e2m1_to_f32((word >> (4 * j)) & 15) * s;
    }
}

/* ---- the product ------------------------------------------------------------ */

template <int KIND, int MT>
static __global__ void __launch_bounds__(Q_THREADS) qgemm(ra_qgemm_args a, int slice_len)
{
    __shared__ float xs[MT][Q_TILE];
    const ra_qweight &w = a.w;
    const int n = blockIdx.x * Q_THREADS + threadIdx.x, s = blockIdx.y, K = w.k;
    const int k_begin = s * slice_len, k_end = min(K, k_begin + slice_len);
    for (int t0 = 0; t0 < a.m; t0 += MT) {
        const int nt = min(MT, a.m - t0);
        float acc[MT], seg[MT]; /* seg: the running sum of the current scale segment (W8A8), else all of it */
#pragma unroll
        for (int t = 0; t < MT; t++) acc[t] = seg[t] = 0.0f;
        for (int kt = k_begin; kt < k_end; kt += Q_TILE) {
            const int len = min(Q_TILE, k_end - kt);
            __syncthreads();
            for (int i = threadIdx.x; i < MT * Q_TILE; i += Q_THREADS) {
                const int t = i / Q_TILE, c = i % Q_TILE;
                xs[t][c] = t < nt && c < len ? a.x[(size_t)(t0 + t) * K + kt + c] : 0.0f;
            }
            __syncthreads();
            if (n >= w.n) continue;
#pragma unroll 4
            for (int c = 0; c < len; c += 8) {
                float wv[8];
                decode8<KIND>(w, n, kt + c, wv);
#pragma unroll
                for (int t = 0; t < MT; t++)
#pragma unroll
                    for (int j = 0; j < 8; j++) seg[t] = __fmaf_rn(wv[j], xs[t][c + j], seg[t]);
                const int k = kt + c, kend = k + 8;
                if (KIND == Q_FP8_W8A8 && (kend % w.seg == 0 || kend == k_end)) { /* (sum * s_x) * s_w, as the CPU */
                    const float sw = __ldg(&w.fscales[(size_t)(n / w.block_rows) * w.scale_cols + k / w.block_cols]);
                    const int groups = w.act == RA_QACT_GROUP ? (K + 127) / 128 : 1, g = groups > 1 ? k / 128 : 0;
#pragma unroll
                    for (int t = 0; t < MT; t++) {
                        const float sx = t < nt ? a.xscale[(size_t)(t0 + t) * groups + g] : 0.0f;
                        acc[t] = acc[t] + (seg[t] * sx) * sw;
                        seg[t] = 0.0f;
                    }
                }
            }
        }
        if (n >= w.n) continue;
        if (KIND != Q_FP8_W8A8)
            for (int t = 0; t < MT; t++) acc[t] = seg[t];
        for (int t = 0; t < nt; t++) {
            const size_t at = (size_t)(t0 + t) * a.ldy + n;
            if (a.atomic) atomicAdd(&a.y[at], acc[t]);
            else if (gridDim.y == 1) a.y[at] = a.epilogue == RA_EPI_ADD ? a.y[at] + acc[t] : acc[t];
            else a.ws[ws_counters(w.n) + ((size_t)s * a.m + t0 + t) * w.n + n] = acc[t];
        }
    }
}

/* ---- GPTQ: 4 features a thread, 8 warps a slice --------------------------- */

#define G_WARPS 8
#define G_FEAT 128 /* features a block: 32 lanes x 4 */
#define G_TILE 1024 /* columns of x staged at a time (= G_WARPS x G_FEAT: the sums reuse the space) */

template <int MT>
static __global__ void __launch_bounds__(G_WARPS * RA_WARP) qgemm_gptq(ra_qgemm_args a, int slice_len)
{
    /* x's tile (MT x G_TILE), then the warps' sums (G_WARPS x MT x G_FEAT): the same size */
    __shared__ float sm[MT * G_TILE];
    const ra_qweight &w = a.w;
    const int lane = threadIdx.x % RA_WARP, warp = threadIdx.x / RA_WARP;
    const int n0 = blockIdx.x * G_FEAT + 4 * lane, s = blockIdx.y, N = w.n, K = w.k;
    const bool live = n0 < N; /* N is a multiple of 8, so 4 features are all in or all out */
    const int k_begin = s * slice_len, k_end = min(K, k_begin + slice_len);
    for (int t0 = 0; t0 < a.m; t0 += MT) {
        const int nt = min(MT, a.m - t0);
        float acc[MT][4];
#pragma unroll
        for (int t = 0; t < MT; t++)
#pragma unroll
            for (int f = 0; f < 4; f++) acc[t][f] = 0.0f;
        for (int kt = k_begin; kt < k_end; kt += G_TILE) {
            const int len = min(G_TILE, k_end - kt);
            __syncthreads();
            for (int i = threadIdx.x; i < MT * G_TILE; i += G_WARPS * RA_WARP) {
                const int t = i / G_TILE, c = i % G_TILE;
                sm[i] = t < nt && c < len ? a.x[(size_t)(t0 + t) * K + kt + c] : 0.0f;
            }
            __syncthreads();
            if (!live) continue;
#pragma unroll 4
            for (int c = 8 * warp; c < len; c += 8 * G_WARPS) {
                const int k0 = kt + c;
                const uint4 q = __ldg((const uint4 *)&w.qweight[(size_t)(k0 / 8) * N + n0]);
                const uint32_t qf[4] = {q.x, q.y, q.z, q.w};
                float wv[4][8];
                if (!w.g_idx) { /* groups are multiples of 8 columns: one zero and scale for the 8 */
                    const int g = k0 / w.group;
                    const uint32_t zw = __ldg(&w.qzeros[(size_t)g * (N / 8) + n0 / 8]) >> (4 * (n0 % 8));
#pragma unroll
                    for (int f = 0; f < 4; f++) {
                        const float zm = ZM(((zw >> (4 * f)) & 15) + w.zero_offset);
                        const float sc = scale16(w, (size_t)g * N + n0 + f);
#pragma unroll
                        for (int j = 0; j < 8; j++) wv[f][j] = code_minus((qf[f] >> (4 * j)) & 15, zm) * sc;
                    }
                } else { /* act-order: g_idx looked up per column */
#pragma unroll
                    for (int j = 0; j < 8; j++) {
                        const int g = w.g_idx[k0 + j];
                        const uint32_t zw = __ldg(&w.qzeros[(size_t)g * (N / 8) + n0 / 8]) >> (4 * (n0 % 8));
#pragma unroll
                        for (int f = 0; f < 4; f++) {
                            const int z = (int)((zw >> (4 * f)) & 15) + (int)w.zero_offset;
                            wv[f][j] = (float)((int)((qf[f] >> (4 * j)) & 15) - z) * scale16(w, (size_t)g * N + n0 + f);
                        }
                    }
                }
#pragma unroll
                for (int t = 0; t < MT; t++)
#pragma unroll
                    for (int f = 0; f < 4; f++)
#pragma unroll
                        for (int j = 0; j < 8; j++) acc[t][f] = __fmaf_rn(wv[f][j], sm[t * G_TILE + c + j], acc[t][f]);
            }
        }
        __syncthreads(); /* x's tile is read: its space takes the warps' sums */
        if (live)
#pragma unroll
            for (int t = 0; t < MT; t++)
#pragma unroll
                for (int f = 0; f < 4; f++) sm[(warp * MT + t) * G_FEAT + 4 * lane + f] = acc[t][f];
        __syncthreads();
        /* added in warp order, one feature a thread (the first 4 warps) */
        const int i = threadIdx.x, n = blockIdx.x * G_FEAT + i;
        if (i < G_FEAT && n < N)
            for (int t = 0; t < nt; t++) {
                float v = sm[t * G_FEAT + i];
                for (int u = 1; u < G_WARPS; u++) v += sm[(u * MT + t) * G_FEAT + i];
                put_result(a, s, t0 + t, n, v);
            }
    }
    finish_slices(a, blockIdx.x * G_FEAT, (blockIdx.x + 1) * G_FEAT);
}

/* ---- AWQ: 8 features a thread, 4 warps a slice ---------------------------- */

#define A_WARPS 4
#define A_FEAT 256 /* features a block: 32 lanes x the 8 of one word */

/* A word holds 8 features of one column k, so a lane takes one word column
 * (8 features) and warp w the columns w, w + 4, ... of each tile; the warps'
 * sums are added in warp order. x's tile (MT x G_TILE) and the sums
 * (A_WARPS x MT x A_FEAT) share the space. */
template <int MT>
static __global__ void __launch_bounds__(A_WARPS * RA_WARP) qgemm_awq(ra_qgemm_args a, int slice_len)
{
    __shared__ float sm[MT * G_TILE];
    const ra_qweight &w = a.w;
    const int lane = threadIdx.x % RA_WARP, warp = threadIdx.x / RA_WARP;
    const int col = blockIdx.x * RA_WARP + lane, s = blockIdx.y, N = w.n, K = w.k, words = N / 8;
    const bool live = col < words;
    const int k_begin = s * slice_len, k_end = min(K, k_begin + slice_len);
    for (int t0 = 0; t0 < a.m; t0 += MT) {
        const int nt = min(MT, a.m - t0);
        float acc[MT][8];
#pragma unroll
        for (int t = 0; t < MT; t++)
#pragma unroll
            for (int j = 0; j < 8; j++) acc[t][j] = 0.0f;
        int g_have = -1;
        float zm[8], sc[8];
        for (int kt = k_begin; kt < k_end; kt += G_TILE) {
            const int len = min(G_TILE, k_end - kt);
            __syncthreads();
            for (int i = threadIdx.x; i < MT * G_TILE; i += A_WARPS * RA_WARP) {
                const int t = i / G_TILE, c = i % G_TILE;
                sm[i] = t < nt && c < len ? a.x[(size_t)(t0 + t) * K + kt + c] : 0.0f;
            }
            __syncthreads();
            if (!live) continue;
#pragma unroll 8
            for (int c = warp; c < len; c += A_WARPS) {
                const int k = kt + c, g = k / w.group;
                if (g != g_have) { /* the group's zero points and scales of the 8 features */
                    g_have = g;
                    const uint32_t zw = __ldg(&w.qzeros[(size_t)g * words + col]);
#pragma unroll
                    for (int j = 0; j < 8; j++) {
                        zm[j] = ZM((zw >> (4 * awq_field(j))) & 15);
                        sc[j] = scale16(w, (size_t)g * N + 8 * col + j);
                    }
                }
                const uint32_t q = __ldg(&w.qweight[(size_t)k * words + col]);
#pragma unroll
                for (int j = 0; j < 8; j++) {
                    const float wv = code_minus((q >> (4 * awq_field(j))) & 15, zm[j]) * sc[j];
#pragma unroll
                    for (int t = 0; t < MT; t++) acc[t][j] = __fmaf_rn(wv, sm[t * G_TILE + c], acc[t][j]);
                }
            }
        }
        __syncthreads(); /* x's tile is read: its space takes the warps' sums */
        if (live)
#pragma unroll
            for (int t = 0; t < MT; t++)
#pragma unroll
                for (int j = 0; j < 8; j++) sm[(warp * MT + t) * A_FEAT + 8 * lane + j] = acc[t][j];
        __syncthreads();
        /* added in warp order, 2 features a thread */
        for (int i = threadIdx.x; i < A_FEAT; i += A_WARPS * RA_WARP) {
            const int n = blockIdx.x * A_FEAT + i;
            if (n >= N) continue;
            for (int t = 0; t < nt; t++) {
                float v = sm[t * A_FEAT + i];
                for (int u = 1; u < A_WARPS; u++) v += sm[(u * MT + t) * A_FEAT + i];
                put_result(a, s, t0 + t, n, v);
            }
        }
    }
    finish_slices(a, blockIdx.x * A_FEAT, (blockIdx.x + 1) * A_FEAT);
}

/* ---- K-major layouts: a warp a feature ------------------------------------- */

/* W4A16, FP8 (weight-only), NVFP4 and MXFP4 keep a feature's K columns
 * together, so a warp takes one feature and its lanes take 8-column units
 * side by side (lane l: units l, l + 32, ... of the slice), each a chain of
 * fmaf in that order; the lanes' sums meet in a fixed butterfly (warp_sum).
 * Loads are coalesced (a warp reads 32 consecutive units of one row). */
#define R_WARPS 8
#define R_TARGET_WARPS 4224 /* 132 SMs x 32 warps */

/* The K-major layouts run a warp a feature where x's rows are 16-byte
 * aligned (K a multiple of 4: float4 loads); W8A8 keeps the generic kernel
 * (its scaled segments follow one chain a feature). */
static __host__ __device__ bool rows_kernel(int kind, int k)
{
    return (kind == RA_Q_W4A16 || kind == RA_Q_FP8 || kind == RA_Q_NVFP4 || kind == RA_Q_MXFP4) && k % 4 == 0;
}


template <int KIND, int MT>
static __global__ void __launch_bounds__(R_WARPS * RA_WARP) qgemm_rows(ra_qgemm_args a, int slice_len)
{
    const ra_qweight &w = a.w;
    const int lane = threadIdx.x % RA_WARP, n = blockIdx.x * R_WARPS + threadIdx.x / RA_WARP, s = blockIdx.y, K = w.k;
    const int k_begin = s * slice_len, k_end = min(K, k_begin + slice_len);
    for (int t0 = 0; t0 < a.m && n < w.n; t0 += MT) {
        const int nt = min(MT, a.m - t0);
        float acc[MT];
#pragma unroll
        for (int t = 0; t < MT; t++) acc[t] = 0.0f;
#pragma unroll 4
        for (int k0 = k_begin + 8 * lane; k0 < k_end; k0 += 8 * RA_WARP) {
            float wv[8];
            decode8<KIND>(w, n, k0, wv);
#pragma unroll
            for (int t = 0; t < MT; t++) {
                const float4 *xp = (const float4 *)(a.x + (size_t)(t0 + (t < nt ? t : 0)) * K + k0);
                const float4 x0 = __ldg(xp), x1 = __ldg(xp + 1);
                const float xv[8] = {x0.x, x0.y, x0.z, x0.w, x1.x, x1.y, x1.z, x1.w};
#pragma unroll
                for (int j = 0; j < 8; j++) acc[t] = __fmaf_rn(wv[j], xv[j], acc[t]);
            }
        }
#pragma unroll
        for (int t = 0; t < MT; t++) acc[t] = warp_sum(acc[t]);
        if (lane == 0)
            for (int t = 0; t < nt; t++) put_result(a, s, t0 + t, n, acc[t]);
    }
    finish_slices(a, blockIdx.x * R_WARPS, (blockIdx.x + 1) * R_WARPS);
}

/* y = sum of the slices in slice order (+ y for ADD). */
static __global__ void combine(ra_qgemm_args a, int slices)
{
    const size_t mn = (size_t)a.m * a.w.n;
    const float *part = a.ws + ws_counters(a.w.n);
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < mn; i += (size_t)gridDim.x * blockDim.x) {
        float v = part[i];
        for (int s = 1; s < slices; s++) v += part[(size_t)s * mn + i];
        float *y = a.y + (i / a.w.n) * a.ldy + i % a.w.n;
        *y = a.epilogue == RA_EPI_ADD ? *y + v : v;
    }
}

template <int KIND>
static cudaError_t launch_kind(const ra_qgemm_args &a, int mt, dim3 grid, int len, cudaStream_t stream)
{
    if (KIND == RA_Q_GPTQ) {
        grid.x = (a.w.n + G_FEAT - 1) / G_FEAT;
        const int threads = G_WARPS * RA_WARP;
        switch (mt) {
        case 1: qgemm_gptq<1><<<grid, threads, 0, stream>>>(a, len); break;
        case 2: qgemm_gptq<2><<<grid, threads, 0, stream>>>(a, len); break;
        case 4: qgemm_gptq<4><<<grid, threads, 0, stream>>>(a, len); break;
        default: qgemm_gptq<8><<<grid, threads, 0, stream>>>(a, len); break;
        }
        return cudaGetLastError();
    }
    if (rows_kernel(KIND, a.w.k)) {
        grid.x = (a.w.n + R_WARPS - 1) / R_WARPS;
        const int threads = R_WARPS * RA_WARP;
        switch (mt) {
        case 1: qgemm_rows<KIND, 1><<<grid, threads, 0, stream>>>(a, len); break;
        case 2: qgemm_rows<KIND, 2><<<grid, threads, 0, stream>>>(a, len); break;
        case 4: qgemm_rows<KIND, 4><<<grid, threads, 0, stream>>>(a, len); break;
        default: qgemm_rows<KIND, 8><<<grid, threads, 0, stream>>>(a, len); break;
        }
        return cudaGetLastError();
    }
    if (KIND == RA_Q_AWQ) {
        grid.x = (a.w.n + A_FEAT - 1) / A_FEAT;
        const int threads = A_WARPS * RA_WARP;
        switch (mt) {
        case 1: qgemm_awq<1><<<grid, threads, 0, stream>>>(a, len); break;
        case 2: qgemm_awq<2><<<grid, threads, 0, stream>>>(a, len); break;
        case 4: qgemm_awq<4><<<grid, threads, 0, stream>>>(a, len); break;
        default: qgemm_awq<8><<<grid, threads, 0, stream>>>(a, len); break;
        }
        return cudaGetLastError();
    }
    switch (mt) {
    case 1: qgemm<KIND, 1><<<grid, Q_THREADS, 0, stream>>>(a, len); break;
    case 2: qgemm<KIND, 2><<<grid, Q_THREADS, 0, stream>>>(a, len); break;
    case 4: qgemm<KIND, 4><<<grid, Q_THREADS, 0, stream>>>(a, len); break;
    default: qgemm<KIND, 8><<<grid, Q_THREADS, 0, stream>>>(a, len); break;
    }
    return cudaGetLastError();
}

static int slice_len(int kind, int n, int k)
{
    if (kind == RA_Q_MARLIN) { /* 64 columns a block; about 4 blocks an SM, slices of at least 256 rows */
        const int blocks_n = n / 64, max_s = k / 256 > 1 ? k / 256 : 1;
        int s = (528 + blocks_n - 1) / blocks_n;
        s = s < max_s ? s : max_s;
        const int len = (k + s - 1) / s;
        return (len + 63) / 64 * 64;
    }
    if (rows_kernel(kind, k)) { /* slices only where there are too few features to fill the GPU */
        int s = (R_TARGET_WARPS + n - 1) / n;
        const int max_s = k / 1024 > 1 ? k / 1024 : 1; /* at least 4 units a lane */
        s = s < max_s ? s : max_s;
        const int len = (k + s - 1) / s;
        return (len + 8 * RA_WARP - 1) / (8 * RA_WARP) * (8 * RA_WARP); /* whole rounds of the 32 lanes */
    }
    if (kind == RA_Q_GPTQ || kind == RA_Q_AWQ) { /* 4 blocks of 8 warps an SM (GPTQ), 8 of 4 (AWQ) */
        const bool gptq = kind == RA_Q_GPTQ;
        const int feat = gptq ? G_FEAT : A_FEAT, blocks_n = (n + feat - 1) / feat, min_len = gptq ? 256 : 128;
        int s = ((gptq ? 528 : 1056) + blocks_n - 1) / blocks_n;
        const int max_s = k / min_len > 1 ? k / min_len : 1;
        s = s < max_s ? s : max_s;
        const int len = (k + s - 1) / s;
        return (len + 8 * G_WARPS - 1) / (8 * G_WARPS) * (8 * G_WARPS); /* whole rounds of the 8 warps */
    }
    const int blocks_n = (n + Q_THREADS - 1) / Q_THREADS;
    int s = (target_blocks(kind) + blocks_n - 1) / blocks_n;
    const int max_s = k / Q_TILE > 1 ? k / Q_TILE : 1; /* at least a tile a slice */
    s = s < max_s ? s : max_s;
    const int len = (k + s - 1) / s;
    return (len + Q_TILE - 1) / Q_TILE * Q_TILE;
}

/* @atomic splits K at least 8 ways, as the field's split-K kernels do
 * (AutoAWQ's GEMM: 8), so the sums it adds in finishing order are there even
 * where @ra needs one slice; W8A8 keeps @ra's slices (its scaled segments). */
static int atomic_slice_len(int kind, int n, int k, int act)
{
    const int len = slice_len(kind, n, k);
    if (act) return len;
    const int unit = kind == RA_Q_GPTQ || kind == RA_Q_MARLIN ? 64 : rows_kernel(kind, k) ? 8 * RA_WARP : 8;
    const int len8 = ((k + 7) / 8 + unit - 1) / unit * unit;
    return len8 < len ? len8 : len;
}

extern "C" int ra_qgemm_slices_atomic(ra_qkind kind, int n, int k, int act)
{
    const int len = atomic_slice_len(kind, n, k, act);
    return (k + len - 1) / len;
}

extern "C" int ra_qgemm_slices(ra_qkind kind, int n, int k)
{
    const int len = slice_len(kind, n, k);
    return (k + len - 1) / len;
}

extern "C" size_t ra_qgemm_workspace(ra_qkind kind, int n, int k, int max_m)
{
    const int s = ra_qgemm_slices(kind, n, k);
    return s > 1 ? ws_counters(n) + (size_t)s * max_m * n : 0;
}

extern "C" cudaError_t ra_k_qgemm(const ra_qgemm_args *args, cudaStream_t stream)
{
    ra_qgemm_args copy = *args;
    ra_qgemm_args *a = &copy;
    if (a->ldy == 0) a->ldy = a->w.n;
    const ra_qweight &w = a->w;
    if (a->m <= 0 || w.n <= 0 || w.k <= 0 || w.k % 8 || w.n % 8 ||
        (a->epilogue != RA_EPI_STORE && a->epilogue != RA_EPI_ADD))
        return cudaErrorInvalidValue;
    if ((w.kind == RA_Q_NVFP4 && w.k % 16) || (w.kind == RA_Q_MXFP4 && w.k % 32)) return cudaErrorInvalidValue;
    if (w.kind <= RA_Q_W4A16 && !w.g_idx && (w.group <= 0 || w.group % 8)) return cudaErrorInvalidValue;
    if (w.kind == RA_Q_MARLIN && (w.n % 64 || w.k % 16 || w.group <= 0 || w.k % w.group || (w.group % 16 && w.group != w.k)))
        return cudaErrorInvalidValue;
    if (w.act && (w.kind != RA_Q_FP8 || !a->xscale || w.seg <= 0 || w.seg % 8)) return cudaErrorInvalidValue;
    const int len = a->atomic ? atomic_slice_len(w.kind, w.n, w.k, w.act) : slice_len(w.kind, w.n, w.k);
    const int slices = (w.k + len - 1) / len;
    if (slices > 1 && !a->atomic && !a->ws) return cudaErrorInvalidValue;
    if (a->ldy < w.n) return cudaErrorInvalidValue;
    if (a->atomic && a->epilogue == RA_EPI_STORE) {
        cudaError_t e = cudaMemset2DAsync(a->y, (size_t)a->ldy * sizeof(float), 0, (size_t)w.n * sizeof(float), a->m, stream);
        if (e != cudaSuccess) return e;
    }
    const dim3 grid((w.n + Q_THREADS - 1) / Q_THREADS, slices);
    const bool mma8 = w.kind == RA_Q_FP8 && w.act && fp8_mma_supported(); /* W8A8 on the FP8 tensor cores */
    /* Tokens a pass takes: fewer than 8 only when the batch is smaller, and a
     * token's sums are the same chain of fmaf whatever the pass holds. */
    const int mt = a->m >= 8 ? 8 : a->m >= 4 ? 4 : a->m >= 2 ? 2 : 1;
    cudaError_t e = cudaSuccess;
    switch (w.kind) {
    case RA_Q_GPTQ: e = launch_kind<RA_Q_GPTQ>(*a, mt, grid, len, stream); break;
    case RA_Q_AWQ: e = launch_kind<RA_Q_AWQ>(*a, mt, grid, len, stream); break;
    case RA_Q_W4A16: e = launch_kind<RA_Q_W4A16>(*a, mt, grid, len, stream); break;
    case RA_Q_FP8:
        e = mma8    ? fp8_mma_launch(*a, len, stream)
            : w.act ? launch_kind<Q_FP8_W8A8>(*a, mt, grid, len, stream)
                    : launch_kind<RA_Q_FP8>(*a, mt, grid, len, stream);
        break;
    case RA_Q_NVFP4: e = launch_kind<RA_Q_NVFP4>(*a, mt, grid, len, stream); break;
    case RA_Q_MXFP4: e = launch_kind<RA_Q_MXFP4>(*a, mt, grid, len, stream); break;
    case RA_Q_MARLIN: e = marlin_launch(*a, len, stream); break;
    default: return cudaErrorInvalidValue;
    }
    if (e != cudaSuccess) return e;
    const bool own_sums = w.kind == RA_Q_GPTQ || w.kind == RA_Q_AWQ || w.kind == RA_Q_MARLIN || mma8 ||
                          (rows_kernel(w.kind, w.k) && !w.act);
    if (slices > 1 && !a->atomic && !own_sums) { /* the first kernel's slices: added by a second one */
        const size_t mn = (size_t)a->m * w.n;
        const int blocks = (int)((mn + 255) / 256 < 1024 ? (mn + 255) / 256 : 1024);
        combine<<<blocks, 256, 0, stream>>>(*a, slices);
    }
    return cudaGetLastError();
}

/* ---- FP8 activations (W8A8) -------------------------------------------------- */

/* f32 -> E4M3 saturating, the CPU's encoder (formats/minifloat.c) step for
 * step: scale to units of the grid spacing in double, round to nearest even. */
__device__ uint32_t f32_to_e4m3_sat(float x)
{
    const uint32_t sign = signbit(x) ? 0x80u : 0u;
    if (isnan(x)) return sign | 0x7f;
    if (isinf(x)) return sign | 0x7e;
    const float a = fabsf(x);
    if (a == 0.0f) return sign;
    int e;
    frexpf(a, &e);
    e -= 1;
    if (e < -6) e = -6;
    double units = rint(ldexp((double)a, 3 - e));
    if (units >= 16.0) {
        units /= 2;
        e++;
    }
    if (ldexp(units, e - 3) > 448.0) return sign | 0x7e;
    const uint32_t n = (uint32_t)units;
    return n < 8 ? sign | n : sign | ((uint32_t)(e + 7) << 3) | (n - 8);
}

/* One block per (group, token): the group's largest magnitude (a maximum: the
 * same whatever the order), the scale, then each value's code, decoded. */
static __global__ void fp8_act(const float *x, float *xq, float *xscale, int k, int act)
{
    __shared__ float warp_max[32];
    const int g = blockIdx.x, t = blockIdx.y, groups = gridDim.x;
    const int len = act == RA_QACT_GROUP ? 128 : k, k0 = g * len, k1 = min(k, k0 + len);
    const float *v = x + (size_t)t * k;
    float amax = act == RA_QACT_GROUP ? 1e-10f : 0.0f; /* the group kernel seeds its max with eps */
    for (int i = k0 + threadIdx.x; i < k1; i += blockDim.x) amax = fabsf(v[i]) > amax ? fabsf(v[i]) : amax;
    for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
    if (threadIdx.x % 32 == 0) warp_max[threadIdx.x / 32] = amax;
    __syncthreads();
    amax = warp_max[0];
    for (int i = 1; i < (int)blockDim.x / 32; i++) amax = fmaxf(amax, warp_max[i]);
    float sc = amax / 448.0f;
    if (act != RA_QACT_GROUP && sc < 1.0f / (448.0f * 512.0f)) sc = 1.0f / (448.0f * 512.0f);
    if (threadIdx.x == 0) xscale[(size_t)t * groups + g] = sc;
    for (int i = k0 + threadIdx.x; i < k1; i += blockDim.x) xq[(size_t)t * k + i] = e4m3_to_f32(f32_to_e4m3_sat(v[i] / sc));
}

static __global__ void fp8_encode(const float *xq, uint8_t *codes, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        codes[i] = (uint8_t)f32_to_e4m3_sat(xq[i]);
}

extern "C" cudaError_t ra_k_fp8_encode(const float *xq, uint8_t *codes, size_t n, cudaStream_t stream)
{
    if (n == 0) return cudaSuccess;
    const size_t blocks = (n + 255) / 256 < 1024 ? (n + 255) / 256 : 1024;
    fp8_encode<<<(unsigned)blocks, 256, 0, stream>>>(xq, codes, n);
    return cudaGetLastError();
}

static __global__ void scales_by_group(const float *xscale, float *out, int m, int groups)
{
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < m * groups) out[(size_t)(i % groups) * m + i / groups] = xscale[i];
}

extern "C" cudaError_t ra_k_fp8_scales_by_group(const float *xscale, float *out, int m, int groups, cudaStream_t stream)
{
    if (m <= 0 || groups <= 0) return cudaSuccess;
    scales_by_group<<<(m * groups + 255) / 256, 256, 0, stream>>>(xscale, out, m, groups);
    return cudaGetLastError();
}

extern "C" cudaError_t ra_k_fp8_quantize_act(const float *x, float *xq, float *xscale, int m, int k, int act,
                                             cudaStream_t stream)
{
    if (m <= 0) return cudaSuccess;
    if (k <= 0 || m > 65535 || (act != RA_QACT_TOKEN && act != RA_QACT_GROUP)) return cudaErrorInvalidValue;
    const int groups = act == RA_QACT_GROUP ? (k + 127) / 128 : 1;
    fp8_act<<<dim3(groups, m), 256, 0, stream>>>(x, xq, xscale, k, act);
    return cudaGetLastError();
}
