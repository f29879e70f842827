/* llama.cpp's CPU arithmetic: the kernel "ggml-avx2".
 *
 * What ggml (as vendored by llama-cpp-python 0.3.36, built with -march=native)
 * computes on an x86-64 machine with AVX2 and FMA when llama.cpp decodes one
 * token per llama_decode with a float32 KV cache and flash attention off. Each
 * function says which ggml function it reproduces; the order of every sum and
 * every fused multiply-add follows that function (and, where GCC contracts
 * ggml's scalar C under -std=gnu11, the instruction it emits: see the notes).
 *
 * Every function here is portable C: fmaf is exact everywhere, so the bits do
 * not depend on the machine. Where AVX2 and FMA are present the hot dot
 * products take a vector path in the same order (chosen at run time, checked
 * against the scalar one bit for bit by tests/unit/test_ggml_avx2.c).
 *
 * Not reproduced: llama.cpp's prompt processing. With several tokens in one
 * llama_decode ggml hands float32 and Q8_0 products to llamafile's tinyBLAS,
 * whose order differs; this kernel is its single-token (decode) path, applied
 * to every row, so it stays batch-invariant. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3") /* vectorizes the lane loops; float semantics stay strict */
#endif
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ra/cpu.h"
#include "ra/ggml_types.h"
#include "ra/util.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#include "../cpu_x86.h"
#define GGML_X86 1
#define TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#endif

#define QK 32
#define ROWS_PER_TASK 16

_Static_assert(sizeof(ra_block_q4_1) == 20, "q4_1 block is 20 bytes");
_Static_assert(sizeof(ra_block_q8_0) == 34, "q8_0 block is 34 bytes");

/* ---- elementwise ------------------------------------------------------- */

#define INLINE static inline __attribute__((always_inline))

/* One lane of ggml_v_expf (vec.h, __m256 version): ARM's optimized-routines
 * expf, max error 1.45 ulp + 0.5. fnmadd(a, b, c) is fmaf(-a, b, c). */
INLINE float expf_lane(float x)
{
    const float r = 0x1.8p23f;
    const float z = fmaf(x, 0x1.715476p+0f, r);
    const float n = z - r;
    const float b = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x));
    const uint32_t e = ra_f32_bits(z) << 23;
    const float k = ra_bits_f32(e + ra_f32_bits(1.0f));
    const float u = b * b;
    const float j = fmaf(fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)), u,
                         0x1.ffffecp-1f * b);
    if (!(fabsf(n) > 126.0f)) return fmaf(j, k, k);
    const uint32_t g = n <= 0.0f ? 0x82000000u : 0u;
    const float s1 = ra_bits_f32(g + 0x7f000000u), s2 = ra_bits_f32(e - g);
    if (fabsf(n) > 192.0f) return s1 * s1;
    return fmaf(s2, j, s2) * s1;
}

float ra_ggml_expf(float x) { return expf_lane(x); }

/* ggml_compute_forward_rms_norm_f32 fused with the gain (ops.cpp): float
 * squares summed in double, the mean and the scale in float. */
void ra_ggml_rmsnorm(const float *x, const float *g, uint32_t dim, float eps, float *y)
{
    double sum = 0;
    for (uint32_t i = 0; i < dim; i++) sum += (double)(x[i] * x[i]);
    const float mean = (float)(sum / dim);
    const float scale = 1.0f / sqrtf(mean + eps);
    for (uint32_t i = 0; i < dim; i++) y[i] = x[i] * scale * g[i];
}

/* ggml_vec_swiglu_f32 (vec.cpp): silu(x) = x / (1 + expf(-x)) with
 * ggml_v_expf in blocks of 8, libm's expf on the tail. */
INLINE void swiglu_body(float *gate, const float *up, uint32_t n)
{
    const uint32_t n8 = n & ~7u;
    for (uint32_t i = 0; i < n; i++) {
        const float x = gate[i], e = i < n8 ? expf_lane(0.0f - x) : expf(-x);
        gate[i] = x / (1.0f + e) * up[i];
    }
}

static void swiglu_generic(float *gate, const float *up, uint32_t n) { swiglu_body(gate, up, n); }
#ifdef GGML_X86
TARGET_AVX2 static void swiglu_fma(float *gate, const float *up, uint32_t n) { swiglu_body(gate, up, n); }
#endif

void ra_ggml_swiglu(ra_cpu_path path, float *gate, const float *up, uint32_t n)
{
#ifdef GGML_X86
    if (path == RA_CPU_PATH_AVX2) { swiglu_fma(gate, up, n); return; }
#endif
    (void)path;
    swiglu_generic(gate, up, n);
}

/* The cos/sin cache of ggml_rope_cache_init (ops.cpp) for one position, with
 * no frequency scaling: theta starts at pos and is multiplied by
 * theta_scale = powf(base, -2/n_dims) once per pair, in float. */
