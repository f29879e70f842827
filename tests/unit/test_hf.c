/* HF checkpoints on hand-built files: config.json and quantization_config
 * parsing (every family, every quantization scheme we detect, fields of the
 * wrong type, missing fields, features we refuse), tokenizer.json (both merge
 * forms, added tokens, templates, refusals), and whole checkpoint directories:
 * single file and sharded, loaded and run, and malformed ones refused with a
 * message naming the file and the tensor. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "ra/cpu.h"
#include "ra/desc.h"
#include "ra/engine.h"
#include "ra/model.h"
#include "ra/safetensors.h"
#include "ra/tokenizer.h"
#include "ra/util.h"

/* ---- config.json ---- */

#define LLAMA_CORE "\"model_type\": \"llama\", \"hidden_size\": 64, \"intermediate_size\": 128, \"num_hidden_layers\": 2, " \
                   "\"num_attention_heads\": 4, \"vocab_size\": 300"

static ra_status parse(const char *json, ra_model_config *c, ra_quant_config *q)
{
    ra_status s = ra_hf_config_parse(json, strlen(json), "x/config.json", c, q);
    if (s == RA_OK) ra_quant_config_free(q);
    return s;
}

static void expect_config_fail(const char *json, ra_status want, const char *w1, const char *w2)
{
    ra_model_config c;
    ra_quant_config q;
    ra_status s = parse(json, &c, &q);
    CHECK_MSG(s == want, "%s: got %s (%s), want %s", json, ra_status_name(s), ra_errmsg(), ra_status_name(want));
    CHECK_MSG(strstr(ra_errmsg(), "x/config.json") != NULL, "message does not name the file: %s", ra_errmsg());
    if (w1) CHECK_MSG(strstr(ra_errmsg(), w1) != NULL, "message lacks '%s': %s", w1, ra_errmsg());
    if (w2) CHECK_MSG(strstr(ra_errmsg(), w2) != NULL, "message lacks '%s': %s", w2, ra_errmsg());
}

static void test_config_families(void)
{
    ra_model_config c;
    ra_quant_config q;
    CHECK_OK(parse("{" LLAMA_CORE ", \"num_key_value_heads\": 2, \"rms_norm_eps\": 1e-05, \"rope_theta\": 500000.0,"
                   "\"max_position_embeddings\": 4096, \"tie_word_embeddings\": true, \"bos_token_id\": 1,"
                   "\"eos_token_id\": [2, 7], \"torch_dtype\": \"bfloat16\", \"head_dim\": null, \"hidden_act\": \"silu\","
                   "\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0,"
                   "\"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 8192}}",
                   &c, &q));
    CHECK(!strcmp(c.arch, "llama") && c.dim == 64 && c.ffn_dim == 128 && c.n_layers == 2 && c.n_heads == 4);
    CHECK(c.n_kv_heads == 2 && c.head_dim == 0 && c.n_vocab == 300 && c.max_seq == 4096 && c.tied_embeddings);
    CHECK(c.rms_eps == 1e-5f && c.rope_theta == 500000.0f && !strcmp(c.dtype, "bfloat16"));
    CHECK(c.bos_id == 1 && c.n_eos == 2 && c.eos_ids[0] == 2 && c.eos_ids[1] == 7 && c.eos_id == 2);
    CHECK(c.rope.kind == RA_ROPE_LLAMA3 && c.rope.factor == 8 && c.rope.original_max_pos == 8192);
    CHECK(!c.attn_bias && !c.qk_norm && q.method == RA_QUANT_NONE);

    /* transformers' defaults where the file is silent */
    CHECK_OK(parse("{" LLAMA_CORE "}", &c, &q));
    CHECK(c.n_kv_heads == 4 && c.max_seq == 2048 && c.rms_eps == 1e-6f && c.rope_theta == 10000.0f);
    CHECK(!c.tied_embeddings && c.bos_id == -1 && c.n_eos == 0 && c.rope.kind == RA_ROPE_DEFAULT);
    CHECK_OK(parse("{" LLAMA_CORE ", \"attention_bias\": true, \"rope_scaling\": {\"type\": \"linear\", \"factor\": 2}}", &c, &q));
    CHECK(c.attn_bias && c.rope.kind == RA_ROPE_LINEAR && c.rope.factor == 2);
    CHECK_OK(parse("{" LLAMA_CORE ", \"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": 1000000}}", &c, &q));
    CHECK(c.rope_theta == 1e6f && c.rope.kind == RA_ROPE_DEFAULT);

    CHECK_OK(parse("{\"model_type\": \"mistral\", \"hidden_size\": 64, \"intermediate_size\": 128, \"num_hidden_layers\": 2,"
                   "\"num_attention_heads\": 4, \"vocab_size\": 300}", &c, &q));
    CHECK(c.sliding_window == 4096 && c.max_seq == 131072 && !c.attn_bias); /* MistralConfig's defaults */
    CHECK_OK(parse("{\"model_type\": \"mistral\", \"hidden_size\": 64, \"intermediate_size\": 128, \"num_hidden_layers\": 2,"
                   "\"num_attention_heads\": 4, \"vocab_size\": 300, \"sliding_window\": null}", &c, &q));
    CHECK(c.sliding_window == 0);
    CHECK_OK(parse("{\"model_type\": \"qwen2\", \"hidden_size\": 64, \"intermediate_size\": 128, \"num_hidden_layers\": 2,"
                   "\"num_attention_heads\": 4, \"vocab_size\": 300, \"sliding_window\": 4096, \"use_sliding_window\": false}",
                   &c, &q));
    CHECK(c.attn_bias && !c.qk_norm && c.sliding_window == 0 && c.max_seq == 32768);
    CHECK_OK(parse("{\"model_type\": \"qwen3\", \"hidden_size\": 64, \"intermediate_size\": 128, \"num_hidden_layers\": 2,"
                   "\"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"head_dim\": 32, \"vocab_size\": 300}", &c, &q));
    CHECK(c.qk_norm && !c.attn_bias && c.head_dim == 32);
}

