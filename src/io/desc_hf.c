/* An HF checkpoint directory as a model description:
 *   config.json                       the configuration and quantization_config (hf_config.c)
 *   tokenizer.json (+ tokenizer_config.json)   the tokenizer (hf_tokenizer.c)
 *   model.safetensors, or model.safetensors.index.json and the shards its
 *   weight_map names                  the tensors, under their own (HF) names.
 * Every shard is opened (and fully validated) once; a tensor the index puts
 * in a shard that does not hold it is an error naming both. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "desc_internal.h"
#include "io_json.h"

static ra_status join(const char *dir, const char *name, char *out, size_t n)
{
    if ((size_t)snprintf(out, n, "%s/%s", dir, name) >= n) return ra_fail(RA_ERR_USAGE, "%s/%s: path too long", dir, name);
    return RA_OK;
}

static ra_status read_config(ra_model_desc *d, const char *dir)
{
    char path[4096];
    RA_TRY(join(dir, "config.json", path, sizeof path));
    uint8_t *text;
    size_t len;
    ra_status s = ra_read_file(path, &text, &len);
    if (s != RA_OK) return ra_wrap(s, "%s is not an HF checkpoint directory (no config.json)", dir);
    s = ra_hf_config_parse((const char *)text, len, path, &d->config, &d->quant);
    uint8_t sha[32];
    ra_sha256(text, len, sha); /* the bytes parsed */
    free(text);
    RA_TRY(s);
    if (!d->config.name[0]) { /* the directory's name */
        const char *base = dir + strlen(dir);
        while (base > dir && base[-1] == '/') base--;
        const char *end = base;
        while (base > dir && base[-1] != '/') base--;
        snprintf(d->config.name, sizeof d->config.name, "%.*s", (int)(end - base), base);
    }
    return ra_desc_add_file(d, path, len, sha);
}

static ra_status read_tokenizer(ra_model_desc *d, const char *dir)
{
    char path[4096], cfg[4096];
    RA_TRY(join(dir, "tokenizer.json", path, sizeof path));
    RA_TRY(join(dir, "tokenizer_config.json", cfg, sizeof cfg));
    if (!ra_path_exists(path)) return RA_OK; /* no tokenizer: has_tokenizer stays false */
    bool has_cfg = ra_path_exists(cfg);
    RA_TRY(ra_hf_tokenizer_read(d, path, has_cfg ? cfg : NULL, d->config.n_vocab));
    const char *files[2] = {path, cfg};
    for (int i = 0; i < 1 + has_cfg; i++) {
        const uint8_t *map;
        size_t size;
        uint8_t sha[32];
        RA_TRY(ra_map_file(files[i], "JSON", &map, &size));
        ra_sha256(map, size, sha);
        ra_unmap_file(map, size);
        RA_TRY(ra_desc_add_file(d, files[i], size, sha));
    }
    return RA_OK;
}

/* Opens dir/name as the next shard. */
static ra_status open_shard(ra_model_desc *d, const char *dir, const char *name, ra_st_file **out)
{
    char path[4096];
    RA_TRY(join(dir, name, path, sizeof path));
    ra_desc_store *st = d->store;
    ra_st_file **n = realloc(st->shards, (st->n_shards + 1) * sizeof *n);
    if (!n) return ra_fail(RA_ERR_NOMEM, "out of memory opening %s", path);
    st->shards = n;
    RA_TRY(ra_safetensors_open(path, &st->shards[st->n_shards]));
    *out = st->shards[st->n_shards++];
    uint8_t sha[32];
    ra_safetensors_sha256(*out, sha); /* the mapped bytes that run */
    return ra_desc_add_file(d, path, ra_safetensors_file_size(*out), sha);
}

static void put_tensor(ra_tensor_desc *t, const ra_st_file *f, const ra_st_info *info)
{
    t->name = t->src_name = info->name;
    t->type = info->type;
    t->ggml_type = ra_stype_ggml(info->type);
    t->n_dims = info->n_dims;
    memcpy(t->shape, info->shape, sizeof t->shape);
    t->nbytes = info->end - info->begin;
    t->data = info->data;
    t->file = ra_safetensors_path(f);
    t->offset = ra_safetensors_data_offset(f) + info->begin;
}

