/* GGML tensor types: block geometry and exact CPU dequantizers.
 * Block layouts and formulas follow the GGUF specification (ggml's reference
 * dequantize_row_* functions); every value is computed in float32 in the
 * order written there, so results match ggml and the Python gguf package
 * bit for bit (the build uses -ffp-contract=off, so no FMA sneaks in). */
#include "ra/ggml_types.h"
#include "ra/util.h"

#include <float.h>
#include <math.h>
#include <string.h>

typedef struct {
    uint32_t id;
    ra_ggml_type_info info;
} type_row;

static const type_row type_table[] = {
    { RA_GGML_F32,  { "f32",  1,   4,   true } },
    { RA_GGML_F16,  { "f16",  1,   2,   true } },
    { RA_GGML_Q4_0, { "q4_0", 32,  18,  true } },
    { RA_GGML_Q4_1, { "q4_1", 32,  20,  true } },
    { RA_GGML_Q5_0, { "q5_0", 32,  22,  true } },
    { RA_GGML_Q5_1, { "q5_1", 32,  24,  false } },
    { RA_GGML_Q8_0, { "q8_0", 32,  34,  true } },
    { RA_GGML_Q8_1, { "q8_1", 32,  36,  false } },
    { RA_GGML_Q2_K, { "q2_k", 256, 84,  false } },
    { RA_GGML_Q3_K, { "q3_k", 256, 110, false } },
    { RA_GGML_Q4_K, { "q4_k", 256, 144, true } },
    { RA_GGML_Q5_K, { "q5_k", 256, 176, false } },
    { RA_GGML_Q6_K, { "q6_k", 256, 210, true } },
    { RA_GGML_Q8_K, { "q8_k", 256, 292, false } },
    { RA_GGML_I8,   { "i8",   1,   1,   false } },
    { RA_GGML_I16,  { "i16",  1,   2,   false } },
    { RA_GGML_I32,  { "i32",  1,   4,   false } },
    { RA_GGML_I64,  { "i64",  1,   8,   false } },
    { RA_GGML_F64,  { "f64",  1,   8,   false } },
    { RA_GGML_BF16, { "bf16", 1,   2,   true } },
};

const ra_ggml_type_info *ra_ggml_type_info_of(uint32_t type)
{
    for (size_t i = 0; i < sizeof type_table / sizeof type_table[0]; i++)
        if (type_table[i].id == type) return &type_table[i].info;
    return NULL;
}

ra_status ra_ggml_row_bytes(uint32_t type, uint64_t n, uint64_t *bytes)
{
    const ra_ggml_type_info *t = ra_ggml_type_info_of(type);
    if (!t) return ra_fail(RA_ERR_FORMAT, "unknown ggml type %u", type);
    if (n % t->block_elems)
        return ra_fail(RA_ERR_FORMAT, "%llu elements of %s is not a multiple of its block size %u",
                       (unsigned long long)n, t->name, t->block_elems);
    uint64_t blocks = n / t->block_elems;
    if (blocks > UINT64_MAX / t->block_bytes)
        return ra_fail(RA_ERR_FORMAT, "%llu elements of %s overflow a byte count",
                       (unsigned long long)n, t->name);
    *bytes = blocks * t->block_bytes;
    return RA_OK;
}

/* Block layouts (all little-endian, packed):
 *   q4_0: f16 d, u8 qs[16]              x = (q - 8) * d
 *   q4_1: f16 d, f16 m, u8 qs[16]       x = q * d + m
 *   q5_0: f16 d, u32 qh, u8 qs[16]      x = (q - 16) * d, bit 4 of element j in bit j of qh
 *   q8_0: f16 d, i8 qs[32]              x = q * d
 *   q4_k: f16 d, f16 dmin, u8 scales[12], u8 qs[128]
 *         8 sub-blocks of 32: x = (d * sc) * q - dmin * m, 6-bit sc and m packed (ra_q4_k_scale_min);
 *         bytes 32c..32c+31 hold elements 64c + l (low nibble) and 64c + 32 + l (high)
 *   q6_k: u8 ql[128], u8 qh[64], i8 scales[16], f16 d
 * In q4 blocks byte j holds element j (low nibble) and element j + 16 (high). */

