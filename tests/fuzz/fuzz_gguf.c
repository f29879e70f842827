/* libFuzzer target for the GGUF reader: any input must either fail cleanly or
 * open into a handle whose every accessor and dequantizer is safe to call. */
#include "ra/ggml_types.h"
#include "ra/gguf.h"

#include <stdlib.h>

/* At most this many rows of each tensor are dequantized, to keep runs fast. */
#define FUZZ_ROWS 2

static void walk_kvs(const ra_gguf *g)
{
    char text[512];
    for (size_t i = 0; i < ra_gguf_n_kv(g); i++) {
        const ra_gguf_kv *kv = ra_gguf_kv_at(g, i);
        ra_gguf_kv_to_text(g, kv, text, sizeof text, 8);
        if (ra_gguf_find(g, kv->key) == NULL) abort(); /* every key must be findable */
        uint64_t u;
        float f;
        bool b;
        const char *s;
        size_t len;
        ra_gguf_get_u64(g, kv->key, &u);
        ra_gguf_get_f32(g, kv->key, &f);
        ra_gguf_get_bool(g, kv->key, &b);
        ra_gguf_get_str(g, kv->key, &s, &len);
        if (kv->type != RA_GGUF_ARRAY) continue;
        for (uint64_t j = 0; j < kv->n; j++) {
            int64_t i64;
            double f64;
            if (kv->elem_type == RA_GGUF_STRING) {
                if (ra_gguf_arr_str(g, kv, j, &s, &len) != RA_OK) abort();
                volatile char sink = len ? s[len - 1] : 0; /* touch the last byte */
                (void)sink;
            } else {
                ra_gguf_arr_i64(kv, j, &i64);
                ra_gguf_arr_f64(kv, j, &f64);
            }
        }
    }
}

static void walk_tensors(const ra_gguf *g)
{
    for (size_t i = 0; i < ra_gguf_n_tensors(g); i++) {
        const ra_gguf_tensor *t = ra_gguf_tensor_at(g, i);
        if (ra_gguf_find_tensor(g, t->name) != t) abort();
        const ra_ggml_type_info *info = ra_ggml_type_info_of(t->type);
        if (!info) abort(); /* open must have rejected it */
        if (!info->dequant) continue;
        uint64_t rows, row_bytes;
        if (ra_ggml_row_bytes(t->type, t->ne[0], &row_bytes) != RA_OK) abort();
        rows = t->nbytes / row_bytes;
        if (rows > FUZZ_ROWS) rows = FUZZ_ROWS;
        float *out = malloc(t->ne[0] * sizeof *out);
        if (!out) continue;
        for (uint64_t r = 0; r < rows; r++)
            if (ra_ggml_dequantize(t->type, t->data + r * row_bytes, out, t->ne[0]) != RA_OK) abort();
        free(out);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ra_gguf *g;
    if (ra_gguf_open_memory(data, size, "fuzz.gguf", &g) != RA_OK) return 0;
    walk_kvs(g);
    walk_tensors(g);
    ra_gguf_close(g);
    return 0;
}