void ra_ggml_rope_cache(uint32_t pos, float base, uint32_t n_dims, float *cs, float *sn)
{
    const float theta_scale = powf(base, -2.0f / (float)n_dims);
    float theta = (float)pos;
    for (uint32_t i = 0; i < n_dims / 2; i++) {
        cs[i] = cosf(theta);
        sn[i] = sinf(theta);
        theta *= theta_scale;
    }
}

/* rotate_pairs for GGML_ROPE_TYPE_NORMAL as GCC contracts its scalar loop
 * at -O3 -march=native (vfmsub231ss, vfmadd132ss): x0' = fma(x0, c, -(x1 s)),
 * x1' = fma(x0, s, x1 c); llama.cpp's Qcur/Kcur tensors agree bit for bit.
 * Pair i of a head is (v[i], v[i + hd/2]) in our HF row order, the same two
 * values as GGUF's (2i, 2i + 1). */
void ra_ggml_rope(float *x, uint32_t n_heads, uint32_t hd, const float *cs, const float *sn)
{
    const uint32_t half = hd / 2;
    for (uint32_t h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * hd;
        for (uint32_t i = 0; i < half; i++) {
            const float x0 = v[i], x1 = v[i + half];
            v[i] = fmaf(x0, cs[i], -(x1 * sn[i]));
            v[i + half] = fmaf(x0, sn[i], x1 * cs[i]);
        }
    }
}

/* ---- float dot products ------------------------------------------------ */

/* The reduction of GGML_F32x8_REDUCE (simd-mappings.h, AVX) over its four
 * vectors of 8 lanes, here 32 lanes with lane j of vector k at 8k + j:
 * vectors 0+2, 1+3, then those two, then halves added (l, l+4) and two
 * horizontal adds. */
INLINE float f32x8_reduce(const float a[32])
{
    float v[8], t[4];
    for (int l = 0; l < 8; l++) v[l] = (a[l] + a[16 + l]) + (a[8 + l] + a[24 + l]);
    for (int l = 0; l < 4; l++) t[l] = v[l] + v[l + 4];
    return (t[0] + t[1]) + (t[2] + t[3]);
}

/* ggml_vec_dot_f32 (vec.cpp, AVX2): element i into lane i % 32 (vector
 * (i / 8) % 4, lane i % 8) by fused multiply-add, for i < n rounded down to
 * 32; the rest in order (GCC contracts sumf += x*y there too). */
INLINE float dot_f32(const float *x, const float *y, uint32_t n)
{
    float a[32] = {0};
    const uint32_t n32 = n & ~31u;
    for (uint32_t i0 = 0; i0 < n32; i0 += 32)
        for (uint32_t l = 0; l < 32; l++) a[l] = fmaf(x[i0 + l], y[i0 + l], a[l]);
    float s = f32x8_reduce(a);
    for (uint32_t i = n32; i < n; i++) s = fmaf(x[i], y[i], s);
    return s;
}

float ra_ggml_dot_f32(const float *x, const float *y, uint32_t n) { return dot_f32(x, y, n); }

/* ---- attention --------------------------------------------------------- */

/* One query head against positions 0..npos-1, as ggml's unfused attention
 * does it (llm_graph_context::build_attn_mha without flash attention):
 * kq = mul_mat(k, q) with ggml_vec_dot_f32; soft_max_ext (ops.cpp): scores
 * times the scale, max, ggml_vec_soft_max_f32 (ggml_v_expf in blocks of 8
 * from position 0, each block summed as hsum of 8 and added in double; llama.cpp
 * pads the KV view to 256 cells, so real positions never reach the libm tail
 * and masked ones add exact zeros), times (float)(1/sum); then
 * kqv = mul_mat(v^T, kq), ggml_vec_dot_f32 over positions (masked ones
 * contribute exact zeros). q and the cached keys are in GGUF's interleaved
 * order, so the q.k sums run over the same elements in the same lanes.
 * w is scratch for npos floats (rounded up to 8). */