static void dequant_q4_0(const uint8_t *b, float *y, uint64_t nblocks)
{
    for (uint64_t i = 0; i < nblocks; i++, b += 18, y += 32) {
        float d = ra_f16_to_f32(ra_le16(b));
        const uint8_t *qs = b + 2;
        for (int j = 0; j < 16; j++) {
            y[j] = (float)((qs[j] & 0x0f) - 8) * d;
            y[j + 16] = (float)((qs[j] >> 4) - 8) * d;
        }
    }
}

static void dequant_q4_1(const uint8_t *b, float *y, uint64_t nblocks)
{
    for (uint64_t i = 0; i < nblocks; i++, b += 20, y += 32) {
        float d = ra_f16_to_f32(ra_le16(b)), m = ra_f16_to_f32(ra_le16(b + 2));
        const uint8_t *qs = b + 4;
        for (int j = 0; j < 16; j++) {
            y[j] = (float)(qs[j] & 0x0f) * d + m;
            y[j + 16] = (float)(qs[j] >> 4) * d + m;
        }
    }
}

static void dequant_q5_0(const uint8_t *b, float *y, uint64_t nblocks)
{
    for (uint64_t i = 0; i < nblocks; i++, b += 22, y += 32) {
        const float d = ra_f16_to_f32(ra_le16(b));
        const uint32_t qh = ra_le32(b + 2);
        for (int j = 0; j < 16; j++) {
            y[j] = (float)(int)((b[6 + j] & 0x0f) + ((qh >> j & 1) << 4) - 16) * d;
            y[j + 16] = (float)(int)((b[6 + j] >> 4) + ((qh >> (j + 16) & 1) << 4) - 16) * d;
        }
    }
}

void ra_q4_k_scale_min(const uint8_t s[12], int j, uint8_t *sc, uint8_t *m)
{
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (uint8_t)((s[j + 4] & 0x0f) | (s[j - 4] >> 6) << 4);
        *m = (uint8_t)((s[j + 4] >> 4) | (s[j] >> 6) << 4);
    }
}

static void dequant_q4_k(const uint8_t *b, float *y, uint64_t nblocks)
{
    for (uint64_t i = 0; i < nblocks; i++, b += 144) {
        const float d = ra_f16_to_f32(ra_le16(b)), dmin = ra_f16_to_f32(ra_le16(b + 2));
        const uint8_t *q = b + 16;
        for (int c = 0; c < 4; c++, q += 32) {
            uint8_t sc, m;
            for (int h = 0; h < 2; h++, y += 32) {
                ra_q4_k_scale_min(b + 4, 2 * c + h, &sc, &m);
                const float dl = d * sc, ml = dmin * m;
                for (int l = 0; l < 32; l++) y[l] = dl * (float)(h ? q[l] >> 4 : q[l] & 15) - ml;
            }
        }
    }
}

static void dequant_q8_0(const uint8_t *b, float *y, uint64_t nblocks)
{
    for (uint64_t i = 0; i < nblocks; i++, b += 34, y += 32) {
        float d = ra_f16_to_f32(ra_le16(b));
        for (int j = 0; j < 32; j++) y[j] = (float)(int8_t)b[2 + j] * d;
    }
}

