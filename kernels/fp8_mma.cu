/* FP8 W8A8 on the tensor cores (sm_89 and later): y = x . W^T with E4M3
 * weights [N][K] (the checkpoint's bytes) and E4M3 activations quantized per
 * token or per 128 columns (ra_k_fp8_quantize_act: the engine hands their
 * decoded values, which convert back to the same codes exactly), by
 * mma.sync m16n8k32 e4m3 with float32 accumulation.
 *
 * Products of two E4M3 values are exact in float32; the tensor core adds
 * them in its own order inside one mma. Each scaled segment (128 columns for
 * per-group activations or block weights, else the warp's whole range) gets
 * a fresh accumulator, then (segment sum * s_x) * s_w is added to the total,
 * the CPU's expression (formats/fp8.c).
 *
 * Order, fixed by N and K alone: a block takes 64 columns and one slice of
 * K; its 8 warps take contiguous eighths of the slice in steps of 32
 * columns; warps added in warp order, slices in slice order (qslices.cuh).
 * Inside a step a lane takes 8 consecutive columns, the first 4 as the mma's
 * k = 4q..4q+3 and the next 4 as k = 4q+16..4q+19, the same for x and W, so
 * the product is the dot product and every load is 8 or 32 bytes. */
#include <cuda_fp8.h>

#include "qslices.cuh"

#define F_WARPS 8
#define F_COLS 64

/* Four decoded E4M3 values back to their codes (exact), as one register. */
__device__ __forceinline__ uint32_t e4m3x4(float4 v)
{
    const uint32_t lo = __nv_cvt_float2_to_fp8x2(make_float2(v.x, v.y), __NV_SATFINITE, __NV_E4M3);
    const uint32_t hi = __nv_cvt_float2_to_fp8x2(make_float2(v.z, v.w), __NV_SATFINITE, __NV_E4M3);
    return lo | hi << 16;
}

__device__ __forceinline__ void mma_e4m3(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1)
{
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 890
    asm volatile("mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
    (void)c, (void)a, (void)b0, (void)b1;
    __trap(); /* never launched below sm_89 (fp8_mma_supported) */
#endif
}

/* 8 activation values of token t from column k (zeros past M or K). */
__device__ __forceinline__ void load_x8(const ra_qgemm_args &a, int t, int k, float4 *lo, float4 *hi)
{
    if (t < a.m && k < a.w.k) {
        const float4 *p = (const float4 *)(a.x + (size_t)t * a.w.k + k);
        *lo = __ldg(p), *hi = __ldg(p + 1);
    } else {
        *lo = *hi = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    }
}

static __global__ void __launch_bounds__(F_WARPS * RA_WARP) fp8_gemm(ra_qgemm_args a, int slice_len)
{
    __shared__ float red[F_WARPS][16][F_COLS + 1]; /* put_warp_sums */
    const ra_qweight &w = a.w;
    const int lane = threadIdx.x % RA_WARP, warp = threadIdx.x / RA_WARP, gid = lane / 4, q = lane % 4;
    const int N = w.n, K = w.k, n0 = blockIdx.x * F_COLS, s = blockIdx.y;
    const int groups = w.act == RA_QACT_GROUP ? (K + 127) / 128 : 1;
    /* this warp's columns: a contiguous eighth of the slice, in steps of 32 */
    const int c0 = s * slice_len, c1 = min(K, c0 + slice_len), steps = (c1 - c0 + 31) / 32;
    const int per = (steps + F_WARPS - 1) / F_WARPS;
    const int k0 = c0 + 32 * min(steps, warp * per), k1 = min(c1, c0 + 32 * min(steps, (warp + 1) * per));
    for (int m0 = 0; m0 < a.m; m0 += 16) {
        float acc[8][4], part[8][4];
#pragma unroll
        for (int j = 0; j < 8; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) acc[j][e] = part[j][e] = 0.0f;
        for (int k = k0; k < k1; k += 32) {
            const int kc = k + 8 * q; /* this lane's 8 columns */
            float4 x0l, x0h, x1l, x1h;
            load_x8(a, m0 + gid, kc, &x0l, &x0h);
            load_x8(a, m0 + gid + 8, kc, &x1l, &x1h);
            const uint32_t af[4] = {e4m3x4(x0l), e4m3x4(x1l), e4m3x4(x0h), e4m3x4(x1h)};
#pragma unroll
            for (int j = 0; j < 8; j++) {
                const int n = n0 + 8 * j + gid;
                const uint2 b = n < N && kc < K ? __ldg((const uint2 *)(w.codes + (size_t)n * K + kc)) : make_uint2(0, 0);
                mma_e4m3(part[j], af, b.x, b.y);
            }
            if ((k + 32) % w.seg == 0 || k + 32 >= k1) { /* the segment's sum, scaled: (sum * s_x) * s_w */
                const int g = groups > 1 ? k / 128 : 0;
                const float sx0 = m0 + gid < a.m ? __ldg(&a.xscale[(size_t)(m0 + gid) * groups + g]) : 0.0f;
                const float sx1 = m0 + gid + 8 < a.m ? __ldg(&a.xscale[(size_t)(m0 + gid + 8) * groups + g]) : 0.0f;
#pragma unroll
                for (int j = 0; j < 8; j++) {
                    const int n = n0 + 8 * j + 2 * q;
                    if (n >= N) continue;
                    const float *sc = w.fscales + (size_t)k / w.block_cols;
                    const float sw0 = __ldg(sc + (size_t)(n / w.block_rows) * w.scale_cols);
                    const float sw1 = __ldg(sc + (size_t)((n + 1) / w.block_rows) * w.scale_cols);
                    acc[j][0] = acc[j][0] + (part[j][0] * sx0) * sw0;
                    acc[j][1] = acc[j][1] + (part[j][1] * sx0) * sw1;
                    acc[j][2] = acc[j][2] + (part[j][2] * sx1) * sw0;
                    acc[j][3] = acc[j][3] + (part[j][3] * sx1) * sw1;
#pragma unroll
                    for (int e = 0; e < 4; e++) part[j][e] = 0.0f;
                }
            }
        }
        put_warp_sums<F_WARPS>(a, red, acc, m0, n0, s);
    }
    finish_slices(a, n0, n0 + F_COLS);
}

bool fp8_mma_supported(void)
{
    static int cc = -1; /* the device's compute capability, asked once */
    if (cc < 0) {
        int dev = 0, major = 0, minor = 0;
        if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) ||
            cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev))
            return false;
        cc = 10 * major + minor;
    }
    return cc >= 89;
}

cudaError_t fp8_mma_launch(const ra_qgemm_args &a, int len, cudaStream_t stream)
{
    const dim3 grid((a.w.n + F_COLS - 1) / F_COLS, (a.w.k + len - 1) / len);
    fp8_gemm<<<grid, F_WARPS * RA_WARP, 0, stream>>>(a, len);
    return cudaGetLastError();
}
