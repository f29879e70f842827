/* HF tokenizer.json (and tokenizer_config.json) to the tokenizer spec of a
 * model description, and back. Only what src/model/tokenizer.c reproduces
 * exactly is accepted: a byte-level BPE model (no dropout, no byte fallback,
 * no subword prefixes, merges applied as ranked), no normalizer, and one of
 * the pre-tokenizers it implements:
 *   "smollm"  Sequence[Digits(individual_digits), ByteLevel(add_prefix_space false, use_regex)]
 *   "gpt2"    ByteLevel(add_prefix_space false, use_regex)
 * Anything else is refused with a message that names the field.
 *
 * Token ids are made dense as llama.cpp's converter does: a hole below the
 * largest id (or below config.json's vocab_size) becomes "[PAD<id>]" of type
 * unused. Added tokens become control (special) or user-defined tokens. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "desc_internal.h"
#include "io_json.h"
#include "ra/text.h"

/* Real vocabularies are below 300k; the bound keeps a hostile file from asking
 * for gigabytes of padding. */
#define MAX_VOCAB (1u << 21)

typedef struct {
    const char *file;
    ra_model_desc *d;
    ra_buf arena;       /* every string, NUL-separated; pointers fixed up at the end */
    size_t *merge_off;
} reader;

/* A string in the arena; its offset in *off. */
static ra_status keep(reader *r, const char *s, size_t len, size_t *off)
{
    *off = r->arena.len;
    RA_TRY(ra_buf_append(&r->arena, s, len));
    return ra_buf_append(&r->arena, "", 1);
}

static ra_status refuse(const reader *r, const char *what, const char *detail)
{
    return ra_fail(RA_ERR_UNSUPPORTED, "%s: %s %s cannot be reproduced (byte-level BPE with the smollm or gpt2 "
                   "pre-tokenizer only)", r->file, what, detail);
}

static bool is_null_or_false(const cJSON *v) { return !v || cJSON_IsNull(v) || cJSON_IsFalse(v); }

static const char *type_of(const cJSON *o)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "type");
    return cJSON_IsString(t) ? t->valuestring : "(no type)";
}

/* ByteLevel as the GPT-2 pre-split: no prefix space, the regex on (both default to true). */
static bool byte_level_gpt2(const cJSON *o)
{
    if (!cJSON_IsObject(o) || strcmp(type_of(o), "ByteLevel")) return false;
    const cJSON *aps = cJSON_GetObjectItemCaseSensitive(o, "add_prefix_space");
    const cJSON *re = cJSON_GetObjectItemCaseSensitive(o, "use_regex");
    return cJSON_IsFalse(aps) && (!re || cJSON_IsTrue(re));
}

static ra_status classify_pre(const reader *r, const cJSON *pre, const char **out)
{
    if (byte_level_gpt2(pre)) {
        *out = "gpt2";
        return RA_OK;
    }
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive(pre, "pretokenizers");
    if (cJSON_IsObject(pre) && !strcmp(type_of(pre), "Sequence") && cJSON_GetArraySize(seq) == 2) {
        const cJSON *digits = seq->child, *bl = seq->child->next;
        if (cJSON_IsObject(digits) && !strcmp(type_of(digits), "Digits") &&
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(digits, "individual_digits")) && byte_level_gpt2(bl)) {
            *out = "smollm";
            return RA_OK;
        }
    }
    char detail[160];
    snprintf(detail, sizeof detail, "of type %s", cJSON_IsObject(pre) ? type_of(pre) : ra_io_json_kind(pre));
    if (cJSON_IsObject(pre) && !strcmp(type_of(pre), "Sequence")) {
        size_t n = strlen(detail);
        snprintf(detail + n, sizeof detail - n, " [");
        for (const cJSON *e = cJSON_IsArray(seq) ? seq->child : NULL; e && n < sizeof detail - 40; e = e->next) {
            n = strlen(detail);
            snprintf(detail + n, sizeof detail - n, "%s%s", e == seq->child ? "" : ", ", type_of(e));
        }
        n = strlen(detail);
        snprintf(detail + n, sizeof detail - n, "]");
    }
    return refuse(r, "pre_tokenizer", detail);
}

