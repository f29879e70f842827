/* Model configuration from GGUF metadata ("{arch}.block_count", ...). */
#include <stdio.h>
#include <string.h>

#include "ra/ggml_types.h"
#include "ra/model.h"
#include "ra/text.h"

static ra_status need_u32(const ra_gguf *g, const char *arch, const char *suffix, uint32_t *out)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    ra_status s = ra_gguf_get_u32(g, key, out);
    if (s == RA_ERR_NOTFOUND) return ra_fail(RA_ERR_FORMAT, "%s: missing metadata key %s", ra_gguf_path(g), key);
    return s;
}

static ra_status opt_u32(const ra_gguf *g, const char *key, uint32_t *out, uint32_t dflt)
{
    ra_status s = ra_gguf_get_u32(g, key, out);
    if (s == RA_ERR_NOTFOUND) { *out = dflt; return RA_OK; }
    return s;
}

ra_status ra_config_from_gguf(const ra_gguf *g, ra_model_config *c)
{
    memset(c, 0, sizeof *c);
    const char *arch;
    size_t len;
    ra_status s = ra_gguf_get_str(g, "general.architecture", &arch, &len);
    if (s == RA_ERR_NOTFOUND) return ra_fail(RA_ERR_FORMAT, "%s: no general.architecture", ra_gguf_path(g));
    RA_TRY(s);
    if (len >= sizeof c->arch) return ra_fail(RA_ERR_FORMAT, "%s: architecture name too long", ra_gguf_path(g));
    memcpy(c->arch, arch, len);
    if (strcmp(c->arch, "llama") != 0)
        return ra_fail(RA_ERR_UNSUPPORTED, "%s: architecture '%s' is not supported (llama only)", ra_gguf_path(g), c->arch);
    const char *name;
    if (ra_gguf_get_str(g, "general.name", &name, &len) == RA_OK)
        ra_utf8_copy(c->name, sizeof c->name, name, len); /* never cut inside a character */

    RA_TRY(need_u32(g, c->arch, "block_count", &c->n_layers));
    RA_TRY(need_u32(g, c->arch, "embedding_length", &c->dim));
    RA_TRY(need_u32(g, c->arch, "feed_forward_length", &c->ffn_dim));
    RA_TRY(need_u32(g, c->arch, "attention.head_count", &c->n_heads));
    char key[128];
    snprintf(key, sizeof key, "%s.attention.head_count_kv", c->arch);
    RA_TRY(opt_u32(g, key, &c->n_kv_heads, c->n_heads));
    snprintf(key, sizeof key, "%s.context_length", c->arch);
    RA_TRY(opt_u32(g, key, &c->max_seq, 2048));
    if (c->n_heads == 0 || c->dim % c->n_heads) return ra_fail(RA_ERR_FORMAT, "%s: dim %u not divisible by %u heads", ra_gguf_path(g), c->dim, c->n_heads);
    snprintf(key, sizeof key, "%s.attention.key_length", c->arch);
    RA_TRY(opt_u32(g, key, &c->head_dim, c->dim / c->n_heads));

    snprintf(key, sizeof key, "%s.rope.freq_base", c->arch);
    s = ra_gguf_get_f32(g, key, &c->rope_theta);
    if (s == RA_ERR_NOTFOUND) c->rope_theta = 10000.0f;
    else RA_TRY(s);
    snprintf(key, sizeof key, "%s.attention.layer_norm_rms_epsilon", c->arch);
    s = ra_gguf_get_f32(g, key, &c->rms_eps);
    if (s == RA_ERR_NOTFOUND) c->rms_eps = 1e-5f;
    else RA_TRY(s);

    const ra_gguf_tensor *emb = ra_gguf_find_tensor(g, "token_embd.weight");
    if (!emb) return ra_fail(RA_ERR_FORMAT, "%s: no tensor token_embd.weight", ra_gguf_path(g));
    if (emb->n_dims != 2 || emb->ne[0] != c->dim || emb->ne[1] == 0 || emb->ne[1] > (1u << 24))
        return ra_fail(RA_ERR_FORMAT, "%s: token_embd.weight has shape [%llu, %llu], expected [%u, vocab]", ra_gguf_path(g),
                       (unsigned long long)emb->ne[0], (unsigned long long)emb->ne[1], c->dim);
    c->n_vocab = (uint32_t)emb->ne[1];
    c->tied_embeddings = ra_gguf_find_tensor(g, "output.weight") == NULL;

    uint32_t id;
    c->bos_id = ra_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &id) == RA_OK && id < c->n_vocab ? (int32_t)id : -1;
    c->eos_id = ra_gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &id) == RA_OK && id < c->n_vocab ? (int32_t)id : -1;
    ra_clear_error();

    if (c->n_layers == 0 || c->n_layers > 1024 || c->dim == 0 || c->dim > 65536 || c->ffn_dim == 0 ||
        c->ffn_dim > 1 << 20 || c->n_kv_heads == 0 || c->n_heads % c->n_kv_heads || c->head_dim == 0 ||
        c->head_dim % 2 || c->head_dim > 1024)
        return ra_fail(RA_ERR_FORMAT, "%s: implausible model configuration (layers %u, dim %u, ffn %u, heads %u/%u, head_dim %u)",
                       ra_gguf_path(g), c->n_layers, c->dim, c->ffn_dim, c->n_heads, c->n_kv_heads, c->head_dim);
    return RA_OK;
}
