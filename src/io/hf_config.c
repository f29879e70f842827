/* HF config.json for the Llama-family models we run (llama, mistral, qwen2,
 * qwen3), and its quantization_config. Defaults are transformers' own (the
 * family's PretrainedConfig class) where config.json leaves a field out or
 * writes null. Every field read is type-checked; a feature the engine does
 * not compute (MLP bias, partial rotary, a rope scaling type we do not
 * implement, an activation other than SiLU) is refused by name rather than
 * ignored. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io_json.h"
#include "ra/desc.h"
#include "ra/util.h"

typedef struct {
    const char *file;
    const char *prefix; /* "" or "quantization_config." for messages */
} ctx;

static ra_status wrong(const ctx *x, const char *key, const cJSON *v, const char *want)
{
    return ra_fail(RA_ERR_FORMAT, "%s: %s%s is %s, expected %s", x->file, x->prefix, key, ra_io_json_kind(v), want);
}

/* Optional fields: absent or null leave *out alone and set *got false. */
static ra_status get_int(const ctx *x, const cJSON *o, const char *key, int64_t lo, int64_t hi, int64_t *out, bool *got)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (got) *got = false;
    if (!v || cJSON_IsNull(v)) return RA_OK;
    if (!ra_io_json_int(v, lo, hi, out)) {
        char want[64];
        snprintf(want, sizeof want, "an integer in %lld..%lld", (long long)lo, (long long)hi);
        return cJSON_IsNumber(v) ? ra_fail(RA_ERR_FORMAT, "%s: %s%s = %g is not %s", x->file, x->prefix, key,
                                           v->valuedouble, want)
                                 : wrong(x, key, v, want);
    }
    if (got) *got = true;
    return RA_OK;
}

static ra_status get_u32(const ctx *x, const cJSON *o, const char *key, bool required, uint32_t *out)
{
    int64_t v;
    bool got;
    RA_TRY(get_int(x, o, key, 1, UINT32_MAX, &v, &got));
    if (!got && required) return ra_fail(RA_ERR_FORMAT, "%s: missing required field %s%s", x->file, x->prefix, key);
    if (got) *out = (uint32_t)v;
    return RA_OK;
}

static ra_status get_num(const ctx *x, const cJSON *o, const char *key, double *out, bool *got)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (got) *got = false;
    if (!v || cJSON_IsNull(v)) return RA_OK;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) return wrong(x, key, v, "a number");
    *out = v->valuedouble;
    if (got) *got = true;
    return RA_OK;
}

/* A positive number that fits a float. */
static ra_status get_pos_f32(const ctx *x, const cJSON *o, const char *key, bool required, float *out)
{
    double d = 0;
    bool got;
    RA_TRY(get_num(x, o, key, &d, &got));
    if (!got && required) return ra_fail(RA_ERR_FORMAT, "%s: missing required field %s%s", x->file, x->prefix, key);
    if (!got) return RA_OK;
    if (!(d > 0) || d > 3e38) return ra_fail(RA_ERR_FORMAT, "%s: %s%s = %g is not a positive number", x->file, x->prefix, key, d);
    *out = (float)d;
    return RA_OK;
}

static ra_status get_bool(const ctx *x, const cJSON *o, const char *key, bool *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return RA_OK;
    if (!cJSON_IsBool(v)) return wrong(x, key, v, "true or false");
    *out = cJSON_IsTrue(v);
    return RA_OK;
}

/* A short string (lower-cased when fold), copied into buf. */
static ra_status get_str(const ctx *x, const cJSON *o, const char *key, bool fold, char *buf, size_t n, bool *got)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (got) *got = false;
    if (!v || cJSON_IsNull(v)) return RA_OK;
    if (!cJSON_IsString(v)) return wrong(x, key, v, "a string");
    size_t len = strlen(v->valuestring);
    if (len >= n) return ra_fail(RA_ERR_FORMAT, "%s: %s%s is longer than %zu characters", x->file, x->prefix, key, n - 1);
    for (size_t i = 0; i <= len; i++) buf[i] = fold ? (char)tolower((unsigned char)v->valuestring[i]) : v->valuestring[i];
    if (got) *got = true;
    return RA_OK;
}