static ra_status check_model(const reader *r, const cJSON *m)
{
    if (!cJSON_IsObject(m)) return ra_fail(RA_ERR_FORMAT, "%s: model is %s, expected an object", r->file, ra_io_json_kind(m));
    if (strcmp(type_of(m), "BPE")) return refuse(r, "model of type", type_of(m));
    const cJSON *dropout = cJSON_GetObjectItemCaseSensitive(m, "dropout");
    if (dropout && !cJSON_IsNull(dropout) && !(cJSON_IsNumber(dropout) && dropout->valuedouble == 0))
        return refuse(r, "model.dropout", "(not null)");
    static const char *const empty_or_null[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (size_t i = 0; i < 2; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, empty_or_null[i]);
        if (v && !cJSON_IsNull(v) && !(cJSON_IsString(v) && !v->valuestring[0])) return refuse(r, "model.", empty_or_null[i]);
    }
    if (!is_null_or_false(cJSON_GetObjectItemCaseSensitive(m, "byte_fallback"))) return refuse(r, "model.byte_fallback", "true");
    if (!is_null_or_false(cJSON_GetObjectItemCaseSensitive(m, "ignore_merges"))) return refuse(r, "model.ignore_merges", "true");
    return RA_OK;
}

/* Puts id -> text into the dense arrays, growing them; a second text for an id is an error. */
typedef struct {
    size_t *off;        /* arena offset + 1; 0 = hole */
    int32_t *type;
    size_t n, cap;
} dense;

static ra_status dense_reserve(const reader *r, dense *v, size_t n)
{
    if (n <= v->cap) return RA_OK;
    size_t cap = v->cap ? v->cap : 1024;
    while (cap < n) cap *= 2;
    size_t *o = realloc(v->off, cap * sizeof *o);
    if (o) v->off = o;
    int32_t *t = o ? realloc(v->type, cap * sizeof *t) : NULL;
    if (t) v->type = t;
    if (!t) return ra_fail(RA_ERR_NOMEM, "%s: out of memory for the vocabulary", r->file);
    memset(v->off + v->cap, 0, (cap - v->cap) * sizeof *o);
    v->cap = cap;
    return RA_OK;
}

static ra_status dense_put(reader *r, dense *v, int64_t id, const char *text, int32_t type, const char *what)
{
    if (id < 0 || id >= MAX_VOCAB)
        return ra_fail(RA_ERR_FORMAT, "%s: %s \"%.64s\" has id %lld, outside 0..%u", r->file, what, text, (long long)id, MAX_VOCAB - 1);
    size_t i = (size_t)id;
    RA_TRY(dense_reserve(r, v, i + 1));
    if (i >= v->n) v->n = i + 1;
    if (v->off[i]) {
        const char *old = (const char *)r->arena.data + v->off[i] - 1;
        if (strcmp(old, text))
            return ra_fail(RA_ERR_FORMAT, "%s: id %lld is both \"%.64s\" and \"%.64s\"", r->file, (long long)id, old, text);
        v->type[i] = type; /* an added token that repeats a vocabulary entry: the added flags win */
        return RA_OK;
    }
    size_t off;
    RA_TRY(keep(r, text, strlen(text), &off));
    v->off[i] = off + 1;
    v->type[i] = type;
    return RA_OK;
}

static ra_status read_vocab(reader *r, const cJSON *m, dense *v)
{
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(m, "vocab");
    if (!cJSON_IsObject(vocab))
        return ra_fail(RA_ERR_FORMAT, "%s: model.vocab is %s, expected an object", r->file, ra_io_json_kind(vocab));
    for (const cJSON *e = vocab->child; e; e = e->next) {
        int64_t id;
        if (!ra_io_json_int(e, 0, MAX_VOCAB - 1, &id))
            return ra_fail(RA_ERR_FORMAT, "%s: model.vocab[\"%.64s\"] is not a token id", r->file, e->string);
        RA_TRY(dense_put(r, v, id, e->string, RA_TOK_NORMAL, "token"));
    }
    return RA_OK;
}

