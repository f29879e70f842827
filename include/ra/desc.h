/* The container-neutral model description: what io/ makes of a GGUF file or
 * of a Hugging Face checkpoint directory, and the only thing model/ and the
 * tokenizer read. One path through the code whatever the container:
 *
 *   config     hyper-parameters (ra_model_config), as the container states them
 *   quant      the checkpoint's quantization (HF quantization_config), if any
 *   tokenizer  vocabulary, merges, token types, special ids (ra_tokenizer_spec)
 *   tensors    canonical HF names ("model.layers.0.self_attn.q_proj.weight"),
 *              shapes outermost first, data in the canonical HF layout. GGUF
 *              names are mapped to HF ones, GGUF's reversed dimension order is
 *              put back, and the Q/K rows that llama.cpp permutes for its
 *              interleaved RoPE are un-permuted when the description is built.
 *
 * Everything in it was validated when it was built: lengths, offsets, dtypes
 * and sizes of every tensor; types and ranges of every config field used. */
#ifndef RA_DESC_H
#define RA_DESC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ra/status.h"
#include "ra/tokenizer.h"

/* Storage types of tensors: the safetensors dtypes, and GGML's block types. */
typedef enum {
    RA_ST_F32, RA_ST_F16, RA_ST_BF16, RA_ST_F64, RA_ST_I8, RA_ST_U8, RA_ST_I16, RA_ST_I32, RA_ST_I64,
    RA_ST_F8_E4M3, RA_ST_F8_E5M2,
    RA_ST_GGML       /* a GGML block-quantized type; the tensor's ggml_type says which */
} ra_stype;
#define RA_NO_GGML UINT32_MAX

const char *ra_stype_name(ra_stype t);   /* as safetensors spells it: "F32", "BF16", "F8_E4M3"; "GGML" */
uint32_t ra_stype_size(ra_stype t);      /* bytes per element; 0 for RA_ST_GGML */
uint32_t ra_stype_ggml(ra_stype t);      /* the same storage as a GGML type, or RA_NO_GGML */

#define RA_MAX_DIMS 8

typedef struct {
    const char *name;          /* canonical (HF) name */
    const char *src_name;      /* as the container names it (GGUF: "blk.0.attn_q.weight") */
    ra_stype type;
    uint32_t ggml_type;        /* the storage as a GGML type (plain or block), or RA_NO_GGML */
    uint32_t n_dims;           /* 0..RA_MAX_DIMS (0: a scalar) */
    uint64_t shape[RA_MAX_DIMS]; /* outermost first; the last dimension is contiguous */
    uint64_t nbytes;
    const uint8_t *data;       /* nbytes, canonical layout */
    const char *file;          /* the file it is stored in */
    uint64_t offset;           /* byte offset of its data in that file */
} ra_tensor_desc;

/* RoPE frequency scaling (HF rope_scaling). Only what the engine computes is
 * accepted; anything else is refused when the config is read. */
typedef enum { RA_ROPE_DEFAULT, RA_ROPE_LINEAR, RA_ROPE_LLAMA3 } ra_rope_kind;
typedef struct {
    ra_rope_kind kind;
    float factor;               /* linear, llama3 */
    float low_freq_factor, high_freq_factor; /* llama3 */
    uint32_t original_max_pos;  /* llama3 */
} ra_rope_scaling;

#define RA_MAX_EOS 8

typedef struct {
    char arch[32];          /* "llama", "mistral", "qwen2", "qwen3" (HF model_type; GGUF general.architecture) */
    char name[128];
    uint32_t n_layers, dim, n_heads, n_kv_heads, head_dim, ffn_dim, n_vocab, max_seq;
    float rope_theta, rms_eps;
    bool tied_embeddings;
    int32_t bos_id, eos_id;           /* -1 when absent; eos_id is eos_ids[0] */
    int32_t eos_ids[RA_MAX_EOS];      /* generation stops at any of them */
    uint32_t n_eos;
    bool attn_bias;                   /* q/k/v projections have biases (qwen2) */
    bool qk_norm;                     /* per-head RMSNorm of q and k before RoPE (qwen3) */
    uint32_t sliding_window;          /* 0: full attention */
    ra_rope_scaling rope;
    char dtype[16];                   /* torch_dtype as stated ("" when not) */
} ra_model_config;