/* An object or null/absent (*out NULL). */
static ra_status get_obj(const ctx *x, const cJSON *o, const char *key, const cJSON **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    *out = NULL;
    if (!v || cJSON_IsNull(v)) return RA_OK;
    if (!cJSON_IsObject(v)) return wrong(x, key, v, "an object");
    *out = v;
    return RA_OK;
}

/* ---- the model ---- */

typedef struct {
    const char *type;
    uint32_t max_pos;         /* transformers' default max_position_embeddings */
    uint32_t sliding_window;  /* MistralConfig's default window */
    bool qkv_bias;            /* Qwen2 always has q/k/v biases */
} family;

static const family families[] = {
    {"llama", 2048, 0, false},
    {"mistral", 4096 * 32, 4096, false},
    {"qwen2", 32768, 0, true},
    {"qwen3", 32768, 0, false},
};

static ra_status parse_eos(const ctx *x, const cJSON *root, ra_model_config *c)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "eos_token_id");
    if (!v || cJSON_IsNull(v)) return RA_OK;
    if (!cJSON_IsArray(v)) {
        int64_t id;
        RA_TRY(get_int(x, root, "eos_token_id", 0, INT32_MAX, &id, NULL));
        c->eos_ids[c->n_eos++] = (int32_t)id;
        return RA_OK;
    }
    if (cJSON_GetArraySize(v) > RA_MAX_EOS)
        return ra_fail(RA_ERR_UNSUPPORTED, "%s: eos_token_id lists more than %d ids", x->file, RA_MAX_EOS);
    for (const cJSON *e = v->child; e; e = e->next) {
        int64_t id;
        if (!ra_io_json_int(e, 0, INT32_MAX, &id))
            return ra_fail(RA_ERR_FORMAT, "%s: eos_token_id[%u] is not a token id", x->file, c->n_eos);
        c->eos_ids[c->n_eos++] = (int32_t)id;
    }
    return RA_OK;
}

/* rope_scaling (or transformers 5's rope_parameters): what we compute, or a refusal. */
static ra_status parse_rope(const ctx *x0, const cJSON *r, const char *key, ra_model_config *c)
{
    char prefix[48], type[32] = "default";
    snprintf(prefix, sizeof prefix, "%s.", key);
    ctx x = {x0->file, prefix};
    bool got;
    RA_TRY(get_str(&x, r, "rope_type", true, type, sizeof type, &got));
    if (!got) RA_TRY(get_str(&x, r, "type", true, type, sizeof type, NULL));
    double theta;
    RA_TRY(get_num(&x, r, "rope_theta", &theta, &got));
    if (got) RA_TRY(get_pos_f32(&x, r, "rope_theta", true, &c->rope_theta));
    ra_rope_scaling *s = &c->rope;
    if (!strcmp(type, "default")) {
        s->kind = RA_ROPE_DEFAULT;
    } else if (!strcmp(type, "linear")) {
        s->kind = RA_ROPE_LINEAR;
        RA_TRY(get_pos_f32(&x, r, "factor", true, &s->factor));
    } else if (!strcmp(type, "llama3")) {
        s->kind = RA_ROPE_LLAMA3;
        RA_TRY(get_pos_f32(&x, r, "factor", true, &s->factor));
        RA_TRY(get_pos_f32(&x, r, "low_freq_factor", true, &s->low_freq_factor));
        RA_TRY(get_pos_f32(&x, r, "high_freq_factor", true, &s->high_freq_factor));
        RA_TRY(get_u32(&x, r, "original_max_position_embeddings", true, &s->original_max_pos));
        if (s->high_freq_factor <= s->low_freq_factor)
            return ra_fail(RA_ERR_FORMAT, "%s: %shigh_freq_factor must exceed low_freq_factor", x.file, prefix);
    } else {
        return ra_fail(RA_ERR_UNSUPPORTED, "%s: %s type '%s' is not supported (default, linear, llama3)", x.file, key, type);
    }
    return RA_OK;
}