static void dequant_q6_k(const uint8_t *b, float *y, uint64_t nblocks)
{
    for (uint64_t i = 0; i < nblocks; i++, b += 210) {
        const uint8_t *ql = b, *qh = b + 128;
        const int8_t *sc = (const int8_t *)(b + 192);
        float d = ra_f16_to_f32(ra_le16(b + 208));
        /* two halves of 128 elements, each from 64 ql bytes, 32 qh bytes, 8 scales */
        for (int half = 0; half < 2; half++, ql += 64, qh += 32, sc += 8, y += 128) {
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int q1 = ((ql[l] & 0xf) | (((qh[l] >> 0) & 3) << 4)) - 32;
                int q2 = ((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) - 32;
                int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = d * (float)sc[is] * (float)q1;
                y[l + 32] = d * (float)sc[is + 2] * (float)q2;
                y[l + 64] = d * (float)sc[is + 4] * (float)q3;
                y[l + 96] = d * (float)sc[is + 6] * (float)q4;
            }
        }
    }
}

ra_status ra_ggml_dequantize(uint32_t type, const void *src, float *dst, uint64_t n)
{
    const ra_ggml_type_info *t = ra_ggml_type_info_of(type);
    if (!t) return ra_fail(RA_ERR_UNSUPPORTED, "cannot dequantize unknown ggml type %u", type);
    if (!t->dequant) return ra_fail(RA_ERR_UNSUPPORTED, "dequantizing ggml type %s is not supported", t->name);
    if (n % t->block_elems)
        return ra_fail(RA_ERR_FORMAT, "dequantize %s: %llu elements is not a multiple of the block size %u",
                       t->name, (unsigned long long)n, t->block_elems);
    const uint8_t *s = src;
    uint64_t nblocks = n / t->block_elems;
    switch (type) {
    case RA_GGML_F32:
        for (uint64_t i = 0; i < n; i++) {
            uint32_t u = ra_le32(s + 4 * i);
            memcpy(&dst[i], &u, 4);
        }
        break;
    case RA_GGML_F16:
        for (uint64_t i = 0; i < n; i++) dst[i] = ra_f16_to_f32(ra_le16(s + 2 * i));
        break;
    case RA_GGML_BF16:
        for (uint64_t i = 0; i < n; i++) dst[i] = ra_bf16_to_f32(ra_le16(s + 2 * i));
        break;
    case RA_GGML_Q4_0: dequant_q4_0(s, dst, nblocks); break;
    case RA_GGML_Q4_1: dequant_q4_1(s, dst, nblocks); break;
    case RA_GGML_Q5_0: dequant_q5_0(s, dst, nblocks); break;
    case RA_GGML_Q8_0: dequant_q8_0(s, dst, nblocks); break;
    case RA_GGML_Q4_K: dequant_q4_k(s, dst, nblocks); break;
    case RA_GGML_Q6_K: dequant_q6_k(s, dst, nblocks); break;
    default:
        return ra_fail(RA_ERR_INTERNAL, "ggml type %s is marked dequantizable but has no dequantizer", t->name);
    }
    return RA_OK;
}

/* ---- quantizers: ggml's reference rules (ggml-quants.c quantize_row_*_ref,
 * the functions llama.cpp's quantize tool runs; on x86-64 that file is built
 * without -march, so nothing there is contracted into FMA, nor here). ---- */

static void put_f16(uint8_t *p, float v)
{
    const uint16_t h = ra_f32_to_f16(v);
    p[0] = (uint8_t)h;
    p[1] = (uint8_t)(h >> 8);
}

/* d = absmax / 127, q = roundf(x / d) (half away from zero). */
static void quant_q8_0(const float *x, uint8_t *b, uint64_t nblocks)
{
    for (uint64_t i = 0; i < nblocks; i++, x += 32, b += 34) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127, id = d != 0.0f ? 1.0f / d : 0.0f;
        put_f16(b, d);
        for (int j = 0; j < 32; j++) b[2 + j] = (uint8_t)(int8_t)roundf(x[j] * id);
    }
}

