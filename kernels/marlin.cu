/* Marlin's tile layout on the tensor cores: y = x . W^T with W in the
 * repacked layout of include/ra/marlin.h, by mma.sync m16n8k16 (f16 operands
 * where the scales are f16, bf16 where bf16; float32 accumulation).
 *
 * Each word of the layout is one thread's B fragments for two n8 tiles of a
 * 16 x 64 tile, so a warp reads a whole 16 x 64 tile as one 16-byte load a
 * lane, prefetched M_STAGES tiles ahead with cp.async. The operands are exact
 * where the format is: a fragment holds code - zero (a small integer, exact
 * in f16 and bf16), and the group's scale multiplies the group's float32
 * partial sum after the products, so the weights are the CPU's to the bit
 * (Marlin itself rounds code * scale to f16). The activations are rounded to
 * f16 / bf16 when a fragment is built: that, and the tensor core's order of
 * additions inside one mma, is where this kernel parts from the CPU's float32
 * reference.
 *
 * Order, fixed by N and K alone: a block takes 64 columns and one slice of K;
 * its 4 warps take contiguous quarters of the slice's 16-row tiles; each
 * warp's sum is a chain of mma over its tiles (a group's partial scaled and
 * added as the group ends); the warps' sums are added in warp order, then the
 * slices in slice order by the last block of the column (qslices.cuh). A
 * token's row never meets another token's: batch-invariant. The atomic
 * variant adds the slices with atomicAdd instead. */
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "qslices.cuh"

#define M_WARPS 4
#define M_COLS 64    /* columns a block: one tile of the layout */
#define M_STAGES 4   /* tiles in flight a warp */

/* Two floats as an f16x2 or bf16x2 operand (round to nearest even). */
template <bool BF16>
__device__ __forceinline__ uint32_t pack2(float lo, float hi)
{
    if (BF16) {
        const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
        return *(const uint32_t *)&v;
    }
    const __half2 v = __floats2half2_rn(lo, hi);
    return *(const uint32_t *)&v;
}

/* Nibbles i and i + 4 of word (two rows of one column) minus the zero point,
 * as an exact f16x2 / bf16x2: 1024 + c (f16) or 128 + c (bf16) by its bits,
 * less 1024 + z or 128 + z. */
template <bool BF16>
__device__ __forceinline__ uint32_t code_pair(uint32_t word, int i, uint32_t zbias)
{
    const uint32_t v = ((word >> (4 * i)) & 0x000F000Fu) | (BF16 ? 0x43004300u : 0x64006400u);
    if (BF16) {
        const __nv_bfloat162 d = __hsub2(*(const __nv_bfloat162 *)&v, *(const __nv_bfloat162 *)&zbias);
        return *(const uint32_t *)&d;
    }
    const __half2 d = __hsub2(*(const __half2 *)&v, *(const __half2 *)&zbias);
    return *(const uint32_t *)&d;
}

