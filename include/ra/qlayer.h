/* A quantized linear layer held in one of the checkpoint formats' in-memory
 * forms (formats/qlayer.c), behind one interface so that a ra_weight of type
 * RA_W_QUANT dispatches to the format's own matmul and dequantizer: the CPU
 * matmul (src/backend/cpu/matmul.c) and the row reader (embedding lookup,
 * export) never know which format it is. */
#ifndef RA_QLAYER_H
#define RA_QLAYER_H

#include "ra/fp8.h"
#include "ra/marlin.h"
#include "ra/mxfp4.h"
#include "ra/nvfp4.h"
#include "ra/quant.h"

typedef enum { RA_QL_INTQ, RA_QL_MARLIN, RA_QL_FP8, RA_QL_NVFP4, RA_QL_MXFP4 } ra_qlayer_kind;

struct ra_qlayer {
    ra_qlayer_kind kind;
    ra_fp8_act act;  /* FP8: dynamic activation quantization (W8A8), or none */
    /* Set by ra_weight_from_qlayer: the layer's exact dequantization, rows in
     * the order its matmul reduces them (Marlin: columns gathered by perm;
     * FP8 W8A8: the E4M3 codes decoded, unscaled), so each call multiplies
     * instead of dequantizing again. The result is bitwise the same: the
     * weight-only matmul is defined as the float kernel over these rows. */
    float *deq;
    union {
        ra_intq intq;   /* AWQ, GPTQ, compressed-tensors pack-quantized */
        ra_marlin marlin;
        ra_fp8_weight fp8;
        ra_nvfp4_weight nvfp4;
        ra_mxfp4_weight mxfp4;
    } u;
};
typedef struct ra_qlayer ra_qlayer;

uint32_t ra_qlayer_rows(const ra_qlayer *q);
uint32_t ra_qlayer_cols(const ra_qlayer *q);
/* y[t][r] = W[r,:] . x[t,:] with the format's matmul (its documented order). */
ra_status ra_qlayer_matmul(ra_pool *p, const ra_qlayer *q, const float *x, uint32_t n, float *y);
/* Row r of W in the source column order, exactly as the format dequantizes it. */
ra_status ra_qlayer_row_f32(const ra_qlayer *q, uint32_t r, float *out);
void ra_qlayer_free(ra_qlayer *q);

/* Moves *q (zeroed after) into a new weight of type RA_W_QUANT that owns it,
 * with its dequantization computed once (deq above). */
ra_status ra_weight_from_qlayer(ra_qlayer *q, ra_weight *out);

#endif
