/* A GGUF file as a model description: "{arch}.*" metadata to the config,
 * "tokenizer.ggml.*" to the tokenizer spec, tensors renamed to their HF names
 * with dimensions outermost first. llama.cpp's converter permutes the Q and
 * K rows of "llama" models for its interleaved RoPE; they are put back into
 * HF's rotate-half order here, once, so everything downstream sees one layout. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "desc_internal.h"
#include "ra/ggml_types.h"
#include "ra/text.h"

/* ---- config ---- */

static ra_status get_u32(const ra_gguf *g, const char *arch, const char *suffix, bool required, uint32_t *out)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    ra_status s = ra_gguf_get_u32(g, key, out);
    if (s == RA_ERR_NOTFOUND) {
        ra_clear_error();
        return required ? ra_fail(RA_ERR_FORMAT, "%s: missing metadata key %s", ra_gguf_path(g), key) : RA_OK;
    }
    return s;
}

static ra_status get_f32(const ra_gguf *g, const char *arch, const char *suffix, float *out)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    ra_status s = ra_gguf_get_f32(g, key, out);
    if (s == RA_ERR_NOTFOUND) { ra_clear_error(); return RA_OK; }
    return s;
}

/* A GGUF string value, NUL-terminated into buf. */
static ra_status get_name(const ra_gguf *g, const char *key, char *buf, size_t n)
{
    const char *s;
    size_t len;
    ra_status st = ra_gguf_get_str(g, key, &s, &len);
    if (st == RA_ERR_NOTFOUND) return ra_fail(RA_ERR_NOTFOUND, "%s: no %s", ra_gguf_path(g), key);
    RA_TRY(st);
    if (len >= n || memchr(s, 0, len)) return ra_fail(RA_ERR_FORMAT, "%s: %s is not a short name", ra_gguf_path(g), key);
    memcpy(buf, s, len);
    buf[len] = 0;
    return RA_OK;
}

static ra_status opt_id(const ra_gguf *g, const char *key, int32_t *out)
{
    uint32_t v;
    ra_status s = ra_gguf_get_u32(g, key, &v);
    *out = -1;
    if (s == RA_ERR_NOTFOUND) { ra_clear_error(); return RA_OK; }
    RA_TRY(s);
    if (v > INT32_MAX) return ra_fail(RA_ERR_FORMAT, "%s: %s = %u is out of range", ra_gguf_path(g), key, v);
    *out = (int32_t)v;
    return RA_OK;
}

