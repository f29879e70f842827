/* Calibration activations block by block (calib.h). */
#include "calib.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ra/gptq_calib.h"
#include "ra/util.h"

enum { IN_QKV, IN_O, IN_GATE_UP, IN_DOWN, N_INPUTS };

struct ra_calib {
    ra_model_config cfg;
    ra_model *rope;            /* a model with no weights: its RoPE tables */
    ra_pool *pool;
    bool full;
    uint32_t n_seqs, seq_len, T;
    float *x;                  /* [T][dim] hidden states entering the current block */
    float *xb, *q, *k, *v, *att, *x1, *h1, *h2; /* the block's intermediates */
    double *h[N_INPUTS];       /* Hessians [K][K], or diagonals [K] */
    double *ms[N_INPUTS];      /* mean squares [K], made on request */
    uint32_t hk[N_INPUTS];
};

static const char *const linear_names[7] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                                            "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"};
static const int linear_input[7] = {IN_QKV, IN_QKV, IN_QKV, IN_O, IN_GATE_UP, IN_GATE_UP, IN_DOWN};

const char *ra_calib_linear_name(int i) { return linear_names[i]; }

void ra_calib_linear_shape(const ra_model_config *c, int i, uint32_t *rows, uint32_t *cols)
{
    const uint32_t q_dim = c->n_heads * c->head_dim, kv_dim = c->n_kv_heads * c->head_dim;
    const uint32_t r[7] = {q_dim, kv_dim, kv_dim, c->dim, c->ffn_dim, c->ffn_dim, c->dim};
    const uint32_t k[7] = {c->dim, c->dim, c->dim, q_dim, c->dim, c->dim, c->ffn_dim};
    *rows = r[i];
    *cols = k[i];
}

void ra_calib_close(ra_calib *cb)
{
    if (!cb) return;
    ra_model_free(cb->rope);
    free(cb->x), free(cb->xb), free(cb->q), free(cb->k), free(cb->v), free(cb->att), free(cb->x1), free(cb->h1),
        free(cb->h2);
    for (int i = 0; i < N_INPUTS; i++) free(cb->h[i]), free(cb->ms[i]);
    free(cb);
}

ra_status ra_calib_open(const ra_model_desc *d, const ra_model_config *c, const ra_calib_tokens *t, ra_pool *p,
                        bool full_hessian, ra_calib **out)
{
    *out = NULL;
    if (!t->n_seqs || !t->seq_len || (uint64_t)t->n_seqs * t->seq_len > (1u << 24))
        return ra_fail(RA_ERR_USAGE, "calibration: %u sequences of %u tokens", t->n_seqs, t->seq_len);
    if (t->seq_len > c->max_seq) return ra_fail(RA_ERR_USAGE, "calibration sequences longer than the context");
    ra_calib *cb;
    RA_TRY(ra_calloc(&cb, 1, sizeof *cb));
    *cb = (ra_calib){.cfg = *c, .pool = p, .full = full_hessian, .n_seqs = t->n_seqs, .seq_len = t->seq_len,
                     .T = t->n_seqs * t->seq_len};
    const size_t T = cb->T, q_dim = (size_t)c->n_heads * c->head_dim, kv_dim = (size_t)c->n_kv_heads * c->head_dim;
    ra_status s = ra_calloc(&cb->rope, 1, sizeof *cb->rope);
    if (s == RA_OK) {
        cb->rope->cfg = *c;
        s = ra_model_rope_reserve(cb->rope, t->seq_len);
    }
    float **bufs[] = {&cb->x, &cb->xb, &cb->q, &cb->k, &cb->v, &cb->att, &cb->x1, &cb->h1, &cb->h2};
    const size_t widths[] = {c->dim, c->dim, q_dim, kv_dim, kv_dim, q_dim, c->dim, c->ffn_dim, c->ffn_dim};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0] && s == RA_OK; i++) s = ra_calloc(bufs[i], T * widths[i], sizeof(float));
    const uint32_t hk[N_INPUTS] = {c->dim, (uint32_t)q_dim, c->dim, c->ffn_dim};
    for (int i = 0; i < N_INPUTS && s == RA_OK; i++) {
        cb->hk[i] = hk[i];
        s = ra_calloc(&cb->h[i], full_hessian ? (size_t)hk[i] * hk[i] : hk[i], sizeof(double));
    }
    /* The embeddings as a bf16 checkpoint holds them. */
    ra_weight emb = {0};
    const ra_tensor_desc *te = ra_desc_find(d, "model.embed_tokens.weight");
    if (s == RA_OK && (!te || te->ggml_type == RA_NO_GGML || te->nbytes == 0))
        s = ra_fail(RA_ERR_FORMAT, "%s: no usable model.embed_tokens.weight", d->path);
    if (s == RA_OK) s = ra_weight_from_ggml(ra_format_find("bf16"), NULL, te->ggml_type, te->data, c->n_vocab, c->dim, &emb);
    for (size_t i = 0; i < T && s == RA_OK; i++) {
        int32_t tok = t->tokens[i];
        if (tok < 0 || (uint32_t)tok >= c->n_vocab) s = ra_fail(RA_ERR_USAGE, "calibration token %d outside the vocabulary", tok);
        else s = ra_weight_row_f32(&emb, (uint32_t)tok, cb->x + i * c->dim);
    }
    ra_weight_free(&emb);
    if (s != RA_OK) {
        ra_calib_close(cb);
        return s;
    }
    *out = cb;
    return RA_OK;
}

