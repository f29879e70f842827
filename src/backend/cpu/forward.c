/* The Llama-family forward pass on the CPU reference backend, and the CPU
 * engine around it. Rows of a batch are independent (sequence, token) pairs:
 * every kernel computes each output in an order that does not depend on the
 * other rows, so a row's numbers never depend on the batch. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3") /* vectorizes the attention lanes; float semantics stay strict */
#endif
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../backend.h"
#include "ra/cpu.h"
#include "ra/util.h"

/* Per-sequence KV cache. */
typedef struct {
    uint32_t len, cap;
    float *k, *v;                        /* [n_layers][cap][n_kv_heads*head_dim] */
} ra_kv;

static void kv_free(ra_kv *kv);

static ra_status kv_new(ra_model *m, uint32_t cap, ra_kv **out)
{
    const ra_model_config *c = &m->cfg;
    if (cap == 0 || cap > c->max_seq)
        return ra_fail(RA_ERR_USAGE, "sequence capacity %u outside 1..%u (the model's context length)", cap, c->max_seq);
    RA_TRY(ra_model_rope_reserve(m, cap));
    ra_kv *kv;
    RA_TRY(ra_calloc(&kv, 1, sizeof *kv));
    size_t n = (size_t)c->n_layers * cap * c->n_kv_heads * c->head_dim;
    ra_status s = ra_calloc(&kv->k, n, sizeof(float));
    if (s == RA_OK) s = ra_calloc(&kv->v, n, sizeof(float));
    if (s != RA_OK) { kv_free(kv); return s; }
    kv->cap = cap;
    *out = kv;
    return RA_OK;
}

static void kv_free(ra_kv *kv)
{
    if (!kv) return;
    free(kv->k);
    free(kv->v);
    free(kv);
}

/* The arithmetic of one engine: our fixed order (kernel "cpu") or llama.cpp's
 * (kernel "ggml-avx2", src/backend/cpu/ggml_avx2.c). */
typedef struct {
    bool ggml;
    ra_cpu_path path;
} cpu_math;

static void rmsnorm(const cpu_math *mx, const float *x, const float *g, uint32_t dim, float eps, float *y)
{
    if (mx->ggml) ra_ggml_rmsnorm(x, g, dim, eps, y);
    else ra_cpu_rmsnorm(x, g, dim, eps, y);
}

static ra_status matmul(const cpu_math *mx, ra_pool *p, const ra_weight *w, const float *x, uint32_t n, float *y)
{
    return mx->ggml ? ra_ggml_matmul(p, mx->path, w, x, n, y) : ra_cpu_matmul(p, w, x, n, y);
}

/* Each head from HF row order (pairs (i, i + hd/2)) to GGUF's interleaved
 * order (pairs (2i, 2i + 1)), so ggml-order dot products see llama.cpp's layout. */
static void interleave_heads(float *x, uint32_t n_heads, uint32_t hd)
{
    float tmp[hd];
    for (uint32_t h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * hd;
        for (uint32_t i = 0; i < hd / 2; i++) {
            tmp[2 * i] = v[i];
            tmp[2 * i + 1] = v[i + hd / 2];
        }
        memcpy(v, tmp, sizeof tmp);
    }
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

static void add_bias(float *x, const float *b, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) x[i] += b[i];
}

/* QK-norm (qwen3): RMSNorm over each head's vector, one gain for every head. */
static void head_norm(float *x, const float *g, uint32_t n_heads, uint32_t hd, float eps)
{
    for (uint32_t h = 0; h < n_heads; h++) ra_cpu_rmsnorm(x + (size_t)h * hd, g, hd, eps, x + (size_t)h * hd);
}