static void test_config_errors(void)
{
    expect_config_fail("{\"hidden_size\": 64}", RA_ERR_FORMAT, "model_type", NULL);
    expect_config_fail("{\"model_type\": \"gemma\"}", RA_ERR_UNSUPPORTED, "gemma", NULL);
    static const char *const required[] = {"hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                                           "vocab_size"};
    for (size_t i = 0; i < 5; i++) {
        char json[512];
        int n = snprintf(json, sizeof json, "{\"model_type\": \"llama\"");
        for (size_t k = 0; k < 5; k++)
            if (k != i) n += snprintf(json + n, sizeof json - (size_t)n, ", \"%s\": 8", required[k]);
        snprintf(json + n, sizeof json - (size_t)n, "}");
        expect_config_fail(json, RA_ERR_FORMAT, "missing required field", required[i]);
    }
    expect_config_fail("{\"model_type\": \"llama\", \"hidden_size\": \"64\", \"intermediate_size\": 128, \"num_hidden_layers\": 2, "
                       "\"num_attention_heads\": 4, \"vocab_size\": 300}", RA_ERR_FORMAT, "hidden_size is a string", NULL);
    expect_config_fail("{\"model_type\": \"llama\", \"hidden_size\": 64, \"intermediate_size\": 128, \"num_hidden_layers\": 2, "
                       "\"num_attention_heads\": 4, \"vocab_size\": 33554432}", RA_ERR_FORMAT, "vocab_size", NULL);
    expect_config_fail("{" LLAMA_CORE ", \"num_key_value_heads\": 1.5}", RA_ERR_FORMAT, "num_key_value_heads", NULL);
    expect_config_fail("{" LLAMA_CORE ", \"num_key_value_heads\": 0}", RA_ERR_FORMAT, "num_key_value_heads", NULL);
    expect_config_fail("{" LLAMA_CORE ", \"tie_word_embeddings\": \"yes\"}", RA_ERR_FORMAT, "tie_word_embeddings", NULL);
    expect_config_fail("{" LLAMA_CORE ", \"rms_norm_eps\": \"1e-5\"}", RA_ERR_FORMAT, "rms_norm_eps", NULL);
    expect_config_fail("{" LLAMA_CORE ", \"rope_theta\": -1}", RA_ERR_FORMAT, "rope_theta", NULL);
    expect_config_fail("{" LLAMA_CORE ", \"eos_token_id\": [2, \"x\"]}", RA_ERR_FORMAT, "eos_token_id[1]", NULL);
    expect_config_fail("{" LLAMA_CORE ", \"eos_token_id\": -3}", RA_ERR_FORMAT, "eos_token_id", NULL);
    expect_config_fail("{\"model_type\": 3}", RA_ERR_FORMAT, "model_type", NULL);
    expect_config_fail("{" LLAMA_CORE ", \"rope_scaling\": [1]}", RA_ERR_FORMAT, "rope_scaling is an array", NULL);
    expect_config_fail("{" LLAMA_CORE ", \"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4}}", RA_ERR_UNSUPPORTED,
                       "rope_scaling", "yarn");
    expect_config_fail("{" LLAMA_CORE ", \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8}}", RA_ERR_FORMAT,
                       "rope_scaling.low_freq_factor", NULL);
    expect_config_fail("{" LLAMA_CORE ", \"mlp_bias\": true}", RA_ERR_UNSUPPORTED, "mlp_bias", NULL);
    expect_config_fail("{" LLAMA_CORE ", \"hidden_act\": \"gelu\"}", RA_ERR_UNSUPPORTED, "gelu", NULL);
    expect_config_fail("{" LLAMA_CORE ", \"partial_rotary_factor\": 0.5}", RA_ERR_UNSUPPORTED, "partial_rotary_factor", NULL);
    expect_config_fail("[1]", RA_ERR_FORMAT, "not a JSON object", NULL);
    expect_config_fail("{\"model_type\": \"lla\x01ma\"}", RA_ERR_FORMAT, "control character 0x01", "byte 19");
    expect_config_fail("{" LLAMA_CORE ", \"quantization_config\": {\"quant_method\": \"\\u0000awq\"}}", RA_ERR_FORMAT,
                       "NUL character", NULL);
    expect_config_fail("{\"model_type\": ", RA_ERR_FORMAT, "not valid JSON", NULL);
    expect_config_fail("{" LLAMA_CORE ", \"hidden_size\": 64}", RA_ERR_FORMAT, "duplicate key \"hidden_size\"", NULL);
    expect_config_fail("{" LLAMA_CORE ", \"quantization_config\": {\"bits\": 4}}", RA_ERR_FORMAT, "quant_method", NULL);
    expect_config_fail("{" LLAMA_CORE ", \"quantization_config\": {\"quant_method\": \"gptq\", \"bits\": \"4\"}}",
                       RA_ERR_FORMAT, "quantization_config.bits", NULL);
    expect_config_fail("{" LLAMA_CORE ", \"quantization_config\": {\"quant_method\": \"compressed-tensors\", "
                       "\"config_groups\": {\"group_0\": {\"weights\": {\"num_bits\": 4, \"type\": \"complex\"}}}}}",
                       RA_ERR_FORMAT, "config_groups.group_0.weights.type", NULL);
    expect_config_fail("{" LLAMA_CORE ", \"quantization_config\": {\"quant_method\": \"compressed-tensors\", "
                       "\"config_groups\": {\"group_0\": 5}}}", RA_ERR_FORMAT, "config_groups.group_0", NULL);
    expect_config_fail("{" LLAMA_CORE ", \"quantization_config\": {\"quant_method\": \"awq\", \"bits\": 4, "
                       "\"modules_to_not_convert\": [1]}}", RA_ERR_FORMAT, "modules_to_not_convert", NULL);
}

/* The quantization_config of a real-looking checkpoint of each kind. */
static void expect_quant(const char *qc, ra_quant_method method, const char *format, const char *layout, uint32_t bits,
                         int32_t group)
{
    char json[2048];
    snprintf(json, sizeof json, "{" LLAMA_CORE ", \"quantization_config\": %s}", qc);
    ra_model_config c;
    ra_quant_config q;
    ra_status s = ra_hf_config_parse(json, strlen(json), "q/config.json", &c, &q);
    CHECK_MSG(s == RA_OK, "%s: %s", qc, ra_errmsg());
    if (s != RA_OK) return;
    CHECK_MSG(q.method == method && !strcmp(q.format, format) && !strcmp(q.layout, layout) && q.weights.num_bits == bits &&
                  q.weights.group_size == group,
              "%s: method %d format '%s' layout '%s' bits %u group %d (%s)", qc, (int)q.method, q.format, q.layout,
              q.weights.num_bits, q.weights.group_size, q.summary);
    CHECK(q.summary[0] != 0);
    ra_quant_config_free(&q);
}

static void test_quant_detection(void)
{
    expect_quant("{\"quant_method\": \"awq\", \"bits\": 4, \"group_size\": 128, \"zero_point\": true, \"version\": \"GEMM\","
                 "\"modules_to_not_convert\": null}", RA_QUANT_AWQ, "awq", "gemm", 4, 128);
    expect_quant("{\"quant_method\": \"awq\", \"bits\": 4, \"group_size\": 64, \"version\": \"gemv\"}", RA_QUANT_AWQ, "",
                 "gemv", 4, 64);
    expect_quant("{\"quant_method\": \"gptq\", \"bits\": 4, \"group_size\": 128, \"desc_act\": true, \"sym\": true,"
                 "\"damp_percent\": 0.01, \"true_sequential\": true}", RA_QUANT_GPTQ, "gptq", "gptq", 4, 128);
    expect_quant("{\"quant_method\": \"gptq\", \"bits\": 8, \"group_size\": -1, \"sym\": false, \"checkpoint_format\": "
                 "\"gptq_v2\"}", RA_QUANT_GPTQ, "gptq", "gptq_v2", 8, -1);
    expect_quant("{\"quant_method\": \"gptq\", \"bits\": 4, \"group_size\": 128, \"checkpoint_format\": \"marlin\"}",
                 RA_QUANT_GPTQ, "", "marlin", 4, 128);
    expect_quant("{\"quant_method\": \"compressed-tensors\", \"format\": \"pack-quantized\", \"quantization_status\": "
                 "\"compressed\", \"ignore\": [\"lm_head\"], \"kv_cache_scheme\": null, \"config_groups\": {\"group_0\": "
                 "{\"targets\": [\"Linear\"], \"input_activations\": null, \"output_activations\": null, \"weights\": "
                 "{\"num_bits\": 4, \"type\": \"int\", \"symmetric\": true, \"strategy\": \"group\", \"group_size\": 128, "
                 "\"dynamic\": false, \"actorder\": null, \"block_structure\": null, \"observer\": \"minmax\"}}}}",
                 RA_QUANT_COMPRESSED, "w4a16", "pack-quantized", 4, 128);
    expect_quant("{\"quant_method\": \"compressed-tensors\", \"format\": \"float-quantized\", \"config_groups\": "
                 "{\"group_0\": {\"targets\": [\"Linear\"], \"weights\": {\"num_bits\": 8, \"type\": \"float\", \"symmetric\": "
                 "true, \"strategy\": \"channel\", \"dynamic\": false}, \"input_activations\": {\"num_bits\": 8, \"type\": "
                 "\"float\", \"strategy\": \"token\", \"dynamic\": true, \"symmetric\": true}}}}",
                 RA_QUANT_COMPRESSED, "fp8", "float-quantized", 8, -1);
    expect_quant("{\"quant_method\": \"compressed-tensors\", \"format\": \"nvfp4-pack-quantized\", \"config_groups\": "
                 "{\"group_0\": {\"targets\": [\"Linear\"], \"weights\": {\"num_bits\": 4, \"type\": \"float\", \"strategy\": "
                 "\"tensor_group\", \"group_size\": 16, \"symmetric\": true}, \"input_activations\": {\"num_bits\": 4, \"type\": "
                 "\"float\", \"strategy\": \"tensor_group\", \"group_size\": 16, \"dynamic\": \"local\"}}}}",
                 RA_QUANT_COMPRESSED, "nvfp4", "nvfp4-pack-quantized", 4, 16);
    expect_quant("{\"quant_method\": \"compressed-tensors\", \"format\": \"int-quantized\", \"config_groups\": {\"group_0\": "
                 "{\"weights\": {\"num_bits\": 8, \"type\": \"int\", \"strategy\": \"channel\"}}}}",
                 RA_QUANT_COMPRESSED, "", "int-quantized", 8, -1);
    expect_quant("{\"quant_method\": \"fp8\", \"fmt\": \"e4m3\", \"activation_scheme\": \"dynamic\", \"weight_block_size\": "
                 "[128, 128]}", RA_QUANT_FP8, "fp8", "weight_scale_inv", 8, -1);
    expect_quant("{\"quant_method\": \"mxfp4\", \"modules_to_not_convert\": [\"model.layers.*.self_attn\", \"lm_head\"]}",
                 RA_QUANT_MXFP4, "mxfp4", "", 0, -1);
    expect_quant("{\"quant_method\": \"bitsandbytes\", \"load_in_4bit\": true}", RA_QUANT_OTHER, "", "", 0, -1);
}

/* ---- checkpoint directories ---- */

static char dir[64];

static void put(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    CHECK_OK(ra_write_file_atomic(path, text, strlen(text)));
}

static void drop(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    unlink(path);
}

/* GPT-2's byte-level character of b, as UTF-8. */
static void byte_char(unsigned b, char out[3])
{
    bool printable = (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || b >= 0xae;
    unsigned cp = b;
    if (!printable) {
        cp = 256;
        for (unsigned c = 0; c < b; c++) cp += !((c >= '!' && c <= '~') || (c >= 0xa1 && c <= 0xac) || c >= 0xae);
    }
    if (cp < 0x80) { out[0] = (char)cp; out[1] = 0; }
    else { out[0] = (char)(0xc0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 0x3f)); out[2] = 0; }
}

/* A byte-complete vocabulary (ids 0..255), merges "h e" -> 256 and "Ġ t" -> 257,
 * two special tokens (258, 259) and a user-defined one (260); pair-form merges
 * when pairs. extra is spliced into the top level (pre_tokenizer etc.). */
static char *tokenizer_json(bool pairs, const char *extra)
{
    cJSON *vocab = cJSON_CreateObject();
    char ch[3];
    for (unsigned b = 0; b < 256; b++) {
        byte_char(b, ch);
        cJSON_AddNumberToObject(vocab, ch, b);
    }
    cJSON_AddNumberToObject(vocab, "he", 256);
    cJSON_AddNumberToObject(vocab, "\xc4\xa0t", 257);
    char *v = cJSON_PrintUnformatted(vocab);
    cJSON_Delete(vocab);
    const char *merges = pairs ? "[[\"h\", \"e\"], [\"\xc4\xa0\", \"t\"]]" : "[\"h e\", \"\xc4\xa0 t\"]";
    size_t n = strlen(v) + 2048;
    char *out = malloc(n);
    snprintf(out, n,
             "{\"version\": \"1.0\", \"added_tokens\": [{\"id\": 258, \"content\": \"<s>\", \"special\": true},"
             "{\"id\": 259, \"content\": \"</s>\", \"special\": true, \"lstrip\": false},"
             "{\"id\": 260, \"content\": \"<u>\", \"special\": false, \"normalized\": true}], %s%s"
             "\"model\": {\"type\": \"BPE\", \"dropout\": null, \"unk_token\": null, \"byte_fallback\": false, "
             "\"vocab\": %s, \"merges\": %s}}",
             extra ? extra : "", extra ? ", " : "", v, merges);
    free(v);
    return out;
}

#define SMOLLM_PRE "\"normalizer\": null, \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": " \
                   "\"Digits\", \"individual_digits\": true}, {\"type\": \"ByteLevel\", \"add_prefix_space\": false, " \
                   "\"trim_offsets\": true, \"use_regex\": true}]}, \"decoder\": {\"type\": \"ByteLevel\"}"

static void put_tokenizer(bool pairs, const char *extra)
{
    char *t = tokenizer_json(pairs, extra);
    put("tokenizer.json", t);
    free(t);
}

#define DIM 16
#define HEADS 2
#define KV 1
#define HD 8
#define FFN 24
#define VOCAB 261
#define LAYERS 2

typedef struct {
    char name[96];
    uint32_t n_dims;
    uint64_t shape[2];
    float *data;
} tensor;

/* Deterministic small weights (norm gains near 1). */
static void fill(tensor *t, uint32_t seed, bool gain)
{
    uint64_t n = t->shape[0] * (t->n_dims > 1 ? t->shape[1] : 1);
    t->data = malloc(n * sizeof(float));
    uint32_t s = seed * 2654435761u + 1;
    for (uint64_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        float r = (float)((s >> 8) & 0xffff) / 65536.0f - 0.5f;
        t->data[i] = gain ? 1.0f + r * 0.1f : r * 0.5f;
    }
}

static size_t model_tensors(tensor *t, bool bias, bool qk_norm)
{
    size_t n = 0;
#define T(dims, r, c, g, ...) do { snprintf(t[n].name, sizeof t[n].name, __VA_ARGS__); t[n].n_dims = dims; \
    t[n].shape[0] = r; t[n].shape[1] = c; fill(&t[n], (uint32_t)n, g); n++; } while (0)
    T(2, VOCAB, DIM, false, "model.embed_tokens.weight");
    T(1, DIM, 0, true, "model.norm.weight");
    for (int l = 0; l < LAYERS; l++) {
        T(1, DIM, 0, true, "model.layers.%d.input_layernorm.weight", l);
        T(1, DIM, 0, true, "model.layers.%d.post_attention_layernorm.weight", l);
        T(2, HEADS * HD, DIM, false, "model.layers.%d.self_attn.q_proj.weight", l);
        T(2, KV * HD, DIM, false, "model.layers.%d.self_attn.k_proj.weight", l);
        T(2, KV * HD, DIM, false, "model.layers.%d.self_attn.v_proj.weight", l);
        T(2, DIM, HEADS * HD, false, "model.layers.%d.self_attn.o_proj.weight", l);
        T(2, FFN, DIM, false, "model.layers.%d.mlp.gate_proj.weight", l);
        T(2, FFN, DIM, false, "model.layers.%d.mlp.up_proj.weight", l);
        T(2, DIM, FFN, false, "model.layers.%d.mlp.down_proj.weight", l);
    }
    for (int l = 0; l < LAYERS; l++) { /* after the others, so that those keep their values */
        if (bias) {
            T(1, HEADS * HD, 0, false, "model.layers.%d.self_attn.q_proj.bias", l);
            T(1, KV * HD, 0, false, "model.layers.%d.self_attn.k_proj.bias", l);
            T(1, KV * HD, 0, false, "model.layers.%d.self_attn.v_proj.bias", l);
        }
        if (qk_norm) {
            T(1, HD, 0, true, "model.layers.%d.self_attn.q_norm.weight", l);
            T(1, HD, 0, true, "model.layers.%d.self_attn.k_norm.weight", l);
        }
    }
#undef T
    return n;
}