typedef struct {
    const ra_calib *cb;
} attn_job;

/* One (sequence, head): causal attention over the sequence, positions in order. */
static void attn_task(void *ctx, uint32_t task)
{
    const ra_calib *cb = ((const attn_job *)ctx)->cb;
    const ra_model_config *c = &cb->cfg;
    const uint32_t seq = task / c->n_heads, h = task % c->n_heads, hd = c->head_dim;
    const uint32_t q_dim = c->n_heads * hd, kv_dim = c->n_kv_heads * hd, kvh = h / (c->n_heads / c->n_kv_heads);
    const float scale = (float)(1.0 / sqrt((double)hd));
    float scores[cb->seq_len]; /* seq_len is at most the context length */
    for (uint32_t p = 0; p < cb->seq_len; p++) {
        const size_t row = (size_t)seq * cb->seq_len + p;
        const float *q = cb->q + row * q_dim + h * hd;
        float mx = -INFINITY;
        for (uint32_t j = 0; j <= p; j++) {
            const float *k = cb->k + ((size_t)seq * cb->seq_len + j) * kv_dim + kvh * hd;
            float s = 0;
            for (uint32_t i = 0; i < hd; i++) s += q[i] * k[i];
            scores[j] = s * scale;
            mx = scores[j] > mx ? scores[j] : mx;
        }
        double sum = 0;
        for (uint32_t j = 0; j <= p; j++) {
            scores[j] = ra_cpu_exp(scores[j] - mx);
            sum += scores[j];
        }
        float inv = (float)(1.0 / sum), *o = cb->att + row * q_dim + h * hd;
        memset(o, 0, hd * sizeof *o);
        for (uint32_t j = 0; j <= p; j++) {
            const float *v = cb->v + ((size_t)seq * cb->seq_len + j) * kv_dim + kvh * hd;
            float w = scores[j] * inv;
            for (uint32_t i = 0; i < hd; i++) o[i] += w * v[i];
        }
    }
}

/* RoPE (rotate-half), as the CPU engine applies it. */
static void rope_rows(const ra_calib *cb, float *x, uint32_t n_heads)
{
    const ra_model_config *c = &cb->cfg;
    const uint32_t hd = c->head_dim, half = hd / 2;
    for (size_t r = 0; r < cb->T; r++) {
        const uint32_t pos = (uint32_t)(r % cb->seq_len);
        const float *cs = cb->rope->rope_cos + (size_t)pos * half, *sn = cb->rope->rope_sin + (size_t)pos * half;
        for (uint32_t h = 0; h < n_heads; h++) {
            float *v = x + (r * n_heads + h) * hd;
            for (uint32_t i = 0; i < half; i++) {
                float a = v[i], b = v[i + half];
                v[i] = a * cs[i] - b * sn[i];
                v[i + half] = b * cs[i] + a * sn[i];
            }
        }
    }
}

