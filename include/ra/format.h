/* Weight formats: a format is a row in a traits table (formats/format.c).
 * A format says how a linear layer's weights are stored and which kernel
 * computes with them; results are keyed "format@kernel". */
#ifndef RA_FORMAT_H
#define RA_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ra/status.h"

/* How one weight matrix is stored in memory. */
typedef enum {
    RA_W_F32,   /* float32 */
    RA_W_BF16,  /* bfloat16 (uint16) */
    RA_W_Q4_1,  /* GGUF Q4_1 blocks of 32: d, m (f16), 16 bytes of nibbles */
    RA_W_Q8_0   /* GGUF Q8_0 blocks of 32: d (f16), 32 int8 */
} ra_wtype;

typedef struct {
    ra_wtype type;
    uint32_t rows, cols;   /* out features x in features; a row is contiguous */
    size_t row_bytes;
    uint8_t *data;         /* owned unless borrowed */
    bool borrowed;
} ra_weight;

const char *ra_wtype_name(ra_wtype t);
ra_status ra_wtype_row_bytes(ra_wtype t, uint32_t cols, size_t *bytes);

/* How a source tensor (any GGML type, already dequantizable) becomes a weight
 * of this format. */
typedef enum {
    RA_DERIVE_NATIVE, /* keep the file's own quantization where we have a kernel for it */
    RA_DERIVE_F32,    /* exact dequantization to float32 */
    RA_DERIVE_BF16    /* dequantize, then round to nearest even bfloat16 */
} ra_derive;

typedef struct {
    const char *name;        /* "q4_1", "f32", "bf16" */
    const char *kernel;      /* "cpu" */
    const char *description;
    ra_derive derive;
    bool deterministic;      /* kernel promises run-to-run and batch invariance */
} ra_format;

const ra_format *ra_format_find(const char *name);
size_t ra_format_count(void);
const ra_format *ra_format_at(size_t i);

/* Convert a GGML tensor (type, data, rows x cols) into a weight of format f. */
ra_status ra_weight_from_ggml(const ra_format *f, uint32_t ggml_type, const uint8_t *data, uint32_t rows,
                              uint32_t cols, ra_weight *out);
void ra_weight_free(ra_weight *w);

#endif
