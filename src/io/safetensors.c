/* safetensors reader and writer. The reader checks the whole header at open,
 * as the reference implementation (huggingface/safetensors, tensor.rs) does:
 * header length at most 100 MB and inside the file, UTF-8 JSON, a known
 * dtype, shape x dtype size == data_offsets span, and spans that tile the
 * data section exactly (sorted by offset, back to back, no holes, no bytes
 * after the last). It also refuses duplicate names (the reference keeps the
 * last silently) and names with control characters. */
#include "ra/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io_json.h"
#include "ra/json.h"
#include "ra/util.h"

typedef struct {
    char *key, *value;
} meta_kv;

struct ra_st_file {
    char *path;
    const uint8_t *base;
    size_t size;
    bool mapped;
    uint64_t data_offset;
    ra_st_info *tensors; /* in data order */
    size_t n_tensors;
    meta_kv *meta;
    size_t n_meta;
    ra_name_index *by_name;
};

/* The dtypes of the format: the ones we read, and the others (refused by name). */
static const struct {
    const char *name;
    ra_stype type;
    bool ok;
} dtypes[] = {
    {"BF16", RA_ST_BF16, true}, {"F16", RA_ST_F16, true}, {"F32", RA_ST_F32, true}, {"I32", RA_ST_I32, true},
    {"I64", RA_ST_I64, true}, {"I8", RA_ST_I8, true}, {"U8", RA_ST_U8, true}, {"F8_E4M3", RA_ST_F8_E4M3, true},
    {"F8_E5M2", RA_ST_F8_E5M2, true}, {"F64", RA_ST_F64, false}, {"I16", RA_ST_I16, false}, {"BOOL", 0, false},
    {"U16", 0, false}, {"U32", 0, false}, {"U64", 0, false}, {"F8_E8M0", 0, false}, {"F4", 0, false},
    {"F6_E2M3", 0, false}, {"F6_E3M2", 0, false}, {"C64", 0, false},
};

static ra_status parse_dtype(const ra_st_file *f, const char *name, const cJSON *v, ra_stype *out)
{
    if (!cJSON_IsString(v))
        return ra_fail(RA_ERR_FORMAT, "%s: tensor %s: dtype is %s, expected a string", f->path, name, ra_io_json_kind(v));
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (!strcmp(v->valuestring, dtypes[i].name)) {
            if (!dtypes[i].ok)
                return ra_fail(RA_ERR_UNSUPPORTED, "%s: tensor %s: dtype %s is not supported (BF16 F16 F32 I32 I64 I8 U8 "
                               "F8_E4M3 F8_E5M2)", f->path, name, dtypes[i].name);
            *out = dtypes[i].type;
            return RA_OK;
        }
    return ra_fail(RA_ERR_FORMAT, "%s: tensor %s: unknown dtype \"%.32s\"", f->path, name, v->valuestring);
}

/* An array of n_max or fewer non-negative integers (exactly n when n_exact). */
static ra_status parse_dims(const ra_st_file *f, const char *name, const char *field, const cJSON *v, uint32_t n_max,
                            bool n_exact, uint64_t *out, uint32_t *n)
{
    int count = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : -1;
    if (count < 0 || (uint32_t)count > n_max || (n_exact && (uint32_t)count != n_max))
        return ra_fail(RA_ERR_FORMAT, "%s: tensor %s: %s is %s, expected an array of %s%u integers", f->path, name, field,
                       count < 0 ? ra_io_json_kind(v) : "too long", n_exact ? "" : "at most ", n_max);
    *n = (uint32_t)count;
    uint32_t i = 0;
    for (const cJSON *e = v->child; e; e = e->next, i++) {
        int64_t x;
        if (!ra_io_json_int(e, 0, INT64_MAX, &x))
            return ra_fail(RA_ERR_FORMAT, "%s: tensor %s: %s[%u] is not an integer in 0..2^53", f->path, name, field, i);
        out[i] = (uint64_t)x;
    }
    return RA_OK;
}