/* Adds x [T][K] to input i's Hessian (or the diagonal: per column, rows in order). */
static ra_status reduce(ra_calib *cb, int i, const float *x)
{
    const uint32_t K = cb->hk[i];
    if (cb->full) return ra_gptq_hessian_add(cb->pool, cb->h[i], x, cb->T, K);
    for (size_t t = 0; t < cb->T; t++)
        for (uint32_t k = 0; k < K; k++) cb->h[i][k] += (double)x[t * K + k] * x[t * K + k];
    return RA_OK;
}

/* The block on the hidden states: capture reduces its inputs, update moves x on. */
static ra_status block(ra_calib *cb, const ra_layer *L, bool capture, bool update)
{
    const ra_model_config *c = &cb->cfg;
    const size_t T = cb->T, dim = c->dim, hd = c->head_dim, q_dim = c->n_heads * hd, kv_dim = c->n_kv_heads * hd;
    const float *g1 = (const float *)L->attn_norm.data, *g2 = (const float *)L->ffn_norm.data;
    for (size_t t = 0; t < T; t++) ra_cpu_rmsnorm(cb->x + t * dim, g1, c->dim, c->rms_eps, cb->xb + t * dim);
    if (capture) RA_TRY(reduce(cb, IN_QKV, cb->xb));
    RA_TRY(ra_cpu_matmul(cb->pool, &L->wq, cb->xb, (uint32_t)T, cb->q));
    RA_TRY(ra_cpu_matmul(cb->pool, &L->wk, cb->xb, (uint32_t)T, cb->k));
    RA_TRY(ra_cpu_matmul(cb->pool, &L->wv, cb->xb, (uint32_t)T, cb->v));
    for (size_t t = 0; t < T; t++) {
        float *q = cb->q + t * q_dim, *k = cb->k + t * kv_dim, *v = cb->v + t * kv_dim;
        for (size_t i = 0; L->bq && i < q_dim; i++) q[i] += L->bq[i];
        for (size_t i = 0; L->bk && i < kv_dim; i++) k[i] += L->bk[i];
        for (size_t i = 0; L->bv && i < kv_dim; i++) v[i] += L->bv[i];
        for (uint32_t h = 0; L->q_norm && h < c->n_heads; h++) ra_cpu_rmsnorm(q + h * hd, L->q_norm, c->head_dim, c->rms_eps, q + h * hd);
        for (uint32_t h = 0; L->k_norm && h < c->n_kv_heads; h++) ra_cpu_rmsnorm(k + h * hd, L->k_norm, c->head_dim, c->rms_eps, k + h * hd);
    }
    rope_rows(cb, cb->q, c->n_heads);
    rope_rows(cb, cb->k, c->n_kv_heads);
    attn_job aj = {cb};
    ra_pool_for(cb->pool, cb->n_seqs * c->n_heads, attn_task, &aj);
    if (capture) RA_TRY(reduce(cb, IN_O, cb->att));
    RA_TRY(ra_cpu_matmul(cb->pool, &L->wo, cb->att, (uint32_t)T, cb->x1));
    for (size_t i = 0; i < T * dim; i++) cb->x1[i] += cb->x[i];
    for (size_t t = 0; t < T; t++) ra_cpu_rmsnorm(cb->x1 + t * dim, g2, c->dim, c->rms_eps, cb->xb + t * dim);
    if (capture) RA_TRY(reduce(cb, IN_GATE_UP, cb->xb));
    RA_TRY(ra_cpu_matmul(cb->pool, &L->w_gate, cb->xb, (uint32_t)T, cb->h1));
    RA_TRY(ra_cpu_matmul(cb->pool, &L->w_up, cb->xb, (uint32_t)T, cb->h2));
    for (size_t t = 0; t < T; t++) ra_cpu_swiglu(cb->h1 + t * c->ffn_dim, cb->h2 + t * c->ffn_dim, c->ffn_dim);
    if (capture) RA_TRY(reduce(cb, IN_DOWN, cb->h1));
    if (!update) return RA_OK;
    RA_TRY(ra_cpu_matmul(cb->pool, &L->w_down, cb->h1, (uint32_t)T, cb->x));
    for (size_t i = 0; i < T * dim; i++) cb->x[i] += cb->x1[i];
    return RA_OK;
}