static ra_status parse_model(const ctx *x, const cJSON *root, ra_model_config *c)
{
    bool got;
    RA_TRY(get_str(x, root, "model_type", false, c->arch, sizeof c->arch, &got));
    if (!got) return ra_fail(RA_ERR_FORMAT, "%s: missing required field model_type", x->file);
    const family *fam = NULL;
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
        if (!strcmp(c->arch, families[i].type)) fam = &families[i];
    if (!fam)
        return ra_fail(RA_ERR_UNSUPPORTED, "%s: model_type '%s' is not supported (llama, mistral, qwen2, qwen3)", x->file,
                       c->arch);
    RA_TRY(get_str(x, root, "_name_or_path", false, c->name, sizeof c->name, NULL));
    RA_TRY(get_u32(x, root, "num_hidden_layers", true, &c->n_layers));
    RA_TRY(get_u32(x, root, "hidden_size", true, &c->dim));
    RA_TRY(get_u32(x, root, "intermediate_size", true, &c->ffn_dim));
    RA_TRY(get_u32(x, root, "num_attention_heads", true, &c->n_heads));
    int64_t vocab;
    bool got_vocab;
    RA_TRY(get_int(x, root, "vocab_size", 1, 1 << 24, &vocab, &got_vocab)); /* the tokenizer is padded up to it */
    if (!got_vocab) return ra_fail(RA_ERR_FORMAT, "%s: missing required field vocab_size", x->file);
    c->n_vocab = (uint32_t)vocab;
    c->n_kv_heads = c->n_heads;
    RA_TRY(get_u32(x, root, "num_key_value_heads", false, &c->n_kv_heads));
    RA_TRY(get_u32(x, root, "head_dim", false, &c->head_dim)); /* 0 (absent, null): hidden / heads */
    c->max_seq = fam->max_pos;
    RA_TRY(get_u32(x, root, "max_position_embeddings", false, &c->max_seq));
    c->rms_eps = 1e-6f;
    RA_TRY(get_pos_f32(x, root, "rms_norm_eps", false, &c->rms_eps));
    c->rope_theta = 10000.0f;
    RA_TRY(get_pos_f32(x, root, "rope_theta", false, &c->rope_theta));
    RA_TRY(get_bool(x, root, "tie_word_embeddings", &c->tied_embeddings));
    int64_t id;
    RA_TRY(get_int(x, root, "bos_token_id", 0, INT32_MAX, &id, &got));
    if (got) c->bos_id = (int32_t)id;
    RA_TRY(parse_eos(x, root, c));
    c->eos_id = c->n_eos ? c->eos_ids[0] : -1;

    c->attn_bias = fam->qkv_bias;
    if (!fam->qkv_bias && strcmp(c->arch, "mistral")) RA_TRY(get_bool(x, root, "attention_bias", &c->attn_bias));
    c->qk_norm = !strcmp(c->arch, "qwen3");
    bool mlp_bias = false;
    RA_TRY(get_bool(x, root, "mlp_bias", &mlp_bias));
    if (mlp_bias) return ra_fail(RA_ERR_UNSUPPORTED, "%s: mlp_bias is true; MLP biases are not supported", x->file);
    char act[32] = "silu";
    RA_TRY(get_str(x, root, "hidden_act", false, act, sizeof act, NULL));
    if (strcmp(act, "silu"))
        return ra_fail(RA_ERR_UNSUPPORTED, "%s: hidden_act '%s' is not supported (silu)", x->file, act);
    double partial = 1;
    RA_TRY(get_num(x, root, "partial_rotary_factor", &partial, NULL));
    if (partial != 1)
        return ra_fail(RA_ERR_UNSUPPORTED, "%s: partial_rotary_factor %g is not supported (1)", x->file, partial);
    RA_TRY(get_str(x, root, "torch_dtype", false, c->dtype, sizeof c->dtype, &got));
    if (!got) RA_TRY(get_str(x, root, "dtype", false, c->dtype, sizeof c->dtype, NULL));

    /* Sliding window: mistral always (null: none); qwen only with use_sliding_window. */
    bool use_window = !strcmp(c->arch, "mistral");
    RA_TRY(get_bool(x, root, "use_sliding_window", &use_window));
    int64_t window = fam->sliding_window;
    if (use_window) {
        const cJSON *w = cJSON_GetObjectItemCaseSensitive(root, "sliding_window");
        if (w && cJSON_IsNull(w)) window = 0;
        else RA_TRY(get_int(x, root, "sliding_window", 1, UINT32_MAX, &window, NULL));
        c->sliding_window = (uint32_t)window;
    }

    const cJSON *rope;
    RA_TRY(get_obj(x, root, "rope_parameters", &rope));
    if (rope) RA_TRY(parse_rope(x, rope, "rope_parameters", c));
    RA_TRY(get_obj(x, root, "rope_scaling", &rope));
    if (rope) RA_TRY(parse_rope(x, rope, "rope_scaling", c));
    return RA_OK;
}