static ra_status read_config(const ra_gguf *g, ra_model_config *c)
{
    ra_status s = get_name(g, "general.architecture", c->arch, sizeof c->arch);
    if (s == RA_ERR_NOTFOUND) return ra_fail(RA_ERR_FORMAT, "%s: no general.architecture", ra_gguf_path(g));
    RA_TRY(s);
    if (strcmp(c->arch, "llama") && strcmp(c->arch, "qwen2") && strcmp(c->arch, "qwen3"))
        return ra_fail(RA_ERR_UNSUPPORTED, "%s: architecture '%s' is not supported (llama, qwen2, qwen3)", ra_gguf_path(g), c->arch);
    const char *name;
    size_t len;
    if (ra_gguf_get_str(g, "general.name", &name, &len) == RA_OK)
        ra_utf8_copy(c->name, sizeof c->name, name, len); /* never cut inside a character */
    ra_clear_error();
    const char *a = c->arch;
    RA_TRY(get_u32(g, a, "block_count", true, &c->n_layers));
    RA_TRY(get_u32(g, a, "embedding_length", true, &c->dim));
    RA_TRY(get_u32(g, a, "feed_forward_length", true, &c->ffn_dim));
    RA_TRY(get_u32(g, a, "attention.head_count", true, &c->n_heads));
    c->n_kv_heads = c->n_heads;
    RA_TRY(get_u32(g, a, "attention.head_count_kv", false, &c->n_kv_heads));
    c->max_seq = 2048;
    RA_TRY(get_u32(g, a, "context_length", false, &c->max_seq));
    RA_TRY(get_u32(g, a, "attention.key_length", false, &c->head_dim)); /* 0: dim / heads */
    c->rope_theta = 10000.0f;
    RA_TRY(get_f32(g, a, "rope.freq_base", &c->rope_theta));
    c->rms_eps = 1e-5f;
    RA_TRY(get_f32(g, a, "attention.layer_norm_rms_epsilon", &c->rms_eps));
    RA_TRY(get_u32(g, a, "attention.sliding_window", false, &c->sliding_window));
    char key[128];
    snprintf(key, sizeof key, "%s.rope.scaling.type", a);
    if (ra_gguf_find(g, key)) {
        char type[32];
        RA_TRY(get_name(g, key, type, sizeof type));
        if (!strcmp(type, "linear")) {
            c->rope.kind = RA_ROPE_LINEAR;
            c->rope.factor = 0;
            RA_TRY(get_f32(g, a, "rope.scaling.factor", &c->rope.factor));
            if (!(c->rope.factor > 0))
                return ra_fail(RA_ERR_FORMAT, "%s: linear rope scaling without a positive %s.rope.scaling.factor", ra_gguf_path(g), a);
        } else if (strcmp(type, "none")) {
            return ra_fail(RA_ERR_UNSUPPORTED, "%s: %s '%s' is not supported (none, linear)", ra_gguf_path(g), key, type);
        }
    }
    /* Llama 3.1-style scaling is stored as per-frequency factors: not computed here. */
    if (ra_gguf_find_tensor(g, "rope_freqs.weight"))
        return ra_fail(RA_ERR_UNSUPPORTED, "%s: tensor rope_freqs.weight (RoPE frequency factors) is not supported", ra_gguf_path(g));

    const ra_gguf_tensor *emb = ra_gguf_find_tensor(g, "token_embd.weight");
    if (!emb) return ra_fail(RA_ERR_FORMAT, "%s: no tensor token_embd.weight", ra_gguf_path(g));
    if (emb->n_dims != 2 || emb->ne[1] == 0 || emb->ne[1] > (1u << 24))
        return ra_fail(RA_ERR_FORMAT, "%s: token_embd.weight has an implausible shape", ra_gguf_path(g));
    c->n_vocab = (uint32_t)emb->ne[1];
    c->tied_embeddings = ra_gguf_find_tensor(g, "output.weight") == NULL;
    c->attn_bias = ra_gguf_find_tensor(g, "blk.0.attn_q.bias") != NULL;
    c->qk_norm = ra_gguf_find_tensor(g, "blk.0.attn_q_norm.weight") != NULL;
    RA_TRY(opt_id(g, "tokenizer.ggml.bos_token_id", &c->bos_id));
    RA_TRY(opt_id(g, "tokenizer.ggml.eos_token_id", &c->eos_id));
    if (c->eos_id >= 0) c->eos_ids[c->n_eos++] = c->eos_id;
    return RA_OK;
}

/* ---- tokenizer ---- */

/* Pointers and lengths of a string array, straight from the mapping. */
static ra_status str_array(ra_model_desc *d, const ra_gguf *g, const char *key, const char *const **strs,
                           const size_t **lens, size_t *n)
{
    const ra_gguf_kv *kv = ra_gguf_find(g, key);
    if (!kv) return ra_fail(RA_ERR_FORMAT, "%s: no %s", ra_gguf_path(g), key);
    if (kv->type != RA_GGUF_ARRAY || kv->elem_type != RA_GGUF_STRING)
        return ra_fail(RA_ERR_FORMAT, "%s: %s is not an array of strings", ra_gguf_path(g), key);
    if (kv->n > INT32_MAX) return ra_fail(RA_ERR_FORMAT, "%s: %s has too many entries", ra_gguf_path(g), key);
    *n = (size_t)kv->n;
    const char **s;
    size_t *l;
    RA_TRY(ra_desc_alloc(d, &s, *n, sizeof *s));
    RA_TRY(ra_desc_alloc(d, &l, *n, sizeof *l));
    for (size_t i = 0; i < *n; i++) RA_TRY(ra_gguf_arr_str(g, kv, i, &s[i], &l[i]));
    *strs = s;
    *lens = l;
    return RA_OK;
}

static ra_status type_array(ra_model_desc *d, const ra_gguf *g, size_t n_tokens, const int32_t **out)
{
    *out = NULL;
    const char *key = "tokenizer.ggml.token_type";
    const ra_gguf_kv *kv = ra_gguf_find(g, key);
    if (!kv) return RA_OK;
    if (kv->type != RA_GGUF_ARRAY || kv->n != n_tokens)
        return ra_fail(RA_ERR_FORMAT, "%s: %s is not an array of %zu token types", ra_gguf_path(g), key, n_tokens);
    int32_t *types;
    RA_TRY(ra_desc_alloc(d, &types, n_tokens, sizeof *types));
    for (size_t i = 0; i < n_tokens; i++) {
        int64_t v;
        ra_status s = ra_gguf_arr_i64(kv, i, &v);
        if (s != RA_OK) return ra_wrap(s, "%s: %s", ra_gguf_path(g), key);
        if (v < INT32_MIN || v > INT32_MAX) return ra_fail(RA_ERR_FORMAT, "%s: %s[%zu] is out of range", ra_gguf_path(g), key, i);
        types[i] = (int32_t)v;
    }
    *out = types;
    return RA_OK;
}