INLINE void attn_head_body(const float *q, const float *K, const float *V, size_t stride, uint32_t npos, uint32_t hd,
                           float scale, float *w, float *out)
{
    float mx = -INFINITY;
    for (uint32_t p = 0; p < npos; p++) {
        w[p] = dot_f32(K + (size_t)p * stride, q, hd) * scale;
        mx = w[p] > mx ? w[p] : mx;
    }
    double sum = 0;
    for (uint32_t p0 = 0; p0 < npos; p0 += 8) {
        float e[8];
        for (uint32_t l = 0; l < 8; l++) e[l] = p0 + l < npos ? expf_lane(w[p0 + l] - mx) : 0.0f;
        for (uint32_t l = 0; l < 8 && p0 + l < npos; l++) w[p0 + l] = e[l];
        const float t0 = e[0] + e[4], t1 = e[1] + e[5], t2 = e[2] + e[6], t3 = e[3] + e[7];
        sum += (double)((t0 + t2) + (t1 + t3));
    }
    const float inv = (float)(1.0 / sum);
    for (uint32_t p = 0; p < npos; p++) w[p] *= inv;
    /* Every output's lanes at once: acc[l][i] is lane l of output i. */
    float acc[32][hd], lanes[32];
    memset(acc, 0, sizeof acc);
    for (uint32_t p = 0; p < npos; p++) {
        const float *v = V + (size_t)p * stride;
        float *a = acc[p & 31];
        for (uint32_t i = 0; i < hd; i++) a[i] = fmaf(v[i], w[p], a[i]);
    }
    for (uint32_t i = 0; i < hd; i++) {
        for (int l = 0; l < 32; l++) lanes[l] = acc[l][i];
        out[i] = f32x8_reduce(lanes);
    }
}

static void attn_head_generic(const float *q, const float *K, const float *V, size_t stride, uint32_t npos, uint32_t hd,
                              float scale, float *w, float *out)
{
    attn_head_body(q, K, V, stride, npos, hd, scale, w, out);
}

#ifdef GGML_X86
/* The same code with fmaf as one instruction. */
TARGET_AVX2 static void attn_head_fma(const float *q, const float *K, const float *V, size_t stride, uint32_t npos,
                                      uint32_t hd, float scale, float *w, float *out)
{
    attn_head_body(q, K, V, stride, npos, hd, scale, w, out);
}
#endif

void ra_ggml_attn_head(ra_cpu_path path, const float *q, const float *K, const float *V, size_t stride, uint32_t npos,
                       uint32_t hd, float scale, float *w, float *out)
{
#ifdef GGML_X86
    if (path == RA_CPU_PATH_AVX2) { attn_head_fma(q, K, V, stride, npos, hd, scale, w, out); return; }
#endif
    (void)path;
    attn_head_generic(q, K, V, stride, npos, hd, scale, w, out);
}

/* ---- quantized products ------------------------------------------------ */

/* quantize_row_q8_1 / quantize_row_q8_0 (arch/x86/quants.c, AVX2):
 * d = amax / 127 stored as fp16, q = round-half-even(x * (127 / amax)), and
 * for q8_1 s = fp16(d * sum(q)) with the float d. */
void ra_ggml_quantize_q8(const float *x, uint32_t n, bool with_sum, ra_ggml_q8 *out)
{
    for (uint32_t b = 0; b < n / QK; b++, x += QK) {
        float amax = 0;
        for (int j = 0; j < QK; j++) amax = fabsf(x[j]) > amax ? fabsf(x[j]) : amax;
        const float d = amax / 127.0f, id = amax != 0.0f ? 127.0f / amax : 0.0f;
        int sum = 0;
        for (int j = 0; j < QK; j++) {
            const int q = (int)rintf(x[j] * id);
            out[b].q[j] = (int8_t)q;
            sum += q;
        }
        out[b].d = ra_f16_to_f32(ra_f32_to_f16(d));
        out[b].s = with_sum ? ra_f16_to_f32(ra_f32_to_f16(d * (float)sum)) : 0.0f;
    }
}

/* hsum_float_8 (arch/x86/quants.c): (l0+l4, l1+l5, l2+l6, l3+l7), then
 * (s0+s2) + (s1+s3). */
static inline float hsum8(const float l[8])
{
    const float s0 = l[0] + l[4], s1 = l[1] + l[5], s2 = l[2] + l[6], s3 = l[3] + l[7];
    return (s0 + s2) + (s1 + s3);
}

/* ggml_vec_dot_q4_1_q8_1 (arch/x86/quants.c, AVX2): lane k of each block is
 * the exact integer sum of elements 4k..4k+3, converted to float and
 * accumulated as fma(d_w * d_x, lane, acc); the min terms go to a scalar
 * that GCC contracts to fma(m, s, summs); the result is hsum8(acc) + summs. */
float ra_ggml_dot_q4_1_ref(const void *row, const ra_ggml_q8 *x, uint32_t nb)
{
    const ra_block_q4_1 *w = row;
    float acc[8] = {0}, summs = 0;
    for (uint32_t b = 0; b < nb; b++) {
        summs = fmaf(ra_f16_to_f32(w[b].m), x[b].s, summs);
        const float dd = ra_f16_to_f32(w[b].d) * x[b].d;
        for (int k = 0; k < 8; k++) {
            int32_t s = 0;
            for (int j = 4 * k; j < 4 * k + 4; j++) {
                const int q = j < 16 ? w[b].qs[j] & 15 : w[b].qs[j - 16] >> 4;
                s += q * x[b].q[j];
            }
            acc[k] = fmaf(dd, (float)s, acc[k]);
        }
    }
    return hsum8(acc) + summs;
}