/* ---- quantization_config ---- */

static ra_status get_strings(const ctx *x, const cJSON *o, const char *key, ra_quant_config *q)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return RA_OK;
    if (!cJSON_IsArray(v)) return wrong(x, key, v, "an array of strings");
    size_t n = (size_t)cJSON_GetArraySize(v);
    RA_TRY(ra_calloc(&q->ignore, n ? n : 1, sizeof *q->ignore));
    for (const cJSON *e = v->child; e; e = e->next) {
        if (!cJSON_IsString(e)) return wrong(x, key, v, "an array of strings");
        RA_TRY(ra_strdup(&q->ignore[q->n_ignore++], e->valuestring));
    }
    return RA_OK;
}

static ra_status get_bits(const ctx *x, const cJSON *o, const char *key, ra_quant_args *a)
{
    int64_t bits = 0;
    bool got;
    RA_TRY(get_int(x, o, key, 1, 32, &bits, &got));
    if (!got) return ra_fail(RA_ERR_FORMAT, "%s: missing required field %s%s", x->file, x->prefix, key);
    a->num_bits = (uint32_t)bits;
    return RA_OK;
}

/* Integer weights in groups (AWQ, GPTQ): {bits, group_size (-1: per channel)}. */
static ra_status int_weights(const ctx *x, const cJSON *o, ra_quant_args *w)
{
    w->present = true;
    snprintf(w->type, sizeof w->type, "int");
    RA_TRY(get_bits(x, o, "bits", w));
    int64_t g = -1;
    RA_TRY(get_int(x, o, "group_size", -1, 1 << 20, &g, NULL));
    if (g == 0) return ra_fail(RA_ERR_FORMAT, "%s: %sgroup_size is 0", x->file, x->prefix);
    w->group_size = (int32_t)g;
    snprintf(w->strategy, sizeof w->strategy, "%s", g > 0 ? "group" : "channel");
    return RA_OK;
}

/* AutoAWQ: {bits, group_size, zero_point, version (gemm, gemv, ...), modules_to_not_convert}. */
static ra_status parse_awq(const ctx *x, const cJSON *o, ra_quant_config *q)
{
    ra_quant_args *w = &q->weights;
    RA_TRY(int_weights(x, o, w));
    q->zero_point = true;
    RA_TRY(get_bool(x, o, "zero_point", &q->zero_point));
    w->symmetric = !q->zero_point;
    snprintf(q->layout, sizeof q->layout, "gemm");
    RA_TRY(get_str(x, o, "version", true, q->layout, sizeof q->layout, NULL));
    RA_TRY(get_strings(x, o, "modules_to_not_convert", q));
    if (!strcmp(q->layout, "gemm") && w->num_bits == 4) snprintf(q->format, sizeof q->format, "awq");
    snprintf(q->summary, sizeof q->summary, "AutoAWQ %s, %u bits, group %d, %s", q->layout, w->num_bits, w->group_size,
             q->zero_point ? "zero points" : "symmetric");
    return RA_OK;
}

