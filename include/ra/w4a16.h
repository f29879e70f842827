/* compressed-tensors "pack-quantized" checkpoints (llm-compressor's W4A16 and
 * W8A16), formats/w4a16.c. With pf = 32 / bits, per layer:
 *   weight_packed     I32 [N, ceil(K/pf)]  field j of word (n, c) = u of column pf*c + j,
 *                                          u = q + 2^(bits-1), K padded with u = 0
 *   weight_scale      model dtype [N, ceil(K/G)]  ([N, 1] for strategy "channel")
 *   weight_zero_point I32 [ceil(N/pf), ceil(K/G)]  asymmetric only: packed along N (dim 0),
 *                                          field j of word (c, g) = zp + 2^(bits-1) of row pf*c + j
 *   weight_g_idx      I32 [K]              actorder "group" only
 *   weight_shape      I64 [2] = [N, K]
 * W[n][k] = (q - zp) * s = (u - u_zp) * s, zp = 0 when symmetric. The layer
 * decodes to ra_intq with codes u and zeros u_zp (2^(bits-1) when symmetric). */
#ifndef RA_W4A16_H
#define RA_W4A16_H

#include "ra/quant.h"

typedef struct {
    uint32_t bits;              /* 4 or 8 */
    int32_t group_size;         /* strategy "group": G; -1: strategy "channel" */
    bool symmetric;
    ra_scale_dtype scale_dtype; /* the model's dtype (weight_scale is stored in it) */
} ra_w4a16_config;

/* RTN with compressed-tensors' calculate_qparams and quantize, per group:
 * min = min(min w, 0), max = max(max w, 0); symmetric: s = max(|min|, max) /
 * ((2^bits - 1) / 2) (absmax / 7.5 for 4 bits), zp = 0; asymmetric: s = (max -
 * min) / (2^bits - 1), zp = round(clamp(-2^(bits-1) - min / s, q_min, q_max))
 * from the unrounded s. The stored s is s rounded to scale_dtype, a zero scale
 * becoming that dtype's eps; q = clamp(round(w / s + zp), q_min, q_max) with
 * the stored s, half to even. Strategy "group" needs G | K, as
 * compressed-tensors does. perm: actorder "group" (weight_g_idx), or NULL. */
ra_status ra_w4a16_quantize(const float *w, uint32_t rows, uint32_t cols, const ra_w4a16_config *c,
                            const int32_t *perm, ra_intq *out);
/* weight_packed, weight_scale, weight_zero_point (unless symmetric),
 * weight_g_idx (when q has one), weight_shape, into an empty set (left empty
 * on failure). symmetric: every zero must be 2^(bits-1). */
ra_status ra_w4a16_pack(const ra_intq *q, bool symmetric, ra_qtensors *out);
/* From the tensors above and the config's bits, strategy/group_size and
 * symmetric; weight_shape may be I64 or I32. On failure *out is left empty. */
ra_status ra_w4a16_unpack(const ra_qtensors *t, const ra_w4a16_config *c, ra_intq *out);

#endif
