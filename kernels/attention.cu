/* Causal grouped-query attention, one block per (head, row). The row's
 * positions 0..pos go in chunks of 32 (a position per lane) dealt to the 4
 * warps round-robin; each warp keeps an online softmax (running max, sum and
 * weighted V) over its chunks in order, and the warps' states are merged in
 * warp order. The split is a function of the position alone, so a row gives
 * the same bits in a prefill of its whole prompt, in a one-token decode step
 * and in any batch. */
#include <math.h>

#include "common.cuh"

#define ATT_WARPS 4
#define ATT_THREADS (ATT_WARPS * RA_WARP)
#define ATT_MAX_HD 256
#define ATT_V_BATCH 8 /* value rows loaded before they are used: loads in flight */

/* PER: head dimensions per lane (head_dim <= 32 * PER); only the registers
 * depend on it. */
template <int PER>
static __global__ void __launch_bounds__(ATT_THREADS)
    attention(ra_dtype dt, const float *q, ra_kv_layout kv, int layer, void *out, int n_heads, int n_kv, int hd)
{
    __shared__ float qs[ATT_MAX_HD];
    __shared__ float wm[ATT_WARPS], wl[ATT_WARPS];
    __shared__ float wacc[ATT_WARPS][ATT_MAX_HD];
    pdl_wait();
    pdl_trigger();
    const int h = blockIdx.x, i = blockIdx.y, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int kv_dim = n_kv * hd, kvh = h / (n_heads / n_kv), len = kv.pos[i] + 1;
    const size_t base = ((size_t)layer * kv.pool_len + kv.start[i]) * kv_dim + (size_t)kvh * hd;
    const float *K = kv.k + base, *V = kv.v + base;
    for (int d = threadIdx.x; d < hd; d += ATT_THREADS) qs[d] = q[((size_t)i * n_heads + h) * hd + d];
    __syncthreads();

    const float scale = (float)(1.0 / sqrt((double)hd));
    const bool vec = (hd & 3) == 0 && (kv_dim & 3) == 0;
    float m = -INFINITY, l = 0.f, acc[PER] = {};
    for (int c = warp; c * RA_WARP < len; c += ATT_WARPS) {
        const int p = c * RA_WARP + lane;
        float s = -INFINITY;
        if (p < len) {
            const float *kr = K + (size_t)p * kv_dim;
            float dot = 0.f;
            if (vec) {
#pragma unroll 8
                for (int d = 0; d < hd; d += 4) {
                    const float4 k4 = *(const float4 *)(kr + d);
                    dot = fmaf(qs[d], k4.x, dot);
                    dot = fmaf(qs[d + 1], k4.y, dot);
                    dot = fmaf(qs[d + 2], k4.z, dot);
                    dot = fmaf(qs[d + 3], k4.w, dot);
                }
            } else {
                for (int d = 0; d < hd; d++) dot = fmaf(qs[d], kr[d], dot);
            }
            s = dot * scale;
        }
        const float mn = fmaxf(m, warp_max(s)); /* lane 0's position is always in range: mn is finite */
        const float alpha = expf(m - mn), e = p < len ? expf(s - mn) : 0.f;
        l = l * alpha + warp_sum(e);
#pragma unroll
        for (int j = 0; j < PER; j++) acc[j] *= alpha;
        const int npos = min(RA_WARP, len - c * RA_WARP);
        for (int j0 = 0; j0 < npos; j0 += ATT_V_BATCH) { /* positions in order; loads first, then the sums */
            float vv[ATT_V_BATCH][PER];
#pragma unroll
            for (int u = 0; u < ATT_V_BATCH; u++) {
                const float *vr = V + (size_t)(c * RA_WARP + j0 + u) * kv_dim;
#pragma unroll
                for (int j = 0; j < PER; j++) {
                    const int d = lane + RA_WARP * j;
                    vv[u][j] = j0 + u < npos && d < hd ? vr[d] : 0.f;
                }
            }
#pragma unroll
            for (int u = 0; u < ATT_V_BATCH; u++) {
                const float ej = __shfl_sync(0xffffffffu, e, (j0 + u) & 31);
                if (j0 + u >= npos) break;
#pragma unroll
                for (int j = 0; j < PER; j++) acc[j] = fmaf(ej, vv[u][j], acc[j]);
            }
        }
        m = mn;
    }
    if (lane == 0) {
        wm[warp] = m;
        wl[warp] = l;
    }
#pragma unroll
    for (int j = 0; j < PER; j++) {
        const int d = lane + RA_WARP * j;
        if (d < hd) wacc[warp][d] = acc[j];
    }
    __syncthreads();
    float M = wm[0];
    for (int w = 1; w < ATT_WARPS; w++) M = fmaxf(M, wm[w]);
    for (int d = threadIdx.x; d < hd; d += ATT_THREADS) {
        float L = 0.f, A = 0.f;
        for (int w = 0; w < ATT_WARPS; w++) {
            const float f = expf(wm[w] - M); /* a warp without positions has -inf: weight 0 */
            L = L + wl[w] * f;
            A = A + wacc[w][d] * f;
        }
        store_act(out, ((size_t)i * n_heads + h) * hd + d, A / L, dt);
    }
}

extern "C" cudaError_t ra_k_attention(ra_dtype dtype, const float *q, const ra_kv_layout *kv, int layer, void *out, int n,
                                      int n_heads, int n_kv_heads, int head_dim, cudaStream_t stream)
{
    if (n <= 0) return cudaSuccess;
    if (head_dim > ATT_MAX_HD || n_kv_heads <= 0 || n_heads % n_kv_heads || n > 65535) return cudaErrorInvalidValue;
    const dim3 grid(n_heads, n), block(ATT_THREADS);
    if (head_dim <= 32) return ra_launch(attention<1>, grid, block, stream, dtype, q, *kv, layer, out, n_heads, n_kv_heads, head_dim);
    if (head_dim <= 64) return ra_launch(attention<2>, grid, block, stream, dtype, q, *kv, layer, out, n_heads, n_kv_heads, head_dim);
    if (head_dim <= 128) return ra_launch(attention<4>, grid, block, stream, dtype, q, *kv, layer, out, n_heads, n_kv_heads, head_dim);
    return ra_launch(attention<8>, grid, block, stream, dtype, q, *kv, layer, out, n_heads, n_kv_heads, head_dim);
}
