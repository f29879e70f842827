/* The Llama-family decoder: configuration, weights in one format, and a
 * batched forward pass over a backend. Rows of a batch are independent
 * (sequence, token) pairs, so a row's numbers never depend on the batch. */
#ifndef RA_MODEL_H
#define RA_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ra/format.h"
#include "ra/gguf.h"
#include "ra/status.h"

/* Filled from GGUF metadata (ra_config_from_gguf) and, later, HF config.json. */
typedef struct {
    char arch[32];          /* "llama" */
    char name[128];
    uint32_t n_layers, dim, n_heads, n_kv_heads, head_dim, ffn_dim, n_vocab, max_seq;
    float rope_theta, rms_eps;
    bool tied_embeddings;
    int32_t bos_id, eos_id;
} ra_model_config;

ra_status ra_config_from_gguf(const ra_gguf *g, ra_model_config *c);

/* Weights are held in the canonical (HF) layout: rows are output features,
 * Q and K rows in rotate-half RoPE order (GGUF llama files are un-permuted at load). */
typedef struct {
    ra_weight attn_norm, ffn_norm;       /* f32, dim */
    ra_weight wq, wk, wv, wo;            /* [heads*hd x dim], [kv*hd x dim], [kv*hd x dim], [dim x heads*hd] */
    ra_weight w_gate, w_up, w_down;      /* [ffn x dim], [ffn x dim], [dim x ffn] */
} ra_layer;

typedef struct ra_pool ra_pool;

typedef struct {
    ra_model_config cfg;
    const ra_format *format;
    ra_weight embed;                     /* [n_vocab x dim] */
    ra_weight output;                    /* [n_vocab x dim]; aliases embed when tied */
    ra_weight out_norm;                  /* f32, dim */
    ra_layer *layers;
    float *rope_cos, *rope_sin;          /* [rope_max_pos x head_dim/2], grown by ra_kv_new */
    uint32_t rope_max_pos;
    ra_pool *pool;                       /* not owned */
} ra_model;

/* Builds the model in `format` from a GGUF file (derivation per formats/). */
ra_status ra_model_load_gguf(const ra_gguf *g, const ra_format *format, ra_pool *pool, ra_model **out);
void ra_model_free(ra_model *m);

/* Per-sequence KV cache. */
typedef struct {
    uint32_t len, cap;
    float *k, *v;                        /* [n_layers][cap][n_kv_heads*head_dim] */
} ra_kv;

/* cap: positions, at most the context length; also grows the RoPE tables to cap. */
ra_status ra_kv_new(ra_model *m, uint32_t cap, ra_kv **out);
void ra_kv_free(ra_kv *kv);

/* One forward pass over n rows. Row i appends token[i] to kv[i] at position
 * kv[i]->len (rows of the same sequence must be in order) and, if
 * want[i], writes the float32 log-softmax over the vocabulary to
 * logprobs + j*n_vocab, where j counts the wanted rows before i. */
ra_status ra_model_forward(ra_model *m, ra_kv *const *kv, const int32_t *token, const bool *want, uint32_t n,
                           float *logprobs);

/* Dequantized f32 copy of a weight in canonical layout (for export-hf). */
ra_status ra_weight_to_f32(const ra_weight *w, float **out);

#endif
