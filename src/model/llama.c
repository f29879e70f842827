/* The Llama-family decoder on the CPU backend: load weights in a format,
 * then batched forward passes whose rows are independent. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ra/cpu.h"
#include "ra/ggml_types.h"
#include "ra/model.h"
#include "ra/util.h"
#include "model_internal.h"

/* ---- loading ---------------------------------------------------------- */

/* The tensor called name, which must have shape [rows, cols], or [cols] when rows is 0. */
static ra_status find_tensor(const ra_model_desc *d, const char *name, uint64_t rows, uint64_t cols,
                             const ra_tensor_desc **out)
{
    const ra_tensor_desc *t = ra_desc_find(d, name);
    if (!t) return ra_fail(RA_ERR_FORMAT, "%s: missing tensor %s", d->path, name);
    bool ok = rows ? t->n_dims == 2 && t->shape[0] == rows && t->shape[1] == cols : t->n_dims == 1 && t->shape[0] == cols;
    if (!ok) {
        char got[96] = "", want[64];
        for (uint32_t i = 0, n = 0; i < t->n_dims && n < sizeof got; i++)
            n += (size_t)snprintf(got + n, sizeof got - n, i ? ", %llu" : "%llu", (unsigned long long)t->shape[i]);
        if (rows) snprintf(want, sizeof want, "%llu, %llu", (unsigned long long)rows, (unsigned long long)cols);
        else snprintf(want, sizeof want, "%llu", (unsigned long long)cols);
        return ra_fail(RA_ERR_FORMAT, "%s: tensor %s has shape [%s], expected [%s]", t->file, name, got, want);
    }
    *out = t;
    return RA_OK;
}

/* rows = 0: a vector of cols, loaded as one row. */
ra_status ra_load_dense(const ra_model_desc *d, const ra_format *f, const char *name, uint32_t rows, uint32_t cols,
                        ra_weight *w)
{
    const ra_tensor_desc *t = NULL;
    RA_TRY(find_tensor(d, name, rows, cols, &t));
    if (t->ggml_type == RA_NO_GGML)
        return ra_fail(RA_ERR_UNSUPPORTED, "%s: tensor %s is stored as %s, which format %s cannot load", t->file, name,
                       ra_stype_name(t->type), f->name);
    const ra_tensor_role role = {name, d->config.n_layers, d->config.tied_embeddings}; /* q4_k_m's type per tensor */
    ra_status s = ra_weight_from_ggml(f, &role, t->ggml_type, t->data, rows ? rows : 1, cols, w);
    if (s != RA_OK) return ra_wrap(s, "%s: tensor %s", t->file, name);
    return RA_OK;
}

/* Norm gains are always kept in float32, whatever the format. */
static const ra_format f32_format = {"f32", "", RA_DERIVE_F32, {NULL}, NULL};

static ra_status load_norm(const ra_model_desc *d, const char *name, uint32_t dim, ra_weight *w)
{
    return ra_load_dense(d, &f32_format, name, 0, dim, w);
}

/* A vector (bias, per-head norm gain) as float32, owned by the caller. */
static ra_status load_vector(const ra_model_desc *d, const char *name, uint32_t n, float **out)
{
    ra_weight w;
    RA_TRY(load_norm(d, name, n, &w));
    *out = (float *)w.data;
    return RA_OK;
}

/* A tensor a checkpoint format keeps unquantized (embeddings, lm_head): as
 * stored, bf16 staying bf16. Other formats derive it. */
static ra_status load_other(const ra_model_desc *d, const ra_format *f, const char *name, uint32_t rows, uint32_t cols,
                            ra_weight *w)
{
    const ra_tensor_desc *t = ra_desc_find(d, name);
    if (f->quant) f = ra_format_find(t && t->type == RA_ST_BF16 ? "bf16" : "f32");
    return ra_load_dense(d, f, name, rows, cols, w);
}

/* A decoder block's linear layer: the checkpoint format's layer, or derived. */
static ra_status load_linear(const ra_model_desc *d, const ra_format *f, const ra_qformat *ck, const char *name,
                             uint32_t rows, uint32_t cols, ra_weight *w)
{
    if (f->quant) return ra_qload_linear(d, f, ck, name, rows, cols, w);
    return ra_load_dense(d, f, name, rows, cols, w);
}

static ra_status load_layer(const ra_model_desc *d, const ra_format *f, const ra_qformat *ck, const ra_model_config *c,
                            uint32_t l, ra_layer *L)
{
    char name[128];
    uint32_t q_dim = c->n_heads * c->head_dim, kv_dim = c->n_kv_heads * c->head_dim;
#define NAME(suffix) (snprintf(name, sizeof name, "model.layers.%u.%s", l, suffix), name)
    RA_TRY(load_norm(d, NAME("input_layernorm.weight"), c->dim, &L->attn_norm));
    RA_TRY(load_norm(d, NAME("post_attention_layernorm.weight"), c->dim, &L->ffn_norm));
    RA_TRY(load_linear(d, f, ck, NAME("self_attn.q_proj.weight"), q_dim, c->dim, &L->wq));
    RA_TRY(load_linear(d, f, ck, NAME("self_attn.k_proj.weight"), kv_dim, c->dim, &L->wk));
    RA_TRY(load_linear(d, f, ck, NAME("self_attn.v_proj.weight"), kv_dim, c->dim, &L->wv));
    RA_TRY(load_linear(d, f, ck, NAME("self_attn.o_proj.weight"), c->dim, q_dim, &L->wo));
    RA_TRY(load_linear(d, f, ck, NAME("mlp.gate_proj.weight"), c->ffn_dim, c->dim, &L->w_gate));
    RA_TRY(load_linear(d, f, ck, NAME("mlp.up_proj.weight"), c->ffn_dim, c->dim, &L->w_up));
    RA_TRY(load_linear(d, f, ck, NAME("mlp.down_proj.weight"), c->dim, c->ffn_dim, &L->w_down));
    if (c->attn_bias) {
        RA_TRY(load_vector(d, NAME("self_attn.q_proj.bias"), q_dim, &L->bq));
        RA_TRY(load_vector(d, NAME("self_attn.k_proj.bias"), kv_dim, &L->bk));
        RA_TRY(load_vector(d, NAME("self_attn.v_proj.bias"), kv_dim, &L->bv));
    }
    if (c->qk_norm) {
        RA_TRY(load_vector(d, NAME("self_attn.q_norm.weight"), c->head_dim, &L->q_norm));
        RA_TRY(load_vector(d, NAME("self_attn.k_norm.weight"), c->head_dim, &L->k_norm));
    }
#undef NAME
    return RA_OK;
}

