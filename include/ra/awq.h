/* AutoAWQ GEMM checkpoints, 4-bit (formats/awq.c). Per layer:
 *   qweight I32 [K, N/8]    word (k, c) nibble i = code of column n = 8c + AWQ_ORDER[i] at row k
 *   qzeros  I32 [K/G, N/8]  same packing, raw zero points z in [0, 15]
 *   scales  F16 [K/G, N]
 * with AWQ_ORDER = 0,2,4,6,1,3,5,7; W[n][k] = (u - z) * s of group k / G.
 * AutoAWQ requires K % G == 0 and N % 8 == 0; there is no g_idx. The layer
 * decodes to ra_intq (dequantize and multiply with ra_intq_*). */
#ifndef RA_AWQ_H
#define RA_AWQ_H

#include "ra/quant.h"

/* The nibble order of AutoAWQ's packer: nibble i holds column 8c + RA_AWQ_ORDER[i]. */
extern const uint8_t RA_AWQ_ORDER[8];

/* RTN as AutoAWQ's pseudo_quantize_tensor (zero_point=True) does it, per group
 * of group_size columns: s = max(max - min, 1e-5) / 15 rounded to f16,
 * z = clamp(-round(min / s), 0, 15), u = clamp(round(w / s) + z, 0, 15), with
 * round half to even and the stored (f16) scale. w is [rows][cols]. */
/* That rule for one group of n weights (AWQ's calibrated quantizer searches with it). */
ra_status ra_awq_group(const float *v, uint32_t n, const ra_intq_params *p, uint8_t *codes, float *scale, uint16_t *zero);
ra_status ra_awq_quantize(const float *w, uint32_t rows, uint32_t cols, uint32_t group_size, ra_intq *out);
/* qweight, qzeros, scales (the scales in q's dtype, F16 for AutoAWQ) into an
 * empty set, which is left empty on failure. */
ra_status ra_awq_pack(const ra_intq *q, ra_qtensors *out);
/* From qweight, qzeros, scales (F16, BF16 or F32) and the config's group_size;
 * on failure *out is left empty. */
ra_status ra_awq_unpack(const ra_qtensors *t, uint32_t group_size, ra_intq *out);

#endif