static ra_status read_added(reader *r, const cJSON *added, dense *v)
{
    if (!added || cJSON_IsNull(added)) return RA_OK;
    if (!cJSON_IsArray(added))
        return ra_fail(RA_ERR_FORMAT, "%s: added_tokens is %s, expected an array", r->file, ra_io_json_kind(added));
    size_t i = 0;
    for (const cJSON *e = added->child; e; e = e->next, i++) {
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(e, "content");
        int64_t id;
        if (!cJSON_IsObject(e) || !cJSON_IsString(content) || !content->valuestring[0] ||
            !ra_io_json_int(cJSON_GetObjectItemCaseSensitive(e, "id"), 0, MAX_VOCAB - 1, &id))
            return ra_fail(RA_ERR_FORMAT, "%s: added_tokens[%zu] lacks a string content or an integer id", r->file, i);
        static const char *const flags[] = {"single_word", "lstrip", "rstrip"};
        for (size_t k = 0; k < 3; k++)
            if (!is_null_or_false(cJSON_GetObjectItemCaseSensitive(e, flags[k]))) {
                char detail[128];
                snprintf(detail, sizeof detail, "\"%.64s\" with %s", content->valuestring, flags[k]);
                return refuse(r, "added token", detail);
            }
        bool special = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "special"));
        RA_TRY(dense_put(r, v, id, content->valuestring, special ? RA_TOK_CONTROL : RA_TOK_USER_DEFINED, "added token"));
    }
    return RA_OK;
}

/* Merges as "left right": the string form as it is, the pair form joined. */
static ra_status read_merges(reader *r, const cJSON *m, size_t *n)
{
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(m, "merges");
    *n = 0;
    if (!merges || cJSON_IsNull(merges)) return RA_OK;
    if (!cJSON_IsArray(merges))
        return ra_fail(RA_ERR_FORMAT, "%s: model.merges is %s, expected an array", r->file, ra_io_json_kind(merges));
    size_t count = (size_t)cJSON_GetArraySize(merges);
    RA_TRY(ra_desc_alloc(r->d, &r->merge_off, count, sizeof *r->merge_off));
    for (const cJSON *e = merges->child; e; e = e->next, (*n)++) {
        if (cJSON_IsString(e)) {
            RA_TRY(keep(r, e->valuestring, strlen(e->valuestring), &r->merge_off[*n]));
            continue;
        }
        const cJSON *a = cJSON_IsArray(e) && cJSON_GetArraySize(e) == 2 ? e->child : NULL;
        if (!a || !cJSON_IsString(a) || !cJSON_IsString(a->next))
            return ra_fail(RA_ERR_FORMAT, "%s: model.merges[%zu] is neither \"a b\" nor [\"a\", \"b\"]", r->file, *n);
        if (strchr(a->valuestring, ' '))
            return ra_fail(RA_ERR_UNSUPPORTED, "%s: model.merges[%zu]: \"%.64s\" contains a space", r->file, *n, a->valuestring);
        r->merge_off[*n] = r->arena.len;
        RA_TRY(ra_buf_append(&r->arena, a->valuestring, strlen(a->valuestring)));
        RA_TRY(ra_buf_append(&r->arena, " ", 1));
        RA_TRY(ra_buf_append(&r->arena, a->next->valuestring, strlen(a->next->valuestring) + 1));
    }
    return RA_OK;
}

/* The token text of a special-token entry: "text", {"content": "text"} or null. */
static const char *token_text(const cJSON *v)
{
    if (cJSON_IsString(v)) return v->valuestring;
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(v, "content");
    return cJSON_IsString(c) ? c->valuestring : NULL;
}

static int32_t find_token(const ra_tokenizer_spec *sp, const char *text)
{
    size_t n = strlen(text);
    for (size_t i = sp->n_tokens; i-- > 0;) /* the last of equal strings, as the tokenizer maps them */
        if (sp->token_lens[i] == n && !memcmp(sp->tokens[i], text, n)) return (int32_t)i;
    return -1;
}

/* post_processor: nothing, ByteLevel, or a template that puts one special
 * token before the sequence (BOS); a Sequence of those. */
static ra_status read_post(const reader *r, const cJSON *p, const char **bos_text, bool *add_bos)
{
    if (!p || cJSON_IsNull(p)) return RA_OK;
    const char *t = type_of(p);
    if (!strcmp(t, "ByteLevel")) return RA_OK;
    if (!strcmp(t, "Sequence")) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(p, "processors");
        for (const cJSON *e = cJSON_IsArray(list) ? list->child : NULL; e; e = e->next) RA_TRY(read_post(r, e, bos_text, add_bos));
        return RA_OK;
    }
    if (strcmp(t, "TemplateProcessing")) return refuse(r, "post_processor", t);
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(p, "single");
    int n = cJSON_IsArray(single) ? cJSON_GetArraySize(single) : 0;
    const cJSON *first = n ? single->child : NULL, *last = n ? cJSON_GetArrayItem(single, n - 1) : NULL;
    const cJSON *sp = cJSON_GetObjectItemCaseSensitive(first, "SpecialToken");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(sp, "id");
    if (n == 1 && cJSON_GetObjectItemCaseSensitive(first, "Sequence")) return RA_OK;
    if (n == 2 && cJSON_IsString(id) && cJSON_GetObjectItemCaseSensitive(last, "Sequence")) {
        *bos_text = id->valuestring;
        *add_bos = true;
        return RA_OK;
    }
    return refuse(r, "post_processor", "TemplateProcessing other than [BOS, $A]");
}

