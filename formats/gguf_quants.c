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
    { RA_GGML_Q5_0, { "q5_0", 32,  22,  false } },
    { RA_GGML_Q5_1, { "q5_1", 32,  24,  false } },
    { RA_GGML_Q8_0, { "q8_0", 32,  34,  true } },
    { RA_GGML_Q8_1, { "q8_1", 32,  36,  false } },
    { RA_GGML_Q2_K, { "q2_k", 256, 84,  false } },
    { RA_GGML_Q3_K, { "q3_k", 256, 110, false } },
    { RA_GGML_Q4_K, { "q4_k", 256, 144, false } },
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
 *   q8_0: f16 d, i8 qs[32]              x = q * d
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
    case RA_GGML_Q8_0: dequant_q8_0(s, dst, nblocks); break;
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
    default: return ra_fail(RA_ERR_UNSUPPORTED, "quantizing to ggml type %s is not supported", t->name);
    }
}