/* d = (the signed value of largest magnitude) / -8, q = min(15, trunc(x / d + 8.5)). */
static void quant_q4_0(const float *x, uint8_t *b, uint64_t nblocks)
{
    for (uint64_t i = 0; i < nblocks; i++, x += 32, b += 18) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < 32; j++)
            if (amax < fabsf(x[j])) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        const float d = max / -8, id = d != 0.0f ? 1.0f / d : 0.0f;
        put_f16(b, d);
        for (int j = 0; j < 16; j++) {
            const int8_t q0 = (int8_t)(x[j] * id + 8.5f), q1 = (int8_t)(x[j + 16] * id + 8.5f);
            b[2 + j] = (uint8_t)((q0 < 15 ? q0 : 15) | (q1 < 15 ? q1 : 15) << 4);
        }
    }
}

/* d = (max - min) / 15, m = min, q = min(15, trunc((x - min) / d + 0.5)). */
static void quant_q4_1(const float *x, uint8_t *b, uint64_t nblocks)
{
    for (uint64_t i = 0; i < nblocks; i++, x += 32, b += 20) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < 32; j++) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        const float d = (max - min) / 15, id = d != 0.0f ? 1.0f / d : 0.0f;
        put_f16(b, d);
        put_f16(b + 2, min);
        for (int j = 0; j < 16; j++) {
            const int8_t q0 = (int8_t)((x[j] - min) * id + 0.5f), q1 = (int8_t)((x[j + 16] - min) * id + 0.5f);
            b[4 + j] = (uint8_t)((q0 < 15 ? q0 : 15) | (q1 < 15 ? q1 : 15) << 4);
        }
    }
}

/* d = (the signed value of largest magnitude) / -16, q = min(31, trunc(x / d + 16.5)). */
static void quant_q5_0(const float *x, uint8_t *b, uint64_t nblocks)
{
    for (uint64_t i = 0; i < nblocks; i++, x += 32, b += 22) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < 32; j++)
            if (amax < fabsf(x[j])) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        const float d = max / -16, id = d != 0.0f ? 1.0f / d : 0.0f;
        put_f16(b, d);
        uint32_t qh = 0;
        for (int j = 0; j < 16; j++) {
            const int8_t q0 = (int8_t)(x[j] * id + 16.5f), q1 = (int8_t)(x[j + 16] * id + 16.5f);
            const uint8_t u0 = (uint8_t)(q0 < 31 ? q0 : 31), u1 = (uint8_t)(q1 < 31 ? q1 : 31);
            b[6 + j] = (uint8_t)((u0 & 15) | (u1 & 15) << 4);
            qh |= (uint32_t)(u0 >> 4) << j | (uint32_t)(u1 >> 4) << (j + 16);
        }
        ra_put_le32(b + 2, qh);
    }
}

/* ggml's nearest_int: round half to even through the float adder (|v| < 2^22). */
static int nearest_int(float v)
{
    const float t = v + 12582912.0f;
    return (int)(ra_f32_bits(t) & 0x007fffff) - 0x00400000;
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* make_qkx2_quants: the scale and min of n values for codes 0..nmax that
 * minimize the weighted squared error, searched over nstep + 1 grid sizes
 * around nmax. Returns the scale; *neg_min = -min (>= 0). Every expression
 * is ggml's, in its order. */
static float fit_scale_min(int n, int nmax, const float *x, const float *w, uint8_t *L, float *neg_min, float rmin,
                           float rdelta, int nstep)
{
    uint8_t aux[32];
    float min = x[0], max = x[0], sum_w = w[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        memset(L, 0, (size_t)n);
        *neg_min = -min;
        return 0.0f;
    }
    float iscale = (float)nmax / (max - min), scale = 1 / iscale, best = 0;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)clampi(nearest_int(iscale * (x[i] - min)), 0, nmax);
        const float diff = scale * (float)L[i] + min - x[i];
        best += w[i] * (diff * diff);
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * (float)is + (float)nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            const int l = clampi(nearest_int(iscale * (x[i] - min)), 0, nmax);
            aux[i] = (uint8_t)l;
            sum_l += w[i] * (float)l;
            sum_l2 += w[i] * (float)l * (float)l;
            sum_xl += w[i] * (float)l * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (!(D > 0)) continue;
        float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D, this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
        if (this_min > 0) {
            this_min = 0;
            this_scale = sum_xl / sum_l2;
        }
        float err = 0;
        for (int i = 0; i < n; i++) {
            const float diff = this_scale * (float)aux[i] + this_min - x[i];
            err += w[i] * (diff * diff);
        }
        if (err < best) {
            memcpy(L, aux, (size_t)n);
            best = err;
            scale = this_scale;
            min = this_min;
        }
    }
    *neg_min = -min;
    return scale;
}