/* tokenizer_config.json: the special tokens by text, and add_bos_token. */
static ra_status read_tok_config(const char *path, ra_tokenizer_spec *sp, const char *bos_from_template)
{
    uint8_t *text = NULL;
    size_t len;
    cJSON *j = NULL;
    ra_status s = path ? ra_read_file(path, &text, &len) : RA_OK;
    if (s == RA_OK && text) s = ra_io_json_parse((const char *)text, len, path, 0, &j);
    free(text);
    if (s == RA_OK && j && !cJSON_IsObject(j)) s = ra_fail(RA_ERR_FORMAT, "%s: not a JSON object", path);
    static const char *const keys[] = {"bos_token", "eos_token", "unk_token", "pad_token"};
    int32_t *ids[] = {&sp->bos_id, &sp->eos_id, &sp->unk_id, &sp->pad_id};
    if (s == RA_OK && bos_from_template) {
        sp->bos_id = find_token(sp, bos_from_template);
        if (sp->bos_id < 0) s = ra_fail(RA_ERR_FORMAT, "post_processor: BOS \"%.64s\" is not a token", bos_from_template);
    }
    for (size_t i = 0; s == RA_OK && j && i < 4; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, keys[i]);
        if (!v || cJSON_IsNull(v)) continue;
        const char *t = token_text(v);
        if (!t) s = ra_fail(RA_ERR_FORMAT, "%s: %s is %s, expected a token", path, keys[i], ra_io_json_kind(v));
        else if ((*ids[i] = find_token(sp, t)) < 0)
            s = ra_fail(RA_ERR_FORMAT, "%s: %s \"%.64s\" is not in the vocabulary", path, keys[i], t);
    }
    const cJSON *ab = j ? cJSON_GetObjectItemCaseSensitive(j, "add_bos_token") : NULL;
    if (s == RA_OK && ab && !cJSON_IsNull(ab)) {
        if (!cJSON_IsBool(ab)) s = ra_fail(RA_ERR_FORMAT, "%s: add_bos_token is %s, expected true or false", path, ra_io_json_kind(ab));
        else sp->add_bos = cJSON_IsTrue(ab);
    }
    cJSON_Delete(j);
    return s;
}

/* The arrays of the spec, pointing into the (now final) arena. */
static ra_status build_spec(reader *r, dense *v, size_t n_tokens, size_t n_merges, const char *pre)
{
    ra_model_desc *d = r->d;
    ra_tokenizer_spec *sp = &d->tokenizer;
    RA_TRY(dense_reserve(r, v, n_tokens));
    for (size_t i = 0; i < n_tokens; i++) /* holes: [PAD<id>], as llama.cpp's converter names them */
        if (!v->off[i]) {
            char pad[32];
            size_t off;
            snprintf(pad, sizeof pad, "[PAD%zu]", i);
            RA_TRY(keep(r, pad, strlen(pad), &off));
            v->off[i] = off + 1;
            v->type[i] = RA_TOK_UNUSED;
        }
    char *arena;
    RA_TRY(ra_desc_strdup(d, (const char *)r->arena.data, r->arena.len, &arena));
    const char **toks, **merges;
    size_t *tok_lens, *merge_lens;
    int32_t *types;
    RA_TRY(ra_desc_alloc(d, &toks, n_tokens, sizeof *toks));
    RA_TRY(ra_desc_alloc(d, &tok_lens, n_tokens, sizeof *tok_lens));
    RA_TRY(ra_desc_alloc(d, &types, n_tokens, sizeof *types));
    RA_TRY(ra_desc_alloc(d, &merges, n_merges, sizeof *merges));
    RA_TRY(ra_desc_alloc(d, &merge_lens, n_merges, sizeof *merge_lens));
    for (size_t i = 0; i < n_tokens; i++) {
        toks[i] = arena + v->off[i] - 1;
        tok_lens[i] = strlen(toks[i]);
        types[i] = v->type[i];
    }
    for (size_t i = 0; i < n_merges; i++) {
        merges[i] = arena + r->merge_off[i];
        merge_lens[i] = strlen(merges[i]);
    }
    sp->model = "gpt2";
    sp->pre = pre;
    sp->n_tokens = n_tokens;
    sp->tokens = toks;
    sp->token_lens = tok_lens;
    sp->token_types = types;
    sp->n_merges = n_merges;
    sp->merges = merges;
    sp->merge_lens = merge_lens;
    return RA_OK;
}

