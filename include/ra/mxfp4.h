/* MXFP4 (OCP MX: 32 E2M1 values share one E8M0 scale), formats/mxfp4.c.
 * W[n][k] = e2m1(q) * 2^(b - 127), exact (b = 0xFF is NaN). K % 32 == 0.
 * Checkpoint tensors, the same bytes under two names:
 *   gpt-oss / HF Mxfp4: <name>_blocks U8 [N, K/32, 16], <name>_scales U8 [N, K/32]
 *   compressed-tensors mxfp4-pack-quantized: weight_packed U8 [N, K/2], weight_scale U8 [N, K/32]
 * with element 2j of a block in the low nibble of byte j. */
#ifndef RA_MXFP4_H
#define RA_MXFP4_H

#include "ra/quant.h"

#define RA_MXFP4_GROUP 32

/* How the shared exponent is chosen from a block's amax (stored bytes decode
 * the same whatever rule chose them):
 *   OCP  floor(log2 amax) - 2 (OCP MX spec, microsoft/microxcaling, ggml);
 *   EVEN amax rounded up at the FP4 mantissa first (its float bits + 2^21,
 *        then the mantissa cleared), then floor(log2) - 2 (compressed-tensors,
 *        vLLM reference_mxfp4);
 *   CEIL ceil(log2(amax / 6)): never saturates (ModelOpt, gpt-oss's script).
 * The exponent is clamped to [-127, 127]; amax 0 gives -127. */
typedef enum { RA_MX_SCALE_OCP, RA_MX_SCALE_EVEN, RA_MX_SCALE_CEIL } ra_mx_scale_rule;
uint8_t ra_mxfp4_scale_byte(float amax, ra_mx_scale_rule rule);

/* codes E2M1, scales E8M0 bytes, group 32 */
typedef ra_blockq ra_mxfp4_weight;

/* RTN: per 32 weights the scale byte by `rule`, then q = e2m1(w / 2^e) to
 * nearest even, saturating at +-6 (the division by a power of two is exact). */
ra_status ra_mxfp4_quantize(const float *w, uint32_t rows, uint32_t cols, ra_mx_scale_rule rule, ra_mxfp4_weight *out);
void ra_mxfp4_free(ra_mxfp4_weight *w);
void ra_mxfp4_dequantize_rows(const ra_mxfp4_weight *w, uint32_t r0, uint32_t r1, float *out);
ra_status ra_mxfp4_dequantize(const ra_mxfp4_weight *w, float **out);
/* x . W^T in ra_qlinear_matmul's order over the dequantized weights. */
ra_status ra_mxfp4_matmul(ra_pool *p, const ra_mxfp4_weight *w, const float *x, uint32_t n, float *y);

typedef enum { RA_MXFP4_NAMES_GPT_OSS, RA_MXFP4_NAMES_CT } ra_mxfp4_names;
/* Into an empty set (left empty on failure). */
ra_status ra_mxfp4_pack(const ra_mxfp4_weight *w, ra_mxfp4_names names, ra_qtensors *out);
/* On failure *out is left empty. */
ra_status ra_mxfp4_unpack(const ra_qtensors *t, ra_mxfp4_names names, ra_mxfp4_weight *out);

#endif