/* quantize_row_q4_K_ref: per sub-block of 32 a scale and min fitted with
 * weights sqrt(mean x^2) + |x|, both quantized to 6 bits against the block's
 * largest (d = max_scale / 63, dmin = max_min / 63 in fp16), then the codes
 * recomputed with the stored scales. */
static void quant_q4_k(const float *x, uint8_t *b, uint64_t nblocks)
{
    for (uint64_t i = 0; i < nblocks; i++, x += 256, b += 144) {
        uint8_t L[256];
        float w[32], scales[8], mins[8], max_scale = 0, max_min = 0;
        for (int j = 0; j < 8; j++) {
            const float *v = x + 32 * j;
            float sum_x2 = 0;
            for (int l = 0; l < 32; l++) sum_x2 += v[l] * v[l];
            const float av_x = sqrtf(sum_x2 / 32);
            for (int l = 0; l < 32; l++) w[l] = av_x + fabsf(v[l]);
            scales[j] = fit_scale_min(32, 15, v, w, L + 32 * j, &mins[j], -1.0f, 0.1f, 20);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f, inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
        uint8_t *sm = b + 4;
        memset(sm, 0, 12);
        for (int j = 0; j < 8; j++) {
            uint8_t ls = (uint8_t)nearest_int(inv_scale * scales[j]), lm = (uint8_t)nearest_int(inv_min * mins[j]);
            ls = ls < 63 ? ls : 63;
            lm = lm < 63 ? lm : 63;
            if (j < 4) {
                sm[j] = ls;
                sm[j + 4] = lm;
            } else {
                sm[j + 4] = (uint8_t)((ls & 15) | (lm & 15) << 4);
                sm[j - 4] |= (uint8_t)((ls >> 4) << 6);
                sm[j] |= (uint8_t)((lm >> 4) << 6);
            }
        }
        put_f16(b, max_scale / 63.0f);
        put_f16(b + 2, max_min / 63.0f);
        const float d = ra_f16_to_f32(ra_le16(b)), dmin = ra_f16_to_f32(ra_le16(b + 2));
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            ra_q4_k_scale_min(sm, j, &sc, &m);
            const float dl = d * sc;
            if (dl == 0.0f) continue;
            const float dm = dmin * m;
            for (int l = 0; l < 32; l++) L[32 * j + l] = (uint8_t)clampi(nearest_int((x[32 * j + l] + dm) / dl), 0, 15);
        }
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) b[16 + 32 * c + l] = (uint8_t)(L[64 * c + l] | L[64 * c + 32 + l] << 4);
    }
}

/* make_qx_quants with rmse_type 1 (weights x^2, no importance): a signed
 * scale for codes -nmax..nmax-1, the best of 19 grid sizes around nmax.
 * Returns the scale; L gets code + nmax. */