/* Writes tensors [from, to) as file name; BF16 when bf16. */
static void put_safetensors(const char *name, const tensor *t, size_t from, size_t to, bool bf16)
{
    ra_st_tensor st[64];
    uint16_t *half[64] = {0};
    for (size_t i = from; i < to; i++) {
        uint64_t n = t[i].shape[0] * (t[i].n_dims > 1 ? t[i].shape[1] : 1);
        st[i - from] = (ra_st_tensor){t[i].name, bf16 ? "BF16" : "F32", t[i].n_dims, {t[i].shape[0], t[i].shape[1]},
                                      t[i].data, n * 4};
        if (bf16) {
            half[i - from] = malloc(n * 2);
            for (uint64_t k = 0; k < n; k++) half[i - from][k] = ra_f32_to_bf16(t[i].data[k]);
            st[i - from].data = half[i - from];
            st[i - from].nbytes = n * 2;
        }
    }
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    CHECK_OK(ra_safetensors_write(path, st, to - from, NULL, NULL, 0));
    for (size_t i = 0; i < to - from; i++) free(half[i]);
}

static void put_config_v(const char *type, int vocab, bool tied, const char *extra)
{
    char json[1024];
    snprintf(json, sizeof json,
             "{\"model_type\": \"%s\", \"hidden_size\": %d, \"intermediate_size\": %d, \"num_hidden_layers\": %d, "
             "\"num_attention_heads\": %d, \"num_key_value_heads\": %d, \"head_dim\": %d, \"vocab_size\": %d, "
             "\"max_position_embeddings\": 64, \"tie_word_embeddings\": %s, \"bos_token_id\": 258, \"eos_token_id\": 259%s%s}",
             type, DIM, FFN, LAYERS, HEADS, KV, HD, vocab, tied ? "true" : "false", extra ? ", " : "", extra ? extra : "");
    put("config.json", json);
}