ra_status ra_hf_tokenizer_read(ra_model_desc *d, const char *path, const char *config_path, uint32_t vocab_size)
{
    reader r = {.file = path, .d = d};
    dense v = {0};
    uint8_t *text = NULL;
    size_t len, n_merges = 0;
    cJSON *j = NULL;
    const char *pre = NULL, *bos_text = NULL;
    bool add_bos = false;
    ra_status s = ra_read_file(path, &text, &len);
    if (s == RA_OK) s = ra_io_json_parse((const char *)text, len, path, 0, &j);
    free(text);
    if (s == RA_OK && !cJSON_IsObject(j)) s = ra_fail(RA_ERR_FORMAT, "%s: not a JSON object", path);
    const cJSON *model = j ? cJSON_GetObjectItemCaseSensitive(j, "model") : NULL;
    if (s == RA_OK) s = check_model(&r, model);
    const cJSON *norm = j ? cJSON_GetObjectItemCaseSensitive(j, "normalizer") : NULL;
    if (s == RA_OK && norm && !cJSON_IsNull(norm)) s = refuse(&r, "normalizer", type_of(norm));
    if (s == RA_OK) s = classify_pre(&r, cJSON_GetObjectItemCaseSensitive(j, "pre_tokenizer"), &pre);
    const cJSON *dec = j ? cJSON_GetObjectItemCaseSensitive(j, "decoder") : NULL;
    if (s == RA_OK && (!cJSON_IsObject(dec) || strcmp(type_of(dec), "ByteLevel")))
        s = refuse(&r, "decoder", cJSON_IsObject(dec) ? type_of(dec) : ra_io_json_kind(dec));
    if (s == RA_OK) s = read_post(&r, cJSON_GetObjectItemCaseSensitive(j, "post_processor"), &bos_text, &add_bos);
    if (s == RA_OK) s = read_vocab(&r, model, &v);
    if (s == RA_OK) s = read_added(&r, cJSON_GetObjectItemCaseSensitive(j, "added_tokens"), &v);
    if (s == RA_OK) s = read_merges(&r, model, &n_merges);
    const cJSON *unk = model ? cJSON_GetObjectItemCaseSensitive(model, "unk_token") : NULL;
    char *unk_text = NULL, *bos_copy = NULL;
    if (s == RA_OK && cJSON_IsString(unk)) s = ra_strdup(&unk_text, unk->valuestring);
    if (s == RA_OK && bos_text) s = ra_strdup(&bos_copy, bos_text);
    cJSON_Delete(j);
    size_t n_tokens = v.n > vocab_size ? v.n : vocab_size;
    if (s == RA_OK && n_tokens == 0) s = ra_fail(RA_ERR_FORMAT, "%s: the vocabulary is empty", path);
    if (s == RA_OK && n_tokens > MAX_VOCAB)
        s = ra_fail(RA_ERR_UNSUPPORTED, "%s: a vocabulary of %zu tokens (config.json vocab_size) is more than %u", path,
                    n_tokens, MAX_VOCAB);
    if (s == RA_OK) s = build_spec(&r, &v, n_tokens, n_merges, pre);
    ra_tokenizer_spec *sp = &d->tokenizer;
    sp->add_bos = add_bos;
    sp->bos_id = d->config.bos_id >= 0 && (size_t)d->config.bos_id < n_tokens ? d->config.bos_id : -1;
    sp->eos_id = d->config.eos_id >= 0 && (size_t)d->config.eos_id < n_tokens ? d->config.eos_id : -1;
    if (s == RA_OK && unk_text) sp->unk_id = find_token(sp, unk_text);
    if (s == RA_OK) s = read_tok_config(config_path, sp, bos_copy);
    free(unk_text);
    free(bos_copy);
    free(v.off);
    free(v.type);
    ra_buf_free(&r.arena);
    if (s == RA_OK) d->has_tokenizer = true;
    return s;
}

