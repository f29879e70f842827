/* RMSNorm, and RoPE with the KV-cache store. One block per row; every sum
 * runs in a fixed order that depends on the row length alone. */
#include "common.cuh"

#define NORM_THREADS 256

static __global__ void __launch_bounds__(NORM_THREADS)
    rmsnorm(ra_dtype dt, const float *x, const int32_t *rows, const float *g, void *out, int dim, float eps)
{
    __shared__ double scratch[NORM_THREADS / RA_WARP];
    pdl_wait();
    pdl_trigger();
    const float *xr = x + (size_t)(rows ? rows[blockIdx.x] : (int32_t)blockIdx.x) * dim;
    double ss = 0;
    for (int d = threadIdx.x; d < dim; d += NORM_THREADS) ss += (double)xr[d] * (double)xr[d];
    ss = block_sum_d(ss, scratch, NORM_THREADS / RA_WARP);
    const float scale = (float)(1.0 / sqrt(ss / dim + (double)eps));
    for (int d = threadIdx.x; d < dim; d += NORM_THREADS)
        store_act(out, (size_t)blockIdx.x * dim + d, (xr[d] * scale) * g[d], dt);
}

extern "C" cudaError_t ra_k_rmsnorm(ra_dtype dtype, const float *x, const int32_t *rows, const float *g, void *out, int n,
                                    int dim, float eps, cudaStream_t stream)
{
    if (n <= 0) return cudaSuccess;
    return ra_launch(rmsnorm, dim3(n), dim3(NORM_THREADS), stream, dtype, x, rows, g, out, dim, eps);
}

/* Rotate-half RoPE, exactly as the CPU computes it: a*c - b*s and b*c + a*s,
 * each product rounded (no FMA). */
static __global__ void rope_store(const float *qkv, ra_rope_args r)
{
    pdl_wait();
    pdl_trigger();
    const int i = blockIdx.x, hd = r.head_dim, half = hd / 2, q_dim = r.n_heads * hd, kv_dim = r.n_kv_heads * hd;
    const float *row = qkv + (size_t)i * (q_dim + 2 * kv_dim);
    const int pos = r.kv.pos[i];
    const float *cs = r.cos_t + (size_t)pos * half, *sn = r.sin_t + (size_t)pos * half;
    const size_t at = ((size_t)r.layer * r.kv.pool_len + r.kv.start[i] + pos) * kv_dim;
    for (int p = threadIdx.x; p < (r.n_heads + r.n_kv_heads) * half; p += blockDim.x) {
        const int h = p / half, j = p % half;
        const float *src = h < r.n_heads ? row + h * hd : row + q_dim + (h - r.n_heads) * hd;
        float *dst = h < r.n_heads ? r.q_out + (size_t)i * q_dim + h * hd : r.kv.k + at + (h - r.n_heads) * hd;
        const float a = src[j], b = src[j + half];
        dst[j] = a * cs[j] - b * sn[j];
        dst[j + half] = b * cs[j] + a * sn[j];
    }
    for (int d = threadIdx.x; d < kv_dim; d += blockDim.x) r.kv.v[at + d] = row[q_dim + kv_dim + d];
}

extern "C" cudaError_t ra_k_rope_store(const float *qkv, const ra_rope_args *r, int n, cudaStream_t stream)
{
    if (n <= 0) return cudaSuccess;
    if (r->head_dim % 2) return cudaErrorInvalidValue;
    return ra_launch(rope_store, dim3(n), dim3(128), stream, qkv, *r);
}
