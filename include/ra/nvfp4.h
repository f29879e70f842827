/* NVFP4 as compressed-tensors "nvfp4-pack-quantized" writes it (formats/nvfp4.c):
 * E2M1 values, one E4M3 scale per 16 along K, one float32 global scale.
 *   weight_packed       U8 [N, K/2]      two E2M1 codes per byte, even element low
 *   weight_scale        F8_E4M3 [N, K/16]
 *   weight_global_scale F32 [1]          a DIVISOR: g = 448 * 6 / amax(W)
 * W[n][k] = e2m1(q) * (e4m3(s) / g): the effective scale is rounded to float32
 * first, then the product (vLLM inverts g at load and multiplies by 1/g, which
 * can differ by an ulp; this reference divides, as compressed-tensors does).
 * K % 16 == 0. */
#ifndef RA_NVFP4_H
#define RA_NVFP4_H

#include "ra/quant.h"

#define RA_NVFP4_GROUP 16

typedef struct {
    ra_blockq b;          /* codes E2M1, scales E4M3 bytes, group 16 */
    float global_scale;   /* weight_global_scale */
} ra_nvfp4_weight;

/* RTN with compressed-tensors' rule: g = 2688 / max(amax, FLT_MIN) in float32
 * (1 if that is not finite); per 16 weights s = e4m3(clamp(g * (amax16 / 6),
 * +-448)), 0.125 in place of 0; q = e2m1(clamp(w / (s / g), +-6)), every
 * rounding to nearest even. */
ra_status ra_nvfp4_quantize(const float *w, uint32_t rows, uint32_t cols, ra_nvfp4_weight *out);
void ra_nvfp4_free(ra_nvfp4_weight *w);
/* e4m3(s) / g of the group holding column k of row n. */
float ra_nvfp4_block_scale(const ra_nvfp4_weight *w, uint32_t n, uint32_t k);
void ra_nvfp4_dequantize_rows(const ra_nvfp4_weight *w, uint32_t r0, uint32_t r1, float *out);
ra_status ra_nvfp4_dequantize(const ra_nvfp4_weight *w, float **out);
/* x . W^T in ra_qlinear_matmul's order over the dequantized weights (H100 has
 * no FP4 tensor cores: kernels dequantize too). */
ra_status ra_nvfp4_matmul(ra_pool *p, const ra_nvfp4_weight *w, const float *x, uint32_t n, float *y);
/* The three tensors into an empty set (left empty on failure). */
ra_status ra_nvfp4_pack(const ra_nvfp4_weight *w, ra_qtensors *out);
/* On failure *out is left empty. */
ra_status ra_nvfp4_unpack(const ra_qtensors *t, ra_nvfp4_weight *out);

#endif