/* GPTQ: {bits, group_size, desc_act, sym, checkpoint_format (gptq = v1, gptq_v2)}. */
static ra_status parse_gptq(const ctx *x, const cJSON *o, ra_quant_config *q)
{
    ra_quant_args *w = &q->weights;
    RA_TRY(int_weights(x, o, w));
    w->symmetric = true;
    RA_TRY(get_bool(x, o, "sym", &w->symmetric));
    RA_TRY(get_bool(x, o, "desc_act", &q->desc_act));
    snprintf(q->layout, sizeof q->layout, "gptq");
    RA_TRY(get_str(x, o, "checkpoint_format", true, q->layout, sizeof q->layout, NULL));
    if (strcmp(q->layout, "gptq") && strcmp(q->layout, "gptq_v2") && strcmp(q->layout, "marlin"))
        return ra_fail(RA_ERR_UNSUPPORTED, "%s: %scheckpoint_format '%s' is not known (gptq, gptq_v2, marlin)", x->file,
                       x->prefix, q->layout);
    if (strcmp(q->layout, "marlin") && (w->num_bits == 4 || w->num_bits == 8)) snprintf(q->format, sizeof q->format, "gptq");
    snprintf(q->summary, sizeof q->summary, "GPTQ %s, %u bits, group %d, %s%s", q->layout, w->num_bits, w->group_size,
             w->symmetric ? "symmetric" : "asymmetric", q->desc_act ? ", act-order" : "");
    return RA_OK;
}

/* compressed-tensors QuantizationArgs. */
static ra_status parse_args(const ctx *x0, const cJSON *g, const char *key, ra_quant_args *a)
{
    const cJSON *o;
    RA_TRY(get_obj(x0, g, key, &o));
    if (!o) return RA_OK;
    char prefix[96];
    snprintf(prefix, sizeof prefix, "%s%s.", x0->prefix, key);
    ctx x = {x0->file, prefix};
    a->present = true;
    RA_TRY(get_bits(&x, o, "num_bits", a));
    snprintf(a->type, sizeof a->type, "int");
    RA_TRY(get_str(&x, o, "type", true, a->type, sizeof a->type, NULL));
    if (strcmp(a->type, "int") && strcmp(a->type, "float"))
        return ra_fail(RA_ERR_FORMAT, "%s: %stype '%s' is neither int nor float", x.file, prefix, a->type);
    a->symmetric = true;
    RA_TRY(get_bool(&x, o, "symmetric", &a->symmetric));
    const cJSON *dyn = cJSON_GetObjectItemCaseSensitive(o, "dynamic"); /* NVFP4 activations: "local" */
    if (cJSON_IsString(dyn) && !strcmp(dyn->valuestring, "local")) a->dynamic = true;
    else RA_TRY(get_bool(&x, o, "dynamic", &a->dynamic));
    int64_t gs = -1;
    RA_TRY(get_int(&x, o, "group_size", 1, 1 << 20, &gs, NULL));
    a->group_size = (int32_t)gs;
    snprintf(a->strategy, sizeof a->strategy, "%s", gs > 0 ? "group" : "tensor");
    RA_TRY(get_str(&x, o, "strategy", true, a->strategy, sizeof a->strategy, NULL));
    const cJSON *bs = cJSON_GetObjectItemCaseSensitive(o, "block_structure");
    if (bs && !cJSON_IsNull(bs)) {
        int64_t r, c;
        if (!cJSON_IsArray(bs) || cJSON_GetArraySize(bs) != 2 || !ra_io_json_int(bs->child, 1, 1 << 20, &r) ||
            !ra_io_json_int(bs->child->next, 1, 1 << 20, &c))
            return wrong(&x, "block_structure", bs, "two positive integers");
        a->block[0] = (uint32_t)r;
        a->block[1] = (uint32_t)c;
    }
    const cJSON *ao = cJSON_GetObjectItemCaseSensitive(o, "actorder");
    if (cJSON_IsBool(ao)) snprintf(a->actorder, sizeof a->actorder, "%s", cJSON_IsTrue(ao) ? "group" : "");
    else RA_TRY(get_str(&x, o, "actorder", true, a->actorder, sizeof a->actorder, NULL));
    return RA_OK;
}

/* compressed-tensors (llm-compressor): {format, config_groups {name: {targets,
 * weights, input_activations}}, ignore, kv_cache_scheme}. */