static float fit_scale_sym(int n, int nmax, const float *x, int8_t *L)
{
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            max = x[i];
        }
    if (amax < 1e-15f) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    float iscale = (float)-nmax / max, sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        const int l = clampi(nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)(l + nmax);
        const float w = x[i] * x[i];
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f, best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        iscale = -((float)nmax + 0.1f * (float)is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            const int l = clampi(nearest_int(iscale * x[i]), -nmax, nmax - 1);
            const float w = x[i] * x[i];
            sumlx += w * x[i] * (float)l;
            suml2 += w * (float)l * (float)l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) L[i] = (int8_t)(nmax + clampi(nearest_int(iscale * x[i]), -nmax, nmax - 1));
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* quantize_row_q6_K_ref: a signed scale per 16 values (fit_scale_sym),
 * quantized to int8 against the block's largest (d = max / -128 in fp16),
 * then the codes recomputed with the stored scales. */
static void quant_q6_k(const float *x, uint8_t *b, uint64_t nblocks)
{
    for (uint64_t i = 0; i < nblocks; i++, x += 256, b += 210) {
        int8_t L[256];
        float scales[16], max_scale = 0, max_abs = 0;
        for (int g = 0; g < 16; g++) {
            scales[g] = fit_scale_sym(16, 32, x + 16 * g, L + 16 * g);
            if (fabsf(scales[g]) > max_abs) {
                max_abs = fabsf(scales[g]);
                max_scale = scales[g];
            }
        }
        memset(b, 0, 210);
        if (max_abs < 1e-15f) continue; /* all zero, d = +0 */
        const float iscale = -128.0f / max_scale;
        put_f16(b + 208, 1 / iscale);
        int8_t *sc = (int8_t *)(b + 192);
        for (int g = 0; g < 16; g++) {
            const int v = nearest_int(iscale * scales[g]);
            sc[g] = (int8_t)(v < 127 ? v : 127);
        }
        const float d = ra_f16_to_f32(ra_le16(b + 208));
        for (int g = 0; g < 16; g++) {
            const float dg = d * (float)sc[g];
            if (dg == 0.0f) continue;
            for (int l = 0; l < 16; l++) L[16 * g + l] = (int8_t)(clampi(nearest_int(x[16 * g + l] / dg), -32, 31) + 32);
        }
        for (int h = 0; h < 2; h++) {
            uint8_t *ql = b + 64 * h, *qh = b + 128 + 32 * h;
            const int8_t *q = L + 128 * h;
            for (int l = 0; l < 32; l++) {
                ql[l] = (uint8_t)((q[l] & 15) | (q[l + 64] & 15) << 4);
                ql[l + 32] = (uint8_t)((q[l + 32] & 15) | (q[l + 96] & 15) << 4);
                qh[l] = (uint8_t)(q[l] >> 4 | (q[l + 32] >> 4) << 2 | (q[l + 64] >> 4) << 4 | (q[l + 96] >> 4) << 6);
            }
        }
    }
}

ra_status ra_ggml_quantize(uint32_t type, const float *src, void *dst, uint64_t n)
{
    const ra_ggml_type_info *t = ra_ggml_type_info_of(type);
    if (!t) return ra_fail(RA_ERR_UNSUPPORTED, "cannot quantize to unknown ggml type %u", type);
    if (n % t->block_elems)
        return ra_fail(RA_ERR_FORMAT, "quantize %s: %llu elements is not a multiple of the block size %u", t->name,
                       (unsigned long long)n, t->block_elems);
    const uint64_t nblocks = n / t->block_elems;
    switch (type) {
    case RA_GGML_Q8_0: quant_q8_0(src, dst, nblocks); return RA_OK;
    case RA_GGML_Q4_0: quant_q4_0(src, dst, nblocks); return RA_OK;
    case RA_GGML_Q4_1: quant_q4_1(src, dst, nblocks); return RA_OK;
    case RA_GGML_Q5_0: quant_q5_0(src, dst, nblocks); return RA_OK;
    case RA_GGML_Q4_K: quant_q4_k(src, dst, nblocks); return RA_OK;
    case RA_GGML_Q6_K: quant_q6_k(src, dst, nblocks); return RA_OK;
    default: return ra_fail(RA_ERR_UNSUPPORTED, "quantizing to ggml type %s is not supported", t->name);
    }
}