/* ---- writer ---- */

static ra_status checked_string(const char *s, size_t n, const char *what, size_t i)
{
    for (size_t at = 0, k; at < n; at += k)
        if (!s[at] || !(k = ra_utf8_len((const uint8_t *)s + at, n - at)))
            return ra_fail(RA_ERR_UNSUPPORTED, "%s %zu is not NUL-free UTF-8: tokenizer.json cannot hold it", what, i);
    return RA_OK;
}

static cJSON *json_token(const char *s, size_t n)
{
    char *c = strndup(s, n);
    cJSON *v = c ? cJSON_CreateString(c) : NULL;
    free(c);
    return v;
}

static cJSON *byte_level(bool prefix_space, bool trim)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "ByteLevel");
    cJSON_AddBoolToObject(o, "add_prefix_space", prefix_space);
    cJSON_AddBoolToObject(o, "trim_offsets", trim);
    cJSON_AddBoolToObject(o, "use_regex", true);
    return o;
}

static cJSON *template_piece(const char *kind, const char *id, int type_id)
{
    cJSON *o = cJSON_CreateObject(), *p = cJSON_AddObjectToObject(o, kind);
    cJSON_AddStringToObject(p, "id", id);
    cJSON_AddNumberToObject(p, "type_id", type_id);
    return o;
}

/* TemplateProcessing that puts BOS before each sequence, as Llama's does. */
static cJSON *bos_template(const char *text, size_t len, int32_t id)
{
    char *bos = strndup(text, len);
    if (!bos) return NULL;
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "type", "TemplateProcessing");
    cJSON *single = cJSON_AddArrayToObject(t, "single"), *pair = cJSON_AddArrayToObject(t, "pair");
    cJSON_AddItemToArray(single, template_piece("SpecialToken", bos, 0));
    cJSON_AddItemToArray(single, template_piece("Sequence", "A", 0));
    cJSON_AddItemToArray(pair, template_piece("SpecialToken", bos, 0));
    cJSON_AddItemToArray(pair, template_piece("Sequence", "A", 0));
    cJSON_AddItemToArray(pair, template_piece("SpecialToken", bos, 1));
    cJSON_AddItemToArray(pair, template_piece("Sequence", "B", 1));
    cJSON *e = cJSON_AddObjectToObject(cJSON_AddObjectToObject(t, "special_tokens"), bos);
    cJSON_AddStringToObject(e, "id", bos);
    cJSON_AddItemToObject(e, "ids", cJSON_CreateIntArray(&id, 1));
    cJSON_AddItemToArray(cJSON_AddArrayToObject(e, "tokens"), cJSON_CreateString(bos));
    free(bos);
    return t;
}