template <bool BF16>
__device__ __forceinline__ void mma16816(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1)
{
    if (BF16)
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                     "{%0,%1,%2,%3};\n"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    else
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                     "{%0,%1,%2,%3};\n"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/* Where include/ra/marlin.h puts the scale and the zero point of group g, column n. */
__device__ __forceinline__ size_t scale_index(int N, int n_groups, int g, int n)
{
    const size_t f = (size_t)g * N + n;
    if (n_groups > 1) {
        const int p = (int)(f % 64);
        return f - p + 8 * (p % 8) + p / 8;
    }
    const int p = (int)(f % 32), i = (p % 8) / 2, j = p - 2 * i;
    return f - p + 8 * i + 2 * (j / 8) + j % 8;
}

__device__ __forceinline__ uint32_t zero_of(const ra_qweight &w, int g, int n)
{
    if (!w.qzeros) return 8;
    const size_t f = (size_t)g * w.n + n;
    const int p = (int)(f % 64);
    const size_t m = f - p + 8 * (p % 8) + p / 8;
    static const uint8_t nibble_of[8] = {0, 4, 1, 5, 2, 6, 3, 7};
    return (__ldg(&w.qzeros[m / 8]) >> (4 * nibble_of[m % 8])) & 15;
}

__device__ __forceinline__ float scale_of(const ra_qweight &w, int n_groups, int g, int n)
{
    const uint16_t s = __ldg(&w.scales16[scale_index(w.n, n_groups, g, n)]);
    return w.scale_bf16 ? bf16_to_f32(s) : __half2float(__ushort_as_half(s));
}

/* acc += part x the scale of group g (C columns c0 + 8j, + 1), part zeroed:
 * a finished group's float32 partial sums, scaled. */
__device__ __forceinline__ void add_scaled(const ra_qweight &w, int groups, int g, int c0, float part[8][4], float acc[8][4])
{
#pragma unroll
    for (int j = 0; j < 8; j++) {
        const float s0 = scale_of(w, groups, g, c0 + 8 * j), s1 = scale_of(w, groups, g, c0 + 8 * j + 1);
        acc[j][0] = __fmaf_rn(part[j][0], s0, acc[j][0]);
        acc[j][1] = __fmaf_rn(part[j][1], s1, acc[j][1]);
        acc[j][2] = __fmaf_rn(part[j][2], s0, acc[j][2]);
        acc[j][3] = __fmaf_rn(part[j][3], s1, acc[j][3]);
#pragma unroll
        for (int e = 0; e < 4; e++) part[j][e] = 0.0f;
    }
}

__device__ __forceinline__ float x_at(const ra_qgemm_args &a, int t, int k)
{
    if (t >= a.m) return 0.0f;
    return a.x[(size_t)t * a.w.k + (a.w.perm ? a.w.perm[k] : k)];
}

template <bool BF16>
static __global__ void __launch_bounds__(M_WARPS * RA_WARP) marlin_gemm(ra_qgemm_args a, int slice_len)
{
    __shared__ uint4 stage[M_WARPS][M_STAGES][RA_WARP];
    __shared__ float red[M_WARPS][16][M_COLS + 1]; /* put_warp_sums */
    const ra_qweight &w = a.w;
    const int lane = threadIdx.x % RA_WARP, warp = threadIdx.x / RA_WARP, gid = lane / 4, q = lane % 4;
    const int N = w.n, K = w.k, nt = blockIdx.x, n0 = nt * M_COLS, s = blockIdx.y;
    const int groups = K / w.group; /* 1: one group a row (its own scale permutation) */
    /* this warp's 16-row tiles: a contiguous quarter of the slice */
    const int kt0 = s * slice_len / 16, kt1 = min(K, (s + 1) * slice_len) / 16;
    const int per = (kt1 - kt0 + M_WARPS - 1) / M_WARPS;
    const int w0 = min(kt1, kt0 + warp * per), w1 = min(kt1, w0 + per);
    const uint4 *src = (const uint4 *)w.qweight + (size_t)nt * RA_WARP + lane; /* + kt * (2N / 4) */
    const size_t row_words4 = (size_t)2 * N / 4;
    for (int m0 = 0; m0 < a.m; m0 += 16) {
        float acc[8][4], part[8][4];
#pragma unroll
        for (int j = 0; j < 8; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) acc[j][e] = part[j][e] = 0.0f;
        for (int i = 0; i < M_STAGES - 1; i++) {
            if (w0 + i < w1) cp_async16(&stage[warp][i][lane], src + (size_t)(w0 + i) * row_words4, 16);
            cp_async_commit();
        }
        int g_cur = -1;
        uint32_t zb[8]; /* zero bias of this lane's 8 B columns, for group g_cur */
        for (int kt = w0; kt < w1; kt++) {
            const int i = kt - w0;
            if (kt + M_STAGES - 1 < w1)
                cp_async16(&stage[warp][(i + M_STAGES - 1) % M_STAGES][lane],
                           src + (size_t)(kt + M_STAGES - 1) * row_words4, 16);
            cp_async_commit();
            const int g = w.g_idx ? w.g_idx[16 * kt] : 16 * kt / w.group;
            if (g != g_cur) {
                if (g_cur >= 0) add_scaled(w, groups, g_cur, n0 + 2 * q, part, acc);
                g_cur = g;
#pragma unroll
                for (int j = 0; j < 8; j++) {
                    const uint32_t z = zero_of(w, g, n0 + 8 * j + gid);
                    zb[j] = BF16 ? 0x43004300u + z * 0x00010001u : 0x64006400u + z * 0x00010001u;
                }
            }
            /* A: rows m0 + gid and + 8, columns 16 kt + 2q (+1) and + 8 (+9) */
            const int k = 16 * kt + 2 * q;
            uint32_t af[4];
            af[0] = pack2<BF16>(x_at(a, m0 + gid, k), x_at(a, m0 + gid, k + 1));
            af[1] = pack2<BF16>(x_at(a, m0 + gid + 8, k), x_at(a, m0 + gid + 8, k + 1));
            af[2] = pack2<BF16>(x_at(a, m0 + gid, k + 8), x_at(a, m0 + gid, k + 9));
            af[3] = pack2<BF16>(x_at(a, m0 + gid + 8, k + 8), x_at(a, m0 + gid + 8, k + 9));
            cp_async_wait<M_STAGES - 1>();
            const uint4 b = stage[warp][i % M_STAGES][lane];
            const uint32_t words[4] = {b.x, b.y, b.z, b.w};
#pragma unroll
            for (int sub = 0; sub < 4; sub++) /* 16 columns: n8 tiles 2 sub and 2 sub + 1 */
#pragma unroll
                for (int h = 0; h < 2; h++) {
                    const int j = 2 * sub + h;
                    mma16816<BF16>(part[j], af, code_pair<BF16>(words[sub], 2 * h, zb[j]),
                                   code_pair<BF16>(words[sub], 2 * h + 1, zb[j]));
                }
        }
        if (g_cur >= 0) add_scaled(w, groups, g_cur, n0 + 2 * q, part, acc);
        cp_async_wait<0>();
        put_warp_sums<M_WARPS>(a, red, acc, m0, n0, s);
    }
    finish_slices(a, n0, n0 + M_COLS);
}

cudaError_t marlin_launch(const ra_qgemm_args &a, int len, cudaStream_t stream)
{
    const dim3 grid(a.w.n / M_COLS, (a.w.k + len - 1) / len);
    if (a.w.scale_bf16) marlin_gemm<true><<<grid, M_WARPS * RA_WARP, 0, stream>>>(a, len);
    else marlin_gemm<false><<<grid, M_WARPS * RA_WARP, 0, stream>>>(a, len);
    return cudaGetLastError();
}
