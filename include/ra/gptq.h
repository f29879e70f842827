/* GPTQ checkpoints as AutoGPTQ and GPTQModel write them, 4 or 8 bits
 * (formats/gptq.c). With pf = 32 / bits values per word, per layer:
 *   qweight I32 [K/pf, N]      word (r, n) field j = code of row k = pf*r + j (natural order along K)
 *   qzeros  I32 [ceil(K/G), N/pf] word (g, c) field j = stored zero of column pf*c + j
 *   scales  F16 [ceil(K/G), N]
 *   g_idx   I32 [K]            group of each input column (act-order scatters them)
 * W[n][k] = (u - z) * s of group g_idx[k]. The stored zero is z - 1 in v1
 * (checkpoint_format "gptq", every AutoGPTQ file) and z in v2 ("gptq_v2",
 * GPTQModel). The layer decodes to ra_intq. */
#ifndef RA_GPTQ_H
#define RA_GPTQ_H

#include "ra/quant.h"

typedef enum { RA_GPTQ_V1, RA_GPTQ_V2 } ra_gptq_zeros;

typedef struct {
    uint32_t bits;        /* 4 or 8 */
    int32_t group_size;   /* -1: one group per row (G = K) */
    bool sym;             /* the quantizer's choice; readers take the zeros from qzeros either way */
    ra_gptq_zeros zeros;  /* v1 or v2 qzeros */
} ra_gptq_config;

/* RTN with AutoGPTQ's Quantizer.find_params rule per group, in float32:
 * xmin = min(min w, 0), xmax = max(max w, 0); sym: xmax = max(|xmin|, xmax)
 * and xmin = -xmax if xmin < 0 (a group with no negative weight keeps
 * xmin = 0); both 0 -> [-1, 1]; s = (xmax - xmin) / (2^bits - 1) rounded to
 * f16; z = 2^(bits-1) (sym) or round(-xmin / s); u = clamp(round(w / s) + z,
 * 0, 2^bits - 1), half to even, with the stored scale. perm (act-order, may
 * be NULL): columns in quantization order, e.g. by descending Hessian
 * diagonal; g_idx[perm[i]] = i / G. */
ra_status ra_gptq_quantize(const float *w, uint32_t rows, uint32_t cols, const ra_gptq_config *c, const int32_t *perm,
                           ra_intq *out);
/* The rule above for one group (an ra_intq_group_rule), and the code of one
 * weight under a group's stored scale and zero: clamp(round(w / s) + z, 0,
 * 2^bits - 1). The calibrated quantizer (src/quant/gptq_calib.c) uses both. */
ra_status ra_gptq_group_rule(const float *vals, uint32_t n, const ra_intq_params *p, uint8_t *codes, float *scale,
                             uint16_t *zero);
uint8_t ra_gptq_code(float w, float scale, uint16_t zero, uint32_t bits);
/* qweight, qzeros (v1 or v2), scales, g_idx into an empty set (left empty on
 * failure). v1 cannot hold a zero point of 0 (RA_ERR_UNSUPPORTED): AutoGPTQ's
 * packer floods the higher fields of the word with ones and GPTQModel's word
 * subtraction borrows from the next field, so no v1 reader decodes it. */
ra_status ra_gptq_pack(const ra_intq *q, ra_gptq_zeros zeros, ra_qtensors *out);
/* From qweight, qzeros, scales (F16, BF16 or F32) and g_idx (optional: k / G
 * without it), with the config's bits, group_size and zeros format; every
 * g_idx entry must name an existing group. On failure *out is left empty. */
ra_status ra_gptq_unpack(const ra_qtensors *t, const ra_gptq_config *c, ra_intq *out);

/* GPTQModel's conversions of a whole qzeros word: v1 -> v2 adds 1 to every
 * field (+0x11111111 for 4 bits, +0x01010101 for 8), v2 -> v1 subtracts it,
 * carries and borrows included, exactly as its word arithmetic does. */
uint32_t ra_gptq_zeros_v1_to_v2(uint32_t word, uint32_t bits);
uint32_t ra_gptq_zeros_v2_to_v1(uint32_t word, uint32_t bits);

#endif
