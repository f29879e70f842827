/* The quantized formats as rows of the traits table (formats/format.c): the
 * parameters each row derives its weights with, and the operations that tie
 * a row to its checkpoint layout (formats/qformat.c): RTN quantization of one
 * linear layer into the in-memory layer, packing into the checkpoint's
 * tensors, unpacking a real checkpoint's tensors, and which checkpoints a row
 * can load. The math itself is in the per-format files (awq.c, gptq.c, ...). */
#ifndef RA_QFORMAT_H
#define RA_QFORMAT_H

#include "ra/desc.h"
#include "ra/qlayer.h"

typedef enum { RA_QF_AWQ, RA_QF_GPTQ, RA_QF_W4A16, RA_QF_MARLIN, RA_QF_FP8, RA_QF_NVFP4, RA_QF_MXFP4 } ra_qfamily;
/* How `run` derives the row from a base model: round to nearest, GPTQ
 * calibrated on the calibration text, or AWQ's activation-aware scales and
 * clipping from it, then round to nearest (src/quant/). */
typedef enum { RA_QMETHOD_RTN, RA_QMETHOD_GPTQ, RA_QMETHOD_AWQ } ra_qmethod;

typedef struct ra_qformat {
    ra_qfamily family;
    ra_qmethod method;
    uint32_t bits;            /* integer formats: 4 or 8 */
    int32_t group_size;       /* integer formats: columns per group, -1 for one group per row */
    bool sym;                 /* integer formats: symmetric (AWQ: false = zero points) */
    bool act_order;           /* GPTQ: columns in descending order of the calibration Hessian's diagonal */
    ra_fp8_scheme fp8_scheme; /* FP8 weights: per channel or 128x128 blocks */
    ra_fp8_act fp8_act;       /* FP8 activations: none (weight-only), per token or per 128-group */
} ra_qformat;

/* The row's group size made to fit a model: integer formats' groups must
 * divide every linear layer's input width (AutoAWQ, compressed-tensors and
 * Marlin require it), so a default of 128 halves until it does (SmolLM2's
 * 576: 64). Returns the size chosen (0 for formats without groups). */
int32_t ra_qformat_fit_group(ra_qformat *f, uint32_t dim, uint32_t q_dim, uint32_t ffn_dim);

/* Whether deriving the row needs calibration activations (GPTQ, AWQ, act-order). */
static inline bool ra_qformat_calibrated(const ra_qformat *f) { return f->method != RA_QMETHOD_RTN || f->act_order; }

/* The checkpoint family's name: "awq", "gptq", "w4a16", "marlin", "fp8", "nvfp4", "mxfp4". */
const char *ra_qfamily_name(ra_qfamily f);

/* RTN of w [rows][cols] (float32) with the format's own rule (docs/formats.md).
 * perm: act-order column order (GPTQ), else NULL. Marlin quantizes as GPTQ
 * symmetric and repacks. */
ra_status ra_qformat_quantize(const ra_qformat *f, const float *w, uint32_t rows, uint32_t cols, const int32_t *perm,
                              ra_qlayer *out);
/* The in-memory layer (integer formats) as the row keeps it: Marlin repacks,
 * the others take it as it is. Consumes *q. */
ra_status ra_qformat_from_intq(const ra_qformat *f, ra_intq *q, ra_qlayer *out);
/* The tensors of the row's checkpoint layout: AutoAWQ GEMM, GPTQ v1, and
 * compressed-tensors pack-quantized, float-quantized, nvfp4-pack-quantized,
 * mxfp4-pack-quantized. Marlin's checkpoint is GPTQ (vLLM repacks at load). */
ra_status ra_qformat_pack(const ra_qformat *f, const ra_qlayer *q, ra_qtensors *out);

/* What a checkpoint's quantization_config is, as a row's parameters
 * (RA_ERR_UNSUPPORTED naming it when no row can hold it). */
ra_status ra_qformat_of_checkpoint(const ra_quant_config *qc, ra_qformat *out);
/* The table's row a checkpoint runs as by default (same family and
 * act-order, FP8 scales and activations; RTN rows first), or NULL. */
struct ra_format;
const struct ra_format *ra_qformat_row_for(const ra_qformat *ck);
/* Whether a row can run a checkpoint of parameters ck: the same family (any
 * method: the layers come from the file), FP8 with the same scales and
 * activations, or Marlin from any 4-bit integer checkpoint (a repack). */
bool ra_qformat_can_load(const ra_qformat *f, const ra_qformat *ck);
/* The tensor suffixes a family's layer may have, NULL-terminated. */
const char *const *ra_qformat_suffixes(ra_qfamily f);
/* A checkpoint's layer (tensors t, parameters ck) into the row's layer. */
ra_status ra_qformat_unpack(const ra_qformat *f, const ra_qformat *ck, const ra_quant_config *qc, const ra_qtensors *t,
                            ra_qlayer *out);

/* config.json's quantization_config for a checkpoint of this row, as the
 * tool that writes such checkpoints writes it (src/io/hf_qconfig.c): a new
 * cJSON object for ra_hf_config_write_ext. */
void *ra_hf_quant_config(const ra_qformat *f);
/* The compressed-tensors version whose layout and config we write and test against. */
#define RA_CT_VERSION "0.20.0"

#endif
