/* Marlin: 4-bit AWQ/GPTQ/w4a16 weights repacked into the tile layout of a
 * tensor-core mma.sync.m16n8k16 kernel (formats/marlin.c; docs/formats.md
 * has the layout word by word). K % 16 == 0 and N % 64 == 0.
 *   qweight [K/16][2N] words: row kt holds N/64 tiles of 16 x 64 weights, 128
 *     words each; word nt*128 + 4t + w holds, for r0 = 16kt + 2(t % 4) and
 *     c0 = 64nt + 16w + t/4, nibbles (k, n) = (r0,c0) (r0+8,c0) (r0,c0+8)
 *     (r0+8,c0+8) (r0+1,c0) (r0+9,c0) (r0+1,c0+8) (r0+9,c0+8): thread t's B
 *     fragment of the two n8 tiles at c0 and c0 + 8.
 *   scales [n_groups][N], 16-bit, permuted: an 8x8 transpose in each 64 values
 *     (grouped), or out[8i + t] = in[2i + (0,1,8,9,16,17,24,25)[t]] in each 32
 *     (one group per row).
 *   zeros  [n_groups][N/8] words (AWQ-style zero points) or none (GPTQ
 *     symmetric: u - 8).
 *   act-order: Marlin row k is source row perm[k], perm a stable argsort of
 *     g_idx; the kernel gathers the activations by perm and reads g_idx[perm].
 * Sources: IST-DASLab marlin/__init__.py, vLLM gptq_marlin_repack.cu,
 * awq_marlin_repack.cu and marlin_utils.py (marlin_permute_scales,
 * marlin_zero_points, marlin_sort_g_idx). */
#ifndef RA_MARLIN_H
#define RA_MARLIN_H

#include "ra/quant.h"

typedef struct {
    uint32_t rows, cols;        /* N, K */
    uint32_t group_size, n_groups;
    ra_scale_dtype scale_dtype; /* F16 or BF16 */
    uint32_t *qweight;          /* [K/16][2N] */
    uint16_t *scales;           /* [n_groups][N] scale bits, in Marlin's order */
    uint32_t *zeros;            /* [n_groups][N/8] or NULL (implicit 8) */
    int32_t *perm;              /* [K] Marlin row k is source row perm[k]; NULL without g_idx */
    int32_t *g_idx;             /* [K] group of each Marlin row (the source g_idx gathered by perm), or NULL */
} ra_marlin;

/* Repack a 4-bit layer. Needs K % 16 == 0, N % 64 == 0, 16-bit scales, groups
 * of a multiple of 16 columns (or one per row) that divide K, and zero points
 * in [0, 15]; zeros are stored unless every one is 8. */
ra_status ra_marlin_from_intq(const ra_intq *q, ra_marlin *out);
/* The exact inverse: the source layer, codes, zeros, scales and g_idx bit for bit. */
ra_status ra_marlin_to_intq(const ra_marlin *m, ra_intq *out);
void ra_marlin_free(ra_marlin *m);
/* W [N][K] in the source column order (equal to the source's dequantization). */
ra_status ra_marlin_dequantize(const ra_marlin *m, float **out);
/* Rows in Marlin's row order: out[(n - r0) * K + k] = W[n][perm[k]]. */
void ra_marlin_dequantize_rows(const ra_marlin *m, uint32_t r0, uint32_t r1, float *out);
/* y = x . W^T reduced in Marlin's row order: x gathered by perm, then the
 * order of ra_qlinear_matmul over ra_marlin_dequantize_rows. */
ra_status ra_marlin_matmul(ra_pool *p, const ra_marlin *m, const float *x, uint32_t n, float *y);

/* Tensor names: vLLM's repacked parameters (qweight, scales, qzeros, g_idx,
 * g_idx_sort_indices), or IST-DASLab's checkpoint (B, s: symmetric, no act-order). */
typedef enum { RA_MARLIN_NAMES_VLLM, RA_MARLIN_NAMES_DASLAB } ra_marlin_names;
ra_status ra_marlin_pack(const ra_marlin *m, ra_marlin_names names, ra_qtensors *out);
/* group_size: -1 for one group per row. On failure *out is left empty. */
ra_status ra_marlin_unpack(const ra_qtensors *t, ra_marlin_names names, int32_t group_size, ra_marlin *out);

#endif