static void put_config(const char *type, const char *extra) { put_config_v(type, VOCAB, true, extra); }

/* Greedy logprobs of a short prompt through the CPU engine. */
static ra_status run_model(const ra_model_desc *d, float *out)
{
    ra_pool *pool;
    RA_TRY(ra_pool_new(2, &pool));
    ra_model *m = NULL;
    ra_engine *e = NULL;
    ra_status s = ra_model_load(d, ra_format_find("f32"), pool, &m);
    if (s == RA_OK) s = ra_engine_open(m, ra_kernel_find("cpu"), NULL, &e);
    uint32_t cap = 8, seq[3] = {0, 0, 0};
    int32_t tok[3] = {258, 104, 101}, next[3];
    bool want[3] = {false, false, true};
    if (s == RA_OK) s = ra_engine_begin(e, 1, &cap);
    if (s == RA_OK) s = ra_engine_forward(e, seq, tok, want, 3, out, next);
    ra_engine_close(e);
    ra_model_free(m);
    ra_pool_free(pool);
    return s;
}

static void expect_open_fail(const char *what, ra_status want, const char *w1, const char *w2)
{
    ra_model_desc *d = NULL;
    ra_status s = ra_desc_open(dir, 0, &d);
    CHECK_MSG(s == want, "%s: got %s (%s), want %s", what, ra_status_name(s), ra_errmsg(), ra_status_name(want));
    if (w1) CHECK_MSG(strstr(ra_errmsg(), w1) != NULL, "%s: message lacks '%s': %s", what, w1, ra_errmsg());
    if (w2) CHECK_MSG(strstr(ra_errmsg(), w2) != NULL, "%s: message lacks '%s': %s", what, w2, ra_errmsg());
    ra_desc_close(d);
}

