/* repro-audit export-hf: the model, dequantized, as HF safetensors + config.json,
 * so that an implementation we did not write (transformers) can run it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "ra/cpu.h"
#include "ra/json.h"
#include "ra/model.h"
#include "ra/qformat.h"
#include "ra/safetensors.h"
#include "ra/util.h"

static const char usage[] =
    "usage: repro-audit export-hf [--format f32|bf16] MODEL OUTDIR\n"
    "\n"
    "Writes OUTDIR/model.safetensors, config.json, tokenizer.json and\n"
    "tokenizer_config.json: the model's weights in the given format (default\n"
    "f32, the exact dequantization), widened to float32, in Hugging Face layout\n"
    "(Q/K rows in rotate-half order). MODEL is a GGUF file or an HF checkpoint\n"
    "directory; `run --model OUTDIR` then gives the same numbers as MODEL. A\n"
    "quantized checkpoint (awq, gptq, w4a16, fp8, nvfp4, mxfp4) is written\n"
    "dequantized exactly by its format's reference (default: its own format).\n";

typedef struct {
    char name[96];
    const ra_weight *w;
} named_weight;

static ra_status export_model(const ra_model *m, const char *dir)
{
    const ra_model_config *c = &m->cfg;
    size_t n = 0, cap = 3 + (size_t)c->n_layers * 14;
    named_weight *nw;
    ra_weight *vecs; /* biases and QK-norm gains, as borrowed float32 rows */
    RA_TRY(ra_calloc(&nw, cap, sizeof *nw));
    ra_status s = ra_calloc(&vecs, (size_t)c->n_layers * 5 + 1, sizeof *vecs);
    if (s != RA_OK) { free(nw); return s; }
    size_t nv = 0;
#define VEC(p_, len_, ...) do { if (p_) { vecs[nv] = (ra_weight){RA_W_F32, 1, (len_), (size_t)(len_) * 4, (uint8_t *)(p_), true, NULL}; \
    ADD(&vecs[nv], __VA_ARGS__); nv++; } } while (0)
#define ADD(w_, ...) do { snprintf(nw[n].name, sizeof nw[n].name, __VA_ARGS__); nw[n++].w = (w_); } while (0)
    ADD(&m->embed, "model.embed_tokens.weight");
    for (uint32_t l = 0; l < c->n_layers; l++) {
        const ra_layer *L = &m->layers[l];
        ADD(&L->attn_norm, "model.layers.%u.input_layernorm.weight", l);
        ADD(&L->wq, "model.layers.%u.self_attn.q_proj.weight", l);
        ADD(&L->wk, "model.layers.%u.self_attn.k_proj.weight", l);
        ADD(&L->wv, "model.layers.%u.self_attn.v_proj.weight", l);
        ADD(&L->wo, "model.layers.%u.self_attn.o_proj.weight", l);
        ADD(&L->ffn_norm, "model.layers.%u.post_attention_layernorm.weight", l);
        ADD(&L->w_gate, "model.layers.%u.mlp.gate_proj.weight", l);
        ADD(&L->w_up, "model.layers.%u.mlp.up_proj.weight", l);
        ADD(&L->w_down, "model.layers.%u.mlp.down_proj.weight", l);
        uint32_t q_dim = c->n_heads * c->head_dim, kv_dim = c->n_kv_heads * c->head_dim;
        VEC(L->bq, q_dim, "model.layers.%u.self_attn.q_proj.bias", l);
        VEC(L->bk, kv_dim, "model.layers.%u.self_attn.k_proj.bias", l);
        VEC(L->bv, kv_dim, "model.layers.%u.self_attn.v_proj.bias", l);
        VEC(L->q_norm, c->head_dim, "model.layers.%u.self_attn.q_norm.weight", l);
        VEC(L->k_norm, c->head_dim, "model.layers.%u.self_attn.k_norm.weight", l);
    }
    ADD(&m->out_norm, "model.norm.weight");
    if (!c->tied_embeddings) ADD(&m->output, "lm_head.weight");
#undef VEC
#undef ADD

    ra_st_tensor *t = NULL;
    float **bufs = NULL;
    s = ra_calloc(&t, n, sizeof *t);
    if (s == RA_OK) s = ra_calloc(&bufs, n, sizeof *bufs);
    for (size_t i = 0; s == RA_OK && i < n; i++) {
        const ra_weight *w = nw[i].w;
        s = ra_weight_to_f32(w, &bufs[i]);
        t[i] = (ra_st_tensor){nw[i].name, "F32", w->rows == 1 ? 1 : 2, {w->rows == 1 ? w->cols : w->rows, w->cols},
                              bufs[i], (uint64_t)w->rows * w->cols * 4};
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    const char *keys[] = {"format", "source_format"}, *vals[] = {"pt", m->format->name};
    if (s == RA_OK) s = ra_safetensors_write(path, t, n, keys, vals, 2);
    for (size_t i = 0; bufs && i < n; i++) free(bufs[i]);
    free(bufs);
    free(t);
    free(nw);
    free(vecs);
    return s;
}

int ra_cmd_export_hf(int argc, char **argv)
{
    const char *format = NULL, *pos[2] = {0};
    int npos = 0;
    bool help;
    ra_status s = ra_cli_format_and_two(argc, argv, "export-hf", &format, pos, &npos, &help);
    if (help) {
        fputs(usage, stdout);
        return RA_EXIT_OK;
    }
    if (s == RA_OK && npos != 2) s = ra_fail(RA_ERR_USAGE, "export-hf needs MODEL and OUTDIR (see export-hf --help)");
    ra_model_desc *d = NULL;
    ra_pool *pool = NULL;
    ra_model *m = NULL;
    if (s == RA_OK) s = ra_desc_open(pos[0], 0, &d);
    ra_qformat ck;
    const ra_format *f = NULL;
    if (s == RA_OK && !format && d->quant.method != RA_QUANT_NONE && ra_qformat_of_checkpoint(&d->quant, &ck) == RA_OK)
        f = ra_qformat_row_for(&ck); /* a quantized checkpoint exports as itself */
    if (s == RA_OK && !f) f = ra_format_find(format ? format : "f32");
    if (s == RA_OK && (!f || f->derive == RA_DERIVE_NATIVE))
        s = ra_fail(RA_ERR_USAGE, "export-hf --format is f32, bf16 or a quantized checkpoint's format, not '%s'",
                    format ? format : "?");
    if (s == RA_OK) s = ra_pool_new(1, &pool);
    if (s == RA_OK) s = ra_model_load(d, f, pool, &m);
    if (s == RA_OK) s = ra_mkdirs(pos[1]);
    if (s == RA_OK) s = ra_hf_config_write(pos[1], &m->cfg);
    if (s == RA_OK && d->has_tokenizer) s = ra_hf_tokenizer_write(pos[1], &d->tokenizer);
    if (s == RA_OK) s = export_model(m, pos[1]);
    if (s == RA_OK) printf("exported %s (%s) to %s\n", pos[0], f->name, pos[1]);
    ra_model_free(m);
    ra_pool_free(pool);
    ra_desc_close(d);
    return ra_cli_report(s);
}
