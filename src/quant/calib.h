/* Private to src/quant/: calibration activations, one decoder block at a time
 * (calib.c). The calibration sequences' hidden states are kept for the block
 * being quantized; its four inputs (q/k/v, o, gate/up, down) are captured
 * through the float block and reduced at once to their Hessians x^T x (GPTQ)
 * or the Hessians' diagonals (act-order for RTN); then the block's quantized
 * form moves the hidden states on, so each block is calibrated on what the
 * quantized blocks before it produce (GPTQ's sequential order). Every sum is
 * in a fixed order: the same bytes on any thread count. */
#ifndef RA_QUANT_CALIB_H
#define RA_QUANT_CALIB_H

#include "ra/model.h"
#include "ra/quantize.h"

typedef struct ra_calib ra_calib;

/* The seven linear layers of a block, in this order: q, k, v, o, gate, up, down. */
const char *ra_calib_linear_name(int i);
void ra_calib_linear_shape(const ra_model_config *c, int i, uint32_t *rows, uint32_t *cols);

/* Embeds the calibration tokens (bf16-rounded embeddings). full_hessian:
 * whole Hessians (GPTQ), else only their diagonals (act-order). */
ra_status ra_calib_open(const ra_model_desc *d, const ra_model_config *c, const ra_calib_tokens *t, ra_pool *p,
                        bool full_hessian, ra_calib **out);
/* Runs block l (float weights L) on the hidden states and reduces its inputs. */
ra_status ra_calib_capture(ra_calib *cb, uint32_t l, const ra_layer *L);
/* A new copy of the Hessian of linear i's input (GPTQ overwrites its copy). */
ra_status ra_calib_hessian_copy(const ra_calib *cb, uint32_t i, double **out);
/* Linear i's columns in descending order of the Hessian's diagonal, ties in column order. */
ra_status ra_calib_act_order(const ra_calib *cb, uint32_t i, int32_t **perm);
/* The mean square of each of linear i's input channels over the calibration
 * tokens (the Hessian's diagonal / tokens): *out[*k], valid until the next call
 * for the same input or the next capture. */
ra_status ra_calib_mean_squares(ra_calib *cb, uint32_t i, const double **out, uint32_t *k);
/* AWQ (awq_calib.c): block L's float linears scaled per input channel, the
 * inverse scales folded into its norms and up_proj, then clipped per group,
 * all in place, from the mean squares of the block just captured. */
ra_status ra_awq_calibrate_block(ra_calib *cb, const ra_qformat *f, ra_layer *L);
/* Moves the hidden states through block l in its quantized form Q. */
ra_status ra_calib_advance(ra_calib *cb, uint32_t l, const ra_layer *Q);
/* Bytes of the block activations and of the Hessians (for the memory report). */
void ra_calib_stats(const ra_calib *cb, uint64_t *act_bytes, uint64_t *hessian_bytes);
void ra_calib_close(ra_calib *cb);

#endif
