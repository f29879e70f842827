/* Private to src/model/: the loader's pieces shared by llama.c and qload.c. */
#ifndef RA_MODEL_INTERNAL_H
#define RA_MODEL_INTERNAL_H

#include "ra/model.h"
#include "ra/qformat.h"

/* A dense tensor `name` of shape [rows, cols] ([cols] when rows is 0) as a
 * weight of format f (f32 or bf16 derivation). */
ra_status ra_load_dense(const ra_model_desc *d, const ra_format *f, const char *name, uint32_t rows, uint32_t cols,
                        ra_weight *w);
/* Whether format f can run description d: dense formats need an unquantized
 * checkpoint, checkpoint formats one of theirs (*ck: its parameters). */
ra_status ra_qload_check(const ra_model_desc *d, const ra_format *f, ra_qformat *ck);
/* Linear layer `name` ("....q_proj.weight") of a quantized checkpoint as
 * format f, rows x cols; a layer stored dense stays dense. */
ra_status ra_qload_linear(const ra_model_desc *d, const ra_format *f, const ra_qformat *ck, const char *name,
                          uint32_t rows, uint32_t cols, ra_weight *w);

#endif
