/* GGUF version 3 writer (the layout ra_gguf_open reads, docs/formats.md):
 * header, key/values, tensor infos, padding, tensor data. The metadata is
 * copied from an open file value by value (strings through its accessors),
 * so everything written was bounds-checked when that file was opened. The
 * file is built in memory and written with ra_write_file_atomic. */
#include "ra/gguf_write.h"

#include <string.h>

#include "ra/ggml_types.h"
#include "ra/util.h"

static ra_status put_u32(ra_buf *b, uint32_t v)
{
    uint8_t p[4];
    ra_put_le32(p, v);
    return ra_buf_append(b, p, 4);
}

static ra_status put_u64(ra_buf *b, uint64_t v)
{
    uint8_t p[8];
    ra_put_le64(p, v);
    return ra_buf_append(b, p, 8);
}

static ra_status put_str(ra_buf *b, const char *s, size_t len)
{
    RA_TRY(put_u64(b, len));
    return ra_buf_append(b, s, len);
}

static size_t scalar_size(ra_gguf_vtype t)
{
    switch (t) {
    case RA_GGUF_UINT8: case RA_GGUF_INT8: case RA_GGUF_BOOL: return 1;
    case RA_GGUF_UINT16: case RA_GGUF_INT16: return 2;
    case RA_GGUF_UINT32: case RA_GGUF_INT32: case RA_GGUF_FLOAT32: return 4;
    case RA_GGUF_UINT64: case RA_GGUF_INT64: case RA_GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

/* One key/value of src, re-encoded. */
static ra_status put_kv(ra_buf *b, const ra_gguf *src, const ra_gguf_kv *kv)
{
    RA_TRY(put_str(b, kv->key, strlen(kv->key)));
    RA_TRY(put_u32(b, kv->type));
    if (kv->type == RA_GGUF_STRING) {
        const char *s;
        size_t len;
        RA_TRY(ra_gguf_get_str(src, kv->key, &s, &len));
        return put_str(b, s, len);
    }
    if (kv->type != RA_GGUF_ARRAY) return ra_buf_append(b, kv->data, scalar_size(kv->type));
    RA_TRY(put_u32(b, kv->elem_type));
    RA_TRY(put_u64(b, kv->n));
    if (kv->elem_type == RA_GGUF_STRING) {
        for (uint64_t i = 0; i < kv->n; i++) {
            const char *s;
            size_t len;
            RA_TRY(ra_gguf_arr_str(src, kv, i, &s, &len));
            RA_TRY(put_str(b, s, len));
        }
        return RA_OK;
    }
    const size_t es = scalar_size(kv->elem_type);
    if (!es) return ra_fail(RA_ERR_UNSUPPORTED, "%s: key %s: arrays of arrays are not written", ra_gguf_path(src), kv->key);
    return ra_buf_append(b, kv->data, (size_t)kv->n * es);
}

static ra_status pad_to(ra_buf *b, uint64_t align)
{
    static const uint8_t zeros[256];
    while (b->len % align) RA_TRY(ra_buf_append(b, zeros, (size_t)(align - b->len % align) % sizeof zeros));
    return RA_OK;
}

ra_status ra_gguf_write(const char *path, const ra_gguf *src, uint32_t file_type, const ra_gguf_out_tensor *t, size_t n)
{
    const uint64_t align = ra_gguf_alignment(src);
    const bool has_ftype = ra_gguf_find(src, "general.file_type") != NULL;
    ra_buf b = {0};
    ra_status s = ra_buf_append(&b, "GGUF", 4);
    if (s == RA_OK) s = put_u32(&b, 3);
    if (s == RA_OK) s = put_u64(&b, n);
    if (s == RA_OK) s = put_u64(&b, ra_gguf_n_kv(src) + !has_ftype);
    for (size_t i = 0; s == RA_OK && i < ra_gguf_n_kv(src); i++) {
        const ra_gguf_kv *kv = ra_gguf_kv_at(src, i);
        if (strcmp(kv->key, "general.file_type")) {
            s = put_kv(&b, src, kv);
            continue;
        }
        s = put_str(&b, kv->key, strlen(kv->key));
        if (s == RA_OK) s = put_u32(&b, RA_GGUF_UINT32);
        if (s == RA_OK) s = put_u32(&b, file_type);
    }
    if (s == RA_OK && !has_ftype) {
        s = put_str(&b, "general.file_type", strlen("general.file_type"));
        if (s == RA_OK) s = put_u32(&b, RA_GGUF_UINT32);
        if (s == RA_OK) s = put_u32(&b, file_type);
    }
    uint64_t offset = 0;
    for (size_t i = 0; s == RA_OK && i < n; i++) {
        uint64_t rows = 1, row_bytes;
        for (uint32_t d = 1; d < t[i].n_dims; d++) rows *= t[i].ne[d];
        s = ra_ggml_row_bytes(t[i].type, t[i].ne[0], &row_bytes);
        if (s == RA_OK && row_bytes * rows != t[i].nbytes)
            s = ra_fail(RA_ERR_INTERNAL, "tensor %s: %llu bytes for its shape and type, %llu given", t[i].name,
                        (unsigned long long)(row_bytes * rows), (unsigned long long)t[i].nbytes);
        if (s == RA_OK) s = put_str(&b, t[i].name, strlen(t[i].name));
        if (s == RA_OK) s = put_u32(&b, t[i].n_dims);
        for (uint32_t d = 0; s == RA_OK && d < t[i].n_dims; d++) s = put_u64(&b, t[i].ne[d]);
        if (s == RA_OK) s = put_u32(&b, t[i].type);
        if (s == RA_OK) s = put_u64(&b, offset);
        offset = (offset + t[i].nbytes + align - 1) / align * align;
    }
    for (size_t i = 0; s == RA_OK && i < n; i++) {
        s = pad_to(&b, align);
        if (s == RA_OK) s = ra_buf_append(&b, t[i].data, (size_t)t[i].nbytes);
    }
    if (s == RA_OK) s = ra_write_file_atomic(path, b.data, b.len);
    ra_buf_free(&b);
    return s;
}
