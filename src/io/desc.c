/* The container-neutral model description: storage types, building helpers
 * shared by the GGUF and HF readers, lookup, and release. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "desc_internal.h"
#include "ra/ggml_types.h"

static const struct {
    const char *name;
    uint32_t size, ggml;
} stypes[] = {
    [RA_ST_F32] = {"F32", 4, RA_GGML_F32},     [RA_ST_F16] = {"F16", 2, RA_GGML_F16},
    [RA_ST_BF16] = {"BF16", 2, RA_GGML_BF16},  [RA_ST_F64] = {"F64", 8, RA_GGML_F64},
    [RA_ST_I8] = {"I8", 1, RA_GGML_I8},        [RA_ST_U8] = {"U8", 1, RA_NO_GGML},
    [RA_ST_I16] = {"I16", 2, RA_GGML_I16},     [RA_ST_I32] = {"I32", 4, RA_GGML_I32},
    [RA_ST_I64] = {"I64", 8, RA_GGML_I64},     [RA_ST_F8_E4M3] = {"F8_E4M3", 1, RA_NO_GGML},
    [RA_ST_F8_E5M2] = {"F8_E5M2", 1, RA_NO_GGML}, [RA_ST_GGML] = {"GGML", 0, RA_NO_GGML},
};

const char *ra_stype_name(ra_stype t) { return (unsigned)t <= RA_ST_GGML ? stypes[t].name : "?"; }
uint32_t ra_stype_size(ra_stype t) { return (unsigned)t <= RA_ST_GGML ? stypes[t].size : 0; }
uint32_t ra_stype_ggml(ra_stype t) { return (unsigned)t <= RA_ST_GGML ? stypes[t].ggml : RA_NO_GGML; }

void ra_quant_config_free(ra_quant_config *q)
{
    for (size_t i = 0; q->ignore && i < q->n_ignore; i++) free(q->ignore[i]);
    free(q->ignore);
    q->ignore = NULL;
    q->n_ignore = 0;
}

ra_status ra_desc_new(const char *container, const char *path, ra_model_desc **out)
{
    *out = NULL;
    ra_model_desc *d;
    RA_TRY(ra_calloc(&d, 1, sizeof *d));
    snprintf(d->container, sizeof d->container, "%s", container);
    ra_status s = ra_calloc(&d->store, 1, sizeof *d->store);
    if (s == RA_OK) s = ra_strdup(&d->path, path);
    if (s != RA_OK) {
        ra_desc_close(d);
        return s;
    }
    d->config.bos_id = d->config.eos_id = -1;
    d->tokenizer.bos_id = d->tokenizer.eos_id = d->tokenizer.unk_id = d->tokenizer.pad_id = -1;
    *out = d;
    return RA_OK;
}

ra_status ra_desc_own(ra_model_desc *d, void *p)
{
    ra_desc_store *st = d->store;
    if (st->n_owned == st->cap_owned) {
        size_t cap = st->cap_owned ? 2 * st->cap_owned : 64;
        void **n = cap <= SIZE_MAX / sizeof *n ? realloc(st->owned, cap * sizeof *n) : NULL;
        if (!n) {
            free(p);
            return ra_fail(RA_ERR_NOMEM, "out of memory describing %s", d->path);
        }
        st->owned = n;
        st->cap_owned = cap;
    }
    st->owned[st->n_owned++] = p;
    return RA_OK;
}

ra_status ra_desc_alloc(ra_model_desc *d, void *out_ptr, size_t n, size_t size)
{
    void **out = out_ptr;
    RA_TRY(ra_calloc(out, n ? n : 1, size ? size : 1));
    return ra_desc_own(d, *out);
}

ra_status ra_desc_strdup(ra_model_desc *d, const char *s, size_t len, char **out)
{
    RA_TRY(ra_desc_alloc(d, out, len + 1, 1));
    memcpy(*out, s, len);
    return RA_OK;
}

ra_status ra_desc_add_file(ra_model_desc *d, const char *path, uint64_t bytes, const uint8_t sha256[32])
{
    ra_desc_file *f = realloc(d->files, (d->n_files + 1) * sizeof *f);
    if (!f) return ra_fail(RA_ERR_NOMEM, "out of memory describing %s", d->path);
    d->files = f;
    f[d->n_files] = (ra_desc_file){NULL, bytes, {0}};
    memcpy(f[d->n_files].sha256, sha256, 32);
    RA_TRY(ra_strdup(&f[d->n_files].path, path));
    d->n_files++;
    return RA_OK;
}

static const char *desc_name_of(const void *items, size_t i) { return ((const ra_tensor_desc *)items)[i].name; }

/* Shape and size agree, whatever the container said. */
static ra_status check_tensor(const ra_tensor_desc *t)
{
    if (t->n_dims > RA_MAX_DIMS)
        return ra_fail(RA_ERR_FORMAT, "%s: tensor %s has %u dimensions (at most %d)", t->file, t->name, t->n_dims, RA_MAX_DIMS);
    uint64_t n = 1;
    for (uint32_t i = 0; i < t->n_dims; i++) {
        if (t->shape[i] && n > UINT64_MAX / t->shape[i])
            return ra_fail(RA_ERR_FORMAT, "%s: tensor %s: shape overflows", t->file, t->name);
        n *= t->shape[i];
    }
    uint64_t bytes;
    if (t->type == RA_ST_GGML) {
        RA_TRY(ra_ggml_row_bytes(t->ggml_type, n, &bytes));
    } else {
        if (n > UINT64_MAX / ra_stype_size(t->type)) return ra_fail(RA_ERR_FORMAT, "%s: tensor %s: size overflows", t->file, t->name);
        bytes = n * ra_stype_size(t->type);
    }
    if (bytes != t->nbytes)
        return ra_fail(RA_ERR_FORMAT, "%s: tensor %s at byte %" PRIu64 ": %" PRIu64 " bytes for a shape that needs %" PRIu64,
                       t->file, t->name, t->offset, t->nbytes, bytes);
    return RA_OK;
}

ra_status ra_desc_finish(ra_model_desc *d)
{
    for (size_t i = 0; i < d->n_tensors; i++) RA_TRY(check_tensor(&d->tensors[i]));
    return ra_name_index_build(d->path, "tensor", d->n_tensors, desc_name_of, d->tensors, &d->store->by_name);
}

const ra_tensor_desc *ra_desc_find(const ra_model_desc *d, const char *name)
{
    const ra_name_index *e = ra_name_index_find(d->store->by_name, d->n_tensors, name);
    return e ? &d->tensors[e->index] : NULL;
}

ra_status ra_desc_open(const char *path, unsigned flags, ra_model_desc **out)
{
    *out = NULL;
    if (ra_is_dir(path)) return ra_desc_open_hf(path, flags, out);
    return ra_desc_open_gguf(path, flags, out);
}

void ra_desc_close(ra_model_desc *d)
{
    if (!d) return;
    ra_desc_store *st = d->store;
    if (st) {
        ra_gguf_close(st->gguf);
        for (size_t i = 0; i < st->n_shards; i++) ra_safetensors_close(st->shards[i]);
        free(st->shards);
        for (size_t i = 0; i < st->n_owned; i++) free(st->owned[i]);
        free(st->owned);
        free(st->by_name);
        free(st);
    }
    for (size_t i = 0; i < d->n_files; i++) free(d->files[i].path);
    free(d->files);
    ra_quant_config_free(&d->quant);
    free(d->path);
    free(d);
}
