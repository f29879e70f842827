/* A base model quantized into a checkpoint directory, block by block
 * (include/ra/quantize.h). Tensors accumulate in memory in their packed form
 * (about the checkpoint's size) and are written once, atomically. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "calib.h"
#include "ra/gptq_calib.h"
#include "ra/model.h"
#include "ra/quantize.h"
#include "ra/safetensors.h"
#include "ra/util.h"
#include "ra/version.h"

/* The checkpoint being built: safetensors rows and the memory behind them. */
typedef struct {
    ra_st_tensor *t;
    char (*names)[RA_QT_NAME_MAX];
    size_t n, cap;
    ra_qtensors *sets;           /* packed layers, freed at the end */
    size_t n_sets;
    uint8_t **bufs;              /* dense tensors' bf16 bytes */
    size_t n_bufs;
} ckpt;

static void ckpt_free(ckpt *k)
{
    for (size_t i = 0; i < k->n_sets; i++) ra_qtensors_free(&k->sets[i]);
    for (size_t i = 0; i < k->n_bufs; i++) free(k->bufs[i]);
    free(k->t);
    free(k->names);
    free(k->sets);
    free(k->bufs);
}

static ra_status ckpt_init(ckpt *k, const ra_model_config *c)
{
    memset(k, 0, sizeof *k);
    k->cap = 3 + (size_t)c->n_layers * (7 + 7 * RA_QT_MAX);
    ra_status s = ra_calloc(&k->t, k->cap, sizeof *k->t);
    if (s == RA_OK) s = ra_calloc(&k->names, k->cap, sizeof *k->names);
    if (s == RA_OK) s = ra_calloc(&k->sets, (size_t)c->n_layers * 7, sizeof *k->sets);
    if (s == RA_OK) s = ra_calloc(&k->bufs, k->cap, sizeof *k->bufs);
    return s;
}

/* The tensor `name` of the base model as bf16 bytes ([rows, cols], or [cols] when rows is 0). */
static ra_status bf16_tensor(const ra_model_desc *d, const char *name, uint32_t rows, uint32_t cols, ra_weight *w)
{
    const ra_tensor_desc *t = ra_desc_find(d, name);
    if (!t) return ra_fail(RA_ERR_FORMAT, "%s: missing tensor %s", d->path, name);
    uint64_t want = (uint64_t)(rows ? rows : 1) * cols;
    uint64_t have = 1;
    for (uint32_t i = 0; i < t->n_dims; i++) have *= t->shape[i];
    if (have != want || t->ggml_type == RA_NO_GGML || t->n_dims != (rows ? 2u : 1u))
        return ra_fail(RA_ERR_FORMAT, "%s: tensor %s is not a %s of %llu values", t->file, name, rows ? "matrix" : "vector",
                       (unsigned long long)want);
    ra_status s = ra_weight_from_ggml(ra_format_find("bf16"), NULL, t->ggml_type, t->data, rows ? rows : 1, cols, w);
    return s == RA_OK ? RA_OK : ra_wrap(s, "%s: tensor %s", t->file, name);
}

static ra_status add_dense(ckpt *k, const ra_model_desc *d, const char *name, uint32_t rows, uint32_t cols)
{
    ra_weight w;
    RA_TRY(bf16_tensor(d, name, rows, cols, &w));
    k->bufs[k->n_bufs++] = w.data;
    snprintf(k->names[k->n], RA_QT_NAME_MAX, "%s", name);
    k->t[k->n] = (ra_st_tensor){k->names[k->n], "BF16", rows ? 2 : 1, {rows ? rows : cols, cols}, w.data,
                                (uint64_t)(rows ? rows : 1) * cols * 2};
    k->n++;
    return RA_OK;
}

static ra_status add_layer(ckpt *k, const ra_qformat *f, const char *module, const ra_qlayer *q)
{
    ra_qtensors *set = &k->sets[k->n_sets++];
    RA_TRY(ra_qformat_pack(f, q, set));
    if (k->n + set->n > k->cap) return ra_fail(RA_ERR_INTERNAL, "checkpoint tensor table full");
    RA_TRY(ra_qtensors_to_st(set, module, k->t + k->n, k->names + k->n));
    k->n += set->n;
    return RA_OK;
}