static ra_status parse_compressed(const ctx *x, const cJSON *o, ra_quant_config *q)
{
    RA_TRY(get_str(x, o, "format", false, q->layout, sizeof q->layout, NULL));
    RA_TRY(get_strings(x, o, "ignore", q));
    const cJSON *groups, *kv;
    RA_TRY(get_obj(x, o, "config_groups", &groups));
    RA_TRY(get_obj(x, o, "kv_cache_scheme", &kv));
    for (const cJSON *g = groups ? groups->child : NULL; g; g = g->next, q->n_groups++) {
        char prefix[96];
        snprintf(prefix, sizeof prefix, "%sconfig_groups.%.40s.", x->prefix, g->string);
        ctx gx = {x->file, prefix};
        if (!cJSON_IsObject(g)) return ra_fail(RA_ERR_FORMAT, "%s: %.*s is %s, expected an object", x->file,
                                               (int)strlen(prefix) - 1, prefix, ra_io_json_kind(g));
        ra_quant_args w = {0}, in = {0};
        RA_TRY(parse_args(&gx, g, "weights", &w));
        RA_TRY(parse_args(&gx, g, "input_activations", &in));
        if (q->n_groups == 0) {
            q->weights = w;
            q->input = in;
        }
        char fmt[32] = "";
        RA_TRY(get_str(&gx, g, "format", false, fmt, sizeof fmt, NULL));
        if (fmt[0] && !q->layout[0]) snprintf(q->layout, sizeof q->layout, "%s", fmt);
    }
    const ra_quant_args *w = &q->weights, *in = &q->input;
    const char *f = "";
    if (!strcmp(q->layout, "pack-quantized") && w->present && !strcmp(w->type, "int") && w->num_bits == 4 && !in->present)
        f = "w4a16";
    else if (!strcmp(q->layout, "float-quantized") && w->present && !strcmp(w->type, "float") && w->num_bits == 8)
        f = "fp8";
    else if (!strcmp(q->layout, "nvfp4-pack-quantized")) f = "nvfp4";
    else if (!strcmp(q->layout, "mxfp4-pack-quantized")) f = "mxfp4";
    if (q->n_groups != 1 || kv) f = ""; /* mixed schemes and quantized KV caches: none of ours yet */
    snprintf(q->format, sizeof q->format, "%s", f);
    char acts[48] = "";
    if (in->present) snprintf(acts, sizeof acts, ", activations %s %u bits%s", in->type, in->num_bits, in->dynamic ? " dynamic" : "");
    snprintf(q->summary, sizeof q->summary, "compressed-tensors %s, %u group%s, weights %s %u bits %s%s%s%s",
             q->layout[0] ? q->layout : "(no format)", q->n_groups, q->n_groups == 1 ? "" : "s", w->present ? w->type : "-",
             w->num_bits, w->strategy, w->symmetric ? " symmetric" : "", acts, kv ? ", quantized KV cache" : "");
    return RA_OK;
}

/* Fine-grained FP8 (DeepSeek style): {fmt e4m3, activation_scheme, weight_block_size}. */
static ra_status parse_fp8(const ctx *x, const cJSON *o, ra_quant_config *q)
{
    ra_quant_args *w = &q->weights;
    w->present = true;
    w->num_bits = 8;
    snprintf(w->type, sizeof w->type, "float");
    char fmt[16] = "e4m3", act[16] = "dynamic";
    RA_TRY(get_str(x, o, "fmt", true, fmt, sizeof fmt, NULL));
    RA_TRY(get_str(x, o, "activation_scheme", true, act, sizeof act, NULL));
    RA_TRY(get_strings(x, o, "modules_to_not_convert", q));
    snprintf(w->strategy, sizeof w->strategy, "channel");
    const cJSON *bs = cJSON_GetObjectItemCaseSensitive(o, "weight_block_size");
    if (bs && !cJSON_IsNull(bs)) {
        int64_t r, c;
        if (!cJSON_IsArray(bs) || cJSON_GetArraySize(bs) != 2 || !ra_io_json_int(bs->child, 1, 1 << 20, &r) ||
            !ra_io_json_int(bs->child->next, 1, 1 << 20, &c))
            return wrong(x, "weight_block_size", bs, "two positive integers");
        w->block[0] = (uint32_t)r;
        w->block[1] = (uint32_t)c;
        snprintf(w->strategy, sizeof w->strategy, "block");
    }
    q->input.present = true;
    q->input.num_bits = 8;
    q->input.dynamic = !strcmp(act, "dynamic");
    snprintf(q->input.type, sizeof q->input.type, "float");
    snprintf(q->layout, sizeof q->layout, "weight_scale_inv");
    if (!strcmp(fmt, "e4m3")) snprintf(q->format, sizeof q->format, "fp8");
    char scales[40] = "per-channel scales";
    if (w->block[0]) snprintf(scales, sizeof scales, "%ux%u block scales", w->block[0], w->block[1]);
    snprintf(q->summary, sizeof q->summary, "fine-grained FP8 %s, %s, %s activations", fmt, scales, act);
    return RA_OK;
}