static ra_status read_single(ra_model_desc *d, const char *dir)
{
    ra_st_file *f;
    RA_TRY(open_shard(d, dir, "model.safetensors", &f));
    d->n_tensors = ra_safetensors_n_tensors(f);
    RA_TRY(ra_desc_alloc(d, &d->tensors, d->n_tensors, sizeof *d->tensors));
    for (size_t i = 0; i < d->n_tensors; i++) put_tensor(&d->tensors[i], f, ra_safetensors_tensor_at(f, i));
    return RA_OK;
}

/* A shard's file name: plain (no directory part), so the index cannot reach outside dir. */
static bool plain_name(const char *s)
{
    return s[0] && !strchr(s, '/') && strcmp(s, ".") && strcmp(s, "..");
}

static ra_status read_sharded(ra_model_desc *d, const char *dir, const char *index)
{
    uint8_t *text;
    size_t len;
    RA_TRY(ra_read_file(index, &text, &len));
    cJSON *j = NULL;
    ra_status s = ra_io_json_parse((const char *)text, len, index, 0, &j);
    free(text);
    RA_TRY(s);
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(j, "weight_map");
    if (!cJSON_IsObject(map))
        s = ra_fail(RA_ERR_FORMAT, "%s: weight_map is %s, expected an object", index, ra_io_json_kind(map));
    size_t n = s == RA_OK ? (size_t)cJSON_GetArraySize(map) : 0;
    const char **names = NULL; /* distinct shard file names, in first-seen order; shards[i] is names[i] */
    if (s == RA_OK) s = ra_calloc(&names, n ? n : 1, sizeof *names);
    if (s == RA_OK) s = ra_desc_alloc(d, &d->tensors, n, sizeof *d->tensors);
    size_t n_names = 0;
    for (const cJSON *e = s == RA_OK ? map->child : NULL; e && s == RA_OK; e = e->next) {
        if (!cJSON_IsString(e) || !plain_name(e->valuestring)) {
            s = ra_fail(RA_ERR_FORMAT, "%s: weight_map[\"%.64s\"] is not a file name in the directory", index, e->string);
            break;
        }
        size_t k = 0;
        while (k < n_names && strcmp(names[k], e->valuestring)) k++;
        ra_st_file *f;
        if (k == n_names) {
            names[n_names++] = e->valuestring;
            s = open_shard(d, dir, e->valuestring, &f);
            if (s != RA_OK) break;
        }
        f = d->store->shards[k];
        const ra_st_info *info = ra_safetensors_find(f, e->string);
        if (!info) {
            s = ra_fail(RA_ERR_FORMAT, "%s: tensor %s is missing (%s puts it there)", ra_safetensors_path(f), e->string, index);
            break;
        }
        put_tensor(&d->tensors[d->n_tensors++], f, info);
    }
    free(names);
    cJSON_Delete(j);
    RA_TRY(s);
    const uint8_t *m;
    size_t size;
    uint8_t sha[32];
    RA_TRY(ra_map_file(index, "JSON", &m, &size));
    ra_sha256(m, size, sha);
    ra_unmap_file(m, size);
    return ra_desc_add_file(d, index, size, sha);
}

static int by_path(const void *a, const void *b)
{
    return strcmp(((const ra_desc_file *)a)->path, ((const ra_desc_file *)b)->path);
}

ra_status ra_desc_open_hf(const char *dir, unsigned flags, ra_model_desc **out)
{
    *out = NULL;
    ra_model_desc *d;
    RA_TRY(ra_desc_new("hf", dir, &d));
    char index[4096], single[4096];
    ra_status s = join(dir, "model.safetensors.index.json", index, sizeof index);
    if (s == RA_OK) s = join(dir, "model.safetensors", single, sizeof single);
    if (s == RA_OK) s = read_config(d, dir);
    if (s == RA_OK && !(flags & RA_DESC_NO_TOKENIZER)) s = read_tokenizer(d, dir);
    if (s == RA_OK) {
        if (ra_path_exists(index)) s = read_sharded(d, dir, index);
        else if (ra_path_exists(single)) s = read_single(d, dir);
        else s = ra_fail(RA_ERR_FORMAT, "%s: no model.safetensors or model.safetensors.index.json", dir);
    }
    if (s == RA_OK) s = ra_desc_finish(d);
    if (s != RA_OK) {
        ra_desc_close(d);
        return s;
    }
    qsort(d->files, d->n_files, sizeof *d->files, by_path);
    *out = d;
    return RA_OK;
}