/* How a checkpoint is quantized (HF config.json quantization_config). */
typedef enum {
    RA_QUANT_NONE, RA_QUANT_AWQ, RA_QUANT_GPTQ, RA_QUANT_COMPRESSED, RA_QUANT_FP8, RA_QUANT_MXFP4, RA_QUANT_OTHER
} ra_quant_method;

typedef struct {
    bool present;
    uint32_t num_bits;
    char type[8];               /* "int" or "float" */
    char strategy[16];          /* tensor, channel, group, block, tensor_group, token */
    int32_t group_size;         /* -1: none */
    uint32_t block[2];          /* block strategy: rows x cols */
    bool symmetric, dynamic;
    char actorder[8];           /* compressed-tensors: "group", "weight" or "" */
} ra_quant_args;

typedef struct {
    ra_quant_method method;
    char method_name[32];       /* quant_method as written */
    char format[16];            /* the repro-audit format it is in ("awq", "gptq", "w4a16", "fp8", "nvfp4",
                                   "mxfp4"), or "" when it is none of ours */
    char layout[32];            /* AWQ version (gemm), GPTQ checkpoint_format (gptq, gptq_v2),
                                   compressed-tensors format (pack-quantized, float-quantized, ...) */
    ra_quant_args weights, input; /* input: activations, when quantized (W8A8) */
    bool desc_act;              /* GPTQ act-order: g_idx permutes the groups */
    bool zero_point;            /* AWQ asymmetric */
    uint32_t n_groups;          /* compressed-tensors config_groups */
    char **ignore;              /* modules left unquantized */
    size_t n_ignore;
    char summary[192];          /* one line for messages and inspect */
} ra_quant_config;

void ra_quant_config_free(ra_quant_config *q);

typedef struct {
    char *path;
    uint64_t bytes;
    uint8_t sha256[32];         /* of the bytes that were read or mapped, not of whatever the path names later */
} ra_desc_file;

typedef struct ra_desc_store ra_desc_store;

typedef struct ra_model_desc {
    char container[8];          /* "gguf" or "hf" */
    char *path;                 /* the file or directory given */
    ra_model_config config;
    ra_quant_config quant;
    bool has_tokenizer;
    ra_tokenizer_spec tokenizer;
    size_t n_tensors;
    ra_tensor_desc *tensors;    /* in container order */
    size_t n_files;
    ra_desc_file *files;        /* every file read (GGUF: the one file; HF: in name order) */
    ra_desc_store *store;       /* owned memory and open containers */
} ra_model_desc;

/* Flags of ra_desc_open. */
enum {
    RA_DESC_NO_TOKENIZER = 1    /* do not read the tokenizer (inspect, export without one) */
};

/* A GGUF file or an HF checkpoint directory (config.json, tokenizer.json,
 * model.safetensors or model.safetensors.index.json with its shards). A
 * container without a tokenizer opens with has_tokenizer false; one whose
 * tokenizer cannot be reproduced fails. Errors name the file, the item and
 * the byte offset. */
ra_status ra_desc_open(const char *path, unsigned flags, ra_model_desc **out);
void ra_desc_close(ra_model_desc *d);
const ra_tensor_desc *ra_desc_find(const ra_model_desc *d, const char *name); /* NULL if absent */

/* An HF config.json (llama, mistral, qwen2, qwen3) into c and q; name is used
 * in messages. Fields of the wrong type, missing required fields and features
 * the engine cannot run fail with RA_ERR_FORMAT / RA_ERR_UNSUPPORTED naming
 * the field. A quantized checkpoint parses (q says which format); whether it
 * can be loaded is the model loader's question. */
ra_status ra_hf_config_parse(const char *text, size_t len, const char *name, ra_model_config *c, ra_quant_config *q);

/* The HF files of a description: config.json from a configuration, and
 * tokenizer.json + tokenizer_config.json from a tokenizer spec (byte-level
 * BPE, smollm or gpt2 pre-tokenizer), each written atomically into dir. */
ra_status ra_hf_config_write(const char *dir, const ra_model_config *c);
/* The same with torch_dtype ("float32", "bfloat16") and a quantization_config
 * (a cJSON object, taken over, or NULL). */
ra_status ra_hf_config_write_ext(const char *dir, const ra_model_config *c, const char *torch_dtype, void *quant_config);
ra_status ra_hf_tokenizer_write(const char *dir, const ra_tokenizer_spec *sp);

#endif