/* ggml_vec_dot_q8_0_q8_0 (arch/x86/quants.c, AVX2): the same lanes, no min. */
float ra_ggml_dot_q8_0_ref(const void *row, const ra_ggml_q8 *x, uint32_t nb)
{
    const ra_block_q8_0 *w = row;
    float acc[8] = {0};
    for (uint32_t b = 0; b < nb; b++) {
        const float dd = ra_f16_to_f32(w[b].d) * x[b].d;
        for (int k = 0; k < 8; k++) {
            int32_t s = 0;
            for (int j = 4 * k; j < 4 * k + 4; j++) s += w[b].qs[j] * x[b].q[j];
            acc[k] = fmaf(dd, (float)s, acc[k]);
        }
    }
    return hsum8(acc);
}

/* ggml_vec_dot_q5_0_q8_0 (arch/x86/quants.c, AVX2): the block's codes made
 * signed (q - 16, as the 0xF0 high bits do), then q8_0's lanes. */
float ra_ggml_dot_q5_0_ref(const void *row, const ra_ggml_q8 *x, uint32_t nb)
{
    const ra_block_q5_0 *w = row;
    float acc[8] = {0};
    for (uint32_t b = 0; b < nb; b++) {
        const float dd = ra_f16_to_f32(w[b].d) * x[b].d;
        const uint32_t qh = ra_le32(w[b].qh);
        for (int k = 0; k < 8; k++) {
            int32_t s = 0;
            for (int j = 4 * k; j < 4 * k + 4; j++) {
                const int nib = j < 16 ? w[b].qs[j] & 15 : w[b].qs[j - 16] >> 4;
                s += (nib + (int)((qh >> j & 1) << 4) - 16) * x[b].q[j];
            }
            acc[k] = fmaf(dd, (float)s, acc[k]);
        }
    }
    return hsum8(acc);
}

/* quantize_row_q8_K_ref (ggml-quants.c; x86 uses it as is): the signed value
 * of largest magnitude maps to -127, q = min(127, nearest(x * -127 / max)),
 * d = 1 / iscale, and the sum of each 16 codes. */
void ra_ggml_quantize_q8k(const float *x, uint32_t n, ra_ggml_q8k *out)
{
    for (uint32_t b = 0; b < n / 256; b++, x += 256) {
        float max = 0, amax = 0;
        for (int j = 0; j < 256; j++)
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        memset(&out[b], 0, sizeof out[b]);
        if (amax == 0.0f) continue;
        const float iscale = -127.0f / max;
        for (int j = 0; j < 256; j++) {
            const float t = iscale * x[j] + 12582912.0f; /* ggml's nearest_int */
            const int v = (int)(ra_f32_bits(t) & 0x007fffff) - 0x00400000;
            out[b].q[j] = (int8_t)(v < 127 ? v : 127);
            out[b].bsums[j / 16] = (int16_t)(out[b].bsums[j / 16] + out[b].q[j]);
        }
        out[b].d = 1 / iscale;
    }
}

/* ggml_vec_dot_q4_K_q8_K (arch/x86/quants.c, AVX2), per super-block: lane k
 * (of 8) is the exact integer sum over the 8 sub-blocks s of sc[s] times the
 * products of elements 32s + 4k .. 32s + 4k + 3, accumulated as
 * fma(d_x * d_w, lane, acc); the mins go to 4 lanes, lane m =
 * m[2m] * (bsums 4m, 4m+1) + m[2m+1] * (bsums 4m+2, 4m+3), accumulated as
 * fma(-d_x * dmin_w, lane, acc_m); result hsum8(acc) + ((m0 + m2) + (m1 + m3)). */
float ra_ggml_dot_q4_k_ref(const void *row, const ra_ggml_q8k *x, uint32_t nb)
{
    const ra_block_q4_k *w = row;
    float acc[8] = {0}, acc_m[4] = {0};
    for (uint32_t b = 0; b < nb; b++) {
        const float d = x[b].d * ra_f16_to_f32(w[b].d), dmin = -x[b].d * ra_f16_to_f32(w[b].dmin);
        uint8_t sc[8], mn[8];
        for (int s = 0; s < 8; s++) ra_q4_k_scale_min(w[b].scales, s, &sc[s], &mn[s]);
        const int16_t *bs = x[b].bsums;
        for (int m = 0; m < 4; m++) {
            const int32_t p = mn[2 * m] * (bs[4 * m] + bs[4 * m + 1]) + mn[2 * m + 1] * (bs[4 * m + 2] + bs[4 * m + 3]);
            acc_m[m] = fmaf(dmin, (float)p, acc_m[m]);
        }
        for (int k = 0; k < 8; k++) {
            int32_t lane = 0;
            for (int s = 0; s < 8; s++) {
                const uint8_t *qs = w[b].qs + 32 * (s / 2);
                int32_t t = 0;
                for (int i = 4 * k; i < 4 * k + 4; i++) t += (s % 2 ? qs[i] >> 4 : qs[i] & 15) * x[b].q[32 * s + i];
                lane += sc[s] * t;
            }
            acc[k] = fmaf(d, (float)lane, acc[k]);
        }
    }
    return hsum8(acc) + ((acc_m[0] + acc_m[2]) + (acc_m[1] + acc_m[3]));
}

