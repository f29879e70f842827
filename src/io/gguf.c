/* GGUF reader (v2, v3; little-endian).
 *
 * The whole file is validated at open, through a bounds-checked cursor, before
 * anything read from it is trusted: counts are checked against the bytes left
 * before allocating, every tensor's size, alignment and extent is checked, and
 * tensors may not overlap. After that the accessors only index checked data. */
#include "ra/gguf.h"
#include "ra/ggml_types.h"
#include "ra/text.h"
#include "ra/util.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_DIMS 4
/* Smallest encodings, used to reject absurd counts before allocating:
 * a kv is a key length (8), at least one key byte, a type (4), a 1-byte value;
 * a tensor info is a name length (8), a name byte, n_dims (4), one ne (8),
 * a type (4) and an offset (8). */
#define GGUF_MIN_KV_BYTES 12
#define GGUF_MIN_TENSOR_BYTES 24

struct ra_gguf {
    char *path;
    const uint8_t *base;
    size_t size;
    bool mapped; /* base is our mmap (ra_gguf_open) rather than the caller's buffer */
    uint32_t version;
    uint64_t alignment, data_offset;
    ra_gguf_kv *kvs;
    uint64_t **str_offsets; /* per kv: file offsets of string-array elements, else NULL */
    size_t n_kv, kv_cap; /* parsed so far, allocated */
    ra_gguf_tensor *tensors;
    size_t n_tensors, tensor_cap;
    ra_name_index *kv_by_name, *tensor_by_name; /* sorted, for duplicate checks and lookup */
};

/* ---------- bounds-checked cursor ---------- */

typedef struct {
    const uint8_t *base;
    size_t size, pos;
    const char *file;
} cursor;

static size_t cursor_left(const cursor *c) { return c->size - c->pos; }

/* what/item say what was being read, for the error message. */
static ra_status cursor_need(const cursor *c, uint64_t n, const char *what, const char *item)
{
    if (n > cursor_left(c))
        return ra_fail(RA_ERR_FORMAT, "%s: %s%s%s: truncated: needs %" PRIu64 " bytes at byte %zu, file has %zu",
                       c->file, item ? item : "", item ? ": " : "", what, n, c->pos, c->size);
    return RA_OK;
}

static ra_status read_u32(cursor *c, const char *what, const char *item, uint32_t *v)
{
    RA_TRY(cursor_need(c, 4, what, item));
    *v = ra_le32(c->base + c->pos);
    c->pos += 4;
    return RA_OK;
}

static ra_status read_u64(cursor *c, const char *what, const char *item, uint64_t *v)
{
    RA_TRY(cursor_need(c, 8, what, item));
    *v = ra_le64(c->base + c->pos);
    c->pos += 8;
    return RA_OK;
}

/* A string: u64 length, then bytes. Sets *s to the bytes inside the buffer. */
static ra_status read_str(cursor *c, const char *what, const char *item, const uint8_t **s, uint64_t *len)
{
    size_t at = c->pos;
    RA_TRY(read_u64(c, what, item, len));
    if (*len > cursor_left(c))
        return ra_fail(RA_ERR_FORMAT, "%s: %s%s%s: string length %" PRIu64 " at byte %zu exceeds the %zu bytes left",
                       c->file, item ? item : "", item ? ": " : "", what, *len, at, cursor_left(c));
    *s = c->base + c->pos;
    c->pos += (size_t)*len;
    return RA_OK;
}

/* Keys and tensor names become C strings, so they must be non-empty and NUL-free. */
static ra_status read_name(cursor *c, const char *what, char **out)
{
    size_t at = c->pos;
    const uint8_t *s;
    uint64_t len;
    RA_TRY(read_str(c, what, NULL, &s, &len));
    if (len == 0) return ra_fail(RA_ERR_FORMAT, "%s: empty %s at byte %zu", c->file, what, at);
    if (memchr(s, 0, (size_t)len))
        return ra_fail(RA_ERR_FORMAT, "%s: %s at byte %zu contains a NUL byte", c->file, what, at);
    RA_TRY(ra_calloc(out, (size_t)len + 1, 1));
    memcpy(*out, s, (size_t)len);
    return RA_OK;
}

