/* Prompt sets: JSONL, one prompt per line (format in include/ra/audit.h). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ra/audit.h"
#include "ra/json.h"
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

/* What a prompt may be: max_tokens positions, and so (a token is at most
 * longest_token bytes) at most max_tokens * longest_token bytes of text. */
typedef struct {
    const ra_tokenizer *tok;
    uint32_t n_vocab, max_tokens;
    size_t max_text;
} limits;

static ra_status encode(const limits *lim, const char *text, bool bos, int32_t **ids, size_t *n, const char *where)
{
    size_t len = strlen(text);
    /* Refused before tokenizing: the tokenizer takes ~40 bytes of memory per byte of text. */
    if (len > lim->max_text)
        return ra_fail(RA_ERR_USAGE, "%s: a text of %zu bytes cannot fit the context length %u", where, len, lim->max_tokens);
    int32_t *raw;
    size_t n_raw;
    ra_status s = ra_tokenizer_encode(lim->tok, text, len, true, &raw, &n_raw);
    if (s != RA_OK) return ra_wrap(s, "%s", where);
    if (!bos) { *ids = raw; *n = n_raw; return RA_OK; }
    s = ra_calloc(ids, n_raw + 1, sizeof **ids);
    if (s == RA_OK) {
        (*ids)[0] = ra_tokenizer_bos(lim->tok);
        memcpy(*ids + 1, raw, n_raw * sizeof *raw);
        *n = n_raw + 1;
    }
    free(raw);
    return s;
}

static ra_status parse_line(const char *line, size_t len, size_t lineno, const char *path, const limits *lim, ra_prompt *p)
{
    char where[512];
    snprintf(where, sizeof where, "%s:%zu", path, lineno);
    cJSON *o;
    /* ids and continuation_ids are at most max_tokens values each */
    RA_TRY(ra_json_parse(where, line, len, 2 * (size_t)lim->max_tokens + 64, &o));
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return ra_fail(RA_ERR_FORMAT, "%s: not a JSON object", where);
    }
    uint32_t n_vocab = lim->n_vocab;
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
            s = encode(lim, text->valuestring, ra_tokenizer_add_bos(lim->tok), &p->ids, &p->n_ids, where);
    }
    if (s == RA_OK && p->n_ids == 0) s = ra_fail(RA_ERR_FORMAT, "%s: the prompt encodes to no tokens", where);
    if (s == RA_OK && cont) {
        if (!cJSON_IsString(cont)) s = ra_fail(RA_ERR_FORMAT, "%s: \"continuation\" must be a string", where);
        else s = encode(lim, cont->valuestring, false, &p->cont, &p->n_cont, where);
    } else if (s == RA_OK && cont_ids) {
        s = ids_from_json(cont_ids, n_vocab, &p->cont, &p->n_cont, where);
    }
    if (s == RA_OK && p->n_ids + p->n_cont > lim->max_tokens)
        s = ra_fail(RA_ERR_USAGE, "%s: the prompt is %zu tokens, over the context length %u", where, p->n_ids + p->n_cont,
                    lim->max_tokens);
    cJSON_Delete(o);
    return s;
}

/* Generated from data/prompts.jsonl by the Makefile (build/gen/default_prompts.c). */
extern const unsigned char ra_default_prompts[];
extern const unsigned long ra_default_prompts_len;

static ra_status parse_set(const char *path, char *data, size_t len, const limits *lim, ra_prompt_set *ps)
{
    ra_status s = ra_strdup(&ps->path, path);
    if (s == RA_OK) ra_sha256(data, len, ps->sha256);
    size_t cap = 0;
    char *line = data;
    for (size_t lineno = 1; s == RA_OK && line < data + len; lineno++) {
        char *nl = memchr(line, '\n', (size_t)(data + len - line));
        char *end = nl ? nl : data + len; /* the line's length, not strlen: a NUL must not hide the rest */
        const char *t = line;
        while (t < end && (*t == ' ' || *t == '\t' || *t == '\r')) t++;
        if (t < end && *t != '#') {
            if (ps->n == cap) {
                cap = cap ? cap * 2 : 16;
                ra_prompt *grown = realloc(ps->items, cap * sizeof *grown);
                if (!grown) return ra_fail(RA_ERR_NOMEM, "out of memory reading %s", path);
                ps->items = grown;
            }
            memset(&ps->items[ps->n], 0, sizeof ps->items[ps->n]);
            s = parse_line(t, (size_t)(end - t), lineno, path, lim, &ps->items[ps->n]);
            ps->n++;
        }
        if (!nl) break;
        line = nl + 1;
    }
    if (s == RA_OK && ps->n == 0) s = ra_fail(RA_ERR_FORMAT, "%s: no prompts", path);
    return s;
}

/* The longest token in bytes: no token stands for more bytes of text. */
static size_t longest_token(const ra_tokenizer *tok)
{
    size_t longest = 1, len;
    for (size_t i = 0; i < ra_tokenizer_n_vocab(tok); i++) {
        ra_tokenizer_token(tok, (int32_t)i, &len);
        if (len > longest) longest = len;
    }
    return longest;
}

ra_status ra_prompts_load(const char *path, const ra_tokenizer *tok, uint32_t n_vocab, uint32_t max_tokens, ra_prompt_set **out)
{
    uint8_t *data;
    size_t len;
    limits lim = {tok, n_vocab, max_tokens, (size_t)max_tokens * longest_token(tok)};
    if (path) {
        RA_TRY(ra_read_file_max(path, RA_PROMPTS_MAX_BYTES, &data, &len));
    } else {
        len = ra_default_prompts_len;
        RA_TRY(ra_calloc(&data, len + 1, 1));
        memcpy(data, ra_default_prompts, len);
    }
    ra_prompt_set *ps;
    ra_status s = ra_calloc(&ps, 1, sizeof *ps);
    if (s == RA_OK) s = parse_set(path ? path : RA_DEFAULT_PROMPTS, (char *)data, len, &lim, ps);
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

ra_status ra_prompts_fit(const ra_prompt_set *ps, uint32_t context, uint32_t max_new, bool score)
{
    for (size_t i = 0; i < ps->n; i++) {
        const ra_prompt *p = &ps->items[i];
        /* as ra_generate sizes each sequence: prompt, then the continuation or the new tokens, plus one */
        uint64_t need = (uint64_t)p->n_ids + (score && p->cont ? p->n_cont : max_new) + 1;
        if (need > context)
            return ra_fail(RA_ERR_USAGE, "%s: prompt %zu needs %llu positions (%zu prompt tokens + %s), over the context length %u",
                           ps->path, i + 1, (unsigned long long)need, p->n_ids,
                           score && p->cont ? "its continuation" : "--max-new-tokens", context);
    }
    return RA_OK;
}