static void expect_load_fail(const char *what, ra_status want, const char *w1, const char *w2)
{
    ra_model_desc *d = NULL;
    CHECK_OK(ra_desc_open(dir, 0, &d));
    if (!d) return;
    float lp[VOCAB];
    ra_status s = run_model(d, lp);
    CHECK_MSG(s == want, "%s: got %s (%s), want %s", what, ra_status_name(s), ra_errmsg(), ra_status_name(want));
    if (w1) CHECK_MSG(strstr(ra_errmsg(), w1) != NULL, "%s: message lacks '%s': %s", what, w1, ra_errmsg());
    if (w2) CHECK_MSG(strstr(ra_errmsg(), w2) != NULL, "%s: message lacks '%s': %s", what, w2, ra_errmsg());
    ra_desc_close(d);
}

static void free_tensors(tensor *t, size_t n)
{
    for (size_t i = 0; i < n; i++) free(t[i].data);
}

static bool same_tokenizer(const ra_tokenizer *a, const ra_tokenizer *b)
{
    uint8_t da[32], db[32];
    ra_tokenizer_digest(a, da);
    ra_tokenizer_digest(b, db);
    return !memcmp(da, db, 32);
}

static void test_tokenizer_dir(void)
{
    tensor t[64];
    size_t n = model_tensors(t, false, false);
    put_config("llama", NULL);
    put_safetensors("model.safetensors", t, 0, n, false);
    put_tokenizer(false, SMOLLM_PRE);
    ra_model_desc *d = NULL;
    ra_tokenizer *a = NULL, *b = NULL;
    CHECK_OK(ra_desc_open(dir, 0, &d));
    if (d) {
        const ra_tokenizer_spec *sp = &d->tokenizer;
        CHECK(d->has_tokenizer && !strcmp(sp->pre, "smollm") && sp->n_tokens == VOCAB && sp->n_merges == 2);
        CHECK(sp->token_types[258] == RA_TOK_CONTROL && sp->token_types[260] == RA_TOK_USER_DEFINED &&
              sp->token_types[256] == RA_TOK_NORMAL);
        CHECK(sp->bos_id == 258 && sp->eos_id == 259 && !sp->add_bos); /* from config.json */
        CHECK_OK(ra_tokenizer_from_desc(d, &a));
    }
    ra_desc_close(d);
    /* the pair form of the merges is the same tokenizer */
    put_tokenizer(true, SMOLLM_PRE);
    CHECK_OK(ra_desc_open(dir, 0, &d));
    if (d) CHECK_OK(ra_tokenizer_from_desc(d, &b));
    if (a && b) {
        CHECK(same_tokenizer(a, b));
        int32_t *ids;
        size_t k;
        CHECK_OK(ra_tokenizer_encode(b, "<s>he t42<u>", 12, true, &ids, &k));
        int32_t want[] = {258, 256, 257, 52, 50, 260}; /* "t42": " t", "4", "2" */
        CHECK_MSG(k == 6 && !memcmp(ids, want, sizeof want), "got %zu ids", k);
        free(ids);
    }
    ra_tokenizer_free(b);
    b = NULL;
    /* written back by ra_hf_tokenizer_write, read again: the same tokenizer */
    if (d) CHECK_OK(ra_hf_tokenizer_write(dir, &d->tokenizer));
    ra_desc_close(d);
    CHECK_OK(ra_desc_open(dir, 0, &d));
    if (d) CHECK_OK(ra_tokenizer_from_desc(d, &b));
    if (a && b) CHECK(same_tokenizer(a, b));
    ra_tokenizer_free(b);
    ra_tokenizer_free(a);
    ra_desc_close(d);
    drop("tokenizer_config.json");

    /* a BOS template and tokenizer_config.json's special tokens */
    put_tokenizer(false, SMOLLM_PRE ", \"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": "
                         "{\"id\": \"</s>\", \"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}]}");
    CHECK_OK(ra_desc_open(dir, 0, &d));
    if (d) CHECK(d->tokenizer.add_bos && d->tokenizer.bos_id == 259);
    ra_desc_close(d);
    put("tokenizer_config.json", "{\"add_bos_token\": false, \"bos_token\": {\"content\": \"<s>\"}, \"eos_token\": \"</s>\","
                                 "\"unk_token\": null, \"pad_token\": \"<u>\"}");
    CHECK_OK(ra_desc_open(dir, 0, &d));
    if (d) CHECK(!d->tokenizer.add_bos && d->tokenizer.bos_id == 258 && d->tokenizer.pad_id == 260 && d->tokenizer.unk_id == -1);
    ra_desc_close(d);
    put("tokenizer_config.json", "{\"bos_token\": \"<nope>\"}");
    expect_open_fail("unknown bos_token", RA_ERR_FORMAT, "tokenizer_config.json", "<nope>");
    drop("tokenizer_config.json");

    /* config.json's vocab_size above the tokenizer's ids: padded as llama.cpp does */
    put_config_v("llama", VOCAB + 3, true, NULL);
    CHECK_OK(ra_desc_open(dir, 0, &d));
    if (d) {
        const ra_tokenizer_spec *sp = &d->tokenizer;
        CHECK(sp->n_tokens == VOCAB + 3 && sp->token_types[VOCAB + 2] == RA_TOK_UNUSED);
        CHECK(sp->token_lens[VOCAB + 2] == 8 && !memcmp(sp->tokens[VOCAB + 2], "[PAD263]", 8));
    }
    ra_desc_close(d);

    put_config_v("llama", 1 << 22, true, NULL); /* a hostile vocab_size asks for no gigabytes of padding */
    expect_open_fail("an absurd vocab_size", RA_ERR_UNSUPPORTED, "vocab_size", "tokenizer.json");

    /* refusals: what the tokenizer cannot reproduce, named */
    put_config("llama", NULL);
    struct { const char *extra, *w1, *w2; } refuse[] = {
        {"\"normalizer\": {\"type\": \"NFC\"}, \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false}, "
         "\"decoder\": {\"type\": \"ByteLevel\"}", "normalizer", "NFC"},
        {"\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": "
         "\"\\\\p{N}\"}}, {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": false}]}, \"decoder\": "
         "{\"type\": \"ByteLevel\"}", "pre_tokenizer", "Split, ByteLevel"},
        {"\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true}, \"decoder\": {\"type\": \"ByteLevel\"}",
         "pre_tokenizer", "ByteLevel"},
        {"\"pre_tokenizer\": {\"type\": \"Metaspace\"}, \"decoder\": {\"type\": \"ByteLevel\"}", "pre_tokenizer", "Metaspace"},
        {SMOLLM_PRE ", \"post_processor\": {\"type\": \"RobertaProcessing\"}", "post_processor", "RobertaProcessing"},
        {"\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false}, \"decoder\": {\"type\": \"Metaspace\"}",
         "decoder", "Metaspace"},
    };
    for (size_t i = 0; i < sizeof refuse / sizeof refuse[0]; i++) {
        put_tokenizer(false, refuse[i].extra);
        expect_open_fail(refuse[i].w1, RA_ERR_UNSUPPORTED, refuse[i].w1, refuse[i].w2);
        CHECK_MSG(strstr(ra_errmsg(), "tokenizer.json") != NULL, "names the file: %s", ra_errmsg());
    }
    put("tokenizer.json", "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}, " SMOLLM_PRE "}");
    expect_open_fail("WordPiece", RA_ERR_UNSUPPORTED, "WordPiece", NULL);
    put("tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"byte_fallback\": true, \"vocab\": {}}, " SMOLLM_PRE "}");
    expect_open_fail("byte_fallback", RA_ERR_UNSUPPORTED, "byte_fallback", NULL);
    put("tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": \"x\"}}, " SMOLLM_PRE "}");
    expect_open_fail("token id of the wrong type", RA_ERR_FORMAT, "model.vocab[\"a\"]", NULL);
    put("tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 0}}, " SMOLLM_PRE "}");
    expect_open_fail("two tokens on one id", RA_ERR_FORMAT, "id 0", NULL);
    put("tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [[\"a\"]]}, " SMOLLM_PRE "}");
    expect_open_fail("a merge of one", RA_ERR_FORMAT, "model.merges[0]", NULL);
    put("tokenizer.json", "{\"added_tokens\": [{\"id\": 0, \"content\": \"<x>\", \"lstrip\": true}], \"model\": "
                          "{\"type\": \"BPE\", \"vocab\": {}}, " SMOLLM_PRE "}");
    expect_open_fail("lstrip", RA_ERR_UNSUPPORTED, "lstrip", "<x>");
    put("tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": 3}, " SMOLLM_PRE "}");
    expect_open_fail("merges not an array", RA_ERR_FORMAT, "model.merges", NULL);
    put_tokenizer(false, SMOLLM_PRE);
    free_tensors(t, n);
}