/* ggml_gemv_q4_K_8x8_q8_K (arch/x86/repack.cpp, AVX2): what llama.cpp runs
 * for a Q4_K matrix whose row count is a multiple of 8, repacked at load into
 * interleaved groups of 8 rows. Each row is one float lane: per super-block
 * the exact integer sums sum_s sc[s] * (q . x over sub-block s) and
 * sum_s m[s] * (bsums 2s + 2s+1), accumulated as
 * acc = fma(isum, d_w * d_x, acc) and acc_m = fma(imin, dmin_w * d_x, acc_m);
 * the result is acc - acc_m. */
float ra_ggml_dot_q4_k_8x8_ref(const void *row, const ra_ggml_q8k *x, uint32_t nb)
{
    const ra_block_q4_k *w = row;
    float acc = 0, acc_m = 0;
    for (uint32_t b = 0; b < nb; b++) {
        int32_t isum = 0, imin = 0;
        for (int s = 0; s < 8; s++) {
            uint8_t sc, mn;
            ra_q4_k_scale_min(w[b].scales, s, &sc, &mn);
            const uint8_t *qs = w[b].qs + 32 * (s / 2);
            int32_t t = 0;
            for (int i = 0; i < 32; i++) t += (s % 2 ? qs[i] >> 4 : qs[i] & 15) * x[b].q[32 * s + i];
            isum += sc * t;
            imin += mn * (x[b].bsums[2 * s] + x[b].bsums[2 * s + 1]);
        }
        acc = fmaf((float)isum, ra_f16_to_f32(w[b].d) * x[b].d, acc);
        acc_m = fmaf((float)imin, ra_f16_to_f32(w[b].dmin) * x[b].d, acc_m);
    }
    return acc - acc_m;
}

/* ggml_vec_dot_q6_K_q8_K (arch/x86/quants.c, AVX2), per super-block: lane k
 * is the exact integer sum of sc[e/16] * q[e] * x[e] over the elements e with
 * (e % 32) / 4 == k, q the unsigned code 0..63, minus 32 * (sc[2k] bsums[2k] +
 * sc[2k+1] bsums[2k+1]) for the codes' offset; fma(d_x * d_w, lane, acc);
 * result hsum8(acc). */
float ra_ggml_dot_q6_k_ref(const void *row, const ra_ggml_q8k *x, uint32_t nb)
{
    const ra_block_q6_k *w = row;
    float acc[8] = {0};
    for (uint32_t b = 0; b < nb; b++) {
        const float d = x[b].d * ra_f16_to_f32(w[b].d);
        const int8_t *sc = w[b].scales;
        for (int k = 0; k < 8; k++) {
            int32_t lane = 0;
            for (int e0 = 0; e0 < 256; e0 += 32)
                for (int e = e0 + 4 * k; e < e0 + 4 * k + 4; e++) {
                    const int h = e / 128, c = (e % 128) / 32, i = e % 32;
                    const uint8_t l = w[b].ql[64 * h + 32 * (c % 2) + i], hb = w[b].qh[32 * h + i];
                    const int q = (c < 2 ? l & 15 : l >> 4) | ((hb >> (2 * c)) & 3) << 4;
                    lane += sc[e / 16] * q * x[b].q[e];
                }
            lane -= 32 * (sc[2 * k] * x[b].bsums[2 * k] + sc[2 * k + 1] * x[b].bsums[2 * k + 1]);
            acc[k] = fmaf(d, (float)lane, acc[k]);
        }
    }
    return hsum8(acc);
}

#ifdef GGML_X86
TARGET_AVX2 static inline float hsum8_avx(__m256 x)
{
    __m128 r = _mm_add_ps(_mm256_extractf128_ps(x, 1), _mm256_castps256_ps128(x));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

/* unsigned x signed bytes, pairs to int16 (no saturation: |q4 * q8| <= 15 * 127
 * and |q8 * q8| <= 128 * 127), then pairs to int32: lane k = elements 4k..4k+3. */
TARGET_AVX2 static inline __m256 lanes_us8(__m256i ux, __m256i sy)
{
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_set1_epi16(1), _mm256_maddubs_epi16(ux, sy)));
}