static ra_status read_tokenizer(ra_model_desc *d, const ra_gguf *g)
{
    if (!ra_gguf_find(g, "tokenizer.ggml.model")) return RA_OK; /* no tokenizer: has_tokenizer stays false */
    ra_tokenizer_spec *sp = &d->tokenizer;
    char *model, *pre;
    RA_TRY(ra_desc_alloc(d, &model, 32, 1));
    RA_TRY(ra_desc_alloc(d, &pre, 64, 1));
    RA_TRY(get_name(g, "tokenizer.ggml.model", model, 32));
    ra_status s = get_name(g, "tokenizer.ggml.pre", pre, 64);
    if (s == RA_ERR_NOTFOUND) return ra_fail(RA_ERR_FORMAT, "%s: no tokenizer.ggml.pre (not a tokenizer we can build)", ra_gguf_path(g));
    RA_TRY(s);
    sp->model = model;
    sp->pre = pre;
    RA_TRY(str_array(d, g, "tokenizer.ggml.tokens", &sp->tokens, &sp->token_lens, &sp->n_tokens));
    RA_TRY(str_array(d, g, "tokenizer.ggml.merges", &sp->merges, &sp->merge_lens, &sp->n_merges));
    RA_TRY(type_array(d, g, sp->n_tokens, &sp->token_types));
    RA_TRY(opt_id(g, "tokenizer.ggml.bos_token_id", &sp->bos_id));
    RA_TRY(opt_id(g, "tokenizer.ggml.eos_token_id", &sp->eos_id));
    RA_TRY(opt_id(g, "tokenizer.ggml.unknown_token_id", &sp->unk_id));
    RA_TRY(opt_id(g, "tokenizer.ggml.padding_token_id", &sp->pad_id));
    s = ra_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &sp->add_bos);
    if (s == RA_ERR_NOTFOUND) { /* GPT-2 style BPE adds no BOS by default */
        sp->add_bos = false;
        ra_clear_error();
        s = RA_OK;
    }
    RA_TRY(s);
    d->has_tokenizer = true;
    return RA_OK;
}

/* ---- tensors ---- */

/* GGUF block-local names and their HF names (after "model.layers.N."). */
static const char *const layer_names[][2] = {
    {"attn_norm.weight", "input_layernorm.weight"},
    {"ffn_norm.weight", "post_attention_layernorm.weight"},
    {"attn_q.weight", "self_attn.q_proj.weight"},
    {"attn_k.weight", "self_attn.k_proj.weight"},
    {"attn_v.weight", "self_attn.v_proj.weight"},
    {"attn_output.weight", "self_attn.o_proj.weight"},
    {"attn_q.bias", "self_attn.q_proj.bias"},
    {"attn_k.bias", "self_attn.k_proj.bias"},
    {"attn_v.bias", "self_attn.v_proj.bias"},
    {"attn_q_norm.weight", "self_attn.q_norm.weight"},
    {"attn_k_norm.weight", "self_attn.k_norm.weight"},
    {"ffn_gate.weight", "mlp.gate_proj.weight"},
    {"ffn_up.weight", "mlp.up_proj.weight"},
    {"ffn_down.weight", "mlp.down_proj.weight"},
};
static const char *const global_names[][2] = {
    {"token_embd.weight", "model.embed_tokens.weight"},
    {"output_norm.weight", "model.norm.weight"},
    {"output.weight", "lm_head.weight"},
};

/* The HF name of a GGUF tensor; a name we do not know keeps its GGUF name. */
static ra_status hf_name(ra_model_desc *d, const char *gguf, const char **out)
{
    char buf[256];
    *out = NULL;
    for (size_t i = 0; i < sizeof global_names / sizeof global_names[0]; i++)
        if (!strcmp(gguf, global_names[i][0])) *out = global_names[i][1];
    unsigned layer;
    int used = 0;
    if (!*out && sscanf(gguf, "blk.%u.%n", &layer, &used) == 1 && used > 0)
        for (size_t i = 0; i < sizeof layer_names / sizeof layer_names[0]; i++)
            if (!strcmp(gguf + used, layer_names[i][0])) {
                snprintf(buf, sizeof buf, "model.layers.%u.%s", layer, layer_names[i][1]);
                char *copy;
                RA_TRY(ra_desc_strdup(d, buf, strlen(buf), &copy));
                *out = copy;
            }
    if (!*out) *out = gguf;
    return RA_OK;
}

