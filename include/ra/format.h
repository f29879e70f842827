/* Weight formats and kernels. A format is a row in a traits table
 * (formats/format.c): how a linear layer's weights are stored and which
 * kernels can compute with them. A kernel is named, and the name is part of
 * every result: traces are keyed "format@kernel" (f32@cpu, bf16@ra, ...). */
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
    RA_W_Q8_0,  /* GGUF Q8_0 blocks of 32: d (f16), 32 int8 */
    RA_W_Q4_0,  /* GGUF Q4_0 blocks of 32: d (f16), 16 bytes of nibbles, x = (q - 8) d */
    RA_W_Q5_0,  /* GGUF Q5_0 blocks of 32: d (f16), 32 high bits, 16 bytes of nibbles, x = (q - 16) d */
    RA_W_Q4_K,  /* GGUF Q4_K super-blocks of 256: 8 x 32 with 6-bit scales and mins */
    RA_W_Q6_K,  /* GGUF Q6_K super-blocks of 256: 16 x 16 with int8 scales, 6-bit codes */
    RA_W_QUANT  /* a checkpoint format's quantized layer (include/ra/qlayer.h): q, not data */
} ra_wtype;

struct ra_qlayer;

typedef struct {
    ra_wtype type;
    uint32_t rows, cols;   /* out features x in features; a row is contiguous */
    size_t row_bytes;
    uint8_t *data;         /* owned unless borrowed */
    bool borrowed;
    struct ra_qlayer *q;   /* RA_W_QUANT: the layer, owned */
} ra_weight;

const char *ra_wtype_name(ra_wtype t);
ra_status ra_wtype_row_bytes(ra_wtype t, uint32_t cols, size_t *bytes);

/* Where a kernel runs. */
typedef enum { RA_BACKEND_CPU, RA_BACKEND_CUDA } ra_backend_kind;

typedef struct {
    const char *name;        /* "cpu", "ra", "cublas", "cublas-bi" */
    ra_backend_kind backend;
    bool deterministic;      /* promises run-to-run and batch-invariant results */
    const char *description;
} ra_kernel;

const ra_kernel *ra_kernel_find(const char *name);

/* How a source tensor (any GGML type, already dequantizable) becomes a weight
 * of this format. */
typedef enum {
    RA_DERIVE_NATIVE, /* keep the file's own quantization where we have a kernel for it */
    RA_DERIVE_F32,    /* exact dequantization to float32 */
    RA_DERIVE_BF16,   /* dequantize, then round to nearest even bfloat16 */
    RA_DERIVE_GGML,   /* the GGML type of the format's name: kept where the file has it, else dequantized
                         and quantized with ggml's reference rule (as llama.cpp's quantize tool does) */
    RA_DERIVE_MIX,    /* a llama.cpp file type (q4_k_m): per tensor the GGML type llama.cpp's quantize
                         tool picks for it, then as RA_DERIVE_GGML */
    RA_DERIVE_QUANT   /* a checkpoint format (quant): quantized from the bf16 weights, or read from its checkpoint */
} ra_derive;

struct ra_qformat;

#define RA_MAX_KERNELS 4
typedef struct ra_format {
    const char *name;        /* "q4_1", "f32", "bf16" */
    const char *description;
    ra_derive derive;
    /* Kernels that run it, NULL-terminated: the CPU reference first, then
     * the default GPU kernel (deterministic), then the others. */
    const char *kernels[RA_MAX_KERNELS + 1];
    const struct ra_qformat *quant; /* RA_DERIVE_QUANT: the format's parameters (include/ra/qformat.h) */
} ra_format;

const ra_format *ra_format_find(const char *name);
size_t ra_format_count(void);
const ra_format *ra_format_at(size_t i);
bool ra_format_has_kernel(const ra_format *f, const ra_kernel *k);

/* Resolves "format" or "format@kernel". A bare format gets its default
 * kernel: the first GPU kernel when gpu is true and the format has one,
 * else its CPU kernel. Unknown names and pairs that do not exist fail with
 * RA_ERR_USAGE and a message listing what does. */
ra_status ra_format_resolve(const char *spec, bool gpu, const ra_format **f, const ra_kernel **k);

/* Where a tensor sits in the model, for formats whose type depends on it. */
typedef struct {
    const char *name;   /* canonical "model.layers.3.self_attn.v_proj.weight" or GGUF "blk.3.attn_v.weight" */
    uint32_t n_layers;
    bool tied;          /* the token embedding is also the output matrix */
} ra_tensor_role;

/* The GGML type format f stores a tensor of rows of cols values in: the
 * format's own type (RA_DERIVE_GGML) or llama.cpp's choice for its file type
 * (RA_DERIVE_MIX, see formats/format.c), with llama.cpp's fallback where cols
 * is not a multiple of the type's block. UINT32_MAX for the other formats. */
uint32_t ra_format_tensor_type(const ra_format *f, const ra_tensor_role *role, uint32_t cols);

/* Convert a GGML tensor (type, data, rows x cols) into a weight of format f;
 * role may be NULL except for RA_DERIVE_MIX formats. */
ra_status ra_weight_from_ggml(const ra_format *f, const ra_tensor_role *role, uint32_t ggml_type, const uint8_t *data,
                              uint32_t rows, uint32_t cols, ra_weight *out);
void ra_weight_free(ra_weight *w);
/* Row r of w as float32 (exact for every type). */
ra_status ra_weight_row_f32(const ra_weight *w, uint32_t r, float *out);
/* The whole of w as float32 in one allocation. */
ra_status ra_weight_to_f32(const ra_weight *w, float **out);

#endif
