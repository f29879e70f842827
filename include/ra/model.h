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
    float *rope_cos, *rope_sin;          /* [max_pos x head_dim/2] */
    uint32_t rope_max_pos;
    ra_pool *pool;                       /* not owned */
} ra_model;

/* Builds the model in `format` from a GGUF file (derivation per formats/). */
ra_status ra_model_load_gguf(const ra_gguf *g, const ra_format *format, ra_pool *pool, ra_model **out);
void ra_model_free(ra_model *m);

#endif
