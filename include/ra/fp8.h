/* FP8 (E4M3) weights with per-tensor, per-channel or 128x128 block scales, and
 * the dynamic activation quantization of W8A8 (formats/fp8.c). Scales are
 * multipliers: W[n][k] = e4m3(q[n][k]) * s, rounded once to float32.
 * Checkpoint tensors:
 *   compressed-tensors float-quantized: weight F8_E4M3 [N, K], weight_scale in
 *     the model dtype: [1] (tensor; older files a scalar []), [N, 1] (channel),
 *     [ceil(N/128), ceil(K/128)] (block);
 *   DeepSeek-V3: weight F8_E4M3 [N, K], weight_scale_inv F32 [ceil(N/128),
 *     ceil(K/128)] -- despite the name also a multiplier. */
#ifndef RA_FP8_H
#define RA_FP8_H

#include "ra/quant.h"

typedef enum { RA_FP8_TENSOR, RA_FP8_CHANNEL, RA_FP8_BLOCK } ra_fp8_scheme;
typedef enum { RA_FP8_NAMES_CT, RA_FP8_NAMES_DEEPSEEK } ra_fp8_names;

#define RA_FP8_BLOCK_SIZE 128 /* weight blocks are 128 x 128, activation groups 128 */

typedef struct {
    uint32_t rows, cols;          /* N, K */
    ra_fp8_scheme scheme;
    uint32_t scale_rows, scale_cols; /* 1 x 1, N x 1, or ceil(N/128) x ceil(K/128) */
    ra_scale_dtype scale_dtype;
    uint8_t *codes;               /* [rows][cols] E4M3 bytes */
    float *scales;                /* [scale_rows][scale_cols], exact in scale_dtype */
} ra_fp8_weight;

/* RTN as compressed-tensors and DeepSeek's weight_quant do it, per tensor,
 * row or 128x128 block (edge blocks use the elements they have):
 * s = amax / 448 rounded to scale_dtype (a zero scale becomes the dtype's eps,
 * where DeepSeek's kernel would divide 0 by 0), q = e4m3(clamp(w / s, -448,
 * 448)) rounded to nearest even, with the stored s. */
ra_status ra_fp8_quantize(const float *w, uint32_t rows, uint32_t cols, ra_fp8_scheme scheme, ra_scale_dtype dt,
                          ra_fp8_weight *out);
void ra_fp8_free(ra_fp8_weight *w);
float ra_fp8_scale_at(const ra_fp8_weight *w, uint32_t n, uint32_t k);
void ra_fp8_dequantize_rows(const ra_fp8_weight *w, uint32_t r0, uint32_t r1, float *out);
ra_status ra_fp8_dequantize(const ra_fp8_weight *w, float **out);

/* weight and its scale, into an empty set (left empty on failure). DeepSeek
 * names need block scales in F32. */
ra_status ra_fp8_pack(const ra_fp8_weight *w, ra_fp8_names names, ra_qtensors *out);
/* The scale's shape must be the scheme's. On failure *out is left empty. */
ra_status ra_fp8_unpack(const ra_qtensors *t, ra_fp8_names names, ra_fp8_scheme scheme, ra_fp8_weight *out);

/* Dynamic activation quantization, as vLLM's CUDA kernels do it:
 *   RA_FP8_ACT_TOKEN (dynamic_per_token_scaled_fp8_quant): per row
 *     s = max(amax / 448, 1 / (448 * 512)), q = e4m3_satfinite(x / s);
 *   RA_FP8_ACT_GROUP (per_token_group_quant_8bit, group 128; DeepSeek's
 *     act_quant without the floor): per 128 columns of a row
 *     s = max(amax, 1e-10) / 448, q = e4m3_satfinite(x / s);
 * with correctly rounded float32 division (no reciprocal). A short last group
 * takes the columns left. q: [n][cols]; scales: [n][1] or [n][ceil(cols/128)]. */
typedef enum { RA_FP8_ACT_NONE, RA_FP8_ACT_TOKEN, RA_FP8_ACT_GROUP } ra_fp8_act;
uint32_t ra_fp8_act_groups(ra_fp8_act act, uint32_t cols);
void ra_fp8_quantize_activations(const float *x, uint32_t n, uint32_t cols, ra_fp8_act act, uint8_t *q, float *scales);

/* y[t][r] = W[r,:] . x[t,:].
 * RA_FP8_ACT_NONE (weight-only): x . dequantized W in ra_qlinear_matmul's order.
 * TOKEN / GROUP (W8A8): x quantized as above; K is cut into segments (128
 * columns when the weights are blocks or the activations groups, else all
 * of K); per segment the products e4m3(qa) * e4m3(qw) (exact in float32) are
 * summed in the 8-lane order of src/backend/cpu/matmul.c restarted at the
 * segment, then acc = acc + (dot * sa) * sw, segment by segment from the
 * left, acc starting at 0 -- the order of vLLM/DeepSeek's block FP8 GEMM
 * (accumulator += dot(a, b) * a_s * b_s). Bitwise independent of the batch and
 * the thread count. */
ra_status ra_fp8_matmul(ra_pool *p, const ra_fp8_weight *w, ra_fp8_act act, const float *x, uint32_t n, float *y);
/* The same W8A8 product with the weight codes already decoded: wdec[r][k] =
 * e4m3(codes[r][k]) (unscaled), as a loaded layer keeps them. */
ra_status ra_fp8_matmul_decoded(ra_pool *p, const ra_fp8_weight *w, ra_fp8_act act, const float *wdec, const float *x,
                                uint32_t n, float *y);

#endif
