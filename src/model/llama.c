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

static ra_status load_weight(const ra_gguf *g, const ra_format *f, const char *name, uint32_t cols, uint32_t rows,
                             ra_weight *w)
{
    const ra_gguf_tensor *t = NULL;
    RA_TRY(find_tensor(g, name, cols, rows, &t));
    ra_status s = ra_weight_from_ggml(f, t->type, t->data, rows, cols, w);
    if (s != RA_OK) return ra_wrap(s, "%s: tensor %s", ra_gguf_path(g), name);
    return RA_OK;
}

/* Norm gains are always kept in float32, whatever the format. */
static ra_status load_norm(const ra_gguf *g, const char *name, uint32_t dim, ra_weight *w)
{
    static const ra_format f32 = {"f32", "cpu", "", RA_DERIVE_F32, true};
    return load_weight(g, &f32, name, dim, 1, w);
}

static ra_status load_layer(const ra_gguf *g, const ra_format *f, const ra_model_config *c, uint32_t l, ra_layer *L)
{
    char name[96];
    uint32_t q_dim = c->n_heads * c->head_dim, kv_dim = c->n_kv_heads * c->head_dim;
#define W(field, suffix, cols, rows) \
    snprintf(name, sizeof name, "blk.%u.%s.weight", l, suffix); \
    RA_TRY(load_weight(g, f, name, cols, rows, &L->field))
    snprintf(name, sizeof name, "blk.%u.attn_norm.weight", l);
    RA_TRY(load_norm(g, name, c->dim, &L->attn_norm));
    snprintf(name, sizeof name, "blk.%u.ffn_norm.weight", l);
    RA_TRY(load_norm(g, name, c->dim, &L->ffn_norm));
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

/* cos/sin of pos * theta^(-2i/hd), evaluated in double and rounded once, for
 * positions below n. Grown by ra_kv_new, so the tables cover the longest
 * sequence the run uses, not whatever context length the file claims. */
static ra_status rope_tables(ra_model *m, uint32_t n)
{
    const ra_model_config *c = &m->cfg;
    uint32_t half = c->head_dim / 2;
    if (n <= m->rope_max_pos) return RA_OK;
    float *cs = realloc(m->rope_cos, (size_t)n * half * sizeof(float));
    if (cs) m->rope_cos = cs;
    float *sn = cs ? realloc(m->rope_sin, (size_t)n * half * sizeof(float)) : NULL;
    if (sn) m->rope_sin = sn;
    if (!sn) return ra_fail(RA_ERR_NOMEM, "out of memory for RoPE tables of %u positions", n);
    for (uint32_t p = m->rope_max_pos; p < n; p++)
        for (uint32_t i = 0; i < half; i++) {
            double inv_freq = 1.0 / pow((double)c->rope_theta, (double)(2 * i) / (double)c->head_dim);
            double a = (double)p * inv_freq;
            m->rope_cos[(size_t)p * half + i] = (float)cos(a);
            m->rope_sin[(size_t)p * half + i] = (float)sin(a);
        }
    m->rope_max_pos = n;
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
    if (s == RA_OK) s = load_weight(g, format, "token_embd.weight", c->dim, c->n_vocab, &m->embed);
    if (s == RA_OK) s = load_norm(g, "output_norm.weight", c->dim, &m->out_norm);
    if (s == RA_OK) {
        if (c->tied_embeddings) {
            m->output = m->embed;
            m->output.borrowed = true;
        } else {
            s = load_weight(g, format, "output.weight", c->dim, c->n_vocab, &m->output);
        }
    }
    for (uint32_t l = 0; s == RA_OK && l < c->n_layers; l++) s = load_layer(g, format, c, l, &m->layers[l]);
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

ra_status ra_kv_new(ra_model *m, uint32_t cap, ra_kv **out)
{
    const ra_model_config *c = &m->cfg;
    if (cap == 0 || cap > c->max_seq)
        return ra_fail(RA_ERR_USAGE, "sequence capacity %u outside 1..%u (the model's context length)", cap, c->max_seq);
    RA_TRY(rope_tables(m, cap));
    ra_kv *kv;
    RA_TRY(ra_calloc(&kv, 1, sizeof *kv));
    size_t n = (size_t)c->n_layers * cap * c->n_kv_heads * c->head_dim;
    ra_status s = ra_calloc(&kv->k, n, sizeof(float));
    if (s == RA_OK) s = ra_calloc(&kv->v, n, sizeof(float));
    if (s != RA_OK) { ra_kv_free(kv); return s; }
    kv->cap = cap;
    *out = kv;
    return RA_OK;
}

void ra_kv_free(ra_kv *kv)
{
    if (!kv) return;
    free(kv->k);
    free(kv->v);
    free(kv);
}

/* ---- forward ---------------------------------------------------------- */

static ra_status weight_row_f32(const ra_weight *w, uint32_t r, float *out)
{
    const uint8_t *row = w->data + (size_t)r * w->row_bytes;
    switch (w->type) {
    case RA_W_F32: memcpy(out, row, (size_t)w->cols * 4); return RA_OK;
    case RA_W_BF16:
        for (uint32_t c = 0; c < w->cols; c++) out[c] = ra_bf16_to_f32(ra_le16(row + 2 * c));
        return RA_OK;
    case RA_W_Q4_1: return ra_ggml_dequantize(RA_GGML_Q4_1, row, out, w->cols);
    case RA_W_Q8_0: return ra_ggml_dequantize(RA_GGML_Q8_0, row, out, w->cols);
    }
    return ra_fail(RA_ERR_INTERNAL, "unknown weight type");
}

ra_status ra_weight_to_f32(const ra_weight *w, float **out)
{
    RA_TRY(ra_calloc(out, (size_t)w->rows * w->cols, sizeof(float)));
    for (uint32_t r = 0; r < w->rows; r++) {
        ra_status s = weight_row_f32(w, r, *out + (size_t)r * w->cols);
        if (s != RA_OK) { free(*out); *out = NULL; return s; }
    }
    return RA_OK;
}

static void rope(float *x, uint32_t n_heads, uint32_t hd, const float *cs, const float *sn)
{
    uint32_t half = hd / 2;
    for (uint32_t h = 0; h < n_heads; h++) {
        float *v = x + h * hd;
        for (uint32_t i = 0; i < half; i++) {
            float a = v[i], b = v[i + half];
            v[i] = a * cs[i] - b * sn[i];
            v[i + half] = b * cs[i] + a * sn[i];
        }
    }
}

typedef struct {
    const ra_model *m;
    ra_kv *const *kv;
    const uint32_t *pos;
    uint32_t layer;
    const float *q;  /* n x q_dim */
    float *out;      /* n x q_dim */
} attn_job;

/* One (row, head): softmax(q.k / sqrt(hd)) over positions 0..pos, then the
 * weighted sum of V, all in position order. */
static void attn_task(void *ctx, uint32_t task)
{
    const attn_job *j = ctx;
    const ra_model_config *c = &j->m->cfg;
    uint32_t row = task / c->n_heads, h = task % c->n_heads;
    uint32_t hd = c->head_dim, kv_dim = c->n_kv_heads * hd, kvh = h / (c->n_heads / c->n_kv_heads);
    uint32_t npos = j->pos[row] + 1;
    const ra_kv *kv = j->kv[row];
    const float *q = j->q + (size_t)row * c->n_heads * hd + h * hd;
    const float *K = kv->k + (size_t)j->layer * kv->cap * kv_dim + kvh * hd;
    const float *V = kv->v + (size_t)j->layer * kv->cap * kv_dim + kvh * hd;
    float scores[npos];
    float scale = (float)(1.0 / sqrt((double)hd)), mx = -INFINITY;
    for (uint32_t p = 0; p < npos; p++) {
        const float *k = K + (size_t)p * kv_dim;
        float s = 0;
        for (uint32_t i = 0; i < hd; i++) s += q[i] * k[i];
        scores[p] = s * scale;
        mx = scores[p] > mx ? scores[p] : mx;
    }
    double sum = 0;
    for (uint32_t p = 0; p < npos; p++) {
        scores[p] = ra_cpu_exp(scores[p] - mx);
        sum += scores[p];
    }
    float inv = (float)(1.0 / sum);
    float *o = j->out + (size_t)row * c->n_heads * hd + h * hd;
    for (uint32_t i = 0; i < hd; i++) o[i] = 0;
    for (uint32_t p = 0; p < npos; p++) {
        const float *v = V + (size_t)p * kv_dim;
        float w = scores[p] * inv;
        for (uint32_t i = 0; i < hd; i++) o[i] += w * v[i];
    }
}

typedef struct {
    float *rows;
    uint32_t n;
} logsoftmax_job;

static void logsoftmax_task(void *ctx, uint32_t i)
{
    logsoftmax_job *j = ctx;
    ra_cpu_log_softmax(j->rows + (size_t)i * j->n, j->n);
}

ra_status ra_model_forward(ra_model *m, ra_kv *const *kv, const int32_t *token, const bool *want, uint32_t n,
                           float *logprobs)
{
    const ra_model_config *c = &m->cfg;
    const uint32_t dim = c->dim, hd = c->head_dim, q_dim = c->n_heads * hd, kv_dim = c->n_kv_heads * hd;
    const uint32_t half = hd / 2;
    if (n == 0) return RA_OK;

    uint32_t *pos;
    RA_TRY(ra_calloc(&pos, n, sizeof *pos));
    ra_status s = RA_OK;
    uint32_t placed = 0;
    for (; placed < n; placed++) {
        if (token[placed] < 0 || (uint32_t)token[placed] >= c->n_vocab) {
            s = ra_fail(RA_ERR_USAGE, "token id %d outside the vocabulary of %u", token[placed], c->n_vocab);
            break;
        }
        if (kv[placed]->len >= kv[placed]->cap) {
            s = ra_fail(RA_ERR_USAGE, "sequence longer than its KV capacity %u", kv[placed]->cap);
            break;
        }
        pos[placed] = kv[placed]->len++;
    }
    if (s != RA_OK) {
        while (placed-- > 0) kv[placed]->len--;
        free(pos);
        return s;
    }

    uint32_t n_want = 0;
    for (uint32_t i = 0; i < n; i++) n_want += want[i];
    size_t wide = c->ffn_dim > q_dim ? c->ffn_dim : q_dim;
    float *x = NULL, *xb = NULL, *q = NULL, *k = NULL, *v = NULL, *att = NULL, *h1 = NULL, *h2 = NULL, *fin = NULL;
    if ((s = ra_calloc(&x, (size_t)n * dim, 4)) != RA_OK || (s = ra_calloc(&xb, (size_t)n * dim, 4)) != RA_OK ||
        (s = ra_calloc(&q, (size_t)n * q_dim, 4)) != RA_OK || (s = ra_calloc(&k, (size_t)n * kv_dim, 4)) != RA_OK ||
        (s = ra_calloc(&v, (size_t)n * kv_dim, 4)) != RA_OK || (s = ra_calloc(&att, (size_t)n * q_dim, 4)) != RA_OK ||
        (s = ra_calloc(&h1, (size_t)n * wide, 4)) != RA_OK || (s = ra_calloc(&h2, (size_t)n * wide, 4)) != RA_OK ||
        (s = ra_calloc(&fin, (size_t)(n_want ? n_want : 1) * dim, 4)) != RA_OK)
        goto done;

    for (uint32_t i = 0; i < n && s == RA_OK; i++) s = weight_row_f32(&m->embed, (uint32_t)token[i], x + (size_t)i * dim);

    for (uint32_t l = 0; l < c->n_layers && s == RA_OK; l++) {
        const ra_layer *L = &m->layers[l];
        const float *g_attn = (const float *)L->attn_norm.data, *g_ffn = (const float *)L->ffn_norm.data;
        for (uint32_t i = 0; i < n; i++) ra_cpu_rmsnorm(x + (size_t)i * dim, g_attn, dim, c->rms_eps, xb + (size_t)i * dim);
        if ((s = ra_cpu_matmul(m->pool, &L->wq, xb, n, q)) != RA_OK) break;
        if ((s = ra_cpu_matmul(m->pool, &L->wk, xb, n, k)) != RA_OK) break;
        if ((s = ra_cpu_matmul(m->pool, &L->wv, xb, n, v)) != RA_OK) break;
        for (uint32_t i = 0; i < n; i++) {
            const float *cs = m->rope_cos + (size_t)pos[i] * half, *sn = m->rope_sin + (size_t)pos[i] * half;
            rope(q + (size_t)i * q_dim, c->n_heads, hd, cs, sn);
            rope(k + (size_t)i * kv_dim, c->n_kv_heads, hd, cs, sn);
            size_t at = ((size_t)l * kv[i]->cap + pos[i]) * kv_dim;
            memcpy(kv[i]->k + at, k + (size_t)i * kv_dim, kv_dim * 4);
            memcpy(kv[i]->v + at, v + (size_t)i * kv_dim, kv_dim * 4);
        }
        attn_job aj = {m, kv, pos, l, q, att};
        ra_pool_for(m->pool, n * c->n_heads, attn_task, &aj);
        if ((s = ra_cpu_matmul(m->pool, &L->wo, att, n, xb)) != RA_OK) break;
        for (size_t i = 0; i < (size_t)n * dim; i++) x[i] += xb[i];

        for (uint32_t i = 0; i < n; i++) ra_cpu_rmsnorm(x + (size_t)i * dim, g_ffn, dim, c->rms_eps, xb + (size_t)i * dim);
        if ((s = ra_cpu_matmul(m->pool, &L->w_gate, xb, n, h1)) != RA_OK) break;
        if ((s = ra_cpu_matmul(m->pool, &L->w_up, xb, n, h2)) != RA_OK) break;
        for (uint32_t i = 0; i < n; i++) ra_cpu_swiglu(h1 + (size_t)i * c->ffn_dim, h2 + (size_t)i * c->ffn_dim, c->ffn_dim);
        if ((s = ra_cpu_matmul(m->pool, &L->w_down, h1, n, xb)) != RA_OK) break;
        for (size_t i = 0; i < (size_t)n * dim; i++) x[i] += xb[i];
    }

    if (s == RA_OK && n_want > 0) {
        for (uint32_t i = 0, j = 0; i < n; i++)
            if (want[i]) ra_cpu_rmsnorm(x + (size_t)i * dim, (const float *)m->out_norm.data, dim, c->rms_eps, fin + (size_t)j++ * dim);
        s = ra_cpu_matmul(m->pool, &m->output, fin, n_want, logprobs);
        if (s == RA_OK) {
            logsoftmax_job lj = {logprobs, c->n_vocab};
            ra_pool_for(m->pool, n_want, logsoftmax_task, &lj);
        }
    }
done:
    if (s != RA_OK)
        for (uint32_t i = 0; i < n; i++) kv[i]->len--;
    free(pos); free(x); free(xb); free(q); free(k); free(v); free(att); free(h1); free(h2); free(fin);
    return s;
}