typedef struct {
    const ra_model *m;
    ra_kv *const *kv;
    const uint32_t *pos;
    uint32_t layer;
    const float *q;  /* n x q_dim */
    float *out;      /* n x q_dim */
    const cpu_math *mx;
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
    if (j->mx->ggml) {
        ra_ggml_attn_head(j->mx->path, q, K, V, kv_dim, npos, hd, scale, scores, j->out + (size_t)row * c->n_heads * hd + h * hd);
        return;
    }
    /* Each score is one sum over i in order; eight positions at a time only
     * interleave eight independent sums. */
    uint32_t p = 0;
    for (; p + 8 <= npos; p += 8) {
        float s[8] = {0};
        for (uint32_t i = 0; i < hd; i++)
            for (uint32_t l = 0; l < 8; l++) s[l] += q[i] * K[(size_t)(p + l) * kv_dim + i];
        for (uint32_t l = 0; l < 8; l++) scores[p + l] = s[l] * scale;
    }
    for (; p < npos; p++) {
        const float *k = K + (size_t)p * kv_dim;
        float s = 0;
        for (uint32_t i = 0; i < hd; i++) s += q[i] * k[i];
        scores[p] = s * scale;
    }
    for (p = 0; p < npos; p++) mx = scores[p] > mx ? scores[p] : mx;
    double sum = 0;
    for (p = 0; p < npos; p++) {
        scores[p] = ra_cpu_exp(scores[p] - mx);
        sum += scores[p];
    }
    float inv = (float)(1.0 / sum);
    float *o = j->out + (size_t)row * c->n_heads * hd + h * hd;
    for (uint32_t i = 0; i < hd; i++) o[i] = 0;
    for (p = 0; p < npos; p++) {
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

typedef struct {
    ra_probe_fn fn;
    void *ctx;
} probe;

/* An op's output to the probe, when one is set (include/ra/engine.h). */
#define PROBE(layer, op, buf, rows, width) \
    do { if (pr->fn) pr->fn(pr->ctx, (layer), (op), (buf), (rows), (width)); } while (0)

static ra_status forward(ra_model *m, const cpu_math *mx, const probe *pr, ra_kv *const *kv, const int32_t *token,
                         const bool *want, uint32_t n, float *logprobs)
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

    for (uint32_t i = 0; i < n && s == RA_OK; i++) s = ra_weight_row_f32(&m->embed, (uint32_t)token[i], x + (size_t)i * dim);
    if (s == RA_OK) PROBE(-1, "embed", x, n, dim);

    for (uint32_t l = 0; l < c->n_layers && s == RA_OK; l++) {
        const ra_layer *L = &m->layers[l];
        const float *g_attn = (const float *)L->attn_norm.data, *g_ffn = (const float *)L->ffn_norm.data;
        const int32_t li = (int32_t)l;
        for (uint32_t i = 0; i < n; i++) rmsnorm(mx, x + (size_t)i * dim, g_attn, dim, c->rms_eps, xb + (size_t)i * dim);
        PROBE(li, "input_layernorm", xb, n, dim);
        if ((s = matmul(mx, m->pool, &L->wq, xb, n, q)) != RA_OK) break;
        if ((s = matmul(mx, m->pool, &L->wk, xb, n, k)) != RA_OK) break;
        if ((s = matmul(mx, m->pool, &L->wv, xb, n, v)) != RA_OK) break;
        PROBE(li, "self_attn.q_proj", q, n, q_dim);
        PROBE(li, "self_attn.k_proj", k, n, kv_dim);
        PROBE(li, "self_attn.v_proj", v, n, kv_dim);
        for (uint32_t i = 0; i < n; i++) {
            if (L->bq) add_bias(q + (size_t)i * q_dim, L->bq, q_dim);
            if (L->bk) add_bias(k + (size_t)i * kv_dim, L->bk, kv_dim);
            if (L->bv) add_bias(v + (size_t)i * kv_dim, L->bv, kv_dim);
            if (L->q_norm) head_norm(q + (size_t)i * q_dim, L->q_norm, c->n_heads, hd, c->rms_eps);
            if (L->k_norm) head_norm(k + (size_t)i * kv_dim, L->k_norm, c->n_kv_heads, hd, c->rms_eps);
            if (mx->ggml) {
                float cs[half], sn[half];
                ra_ggml_rope_cache(pos[i], c->rope_theta, hd, cs, sn);
                ra_ggml_rope(q + (size_t)i * q_dim, c->n_heads, hd, cs, sn);
                ra_ggml_rope(k + (size_t)i * kv_dim, c->n_kv_heads, hd, cs, sn);
                interleave_heads(q + (size_t)i * q_dim, c->n_heads, hd);
                interleave_heads(k + (size_t)i * kv_dim, c->n_kv_heads, hd);
            } else {
                const float *cs = m->rope_cos + (size_t)pos[i] * half, *sn = m->rope_sin + (size_t)pos[i] * half;
                rope(q + (size_t)i * q_dim, c->n_heads, hd, cs, sn);
                rope(k + (size_t)i * kv_dim, c->n_kv_heads, hd, cs, sn);
            }
            size_t at = ((size_t)l * kv[i]->cap + pos[i]) * kv_dim;
            memcpy(kv[i]->k + at, k + (size_t)i * kv_dim, kv_dim * 4);
            memcpy(kv[i]->v + at, v + (size_t)i * kv_dim, kv_dim * 4);
        }
        attn_job aj = {m, kv, pos, l, q, att, mx};
        ra_pool_for(m->pool, n * c->n_heads, attn_task, &aj);
        PROBE(li, "self_attn.attention", att, n, q_dim);
        if ((s = matmul(mx, m->pool, &L->wo, att, n, xb)) != RA_OK) break;
        PROBE(li, "self_attn.o_proj", xb, n, dim);
        for (size_t i = 0; i < (size_t)n * dim; i++) x[i] += xb[i];
        PROBE(li, "attn_residual", x, n, dim);

        for (uint32_t i = 0; i < n; i++) rmsnorm(mx, x + (size_t)i * dim, g_ffn, dim, c->rms_eps, xb + (size_t)i * dim);
        PROBE(li, "post_attention_layernorm", xb, n, dim);
        if ((s = matmul(mx, m->pool, &L->w_gate, xb, n, h1)) != RA_OK) break;
        if ((s = matmul(mx, m->pool, &L->w_up, xb, n, h2)) != RA_OK) break;
        PROBE(li, "mlp.gate_proj", h1, n, c->ffn_dim);
        PROBE(li, "mlp.up_proj", h2, n, c->ffn_dim);
        for (uint32_t i = 0; i < n; i++) {
            float *g = h1 + (size_t)i * c->ffn_dim;
            if (mx->ggml) ra_ggml_swiglu(mx->path, g, h2 + (size_t)i * c->ffn_dim, c->ffn_dim);
            else ra_cpu_swiglu(g, h2 + (size_t)i * c->ffn_dim, c->ffn_dim);
        }
        PROBE(li, "mlp.act", h1, n, c->ffn_dim);
        if ((s = matmul(mx, m->pool, &L->w_down, h1, n, xb)) != RA_OK) break;
        PROBE(li, "mlp.down_proj", xb, n, dim);
        for (size_t i = 0; i < (size_t)n * dim; i++) x[i] += xb[i];
        PROBE(li, "mlp_residual", x, n, dim);
    }

    if (s == RA_OK && n_want > 0) {
        for (uint32_t i = 0, j = 0; i < n; i++)
            if (want[i]) rmsnorm(mx, x + (size_t)i * dim, (const float *)m->out_norm.data, dim, c->rms_eps, fin + (size_t)j++ * dim);
        PROBE(-1, "norm", fin, n_want, dim);
        s = matmul(mx, m->pool, &m->output, fin, n_want, logprobs);
        if (s == RA_OK) {
            logsoftmax_job lj = {logprobs, c->n_vocab};
            ra_pool_for(m->pool, n_want, logsoftmax_task, &lj);
            PROBE(-1, "lm_head.log_softmax", logprobs, n_want, c->n_vocab);
        }
    }
done:
    if (s != RA_OK)
        for (uint32_t i = 0; i < n; i++) kv[i]->len--;
    free(pos); free(x); free(xb); free(q); free(k); free(v); free(att); free(h1); free(h2); free(fin);
    return s;
}

/* ---- the engine --------------------------------------------------------- */

typedef struct {
    ra_model *m;
    cpu_math mx;
    ra_kv **kv;
    uint32_t n_kv;
    ra_kv **rows;       /* per-row KV pointers of the current batch */
    uint32_t rows_cap;
    probe probe;        /* activation probe (locate); fn NULL when off */
} cpu_engine;

static void drop_seqs(cpu_engine *e)
{
    for (uint32_t i = 0; i < e->n_kv; i++) kv_free(e->kv[i]);
    free(e->kv);
    e->kv = NULL;
    e->n_kv = 0;
}

static ra_status cpu_begin(void *impl, uint32_t n, const uint32_t *cap)
{
    cpu_engine *e = impl;
    drop_seqs(e);
    RA_TRY(ra_calloc(&e->kv, n ? n : 1, sizeof *e->kv));
    for (uint32_t i = 0; i < n; i++) {
        ra_status s = kv_new(e->m, cap[i], &e->kv[i]);
        if (s != RA_OK) { e->n_kv = i; drop_seqs(e); return s; }
        e->n_kv = i + 1;
    }
    return RA_OK;
}

static ra_status cpu_forward(void *impl, const uint32_t *seq, const int32_t *token, const bool *want, uint32_t n,
                             float *logprobs, int32_t *argmax)
{
    cpu_engine *e = impl;
    if (n > e->rows_cap) {
        free(e->rows);
        e->rows_cap = 0;
        RA_TRY(ra_calloc(&e->rows, n, sizeof *e->rows));
        e->rows_cap = n;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (seq[i] >= e->n_kv) return ra_fail(RA_ERR_USAGE, "sequence %u was not begun (%u exist)", seq[i], e->n_kv);
        e->rows[i] = e->kv[seq[i]];
    }
    RA_TRY(forward(e->m, &e->mx, &e->probe, e->rows, token, want, n, logprobs));
    if (argmax) {
        const uint32_t V = e->m->cfg.n_vocab;
        for (uint32_t i = 0, j = 0; i < n; i++)
            if (want[i]) { argmax[j] = ra_argmax(logprobs + (size_t)j * V, V); j++; }
    }
    return RA_OK;
}

static ra_status cpu_set_probe(void *impl, ra_probe_fn fn, void *ctx)
{
    cpu_engine *e = impl;
    e->probe = (probe){fn, ctx};
    return RA_OK;
}

static void cpu_describe(const void *impl, void *json_object)
{
    const cpu_engine *e = impl;
    cJSON_AddStringToObject(json_object, "backend", "cpu");
    if (e->mx.ggml) cJSON_AddStringToObject(json_object, "cpu_path", e->mx.path == RA_CPU_PATH_AVX2 ? "avx2" : "scalar");
    cJSON_AddNumberToObject(json_object, "threads", ra_pool_threads(e->m->pool));
}

static void cpu_close(void *impl)
{
    cpu_engine *e = impl;
    drop_seqs(e);
    free(e->rows);
    free(e);
}

ra_status ra_cpu_engine_open(ra_model *m, const ra_kernel *k, const ra_backend_ops **ops, void **impl)
{
    static const ra_backend_ops cpu_ops = {cpu_begin, cpu_forward, cpu_describe, cpu_close, cpu_set_probe};
    cpu_engine *e;
    RA_TRY(ra_calloc(&e, 1, sizeof *e));
    e->m = m;
    e->mx.ggml = !strcmp(k->name, "ggml-avx2");
    e->mx.path = ra_cpu_best_path();
    *ops = &cpu_ops;
    *impl = e;
    return RA_OK;
}