/* ---------- value types ---------- */

const char *ra_gguf_vtype_name(ra_gguf_vtype t)
{
    static const char *const names[] = { "uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
                                         "bool", "string", "array", "uint64", "int64", "float64" };
    if ((unsigned)t < sizeof names / sizeof names[0]) return names[t];
    return "unknown";
}

/* Size of a fixed-width scalar, 0 for string/array/unknown. */
static size_t scalar_size(uint32_t t)
{
    switch (t) {
    case RA_GGUF_UINT8: case RA_GGUF_INT8: case RA_GGUF_BOOL: return 1;
    case RA_GGUF_UINT16: case RA_GGUF_INT16: return 2;
    case RA_GGUF_UINT32: case RA_GGUF_INT32: case RA_GGUF_FLOAT32: return 4;
    case RA_GGUF_UINT64: case RA_GGUF_INT64: case RA_GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

static bool is_integer_type(uint32_t t)
{
    return t == RA_GGUF_UINT8 || t == RA_GGUF_INT8 || t == RA_GGUF_UINT16 || t == RA_GGUF_INT16 ||
           t == RA_GGUF_UINT32 || t == RA_GGUF_INT32 || t == RA_GGUF_UINT64 || t == RA_GGUF_INT64;
}

/* Integer element at p as a signed value, plus the unsigned value for u64
 * (which may exceed INT64_MAX). */
static void load_integer(uint32_t t, const uint8_t *p, int64_t *s, uint64_t *u, bool *is_unsigned)
{
    *is_unsigned = true;
    switch (t) {
    case RA_GGUF_UINT8: *u = p[0]; break;
    case RA_GGUF_UINT16: *u = ra_le16(p); break;
    case RA_GGUF_UINT32: *u = ra_le32(p); break;
    case RA_GGUF_UINT64: *u = ra_le64(p); break;
    case RA_GGUF_INT8: *s = (int8_t)p[0]; *is_unsigned = false; break;
    case RA_GGUF_INT16: *s = (int16_t)ra_le16(p); *is_unsigned = false; break;
    case RA_GGUF_INT32: *s = (int32_t)ra_le32(p); *is_unsigned = false; break;
    default: *s = (int64_t)ra_le64(p); *is_unsigned = false; break;
    }
    if (*is_unsigned) *s = (int64_t)*u; /* only meaningful when *u <= INT64_MAX */
}

static float load_f32(const uint8_t *p)
{
    uint32_t u = ra_le32(p);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static double load_f64(const uint8_t *p)
{
    uint64_t u = ra_le64(p);
    double d;
    memcpy(&d, &u, 8);
    return d;
}

/* ---------- parsing ---------- */

static ra_status check_bools(const cursor *c, const char *key, const uint8_t *p, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        if (p[i] > 1)
            return ra_fail(RA_ERR_FORMAT, "%s: %s: bool value %u at byte %zu is not 0 or 1", c->file, key, p[i],
                           (size_t)(p + i - c->base));
    return RA_OK;
}

static ra_status parse_array(cursor *c, ra_gguf_kv *kv, uint64_t **str_offsets)
{
    size_t at = c->pos;
    uint32_t elem;
    uint64_t n;
    RA_TRY(read_u32(c, "array element type", kv->key, &elem));
    RA_TRY(read_u64(c, "array length", kv->key, &n));
    kv->elem_type = (ra_gguf_vtype)elem;
    kv->n = n;
    kv->data = c->base + c->pos;
    if (elem == RA_GGUF_ARRAY)
        return ra_fail(RA_ERR_UNSUPPORTED, "%s: %s: nested arrays (at byte %zu) are not supported", c->file, kv->key, at);
    if (elem == RA_GGUF_STRING) {
        if (n > cursor_left(c) / 8)
            return ra_fail(RA_ERR_FORMAT, "%s: %s: string array of %" PRIu64 " elements at byte %zu cannot fit in the %zu bytes left",
                           c->file, kv->key, n, at, cursor_left(c));
        RA_TRY(ra_calloc(str_offsets, n ? (size_t)n : 1, sizeof **str_offsets));
        for (uint64_t i = 0; i < n; i++) {
            const uint8_t *s;
            uint64_t len;
            (*str_offsets)[i] = c->pos;
            RA_TRY(read_str(c, "string array element", kv->key, &s, &len));
        }
        return RA_OK;
    }
    size_t esize = scalar_size(elem);
    if (!esize)
        return ra_fail(RA_ERR_FORMAT, "%s: %s: unknown array element type %u at byte %zu", c->file, kv->key, elem, at);
    if (n > cursor_left(c) / esize)
        return ra_fail(RA_ERR_FORMAT, "%s: %s: array of %" PRIu64 " %s at byte %zu cannot fit in the %zu bytes left",
                       c->file, kv->key, n, ra_gguf_vtype_name((ra_gguf_vtype)elem), at, cursor_left(c));
    if (elem == RA_GGUF_BOOL) RA_TRY(check_bools(c, kv->key, kv->data, n));
    c->pos += (size_t)n * esize;
    return RA_OK;
}

static ra_status parse_kv(cursor *c, ra_gguf_kv *kv, uint64_t **str_offsets)
{
    char *key;
    RA_TRY(read_name(c, "key", &key));
    kv->key = key;
    size_t at = c->pos;
    uint32_t type;
    RA_TRY(read_u32(c, "value type", key, &type));
    kv->type = (ra_gguf_vtype)type;
    kv->elem_type = kv->type;
    kv->n = 1;
    kv->data = c->base + c->pos;
    if (type == RA_GGUF_ARRAY) return parse_array(c, kv, str_offsets);
    if (type == RA_GGUF_STRING) {
        const uint8_t *s;
        uint64_t len;
        return read_str(c, "string value", key, &s, &len);
    }
    size_t size = scalar_size(type);
    if (!size) return ra_fail(RA_ERR_FORMAT, "%s: %s: unknown value type %u at byte %zu", c->file, key, type, at);
    RA_TRY(cursor_need(c, size, "value", key));
    if (type == RA_GGUF_BOOL) RA_TRY(check_bools(c, key, kv->data, 1));
    c->pos += size;
    return RA_OK;
}

static ra_status parse_tensor_info(cursor *c, ra_gguf_tensor *t)
{
    size_t at = c->pos;
    char *name;
    RA_TRY(read_name(c, "tensor name", &name));
    t->name = name;
    uint32_t n_dims;
    RA_TRY(read_u32(c, "n_dims", name, &n_dims));
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS)
        return ra_fail(RA_ERR_FORMAT, "%s: tensor %s: n_dims %u at byte %zu is not in 1..%d", c->file, name, n_dims,
                       c->pos - 4, GGUF_MAX_DIMS);
    t->n_dims = n_dims;
    for (int i = 0; i < GGUF_MAX_DIMS; i++) t->ne[i] = 1;
    uint64_t elems = 1;
    for (uint32_t i = 0; i < n_dims; i++) {
        RA_TRY(read_u64(c, "dimension", name, &t->ne[i]));
        if (t->ne[i] == 0)
            return ra_fail(RA_ERR_FORMAT, "%s: tensor %s: dimension %u is 0 at byte %zu", c->file, name, i, c->pos - 8);
        if (elems > UINT64_MAX / t->ne[i])
            return ra_fail(RA_ERR_FORMAT, "%s: tensor %s: element count overflows at byte %zu", c->file, name, c->pos - 8);
        elems *= t->ne[i];
    }
    RA_TRY(read_u32(c, "tensor type", name, &t->type));
    const ra_ggml_type_info *info = ra_ggml_type_info_of(t->type);
    if (!info)
        return ra_fail(RA_ERR_FORMAT, "%s: tensor %s: unknown ggml type %u at byte %zu", c->file, name, t->type, c->pos - 4);
    if (t->ne[0] % info->block_elems)
        return ra_fail(RA_ERR_FORMAT, "%s: tensor %s: row length %" PRIu64 " is not a multiple of the %s block size %u (tensor info at byte %zu)",
                       c->file, name, t->ne[0], info->name, info->block_elems, at);
    uint64_t row_bytes;
    ra_status s = ra_ggml_row_bytes(t->type, t->ne[0], &row_bytes);
    if (s != RA_OK) return ra_wrap(s, "%s: tensor %s (info at byte %zu)", c->file, name, at);
    uint64_t rows = elems / t->ne[0];
    if (rows > UINT64_MAX / row_bytes)
        return ra_fail(RA_ERR_FORMAT, "%s: tensor %s: byte size overflows (tensor info at byte %zu)", c->file, name, at);
    t->nbytes = row_bytes * rows;
    RA_TRY(read_u64(c, "tensor offset", name, &t->offset));
    return RA_OK;
}

/* Tensors sorted by offset; used only to check for overlaps. */
static int cmp_tensor_offset(const void *a, const void *b)
{
    const ra_gguf_tensor *x = *(const ra_gguf_tensor *const *)a, *y = *(const ra_gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static const char *kv_name_of(const void *items, size_t i) { return ((const ra_gguf_kv *)items)[i].key; }
static const char *tensor_name_of(const void *items, size_t i) { return ((const ra_gguf_tensor *)items)[i].name; }

static ra_status read_alignment(ra_gguf *g)
{
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    const ra_gguf_kv *kv = ra_gguf_find(g, "general.alignment");
    if (!kv) return RA_OK;
    size_t at = (size_t)(kv->data - g->base);
    if (kv->type != RA_GGUF_UINT32)
        return ra_fail(RA_ERR_FORMAT, "%s: general.alignment at byte %zu is %s, expected uint32", g->path, at,
                       ra_gguf_vtype_name(kv->type));
    uint32_t a = ra_le32(kv->data);
    if (a == 0 || (a & (a - 1)))
        return ra_fail(RA_ERR_FORMAT, "%s: general.alignment %u at byte %zu is not a nonzero power of two", g->path, a, at);
    g->alignment = a;
    return RA_OK;
}

/* Each tensor must be aligned, lie inside the file, and not overlap another. */
static ra_status place_tensors(ra_gguf *g)
{
    uint64_t data_size = g->data_offset <= g->size ? g->size - g->data_offset : 0;
    for (size_t i = 0; i < g->n_tensors; i++) {
        ra_gguf_tensor *t = &g->tensors[i];
        if (t->offset % g->alignment)
            return ra_fail(RA_ERR_FORMAT, "%s: tensor %s: offset %" PRIu64 " is not a multiple of the alignment %" PRIu64,
                           g->path, t->name, t->offset, g->alignment);
        if (t->offset > data_size || t->nbytes > data_size - t->offset)
            return ra_fail(RA_ERR_FORMAT, "%s: tensor %s: %" PRIu64 " bytes at byte %" PRIu64 " run past the end of the file (%zu bytes)",
                           g->path, t->name, t->nbytes, g->data_offset + t->offset, g->size);
        t->data = g->base + g->data_offset + t->offset;
    }
    const ra_gguf_tensor **by_offset;
    RA_TRY(ra_calloc(&by_offset, g->n_tensors ? g->n_tensors : 1, sizeof *by_offset));
    for (size_t i = 0; i < g->n_tensors; i++) by_offset[i] = &g->tensors[i];
    qsort(by_offset, g->n_tensors, sizeof *by_offset, cmp_tensor_offset);
    ra_status s = RA_OK;
    for (size_t i = 1; i < g->n_tensors && s == RA_OK; i++) {
        const ra_gguf_tensor *a = by_offset[i - 1], *b = by_offset[i];
        if (a->offset + a->nbytes > b->offset)
            s = ra_fail(RA_ERR_FORMAT, "%s: tensor %s at byte %" PRIu64 " overlaps tensor %s", g->path, b->name,
                        g->data_offset + b->offset, a->name);
    }
    free(by_offset);
    return s;
}

static ra_status parse(ra_gguf *g)
{
    cursor c = { g->base, g->size, 0, g->path };
    RA_TRY(cursor_need(&c, 4, "magic", NULL));
    if (memcmp(g->base, "GGUF", 4))
        return ra_fail(RA_ERR_FORMAT, "%s: not a GGUF file (bad magic at byte 0)", g->path);
    c.pos = 4;
    RA_TRY(read_u32(&c, "version", NULL, &g->version));
    if (g->version != 2 && g->version != 3)
        return ra_fail(RA_ERR_FORMAT, "%s: unsupported GGUF version %u at byte 4 (want 2 or 3, little-endian)", g->path,
                       g->version);
    uint64_t n_tensors, n_kv;
    RA_TRY(read_u64(&c, "tensor count", NULL, &n_tensors));
    RA_TRY(read_u64(&c, "kv count", NULL, &n_kv));
    size_t left = cursor_left(&c);
    if (n_kv > left / GGUF_MIN_KV_BYTES || n_tensors > left / GGUF_MIN_TENSOR_BYTES ||
        n_kv * GGUF_MIN_KV_BYTES + n_tensors * GGUF_MIN_TENSOR_BYTES > left)
        return ra_fail(RA_ERR_FORMAT, "%s: %" PRIu64 " kvs and %" PRIu64 " tensors (counts at byte 8) cannot fit in the %zu bytes left",
                       g->path, n_kv, n_tensors, left);
    RA_TRY(ra_calloc(&g->kvs, n_kv ? (size_t)n_kv : 1, sizeof *g->kvs));
    RA_TRY(ra_calloc(&g->str_offsets, n_kv ? (size_t)n_kv : 1, sizeof *g->str_offsets));
    g->kv_cap = (size_t)n_kv;
    for (; g->n_kv < n_kv; g->n_kv++) RA_TRY(parse_kv(&c, &g->kvs[g->n_kv], &g->str_offsets[g->n_kv]));
    RA_TRY(ra_name_index_build(g->path, "key", g->n_kv, kv_name_of, g->kvs, &g->kv_by_name));
    RA_TRY(read_alignment(g));

    RA_TRY(ra_calloc(&g->tensors, n_tensors ? (size_t)n_tensors : 1, sizeof *g->tensors));
    g->tensor_cap = (size_t)n_tensors;
    for (; g->n_tensors < n_tensors; g->n_tensors++) RA_TRY(parse_tensor_info(&c, &g->tensors[g->n_tensors]));
    RA_TRY(ra_name_index_build(g->path, "tensor", g->n_tensors, tensor_name_of, g->tensors, &g->tensor_by_name));

    /* The data section starts at the end of the header, padded to the alignment. */
    uint64_t end = c.pos, rem = end % g->alignment;
    g->data_offset = rem ? end + (g->alignment - rem) : end;
    return place_tensors(g);
}

static ra_status open_common(const uint8_t *data, size_t len, const char *name, bool mapped, void *out_ptr)
{
    ra_gguf **out = out_ptr;
    *out = NULL;
    ra_gguf *g;
    RA_TRY(ra_calloc(&g, 1, sizeof *g));
    g->base = data;
    g->size = len;
    g->mapped = mapped;
    ra_status s = ra_strdup(&g->path, name ? name : "<memory>");
    if (s == RA_OK) s = parse(g);
    if (s != RA_OK) {
        g->mapped = false; /* the caller still owns data on failure */
        ra_gguf_close(g);
        return s;
    }
    *out = g;
    return RA_OK;
}

ra_status ra_gguf_open_memory(const uint8_t *data, size_t len, const char *name, ra_gguf **out)
{
    if (!data && len) return ra_fail(RA_ERR_USAGE, "ra_gguf_open_memory: NULL buffer");
    return open_common(data, len, name, false, out);
}

ra_status ra_gguf_open(const char *path, ra_gguf **out)
{
    *out = NULL;
    return ra_open_mapped(path, "GGUF", open_common, out);
}

void ra_gguf_close(ra_gguf *g)
{
    if (!g) return;
    /* entries up to the allocated count: one that failed half-parsed may own memory too */
    for (size_t i = 0; i < g->kv_cap; i++) {
        free((char *)g->kvs[i].key);
        free(g->str_offsets[i]);
    }
    for (size_t i = 0; i < g->tensor_cap; i++) free((char *)g->tensors[i].name);
    free(g->kvs);
    free(g->str_offsets);
    free(g->tensors);
    free(g->kv_by_name);
    free(g->tensor_by_name);
    if (g->mapped) ra_unmap_file(g->base, g->size);
    free(g->path);
    free(g);
}

/* ---------- accessors ---------- */

const char *ra_gguf_path(const ra_gguf *g) { return g->path; }
uint32_t ra_gguf_version(const ra_gguf *g) { return g->version; }
uint64_t ra_gguf_alignment(const ra_gguf *g) { return g->alignment; }
uint64_t ra_gguf_data_offset(const ra_gguf *g) { return g->data_offset; }
size_t ra_gguf_file_size(const ra_gguf *g) { return g->size; }
void ra_gguf_sha256(const ra_gguf *g, uint8_t out[32]) { ra_sha256(g->base, g->size, out); }
size_t ra_gguf_n_kv(const ra_gguf *g) { return g->n_kv; }
size_t ra_gguf_n_tensors(const ra_gguf *g) { return g->n_tensors; }

const ra_gguf_kv *ra_gguf_kv_at(const ra_gguf *g, size_t i) { return i < g->n_kv ? &g->kvs[i] : NULL; }
const ra_gguf_tensor *ra_gguf_tensor_at(const ra_gguf *g, size_t i)
{
    return i < g->n_tensors ? &g->tensors[i] : NULL;
}

const ra_gguf_kv *ra_gguf_find(const ra_gguf *g, const char *key)
{
    const ra_name_index *e = ra_name_index_find(g->kv_by_name, g->n_kv, key);
    return e ? &g->kvs[e->index] : NULL;
}

const ra_gguf_tensor *ra_gguf_find_tensor(const ra_gguf *g, const char *name)
{
    const ra_name_index *e = ra_name_index_find(g->tensor_by_name, g->n_tensors, name);
    return e ? &g->tensors[e->index] : NULL;
}

static ra_status find_kv(const ra_gguf *g, const char *key, const ra_gguf_kv **kv)
{
    *kv = ra_gguf_find(g, key);
    if (!*kv) return ra_fail(RA_ERR_NOTFOUND, "%s: no key '%s'", g->path, key);
    return RA_OK;
}

static ra_status wrong_type(const ra_gguf *g, const ra_gguf_kv *kv, const char *want)
{
    return ra_fail(RA_ERR_FORMAT, "%s: key %s at byte %zu is %s, expected %s", g->path, kv->key,
                   (size_t)(kv->data - g->base), ra_gguf_vtype_name(kv->type), want);
}

ra_status ra_gguf_get_u64(const ra_gguf *g, const char *key, uint64_t *out)
{
    const ra_gguf_kv *kv;
    RA_TRY(find_kv(g, key, &kv));
    if (!is_integer_type(kv->type)) return wrong_type(g, kv, "an integer");
    int64_t s;
    uint64_t u;
    bool is_unsigned;
    load_integer(kv->type, kv->data, &s, &u, &is_unsigned);
    if (!is_unsigned && s < 0)
        return ra_fail(RA_ERR_FORMAT, "%s: key %s is negative (%" PRId64 "), expected a non-negative integer", g->path, key, s);
    *out = is_unsigned ? u : (uint64_t)s;
    return RA_OK;
}

ra_status ra_gguf_get_u32(const ra_gguf *g, const char *key, uint32_t *out)
{
    uint64_t v;
    RA_TRY(ra_gguf_get_u64(g, key, &v));
    if (v > UINT32_MAX)
        return ra_fail(RA_ERR_FORMAT, "%s: key %s = %" PRIu64 " does not fit in 32 bits", g->path, key, v);
    *out = (uint32_t)v;
    return RA_OK;
}

ra_status ra_gguf_get_f32(const ra_gguf *g, const char *key, float *out)
{
    const ra_gguf_kv *kv;
    RA_TRY(find_kv(g, key, &kv));
    if (kv->type == RA_GGUF_FLOAT32) *out = load_f32(kv->data);
    else if (kv->type == RA_GGUF_FLOAT64) *out = (float)load_f64(kv->data);
    else return wrong_type(g, kv, "float32 or float64");
    return RA_OK;
}

ra_status ra_gguf_get_bool(const ra_gguf *g, const char *key, bool *out)
{
    const ra_gguf_kv *kv;
    RA_TRY(find_kv(g, key, &kv));
    if (kv->type != RA_GGUF_BOOL) return wrong_type(g, kv, "bool");
    *out = kv->data[0] != 0;
    return RA_OK;
}

ra_status ra_gguf_get_str(const ra_gguf *g, const char *key, const char **s, size_t *len)
{
    const ra_gguf_kv *kv;
    RA_TRY(find_kv(g, key, &kv));
    if (kv->type != RA_GGUF_STRING) return wrong_type(g, kv, "string");
    *len = (size_t)ra_le64(kv->data);
    *s = (const char *)kv->data + 8;
    return RA_OK;
}

ra_status ra_gguf_get_arr(const ra_gguf *g, const char *key, ra_gguf_vtype *elem_type, uint64_t *n)
{
    const ra_gguf_kv *kv;
    RA_TRY(find_kv(g, key, &kv));
    if (kv->type != RA_GGUF_ARRAY) return wrong_type(g, kv, "array");
    *elem_type = kv->elem_type;
    *n = kv->n;
    return RA_OK;
}

ra_status ra_gguf_arr_str(const ra_gguf *g, const ra_gguf_kv *kv, uint64_t i, const char **s, size_t *len)
{
    /* kv must be one of ours: its index finds the element offsets */
    if (!kv || kv < g->kvs || kv >= g->kvs + g->n_kv)
        return ra_fail(RA_ERR_USAGE, "%s: ra_gguf_arr_str: kv does not belong to this file", g->path);
    if (kv->type != RA_GGUF_ARRAY || kv->elem_type != RA_GGUF_STRING)
        return ra_fail(RA_ERR_FORMAT, "%s: key %s is not an array of strings", g->path, kv->key);
    if (i >= kv->n)
        return ra_fail(RA_ERR_USAGE, "%s: key %s: index %" PRIu64 " out of range (%" PRIu64 " elements)", g->path,
                       kv->key, i, kv->n);
    const uint8_t *p = g->base + g->str_offsets[kv - g->kvs][i];
    *len = (size_t)ra_le64(p);
    *s = (const char *)p + 8;
    return RA_OK;
}

static ra_status check_numeric_index(const ra_gguf_kv *kv, uint64_t i)
{
    if (kv->type != RA_GGUF_ARRAY)
        return ra_fail(RA_ERR_FORMAT, "key %s is %s, not an array", kv->key, ra_gguf_vtype_name(kv->type));
    if (i >= kv->n)
        return ra_fail(RA_ERR_USAGE, "key %s: index %" PRIu64 " out of range (%" PRIu64 " elements)", kv->key, i, kv->n);
    return RA_OK;
}

ra_status ra_gguf_arr_i64(const ra_gguf_kv *kv, uint64_t i, int64_t *out)
{
    RA_TRY(check_numeric_index(kv, i));
    if (!is_integer_type(kv->elem_type))
        return ra_fail(RA_ERR_FORMAT, "key %s is an array of %s, expected integers", kv->key,
                       ra_gguf_vtype_name(kv->elem_type));
    int64_t s;
    uint64_t u;
    bool is_unsigned;
    load_integer(kv->elem_type, kv->data + i * scalar_size(kv->elem_type), &s, &u, &is_unsigned);
    if (is_unsigned && u > INT64_MAX)
        return ra_fail(RA_ERR_FORMAT, "key %s[%" PRIu64 "] = %" PRIu64 " does not fit in int64", kv->key, i, u);
    *out = s;
    return RA_OK;
}

ra_status ra_gguf_arr_f64(const ra_gguf_kv *kv, uint64_t i, double *out)
{
    RA_TRY(check_numeric_index(kv, i));
    const uint8_t *p = kv->data + i * scalar_size(kv->elem_type);
    if (kv->elem_type == RA_GGUF_FLOAT32) *out = load_f32(p);
    else if (kv->elem_type == RA_GGUF_FLOAT64) *out = load_f64(p);
    else if (is_integer_type(kv->elem_type)) {
        int64_t s;
        uint64_t u;
        bool is_unsigned;
        load_integer(kv->elem_type, p, &s, &u, &is_unsigned);
        *out = is_unsigned ? (double)u : (double)s;
    } else {
        return ra_fail(RA_ERR_FORMAT, "key %s is an array of %s, expected numbers", kv->key,
                       ra_gguf_vtype_name(kv->elem_type));
    }
    return RA_OK;
}

/* ---------- kv as text ---------- */

/* Appends into a fixed buffer; once it would overflow, ends the text with
 * "..." and ignores further output. */
typedef struct {
    char *out;
    size_t size, len;
    bool full;
} text;

static void text_put(text *t, const char *s, size_t n)
{
    if (t->full) return;
    size_t room = t->size - 1 - t->len; /* the caller guarantees size >= 8 */
    if (n + 3 <= room) {
        memcpy(t->out + t->len, s, n);
        t->len += n;
    } else { /* keep room for the "..." that says the text was cut */
        size_t keep = room >= 3 ? room - 3 : 0;
        if (keep > n) keep = n;
        memcpy(t->out + t->len, s, keep);
        memcpy(t->out + t->len + keep, "...", 3);
        t->len += keep + 3;
        t->full = true;
    }
    t->out[t->len] = 0;
}

static void text_printf(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_printf(text *t, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    text_put(t, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Quoted, escaped string (ra_escape_char), cut after max_chars source bytes with "...". */
static void text_quoted(text *t, const uint8_t *s, size_t len, size_t max_chars)
{
    text_put(t, "\"", 1);
    size_t n = len < max_chars ? len : max_chars, i = 0, used;
    char piece[16];
    for (; i < n && !t->full; i += used) text_put(t, piece, ra_escape_char(s + i, len - i, RA_ESC_QUOTE, piece, &used));
    text_put(t, "\"", 1);
    if (i < len) text_put(t, "...", 3);
}

/* One scalar of type type at p (strings: p is the length prefix). */
static void text_scalar(text *t, uint32_t type, const uint8_t *p, size_t max_chars)
{
    switch (type) {
    case RA_GGUF_FLOAT32: text_printf(t, "%.9g", (double)load_f32(p)); return;
    case RA_GGUF_FLOAT64: text_printf(t, "%.17g", load_f64(p)); return;
    case RA_GGUF_BOOL: text_printf(t, "%s", p[0] ? "true" : "false"); return;
    case RA_GGUF_STRING: text_quoted(t, p + 8, (size_t)ra_le64(p), max_chars); return;
    default: break;
    }
    int64_t s;
    uint64_t u;
    bool is_unsigned;
    load_integer(type, p, &s, &u, &is_unsigned);
    if (is_unsigned) text_printf(t, "%" PRIu64, u);
    else text_printf(t, "%" PRId64, s);
}

ra_status ra_gguf_kv_to_text(const ra_gguf *g, const ra_gguf_kv *kv, char *out, size_t out_size, size_t max_items)
{
    if (!kv || kv < g->kvs || kv >= g->kvs + g->n_kv)
        return ra_fail(RA_ERR_USAGE, "%s: kv_to_text: kv does not belong to this file", g->path);
    if (!out || out_size < 8) return ra_fail(RA_ERR_USAGE, "%s: kv_to_text: buffer too small", g->path);
    text t = { out, out_size, 0, false };
    out[0] = 0;
    if (kv->type != RA_GGUF_ARRAY) {
        text_scalar(&t, kv->type, kv->data, out_size);
        return RA_OK;
    }
    text_printf(&t, "[%s; %" PRIu64 "]", ra_gguf_vtype_name(kv->elem_type), kv->n);
    uint64_t shown = kv->n < max_items ? kv->n : max_items;
    size_t esize = scalar_size(kv->elem_type);
    for (uint64_t i = 0; i < shown && !t.full; i++) {
        text_put(&t, i ? ", " : " ", i ? 2 : 1);
        if (kv->elem_type == RA_GGUF_STRING)
            text_scalar(&t, RA_GGUF_STRING, g->base + g->str_offsets[kv - g->kvs][i], 64);
        else
            text_scalar(&t, kv->elem_type, kv->data + i * esize, 64);
    }
    if (shown < kv->n) text_put(&t, shown ? ", ..." : " ...", shown ? 5 : 4);
    return RA_OK;
}
