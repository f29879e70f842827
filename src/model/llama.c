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

/* ---- loading ---------------------------------------------------------- */

static ra_status find_tensor(const ra_gguf *g, const char *name, uint64_t cols, uint64_t rows,
                             const ra_gguf_tensor **out)
{
    const ra_gguf_tensor *t = ra_gguf_find_tensor(g, name);
    if (!t) return ra_fail(RA_ERR_FORMAT, "%s: missing tensor %s", ra_gguf_path(g), name);
    uint64_t want_dims = rows == 1 ? 1 : 2;
    if (t->n_dims != want_dims || t->ne[0] != cols || t->ne[1] != rows)
        return ra_fail(RA_ERR_FORMAT, "%s: tensor %s has shape [%llu, %llu], expected [%llu, %llu]", ra_gguf_path(g), name,
                       (unsigned long long)t->ne[0], (unsigned long long)t->ne[1], (unsigned long long)cols,
                       (unsigned long long)rows);
    *out = t;
    return RA_OK;
}

/* GGUF llama files store Q and K rows permuted for interleaved-pair RoPE:
 * file row h*hd + 2i + j holds canonical row h*hd + j*hd/2 + i. */
static ra_status unpermute_rows(ra_weight *w, uint32_t n_heads, uint32_t hd)
{
    uint8_t *tmp;
    RA_TRY(ra_calloc(&tmp, w->rows, w->row_bytes));
    uint32_t half = hd / 2;
    for (uint32_t h = 0; h < n_heads; h++)
        for (uint32_t i = 0; i < half; i++)
            for (uint32_t j = 0; j < 2; j++)
                memcpy(tmp + (size_t)(h * hd + j * half + i) * w->row_bytes,
                       w->data + (size_t)(h * hd + 2 * i + j) * w->row_bytes, w->row_bytes);
    memcpy(w->data, tmp, (size_t)w->rows * w->row_bytes);
    free(tmp);
    return RA_OK;
}

static ra_status load_weight(const ra_gguf *g, const ra_format *f, const ra_model_config *c, const char *name,
                             uint32_t cols, uint32_t rows, ra_weight *w)
{
    const ra_gguf_tensor *t = NULL;
    RA_TRY(find_tensor(g, name, cols, rows, &t));
    const ra_tensor_role role = {name, c->n_layers, c->tied_embeddings};
    ra_status s = ra_weight_from_ggml(f, &role, t->type, t->data, rows, cols, w);
    if (s != RA_OK) return ra_wrap(s, "%s: tensor %s", ra_gguf_path(g), name);
    return RA_OK;
}

/* Norm gains are always kept in float32, whatever the format. */
static ra_status load_norm(const ra_gguf *g, const ra_model_config *c, const char *name, ra_weight *w)
{
    static const ra_format f32 = {"f32", "", RA_DERIVE_F32, {NULL}};
    return load_weight(g, &f32, c, name, c->dim, 1, w);
}

static ra_status load_layer(const ra_gguf *g, const ra_format *f, const ra_model_config *c, uint32_t l, ra_layer *L)
{
    char name[96];
    uint32_t q_dim = c->n_heads * c->head_dim, kv_dim = c->n_kv_heads * c->head_dim;
#define W(field, suffix, cols, rows) \
    snprintf(name, sizeof name, "blk.%u.%s.weight", l, suffix); \
    RA_TRY(load_weight(g, f, c, name, cols, rows, &L->field))
    snprintf(name, sizeof name, "blk.%u.attn_norm.weight", l);
    RA_TRY(load_norm(g, c, name, &L->attn_norm));
    snprintf(name, sizeof name, "blk.%u.ffn_norm.weight", l);
    RA_TRY(load_norm(g, c, name, &L->ffn_norm));
    W(wq, "attn_q", c->dim, q_dim);
    W(wk, "attn_k", c->dim, kv_dim);
    W(wv, "attn_v", c->dim, kv_dim);
    W(wo, "attn_output", q_dim, c->dim);
    W(w_gate, "ffn_gate", c->dim, c->ffn_dim);
    W(w_up, "ffn_up", c->dim, c->ffn_dim);
    W(w_down, "ffn_down", c->ffn_dim, c->dim);
#undef W
    RA_TRY(unpermute_rows(&L->wq, c->n_heads, c->head_dim));
    RA_TRY(unpermute_rows(&L->wk, c->n_kv_heads, c->head_dim));
    return RA_OK;
}

/* cos/sin of pos * theta^(-2i/hd), evaluated in double and rounded once. */
static ra_status rope_tables(ra_model *m)
{
    const ra_model_config *c = &m->cfg;
    uint32_t half = c->head_dim / 2;
    m->rope_max_pos = c->max_seq;
    RA_TRY(ra_calloc(&m->rope_cos, (size_t)m->rope_max_pos * half, sizeof(float)));
    RA_TRY(ra_calloc(&m->rope_sin, (size_t)m->rope_max_pos * half, sizeof(float)));
    for (uint32_t p = 0; p < m->rope_max_pos; p++)
        for (uint32_t i = 0; i < half; i++) {
            double inv_freq = 1.0 / pow((double)c->rope_theta, (double)(2 * i) / (double)c->head_dim);
            double a = (double)p * inv_freq;
            m->rope_cos[(size_t)p * half + i] = (float)cos(a);
            m->rope_sin[(size_t)p * half + i] = (float)sin(a);
        }
    return RA_OK;
}

ra_status ra_model_load_gguf(const ra_gguf *g, const ra_format *format, ra_pool *pool, ra_model **out)
{
    ra_model *m;
    RA_TRY(ra_calloc(&m, 1, sizeof *m));
    m->format = format;
    m->pool = pool;
    ra_status s = ra_config_from_gguf(g, &m->cfg);
    const ra_model_config *c = &m->cfg;
    if (s == RA_OK) s = ra_calloc(&m->layers, c->n_layers, sizeof *m->layers);
    if (s == RA_OK) s = load_weight(g, format, c, "token_embd.weight", c->dim, c->n_vocab, &m->embed);
    if (s == RA_OK) s = load_norm(g, c, "output_norm.weight", &m->out_norm);
    if (s == RA_OK) {
        if (c->tied_embeddings) {
            m->output = m->embed;
            m->output.borrowed = true;
        } else {
            s = load_weight(g, format, c, "output.weight", c->dim, c->n_vocab, &m->output);
        }
    }
    for (uint32_t l = 0; s == RA_OK && l < c->n_layers; l++) s = load_layer(g, format, c, l, &m->layers[l]);
    if (s == RA_OK) s = rope_tables(m);
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
    }
    free(m->layers);
    ra_weight_free(&m->output);
    ra_weight_free(&m->embed);
    ra_weight_free(&m->out_norm);
    free(m->rope_cos);
    free(m->rope_sin);
    free(m);
}