static ra_status parse_tensor(const ra_st_file *f, const cJSON *e, uint64_t data_len, ra_st_info *t)
{
    const char *name = e->string;
    for (const char *p = name; *p; p++)
        if ((uint8_t)*p < 0x20 || *p == 0x7f)
            return ra_fail(RA_ERR_FORMAT, "%s: a tensor name contains control character 0x%02x", f->path, (uint8_t)*p);
    if (!*name) return ra_fail(RA_ERR_FORMAT, "%s: a tensor has an empty name", f->path);
    if (!cJSON_IsObject(e))
        return ra_fail(RA_ERR_FORMAT, "%s: tensor %s is %s, expected an object", f->path, name, ra_io_json_kind(e));
    RA_TRY(parse_dtype(f, name, cJSON_GetObjectItemCaseSensitive(e, "dtype"), &t->type));
    RA_TRY(parse_dims(f, name, "shape", cJSON_GetObjectItemCaseSensitive(e, "shape"), RA_MAX_DIMS, false, t->shape,
                      &t->n_dims));
    uint64_t offs[2];
    uint32_t n_offs;
    RA_TRY(parse_dims(f, name, "data_offsets", cJSON_GetObjectItemCaseSensitive(e, "data_offsets"), 2, true, offs, &n_offs));
    t->begin = offs[0];
    t->end = offs[1];
    uint64_t n = ra_stype_size(t->type);
    for (uint32_t i = 0; i < t->n_dims; i++) {
        if (t->shape[i] && n > UINT64_MAX / t->shape[i])
            return ra_fail(RA_ERR_FORMAT, "%s: tensor %s: shape x dtype size overflows", f->path, name);
        n *= t->shape[i];
    }
    if (t->begin > t->end)
        return ra_fail(RA_ERR_FORMAT, "%s: tensor %s: data_offsets [%" PRIu64 ", %" PRIu64 "] run backwards", f->path, name,
                       t->begin, t->end);
    if (t->end > data_len)
        return ra_fail(RA_ERR_FORMAT, "%s: tensor %s: data_offsets end %" PRIu64 " (byte %" PRIu64
                       ") is past the end of the file (%zu bytes)", f->path, name, t->end, f->data_offset + t->end, f->size);
    if (t->end - t->begin != n)
        return ra_fail(RA_ERR_FORMAT, "%s: tensor %s at byte %" PRIu64 ": shape and dtype %s need %" PRIu64
                       " bytes, data_offsets span %" PRIu64, f->path, name, f->data_offset + t->begin,
                       ra_stype_name(t->type), n, t->end - t->begin);
    t->data = f->base + f->data_offset + t->begin;
    return ra_strdup((char **)&t->name, name);
}

static ra_status parse_meta(ra_st_file *f, const cJSON *m)
{
    if (!cJSON_IsObject(m))
        return ra_fail(RA_ERR_FORMAT, "%s: __metadata__ is %s, expected an object of strings", f->path, ra_io_json_kind(m));
    int n = cJSON_GetArraySize(m);
    RA_TRY(ra_calloc(&f->meta, n ? (size_t)n : 1, sizeof *f->meta));
    for (const cJSON *e = m->child; e; e = e->next) {
        if (!cJSON_IsString(e))
            return ra_fail(RA_ERR_FORMAT, "%s: __metadata__ entry \"%.64s\" is %s, expected a string", f->path, e->string,
                           ra_io_json_kind(e));
        meta_kv *kv = &f->meta[f->n_meta++];
        RA_TRY(ra_strdup(&kv->key, e->string));
        RA_TRY(ra_strdup(&kv->value, e->valuestring));
    }
    return RA_OK;
}