static ra_status parse_quant(const ctx *x0, const cJSON *o, ra_quant_config *q)
{
    ctx x = {x0->file, "quantization_config."};
    bool got;
    RA_TRY(get_str(&x, o, "quant_method", true, q->method_name, sizeof q->method_name, &got));
    if (!got || !q->method_name[0]) return ra_fail(RA_ERR_FORMAT, "%s: quantization_config has no quant_method", x.file);
    const char *m = q->method_name;
    if (!strcmp(m, "awq")) {
        q->method = RA_QUANT_AWQ;
        return parse_awq(&x, o, q);
    }
    if (!strcmp(m, "gptq")) {
        q->method = RA_QUANT_GPTQ;
        return parse_gptq(&x, o, q);
    }
    if (!strcmp(m, "compressed-tensors")) {
        q->method = RA_QUANT_COMPRESSED;
        return parse_compressed(&x, o, q);
    }
    if (!strcmp(m, "fp8")) {
        q->method = RA_QUANT_FP8;
        return parse_fp8(&x, o, q);
    }
    if (!strcmp(m, "mxfp4")) {
        q->method = RA_QUANT_MXFP4;
        snprintf(q->format, sizeof q->format, "mxfp4");
        snprintf(q->summary, sizeof q->summary, "MXFP4 (E2M1 blocks of 32, E8M0 scales)");
        return get_strings(&x, o, "modules_to_not_convert", q);
    }
    q->method = RA_QUANT_OTHER;
    snprintf(q->summary, sizeof q->summary, "quant_method '%s', which repro-audit does not know", m);
    return RA_OK;
}

ra_status ra_hf_config_parse(const char *text, size_t len, const char *name, ra_model_config *c, ra_quant_config *q)
{
    memset(c, 0, sizeof *c);
    memset(q, 0, sizeof *q);
    c->bos_id = c->eos_id = -1;
    q->weights.group_size = q->input.group_size = -1;
    cJSON *root;
    RA_TRY(ra_io_json_parse(text, len, name, 0, &root));
    ctx x = {name, ""};
    ra_status s = RA_OK;
    if (!cJSON_IsObject(root)) s = ra_fail(RA_ERR_FORMAT, "%s: not a JSON object", name);
    if (s == RA_OK) s = parse_model(&x, root, c);
    const cJSON *qc = NULL;
    if (s == RA_OK) s = get_obj(&x, root, "quantization_config", &qc);
    if (s == RA_OK && qc) s = parse_quant(&x, qc, q);
    cJSON_Delete(root);
    if (s != RA_OK) ra_quant_config_free(q);
    return s;
}

/* ---- writing ---- */

ra_status ra_hf_config_write(const char *dir, const ra_model_config *c)
{
    return ra_hf_config_write_ext(dir, c, "float32", NULL);
}