/* llama.cpp stores Q and K rows permuted for interleaved-pair RoPE: file row
 * h*hd + 2i + j holds canonical row h*hd + j*hd/2 + i. The copy is canonical. */
static ra_status unpermute(ra_model_desc *d, ra_tensor_desc *t, uint32_t n_heads)
{
    uint64_t rows = t->shape[0];
    if (n_heads == 0 || rows % n_heads || (rows / n_heads) % 2 || t->nbytes % rows)
        return ra_fail(RA_ERR_FORMAT, "%s: tensor %s: %" PRIu64 " rows do not split into %u heads of an even size", t->file,
                       t->src_name, rows, n_heads);
    size_t hd = (size_t)(rows / n_heads), half = hd / 2, row_bytes = (size_t)(t->nbytes / rows);
    uint8_t *dst;
    RA_TRY(ra_desc_alloc(d, &dst, (size_t)t->nbytes, 1));
    for (size_t h = 0; h < n_heads; h++)
        for (size_t i = 0; i < half; i++)
            for (size_t j = 0; j < 2; j++)
                memcpy(dst + (h * hd + j * half + i) * row_bytes, t->data + (h * hd + 2 * i + j) * row_bytes, row_bytes);
    t->data = dst;
    return RA_OK;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

static ra_status read_tensors(ra_model_desc *d, const ra_gguf *g)
{
    d->n_tensors = ra_gguf_n_tensors(g);
    RA_TRY(ra_desc_alloc(d, &d->tensors, d->n_tensors, sizeof *d->tensors));
    for (size_t i = 0; i < d->n_tensors; i++) {
        const ra_gguf_tensor *gt = ra_gguf_tensor_at(g, i);
        ra_tensor_desc *t = &d->tensors[i];
        RA_TRY(hf_name(d, gt->name, &t->name));
        t->src_name = gt->name;
        t->ggml_type = gt->type;
        t->type = RA_ST_GGML;
        for (ra_stype k = RA_ST_F32; k < RA_ST_GGML; k++)
            if (ra_stype_ggml(k) == gt->type) t->type = k;
        t->n_dims = gt->n_dims;
        for (uint32_t k = 0; k < gt->n_dims; k++) t->shape[k] = gt->ne[gt->n_dims - 1 - k];
        t->nbytes = gt->nbytes;
        t->data = gt->data;
        t->file = ra_gguf_path(g);
        t->offset = ra_gguf_data_offset(g) + gt->offset;
        if (!strcmp(d->config.arch, "llama") && t->n_dims >= 1) {
            if (ends_with(t->src_name, ".attn_q.weight") || ends_with(t->src_name, ".attn_q.bias"))
                RA_TRY(unpermute(d, t, d->config.n_heads));
            else if (ends_with(t->src_name, ".attn_k.weight") || ends_with(t->src_name, ".attn_k.bias"))
                RA_TRY(unpermute(d, t, d->config.n_kv_heads));
        }
    }
    return RA_OK;
}

ra_status ra_desc_open_gguf(const char *path, unsigned flags, ra_model_desc **out)
{
    *out = NULL;
    ra_model_desc *d;
    RA_TRY(ra_desc_new("gguf", path, &d));
    ra_status s = ra_gguf_open(path, &d->store->gguf);
    const ra_gguf *g = d->store->gguf;
    uint8_t sha[32];
    if (s == RA_OK) ra_gguf_sha256(g, sha); /* the mapped bytes that run */
    if (s == RA_OK) s = ra_desc_add_file(d, path, ra_gguf_file_size(g), sha);
    if (s == RA_OK) s = read_config(g, &d->config);
    if (s == RA_OK && !(flags & RA_DESC_NO_TOKENIZER)) s = read_tokenizer(d, g);
    if (s == RA_OK) s = read_tensors(d, g);
    if (s == RA_OK) s = ra_desc_finish(d);
    if (s != RA_OK) {
        ra_desc_close(d);
        return s;
    }
    *out = d;
    return RA_OK;
}