/* Overwrites the dense bf16 tensor (name_fmt with block l) with w's floats, exact in bf16. */
static ra_status ckpt_set_bf16(ckpt *k, const char *name_fmt, uint32_t l, const ra_weight *w)
{
    char name[RA_QT_NAME_MAX];
    snprintf(name, sizeof name, name_fmt, l);
    const size_t n = (size_t)w->rows * w->cols;
    for (size_t i = 0; i < k->n; i++) {
        if (strcmp(k->t[i].name, name)) continue;
        if (strcmp(k->t[i].dtype, "BF16") || k->t[i].nbytes != 2 * n)
            return ra_fail(RA_ERR_INTERNAL, "checkpoint tensor %s is not %zu bf16 values", name, n);
        uint8_t *dst = (uint8_t *)k->t[i].data; /* one of k->bufs */
        for (size_t j = 0; j < n; j++) {
            uint16_t b = ra_f32_to_bf16(((const float *)w->data)[j]);
            memcpy(dst + 2 * j, &b, 2);
        }
        return RA_OK;
    }
    return ra_fail(RA_ERR_INTERNAL, "checkpoint tensor %s missing", name);
}

/* Tensor `name` ([rows, cols], or [cols] when rows is 0) rounded to bf16, as float32. */
static ra_status bf16_floats(const ra_model_desc *d, const char *name, uint32_t rows, uint32_t cols, float **out)
{
    ra_weight b;
    RA_TRY(bf16_tensor(d, name, rows, cols, &b));
    ra_status s = ra_weight_to_f32(&b, out);
    ra_weight_free(&b);
    return s;
}

static ra_status f32_weight(const ra_model_desc *d, const char *name, uint32_t rows, uint32_t cols, ra_weight *w)
{
    float *f = NULL;
    RA_TRY(bf16_floats(d, name, rows, cols, &f));
    *w = (ra_weight){RA_W_F32, rows ? rows : 1, cols, (size_t)cols * 4, (uint8_t *)f, false, NULL};
    return RA_OK;
}

/* The float (bf16-rounded) block l as the engine's layer: what calibration runs. */
static ra_status load_block(const ra_model_desc *d, const ra_model_config *c, uint32_t l, ra_layer *L, ra_weight *lin[7])
{
    char name[160];
    const uint32_t q_dim = c->n_heads * c->head_dim, kv_dim = c->n_kv_heads * c->head_dim;
#define NAME(...) (snprintf(name, sizeof name, __VA_ARGS__), name)
    RA_TRY(f32_weight(d, NAME("model.layers.%u.input_layernorm.weight", l), 0, c->dim, &L->attn_norm));
    RA_TRY(f32_weight(d, NAME("model.layers.%u.post_attention_layernorm.weight", l), 0, c->dim, &L->ffn_norm));
    for (int i = 0; i < 7; i++) {
        uint32_t rows, cols;
        ra_calib_linear_shape(c, i, &rows, &cols);
        RA_TRY(f32_weight(d, NAME("model.layers.%u.%s.weight", l, ra_calib_linear_name(i)), rows, cols, lin[i]));
    }
    if (c->attn_bias) {
        RA_TRY(bf16_floats(d, NAME("model.layers.%u.self_attn.q_proj.bias", l), 0, q_dim, &L->bq));
        RA_TRY(bf16_floats(d, NAME("model.layers.%u.self_attn.k_proj.bias", l), 0, kv_dim, &L->bk));
        RA_TRY(bf16_floats(d, NAME("model.layers.%u.self_attn.v_proj.bias", l), 0, kv_dim, &L->bv));
    }
    if (c->qk_norm) {
        RA_TRY(bf16_floats(d, NAME("model.layers.%u.self_attn.q_norm.weight", l), 0, c->head_dim, &L->q_norm));
        RA_TRY(bf16_floats(d, NAME("model.layers.%u.self_attn.k_norm.weight", l), 0, c->head_dim, &L->k_norm));
    }
#undef NAME
    return RA_OK;
}

static void free_block(ra_layer *L, bool vectors)
{
    ra_weight *ws[] = {&L->attn_norm, &L->ffn_norm, &L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
    for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++) ra_weight_free(ws[i]);
    if (!vectors) return;
    free(L->bq), free(L->bk), free(L->bv), free(L->q_norm), free(L->k_norm);
}