/* One weight row against K tokens (a compile-time 1 or 4): K independent
 * copies of ggml's per-dot arithmetic, interleaved so their dependency
 * chains overlap; the weights are unpacked once per block. Rows of x are
 * nb blocks apart. */
TARGET_AVX2 static inline void dot_q4_1_avx2(const void *row, const ra_ggml_q8 *x, uint32_t nb, float *out, const int K)
{
    const ra_block_q4_1 *w = row;
    __m256 acc[4];
    float summs[4];
    for (int k = 0; k < K; k++) acc[k] = _mm256_setzero_ps(), summs[k] = 0;
    for (uint32_t b = 0; b < nb; b++) {
        const float dw = _cvtsh_ss(w[b].d), mw = _cvtsh_ss(w[b].m);
        const __m128i t = _mm_loadu_si128((const __m128i *)w[b].qs);
        const __m256i qw = _mm256_and_si256(_mm256_set1_epi8(15), _mm256_set_m128i(_mm_srli_epi16(t, 4), t));
        for (int k = 0; k < K; k++) {
            const ra_ggml_q8 *xb = x + (size_t)k * nb + b;
            summs[k] = fmaf(mw, xb->s, summs[k]);
            const __m256i qx = _mm256_loadu_si256((const __m256i *)xb->q);
            acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(dw * xb->d), lanes_us8(qw, qx), acc[k]);
        }
    }
    for (int k = 0; k < K; k++) out[k] = hsum8_avx(acc[k]) + summs[k];
}

TARGET_AVX2 static inline void dot_q8_0_avx2(const void *row, const ra_ggml_q8 *x, uint32_t nb, float *out, const int K)
{
    const ra_block_q8_0 *w = row;
    __m256 acc[4];
    for (int k = 0; k < K; k++) acc[k] = _mm256_setzero_ps();
    for (uint32_t b = 0; b < nb; b++) {
        const float dw = _cvtsh_ss(w[b].d);
        const __m256i qw = _mm256_loadu_si256((const __m256i *)w[b].qs), aw = _mm256_sign_epi8(qw, qw);
        for (int k = 0; k < K; k++) {
            const ra_ggml_q8 *xb = x + (size_t)k * nb + b;
            const __m256i qx = _mm256_loadu_si256((const __m256i *)xb->q);
            acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(dw * xb->d), lanes_us8(aw, _mm256_sign_epi8(qx, qw)), acc[k]);
        }
    }
    for (int k = 0; k < K; k++) out[k] = hsum8_avx(acc[k]);
}

/* ra_ggml_dot_q5_0_ref with the block's lanes by byte multiply-adds (exact). */
TARGET_AVX2 static float dot_q5_0_avx2(const void *row, const ra_ggml_q8 *x, uint32_t nb)
{
    const ra_block_q5_0 *w = row;
    __m256 acc = _mm256_setzero_ps();
    for (uint32_t b = 0; b < nb; b++) {
        const __m256i qw = ra_q5_0_codes_avx2(&w[b]), qx = _mm256_loadu_si256((const __m256i *)x[b].q);
        const __m256 lanes = lanes_us8(_mm256_sign_epi8(qw, qw), _mm256_sign_epi8(qx, qw));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(w[b].d) * x[b].d), lanes, acc);
    }
    return hsum8_avx(acc);
}

/* Exact int32 sum of a horizontal vector (order is irrelevant for integers). */
TARGET_AVX2 static inline int32_t hsum_i32(__m256i v)
{
    __m128i r = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    r = _mm_add_epi32(r, _mm_shuffle_epi32(r, 0x4e));
    r = _mm_add_epi32(r, _mm_shuffle_epi32(r, 0xb1));
    return _mm_cvtsi128_si32(r);
}

/* ra_ggml_dot_q4_k_8x8_ref: each sub-block's codes times x by byte
 * multiply-adds, pairs scaled by the sub-block's scale (int16 x int16 to
 * int32, exact), summed over the super-block; the float steps as the reference. */
TARGET_AVX2 static float dot_q4_k_8x8_avx2(const void *row, const ra_ggml_q8k *x, uint32_t nb)
{
    const ra_block_q4_k *w = row;
    float acc = 0, acc_m = 0;
    for (uint32_t b = 0; b < nb; b++) {
        __m256i isum = _mm256_setzero_si256();
        int32_t imin = 0;
        for (int c = 0; c < 4; c++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(w[b].qs + 32 * c));
            for (int h = 0; h < 2; h++) {
                const int s = 2 * c + h;
                uint8_t sc, mn;
                ra_q4_k_scale_min(w[b].scales, s, &sc, &mn);
                const __m256i qw = _mm256_and_si256(h ? _mm256_srli_epi16(q, 4) : q, _mm256_set1_epi8(15));
                const __m256i p16 = _mm256_maddubs_epi16(qw, _mm256_loadu_si256((const __m256i *)(x[b].q + 32 * s)));
                isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p16, _mm256_set1_epi16(sc)));
                imin += mn * (x[b].bsums[2 * s] + x[b].bsums[2 * s + 1]);
            }
        }
        acc = fmaf((float)hsum_i32(isum), _cvtsh_ss(w[b].d) * x[b].d, acc);
        acc_m = fmaf((float)imin, _cvtsh_ss(w[b].dmin) * x[b].d, acc_m);
    }
    return acc - acc_m;
}

