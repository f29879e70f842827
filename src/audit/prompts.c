/* Prompt sets: JSONL, one prompt per line (format in include/ra/audit.h). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ra/audit.h"
#include "ra/util.h"

static ra_status ids_from_json(const cJSON *arr, uint32_t n_vocab, int32_t **ids, size_t *n, const char *where)
{
    if (!cJSON_IsArray(arr)) return ra_fail(RA_ERR_FORMAT, "%s: expected an array of token ids", where);
    size_t count = (size_t)cJSON_GetArraySize(arr);
    RA_TRY(ra_calloc(ids, count ? count : 1, sizeof **ids));
    size_t i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) {
        double v = cJSON_IsNumber(e) ? e->valuedouble : -1;
        if (v < 0 || v >= n_vocab || v != (double)(int32_t)v) {
            free(*ids);
            *ids = NULL;
            return ra_fail(RA_ERR_FORMAT, "%s: token id #%zu is not an integer in 0..%u", where, i, n_vocab - 1);
        }
        (*ids)[i++] = (int32_t)v;
    }
    *n = count;
    return RA_OK;
}

static ra_status encode(const ra_tokenizer *tok, const char *text, bool bos, int32_t **ids, size_t *n, const char *where)
{
    int32_t *raw;
    size_t n_raw;
    ra_status s = ra_tokenizer_encode(tok, text, strlen(text), true, &raw, &n_raw);
    if (s != RA_OK) return ra_wrap(s, "%s", where);
    if (!bos) { *ids = raw; *n = n_raw; return RA_OK; }
    s = ra_calloc(ids, n_raw + 1, sizeof **ids);
    if (s == RA_OK) {
        (*ids)[0] = ra_tokenizer_bos(tok);
        memcpy(*ids + 1, raw, n_raw * sizeof *raw);
        *n = n_raw + 1;
    }
    free(raw);
    return s;
}

static ra_status parse_line(const char *line, size_t lineno, const char *path, const ra_tokenizer *tok, uint32_t n_vocab,
                            ra_prompt *p)
{
    char where[512];
    snprintf(where, sizeof where, "%s:%zu", path, lineno);
    cJSON *o = cJSON_Parse(line);
    if (!o || !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return ra_fail(RA_ERR_FORMAT, "%s: not a JSON object", where);
    }
    ra_status s = RA_OK;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(o, "text");
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(o, "ids");
    const cJSON *cont = cJSON_GetObjectItemCaseSensitive(o, "continuation");
    const cJSON *cont_ids = cJSON_GetObjectItemCaseSensitive(o, "continuation_ids");
    char idbuf[32];
    snprintf(idbuf, sizeof idbuf, "prompt-%zu", lineno);
    s = ra_strdup(&p->id, cJSON_IsString(id) ? id->valuestring : idbuf);
    if (s == RA_OK) {
        if (cJSON_IsString(text) == (ids != NULL))
            s = ra_fail(RA_ERR_FORMAT, "%s: a prompt needs exactly one of \"text\" (string) or \"ids\" (array)", where);
        else if (ids)
            s = ids_from_json(ids, n_vocab, &p->ids, &p->n_ids, where);
        else
            s = encode(tok, text->valuestring, ra_tokenizer_add_bos(tok), &p->ids, &p->n_ids, where);
    }
    if (s == RA_OK && p->n_ids == 0) s = ra_fail(RA_ERR_FORMAT, "%s: the prompt encodes to no tokens", where);
    if (s == RA_OK && cont) {
        if (!cJSON_IsString(cont)) s = ra_fail(RA_ERR_FORMAT, "%s: \"continuation\" must be a string", where);
        else s = encode(tok, cont->valuestring, false, &p->cont, &p->n_cont, where);
    } else if (s == RA_OK && cont_ids) {
        s = ids_from_json(cont_ids, n_vocab, &p->cont, &p->n_cont, where);
    }
    cJSON_Delete(o);
    return s;
}

/* Generated from data/prompts.jsonl by the Makefile (build/gen/default_prompts.c). */
extern const unsigned char ra_default_prompts[];
extern const unsigned long ra_default_prompts_len;

static ra_status parse_set(const char *path, char *data, size_t len, const ra_tokenizer *tok, uint32_t n_vocab,
                           ra_prompt_set *ps)
{
    ra_status s = ra_strdup(&ps->path, path);
    if (s == RA_OK) ra_sha256(data, len, ps->sha256);
    size_t cap = 0;
    char *line = data;
    for (size_t lineno = 1; s == RA_OK && line < data + len; lineno++) {
        char *nl = memchr(line, '\n', (size_t)(data + len - line));
        if (nl) *nl = 0;
        const char *t = line;
        while (*t == ' ' || *t == '\t' || *t == '\r') t++;
        if (*t && *t != '#') {
            if (ps->n == cap) {
                cap = cap ? cap * 2 : 16;
                ra_prompt *grown = realloc(ps->items, cap * sizeof *grown);
                if (!grown) return ra_fail(RA_ERR_NOMEM, "out of memory reading %s", path);
                ps->items = grown;
            }
            memset(&ps->items[ps->n], 0, sizeof ps->items[ps->n]);
            s = parse_line(t, lineno, path, tok, n_vocab, &ps->items[ps->n]);
            ps->n++;
        }
        if (!nl) break;
        line = nl + 1;
    }
    if (s == RA_OK && ps->n == 0) s = ra_fail(RA_ERR_FORMAT, "%s: no prompts", path);
    return s;
}

ra_status ra_prompts_load(const char *path, const ra_tokenizer *tok, uint32_t n_vocab, ra_prompt_set **out)
{
    uint8_t *data;
    size_t len;
    if (path) {
        RA_TRY(ra_read_file(path, &data, &len));
    } else {
        len = ra_default_prompts_len;
        RA_TRY(ra_calloc(&data, len + 1, 1));
        memcpy(data, ra_default_prompts, len);
    }
    ra_prompt_set *ps;
    ra_status s = ra_calloc(&ps, 1, sizeof *ps);
    if (s == RA_OK) s = parse_set(path ? path : RA_DEFAULT_PROMPTS, (char *)data, len, tok, n_vocab, ps);
    free(data);
    if (s != RA_OK) {
        ra_prompts_free(ps);
        return s;
    }
    *out = ps;
    return RA_OK;
}

void ra_prompts_free(ra_prompt_set *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->n; i++) {
        free(p->items[i].id);
        free(p->items[i].ids);
        free(p->items[i].cont);
    }
    free(p->items);
    free(p->path);
    free(p);
}