/* Linear i of block l quantized: RTN (act-order from the Hessian's diagonal) or GPTQ. */
static ra_status quantize_linear(const ra_quantize_opts *o, ra_calib *cb, uint32_t i, const ra_weight *w, ra_qlayer *out)
{
    const ra_qformat *f = o->format;
    const float *wf = (const float *)w->data;
    if (f->method == RA_QMETHOD_GPTQ) {
        ra_gptq_calib_config cc = {{f->bits, f->group_size, f->sym, RA_GPTQ_V1}, 0.01f, f->act_order};
        double *h = NULL;
        RA_TRY(ra_calib_hessian_copy(cb, i, &h));
        ra_intq q;
        ra_status s = ra_gptq_quantize_calibrated(o->pool, wf, w->rows, w->cols, h, &cc, &q);
        free(h);
        RA_TRY(s);
        return ra_qformat_from_intq(f, &q, out);
    }
    int32_t *perm = NULL;
    if (f->act_order) RA_TRY(ra_calib_act_order(cb, i, &perm));
    ra_status s = ra_qformat_quantize(f, wf, w->rows, w->cols, perm, out);
    free(perm);
    return s;
}

static ra_status quantize_blocks(const ra_model_desc *d, const ra_model_config *c, const ra_quantize_opts *o, ckpt *k,
                                 ra_quantize_stats *st)
{
    const ra_qformat *f = o->format;
    bool calibrate = ra_qformat_calibrated(f);
    if (calibrate && !o->calib) return ra_fail(RA_ERR_USAGE, "format %s needs calibration text", o->name);
    ra_calib *cb = NULL;
    if (calibrate) RA_TRY(ra_calib_open(d, c, o->calib, o->pool, f->method == RA_QMETHOD_GPTQ, &cb));
    ra_status s = RA_OK;
    for (uint32_t l = 0; l < c->n_layers && s == RA_OK; l++) {
        double t0 = ra_now();
        ra_layer L = {0}, Q = {0};
        ra_weight *lin[7] = {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down};
        ra_weight *qlin[7] = {&Q.wq, &Q.wk, &Q.wv, &Q.wo, &Q.w_gate, &Q.w_up, &Q.w_down};
        s = load_block(d, c, l, &L, lin);
        if (s == RA_OK && cb) s = ra_calib_capture(cb, l, &L);
        if (s == RA_OK && f->method == RA_QMETHOD_AWQ) { /* scales folded into the norms, which the checkpoint keeps */
            s = ra_awq_calibrate_block(cb, f, &L);
            if (s == RA_OK) s = ckpt_set_bf16(k, "model.layers.%u.input_layernorm.weight", l, &L.attn_norm);
            if (s == RA_OK) s = ckpt_set_bf16(k, "model.layers.%u.post_attention_layernorm.weight", l, &L.ffn_norm);
        }
        for (int i = 0; i < 7 && s == RA_OK; i++) {
            ra_qlayer q;
            char module[160];
            snprintf(module, sizeof module, "model.layers.%u.%s", l, ra_calib_linear_name(i));
            s = quantize_linear(o, cb, (uint32_t)i, lin[i], &q);
            if (s == RA_OK) s = add_layer(k, f, module, &q);
            if (s == RA_OK) s = ra_weight_from_qlayer(&q, qlin[i]);
            else ra_qlayer_free(&q);
            if (s != RA_OK) s = ra_wrap(s, "%s", module);
        }
        if (s == RA_OK && cb) { /* the next block sees this one's quantized output, as GPTQ does */
            Q.attn_norm = L.attn_norm, Q.ffn_norm = L.ffn_norm;
            Q.attn_norm.borrowed = Q.ffn_norm.borrowed = true;
            Q.bq = L.bq, Q.bk = L.bk, Q.bv = L.bv, Q.q_norm = L.q_norm, Q.k_norm = L.k_norm;
            s = ra_calib_advance(cb, l, &Q);
        }
        free_block(&Q, false);
        free_block(&L, true);
        if (s == RA_OK && o->progress)
            fprintf(stderr, "\r  %s: block %u/%u  %.1fs   ", o->name, l + 1, c->n_layers, ra_now() - t0);
    }
    if (o->progress) fputc('\n', stderr);
    if (cb) ra_calib_stats(cb, &st->calib_bytes, &st->hessian_bytes);
    ra_calib_close(cb);
    return s;
}