/* tokenizer.json as HF `tokenizers` writes it for a byte-level BPE. */
static ra_status tokenizer_json(const ra_tokenizer_spec *sp, cJSON *root)
{
    cJSON_AddStringToObject(root, "version", "1.0");
    cJSON_AddNullToObject(root, "truncation");
    cJSON_AddNullToObject(root, "padding");
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    cJSON *vocab = cJSON_CreateObject(), *merges = cJSON_CreateArray();
    for (size_t i = 0; i < sp->n_tokens; i++) {
        RA_TRY(checked_string(sp->tokens[i], sp->token_lens[i], "token", i));
        int32_t type = sp->token_types ? sp->token_types[i] : RA_TOK_NORMAL;
        char *key = strndup(sp->tokens[i], sp->token_lens[i]);
        if (!key) return ra_fail(RA_ERR_NOMEM, "out of memory writing tokenizer.json");
        cJSON_AddItemToObject(vocab, key, cJSON_CreateNumber((double)i));
        free(key);
        if (type != RA_TOK_CONTROL && type != RA_TOK_USER_DEFINED) continue;
        cJSON *a = cJSON_CreateObject();
        cJSON_AddNumberToObject(a, "id", (double)i);
        cJSON_AddItemToObject(a, "content", json_token(sp->tokens[i], sp->token_lens[i]));
        cJSON_AddBoolToObject(a, "single_word", false);
        cJSON_AddBoolToObject(a, "lstrip", false);
        cJSON_AddBoolToObject(a, "rstrip", false);
        cJSON_AddBoolToObject(a, "normalized", type == RA_TOK_USER_DEFINED);
        cJSON_AddBoolToObject(a, "special", type == RA_TOK_CONTROL);
        cJSON_AddItemToArray(added, a);
    }
    for (size_t i = 0; i < sp->n_merges; i++) {
        RA_TRY(checked_string(sp->merges[i], sp->merge_lens[i], "merge", i));
        cJSON_AddItemToArray(merges, json_token(sp->merges[i], sp->merge_lens[i]));
    }
    cJSON_AddNullToObject(root, "normalizer");
    cJSON *bl = byte_level(false, true);
    if (!strcmp(sp->pre, "smollm")) {
        cJSON *seq = cJSON_AddObjectToObject(root, "pre_tokenizer");
        cJSON_AddStringToObject(seq, "type", "Sequence");
        cJSON *list = cJSON_AddArrayToObject(seq, "pretokenizers");
        cJSON *digits = cJSON_CreateObject();
        cJSON_AddStringToObject(digits, "type", "Digits");
        cJSON_AddBoolToObject(digits, "individual_digits", true);
        cJSON_AddItemToArray(list, digits);
        cJSON_AddItemToArray(list, bl);
    } else {
        cJSON_AddItemToObject(root, "pre_tokenizer", bl);
    }
    if (sp->add_bos) {
        cJSON_AddItemToObject(root, "post_processor", bos_template(sp->tokens[sp->bos_id], sp->token_lens[sp->bos_id], sp->bos_id));
    } else {
        cJSON_AddItemToObject(root, "post_processor", byte_level(true, false));
    }
    cJSON_AddItemToObject(root, "decoder", byte_level(true, true));
    cJSON *m = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(m, "type", "BPE");
    cJSON_AddNullToObject(m, "dropout");
    cJSON_AddNullToObject(m, "unk_token");
    cJSON_AddNullToObject(m, "continuing_subword_prefix");
    cJSON_AddNullToObject(m, "end_of_word_suffix");
    cJSON_AddBoolToObject(m, "fuse_unk", false);
    cJSON_AddBoolToObject(m, "byte_fallback", false);
    cJSON_AddBoolToObject(m, "ignore_merges", false);
    cJSON_AddItemToObject(m, "vocab", vocab);
    cJSON_AddItemToObject(m, "merges", merges);
    return RA_OK;
}

ra_status ra_hf_tokenizer_write(const char *dir, const ra_tokenizer_spec *sp)
{
    if (!sp->pre || (strcmp(sp->pre, "smollm") && strcmp(sp->pre, "gpt2")) || !sp->model || strcmp(sp->model, "gpt2"))
        return ra_fail(RA_ERR_UNSUPPORTED, "tokenizer %s/%s cannot be written as tokenizer.json", sp->model ? sp->model : "?",
                       sp->pre ? sp->pre : "?");
    if (sp->add_bos && (sp->bos_id < 0 || (size_t)sp->bos_id >= sp->n_tokens))
        return ra_fail(RA_ERR_FORMAT, "tokenizer: add_bos without a bos token");
    cJSON *root = cJSON_CreateObject();
    ra_status s = tokenizer_json(sp, root);
    if (s == RA_OK) s = ra_io_json_write(dir, "tokenizer.json", root, false);
    cJSON_Delete(root);
    if (s != RA_OK) return s;
    /* The special tokens by text, so that reading the directory gives the same ids. */
    cJSON *cfg = cJSON_CreateObject();
    cJSON_AddBoolToObject(cfg, "add_bos_token", sp->add_bos);
    cJSON_AddBoolToObject(cfg, "add_eos_token", false);
    static const char *const keys[] = {"bos_token", "eos_token", "unk_token", "pad_token"};
    const int32_t ids[] = {sp->bos_id, sp->eos_id, sp->unk_id, sp->pad_id};
    for (size_t i = 0; i < 4; i++) {
        if (ids[i] < 0 || (size_t)ids[i] >= sp->n_tokens) cJSON_AddNullToObject(cfg, keys[i]);
        else cJSON_AddItemToObject(cfg, keys[i], json_token(sp->tokens[ids[i]], sp->token_lens[ids[i]]));
    }
    cJSON_AddStringToObject(cfg, "tokenizer_class", "PreTrainedTokenizerFast");
    s = ra_io_json_write(dir, "tokenizer_config.json", cfg, true);
    cJSON_Delete(cfg);
    return s;
}