static int cmp_span(const void *a, const void *b)
{
    const ra_st_info *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

/* The spans tile the data section: back to back from 0 to its end. */
static ra_status check_tiling(const ra_st_file *f, uint64_t data_len)
{
    uint64_t at = 0;
    const char *prev = NULL;
    for (size_t i = 0; i < f->n_tensors; i++) {
        const ra_st_info *t = &f->tensors[i];
        if (t->begin < at)
            return ra_fail(RA_ERR_FORMAT, "%s: tensor %s at byte %" PRIu64 " overlaps tensor %s (which ends at byte %" PRIu64 ")",
                           f->path, t->name, f->data_offset + t->begin, prev, f->data_offset + at);
        if (t->begin > at)
            return ra_fail(RA_ERR_FORMAT, "%s: tensor %s starts at byte %" PRIu64 ", leaving a hole after byte %" PRIu64
                           " (the data section must be covered exactly)", f->path, t->name, f->data_offset + t->begin,
                           f->data_offset + at);
        at = t->end;
        prev = t->name;
    }
    if (at != data_len)
        return ra_fail(RA_ERR_FORMAT, "%s: the tensors end at byte %" PRIu64 " but the file has %zu bytes (the data section "
                       "must be covered exactly)", f->path, f->data_offset + at, f->size);
    return RA_OK;
}

static const char *info_name_of(const void *items, size_t i) { return ((const ra_st_info *)items)[i].name; }

static ra_status parse(ra_st_file *f)
{
    if (f->size < 8)
        return ra_fail(RA_ERR_FORMAT, "%s: %zu bytes: too short for the 8-byte header length", f->path, f->size);
    uint64_t n = ra_le64(f->base);
    if (n > RA_ST_MAX_HEADER)
        return ra_fail(RA_ERR_FORMAT, "%s: header length %" PRIu64 " at byte 0 is absurd (more than %u)", f->path, n,
                       RA_ST_MAX_HEADER);
    if (n > f->size - 8)
        return ra_fail(RA_ERR_FORMAT, "%s: header length %" PRIu64 " at byte 0 runs past the end of the file (%zu bytes)",
                       f->path, n, f->size);
    f->data_offset = 8 + n;
    uint64_t data_len = f->size - f->data_offset;
    cJSON *h;
    RA_TRY(ra_io_json_parse((const char *)f->base + 8, (size_t)n, f->path, 8, &h));
    ra_status s = RA_OK;
    if (!cJSON_IsObject(h)) s = ra_fail(RA_ERR_FORMAT, "%s: the header is %s, expected an object", f->path, ra_io_json_kind(h));
    size_t n_entries = s == RA_OK ? (size_t)cJSON_GetArraySize(h) : 0;
    if (s == RA_OK) s = ra_calloc(&f->tensors, n_entries ? n_entries : 1, sizeof *f->tensors);
    bool seen_meta = false;
    for (const cJSON *e = s == RA_OK ? h->child : NULL; e && s == RA_OK; e = e->next) {
        if (!strcmp(e->string, "__metadata__")) {
            s = seen_meta ? ra_fail(RA_ERR_FORMAT, "%s: duplicate __metadata__", f->path) : parse_meta(f, e);
            seen_meta = true;
        } else {
            s = parse_tensor(f, e, data_len, &f->tensors[f->n_tensors]);
            if (s == RA_OK) f->n_tensors++;
        }
    }
    cJSON_Delete(h);
    RA_TRY(s);
    qsort(f->tensors, f->n_tensors, sizeof *f->tensors, cmp_span);
    RA_TRY(ra_name_index_build(f->path, "tensor", f->n_tensors, info_name_of, f->tensors, &f->by_name));
    return check_tiling(f, data_len);
}

static ra_status open_common(const uint8_t *data, size_t len, const char *name, bool mapped, void *out_ptr)
{
    ra_st_file **out = out_ptr;
    *out = NULL;
    ra_st_file *f;
    RA_TRY(ra_calloc(&f, 1, sizeof *f));
    f->base = data;
    f->size = len;
    f->mapped = mapped;
    ra_status s = ra_strdup(&f->path, name ? name : "<memory>");
    if (s == RA_OK) s = parse(f);
    if (s != RA_OK) {
        f->mapped = false; /* the caller still owns data on failure */
        ra_safetensors_close(f);
        return s;
    }
    *out = f;
    return RA_OK;
}

ra_status ra_safetensors_open_memory(const uint8_t *data, size_t len, const char *name, ra_st_file **out)
{
    if (!data && len) return ra_fail(RA_ERR_USAGE, "ra_safetensors_open_memory: NULL buffer");
    return open_common(data, len, name, false, out);
}

ra_status ra_safetensors_open(const char *path, ra_st_file **out)
{
    *out = NULL;
    return ra_open_mapped(path, "safetensors", open_common, out);
}

void ra_safetensors_close(ra_st_file *f)
{
    if (!f) return;
    for (size_t i = 0; f->tensors && i < f->n_tensors; i++) free((char *)f->tensors[i].name);
    for (size_t i = 0; f->meta && i < f->n_meta; i++) {
        free(f->meta[i].key);
        free(f->meta[i].value);
    }
    free(f->tensors);
    free(f->meta);
    free(f->by_name);
    if (f->mapped) ra_unmap_file(f->base, f->size);
    free(f->path);
    free(f);
}

const char *ra_safetensors_path(const ra_st_file *f) { return f->path; }
size_t ra_safetensors_file_size(const ra_st_file *f) { return f->size; }
void ra_safetensors_sha256(const ra_st_file *f, uint8_t out[32]) { ra_sha256(f->base, f->size, out); }
uint64_t ra_safetensors_data_offset(const ra_st_file *f) { return f->data_offset; }
size_t ra_safetensors_n_tensors(const ra_st_file *f) { return f->n_tensors; }
size_t ra_safetensors_n_meta(const ra_st_file *f) { return f->n_meta; }

const ra_st_info *ra_safetensors_tensor_at(const ra_st_file *f, size_t i)
{
    return i < f->n_tensors ? &f->tensors[i] : NULL;
}

const ra_st_info *ra_safetensors_find(const ra_st_file *f, const char *name)
{
    const ra_name_index *e = ra_name_index_find(f->by_name, f->n_tensors, name);
    return e ? &f->tensors[e->index] : NULL;
}

void ra_safetensors_meta_at(const ra_st_file *f, size_t i, const char **key, const char **value)
{
    *key = i < f->n_meta ? f->meta[i].key : NULL;
    *value = i < f->n_meta ? f->meta[i].value : NULL;
}

const char *ra_safetensors_meta(const ra_st_file *f, const char *key)
{
    for (size_t i = 0; i < f->n_meta; i++)
        if (!strcmp(f->meta[i].key, key)) return f->meta[i].value;
    return NULL;
}

/* ---- writer ---- */

ra_status ra_safetensors_write(const char *path, const ra_st_tensor *t, size_t n, const char *const *meta_keys,
                               const char *const *meta_vals, size_t n_meta)
{
    cJSON *h = cJSON_CreateObject();
    if (n_meta) {
        cJSON *meta = cJSON_AddObjectToObject(h, "__metadata__");
        for (size_t i = 0; i < n_meta; i++) cJSON_AddStringToObject(meta, meta_keys[i], meta_vals[i]);
    }
    uint64_t off = 0;
    for (size_t i = 0; i < n; i++) {
        cJSON *e = cJSON_AddObjectToObject(h, t[i].name);
        cJSON_AddStringToObject(e, "dtype", t[i].dtype);
        cJSON *shape = cJSON_AddArrayToObject(e, "shape");
        for (uint32_t d = 0; d < t[i].n_dims; d++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t[i].shape[d]));
        cJSON *offs = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(off + t[i].nbytes)));
        off += t[i].nbytes;
    }
    char *json;
    ra_status s = ra_json_print(h, false, &json);
    cJSON_Delete(h);
    if (s != RA_OK) return s;
    size_t jlen = strlen(json), padded = (jlen + 7) / 8 * 8;

    /* A new file at a random name: nothing planted there is written through. */
    char prefix[4096], *tmp;
    int fd;
    snprintf(prefix, sizeof prefix, "%s.tmp-", path);
    s = ra_create_unique(prefix, false, &tmp, &fd);
    FILE *f = s == RA_OK ? fdopen(fd, "wb") : NULL;
    if (!f) {
        if (s == RA_OK) {
            s = ra_fail(RA_ERR_IO, "%s: cannot open: %s", tmp, strerror(errno));
            close(fd);
            unlink(tmp);
        }
        free(tmp);
        free(json);
        return s;
    }
    uint8_t len8[8];
    ra_put_le64(len8, padded);
    bool ok = fwrite(len8, 1, 8, f) == 8 && fwrite(json, 1, jlen, f) == jlen;
    for (size_t i = jlen; ok && i < padded; i++) ok = fputc(' ', f) != EOF;
    for (size_t i = 0; ok && i < n; i++) ok = fwrite(t[i].data, 1, t[i].nbytes, f) == t[i].nbytes;
    free(json);
    ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        free(tmp);
        return ra_fail(RA_ERR_IO, "%s: write failed: %s", path, strerror(e));
    }
    free(tmp);
    return RA_OK;
}
