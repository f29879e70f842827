/* GPTQ with calibration (src/quant/gptq_calib.c): Frantar et al., as AutoGPTQ's
 * GPTQ.fasterquant does it, on one linear layer, with GPTQ's own scale/zero
 * rule (include/ra/gptq.h). The result is an ra_intq that packs as GPTQ (and,
 * when its zeros allow, as AWQ, w4a16 or Marlin).
 *
 * Deterministic: the Hessian entries are summed over the samples in order,
 * the factorization is sequential, and every weight row is quantized by one
 * task in column order; rows do not interact, so the codes, scales and zeros
 * are bit for bit the same for any thread count.
 *
 * Memory: the K x K double Hessian (8 K^2 bytes: 757 MB for K = 9728, 1.6 GB
 * for K = 14336), a transposed double copy of each batch of activations while
 * it is added (8 n K bytes), 16 rows of K doubles per thread, and the output
 * (N K code bytes); the float32 weights and activations are the caller's.
 * Time: about K^3 / 3 multiply-adds for the factorization and N K^2 / 2 for
 * the updates (K = 4096: 19 s for the factorization on two cores). */
#ifndef RA_GPTQ_CALIB_H
#define RA_GPTQ_CALIB_H

#include "ra/cpu.h"
#include "ra/gptq.h"

/* hessian [cols][cols] += x^T x over n rows of x [n][cols]: each entry a
 * double sum over the rows in four lanes by row index (t % 4), then
 * (l0 + l1) + (l2 + l3). GPTQ's 2 / n factor cancels in the algorithm, so it
 * is left out. Start from a zeroed matrix; call once per batch. */
ra_status ra_gptq_hessian_add(ra_pool *p, double *hessian, const float *x, uint32_t n, uint32_t cols);

typedef struct {
    ra_gptq_config q;     /* bits, group_size (-1: per row), sym; the zeros format does not matter here */
    float damp_percent;   /* damping added to the diagonal, times its mean: 0.01 in AutoGPTQ */
    bool act_order;       /* desc_act: columns in descending order of the Hessian diagonal (stable) */
} ra_gptq_calib_config;

/* Quantize w [rows][cols] against `hessian` (overwritten: it becomes the
 * upper Cholesky factor of the damped inverse). Steps, in AutoGPTQ's order:
 * dead columns (zero diagonal) get diagonal 1 and zero weights; act-order
 * permutes; damping; U upper triangular with U^T U = H^-1 (computed as the
 * inverse of the reverse Cholesky factor V, H = V V^T, in double). Then for
 * each row, column j in (permuted) order: at each group start the group's
 * scale and zero from the row's current weights in that group (per row: the
 * whole row, once); u = the code of w_j; e = (w_j - deq(u)) / U[j][j];
 * w_k -= e * U[j][k] for k > j, in order. The weights are updated in double,
 * the codes computed from their float32 rounding. */
ra_status ra_gptq_quantize_calibrated(ra_pool *p, const float *w, uint32_t rows, uint32_t cols, double *hessian,
                                      const ra_gptq_calib_config *c, ra_intq *out);

#endif