/* ra_ggml_dot_q6_k_ref: the unsigned 6-bit codes of each 32 elements times x
 * by byte multiply-adds (pairs, at most 2 * 63 * 127), pairs times their
 * group's scale into int32 lanes (lane k: elements 4k..4k+3 of each 32),
 * minus 32 * the scaled bsums; the float steps as the reference. */
TARGET_AVX2 static float dot_q6_k_avx2(const void *row, const ra_ggml_q8k *x, uint32_t nb)
{
    const ra_block_q6_k *w = row;
    __m256 acc = _mm256_setzero_ps();
    for (uint32_t b = 0; b < nb; b++) {
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)w[b].scales));
        const __m256i off = _mm256_slli_epi32(
            _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)x[b].bsums), sc16), 5);
        __m256i lanes = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            const __m256i l0 = _mm256_loadu_si256((const __m256i *)(w[b].ql + 64 * h));
            const __m256i l1 = _mm256_loadu_si256((const __m256i *)(w[b].ql + 64 * h + 32));
            const __m256i hb = _mm256_loadu_si256((const __m256i *)(w[b].qh + 32 * h));
            for (int c = 0; c < 4; c++) {
                const __m256i lo = c % 2 ? l1 : l0;
                const __m256i nib = _mm256_and_si256(c < 2 ? lo : _mm256_srli_epi16(lo, 4), _mm256_set1_epi8(15));
                const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(hb, 2 * c), _mm256_set1_epi8(3));
                const __m256i q = _mm256_or_si256(nib, _mm256_slli_epi16(hi, 4));
                const int g = 8 * h + 2 * c; /* groups g (first 16 elements) and g + 1 */
                const __m256i scale = _mm256_set_m128i(_mm_set1_epi16(w[b].scales[g + 1]), _mm_set1_epi16(w[b].scales[g]));
                const __m256i p16 = _mm256_maddubs_epi16(q, _mm256_loadu_si256((const __m256i *)(x[b].q + 128 * h + 32 * c)));
                lanes = _mm256_add_epi32(lanes, _mm256_madd_epi16(p16, scale));
            }
        }
        lanes = _mm256_sub_epi32(lanes, off);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(x[b].d * _cvtsh_ss(w[b].d)), _mm256_cvtepi32_ps(lanes), acc);
    }
    return hsum8_avx(acc);
}

/* Rows r0..r1 against every token, tokens in fours then one at a time. */
TARGET_AVX2 static void rows_avx2(const ra_weight *w, const ra_ggml_q8 *xq, uint32_t n, float *y, uint32_t r0, uint32_t r1)
{
    const uint32_t nb = w->cols / QK;
    const bool q41 = w->type == RA_W_Q4_1;
    float out[4];
    for (uint32_t t = 0; t < n;) {
        const int K = n - t >= 4 ? 4 : 1;
        for (uint32_t r = r0; r < r1; r++) {
            const uint8_t *row = w->data + (size_t)r * w->row_bytes;
            const ra_ggml_q8 *x = xq + (size_t)t * nb;
            if (q41 && K == 4) dot_q4_1_avx2(row, x, nb, out, 4);
            else if (q41) dot_q4_1_avx2(row, x, nb, out, 1);
            else if (K == 4) dot_q8_0_avx2(row, x, nb, out, 4);
            else dot_q8_0_avx2(row, x, nb, out, 1);
            for (int k = 0; k < K; k++) y[(size_t)(t + k) * w->rows + r] = out[k];
        }
        t += (uint32_t)K;
    }
}
#endif

typedef struct {
    const ra_weight *w;
    const ra_ggml_q8 *xq;   /* n rows of cols / 32 blocks (q4_1, q8_0, q5_0) */
    const ra_ggml_q8k *xk;  /* n rows of cols / 256 super-blocks (q4_k, q6_k) */
    uint32_t n;
    float *y;
    ra_cpu_path path;
} ggml_job;