/* The inverse frequency of pair i, with the config's rope scaling applied as
 * HF transformers defines it (modeling_rope_utils.py), in double. */
static double inv_freq(const ra_model_config *c, uint32_t i)
{
    double f = 1.0 / pow((double)c->rope_theta, (double)(2 * i) / (double)c->head_dim);
    const ra_rope_scaling *r = &c->rope;
    if (r->kind == RA_ROPE_LINEAR) return f / r->factor;
    if (r->kind != RA_ROPE_LLAMA3) return f;
    const double pi = 3.14159265358979323846;
    double old_ctx = r->original_max_pos, wavelen = 2 * pi / f;
    double low_wavelen = old_ctx / r->low_freq_factor, high_wavelen = old_ctx / r->high_freq_factor;
    if (wavelen > low_wavelen) return f / r->factor;
    if (wavelen < high_wavelen) return f;
    double smooth = (old_ctx / wavelen - r->low_freq_factor) / (r->high_freq_factor - r->low_freq_factor);
    return (1 - smooth) * f / r->factor + smooth * f;
}

/* cos/sin of pos * inv_freq(i), evaluated in double and rounded once, for
 * positions below n. The tables grow on demand (engines call this when they
 * begin sequences), so they cover the longest sequence a run uses, not
 * whatever context length the file claims. */
ra_status ra_model_rope_reserve(ra_model *m, uint32_t n)
{
    const ra_model_config *c = &m->cfg;
    uint32_t half = c->head_dim / 2;
    if (n <= m->rope_max_pos) return RA_OK;
    float *cs = realloc(m->rope_cos, (size_t)n * half * sizeof(float));
    if (cs) m->rope_cos = cs;
    float *sn = cs ? realloc(m->rope_sin, (size_t)n * half * sizeof(float)) : NULL;
    if (sn) m->rope_sin = sn;
    if (!sn) return ra_fail(RA_ERR_NOMEM, "out of memory for RoPE tables of %u positions", n);
    for (uint32_t i = 0; i < half; i++) {
        double f = inv_freq(c, i);
        for (uint32_t p = m->rope_max_pos; p < n; p++) {
            double a = (double)p * f;
            m->rope_cos[(size_t)p * half + i] = (float)cos(a);
            m->rope_sin[(size_t)p * half + i] = (float)sin(a);
        }
    }
    m->rope_max_pos = n;
    return RA_OK;
}

ra_status ra_model_load(const ra_model_desc *d, const ra_format *format, ra_pool *pool, ra_model **out)
{
    *out = NULL;
    ra_qformat ck;
    RA_TRY(ra_qload_check(d, format, &ck));
    ra_model *m;
    RA_TRY(ra_calloc(&m, 1, sizeof *m));
    m->format = format;
    m->pool = pool;
    ra_status s = ra_config_from_desc(d, &m->cfg);
    const ra_model_config *c = &m->cfg;
    if (s == RA_OK) s = ra_calloc(&m->layers, c->n_layers, sizeof *m->layers);
    if (s == RA_OK) s = load_other(d, format, "model.embed_tokens.weight", c->n_vocab, c->dim, &m->embed);
    if (s == RA_OK) s = load_norm(d, "model.norm.weight", c->dim, &m->out_norm);
    if (s == RA_OK) {
        if (c->tied_embeddings) {
            m->output = m->embed;
            m->output.borrowed = true;
        } else {
            s = load_other(d, format, "lm_head.weight", c->n_vocab, c->dim, &m->output);
        }
    }
    for (uint32_t l = 0; s == RA_OK && l < c->n_layers; l++) s = load_layer(d, format, &ck, c, l, &m->layers[l]);
    if (s != RA_OK) {
        ra_model_free(m);
        return s;
    }
    *out = m;
    return RA_OK;
}

void ra_model_free(ra_model *m)
{
    if (!m) return;
    for (uint32_t l = 0; m->layers && l < m->cfg.n_layers; l++) {
        ra_layer *L = &m->layers[l];
        ra_weight *ws[] = {&L->attn_norm, &L->ffn_norm, &L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++) ra_weight_free(ws[i]);
        free(L->bq);
        free(L->bk);
        free(L->bv);
        free(L->q_norm);
        free(L->k_norm);
    }
    free(m->layers);
    ra_weight_free(&m->output);
    ra_weight_free(&m->embed);
    ra_weight_free(&m->out_norm);
    free(m->rope_cos);
    free(m->rope_sin);
    free(m);
}
