/* The formats table. Each row: name, kernel, how weights are derived from the
 * file, and whether its kernel is deterministic. The CPU kernels live in
 * src/backend/cpu/matmul.c, one function per ra_wtype. */
#include "ra/format.h"

#include <stdlib.h>
#include <string.h>

#include "ra/ggml_types.h"
#include "ra/util.h"

static const ra_format formats[] = {
    {"q4_1", "cpu", "the GGUF file's own Q4_1 weights (Q8_0 embeddings as shipped); int8-activation block dot "
                    "products in the style of ggml's CPU backend", RA_DERIVE_NATIVE, true},
    {"f32", "cpu", "every weight dequantized exactly to float32; float32 dot products", RA_DERIVE_F32, true},
    {"bf16", "cpu", "dequantized, rounded to bfloat16 (nearest even); float32 dot products", RA_DERIVE_BF16, true},
};

size_t ra_format_count(void) { return sizeof formats / sizeof formats[0]; }
const ra_format *ra_format_at(size_t i) { return i < ra_format_count() ? &formats[i] : NULL; }

const ra_format *ra_format_find(const char *name)
{
    for (size_t i = 0; i < ra_format_count(); i++)
        if (!strcmp(formats[i].name, name)) return &formats[i];
    return NULL;
}

const char *ra_wtype_name(ra_wtype t)
{
    switch (t) {
    case RA_W_F32: return "f32";
    case RA_W_BF16: return "bf16";
    case RA_W_Q4_1: return "q4_1";
    case RA_W_Q8_0: return "q8_0";
    }
    return "?";
}

ra_status ra_wtype_row_bytes(ra_wtype t, uint32_t cols, size_t *bytes)
{
    switch (t) {
    case RA_W_F32: *bytes = (size_t)cols * 4; return RA_OK;
    case RA_W_BF16: *bytes = (size_t)cols * 2; return RA_OK;
    case RA_W_Q4_1:
    case RA_W_Q8_0:
        if (cols % 32) return ra_fail(RA_ERR_FORMAT, "%s row of %u is not a multiple of 32", ra_wtype_name(t), cols);
        *bytes = (size_t)cols / 32 * (t == RA_W_Q4_1 ? sizeof(ra_block_q4_1) : sizeof(ra_block_q8_0));
        return RA_OK;
    }
    return ra_fail(RA_ERR_INTERNAL, "unknown weight type %d", (int)t);
}

static ra_status alloc_weight(ra_weight *w, ra_wtype t, uint32_t rows, uint32_t cols)
{
    memset(w, 0, sizeof *w);
    w->type = t;
    w->rows = rows;
    w->cols = cols;
    RA_TRY(ra_wtype_row_bytes(t, cols, &w->row_bytes));
    return ra_calloc(&w->data, rows, w->row_bytes);
}

ra_status ra_weight_from_ggml(const ra_format *f, uint32_t ggml_type, const uint8_t *data, uint32_t rows,
                              uint32_t cols, ra_weight *out)
{
    const ra_ggml_type_info *ti = ra_ggml_type_info_of(ggml_type);
    if (!ti) return ra_fail(RA_ERR_UNSUPPORTED, "unknown GGML type %u", ggml_type);
    uint64_t src_row;
    RA_TRY(ra_ggml_row_bytes(ggml_type, cols, &src_row));

    /* Native: keep the stored blocks when we have a kernel for them. */
    if (f->derive == RA_DERIVE_NATIVE && (ggml_type == RA_GGML_Q4_1 || ggml_type == RA_GGML_Q8_0)) {
        RA_TRY(alloc_weight(out, ggml_type == RA_GGML_Q4_1 ? RA_W_Q4_1 : RA_W_Q8_0, rows, cols));
        memcpy(out->data, data, (size_t)rows * out->row_bytes);
        return RA_OK;
    }
    if (f->derive == RA_DERIVE_NATIVE && ggml_type != RA_GGML_F32)
        return ra_fail(RA_ERR_UNSUPPORTED, "format %s has no kernel for %s weights", f->name, ti->name);

    ra_wtype t = f->derive == RA_DERIVE_BF16 ? RA_W_BF16 : RA_W_F32;
    RA_TRY(alloc_weight(out, t, rows, cols));
    float *row = NULL;
    ra_status s = ra_calloc(&row, cols, sizeof *row);
    for (uint32_t r = 0; s == RA_OK && r < rows; r++) {
        s = ra_ggml_dequantize(ggml_type, data + (size_t)r * src_row, row, cols);
        if (s != RA_OK) break;
        if (t == RA_W_F32) {
            memcpy(out->data + (size_t)r * out->row_bytes, row, (size_t)cols * 4);
        } else {
            uint16_t *dst = (uint16_t *)(out->data + (size_t)r * out->row_bytes);
            for (uint32_t c = 0; c < cols; c++) dst[c] = ra_f32_to_bf16(row[c]);
        }
    }
    free(row);
    if (s != RA_OK) ra_weight_free(out);
    return s;
}

void ra_weight_free(ra_weight *w)
{
    if (!w->borrowed) free(w->data);
    w->data = NULL;
}