static ra_status write_dir(const char *dir, const ra_model_desc *d, const ra_model_config *c, const ra_qformat *f,
                           const ckpt *k, const char *name)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/model.safetensors", dir) >= (int)sizeof path)
        return ra_fail(RA_ERR_USAGE, "%s: path too long", dir);
    const char *keys[] = {"format", "quantized_by", "repro_audit_format"}, *vals[] = {"pt", "repro-audit " RA_VERSION, name};
    RA_TRY(ra_safetensors_write(path, k->t, k->n, keys, vals, 3));
    RA_TRY(ra_hf_config_write_ext(dir, c, "bfloat16", ra_hf_quant_config(f)));
    if (d->has_tokenizer) RA_TRY(ra_hf_tokenizer_write(dir, &d->tokenizer));
    return RA_OK;
}

ra_status ra_quantize_model(const ra_model_desc *base, const ra_quantize_opts *o, const char *out_dir,
                            ra_quantize_stats *stats)
{
    ra_quantize_stats st = {0};
    double t0 = ra_now();
    if (base->quant.method != RA_QUANT_NONE)
        return ra_fail(RA_ERR_USAGE, "%s is already quantized (%s)", base->path, base->quant.summary);
    if (ra_path_exists(out_dir)) return ra_fail(RA_ERR_USAGE, "%s already exists", out_dir);
    ra_model_config c;
    RA_TRY(ra_config_from_desc(base, &c));
    ckpt k;
    ra_status s = ckpt_init(&k, &c);
    char name[160];
    if (s == RA_OK) s = add_dense(&k, base, "model.embed_tokens.weight", c.n_vocab, c.dim);
    for (uint32_t l = 0; l < c.n_layers && s == RA_OK; l++) {
        static const char *const norms[2] = {"input_layernorm", "post_attention_layernorm"};
        for (int i = 0; i < 2 && s == RA_OK; i++) {
            snprintf(name, sizeof name, "model.layers.%u.%s.weight", l, norms[i]);
            s = add_dense(&k, base, name, 0, c.dim);
        }
        static const char *const bias[3] = {"q_proj", "k_proj", "v_proj"};
        for (int i = 0; i < 3 && s == RA_OK && c.attn_bias; i++) {
            snprintf(name, sizeof name, "model.layers.%u.self_attn.%s.bias", l, bias[i]);
            s = add_dense(&k, base, name, 0, i ? c.n_kv_heads * c.head_dim : c.n_heads * c.head_dim);
        }
        for (int i = 0; i < 2 && s == RA_OK && c.qk_norm; i++) {
            snprintf(name, sizeof name, "model.layers.%u.self_attn.%s_norm.weight", l, i ? "k" : "q");
            s = add_dense(&k, base, name, 0, c.head_dim);
        }
    }
    if (s == RA_OK) s = add_dense(&k, base, "model.norm.weight", 0, c.dim);
    if (s == RA_OK && !c.tied_embeddings) s = add_dense(&k, base, "lm_head.weight", c.n_vocab, c.dim);
    if (s == RA_OK) s = quantize_blocks(base, &c, o, &k, &st);

    char prefix[4096], *tmp = NULL;
    if (s == RA_OK && snprintf(prefix, sizeof prefix, "%s.partial-", out_dir) >= (int)sizeof prefix)
        s = ra_fail(RA_ERR_USAGE, "%s: path too long", out_dir);
    if (s == RA_OK) s = ra_create_unique(prefix, true, &tmp, NULL);
    if (s == RA_OK) s = write_dir(tmp, base, &c, o->format, &k, o->name);
    if (s == RA_OK) s = ra_rename_noreplace(tmp, out_dir);
    if (s != RA_OK && tmp) ra_remove_tree(tmp);
    free(tmp);
    ckpt_free(&k);
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) st.peak_rss_bytes = (uint64_t)ru.ru_maxrss * 1024;
    st.seconds = ra_now() - t0;
    if (stats) *stats = st;
    return s;
}
