/* repro-audit export-hf: the model, dequantized, as HF safetensors + config.json,
 * so that an implementation we did not write (transformers) can run it. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "ra/cpu.h"
#include "ra/json.h"
#include "ra/model.h"
#include "ra/safetensors.h"
#include "ra/util.h"

static const char usage[] =
    "usage: repro-audit export-hf [--format f32|bf16] MODEL.gguf OUTDIR\n"
    "\n"
    "Writes OUTDIR/model.safetensors and OUTDIR/config.json: the model's weights\n"
    "in the given format (default f32, the exact dequantization), widened to\n"
    "float32, in Hugging Face Llama layout (Q/K rows in rotate-half order).\n";

static ra_status write_config(const char *dir, const ra_model_config *c)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *arch = cJSON_AddArrayToObject(o, "architectures");
    cJSON_AddItemToArray(arch, cJSON_CreateString("LlamaForCausalLM"));
    cJSON_AddStringToObject(o, "model_type", "llama");
    cJSON_AddNumberToObject(o, "hidden_size", c->dim);
    cJSON_AddNumberToObject(o, "intermediate_size", c->ffn_dim);
    cJSON_AddNumberToObject(o, "num_hidden_layers", c->n_layers);
    cJSON_AddNumberToObject(o, "num_attention_heads", c->n_heads);
    cJSON_AddNumberToObject(o, "num_key_value_heads", c->n_kv_heads);
    cJSON_AddNumberToObject(o, "head_dim", c->head_dim);
    cJSON_AddNumberToObject(o, "rms_norm_eps", c->rms_eps);
    cJSON_AddNumberToObject(o, "rope_theta", c->rope_theta);
    cJSON_AddNumberToObject(o, "vocab_size", c->n_vocab);
    cJSON_AddNumberToObject(o, "max_position_embeddings", c->max_seq);
    cJSON_AddBoolToObject(o, "tie_word_embeddings", c->tied_embeddings);
    cJSON_AddStringToObject(o, "hidden_act", "silu");
    cJSON_AddBoolToObject(o, "attention_bias", false);
    cJSON_AddBoolToObject(o, "mlp_bias", false);
    cJSON_AddStringToObject(o, "torch_dtype", "float32");
    if (c->bos_id >= 0) cJSON_AddNumberToObject(o, "bos_token_id", c->bos_id);
    if (c->eos_id >= 0) cJSON_AddNumberToObject(o, "eos_token_id", c->eos_id);
    char *text;
    ra_status s = ra_json_print(o, true, &text);
    cJSON_Delete(o);
    if (s != RA_OK) return s;
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    s = ra_write_file_atomic(path, text, strlen(text));
    free(text);
    return s;
}

typedef struct {
    char name[96];
    const ra_weight *w;
} named_weight;

static ra_status export_model(const ra_model *m, const char *dir)
{
    const ra_model_config *c = &m->cfg;
    size_t n = 0, cap = 3 + (size_t)c->n_layers * 9;
    named_weight *nw;
    RA_TRY(ra_calloc(&nw, cap, sizeof *nw));
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
    }
    ADD(&m->out_norm, "model.norm.weight");
    if (!c->tied_embeddings) ADD(&m->output, "lm_head.weight");
#undef ADD

    ra_st_tensor *t = NULL;
    float **bufs = NULL;
    ra_status s = ra_calloc(&t, n, sizeof *t);
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
    return s;
}

int ra_cmd_export_hf(int argc, char **argv)
{
    const char *format = "f32", *pos[2] = {0};
    int npos = 0;
    ra_status s = RA_OK;
    for (int i = 1; i < argc && s == RA_OK; i++) {
        if (ra_cli_is_help(argv[i])) { fputs(usage, stdout); return RA_EXIT_OK; }
        if (!strcmp(argv[i], "--format")) {
            if (!(format = ra_cli_value(argc, argv, &i))) s = RA_ERR_USAGE;
        } else if (argv[i][0] == '-') s = ra_fail(RA_ERR_USAGE, "unknown option '%s' (see export-hf --help)", argv[i]);
        else if (npos < 2) pos[npos++] = argv[i];
        else s = ra_fail(RA_ERR_USAGE, "too many arguments (see export-hf --help)");
    }
    if (s == RA_OK && npos != 2) s = ra_fail(RA_ERR_USAGE, "export-hf needs MODEL and OUTDIR (see export-hf --help)");
    const ra_format *f = s == RA_OK ? ra_format_find(format) : NULL;
    if (s == RA_OK && (!f || f->derive == RA_DERIVE_NATIVE))
        s = ra_fail(RA_ERR_USAGE, "export-hf --format is f32 or bf16, not '%s'", format);
    ra_gguf *g = NULL;
    ra_pool *pool = NULL;
    ra_model *m = NULL;
    if (s == RA_OK) s = ra_gguf_open(pos[0], &g);
    if (s == RA_OK) s = ra_pool_new(1, &pool);
    if (s == RA_OK) s = ra_model_load_gguf(g, f, pool, &m);
    if (s == RA_OK) s = ra_mkdirs(pos[1]);
    if (s == RA_OK) s = write_config(pos[1], &m->cfg);
    if (s == RA_OK) s = export_model(m, pos[1]);
    if (s == RA_OK) printf("exported %s (%s) to %s\n", pos[0], f->name, pos[1]);
    ra_model_free(m);
    ra_pool_free(pool);
    ra_gguf_close(g);
    return ra_cli_report(s);
}