static void test_model_dirs(void)
{
    float ref[VOCAB], lp[VOCAB];
    tensor t[64];
    size_t n = model_tensors(t, false, false);
    put_config("llama", NULL);
    put_tokenizer(false, SMOLLM_PRE);
    put_safetensors("model.safetensors", t, 0, n, false);
    ra_model_desc *d = NULL;
    CHECK_OK(ra_desc_open(dir, 0, &d));
    if (d) {
        CHECK(!strcmp(d->container, "hf") && d->n_tensors == n && d->n_files == 3);
        const ra_tensor_desc *q = ra_desc_find(d, "model.layers.1.self_attn.q_proj.weight");
        CHECK(q && q->type == RA_ST_F32 && q->shape[0] == HEADS * HD && q->shape[1] == DIM && strstr(q->file, "model.safetensors"));
        CHECK_OK(run_model(d, ref));
    }
    ra_desc_close(d);

    /* the same tensors in two shards behind an index: the same description, the same numbers */
    drop("model.safetensors");
    put_safetensors("model-00001-of-00002.safetensors", t, 0, n / 2, false);
    put_safetensors("model-00002-of-00002.safetensors", t, n / 2, n, false);
    ra_buf idx = {0};
    ra_buf_printf(&idx, "{\"metadata\": {\"total_size\": 0}, \"weight_map\": {");
    for (size_t i = 0; i < n; i++)
        ra_buf_printf(&idx, "%s\"%s\": \"model-0000%d-of-00002.safetensors\"", i ? ", " : "", t[i].name, i < n / 2 ? 1 : 2);
    ra_buf_printf(&idx, "}}");
    ra_buf_append(&idx, "", 1);
    put("model.safetensors.index.json", (const char *)idx.data);
    CHECK_OK(ra_desc_open(dir, 0, &d));
    if (d) {
        CHECK(d->n_tensors == n && d->n_files == 5);
        CHECK_OK(run_model(d, lp));
        CHECK(!memcmp(ref, lp, sizeof ref));
    }
    ra_desc_close(d);
    /* the index puts a tensor in a shard that lacks it */
    char *bad = strdup((const char *)idx.data), *at = strstr(bad, "model-00002-of-00002");
    at[10] = '1'; /* the first tensor of the second shard now points at the first shard */
    put("model.safetensors.index.json", bad);
    expect_open_fail("a tensor missing from its shard", RA_ERR_FORMAT, "model-00001-of-00002.safetensors", t[n / 2].name);
    free(bad);
    put("model.safetensors.index.json", "{\"weight_map\": {\"model.norm.weight\": \"../model.safetensors\"}}");
    expect_open_fail("a shard outside the directory", RA_ERR_FORMAT, "model.norm.weight", "not a file name");
    put("model.safetensors.index.json", "{\"weight_map\": {\"model.norm.weight\": \"model-00009-of-00009.safetensors\"}}");
    expect_open_fail("a missing shard", RA_ERR_IO, "model-00009-of-00009.safetensors", NULL);
    put("model.safetensors.index.json", "{\"weight_map\": [1]}");
    expect_open_fail("weight_map not an object", RA_ERR_FORMAT, "weight_map", NULL);
    drop("model.safetensors.index.json");
    drop("model-00001-of-00002.safetensors");
    drop("model-00002-of-00002.safetensors");
    ra_buf_free(&idx);
    expect_open_fail("no weights", RA_ERR_FORMAT, "no model.safetensors", NULL);

    /* BF16 weights load too (rounded, so the numbers move) */
    put_safetensors("model.safetensors", t, 0, n, true);
    CHECK_OK(ra_desc_open(dir, 0, &d));
    if (d) CHECK_OK(run_model(d, lp));
    ra_desc_close(d);

    /* a wrong shape names the tensor and the file; a missing tensor too */
    tensor saved = t[4];
    t[4].shape[0] = HEADS * HD - 1;
    t[4].n_dims = 2;
    put_safetensors("model.safetensors", t, 0, n, false);
    expect_load_fail("wrong shape", RA_ERR_FORMAT, t[4].name, "model.safetensors");
    t[4] = saved;
    put_safetensors("model.safetensors", t, 0, n - 1, false);
    expect_load_fail("missing tensor", RA_ERR_FORMAT, t[n - 1].name, NULL);
    put_safetensors("model.safetensors", t, 0, n, false);
    put_config_v("llama", VOCAB, false, NULL);
    expect_load_fail("untied without lm_head", RA_ERR_FORMAT, "lm_head.weight", NULL);
    put_config("llama", "\"quantization_config\": {\"quant_method\": \"awq\", \"bits\": 4, \"group_size\": 128}");
    expect_load_fail("a quantized checkpoint", RA_ERR_UNSUPPORTED, "awq", "AutoAWQ gemm");
    put_config_v("llama", 999, true, NULL);
    expect_load_fail("vocab_size against the embedding", RA_ERR_FORMAT, "model.embed_tokens.weight", NULL);
    drop("config.json");
    expect_open_fail("no config.json", RA_ERR_IO, "config.json", NULL);
    free_tensors(t, n);

    /* qwen2 (q/k/v biases) and qwen3 (QK-norm) run; zero biases change nothing */
    n = model_tensors(t, true, false);
    for (size_t i = 0; i < n; i++)
        if (strstr(t[i].name, "_proj.bias")) memset(t[i].data, 0, t[i].shape[0] * sizeof(float));
    put_safetensors("model.safetensors", t, 0, n, false);
    put_config("qwen2", NULL);
    CHECK_OK(ra_desc_open(dir, 0, &d));
    if (d) CHECK_OK(run_model(d, lp));
    if (d) CHECK_MSG(!memcmp(ref, lp, sizeof ref), "qwen2 with zero biases differs from llama");
    ra_desc_close(d);
    for (size_t i = 0; i < n; i++)
        if (strstr(t[i].name, "v_proj.bias")) t[i].data[0] = 0.25f;
    put_safetensors("model.safetensors", t, 0, n, false);
    CHECK_OK(ra_desc_open(dir, 0, &d));
    if (d) CHECK_OK(run_model(d, lp));
    if (d) CHECK(memcmp(ref, lp, sizeof ref) != 0);
    ra_desc_close(d);
    free_tensors(t, n);
    n = model_tensors(t, false, true);
    put_safetensors("model.safetensors", t, 0, n, false);
    put_config("qwen3", NULL);
    CHECK_OK(ra_desc_open(dir, 0, &d));
    if (d) {
        CHECK_OK(run_model(d, lp));
        bool finite = true;
        for (int i = 0; i < VOCAB; i++) finite &= isfinite(lp[i]);
        CHECK(finite && memcmp(ref, lp, sizeof ref) != 0);
    }
    ra_desc_close(d);
    put_safetensors("model.safetensors", t, 0, n - 1, false); /* the last k_norm is gone */
    expect_load_fail("qwen3 without k_norm", RA_ERR_FORMAT, "self_attn.k_norm.weight", NULL);
    free_tensors(t, n);
}