/* One output in scalar C, the weight type's vec_dot. */
static float dot_ref(const ggml_job *j, const uint8_t *row, uint32_t t)
{
    const ra_weight *w = j->w;
    const uint32_t nb = w->cols / QK, nk = w->cols / 256;
    switch (w->type) {
    case RA_W_Q4_1: return ra_ggml_dot_q4_1_ref(row, j->xq + (size_t)t * nb, nb);
    case RA_W_Q5_0: return ra_ggml_dot_q5_0_ref(row, j->xq + (size_t)t * nb, nb);
    case RA_W_Q4_K:
        return w->rows % 8 ? ra_ggml_dot_q4_k_ref(row, j->xk + (size_t)t * nk, nk)
                           : ra_ggml_dot_q4_k_8x8_ref(row, j->xk + (size_t)t * nk, nk);
    case RA_W_Q6_K: return ra_ggml_dot_q6_k_ref(row, j->xk + (size_t)t * nk, nk);
    default: return ra_ggml_dot_q8_0_ref(row, j->xq + (size_t)t * nb, nb);
    }
}

static void ggml_task(void *ctx, uint32_t task)
{
    const ggml_job *j = ctx;
    const ra_weight *w = j->w;
    const uint32_t r0 = task * ROWS_PER_TASK;
    const uint32_t r1 = r0 + ROWS_PER_TASK < w->rows ? r0 + ROWS_PER_TASK : w->rows;
#ifdef GGML_X86
    if (j->path == RA_CPU_PATH_AVX2) {
        const uint32_t nb = w->cols / QK, nk = w->cols / 256;
        switch (w->type) {
        case RA_W_Q4_1:
        case RA_W_Q8_0: rows_avx2(w, j->xq, j->n, j->y, r0, r1); return;
        case RA_W_Q5_0:
            for (uint32_t t = 0; t < j->n; t++)
                for (uint32_t r = r0; r < r1; r++)
                    j->y[(size_t)t * w->rows + r] = dot_q5_0_avx2(w->data + (size_t)r * w->row_bytes, j->xq + (size_t)t * nb, nb);
            return;
        case RA_W_Q6_K:
            for (uint32_t t = 0; t < j->n; t++)
                for (uint32_t r = r0; r < r1; r++)
                    j->y[(size_t)t * w->rows + r] = dot_q6_k_avx2(w->data + (size_t)r * w->row_bytes, j->xk + (size_t)t * nk, nk);
            return;
        case RA_W_Q4_K:
            if (w->rows % 8) break; /* ggml's vec_dot: the scalar code */
            for (uint32_t t = 0; t < j->n; t++)
                for (uint32_t r = r0; r < r1; r++)
                    j->y[(size_t)t * w->rows + r] =
                        dot_q4_k_8x8_avx2(w->data + (size_t)r * w->row_bytes, j->xk + (size_t)t * nk, nk);
            return;
        default: break;
        }
    }
#endif
    for (uint32_t t = 0; t < j->n; t++)
        for (uint32_t r = r0; r < r1; r++) j->y[(size_t)t * w->rows + r] = dot_ref(j, w->data + (size_t)r * w->row_bytes, t);
}

/* ggml_compute_forward_mul_mat's vec_dot path: activations quantized to the
 * weight type's vec_dot_type (q8_1 for q4_1, q8_0 for q8_0), then one dot
 * per output. */
ra_status ra_ggml_matmul(ra_pool *p, ra_cpu_path path, const ra_weight *w, const float *x, uint32_t n, float *y)
{
    if (w->type == RA_W_F32 || w->type == RA_W_BF16 || w->type == RA_W_Q4_0)
        return ra_fail(RA_ERR_UNSUPPORTED, "kernel ggml-avx2 has no product for %s weights", ra_wtype_name(w->type));
    const bool super = w->type == RA_W_Q4_K || w->type == RA_W_Q6_K;
    if (w->cols % (super ? 256 : QK)) return ra_fail(RA_ERR_INTERNAL, "quantized weight with %u columns", w->cols);
    ggml_job j = {w, NULL, NULL, n, y, path};
    ra_ggml_q8 *xq = NULL;
    ra_ggml_q8k *xk = NULL;
    if (super) {
        const uint32_t nk = w->cols / 256;
        RA_TRY(ra_calloc(&xk, (size_t)n * nk, sizeof *xk));
        for (uint32_t t = 0; t < n; t++) ra_ggml_quantize_q8k(x + (size_t)t * w->cols, w->cols, xk + (size_t)t * nk);
    } else {
        const uint32_t nb = w->cols / QK;
        RA_TRY(ra_calloc(&xq, (size_t)n * nb, sizeof *xq));
        for (uint32_t t = 0; t < n; t++)
            ra_ggml_quantize_q8(x + (size_t)t * w->cols, w->cols, w->type == RA_W_Q4_1, xq + (size_t)t * nb);
    }
    j.xq = xq;
    j.xk = xk;
    ra_pool_for(p, (w->rows + ROWS_PER_TASK - 1) / ROWS_PER_TASK, ggml_task, &j);
    free(xq);
    free(xk);
    return RA_OK;
}