ra_status ra_calib_capture(ra_calib *cb, uint32_t l, const ra_layer *L)
{
    (void)l;
    for (int i = 0; i < N_INPUTS; i++)
        memset(cb->h[i], 0, (cb->full ? (size_t)cb->hk[i] * cb->hk[i] : cb->hk[i]) * sizeof(double));
    return block(cb, L, true, false);
}

ra_status ra_calib_advance(ra_calib *cb, uint32_t l, const ra_layer *Q)
{
    (void)l;
    return block(cb, Q, false, true);
}

ra_status ra_calib_hessian_copy(const ra_calib *cb, uint32_t i, double **out)
{
    const int in = linear_input[i];
    const size_t n = (size_t)cb->hk[in] * cb->hk[in];
    if (!cb->full) return ra_fail(RA_ERR_INTERNAL, "calibration without Hessians");
    RA_TRY(ra_calloc(out, n, sizeof **out));
    memcpy(*out, cb->h[in], n * sizeof **out);
    return RA_OK;
}

ra_status ra_calib_mean_squares(ra_calib *cb, uint32_t i, const double **out, uint32_t *k)
{
    const int in = linear_input[i];
    const uint32_t K = cb->hk[in];
    if (!cb->ms[in]) RA_TRY(ra_calloc(&cb->ms[in], K, sizeof **cb->ms));
    for (uint32_t j = 0; j < K; j++) cb->ms[in][j] = (cb->full ? cb->h[in][(size_t)j * K + j] : cb->h[in][j]) / cb->T;
    *out = cb->ms[in];
    *k = K;
    return RA_OK;
}

ra_status ra_calib_act_order(const ra_calib *cb, uint32_t i, int32_t **perm)
{
    const int in = linear_input[i];
    const uint32_t K = cb->hk[in];
    RA_TRY(ra_calloc(perm, K, sizeof **perm));
    for (uint32_t k = 0; k < K; k++) (*perm)[k] = (int32_t)k;
    /* Insertion sort: stable and simple; K is at most a few tens of thousands and this runs once per layer. */
    for (uint32_t a = 1; a < K; a++) {
        int32_t v = (*perm)[a];
        double dv = cb->full ? cb->h[in][(size_t)v * K + v] : cb->h[in][v];
        uint32_t b = a;
        for (; b > 0; b--) {
            int32_t u = (*perm)[b - 1];
            double du = cb->full ? cb->h[in][(size_t)u * K + u] : cb->h[in][u];
            if (du >= dv) break;
            (*perm)[b] = u;
        }
        (*perm)[b] = v;
    }
    return RA_OK;
}

void ra_calib_stats(const ra_calib *cb, uint64_t *act_bytes, uint64_t *hessian_bytes)
{
    const ra_model_config *c = &cb->cfg;
    const uint64_t q_dim = (uint64_t)c->n_heads * c->head_dim, kv_dim = (uint64_t)c->n_kv_heads * c->head_dim;
    *act_bytes = (uint64_t)cb->T * 4 * (4 * c->dim + 2 * q_dim + 2 * kv_dim + 2 * (uint64_t)c->ffn_dim);
    *hessian_bytes = 0;
    for (int i = 0; i < N_INPUTS; i++) *hessian_bytes += 8 * (cb->full ? (uint64_t)cb->hk[i] * cb->hk[i] : cb->hk[i]);
}