/* The config written by ra_hf_config_write reads back the same. */
static void test_config_round_trip(void)
{
    ra_model_config c = {0}, back;
    ra_quant_config q;
    snprintf(c.arch, sizeof c.arch, "qwen2");
    c.n_layers = 3, c.dim = 32, c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 8, c.ffn_dim = 64, c.n_vocab = 100;
    c.max_seq = 512, c.rope_theta = 1e6f, c.rms_eps = 1e-6f, c.attn_bias = true, c.bos_id = -1, c.n_eos = 2;
    c.eos_ids[0] = 5, c.eos_ids[1] = 9, c.sliding_window = 256;
    c.rope = (ra_rope_scaling){RA_ROPE_LLAMA3, 8, 1, 4, 8192};
    CHECK_OK(ra_hf_config_write(dir, &c));
    char path[256];
    snprintf(path, sizeof path, "%s/config.json", dir);
    uint8_t *text;
    size_t len;
    CHECK_OK(ra_read_file(path, &text, &len));
    CHECK_OK(ra_hf_config_parse((const char *)text, len, path, &back, &q));
    free(text);
    CHECK(back.n_layers == 3 && back.dim == 32 && back.head_dim == 8 && back.rope_theta == 1e6f && back.rms_eps == 1e-6f);
    CHECK(back.attn_bias && back.n_eos == 2 && back.eos_ids[1] == 9 && back.sliding_window == 256 && back.bos_id == -1);
    CHECK(back.rope.kind == RA_ROPE_LLAMA3 && back.rope.high_freq_factor == 4 && back.rope.original_max_pos == 8192);
    ra_quant_config_free(&q);
    snprintf(c.arch, sizeof c.arch, "llama");
    c.qk_norm = true;
    CHECK_STATUS(ra_hf_config_write(dir, &c), RA_ERR_UNSUPPORTED);
}

int main(void)
{
    test_config_families();
    test_config_errors();
    test_quant_detection();
    snprintf(dir, sizeof dir, "/tmp/ra_hf_XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_tokenizer_dir();
    test_model_dirs();
    test_config_round_trip();
    ra_remove_tree(dir);
    CHECK_DONE();
}