ra_status ra_hf_config_write_ext(const char *dir, const ra_model_config *c, const char *torch_dtype, void *quant_config)
{
    cJSON *qc = quant_config;
    static const char *const classes[][2] = {{"llama", "LlamaForCausalLM"}, {"mistral", "MistralForCausalLM"},
                                             {"qwen2", "Qwen2ForCausalLM"}, {"qwen3", "Qwen3ForCausalLM"}};
    const char *cls = NULL;
    for (size_t i = 0; i < sizeof classes / sizeof classes[0]; i++)
        if (!strcmp(c->arch, classes[i][0])) cls = classes[i][1];
    if (!cls) {
        cJSON_Delete(qc);
        return ra_fail(RA_ERR_UNSUPPORTED, "architecture '%s' has no HF config", c->arch);
    }
    if (c->qk_norm != !strcmp(c->arch, "qwen3") || (c->attn_bias && !strcmp(c->arch, "mistral")) ||
        (!c->attn_bias && !strcmp(c->arch, "qwen2")))
        return cJSON_Delete(qc), ra_fail(RA_ERR_UNSUPPORTED, "a %s model with%s QK-norm and with%s q/k/v biases has no "
                                         "HF config", c->arch, c->qk_norm ? "" : "out", c->attn_bias ? "" : "out");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "architectures"), cJSON_CreateString(cls));
    cJSON_AddStringToObject(o, "model_type", c->arch);
    cJSON_AddNumberToObject(o, "hidden_size", c->dim);
    cJSON_AddNumberToObject(o, "intermediate_size", c->ffn_dim);
    cJSON_AddNumberToObject(o, "num_hidden_layers", c->n_layers);
    cJSON_AddNumberToObject(o, "num_attention_heads", c->n_heads);
    cJSON_AddNumberToObject(o, "num_key_value_heads", c->n_kv_heads);
    if (c->head_dim) cJSON_AddNumberToObject(o, "head_dim", c->head_dim);
    cJSON_AddNumberToObject(o, "rms_norm_eps", c->rms_eps);
    cJSON_AddNumberToObject(o, "rope_theta", c->rope_theta);
    if (c->rope.kind != RA_ROPE_DEFAULT) {
        cJSON *r = cJSON_AddObjectToObject(o, "rope_scaling");
        cJSON_AddStringToObject(r, "rope_type", c->rope.kind == RA_ROPE_LINEAR ? "linear" : "llama3");
        cJSON_AddNumberToObject(r, "factor", c->rope.factor);
        if (c->rope.kind == RA_ROPE_LLAMA3) {
            cJSON_AddNumberToObject(r, "low_freq_factor", c->rope.low_freq_factor);
            cJSON_AddNumberToObject(r, "high_freq_factor", c->rope.high_freq_factor);
            cJSON_AddNumberToObject(r, "original_max_position_embeddings", c->rope.original_max_pos);
        }
    }
    cJSON_AddNumberToObject(o, "vocab_size", c->n_vocab);
    cJSON_AddNumberToObject(o, "max_position_embeddings", c->max_seq);
    if (c->sliding_window) {
        cJSON_AddBoolToObject(o, "use_sliding_window", true);
        cJSON_AddNumberToObject(o, "sliding_window", c->sliding_window);
    } else if (!strcmp(c->arch, "mistral")) {
        cJSON_AddNullToObject(o, "sliding_window");
    }
    cJSON_AddBoolToObject(o, "tie_word_embeddings", c->tied_embeddings);
    cJSON_AddStringToObject(o, "hidden_act", "silu");
    cJSON_AddBoolToObject(o, "attention_bias", c->attn_bias);
    cJSON_AddBoolToObject(o, "mlp_bias", false);
    cJSON_AddStringToObject(o, "torch_dtype", torch_dtype);
    if (qc) cJSON_AddItemToObject(o, "quantization_config", qc);
    if (c->bos_id >= 0) cJSON_AddNumberToObject(o, "bos_token_id", c->bos_id);
    if (c->n_eos == 1) cJSON_AddNumberToObject(o, "eos_token_id", c->eos_ids[0]);
    else if (c->n_eos > 1) cJSON_AddItemToObject(o, "eos_token_id", cJSON_CreateIntArray(c->eos_ids, (int)c->n_eos));
    ra_status s = ra_io_json_write(dir, "config.json", o, true);
    cJSON_Delete(o);
    return s;
}
